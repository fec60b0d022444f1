//! Records inside a magic-2 batch: decoding one record and iterating a batch's
//! (decompressed) record data.
//!
//! A record is: varint length, then within that length an int8 attributes,
//! varlong timestamp delta, varint offset delta, key and value (varint length,
//! -1 = null), a varint header count and the headers (varint key length and
//! key, varint value length and value, -1 = null). Keys, values and header
//! fields are zero-copy slices of the data they were decoded from.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::wire::{
    i8 as get_i8, put_varint, put_varlong, take, varint, varint_len, varlong, varlong_len,
};

use super::error::{RecordsError, Result};

/// A record header: a key (UTF-8 in Kafka's clients, not checked here) and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key's bytes.
    pub key: Bytes,
    /// The header value; `None` is null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from a key and an optional value.
    pub fn new(key: impl Into<Bytes>, value: Option<Bytes>) -> Header {
        Header { key: key.into(), value }
    }

    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// One decoded record of a magic-2 batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's own attribute byte (unused by Kafka so far).
    pub attributes: i8,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// The fewest bytes a record can take: a length and six one-byte fields.
pub const MIN_RECORD_SIZE: usize = 7;

/// The fewest bytes a header can take: two one-byte lengths.
const MIN_HEADER_SIZE: usize = 2;

impl Record {
    /// The record's absolute offset given its batch's base offset (wrapping, as Java's long arithmetic).
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.wrapping_add(i64::from(self.offset_delta))
    }

    /// The record's timestamp given its batch's base timestamp (wrapping, as Java's long arithmetic).
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        base_timestamp.wrapping_add(self.timestamp_delta)
    }

    /// Decodes one length-prefixed record from the front of `r`.
    pub fn decode(r: &mut Bytes) -> Result<Record> {
        let len = varint(r)?;
        let declared = usize::try_from(len).map_err(|_| RecordsError::BadRecordLength(i64::from(len)))?;
        let mut body = take(r, declared as u64)?;
        let attributes = get_i8(&mut body)?;
        let timestamp_delta = varlong(&mut body)?;
        let offset_delta = varint(&mut body)?;
        let key = nullable(&mut body, "key")?;
        let value = nullable(&mut body, "value")?;
        let count = varint(&mut body)?;
        let count = usize::try_from(count).map_err(|_| RecordsError::BadHeaderCount(count))?;
        // Checked against what remains before reserving, so a huge count cannot allocate.
        if count > body.remaining() / MIN_HEADER_SIZE {
            return Err(RecordsError::BadHeaderCount(count as i32));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let key = nullable(&mut body, "header key")?
                .ok_or(RecordsError::NegativeLength { field: "header key", len: -1 })?;
            let value = nullable(&mut body, "header value")?;
            headers.push(Header { key, value });
        }
        if body.has_remaining() {
            return Err(RecordsError::RecordLengthMismatch { declared, used: declared - body.remaining() });
        }
        Ok(Record { attributes, timestamp_delta, offset_delta, key, value, headers })
    }
}

/// Reads a varint-length-prefixed byte string; -1 is null, other negatives are errors.
fn nullable(r: &mut Bytes, field: &'static str) -> Result<Option<Bytes>> {
    match varint(r)? {
        -1 => Ok(None),
        len if len < 0 => Err(RecordsError::NegativeLength { field, len }),
        len => Ok(Some(take(r, len as u64)?)),
    }
}

fn nullable_len(b: Option<&[u8]>) -> Result<usize> {
    match b {
        None => Ok(varint_len(-1)),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| RecordsError::BatchTooLarge(b.len()))?;
            Ok(varint_len(n) + b.len())
        }
    }
}

fn put_nullable(w: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(w, -1),
        Some(b) => {
            // Lengths were checked by `nullable_len` before anything was written.
            put_varint(w, b.len() as i32);
            w.put_slice(b);
        }
    }
}

/// Encodes one record (with its length prefix) onto `w`.
pub(crate) fn encode_record(
    w: &mut BytesMut,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> Result<()> {
    let too_large = |n: usize| RecordsError::BatchTooLarge(n);
    let header_count = i32::try_from(headers.len()).map_err(|_| RecordsError::TooManyRecords)?;
    let mut body = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    body = body.checked_add(nullable_len(key)?).ok_or(too_large(usize::MAX))?;
    body = body.checked_add(nullable_len(value)?).ok_or(too_large(usize::MAX))?;
    body = body.checked_add(varint_len(header_count)).ok_or(too_large(usize::MAX))?;
    for h in headers {
        body = body.checked_add(nullable_len(Some(&h.key))?).ok_or(too_large(usize::MAX))?;
        body = body.checked_add(nullable_len(h.value.as_deref())?).ok_or(too_large(usize::MAX))?;
    }
    let len = i32::try_from(body).map_err(|_| too_large(body))?;
    w.reserve(varint_len(len) + body);
    put_varint(w, len);
    w.put_i8(0);
    put_varlong(w, timestamp_delta);
    put_varint(w, offset_delta);
    put_nullable(w, key);
    put_nullable(w, value);
    put_varint(w, header_count);
    for h in headers {
        put_nullable(w, Some(&h.key));
        put_nullable(w, h.value.as_deref());
    }
    Ok(())
}

/// Iterates the records of one batch's (decompressed) record data.
///
/// Yields exactly the declared number of records; data that ends early is a
/// `RecordCountMismatch`, data left after the last record is `TrailingBytes`.
/// After the first error the iterator ends.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    declared: i32,
    index: i32,
    failed: bool,
}

impl Records {
    /// Iterates `declared` records in `data` (a negative count is an error).
    pub fn new(data: Bytes, declared: i32) -> Result<Records> {
        if declared < 0 {
            return Err(RecordsError::BadRecordCount(declared));
        }
        Ok(Records { data, declared, index: 0, failed: false })
    }

    /// The number of records the batch declares.
    pub fn declared_count(&self) -> i32 {
        self.declared
    }

    /// The record data not yet decoded.
    pub fn remaining_data(&self) -> &Bytes {
        &self.data
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        let res = if self.index >= self.declared {
            if self.data.is_empty() {
                return None;
            }
            Err(RecordsError::TrailingBytes(self.data.len()))
        } else if self.data.is_empty() {
            Err(RecordsError::RecordCountMismatch { declared: self.declared, actual: self.index })
        } else {
            Record::decode(&mut self.data)
        };
        match res {
            Ok(r) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        // At most one record per MIN_RECORD_SIZE bytes, plus one possible error.
        let left = (self.declared - self.index).max(0) as usize;
        (0, Some(left.min(self.data.len() / MIN_RECORD_SIZE) + 1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn encoded(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> Bytes {
        let mut w = BytesMut::new();
        encode_record(&mut w, -5, 3, key, value, headers).unwrap();
        w.freeze()
    }

    #[test]
    fn a_record_round_trips_zero_copy() {
        let headers =
            vec![Header::new(&b"h1"[..], Some(Bytes::from_static(b"v1"))), Header::new(&b""[..], None)];
        let data = encoded(Some(b"key"), None, &headers);
        let mut r = data.clone();
        let rec = Record::decode(&mut r).unwrap();
        assert!(r.is_empty());
        assert_eq!(rec.timestamp_delta, -5);
        assert_eq!(rec.offset_delta, 3);
        assert_eq!(rec.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(rec.value, None);
        assert_eq!(rec.headers, headers);
        // The key points into the input.
        let key = rec.key.unwrap();
        let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
        assert!(range.contains(&(key.as_ptr() as usize)));
    }

    #[test]
    fn negative_and_huge_lengths_are_errors() {
        // Record length -2.
        let mut w = BytesMut::new();
        put_varint(&mut w, -2);
        assert_eq!(Record::decode(&mut w.freeze()).unwrap_err(), RecordsError::BadRecordLength(-2));
        // Record length i32::MAX with a few bytes behind it.
        let mut w = BytesMut::new();
        put_varint(&mut w, i32::MAX);
        w.put_slice(&[0; 10]);
        assert!(matches!(Record::decode(&mut w.freeze()).unwrap_err(), RecordsError::Truncated { .. }));
        // Key length -7 inside a well-sized record.
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -7);
        let mut w = BytesMut::new();
        put_varint(&mut w, body.len() as i32);
        w.put_slice(&body);
        assert_eq!(
            Record::decode(&mut w.freeze()).unwrap_err(),
            RecordsError::NegativeLength { field: "key", len: -7 }
        );
        // Value length larger than the record.
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, 1000);
        let mut w = BytesMut::new();
        put_varint(&mut w, body.len() as i32);
        w.put_slice(&body);
        w.put_slice(&[0; 2000]);
        assert!(matches!(Record::decode(&mut w.freeze()).unwrap_err(), RecordsError::Truncated { .. }));
    }

    #[test]
    fn huge_header_counts_are_refused_before_allocating() {
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, i32::MAX);
        let mut w = BytesMut::new();
        put_varint(&mut w, body.len() as i32);
        w.put_slice(&body);
        assert_eq!(Record::decode(&mut w.freeze()).unwrap_err(), RecordsError::BadHeaderCount(i32::MAX));
        // And a negative count.
        let last = body.len() - 5;
        body.truncate(last);
        put_varint(&mut body, -3);
        let mut w = BytesMut::new();
        put_varint(&mut w, body.len() as i32);
        w.put_slice(&body);
        assert_eq!(Record::decode(&mut w.freeze()).unwrap_err(), RecordsError::BadHeaderCount(-3));
    }

    #[test]
    fn null_header_keys_are_errors() {
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, 1);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        let mut w = BytesMut::new();
        put_varint(&mut w, body.len() as i32);
        w.put_slice(&body);
        assert_eq!(
            Record::decode(&mut w.freeze()).unwrap_err(),
            RecordsError::NegativeLength { field: "header key", len: -1 }
        );
    }

    #[test]
    fn a_record_longer_than_its_fields_is_an_error() {
        let data = encoded(Some(b"k"), Some(b"v"), &[]);
        let mut w = BytesMut::new();
        // Declare two bytes more and pad.
        let mut r = data.clone();
        let len = varint(&mut r).unwrap();
        put_varint(&mut w, len + 2);
        w.put_slice(&r);
        w.put_slice(&[0, 0]);
        assert_eq!(
            Record::decode(&mut w.freeze()).unwrap_err(),
            RecordsError::RecordLengthMismatch { declared: len as usize + 2, used: len as usize }
        );
    }

    #[test]
    fn the_iterator_checks_the_count_both_ways() {
        let mut w = BytesMut::new();
        for i in 0..3 {
            encode_record(&mut w, 0, i, None, Some(b"v"), &[]).unwrap();
        }
        let data = w.freeze();
        assert_eq!(Records::new(data.clone(), 3).unwrap().collect::<Result<Vec<_>>>().unwrap().len(), 3);
        let more: Vec<_> = Records::new(data.clone(), 5).unwrap().collect();
        assert_eq!(more.len(), 4);
        assert_eq!(more[3], Err(RecordsError::RecordCountMismatch { declared: 5, actual: 3 }));
        let fewer: Vec<_> = Records::new(data.clone(), 2).unwrap().collect();
        assert_eq!(fewer.len(), 3);
        assert!(matches!(fewer[2], Err(RecordsError::TrailingBytes(_))));
        assert_eq!(Records::new(data, -1).unwrap_err(), RecordsError::BadRecordCount(-1));
        // A count far larger than the data stops at the data's end, allocating nothing up front.
        let huge: Vec<_> = Records::new(Bytes::new(), i32::MAX).unwrap().collect();
        assert_eq!(huge, vec![Err(RecordsError::RecordCountMismatch { declared: i32::MAX, actual: 0 })]);
    }
}
