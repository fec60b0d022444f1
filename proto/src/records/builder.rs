//! Building magic-2 batches: records are encoded as they are pushed, then
//! `build` compresses them, fills in the header and computes the CRC32C.

use bytes::{Bytes, BytesMut};

use super::batch::{write_crc, Attributes, BatchHeader, TimestampType, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};
use super::compression::{compress, Compression};
use super::error::{RecordsError, Result};
use super::record::{encode_record, Header};

/// Builds one magic-2 record batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    timestamp_type: TimestampType,
    /// Encoded records; uncompressed batches are built in place behind a header-sized gap.
    records: BytesMut,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: Option<i64>,
}

impl BatchBuilder {
    /// A builder for a batch compressed with `compression`, base offset 0, no producer id.
    pub fn new(compression: Compression) -> BatchBuilder {
        Self::with_capacity(compression, 0)
    }

    /// Like [`new`](Self::new), with room for `capacity` bytes of batch
    /// reserved up front, so that filling it does not grow (and copy) it.
    pub fn with_capacity(compression: Compression, capacity: usize) -> BatchBuilder {
        let mut records = BytesMut::with_capacity(capacity.max(HEADER_SIZE));
        if compression == Compression::None {
            records.resize(HEADER_SIZE, 0);
        }
        BatchBuilder {
            compression,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            timestamp_type: TimestampType::CreateTime,
            records,
            count: 0,
            base_timestamp: None,
            max_timestamp: None,
        }
    }

    /// Sets the base offset (0 by default; the broker assigns the real one).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch (-1 by default).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer id, epoch and first sequence number (all -1 by default).
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets the timestamp type (CreateTime by default).
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// The number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True before the first record is pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of encoded records so far (before compression).
    pub fn encoded_size(&self) -> usize {
        let gap = if self.compression == Compression::None { HEADER_SIZE } else { 0 };
        self.records.len().saturating_sub(gap)
    }

    /// Appends a record; its offset delta is its position and its timestamp is
    /// stored relative to the first record's.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<()> {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        let next = self.count.checked_add(1).ok_or(RecordsError::TooManyRecords)?;
        // Java's long arithmetic wraps; so does the decoder's, so any timestamp round-trips.
        encode_record(&mut self.records, timestamp.wrapping_sub(base), self.count, key, value, headers)?;
        self.count = next;
        self.max_timestamp = Some(self.max_timestamp.map_or(timestamp, |m| m.max(timestamp)));
        Ok(())
    }

    /// Compresses the records, writes the header and the CRC, and returns the batch.
    pub fn build(self) -> Result<Bytes> {
        let mut out = if self.compression == Compression::None {
            self.records
        } else {
            let mut out = BytesMut::with_capacity(HEADER_SIZE + self.records.len() / 2);
            out.resize(HEADER_SIZE, 0);
            compress(self.compression, &self.records, &mut out)?;
            out
        };
        let batch_length =
            i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| RecordsError::BatchTooLarge(out.len()))?;
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: Attributes::new(
                self.compression,
                self.timestamp_type,
                self.transactional,
                self.control,
            ),
            last_offset_delta: (self.count - 1).max(0),
            base_timestamp: self.base_timestamp.unwrap_or(-1),
            max_timestamp: self.max_timestamp.unwrap_or(-1),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: self.count,
        };
        header.write(&mut out);
        write_crc(&mut out);
        Ok(out.freeze())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::batch::{batches, set_base_offset, RecordBatch, TailMode};
    use super::super::record::Record;
    use super::*;

    const MIB: usize = 1024 * 1024;

    struct Input {
        ts: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<Header>,
    }

    fn inputs() -> Vec<Input> {
        (0..200)
            .map(|i| Input {
                ts: 1_700_000_000_000 + (i * 37 % 11) as i64 - 5,
                key: (i % 3 != 0).then(|| format!("k{i}").into_bytes()),
                value: (i % 7 != 0).then(|| format!("value {i} {}", "y".repeat(i % 90)).into_bytes()),
                headers: (0..i % 3)
                    .map(|h| {
                        Header::new(
                            format!("h{h}").into_bytes(),
                            (h % 2 == 0).then(|| Bytes::from(vec![h as u8; h])),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    fn build(codec: Compression, inputs: &[Input]) -> Bytes {
        let mut b = BatchBuilder::new(codec).producer(7, 1, 0).partition_leader_epoch(4);
        for r in inputs {
            b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn every_codec_round_trips_through_build_parse_iterate() {
        let inputs = inputs();
        for codec in Compression::ALL {
            let bytes = build(codec, &inputs);
            let batch = RecordBatch::parse(bytes).unwrap();
            batch.validate(MIB).unwrap();
            let h = *batch.header();
            assert_eq!(h.compression().unwrap(), codec);
            assert_eq!(h.record_count, inputs.len() as i32);
            assert_eq!(h.max_timestamp, inputs.iter().map(|r| r.ts).max().unwrap());
            assert_eq!(h.partition_leader_epoch, 4);
            let records: Vec<Record> = batch.records(MIB).unwrap().collect::<Result<_>>().unwrap();
            assert_eq!(records.len(), inputs.len());
            for (i, (got, want)) in records.iter().zip(&inputs).enumerate() {
                assert_eq!(got.offset_delta, i as i32);
                assert_eq!(got.timestamp(h.base_timestamp), want.ts);
                assert_eq!(got.key.as_deref(), want.key.as_deref());
                assert_eq!(got.value.as_deref(), want.value.as_deref());
                assert_eq!(got.headers, want.headers);
            }
        }
    }

    #[test]
    fn compressed_batches_are_smaller() {
        let inputs = inputs();
        let plain = build(Compression::None, &inputs).len();
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(build(codec, &inputs).len() < plain, "{codec}");
        }
    }

    #[test]
    fn flags_land_in_the_attributes() {
        let mut b = BatchBuilder::new(Compression::None)
            .transactional(true)
            .control(true)
            .timestamp_type(TimestampType::LogAppendTime)
            .base_offset(99);
        b.push(5, None, None, &[]).unwrap();
        let batch = RecordBatch::parse(b.build().unwrap()).unwrap();
        let a = batch.header().attributes;
        assert!(a.is_transactional() && a.is_control());
        assert_eq!(a.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.header().base_offset, 99);
        batch.verify_crc().unwrap();
    }

    #[test]
    fn an_empty_batch_is_valid() {
        let bytes = BatchBuilder::new(Compression::Lz4).build().unwrap();
        let batch = RecordBatch::parse(bytes).unwrap();
        batch.validate(MIB).unwrap();
        assert_eq!(batch.header().record_count, 0);
        assert_eq!(batch.records(MIB).unwrap().count(), 0);
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let mut b = BatchBuilder::new(Compression::None);
        for ts in [i64::MAX, i64::MIN, -1, 0] {
            b.push(ts, None, Some(b"v"), &[]).unwrap();
        }
        let batch = RecordBatch::parse(b.build().unwrap()).unwrap();
        let base = batch.header().base_timestamp;
        let ts: Vec<i64> = batch.records(MIB).unwrap().map(|r| r.unwrap().timestamp(base)).collect();
        assert_eq!(ts, vec![i64::MAX, i64::MIN, -1, 0]);
    }

    #[test]
    fn unknown_compression_codec_is_an_error() {
        let bytes = build(Compression::None, &inputs()[..3]);
        for id in 5..=7i16 {
            let mut b = BytesMut::from(&bytes[..]);
            b[22] = (b[22] & !0x07) | id as u8; // low byte of attributes
            super::write_crc(&mut b);
            let batch = RecordBatch::parse(b.freeze()).unwrap();
            batch.verify_crc().unwrap();
            assert_eq!(batch.header().compression().unwrap_err(), RecordsError::UnknownCompression(id as u8));
            assert_eq!(batch.records(MIB).unwrap_err(), RecordsError::UnknownCompression(id as u8));
            assert_eq!(batch.validate(MIB).unwrap_err(), RecordsError::UnknownCompression(id as u8));
        }
    }

    #[test]
    fn record_count_larger_than_data_is_an_error() {
        for codec in [Compression::None, Compression::Gzip] {
            let mut b = BytesMut::from(&build(codec, &inputs()[..3])[..]);
            b[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
            super::write_crc(&mut b);
            let batch = RecordBatch::parse(b.freeze()).unwrap();
            let all: Vec<_> = batch.records(MIB).unwrap().collect();
            assert_eq!(all.len(), 4);
            assert_eq!(all[3], Err(RecordsError::RecordCountMismatch { declared: 1_000_000, actual: 3 }));
            assert_eq!(
                batch.validate(MIB).unwrap_err(),
                RecordsError::RecordCountMismatch { declared: 1_000_000, actual: 3 }
            );
        }
    }

    #[test]
    fn negative_record_count_is_an_error() {
        let mut b = BytesMut::from(&build(Compression::None, &inputs()[..3])[..]);
        b[57..61].copy_from_slice(&(-2i32).to_be_bytes());
        let batch = RecordBatch::parse(b.freeze()).unwrap();
        assert_eq!(batch.records(MIB).unwrap_err(), RecordsError::BadRecordCount(-2));
    }

    #[test]
    fn truncated_records_are_an_error() {
        // Cut the last record short and fix up the lengths so only the records are wrong.
        let bytes = build(Compression::None, &inputs()[..3]);
        let mut b = BytesMut::from(&bytes[..bytes.len() - 3]);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        super::write_crc(&mut b);
        let batch = RecordBatch::parse(b.freeze()).unwrap();
        batch.verify_crc().unwrap();
        let all: Vec<_> = batch.records(MIB).unwrap().collect();
        assert!(all[0].is_ok() && all[1].is_ok());
        assert!(matches!(all[2], Err(RecordsError::Truncated { .. })));
        assert!(matches!(batch.validate(MIB), Err(RecordsError::Truncated { .. })));
        // A compressed payload cut short fails to decompress.
        let bytes = build(Compression::Zstd, &inputs()[..30]);
        let mut b = BytesMut::from(&bytes[..bytes.len() - 5]);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let batch = RecordBatch::parse(b.freeze()).unwrap();
        assert!(matches!(batch.records(MIB), Err(RecordsError::Decompression(Compression::Zstd, _))));
    }

    #[test]
    fn offset_delta_gaps_fail_validation() {
        let mut w = BytesMut::new();
        w.resize(HEADER_SIZE, 0);
        encode_record(&mut w, 0, 0, None, Some(b"a"), &[]).unwrap();
        encode_record(&mut w, 0, 5, None, Some(b"b"), &[]).unwrap();
        let header = BatchHeader {
            base_offset: 0,
            batch_length: (w.len() - LOG_OVERHEAD) as i32,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: Attributes(0),
            last_offset_delta: 5,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 2,
        };
        header.write(&mut w);
        write_crc(&mut w);
        let batch = RecordBatch::parse(w.freeze()).unwrap();
        assert_eq!(
            batch.validate(MIB).unwrap_err(),
            RecordsError::OffsetDeltaMismatch { expected: 1, actual: 5 }
        );
    }

    #[test]
    fn compressed_bomb_batches_are_refused() {
        // A batch whose payload inflates to 100 MiB of zeros; the cap is 1 MiB.
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BytesMut::from(&BatchBuilder::new(codec).build().unwrap()[..HEADER_SIZE]);
            b.extend_from_slice(&super::super::compression::tests::bomb(codec, 100));
            let len = (b.len() - LOG_OVERHEAD) as i32;
            b[8..12].copy_from_slice(&len.to_be_bytes());
            b[57..61].copy_from_slice(&1i32.to_be_bytes());
            write_crc(&mut b);
            let batch = RecordBatch::parse(b.freeze()).unwrap();
            batch.verify_crc().unwrap();
            let started = std::time::Instant::now();
            assert_eq!(
                batch.records(MIB).unwrap_err(),
                RecordsError::DecompressedTooLarge { cap: MIB },
                "{codec}"
            );
            assert_eq!(
                batch.validate(MIB).unwrap_err(),
                RecordsError::DecompressedTooLarge { cap: MIB },
                "{codec}"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{codec}: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn assign_offsets_rebases_every_batch_and_keeps_crcs() {
        let inputs = inputs();
        let mut blob = BytesMut::new();
        for (codec, n) in [(Compression::None, 3), (Compression::Gzip, 5), (Compression::Zstd, 1)] {
            blob.extend_from_slice(&build(codec, &inputs[..n]));
        }
        let next = super::super::batch::assign_offsets(&mut blob, 500, Some(9)).unwrap();
        assert_eq!(next, 509);
        let got: Vec<_> = batches(blob.clone().freeze(), TailMode::Strict).collect::<Result<_>>().unwrap();
        let bases: Vec<i64> = got.iter().map(|b| b.header().base_offset).collect();
        assert_eq!(bases, vec![500, 503, 508]);
        for b in &got {
            b.verify_crc().unwrap();
            assert_eq!(b.header().partition_leader_epoch, 9);
        }
        // A cut blob is refused.
        let cut = blob.len() - 1;
        assert!(super::super::batch::assign_offsets(&mut blob[..cut], 0, None).is_err());
        // Patching through BytesMut works too.
        let mut one = BytesMut::from(&build(Compression::Snappy, &inputs[..2])[..]);
        set_base_offset(&mut one, i64::MAX - 1).unwrap();
        RecordBatch::parse(one.freeze()).unwrap().validate(MIB).unwrap();
    }
}
