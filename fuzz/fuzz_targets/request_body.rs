//! Fuzz target `request_body`: see `strata_proto::fuzzing::request_body` for the input format and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::fuzzing::CheckedAlloc;

#[global_allocator]
static ALLOC: CheckedAlloc = CheckedAlloc;

fuzz_target!(|data: &[u8]| strata_proto::fuzzing::request_body(data));
