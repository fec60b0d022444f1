//! The checks behind the fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! regression test that replays their crashes (`tests/fuzz_regressions.rs`),
//! written once here so that both run exactly the same code. Feature `fuzzing`.
//!
//! Each check takes arbitrary bytes and panics when the codec misbehaves:
//!
//! - a decoder panics;
//! - a decoder allocates more than its input justifies (see [`CheckedAlloc`]:
//!   a single allocation over [`MAX_SINGLE_ALLOC`] aborts the process, and the
//!   peak bytes held while decoding must stay within [`alloc_budget`]);
//! - a value that decoded does not round-trip: re-encoding it must succeed,
//!   write no more bytes than were read, and decode again (consuming exactly
//!   the re-encoded bytes) to the same value, whose encoding is byte-identical.
//!
//! Decode errors are fine: they are the expected answer to most random input.

#![allow(unsafe_code)] // the counting allocator; nothing else here
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::codec::header::{decode_response_frame, encode_response_frame, Request};
use crate::{ApiKey, DecodeError, EncodeError, FrameDecoder, FrameError, RequestBody, ResponseBody};

/// A check: arbitrary bytes in, a panic out when the codec misbehaves.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, with its check. The names are the file names in
/// `fuzz/fuzz_targets/` and the folder names in `tests/fuzz_regressions/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("request_frame", request_frame),
    ("request_body", request_body),
    ("response_body", response_body),
    ("record_batch", record_batch),
    ("frame", frame),
];

/// The check for a target name.
pub fn check_for(target: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == target).map(|&(_, c)| c)
}

// ---------------------------------------------------------------------------
// Allocation accounting
// ---------------------------------------------------------------------------

/// No single allocation may be larger than this (the `-malloc_limit_mb=512` of
/// the fuzz runs; libFuzzer only enforces that flag under a sanitizer, so the
/// allocator below enforces it itself).
pub const MAX_SINGLE_ALLOC: usize = 512 << 20;

/// Bytes a decode may hold regardless of its input's size.
pub const ALLOC_SLACK: usize = 64 << 10;

/// Bytes a decode may hold per input byte. Decoded values are bigger than
/// their wire form (a one-byte empty compact string becomes a 24-byte
/// `String`; a struct whose fields are all tagged takes one byte on the wire
/// and its whole `size_of` in memory; `Vec`s grow by doubling), so this is a
/// bound on amplification, not a byte count.
pub const ALLOC_PER_INPUT_BYTE: usize = 512;

/// What a decode of `input_len` bytes may hold at its peak (beyond what was
/// live before it started).
pub fn alloc_budget(input_len: usize) -> usize {
    ALLOC_SLACK.saturating_add(input_len.saturating_mul(ALLOC_PER_INPUT_BYTE))
}

thread_local! {
    // Signed: a thread may free what another allocated, which takes its count below zero.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

fn check_size(size: usize) {
    if size > MAX_SINGLE_ALLOC {
        // Unwinding out of an allocator is undefined behaviour: report and abort
        // (libFuzzer saves the input on the abort signal).
        use std::io::Write;
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "==strata-fuzz== allocation of {size} bytes exceeds the {MAX_SINGLE_ALLOC}-byte limit");
        let _ = e.flush();
        std::process::abort();
    }
}

fn on_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get().wrapping_add(size as isize);
        l.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now)
            }
        });
    });
    let _ = INSTALLED.try_with(|i| i.set(true));
}

fn on_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().wrapping_sub(size as isize)));
}

/// The global allocator of the fuzz targets and the regression test: the
/// system allocator, plus a per-thread count of live bytes (for [`measure`])
/// and an abort on any single allocation over [`MAX_SINGLE_ALLOC`].
///
/// Install it with `#[global_allocator] static A: CheckedAlloc = CheckedAlloc;`.
pub struct CheckedAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments; the
// bookkeeping touches only const-initialised thread-locals (no allocation).
unsafe impl GlobalAlloc for CheckedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        on_alloc(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        on_alloc(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        if new_size > layout.size() {
            on_alloc(new_size - layout.size());
        } else {
            on_free(layout.size() - new_size);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the peak number of bytes it held on
/// this thread beyond what was live before (0 when [`CheckedAlloc`] is not
/// the global allocator).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(base).max(0) as usize)
}

/// True once [`CheckedAlloc`] has seen an allocation on this thread.
pub fn allocator_installed() -> bool {
    INSTALLED.with(Cell::get)
}

fn check_alloc(what: &str, input_len: usize, peak: usize) {
    let budget = alloc_budget(input_len);
    assert!(
        peak <= budget,
        "{what}: decoding {input_len} bytes held {peak} bytes at its peak (budget {budget}: \
         {ALLOC_SLACK} + {ALLOC_PER_INPUT_BYTE} per input byte)"
    );
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

/// Equal, or (for values holding NaNs, which are not equal to themselves) with
/// identical `Debug` output; callers also compare the encodings, which catches
/// any difference in float bits.
fn assert_same<T: PartialEq + Debug>(what: &str, first: &T, second: &T) {
    if first != second && format!("{first:?}") != format!("{second:?}") {
        panic!("{what}: value changed in a round trip\n first: {first:?}\nsecond: {second:?}");
    }
}

/// The round trip of a decoded value `m` that was read from `consumed` bytes.
fn round_trip<T: PartialEq + Debug>(
    what: &str,
    m: &T,
    consumed: usize,
    encode: impl Fn(&T, &mut BytesMut) -> Result<(), EncodeError>,
    decode: impl Fn(&mut Bytes) -> Result<T, DecodeError>,
) {
    let mut w = BytesMut::new();
    if let Err(e) = encode(m, &mut w) {
        panic!("{what}: a decoded value does not encode: {e}\nvalue: {m:?}");
    }
    let first = w.freeze();
    assert!(
        first.len() <= consumed,
        "{what}: re-encoding wrote {} bytes but decoding read only {consumed}\nvalue: {m:?}",
        first.len()
    );
    let mut r = first.clone();
    let again = match decode(&mut r) {
        Ok(again) => again,
        Err(e) => panic!("{what}: the re-encoded value does not decode: {e}\nvalue: {m:?}\nbytes: {first:?}"),
    };
    assert!(r.is_empty(), "{what}: {} of the re-encoded bytes were not read back\nvalue: {m:?}", r.len());
    assert_same(what, m, &again);
    let mut w = BytesMut::new();
    encode(&again, &mut w).unwrap_or_else(|e| panic!("{what}: second encode failed: {e}"));
    assert_eq!(&first[..], &w[..], "{what}: the second encoding differs from the first");
}

/// The key and version a fuzz input's first two bytes select: byte 0 indexes
/// [`ApiKey::ALL`], the low 7 bits of byte 1 pick a version in the key's
/// range. The high bit of byte 1 is left to the target (a mode flag).
pub fn select(data: &[u8]) -> Option<(ApiKey, i16, bool, &[u8])> {
    let (&k, rest) = data.split_first()?;
    let (&v, rest) = rest.split_first()?;
    let key = ApiKey::ALL[usize::from(k) % ApiKey::ALL.len()];
    let (lo, hi) = key.versions();
    let span = (hi - lo + 1) as u8;
    let version = lo + i16::from((v & 0x7f) % span);
    Some((key, version, v & 0x80 != 0, rest))
}

/// The two selector bytes of [`select`] for `key` at `version` with `flag`.
pub fn selector(key: ApiKey, version: i16, flag: bool) -> [u8; 2] {
    let index = ApiKey::ALL.iter().position(|&k| k == key).unwrap_or(0) as u8;
    let (lo, _) = key.versions();
    [index, (version - lo) as u8 | if flag { 0x80 } else { 0 }]
}

/// `request_frame`: any bytes as a request frame (after the size prefix).
pub fn request_frame(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    let (decoded, peak) = measure(|| Request::decode(input));
    check_alloc("request frame", data.len(), peak);
    let Ok(req) = decoded else { return };
    let what = format!("request frame {:?} v{}", req.body.api_key(), req.header.api_version);
    round_trip(
        &what,
        &req,
        data.len(),
        |m, w| {
            let mut framed = BytesMut::new();
            m.encode_frame(&mut framed)?;
            let size = i32::from_be_bytes([framed[0], framed[1], framed[2], framed[3]]);
            assert_eq!(size as usize, framed.len() - 4, "{what}: frame size prefix is wrong");
            w.extend_from_slice(&framed[4..]);
            Ok(())
        },
        |r| {
            let frame = std::mem::take(r);
            Request::decode(frame).map_err(|e| e.error)
        },
    );
}

/// `request_body`: two selector bytes (see [`select`]), then a request body.
pub fn request_body(data: &[u8]) {
    let Some((key, v, _, body)) = select(data) else { return };
    let mut r = Bytes::copy_from_slice(body);
    let (decoded, peak) = measure(|| RequestBody::decode(key, &mut r, v));
    check_alloc(&format!("{key:?} request v{v}"), body.len(), peak);
    let Ok(m) = decoded else { return };
    assert_eq!(m.api_key(), key);
    let consumed = body.len() - r.len();
    round_trip(
        &format!("{key:?} request v{v}"),
        &m,
        consumed,
        |m, w| m.encode(w, v),
        |r| RequestBody::decode(key, r, v),
    );
}

/// `response_body`: two selector bytes (see [`select`]), then a response body,
/// or, when the selector's flag is set, a whole response frame (header and
/// body, after the size prefix).
pub fn response_body(data: &[u8]) {
    let Some((key, v, whole_frame, body)) = select(data) else { return };
    if whole_frame {
        let input = Bytes::copy_from_slice(body);
        let (decoded, peak) = measure(|| decode_response_frame(input, key, v));
        check_alloc(&format!("{key:?} response frame v{v}"), body.len(), peak);
        let Ok(m) = decoded else { return };
        round_trip(
            &format!("{key:?} response frame v{v}"),
            &m,
            body.len(),
            |(h, b), w| {
                let mut framed = BytesMut::new();
                encode_response_frame(&mut framed, h.correlation_id, v, b)?;
                w.extend_from_slice(&framed[4..]);
                Ok(())
            },
            |r| decode_response_frame(std::mem::take(r), key, v),
        );
        return;
    }
    let mut r = Bytes::copy_from_slice(body);
    let (decoded, peak) = measure(|| ResponseBody::decode(key, &mut r, v));
    check_alloc(&format!("{key:?} response v{v}"), body.len(), peak);
    let Ok(m) = decoded else { return };
    assert_eq!(m.api_key(), key);
    let consumed = body.len() - r.len();
    round_trip(
        &format!("{key:?} response v{v}"),
        &m,
        consumed,
        |m, w| m.encode(w, v),
        |r| ResponseBody::decode(key, r, v),
    );
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

/// How a frame stream ends.
#[derive(Debug, PartialEq)]
enum StreamEnd {
    NeedMore,
    Error(FrameError),
}

/// The frames of a whole stream, by the letter of the format.
fn model_frames(stream: &[u8], max_frame: usize) -> (Vec<&[u8]>, StreamEnd) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.len() < 4 {
            return (frames, StreamEnd::NeedMore);
        }
        let size = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if size < 0 {
            return (frames, StreamEnd::Error(FrameError::NegativeSize(size)));
        }
        let size = size as usize;
        if size > max_frame {
            return (frames, StreamEnd::Error(FrameError::TooLarge { size, max: max_frame }));
        }
        if rest.len() < 4 + size {
            return (frames, StreamEnd::NeedMore);
        }
        frames.push(&rest[4..4 + size]);
        rest = &rest[4 + size..];
    }
}

/// `frame`: bytes 0–1 are the maximum frame size (u16), bytes 2–3 seed the
/// chunking; the rest is a byte stream fed to a [`FrameDecoder`] in chunks of
/// 0–32 bytes, polling after each. The frames and the final outcome must match
/// a whole-stream parse, the buffer must always hold exactly the unread bytes,
/// and what is allocated must stay within what the input and the (bounded)
/// frame in progress justify.
pub fn frame(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let max_frame = usize::from(u16::from_be_bytes([data[0], data[1]]));
    let mut seed = u64::from(u16::from_be_bytes([data[2], data[3]])) | 0x1_0000;
    let stream = &data[4..];
    let (want, want_end) = model_frames(stream, max_frame);

    let d = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut end = StreamEnd::NeedMore;
    let mut fed = 0usize;
    let mut consumed = 0usize;
    let ((), peak) = measure(|| 'feed: loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = ((seed % 33) as usize).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            match d.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.len() <= max_frame, "frame of {} bytes over the maximum {max_frame}", f.len());
                    consumed += 4 + f.len();
                    got.push(f.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    end = StreamEnd::Error(e);
                    break 'feed;
                }
            }
            assert_eq!(&buf[..], &stream[consumed..fed], "the buffer does not hold the unread stream");
        }
        assert_eq!(&buf[..], &stream[consumed..fed], "an incomplete frame changed the buffer");
        if fed == stream.len() {
            break;
        }
    });
    let budget = alloc_budget(data.len()).saturating_add(4 * (4 + max_frame));
    assert!(peak <= budget, "framing {} bytes held {peak} bytes (budget {budget})", data.len());
    let got: Vec<&[u8]> = got.iter().map(Vec::as_slice).collect();
    assert_eq!(got, want, "chunked framing differs from a whole-stream parse");
    assert_eq!(end, want_end, "chunked framing ends differently from a whole-stream parse");
}

// ---------------------------------------------------------------------------
// Record batches
// ---------------------------------------------------------------------------

/// The decompression cap of the records checks.
pub const RECORDS_CAP: usize = 1 << 20;

/// What a records decode of `input_len` bytes may hold: the usual budget plus
/// decompressed output up to the cap and the codecs' own state.
fn records_budget(input_len: usize) -> usize {
    alloc_budget(input_len).saturating_add(3 * RECORDS_CAP)
}

fn check_records_alloc(what: &str, input_len: usize, peak: usize) {
    let budget = records_budget(input_len);
    assert!(peak <= budget, "{what}: {input_len} input bytes held {peak} bytes at the peak (budget {budget})");
}

/// `record_batch`: byte 0 picks a mode (low two bits) and options (the rest);
/// the remaining bytes are:
///
/// - mode 0: a records blob of magic-2 batches (bit 2: `TailMode::AllowTruncated`).
///   Every batch is parsed, CRC-checked, validated and its records iterated with
///   decompression capped at [`RECORDS_CAP`]; batches whose records all decode
///   are rebuilt with `BatchBuilder` and must give back the same records;
///   compressed payloads must survive compress → decompress; control batches'
///   markers must round-trip; `assign_offsets` must change only offsets and epochs.
/// - mode 1: a legacy (magic 0/1) message set: decoded, and converted to a
///   magic-2 batch (bits 2–4: target codec, 5+ = keep the producer's), which
///   must be valid and hold the same messages.
/// - mode 2: compressed data for codec `(byte0 >> 2) % 5`: decompression must
///   respect the cap; and the bytes themselves must survive compress → decompress,
///   with a cap of exactly their length (one less must fail).
/// - mode 3: uncompressed record data; bytes 1–2 are the declared count (i16).
pub fn record_batch(data: &[u8]) {
    use crate::records::{batches, decode_message_set, TailMode};
    let Some((&mode, rest)) = data.split_first() else { return };
    let blob = Bytes::copy_from_slice(rest);
    match mode & 0x03 {
        0 => {
            let tail = if mode & 0x04 != 0 { TailMode::AllowTruncated } else { TailMode::Strict };
            let (found, peak) = measure(|| batches(blob.clone(), tail).collect::<Vec<_>>());
            check_records_alloc("batches", rest.len(), peak);
            let mut whole = true;
            for b in found {
                match b {
                    Ok(batch) => check_batch(&batch),
                    Err(_) => whole = false,
                }
            }
            if whole {
                check_assign_offsets(&blob, tail);
            }
        }
        1 => {
            let (decoded, peak) = measure(|| decode_message_set(blob.clone(), RECORDS_CAP));
            check_records_alloc("legacy message set", rest.len(), peak);
            if let Ok(messages) = decoded {
                check_legacy_conversion(&blob, &messages, mode >> 2);
            }
        }
        2 => check_codec(crate::records::Compression::ALL[usize::from(mode >> 2) % 5], rest),
        _ => {
            if rest.len() < 2 {
                return;
            }
            let declared = i32::from(i16::from_be_bytes([rest[0], rest[1]]));
            let data = blob.slice(2..);
            let Ok(records) = crate::records::Records::new(data.clone(), declared) else {
                assert!(declared < 0, "Records::new refused a count of {declared}");
                return;
            };
            let (decoded, peak) = measure(|| records.collect::<Result<Vec<_>, _>>());
            check_records_alloc("records", data.len(), peak);
            if let Ok(records) = decoded {
                assert_eq!(records.len() as i32, declared, "records: a full iteration yields the declared count");
                let header = rebuild_header(0, crate::records::Compression::None);
                check_rebuild("records", &header, &records, data.len());
            }
        }
    }
}

/// A header for rebuilding records outside any batch.
fn rebuild_header(base_timestamp: i64, codec: crate::records::Compression) -> crate::records::BatchHeader {
    use crate::records::{Attributes, BatchHeader, TimestampType, MAGIC_V2, MIN_BATCH_LENGTH};
    BatchHeader {
        base_offset: 0,
        batch_length: MIN_BATCH_LENGTH,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes: Attributes::new(codec, TimestampType::CreateTime, false, false),
        last_offset_delta: 0,
        base_timestamp,
        max_timestamp: base_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: 0,
    }
}

fn check_batch(batch: &crate::records::RecordBatch) {
    use crate::records::{Compression, ControlRecordType, EndTxnMarker, RecordsError, MAGIC_V2};
    let h = *batch.header();
    assert_eq!(h.magic, MAGIC_V2);
    assert_eq!(batch.len(), h.total_size(), "batch length and header disagree");
    let crc_ok = batch.verify_crc().is_ok();
    let valid = batch.validate(RECORDS_CAP).is_ok();
    assert!(!valid || crc_ok, "a batch with a bad CRC validated");
    let Ok(codec) = h.compression() else {
        assert!(!valid, "a batch with an unknown codec validated");
        return;
    };
    let (records, peak) = measure(|| batch.records(RECORDS_CAP).map(|it| it.collect::<Result<Vec<_>, RecordsError>>()));
    check_records_alloc("batch records", batch.len(), peak);
    let records = match records {
        Ok(Ok(records)) => records,
        _ => {
            assert!(!valid, "a batch whose records do not decode validated");
            return;
        }
    };
    assert_eq!(records.len() as i64, i64::from(h.record_count), "a full iteration yields the declared count");
    if codec != Compression::None {
        if let Ok(payload) = batch.decompressed_payload(RECORDS_CAP) {
            check_codec_round_trip(codec, &payload);
        }
    }
    check_rebuild("batch", &h, &records, batch.len());
    if h.attributes.is_control() {
        for r in &records {
            let Some(key) = r.key.as_deref() else { continue };
            let Ok(kind) = ControlRecordType::parse_key(key) else { continue };
            if let Ok(marker) = EndTxnMarker::parse(key, r.value.as_deref()) {
                assert_eq!(kind, if marker.commit { ControlRecordType::Commit } else { ControlRecordType::Abort });
                let again = EndTxnMarker::parse(&marker.key(), Some(&marker.value()));
                assert_eq!(again.as_ref().ok(), Some(&marker), "an end-transaction marker does not round-trip");
            }
        }
    }
}

/// Rebuilds `records` into a batch like `h` (same codec, producer, timestamp
/// type) and checks that it is valid and holds the same records.
fn check_rebuild(what: &str, h: &crate::records::BatchHeader, records: &[crate::records::Record], source_len: usize) {
    use crate::records::{BatchBuilder, RecordBatch};
    let Ok(codec) = h.compression() else { return };
    let mut b = BatchBuilder::new(codec)
        .base_offset(h.base_offset)
        .partition_leader_epoch(h.partition_leader_epoch)
        .producer(h.producer_id, h.producer_epoch, h.base_sequence)
        .transactional(h.attributes.is_transactional())
        .control(h.attributes.is_control())
        .timestamp_type(h.attributes.timestamp_type());
    for r in records {
        if let Err(e) = b.push(r.timestamp(h.base_timestamp), r.key.as_deref(), r.value.as_deref(), &r.headers) {
            panic!("{what}: a decoded record does not re-encode: {e}\nrecord: {r:?}");
        }
    }
    assert!(
        b.encoded_size() <= source_len.max(RECORDS_CAP),
        "{what}: re-encoded records take {} bytes",
        b.encoded_size()
    );
    let built = b.build().unwrap_or_else(|e| panic!("{what}: rebuilding failed: {e}"));
    let batch = RecordBatch::parse(built).unwrap_or_else(|e| panic!("{what}: the rebuilt batch does not parse: {e}"));
    if let Err(e) = batch.validate(RECORDS_CAP.max(source_len)) {
        panic!("{what}: the rebuilt batch is not valid: {e}");
    }
    let nh = batch.header();
    assert_eq!(nh.record_count as usize, records.len());
    let again: Vec<_> = batch
        .records(RECORDS_CAP.max(source_len))
        .unwrap_or_else(|e| panic!("{what}: rebuilt records: {e}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: rebuilt records: {e}"));
    for (i, (a, b)) in records.iter().zip(&again).enumerate() {
        assert_eq!(b.offset_delta, i as i32, "{what}: rebuilt offset delta");
        assert_eq!(
            b.timestamp(nh.base_timestamp),
            a.timestamp(h.base_timestamp),
            "{what}: record {i}'s timestamp changed in a rebuild"
        );
        assert_eq!((&b.key, &b.value, &b.headers), (&a.key, &a.value, &a.headers), "{what}: record {i} changed");
    }
}

/// `assign_offsets` on a copy of a blob of whole batches changes nothing but
/// the base offsets and leader epochs, and leaves every CRC as it was.
fn check_assign_offsets(blob: &Bytes, tail: crate::records::TailMode) {
    use crate::records::{assign_offsets, batches};
    let before: Vec<_> = batches(blob.clone(), tail).filter_map(Result::ok).collect();
    // A skipped truncated tail is not a whole batch; assign_offsets wants whole ones.
    let whole: usize = before.iter().map(|b| b.len()).sum();
    let mut copy = blob[..whole].to_vec();
    let next = match assign_offsets(&mut copy, 1000, Some(7)) {
        Ok(next) => next,
        Err(e) => panic!("assign_offsets failed on whole batches: {e}"),
    };
    let after: Vec<_> =
        batches(Bytes::from(copy), tail).collect::<Result<_, _>>().expect("batches after assign_offsets");
    assert_eq!(before.len(), after.len());
    let mut expect = 1000i64;
    for (a, b) in before.iter().zip(&after) {
        let (ha, hb) = (*a.header(), *b.header());
        assert_eq!(hb.base_offset, expect, "assign_offsets: base offset");
        assert_eq!(hb.partition_leader_epoch, 7, "assign_offsets: epoch");
        assert_eq!(
            crate::records::BatchHeader {
                base_offset: ha.base_offset,
                partition_leader_epoch: ha.partition_leader_epoch,
                ..hb
            },
            ha,
            "assign_offsets changed more than offsets and epochs"
        );
        assert_eq!(a.verify_crc().is_ok(), b.verify_crc().is_ok(), "assign_offsets changed a CRC's validity");
        expect = expect.saturating_add(i64::from(ha.last_offset_delta)).saturating_add(1);
    }
    assert_eq!(next, expect, "assign_offsets: next offset");
}

fn check_legacy_conversion(blob: &Bytes, messages: &[crate::records::LegacyMessage], target: u8) {
    use crate::records::{convert_message_set, Compression, RecordBatch, RecordsError};
    let target = Compression::ALL.get(usize::from(target)).copied();
    let converted = convert_message_set(blob.clone(), RECORDS_CAP, target);
    let Some(first) = messages.first() else {
        assert_eq!(converted.err(), Some(RecordsError::EmptyMessageSet));
        return;
    };
    let built = converted.unwrap_or_else(|e| panic!("a decodable legacy set does not convert: {e}"));
    let batch = RecordBatch::parse(built).unwrap_or_else(|e| panic!("a converted legacy set does not parse: {e}"));
    let cap = 2 * RECORDS_CAP + 2 * blob.len();
    if let Err(e) = batch.validate(cap) {
        panic!("a converted legacy set is not a valid batch: {e}");
    }
    let h = *batch.header();
    assert_eq!(h.compression().ok(), Some(target.unwrap_or(first.compression)), "converted codec");
    assert_eq!(h.attributes.timestamp_type(), first.timestamp_type, "converted timestamp type");
    let records: Vec<_> = batch.records(cap).expect("records").collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), messages.len(), "converted record count");
    for (i, (m, r)) in messages.iter().zip(&records).enumerate() {
        assert_eq!(r.timestamp(h.base_timestamp), m.timestamp, "converted message {i}: timestamp");
        assert_eq!((&r.key, &r.value), (&m.key, &m.value), "converted message {i}: key and value");
        assert!(r.headers.is_empty());
    }
}

/// Decompression of arbitrary bytes respects the cap; arbitrary bytes survive
/// compress → decompress with a cap of exactly their length.
fn check_codec(codec: crate::records::Compression, data: &[u8]) {
    use crate::records::decompress;
    let (out, peak) = measure(|| decompress(codec, data, RECORDS_CAP));
    check_records_alloc("decompress", data.len(), peak);
    if let Ok(out) = out {
        assert!(out.len() <= RECORDS_CAP, "{codec}: decompressed {} bytes past the cap", out.len());
    }
    check_codec_round_trip(codec, data);
}

fn check_codec_round_trip(codec: crate::records::Compression, data: &[u8]) {
    use crate::records::{compress, decompress, RecordsError};
    let mut c = BytesMut::new();
    compress(codec, data, &mut c).unwrap_or_else(|e| panic!("{codec}: compression failed: {e}"));
    match decompress(codec, &c, data.len()) {
        Ok(back) => assert!(back == data, "{codec}: compress → decompress changed {} bytes", data.len()),
        Err(e) => panic!("{codec}: decompressing our own output ({} bytes) failed: {e}", data.len()),
    }
    if !data.is_empty() {
        assert_eq!(
            decompress(codec, &c, data.len() - 1).err(),
            Some(RecordsError::DecompressedTooLarge { cap: data.len() - 1 }),
            "{codec}: a cap one byte short must fail"
        );
    }
}

// ---------------------------------------------------------------------------
// Corpus seeds
// ---------------------------------------------------------------------------

/// Seed inputs for every target derived from one request frame (after the
/// size prefix), e.g. a golden capture: the frame itself, its body behind a
/// selector, and the frame inside a size-prefixed stream.
pub fn seeds_from_request_frame(frame: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("request_frame", frame.to_vec())];
    let mut stream = vec![0xff, 0xff, 0, 7];
    stream.extend_from_slice(&(frame.len() as i32).to_be_bytes());
    stream.extend_from_slice(frame);
    out.push(("frame", stream));
    if let Ok(req) = Request::decode(Bytes::copy_from_slice(frame)) {
        let key = req.body.api_key();
        let v = req.header.api_version;
        let mut w = BytesMut::new();
        if req.body.encode(&mut w, v).is_ok() {
            let mut input = selector(key, v, false).to_vec();
            input.extend_from_slice(&w);
            out.push(("request_body", input));
        }
        if let RequestBody::Produce(p) = &req.body {
            for t in &p.topic_data {
                for part in &t.partition_data {
                    if let Some(records) = &part.records {
                        let mut input = vec![0u8];
                        input.extend_from_slice(records);
                        out.push(("record_batch", input));
                        let mut input = vec![3u8];
                        if let Ok(batch) = crate::records::RecordBatch::parse(records.clone()) {
                            if let Ok(payload) = batch.decompressed_payload(RECORDS_CAP) {
                                input.extend_from_slice(&(batch.header().record_count as i16).to_be_bytes());
                                input.extend_from_slice(&payload);
                                out.push(("record_batch", input));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// A legacy message (magic 0 or 1), for seeds.
fn legacy_message(magic: i8, attributes: i8, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(magic as u8);
    body.push(attributes as u8);
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    let mut m = crc32fast::hash(&body).to_be_bytes().to_vec();
    m.extend_from_slice(&body);
    m
}

fn legacy_entry(set: &mut Vec<u8>, offset: i64, message: &[u8]) {
    set.extend_from_slice(&offset.to_be_bytes());
    set.extend_from_slice(&(message.len() as i32).to_be_bytes());
    set.extend_from_slice(message);
}

/// Seed inputs for `record_batch`: batches of every codec (plain, idempotent,
/// control), legacy message sets (plain and wrapped), codec data and raw records.
pub fn record_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::records::{compress, BatchBuilder, Compression, EndTxnMarker, Header, RecordBatch, TimestampType};
    let mut out = Vec::new();
    let mut push = |mode: u8, data: &[u8]| {
        let mut input = vec![mode];
        input.extend_from_slice(data);
        out.push(("record_batch", input));
    };
    let values: [&[u8]; 3] = [b"hello", b"", b"a somewhat longer value, a somewhat longer value"];
    for codec in Compression::ALL {
        for n in [1usize, 3] {
            let mut b = BatchBuilder::new(codec);
            if n == 3 {
                b = b.producer(42, 1, 7).timestamp_type(TimestampType::LogAppendTime);
            }
            for (i, value) in values.iter().enumerate().take(n) {
                let headers =
                    if i == 1 { vec![Header::new(&b"h"[..], Some(Bytes::from_static(b"v")))] } else { vec![] };
                let key = (i != 2).then_some(&b"key"[..]);
                b.push(1_700_000_000_000 + i as i64, key, Some(value), &headers).expect("push");
            }
            let batch = b.build().expect("build");
            push(0, &batch);
            let mut two = batch.to_vec();
            two.extend_from_slice(&batch);
            push(0, &two);
            push(4, &two[..two.len() - 5]);
            if let Ok(rb) = RecordBatch::parse(batch.clone()) {
                if let Ok(payload) = rb.decompressed_payload(RECORDS_CAP) {
                    let mut input = (n as i16).to_be_bytes().to_vec();
                    input.extend_from_slice(&payload);
                    push(3, &input);
                }
                push(2 | (codec.id() << 2), &rb.payload());
            }
        }
    }
    let marker = EndTxnMarker { commit: true, coordinator_epoch: 5 };
    if let Ok(batch) = marker.batch(9, 2, 1_700_000_000_000) {
        push(0, &batch);
    }
    for magic in [0i8, 1] {
        let mut set = Vec::new();
        for (i, v) in values.iter().enumerate() {
            legacy_entry(&mut set, i as i64, &legacy_message(magic, 0, 1000 + i as i64, Some(b"k"), Some(v)));
        }
        push(1 | (5 << 2), &set);
        push(1, &set);
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            let mut c = BytesMut::new();
            if compress(codec, &set, &mut c).is_ok() {
                let mut wrapped = Vec::new();
                let m = legacy_message(magic, codec.id() as i8, 2000, None, Some(&c));
                legacy_entry(&mut wrapped, 2, &m);
                push(1 | (5 << 2), &wrapped);
                push(1 | (4 << 2), &wrapped);
            }
        }
    }
    out
}

/// Seed inputs from random valid messages: `per_version` requests and
/// responses of every api at every version (bodies and whole frames), plus
/// [`record_seeds`].
pub fn sampled_seeds(per_version: u64) -> Vec<(&'static str, Vec<u8>)> {
    use crate::codec::header::RequestHeader;
    use crate::sample::SampleRng;
    let mut out = record_seeds();
    for &key in ApiKey::ALL {
        let (lo, hi) = key.versions();
        for v in lo..=hi {
            for i in 0..per_version {
                let mut rng = SampleRng::new(((key as u64) << 32) ^ ((v as u64) << 16) ^ i);
                let req = RequestBody::sample(key, &mut rng, v);
                let mut w = BytesMut::new();
                if req.encode(&mut w, v).is_ok() {
                    let mut input = selector(key, v, false).to_vec();
                    input.extend_from_slice(&w);
                    out.push(("request_body", input));
                }
                let header = RequestHeader {
                    api_key: key as i16,
                    api_version: v,
                    correlation_id: i as i32,
                    client_id: Some("fuzz".into()),
                };
                let mut framed = BytesMut::new();
                if (Request { header, body: req }).encode_frame(&mut framed).is_ok() {
                    out.push(("request_frame", framed[4..].to_vec()));
                }
                let resp = ResponseBody::sample(key, &mut rng, v);
                let mut w = BytesMut::new();
                if resp.encode(&mut w, v).is_ok() {
                    let mut input = selector(key, v, false).to_vec();
                    input.extend_from_slice(&w);
                    out.push(("response_body", input));
                }
                let mut framed = BytesMut::new();
                if encode_response_frame(&mut framed, i as i32, v, &resp).is_ok() {
                    let mut input = selector(key, v, true).to_vec();
                    input.extend_from_slice(&framed[4..]);
                    out.push(("response_body", input));
                }
            }
        }
    }
    out
}
