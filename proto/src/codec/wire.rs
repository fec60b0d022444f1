//! Kafka's primitive wire types: fixed-width integers, varints, (compact,
//! nullable) strings and bytes, array counts and uuids.
//!
//! Decoders read from a `Bytes` cursor and never panic: every read checks what
//! remains first, and every declared length or count is checked against the
//! bytes that remain before anything is allocated. Byte payloads are returned as
//! zero-copy slices of the input.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};

/// A 16-byte Kafka UUID (topic ids and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero uuid Kafka uses for "no id".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Builds a uuid from its two 64-bit halves (most significant first).
    pub fn from_u64_pair(hi: u64, lo: u64) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        Uuid(b)
    }

    /// True for the all-zero uuid.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

type R<T> = Result<T, DecodeError>;

#[inline]
fn truncated(needed: u64, remaining: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Truncated { needed, remaining })
}

/// Fails unless at least `n` bytes remain.
#[inline]
pub fn need(r: &Bytes, n: usize) -> R<()> {
    if r.remaining() < n {
        return Err(truncated(n as u64, r.remaining()));
    }
    Ok(())
}

/// Takes the next `n` bytes as a zero-copy slice.
#[inline]
pub fn take(r: &mut Bytes, n: u64) -> R<Bytes> {
    if n > r.remaining() as u64 {
        return Err(truncated(n, r.remaining()));
    }
    Ok(r.split_to(n as usize))
}

macro_rules! fixed {
    ($name:ident, $t:ty, $n:expr, $get:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $name(r: &mut Bytes) -> R<$t> {
            need(r, $n)?;
            Ok(r.$get())
        }
    };
}
fixed!(i8, i8, 1, get_i8);
fixed!(i16, i16, 2, get_i16);
fixed!(i32, i32, 4, get_i32);
fixed!(i64, i64, 8, get_i64);
fixed!(u16, u16, 2, get_u16);
fixed!(u32, u32, 4, get_u32);
fixed!(f64, f64, 8, get_f64);

/// Reads a boolean (any non-zero byte is true, as in Kafka).
#[inline]
pub fn bool(r: &mut Bytes) -> R<bool> {
    Ok(i8(r)? != 0)
}

/// Reads a 16-byte uuid.
#[inline]
pub fn uuid(r: &mut Bytes) -> R<Uuid> {
    need(r, 16)?;
    let mut b = [0u8; 16];
    r.copy_to_slice(&mut b);
    Ok(Uuid(b))
}

/// Reads an unsigned LEB128 varint of at most 5 bytes (Kafka's unsigned varint).
#[inline]
pub fn uvarint(r: &mut Bytes) -> R<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(r, 1)?;
        let b = r.get_u8();
        if i == 4 && b > 0x0f {
            return Err(DecodeErrorKind::VarintTooLong.into());
        }
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeErrorKind::VarintTooLong.into())
}

/// Reads an unsigned LEB128 varint of at most 10 bytes.
#[inline]
pub fn uvarlong(r: &mut Bytes) -> R<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(r, 1)?;
        let b = r.get_u8();
        if i == 9 && b > 0x01 {
            return Err(DecodeErrorKind::VarintTooLong.into());
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeErrorKind::VarintTooLong.into())
}

/// Reads a zigzag-encoded signed 32-bit varint (record fields).
#[inline]
pub fn varint(r: &mut Bytes) -> R<i32> {
    let v = uvarint(r)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Reads a zigzag-encoded signed 64-bit varint (record fields).
#[inline]
pub fn varlong(r: &mut Bytes) -> R<i64> {
    let v = uvarlong(r)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Reads a length prefix: compact (uvarint of length+1, 0 = null) when
/// flexible, else int16 or int32 (-1 = null). `None` means null.
#[inline]
fn length(r: &mut Bytes, flexible: bool, wide: bool) -> R<Option<u64>> {
    if flexible {
        let n = uvarint(r)?;
        Ok(if n == 0 { None } else { Some(u64::from(n) - 1) })
    } else {
        let n = if wide { i64::from(i32(r)?) } else { i64::from(i16(r)?) };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeErrorKind::NegativeLength(n).into()),
            n => Ok(Some(n as u64)),
        }
    }
}

fn utf8(b: Bytes) -> R<String> {
    match std::str::from_utf8(&b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(DecodeErrorKind::InvalidUtf8.into()),
    }
}

/// Reads a nullable string.
#[inline]
pub fn nullable_string(r: &mut Bytes, flexible: bool) -> R<Option<String>> {
    match length(r, flexible, false)? {
        None => Ok(None),
        Some(n) => Ok(Some(utf8(take(r, n)?)?)),
    }
}

/// Reads a non-nullable string (null is an error).
#[inline]
pub fn string(r: &mut Bytes, flexible: bool) -> R<String> {
    nullable_string(r, flexible)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}

/// Reads nullable bytes as a zero-copy slice.
#[inline]
pub fn nullable_bytes(r: &mut Bytes, flexible: bool) -> R<Option<Bytes>> {
    match length(r, flexible, true)? {
        None => Ok(None),
        Some(n) => Ok(Some(take(r, n)?)),
    }
}

/// Reads non-nullable bytes as a zero-copy slice (null is an error).
#[inline]
pub fn bytes(r: &mut Bytes, flexible: bool) -> R<Bytes> {
    nullable_bytes(r, flexible)?.ok_or_else(|| DecodeErrorKind::UnexpectedNull.into())
}

/// Reads an array count; `None` is a null array. A count larger than the bytes
/// that remain is refused, so callers may reserve `count` elements.
#[inline]
pub fn array_len(r: &mut Bytes, flexible: bool) -> R<Option<usize>> {
    match length(r, flexible, true)? {
        None => Ok(None),
        Some(n) if n > r.remaining() as u64 => {
            Err(DecodeErrorKind::CountTooLarge { count: n, remaining: r.remaining() }.into())
        }
        Some(n) => Ok(Some(n as usize)),
    }
}

/// Skips a tagged-field section's unknown entry of `size` bytes.
#[inline]
pub fn skip(r: &mut Bytes, size: u64) -> R<()> {
    take(r, size).map(drop)
}

// ---- encoding ----

type W<T> = Result<T, EncodeError>;

/// Writes an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(w: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        w.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    w.put_u8(v as u8);
}

/// Writes an unsigned LEB128 varlong.
#[inline]
pub fn put_uvarlong(w: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        w.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    w.put_u8(v as u8);
}

/// Writes a zigzag signed varint.
#[inline]
pub fn put_varint(w: &mut BytesMut, v: i32) {
    put_uvarint(w, ((v << 1) ^ (v >> 31)) as u32);
}

/// Writes a zigzag signed varlong.
#[inline]
pub fn put_varlong(w: &mut BytesMut, v: i64) {
    put_uvarlong(w, ((v << 1) ^ (v >> 63)) as u64);
}

/// Number of bytes `put_uvarint(v)` writes.
#[inline]
pub fn uvarint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Number of bytes `put_varint(v)` writes.
#[inline]
pub fn varint_len(v: i32) -> usize {
    uvarint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Number of bytes `put_varlong(v)` writes.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

/// Writes a uuid.
#[inline]
pub fn put_uuid(w: &mut BytesMut, u: &Uuid) {
    w.put_slice(&u.0);
}

/// Writes a boolean as 0 or 1.
#[inline]
pub fn put_bool(w: &mut BytesMut, b: bool) {
    w.put_i8(b as i8);
}

#[inline]
fn put_length(w: &mut BytesMut, len: Option<usize>, flexible: bool, wide: bool) -> W<()> {
    if flexible {
        match len {
            None => put_uvarint(w, 0),
            Some(n) => {
                let n = u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or(EncodeErrorKind::TooLong(n))?;
                put_uvarint(w, n)
            }
        }
    } else if wide {
        match len {
            None => w.put_i32(-1),
            Some(n) => w.put_i32(i32::try_from(n).map_err(|_| EncodeErrorKind::TooLong(n))?),
        }
    } else {
        match len {
            None => w.put_i16(-1),
            Some(n) => w.put_i16(i16::try_from(n).map_err(|_| EncodeErrorKind::TooLong(n))?),
        }
    }
    Ok(())
}

/// Writes a nullable string.
#[inline]
pub fn put_nullable_string(w: &mut BytesMut, s: Option<&str>, flexible: bool) -> W<()> {
    put_length(w, s.map(str::len), flexible, false)?;
    if let Some(s) = s {
        w.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a string.
#[inline]
pub fn put_string(w: &mut BytesMut, s: &str, flexible: bool) -> W<()> {
    put_nullable_string(w, Some(s), flexible)
}

/// Writes nullable bytes.
#[inline]
pub fn put_nullable_bytes(w: &mut BytesMut, b: Option<&[u8]>, flexible: bool) -> W<()> {
    put_length(w, b.map(<[u8]>::len), flexible, true)?;
    if let Some(b) = b {
        w.put_slice(b);
    }
    Ok(())
}

/// Writes bytes.
#[inline]
pub fn put_bytes(w: &mut BytesMut, b: &[u8], flexible: bool) -> W<()> {
    put_nullable_bytes(w, Some(b), flexible)
}

/// Records at least this long are left out of the buffer, not copied, while
/// [`with_deferred_records`] is encoding into it.
pub const DEFER_MIN_RECORDS: usize = 16 * 1024;

struct DeferSink {
    /// Address of the buffer whose records are deferred (not a nested
    /// scratch buffer, such as a tagged field's).
    target: usize,
    chunks: Vec<(usize, Bytes)>,
}

std::thread_local! {
    // Thread-local so that the generated encoders, which see only the
    // buffer, need no extra parameter; set only for the span of one
    // `with_deferred_records` call, which encodes synchronously.
    static DEFER: std::cell::RefCell<Option<DeferSink>> = const { std::cell::RefCell::new(None) };
}

/// Writes a records field (bytes on the wire). Under [`with_deferred_records`],
/// large records are not copied: the length goes into `w`, the bytes are
/// handed back with the position where they belong.
#[inline]
pub fn put_records(w: &mut BytesMut, b: &Bytes, flexible: bool) -> W<()> {
    put_length(w, Some(b.len()), flexible, true)?;
    if b.len() >= DEFER_MIN_RECORDS {
        let at = w.len();
        let target = w as *const BytesMut as usize;
        let deferred = DEFER.with(|d| match d.borrow_mut().as_mut() {
            Some(sink) if sink.target == target => {
                sink.chunks.push((at, b.clone()));
                true
            }
            _ => false,
        });
        if deferred {
            return Ok(());
        }
    }
    w.put_slice(b);
    Ok(())
}

/// Runs `encode` on `w` with the large records fields it writes left out of
/// `w`; returns them with the position in `w` at which each belongs (in
/// order). Writing `w` and the records interleaved gives the full encoding,
/// without copying the records into `w`.
pub fn with_deferred_records<R>(w: &mut BytesMut, encode: impl FnOnce(&mut BytesMut) -> R) -> (R, Vec<(usize, Bytes)>) {
    struct Restore(Option<DeferSink>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            DEFER.with(|d| *d.borrow_mut() = prev);
        }
    }
    let sink = DeferSink { target: w as *const BytesMut as usize, chunks: Vec::new() };
    let restore = Restore(DEFER.with(|d| d.replace(Some(sink))));
    let r = encode(w);
    let chunks = DEFER.with(|d| d.borrow_mut().take()).map(|s| s.chunks).unwrap_or_default();
    drop(restore);
    (r, chunks)
}

/// Writes an array count (`None` is a null array).
#[inline]
pub fn put_array_len(w: &mut BytesMut, len: Option<usize>, flexible: bool) -> W<()> {
    put_length(w, len, flexible, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0i32, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut w = BytesMut::new();
            put_varint(&mut w, v);
            assert_eq!(w.len(), varint_len(v));
            assert_eq!(varint(&mut w.freeze()).unwrap(), v);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut w = BytesMut::new();
            put_varlong(&mut w, v);
            assert_eq!(w.len(), varlong_len(v));
            assert_eq!(varlong(&mut w.freeze()).unwrap(), v);
        }
    }

    #[test]
    fn overlong_varints_are_errors() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(uvarint(&mut b).unwrap_err().kind, DecodeErrorKind::VarintTooLong);
        let mut b = Bytes::from_static(&[0x80; 11]);
        assert_eq!(uvarlong(&mut b).unwrap_err().kind, DecodeErrorKind::VarintTooLong);
        let mut b = Bytes::from_static(&[0x80, 0x80]);
        assert!(matches!(uvarint(&mut b).unwrap_err().kind, DecodeErrorKind::Truncated { .. }));
    }

    #[test]
    fn lengths_are_checked_before_allocation() {
        // A string claiming 32767 bytes with 2 present.
        let mut b = Bytes::from_static(&[0x7f, 0xff, b'a', b'b']);
        assert!(matches!(string(&mut b, false).unwrap_err().kind, DecodeErrorKind::Truncated { .. }));
        // An array claiming i32::MAX elements.
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(array_len(&mut b, false).unwrap_err().kind, DecodeErrorKind::CountTooLarge { .. }));
        // Negative lengths other than -1.
        let mut b = Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(string(&mut b, false).unwrap_err().kind, DecodeErrorKind::NegativeLength(-2));
        let mut b = Bytes::from_static(&[0xff, 0xff]);
        assert_eq!(string(&mut b, false).unwrap_err().kind, DecodeErrorKind::UnexpectedNull);
        let mut b = Bytes::from_static(&[0x00]);
        assert_eq!(nullable_string(&mut b, true).unwrap(), None);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut b = Bytes::from_static(&[0x00, 0x02, 0xff, 0xfe]);
        assert_eq!(string(&mut b, false).unwrap_err().kind, DecodeErrorKind::InvalidUtf8);
    }

    #[test]
    fn bytes_are_zero_copy_slices() {
        let input = Bytes::from_static(&[0, 0, 0, 3, 1, 2, 3, 9]);
        let mut r = input.clone();
        let b = bytes(&mut r, false).unwrap();
        assert_eq!(&b[..], &[1, 2, 3]);
        assert_eq!(b.as_ptr(), input[4..].as_ptr());
    }
}
