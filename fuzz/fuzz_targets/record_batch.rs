//! Fuzz target `record_batch`: see `strata_proto::fuzzing::record_batch` for the input format and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::fuzzing::CheckedAlloc;

#[global_allocator]
static ALLOC: CheckedAlloc = CheckedAlloc;

fuzz_target!(|data: &[u8]| strata_proto::fuzzing::record_batch(data));
