//! Legacy message sets (magic 0 and 1), as Produce v0–v2 clients send them:
//! decoding (with compressed wrapper messages) and conversion to one magic-2 batch.
//!
//! A message set is a sequence of `offset i64, size i32, message`; a message is
//! `crc u32` (CRC32 IEEE of the rest), `magic i8`, `attributes i8`, a
//! `timestamp i64` for magic 1 only, then key and value (int32 length, -1 = null).
//! A compressed message (codec in the low attribute bits) wraps a whole
//! message set in its value; with magic 1 the inner offsets are relative and
//! the wrapper's offset is that of the last inner message.

use bytes::{Buf, Bytes};

use crate::codec::wire::{i32 as get_i32, i64 as get_i64, i8 as get_i8, take, u32 as get_u32};

use super::batch::TimestampType;
use super::builder::BatchBuilder;
use super::compression::{decompress_legacy, Compression};
use super::error::{RecordsError, Result};

/// crc, magic, attributes, key length, value length.
const MIN_V0_SIZE: usize = 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds the timestamp.
const MIN_V1_SIZE: usize = MIN_V0_SIZE + 8;
const TIMESTAMP_TYPE_BIT: i8 = 0x08;

/// One logical message of a legacy message set (wrappers already unpacked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMessage {
    /// The absolute offset (as the client wrote it; a broker reassigns offsets).
    pub offset: i64,
    /// 0 or 1.
    pub magic: i8,
    /// The codec of the wrapper this message came from, or `None`.
    pub compression: Compression,
    /// The timestamp; -1 for magic 0.
    pub timestamp: i64,
    /// How the timestamp was set (CreateTime for magic 0).
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
}

/// A message exactly as stored, before any wrapper is unpacked.
struct Shallow {
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

impl Shallow {
    fn timestamp_type(&self) -> TimestampType {
        if self.magic > 0 && self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

fn nullable_bytes(r: &mut Bytes, field: &'static str) -> Result<Option<Bytes>> {
    match get_i32(r)? {
        -1 => Ok(None),
        len if len < 0 => Err(RecordsError::NegativeLength { field, len }),
        len => Ok(Some(take(r, len as u64)?)),
    }
}

/// Decodes the next message of a set; the whole message must be there.
fn next_shallow(r: &mut Bytes) -> Result<Shallow> {
    let offset = get_i64(r)?;
    let size = get_i32(r)?;
    let declared = usize::try_from(size).map_err(|_| RecordsError::BadMessageSize(size))?;
    if declared < MIN_V0_SIZE {
        return Err(RecordsError::BadMessageSize(size));
    }
    let mut m = take(r, declared as u64)?;
    let crc = get_u32(&mut m)?;
    let magic = m.first().map(|&b| b as i8).unwrap_or(-1);
    if magic != 0 && magic != 1 {
        return Err(RecordsError::BadMagic(magic));
    }
    if magic == 1 && declared < MIN_V1_SIZE {
        return Err(RecordsError::BadMessageSize(size));
    }
    let actual = crc32fast::hash(&m);
    if actual != crc {
        return Err(RecordsError::CrcMismatch { expected: crc, actual });
    }
    get_i8(&mut m)?;
    let attributes = get_i8(&mut m)?;
    let timestamp = if magic == 1 { get_i64(&mut m)? } else { -1 };
    let key = nullable_bytes(&mut m, "key")?;
    let value = nullable_bytes(&mut m, "value")?;
    if m.has_remaining() {
        return Err(RecordsError::RecordLengthMismatch { declared, used: declared - m.remaining() });
    }
    Ok(Shallow { offset, magic, attributes, timestamp, key, value })
}

/// Decodes a whole legacy message set, unpacking compressed wrappers. The
/// decompressed data of all wrappers together is capped at `max_decompressed`.
/// A partial message at the end is an error.
pub fn decode_message_set(blob: Bytes, max_decompressed: usize) -> Result<Vec<LegacyMessage>> {
    let mut out = Vec::new();
    let mut budget = max_decompressed;
    let mut r = blob;
    while r.has_remaining() {
        let outer = next_shallow(&mut r)?;
        let codec = Compression::from_id((outer.attributes & 0x07) as u8)?;
        if codec == Compression::None {
            out.push(LegacyMessage {
                offset: outer.offset,
                magic: outer.magic,
                compression: codec,
                timestamp: outer.timestamp,
                timestamp_type: outer.timestamp_type(),
                key: outer.key,
                value: outer.value,
            });
            continue;
        }
        if codec == Compression::Zstd {
            // zstd came with magic 2; no legacy message may use it.
            return Err(RecordsError::UnknownCompression(codec.id()));
        }
        let wrapped = outer.value.as_ref().ok_or(RecordsError::NullWrapperValue)?;
        let data = decompress_legacy(codec, wrapped, outer.magic, budget).map_err(|e| match e {
            RecordsError::DecompressedTooLarge { .. } => {
                RecordsError::DecompressedTooLarge { cap: max_decompressed }
            }
            other => other,
        })?;
        budget -= data.len().min(budget);
        let mut inner_bytes = Bytes::from(data);
        let first = out.len();
        while inner_bytes.has_remaining() {
            let inner = next_shallow(&mut inner_bytes)?;
            if inner.attributes & 0x07 != 0 {
                return Err(RecordsError::NestedCompression);
            }
            if inner.magic != outer.magic {
                return Err(RecordsError::MagicMismatch { outer: outer.magic, inner: inner.magic });
            }
            let (timestamp, timestamp_type) = match outer.timestamp_type() {
                // The broker stamped the wrapper; inner timestamps are stale.
                TimestampType::LogAppendTime => (outer.timestamp, TimestampType::LogAppendTime),
                TimestampType::CreateTime => (inner.timestamp, TimestampType::CreateTime),
            };
            out.push(LegacyMessage {
                offset: inner.offset,
                magic: inner.magic,
                compression: codec,
                timestamp,
                timestamp_type,
                key: inner.key,
                value: inner.value,
            });
        }
        // Magic 1 wrappers carry the last inner message's absolute offset and
        // the inner offsets count from 0; magic 0 inner offsets are absolute.
        if outer.magic == 1 {
            if let Some(last) = out[first..].last().map(|m| m.offset) {
                let shift = outer.offset.wrapping_sub(last);
                for m in &mut out[first..] {
                    m.offset = m.offset.wrapping_add(shift);
                }
            }
        }
    }
    Ok(out)
}

/// Converts a legacy message set into one magic-2 batch (offset deltas 0..n,
/// no producer id), compressed with `target`, or with the set's own codec when
/// `target` is `None` (Kafka's `compression.type=producer`).
pub fn convert_message_set(
    blob: Bytes,
    max_decompressed: usize,
    target: Option<Compression>,
) -> Result<Bytes> {
    let messages = decode_message_set(blob, max_decompressed)?;
    let first = messages.first().ok_or(RecordsError::EmptyMessageSet)?;
    let codec = target.unwrap_or(first.compression);
    let mut b = BatchBuilder::new(codec).timestamp_type(first.timestamp_type);
    for m in &messages {
        b.push(m.timestamp, m.key.as_deref(), m.value.as_deref(), &[])?;
    }
    b.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::super::batch::RecordBatch;
    use super::super::compression::compress;
    use super::*;

    const MIB: usize = 1024 * 1024;

    // A tiny legacy encoder, written from the format description.

    fn message(
        magic: i8,
        attributes: i8,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = BytesMut::new();
        body.put_i8(magic);
        body.put_i8(attributes);
        if magic == 1 {
            body.put_i64(timestamp);
        }
        for field in [key, value] {
            match field {
                None => body.put_i32(-1),
                Some(b) => {
                    body.put_i32(b.len() as i32);
                    body.put_slice(b);
                }
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        m.extend_from_slice(&body);
        m
    }

    fn entry(set: &mut Vec<u8>, offset: i64, message: &[u8]) {
        set.extend_from_slice(&offset.to_be_bytes());
        set.extend_from_slice(&(message.len() as i32).to_be_bytes());
        set.extend_from_slice(message);
    }

    type Kv = (Option<&'static [u8]>, Option<&'static [u8]>, i64);

    const MESSAGES: [Kv; 3] =
        [(Some(b"k0"), Some(b"v0"), 1000), (None, Some(b"v1"), 1001), (Some(b"k2"), None, 999)];

    fn plain_set(magic: i8, first_offset: i64) -> Vec<u8> {
        let mut set = Vec::new();
        for (i, (k, v, ts)) in MESSAGES.iter().enumerate() {
            entry(&mut set, first_offset + i as i64, &message(magic, 0, *ts, *k, *v));
        }
        set
    }

    fn wrapped_set(magic: i8, codec: Compression, wrapper_attr_extra: i8, wrapper_ts: i64) -> Vec<u8> {
        // Magic 1 inner offsets are relative (0..n); magic 0 ones absolute.
        let inner = plain_set(magic, 0);
        let mut c = BytesMut::new();
        compress(codec, &inner, &mut c).unwrap();
        let wrapper = message(magic, codec.id() as i8 | wrapper_attr_extra, wrapper_ts, None, Some(&c));
        let mut set = Vec::new();
        entry(&mut set, 2, &wrapper);
        set
    }

    fn converted(set: Vec<u8>) -> (RecordBatch, Vec<super::super::record::Record>) {
        let batch = RecordBatch::parse(convert_message_set(Bytes::from(set), MIB, None).unwrap()).unwrap();
        batch.validate(MIB).unwrap();
        let records = batch.records(MIB).unwrap().collect::<Result<Vec<_>>>().unwrap();
        (batch, records)
    }

    fn check_records(batch: &RecordBatch, records: &[super::super::record::Record], magic: i8) {
        assert_eq!(records.len(), 3);
        let h = batch.header();
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (-1, -1, -1));
        for (i, (r, (k, v, ts))) in records.iter().zip(MESSAGES).enumerate() {
            assert_eq!(r.offset_delta, i as i32);
            assert_eq!(r.key.as_deref(), k);
            assert_eq!(r.value.as_deref(), v);
            assert_eq!(r.timestamp(h.base_timestamp), if magic == 0 { -1 } else { ts });
            assert!(r.headers.is_empty());
        }
    }

    #[test]
    fn v0_uncompressed_converts() {
        let (batch, records) = converted(plain_set(0, 0));
        check_records(&batch, &records, 0);
        assert_eq!(batch.header().compression().unwrap(), Compression::None);
        assert_eq!(batch.header().max_timestamp, -1);
    }

    #[test]
    fn v1_uncompressed_converts() {
        let (batch, records) = converted(plain_set(1, 0));
        check_records(&batch, &records, 1);
        assert_eq!(batch.header().max_timestamp, 1001);
        assert_eq!(batch.header().attributes.timestamp_type(), TimestampType::CreateTime);
    }

    #[test]
    fn v0_and_v1_wrapped_convert_with_every_legacy_codec() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            for magic in [0, 1] {
                let (batch, records) = converted(wrapped_set(magic, codec, 0, 5555));
                check_records(&batch, &records, magic);
                // compression.type=producer keeps the codec.
                assert_eq!(batch.header().compression().unwrap(), codec, "{codec} v{magic}");
            }
        }
    }

    #[test]
    fn conversion_can_recompress() {
        let set = Bytes::from(wrapped_set(1, Compression::Gzip, 0, 0));
        let batch =
            RecordBatch::parse(convert_message_set(set, MIB, Some(Compression::Zstd)).unwrap()).unwrap();
        assert_eq!(batch.header().compression().unwrap(), Compression::Zstd);
        assert_eq!(batch.records(MIB).unwrap().count(), 3);
    }

    #[test]
    fn magic_1_wrapper_offsets_are_relative() {
        let msgs = decode_message_set(Bytes::from(wrapped_set(1, Compression::Gzip, 0, 0)), MIB).unwrap();
        // The wrapper sits at offset 2 = the last inner message.
        assert_eq!(msgs.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![0, 1, 2]);
        let mut set = Vec::new();
        let inner = plain_set(1, 0);
        let mut c = BytesMut::new();
        compress(Compression::Gzip, &inner, &mut c).unwrap();
        entry(&mut set, 41, &message(1, 1, 0, None, Some(&c)));
        let msgs = decode_message_set(Bytes::from(set), MIB).unwrap();
        assert_eq!(msgs.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![39, 40, 41]);
        // Magic 0 inner offsets are taken as written.
        let msgs = decode_message_set(Bytes::from(wrapped_set(0, Compression::Gzip, 0, 0)), MIB).unwrap();
        assert_eq!(msgs.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn log_append_time_wrappers_stamp_their_messages() {
        let set = Bytes::from(wrapped_set(1, Compression::Gzip, TIMESTAMP_TYPE_BIT, 7777));
        let msgs = decode_message_set(set.clone(), MIB).unwrap();
        assert!(msgs.iter().all(|m| m.timestamp == 7777 && m.timestamp_type == TimestampType::LogAppendTime));
        let batch = RecordBatch::parse(convert_message_set(set, MIB, None).unwrap()).unwrap();
        assert_eq!(batch.header().attributes.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.header().max_timestamp, 7777);
    }

    #[test]
    fn uncompressed_values_are_zero_copy() {
        let set = Bytes::from(plain_set(1, 0));
        let msgs = decode_message_set(set.clone(), MIB).unwrap();
        let v = msgs[0].value.as_ref().unwrap();
        assert!((set.as_ptr() as usize..set.as_ptr() as usize + set.len()).contains(&(v.as_ptr() as usize)));
    }

    #[test]
    fn corrupt_crc_is_detected() {
        let mut set = plain_set(0, 0);
        let last = set.len() - 1;
        set[last] ^= 1;
        assert!(matches!(decode_message_set(Bytes::from(set), MIB), Err(RecordsError::CrcMismatch { .. })));
    }

    #[test]
    fn truncation_and_bad_sizes_are_errors() {
        let set = plain_set(1, 0);
        for cut in [1, 8, 12, 20, set.len() - 1] {
            let r = decode_message_set(Bytes::copy_from_slice(&set[..cut]), MIB);
            assert!(matches!(r, Err(RecordsError::Truncated { .. })), "{cut}: {r:?}");
        }
        for size in [-1i32, 0, 13, i32::MIN] {
            let mut bad = set.clone();
            bad[8..12].copy_from_slice(&size.to_be_bytes());
            assert_eq!(
                decode_message_set(Bytes::from(bad), MIB).unwrap_err(),
                RecordsError::BadMessageSize(size)
            );
        }
        // A v1 message too short for its timestamp.
        let mut bad = Vec::new();
        entry(&mut bad, 0, &message(0, 0, 0, None, None));
        bad[16] = 1; // magic byte → 1, size 14 < 22
        assert_eq!(decode_message_set(Bytes::from(bad), MIB).unwrap_err(), RecordsError::BadMessageSize(14));
        // A huge key length.
        let mut m = message(0, 0, 0, Some(b"abc"), None);
        m[6..10].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&m[4..]);
        m[..4].copy_from_slice(&crc.to_be_bytes());
        let mut bad = Vec::new();
        entry(&mut bad, 0, &m);
        assert!(matches!(decode_message_set(Bytes::from(bad), MIB), Err(RecordsError::Truncated { .. })));
        // A negative value length.
        let mut m = message(0, 0, 0, None, None);
        m[10..14].copy_from_slice(&(-9i32).to_be_bytes());
        let crc = crc32fast::hash(&m[4..]);
        m[..4].copy_from_slice(&crc.to_be_bytes());
        let mut bad = Vec::new();
        entry(&mut bad, 0, &m);
        assert_eq!(
            decode_message_set(Bytes::from(bad), MIB).unwrap_err(),
            RecordsError::NegativeLength { field: "value", len: -9 }
        );
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut set = plain_set(0, 0);
        set[16] = 2;
        assert_eq!(decode_message_set(Bytes::from(set), MIB).unwrap_err(), RecordsError::BadMagic(2));
    }

    #[test]
    fn nested_compression_and_mixed_magic_are_errors() {
        let inner_wrapped = wrapped_set(1, Compression::Gzip, 0, 0);
        let mut c = BytesMut::new();
        compress(Compression::Gzip, &inner_wrapped, &mut c).unwrap();
        let mut set = Vec::new();
        entry(&mut set, 0, &message(1, 1, 0, None, Some(&c)));
        assert_eq!(decode_message_set(Bytes::from(set), MIB).unwrap_err(), RecordsError::NestedCompression);

        let inner = plain_set(0, 0);
        let mut c = BytesMut::new();
        compress(Compression::Gzip, &inner, &mut c).unwrap();
        let mut set = Vec::new();
        entry(&mut set, 0, &message(1, 1, 0, None, Some(&c)));
        assert_eq!(
            decode_message_set(Bytes::from(set), MIB).unwrap_err(),
            RecordsError::MagicMismatch { outer: 1, inner: 0 }
        );

        let mut set = Vec::new();
        entry(&mut set, 0, &message(1, 1, 0, None, None));
        assert_eq!(decode_message_set(Bytes::from(set), MIB).unwrap_err(), RecordsError::NullWrapperValue);
    }

    #[test]
    fn unknown_and_zstd_codecs_are_errors() {
        for attr in [4i8, 5, 6, 7] {
            let mut set = Vec::new();
            entry(&mut set, 0, &message(1, attr, 0, None, Some(b"x")));
            assert_eq!(
                decode_message_set(Bytes::from(set), MIB).unwrap_err(),
                RecordsError::UnknownCompression(attr as u8)
            );
        }
    }

    #[test]
    fn wrapped_bombs_are_capped_across_the_whole_set() {
        let mut big = Vec::new();
        let value = vec![0u8; 600 * 1024];
        entry(&mut big, 0, &message(1, 0, 0, None, Some(&value)));
        let mut c = BytesMut::new();
        compress(Compression::Gzip, &big, &mut c).unwrap();
        let wrapper = message(1, 1, 0, None, Some(&c));
        let mut set = Vec::new();
        entry(&mut set, 0, &wrapper);
        assert_eq!(decode_message_set(Bytes::from(set.clone()), MIB).unwrap().len(), 1);
        // Two such wrappers together pass the cap.
        entry(&mut set, 1, &wrapper);
        assert_eq!(
            decode_message_set(Bytes::from(set), MIB).unwrap_err(),
            RecordsError::DecompressedTooLarge { cap: MIB }
        );
    }

    #[test]
    fn empty_sets_do_not_convert() {
        assert_eq!(convert_message_set(Bytes::new(), MIB, None).unwrap_err(), RecordsError::EmptyMessageSet);
    }

    #[test]
    fn magic_0_lz4_with_kafkas_broken_header_checksum_is_accepted() {
        let inner = plain_set(0, 0);
        let mut c = BytesMut::new();
        compress(Compression::Lz4, &inner, &mut c).unwrap();
        c[6] = c[6].wrapping_add(1); // a different HC, as Kafka 0.8's writer computed it
        let mut set = Vec::new();
        entry(&mut set, 0, &message(0, 3, 0, None, Some(&c)));
        assert_eq!(decode_message_set(Bytes::from(set), MIB).unwrap().len(), 3);
    }
}
