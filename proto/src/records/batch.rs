//! Magic-2 record batches: the 61-byte header, iterating the batches of a
//! records blob, CRC32C checks, record access and in-place patching of the
//! fields outside the CRC.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after
//! this field), partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17
//! (CRC32C of everything from attributes to the end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordCount i32 @57, then the (possibly compressed) records.

use bytes::{Buf, Bytes};

use super::compression::{decompress, Compression};
use super::error::{truncated, RecordsError, Result};
use super::record::Records;

/// The size of a magic-2 batch header.
pub const HEADER_SIZE: usize = 61;
/// The bytes before the batch length field's coverage starts: baseOffset and batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// The smallest legal batchLength (a header and no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The current record batch format.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers the batch from the attributes on.
const CRC_FROM: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appended.
    LogAppendTime,
}

/// Batch attributes (int16): compression, timestamp type, transactional, control, delete horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    /// Attributes from their parts.
    pub fn new(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
        control: bool,
    ) -> Attributes {
        let mut a = i16::from(compression.id());
        if timestamp_type == TimestampType::LogAppendTime {
            a |= TIMESTAMP_TYPE_BIT;
        }
        if transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if control {
            a |= CONTROL_BIT;
        }
        Attributes(a)
    }

    /// The compression codec; ids 5–7 are `UnknownCompression`.
    pub fn compression(self) -> Result<Compression> {
        Compression::from_id((self.0 & COMPRESSION_MASK) as u8)
    }

    /// The timestamp type bit.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// True when the batch belongs to a transaction.
    pub fn is_transactional(self) -> bool {
        self.0 & TRANSACTIONAL_BIT != 0
    }

    /// True when the batch holds control records (transaction markers).
    pub fn is_control(self) -> bool {
        self.0 & CONTROL_BIT != 0
    }

    /// True when baseTimestamp holds a delete horizon (KIP-534, set by compaction).
    pub fn has_delete_horizon(self) -> bool {
        self.0 & DELETE_HORIZON_BIT != 0
    }
}

/// The parsed 61-byte header of a magic-2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the broker).
    pub base_offset: i64,
    /// Bytes after the batchLength field.
    pub batch_length: i32,
    /// Leader epoch of the appending broker (outside the CRC).
    pub partition_leader_epoch: i32,
    /// Format version; always 2 here.
    pub magic: i8,
    /// CRC32C from the attributes to the end of the batch.
    pub crc: u32,
    /// Compression, timestamp type and flags.
    pub attributes: Attributes,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see `Attributes::has_delete_horizon`).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the front of `buf` without touching the records.
    /// Checks the magic and that batchLength is at least a header's worth;
    /// does not check that `buf` holds the whole batch.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let mut b = buf.get(..HEADER_SIZE).ok_or_else(|| truncated(HEADER_SIZE, buf.len()))?;
        let header = BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: Attributes(b.get_i16()),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            record_count: b.get_i32(),
        };
        if header.magic != MAGIC_V2 {
            return Err(RecordsError::BadMagic(header.magic));
        }
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(RecordsError::BadBatchLength(header.batch_length));
        }
        Ok(header)
    }

    /// Writes the header into the first 61 bytes of `out` (which must hold them).
    pub(crate) fn write(&self, out: &mut [u8]) {
        let mut w = &mut out[..HEADER_SIZE];
        use bytes::BufMut;
        w.put_i64(self.base_offset);
        w.put_i32(self.batch_length);
        w.put_i32(self.partition_leader_epoch);
        w.put_i8(self.magic);
        w.put_u32(self.crc);
        w.put_i16(self.attributes.0);
        w.put_i32(self.last_offset_delta);
        w.put_i64(self.base_timestamp);
        w.put_i64(self.max_timestamp);
        w.put_i64(self.producer_id);
        w.put_i16(self.producer_epoch);
        w.put_i32(self.base_sequence);
        w.put_i32(self.record_count);
    }

    /// The whole batch's size in bytes: the log overhead plus batchLength.
    pub fn total_size(&self) -> usize {
        // batch_length is checked non-negative at parse.
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// The compression codec (an error for ids 5–7).
    pub fn compression(&self) -> Result<Compression> {
        self.attributes.compression()
    }

    /// The offset of the last record (saturating).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after the last record (saturating).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The delete horizon, when the batch carries one instead of a base timestamp.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.attributes.has_delete_horizon().then_some(self.base_timestamp)
    }

    /// The base timestamp, unless it holds a delete horizon.
    pub fn first_timestamp(&self) -> Option<i64> {
        (!self.attributes.has_delete_horizon()).then_some(self.base_timestamp)
    }

    /// The sequence number of the last record (wrapping at i32::MAX as Kafka does), or -1.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// One whole magic-2 batch: its parsed header and its bytes (a zero-copy slice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Parses exactly one batch: `bytes` must hold the whole batch and nothing after it.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch> {
        let header = BatchHeader::parse(&bytes)?;
        let total = header.total_size();
        if bytes.len() < total {
            return Err(truncated(total, bytes.len()));
        }
        if bytes.len() > total {
            return Err(RecordsError::TrailingBytes(bytes.len() - total));
        }
        Ok(RecordBatch { header, bytes })
    }

    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch's bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The whole batch's bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The batch's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a batch has at least a header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The CRC32C the batch's bytes give (from the attributes to the end).
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(self.bytes.get(CRC_FROM..).unwrap_or_default())
    }

    /// Checks the batch's CRC32C against its header.
    pub fn verify_crc(&self) -> Result<()> {
        let actual = self.computed_crc();
        if actual != self.header.crc {
            return Err(RecordsError::CrcMismatch { expected: self.header.crc, actual });
        }
        Ok(())
    }

    /// The record data as stored: compressed when the batch is.
    pub fn payload(&self) -> Bytes {
        self.bytes.slice(HEADER_SIZE.min(self.bytes.len())..)
    }

    /// The record data decompressed (zero-copy when uncompressed), capped at `max_decompressed` bytes.
    pub fn decompressed_payload(&self, max_decompressed: usize) -> Result<Bytes> {
        match self.header.compression()? {
            Compression::None => Ok(self.payload()),
            codec => Ok(Bytes::from(decompress(codec, &self.payload(), max_decompressed)?)),
        }
    }

    /// Iterates the records, decompressing first when the batch is compressed.
    pub fn records(&self, max_decompressed: usize) -> Result<Records> {
        Records::new(self.decompressed_payload(max_decompressed)?, self.header.record_count)
    }

    /// Full validation as a broker does on produce: CRC, codec, every record
    /// decodes, the count matches, offset deltas run 0, 1, 2, … and
    /// lastOffsetDelta is the last of them.
    pub fn validate(&self, max_decompressed: usize) -> Result<()> {
        self.verify_crc()?;
        let h = &self.header;
        let mut n: i32 = 0;
        for record in self.records(max_decompressed)? {
            let record = record?;
            if record.offset_delta != n {
                return Err(RecordsError::OffsetDeltaMismatch { expected: n, actual: record.offset_delta });
            }
            n = n.checked_add(1).ok_or(RecordsError::TooManyRecords)?;
        }
        if n > 0 && h.last_offset_delta != n - 1 {
            return Err(RecordsError::LastOffsetDeltaMismatch {
                last_offset_delta: h.last_offset_delta,
                record_count: n,
            });
        }
        Ok(())
    }
}

/// What to do with a batch cut short at the end of a records blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailMode {
    /// Produce: the blob must be whole batches; a partial batch is an error.
    Strict,
    /// Fetch: the blob may end with a truncated batch, which is silently skipped.
    AllowTruncated,
}

/// Iterates the batches of a records blob, checking headers but not CRCs.
#[derive(Debug, Clone)]
pub struct Batches {
    rest: Bytes,
    mode: TailMode,
    failed: bool,
}

/// Iterates the magic-2 batches in `blob`.
pub fn batches(blob: Bytes, mode: TailMode) -> Batches {
    Batches { rest: blob, mode, failed: false }
}

impl Batches {
    /// The bytes not yet iterated (after the end, a skipped truncated tail).
    pub fn remainder(&self) -> &Bytes {
        &self.rest
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let rest = &self.rest;
        if rest.is_empty() {
            return Ok(None);
        }
        let lenient = self.mode == TailMode::AllowTruncated;
        if rest.len() < LOG_OVERHEAD {
            return if lenient { Ok(None) } else { Err(truncated(LOG_OVERHEAD, rest.len())) };
        }
        let mut len_field = &rest[LENGTH_AT..LOG_OVERHEAD];
        let batch_length = len_field.get_i32();
        if batch_length < MIN_BATCH_LENGTH {
            return Err(RecordsError::BadBatchLength(batch_length));
        }
        let total = LOG_OVERHEAD + batch_length as usize;
        if rest.len() < total {
            // A fetch response may end mid-batch; a consumer skips the tail.
            return if lenient { Ok(None) } else { Err(truncated(total, rest.len())) };
        }
        let header = BatchHeader::parse(rest)?;
        let bytes = self.rest.split_to(total);
        Ok(Some(RecordBatch { header, bytes }))
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        if self.failed {
            return None;
        }
        match self.next_batch() {
            Ok(b) => b.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn check_patchable(batch: &[u8]) -> Result<()> {
    let magic = *batch.get(MAGIC_AT).ok_or_else(|| truncated(HEADER_SIZE, batch.len()))? as i8;
    if batch.len() < HEADER_SIZE {
        return Err(truncated(HEADER_SIZE, batch.len()));
    }
    if magic != MAGIC_V2 {
        return Err(RecordsError::BadMagic(magic));
    }
    Ok(())
}

/// Overwrites a batch's baseOffset in place; the CRC does not cover it, so it stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<()> {
    check_patchable(batch)?;
    batch[BASE_OFFSET_AT..LENGTH_AT].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Overwrites a batch's partitionLeaderEpoch in place; the CRC does not cover it.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<()> {
    check_patchable(batch)?;
    batch[LEADER_EPOCH_AT..MAGIC_AT].copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Marks a batch LogAppendTime with `timestamp` as its max timestamp and
/// recomputes the CRC, as a broker does for topics with
/// `message.timestamp.type=LogAppendTime` (both fields are inside the CRC).
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) -> Result<()> {
    check_patchable(batch)?;
    let attributes = i16::from_be_bytes([batch[CRC_FROM], batch[CRC_FROM + 1]]) | TIMESTAMP_TYPE_BIT;
    batch[CRC_FROM..CRC_FROM + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
    write_crc(batch);
    Ok(())
}

/// Rewrites the baseOffset (and, if given, the leader epoch) of every batch in a
/// blob of whole batches so that they run on from `first_offset`; returns the
/// offset after the last batch.
pub fn assign_offsets(blob: &mut [u8], first_offset: i64, leader_epoch: Option<i32>) -> Result<i64> {
    let mut next = first_offset;
    let mut at = 0usize;
    while at < blob.len() {
        let batch = &mut blob[at..];
        let header = BatchHeader::parse(batch)?;
        let total = header.total_size();
        if batch.len() < total {
            return Err(truncated(total, batch.len()));
        }
        set_base_offset(batch, next)?;
        if let Some(epoch) = leader_epoch {
            set_partition_leader_epoch(batch, epoch)?;
        }
        next = next.saturating_add(i64::from(header.last_offset_delta)).saturating_add(1);
        at += total;
    }
    Ok(next)
}

/// Reads the magic byte of the first batch or message in a records blob
/// (it sits at byte 16 in every format).
pub fn peek_magic(blob: &[u8]) -> Result<i8> {
    blob.get(MAGIC_AT).map(|&m| m as i8).ok_or_else(|| truncated(MAGIC_AT + 1, blob.len()))
}

/// Computes the CRC32C of a batch from its attributes on and stores it in the header.
pub(crate) fn write_crc(batch: &mut [u8]) {
    if batch.len() >= HEADER_SIZE {
        let crc = crc32c::crc32c(&batch[CRC_FROM..]);
        batch[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::super::builder::BatchBuilder;
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn batch(codec: Compression, n: usize) -> Bytes {
        let mut b = BatchBuilder::new(codec).producer(42, 3, 100);
        for i in 0..n {
            let key = format!("key-{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            b.push(1_700_000_000_000 + i as i64, Some(key.as_bytes()), Some(value.as_bytes()), &[]).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn header_parses_without_touching_records() {
        let bytes = batch(Compression::Gzip, 5);
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.total_size(), bytes.len());
        assert_eq!(h.compression().unwrap(), Compression::Gzip);
        assert_eq!(h.record_count, 5);
        assert_eq!(h.last_offset_delta, 4);
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (42, 3, 100));
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_004);
        assert_eq!(h.last_sequence(), 104);
        assert_eq!(h.attributes.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.attributes.is_transactional() && !h.attributes.is_control());
        // The whole header fits a 61-byte slice.
        assert_eq!(BatchHeader::parse(&bytes[..HEADER_SIZE]).unwrap(), h);
    }

    #[test]
    fn attribute_bits() {
        let a = Attributes::new(Compression::Zstd, TimestampType::LogAppendTime, true, true);
        assert_eq!(a.0, 4 | 8 | 16 | 32);
        assert_eq!(a.compression().unwrap(), Compression::Zstd);
        assert_eq!(a.timestamp_type(), TimestampType::LogAppendTime);
        assert!(a.is_transactional() && a.is_control() && !a.has_delete_horizon());
        assert!(Attributes(0x40).has_delete_horizon());
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let mut h = BatchHeader::parse(&batch(Compression::None, 3)).unwrap();
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
        h.base_sequence = -1;
        assert_eq!(h.last_sequence(), -1);
    }

    #[test]
    fn truncated_header_is_an_error() {
        let bytes = batch(Compression::None, 2);
        for n in [0, 1, 11, 12, 17, 60] {
            assert!(matches!(BatchHeader::parse(&bytes[..n]), Err(RecordsError::Truncated { .. })), "{n}");
            assert!(
                matches!(RecordBatch::parse(bytes.slice(..n)), Err(RecordsError::Truncated { .. })),
                "{n}"
            );
            let mut it = batches(bytes.slice(..n), TailMode::Strict);
            if n == 0 {
                assert!(it.next().is_none());
            } else {
                assert!(matches!(it.next(), Some(Err(RecordsError::Truncated { .. }))), "{n}");
            }
            assert!(batches(bytes.slice(..n), TailMode::AllowTruncated).next().is_none(), "{n}");
        }
    }

    #[test]
    fn bad_magic_and_bad_lengths_are_errors() {
        let mut bytes = BytesMut::from(&batch(Compression::None, 2)[..]);
        bytes[MAGIC_AT] = 1;
        assert_eq!(BatchHeader::parse(&bytes).unwrap_err(), RecordsError::BadMagic(1));
        bytes[MAGIC_AT] = 2;
        for bad in [-1, 0, 48, i32::MIN] {
            bytes[LENGTH_AT..LOG_OVERHEAD].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(BatchHeader::parse(&bytes).unwrap_err(), RecordsError::BadBatchLength(bad));
            // Even a fetch blob cannot hide a nonsense length.
            let mut it = batches(bytes.clone().freeze(), TailMode::AllowTruncated);
            assert_eq!(it.next().unwrap().unwrap_err(), RecordsError::BadBatchLength(bad));
            assert!(it.next().is_none());
        }
        // A huge length is a truncated batch (strict) or a skipped tail (fetch).
        bytes[LENGTH_AT..LOG_OVERHEAD].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            batches(bytes.clone().freeze(), TailMode::Strict).next(),
            Some(Err(RecordsError::Truncated { .. }))
        ));
        assert!(batches(bytes.freeze(), TailMode::AllowTruncated).next().is_none());
    }

    #[test]
    fn produce_blobs_must_be_whole_fetch_blobs_may_end_short() {
        let a = batch(Compression::None, 3);
        let b = batch(Compression::Lz4, 4);
        let mut blob = BytesMut::new();
        blob.put_slice(&a);
        blob.put_slice(&b);
        let whole = blob.clone().freeze();
        for mode in [TailMode::Strict, TailMode::AllowTruncated] {
            let got: Vec<_> = batches(whole.clone(), mode).collect::<Result<_>>().unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].as_bytes(), &a);
            assert_eq!(got[1].as_bytes(), &b);
        }
        let cut = whole.slice(..whole.len() - 10);
        let strict: Vec<_> = batches(cut.clone(), TailMode::Strict).collect();
        assert_eq!(strict.len(), 2);
        assert!(strict[0].is_ok());
        assert!(matches!(strict[1], Err(RecordsError::Truncated { .. })));
        let mut lenient = batches(cut, TailMode::AllowTruncated);
        assert_eq!(lenient.next().unwrap().unwrap().as_bytes(), &a);
        assert!(lenient.next().is_none());
        assert_eq!(lenient.remainder().len(), b.len() - 10);
    }

    #[test]
    fn batches_are_zero_copy() {
        let a = batch(Compression::None, 3);
        let got = batches(a.clone(), TailMode::Strict).next().unwrap().unwrap();
        assert_eq!(got.as_bytes().as_ptr(), a.as_ptr());
        let rec = got.records(MIB).unwrap().next().unwrap().unwrap();
        let v = rec.value.unwrap();
        assert!((a.as_ptr() as usize..a.as_ptr() as usize + a.len()).contains(&(v.as_ptr() as usize)));
    }

    #[test]
    fn corrupt_crc_is_detected() {
        let bytes = batch(Compression::Snappy, 3);
        let ok = RecordBatch::parse(bytes.clone()).unwrap();
        ok.verify_crc().unwrap();
        ok.validate(MIB).unwrap();
        // Flip a payload bit.
        let mut bad = BytesMut::from(&bytes[..]);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let bad = RecordBatch::parse(bad.freeze()).unwrap();
        assert!(matches!(bad.verify_crc(), Err(RecordsError::CrcMismatch { .. })));
        // Flip a bit of the stored CRC itself.
        let mut bad = BytesMut::from(&bytes[..]);
        bad[CRC_AT] ^= 0x80;
        let err = RecordBatch::parse(bad.freeze()).unwrap().verify_crc().unwrap_err();
        assert_eq!(
            err,
            RecordsError::CrcMismatch { expected: ok.header().crc ^ 0x8000_0000, actual: ok.header().crc }
        );
    }

    #[test]
    fn patching_base_offset_and_epoch_keeps_the_crc_valid() {
        let mut bytes = BytesMut::from(&batch(Compression::Zstd, 3)[..]);
        set_base_offset(&mut bytes, 1_000_000).unwrap();
        set_partition_leader_epoch(&mut bytes, 17).unwrap();
        let b = RecordBatch::parse(bytes.freeze()).unwrap();
        b.verify_crc().unwrap();
        assert_eq!(b.header().base_offset, 1_000_000);
        assert_eq!(b.header().partition_leader_epoch, 17);
        assert_eq!(b.header().last_offset(), 1_000_002);
        let offsets: Vec<i64> =
            b.records(MIB).unwrap().map(|r| r.unwrap().offset(b.header().base_offset)).collect();
        assert_eq!(offsets, vec![1_000_000, 1_000_001, 1_000_002]);
        // Too short or not magic 2: refused, nothing written.
        let mut short = [0u8; 20];
        assert!(matches!(set_base_offset(&mut short, 1), Err(RecordsError::Truncated { .. })));
        let mut old = [0u8; 70];
        old[MAGIC_AT] = 1;
        assert_eq!(set_base_offset(&mut old, 1).unwrap_err(), RecordsError::BadMagic(1));
        assert!(old.iter().enumerate().all(|(i, &b)| b == if i == MAGIC_AT { 1 } else { 0 }));
    }
}
