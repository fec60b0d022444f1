//! Typed errors for record batches, records, codecs and legacy message sets.

use crate::codec::error::{DecodeError, DecodeErrorKind};

use super::compression::Compression;

/// What was wrong with a record batch, a record, compressed data or a legacy message set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The data ends before a field or length it declares.
    #[error("truncated: needed {needed} bytes, {remaining} remain")]
    Truncated { needed: u64, remaining: usize },
    /// A magic byte this decoder does not handle.
    #[error("unsupported magic byte {0}")]
    BadMagic(i8),
    /// A batchLength shorter than a batch header.
    #[error("batch length {0} is out of range")]
    BadBatchLength(i32),
    /// The stored CRC does not match the data.
    #[error("crc mismatch: header says {expected:#010x}, data gives {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    /// A compression id that is not a codec (5–7; 4 in legacy messages).
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// Decompressed data would pass the caller's cap.
    #[error("decompressed data is larger than the cap of {cap} bytes")]
    DecompressedTooLarge { cap: usize },
    /// The compressed data is corrupt.
    #[error("{0} decompression failed: {1}")]
    Decompression(Compression, String),
    /// The compressor failed (encoding only).
    #[error("{0} compression failed: {1}")]
    CompressionFailed(Compression, String),
    /// A negative record count.
    #[error("record count {0} is negative")]
    BadRecordCount(i32),
    /// The record data ends before the declared count.
    #[error("batch declares {declared} records but its data ends after {actual}")]
    RecordCountMismatch { declared: i32, actual: i32 },
    /// A negative record length.
    #[error("record length {0} is out of range")]
    BadRecordLength(i64),
    /// A record's fields do not fill its declared length.
    #[error("record declared {declared} bytes but its fields used {used}")]
    RecordLengthMismatch { declared: usize, used: usize },
    /// A length below -1, or -1 where null is not allowed.
    #[error("invalid length {len} for {field}")]
    NegativeLength { field: &'static str, len: i32 },
    /// A header count that is negative or more than the record can hold.
    #[error("header count {0} is out of range")]
    BadHeaderCount(i32),
    /// Bytes left over after the last record or batch.
    #[error("{0} bytes follow the last record")]
    TrailingBytes(usize),
    /// Record offset deltas do not run 0, 1, 2, ….
    #[error("record {expected} has offset delta {actual}")]
    OffsetDeltaMismatch { expected: i32, actual: i32 },
    /// lastOffsetDelta disagrees with the records.
    #[error("last offset delta {last_offset_delta} does not match {record_count} records")]
    LastOffsetDeltaMismatch { last_offset_delta: i32, record_count: i32 },
    /// A varint longer than its type allows.
    #[error("varint longer than its type allows")]
    BadVarint,
    /// Another primitive decoding error.
    #[error("malformed: {0}")]
    Wire(DecodeErrorKind),
    /// A legacy message size below the minimum message size.
    #[error("legacy message size {0} is out of range")]
    BadMessageSize(i32),
    /// A compressed legacy message inside a compressed one.
    #[error("a compressed legacy message holds a compressed message")]
    NestedCompression,
    /// A legacy inner message with a different magic than its wrapper.
    #[error("inner message magic {inner} differs from its wrapper's magic {outer}")]
    MagicMismatch { outer: i8, inner: i8 },
    /// A compressed legacy message with a null value.
    #[error("compressed legacy message has a null value")]
    NullWrapperValue,
    /// A legacy message set with no messages to convert.
    #[error("the message set holds no messages")]
    EmptyMessageSet,
    /// More records than a batch can count (encoding only).
    #[error("too many records for one batch")]
    TooManyRecords,
    /// A batch or field longer than the format allows (encoding only).
    #[error("a batch of {0} bytes does not fit the wire format")]
    BatchTooLarge(usize),
    /// A control record whose key or value is malformed.
    #[error("invalid control record: {0}")]
    BadControlRecord(&'static str),
}

impl RecordsError {
    /// The Kafka error code a broker answers a produce with for this error:
    /// CORRUPT_MESSAGE (2) for damaged batches, INVALID_RECORD (87) for
    /// malformed records inside a sound batch, MESSAGE_TOO_LARGE (10) past the
    /// decompression cap, UNKNOWN_SERVER_ERROR (-1) for encoding failures.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordsError::DecompressedTooLarge { .. } => 10,
            RecordsError::BadRecordCount(_)
            | RecordsError::RecordCountMismatch { .. }
            | RecordsError::BadRecordLength(_)
            | RecordsError::RecordLengthMismatch { .. }
            | RecordsError::NegativeLength { .. }
            | RecordsError::BadHeaderCount(_)
            | RecordsError::OffsetDeltaMismatch { .. }
            | RecordsError::LastOffsetDeltaMismatch { .. }
            | RecordsError::BadControlRecord(_) => 87,
            RecordsError::CompressionFailed(..)
            | RecordsError::TooManyRecords
            | RecordsError::BatchTooLarge(_) => -1,
            _ => 2,
        }
    }
}

impl From<DecodeError> for RecordsError {
    fn from(e: DecodeError) -> Self {
        match e.kind {
            DecodeErrorKind::Truncated { needed, remaining } => RecordsError::Truncated { needed, remaining },
            DecodeErrorKind::VarintTooLong => RecordsError::BadVarint,
            other => RecordsError::Wire(other),
        }
    }
}

/// Shorthand for results in this module.
pub type Result<T, E = RecordsError> = std::result::Result<T, E>;

/// A `Truncated` error for a slice of `remaining` bytes that needed `needed`.
#[cold]
pub(crate) fn truncated(needed: usize, remaining: usize) -> RecordsError {
    RecordsError::Truncated { needed: needed as u64, remaining }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_kafka_codes() {
        assert_eq!(RecordsError::CrcMismatch { expected: 1, actual: 2 }.kafka_error_code(), 2);
        assert_eq!(RecordsError::DecompressedTooLarge { cap: 1 }.kafka_error_code(), 10);
        assert_eq!(RecordsError::OffsetDeltaMismatch { expected: 1, actual: 2 }.kafka_error_code(), 87);
        assert_eq!(
            RecordsError::from(DecodeError::new(DecodeErrorKind::VarintTooLong)),
            RecordsError::BadVarint
        );
        assert_eq!(
            RecordsError::from(DecodeError::new(DecodeErrorKind::Truncated { needed: 4, remaining: 1 })),
            RecordsError::Truncated { needed: 4, remaining: 1 }
        );
    }
}
