//! Record data: magic-2 record batches (header, CRC32C, records, in-place
//! offset patching), a batch builder, the compression codecs, control records
//! and legacy (magic 0/1) message sets with their conversion to magic 2.
//!
//! Everything that reads untrusted bytes returns `Result<_, RecordsError>`:
//! nothing panics, lengths and counts are checked against the bytes that remain
//! before anything is allocated, and decompression stops at a caller-given cap.
//! Uncompressed keys, values and headers are zero-copy `Bytes` slices.
//!
//! Typical use on produce: `batches(blob, TailMode::Strict)`, then for each
//! batch `verify_crc()` (or `validate(cap)` to decode every record too); on
//! fetch, `set_base_offset` / `assign_offsets` on the stored bytes.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch;
mod builder;
mod compression;
mod control;
mod error;
mod legacy;
mod record;

pub use batch::{
    assign_offsets, batches, peek_magic, set_base_offset, set_log_append_time, set_partition_leader_epoch, Attributes,
    BatchHeader, Batches, RecordBatch, TailMode, TimestampType, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2,
    MIN_BATCH_LENGTH,
};
pub use builder::BatchBuilder;
pub use compression::{compress, decompress, Compression};
pub use control::{ControlRecordType, EndTxnMarker};
pub use error::{RecordsError, Result};
pub use legacy::{convert_message_set, decode_message_set, LegacyMessage};
pub use record::{Header, Record, Records, MIN_RECORD_SIZE};
