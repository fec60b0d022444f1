//! Property tests of record batches: build → parse → iterate gives back what
//! went in, for every codec; base-offset patching keeps batches valid; blobs of
//! batches split correctly wherever they are cut; decoders never panic on
//! corrupted input; and decompression never allocates much past its cap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use strata_proto::records::{
    assign_offsets, batches, convert_message_set, decode_message_set, decompress, set_base_offset,
    set_partition_leader_epoch, BatchBuilder, Compression, Header, RecordBatch, RecordsError, TailMode,
    TimestampType,
};

const MIB: usize = 1024 * 1024;

// ---- a per-thread allocation meter, to check that decompression stays near its cap ----

struct Metered;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add_signed(delta);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Metered {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Count the moment both blocks may exist.
        track(new_size as isize);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        track(-(layout.size() as isize));
        p
    }
}

#[global_allocator]
static ALLOC: Metered = Metered;

/// The most bytes live at once on this thread while `f` runs, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

// ---- strategies ----

#[derive(Debug, Clone)]
struct In {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn bytes_up_to(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..n)
}

fn record() -> impl Strategy<Value = In> {
    let header = (bytes_up_to(12), prop::option::of(bytes_up_to(24)))
        .prop_map(|(k, v)| Header::new(Bytes::from(k), v.map(Bytes::from)));
    (
        prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000],
        prop::option::of(bytes_up_to(40)),
        prop::option::of(prop_oneof![bytes_up_to(200), Just(vec![b'z'; 5000])]),
        prop::collection::vec(header, 0..4),
    )
        .prop_map(|(ts, key, value, headers)| In { ts, key, value, headers })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

#[derive(Debug, Clone)]
struct Spec {
    codec: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    log_append_time: bool,
    base_offset: i64,
    records: Vec<In>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        codec(),
        (any::<i64>(), any::<i16>(), any::<i32>()),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        any::<i64>(),
        prop::collection::vec(record(), 0..30),
    )
        .prop_map(
            |(
                codec,
                (producer_id, producer_epoch, base_sequence),
                (transactional, control, log_append_time),
                base_offset,
                records,
            )| Spec {
                codec,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                control,
                log_append_time,
                base_offset,
                records,
            },
        )
}

fn build(s: &Spec) -> Bytes {
    let mut b = BatchBuilder::new(s.codec)
        .producer(s.producer_id, s.producer_epoch, s.base_sequence)
        .transactional(s.transactional)
        .control(s.control)
        .timestamp_type(if s.log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        })
        .base_offset(s.base_offset);
    for r in &s.records {
        b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers).unwrap();
    }
    b.build().unwrap()
}

fn check_equal(batch: &RecordBatch, s: &Spec) -> Result<(), TestCaseError> {
    let h = *batch.header();
    prop_assert_eq!(h.magic, 2);
    prop_assert_eq!(h.compression().unwrap(), s.codec);
    prop_assert_eq!(h.record_count as usize, s.records.len());
    prop_assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (s.producer_id, s.producer_epoch, s.base_sequence)
    );
    prop_assert_eq!(h.attributes.is_transactional(), s.transactional);
    prop_assert_eq!(h.attributes.is_control(), s.control);
    prop_assert_eq!(h.attributes.timestamp_type() == TimestampType::LogAppendTime, s.log_append_time);
    prop_assert_eq!(h.max_timestamp, s.records.iter().map(|r| r.ts).max().unwrap_or(-1));
    batch.verify_crc().unwrap();
    batch.validate(64 * MIB).unwrap();
    let got: Vec<_> = batch.records(64 * MIB).unwrap().collect::<Result<_, RecordsError>>().unwrap();
    prop_assert_eq!(got.len(), s.records.len());
    for (i, (g, w)) in got.iter().zip(&s.records).enumerate() {
        prop_assert_eq!(g.offset(h.base_offset), h.base_offset.wrapping_add(i as i64));
        prop_assert_eq!(g.timestamp(h.base_timestamp), w.ts);
        prop_assert_eq!(g.key.as_deref(), w.key.as_deref());
        prop_assert_eq!(g.value.as_deref(), w.value.as_deref());
        prop_assert_eq!(&g.headers, &w.headers);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn batches_round_trip(s in spec()) {
        let bytes = build(&s);
        let batch = RecordBatch::parse(bytes).unwrap();
        prop_assert_eq!(batch.header().base_offset, s.base_offset);
        check_equal(&batch, &s)?;
    }

    #[test]
    fn patching_base_offset_and_epoch_keeps_batches_valid(s in spec(), offset in any::<i64>(), epoch in any::<i32>()) {
        let mut bytes = BytesMut::from(&build(&s)[..]);
        set_base_offset(&mut bytes, offset).unwrap();
        set_partition_leader_epoch(&mut bytes, epoch).unwrap();
        let batch = RecordBatch::parse(bytes.freeze()).unwrap();
        prop_assert_eq!(batch.header().base_offset, offset);
        prop_assert_eq!(batch.header().partition_leader_epoch, epoch);
        check_equal(&batch, &s)?;
    }

    #[test]
    fn blobs_split_into_their_batches_wherever_cut(
        specs in prop::collection::vec(spec(), 1..5),
        first in 0i64..1_000_000_000,
        cut_frac in 0.0f64..1.0,
    ) {
        let built: Vec<Bytes> = specs.iter().map(build).collect();
        let mut blob = BytesMut::new();
        for b in &built {
            blob.extend_from_slice(b);
        }
        // assign_offsets numbers the batches consecutively.
        let next = assign_offsets(&mut blob, first, Some(3)).unwrap();
        let total: i64 = specs.iter().map(|s| s.records.len().max(1) as i64).sum();
        prop_assert_eq!(next, first + total);
        let blob = blob.freeze();
        let got: Vec<RecordBatch> = batches(blob.clone(), TailMode::Strict).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), specs.len());
        let mut expected_base = first;
        for (b, s) in got.iter().zip(&specs) {
            prop_assert_eq!(b.header().base_offset, expected_base);
            prop_assert_eq!(b.header().partition_leader_epoch, 3);
            check_equal(b, s)?;
            expected_base += s.records.len().max(1) as i64;
        }
        // Cut anywhere: a fetch reader gets the whole batches before the cut and
        // skips the rest; a produce reader errs unless the cut is on a boundary.
        let cut = ((blob.len() as f64) * cut_frac) as usize;
        let mut ends = vec![0usize];
        for b in &built {
            ends.push(ends.last().unwrap() + b.len());
        }
        let whole = ends.iter().filter(|&&e| e > 0 && e <= cut).count();
        let lenient: Vec<_> = batches(blob.slice(..cut), TailMode::AllowTruncated).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(lenient.len(), whole);
        let strict: Result<Vec<_>, _> = batches(blob.slice(..cut), TailMode::Strict).collect();
        if ends.contains(&cut) {
            prop_assert_eq!(strict.unwrap().len(), whole);
        } else {
            let is_truncated = matches!(strict, Err(RecordsError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }

    #[test]
    fn codecs_round_trip_any_bytes(data in prop::collection::vec(any::<u8>(), 0..20_000), c in codec()) {
        let mut out = BytesMut::new();
        strata_proto::records::compress(c, &data, &mut out).unwrap();
        prop_assert_eq!(decompress(c, &out, data.len()).unwrap(), data.clone());
        if !data.is_empty() {
            prop_assert_eq!(decompress(c, &out, data.len() - 1).unwrap_err(), RecordsError::DecompressedTooLarge { cap: data.len() - 1 });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Flipping, cutting or splicing bytes of a valid batch never panics any decoder.
    #[test]
    fn corrupted_batches_never_panic(
        s in spec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = BytesMut::from(&build(&s)[..]);
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let len = bytes.len();
        bytes.truncate(cut.index(len + 1).max(1));
        let bytes = bytes.freeze();
        for mode in [TailMode::Strict, TailMode::AllowTruncated] {
            for batch in batches(bytes.clone(), mode).flatten() {
                let _ = batch.verify_crc();
                let _ = batch.validate(MIB);
                if let Ok(records) = batch.records(MIB) {
                    for r in records {
                        let _ = r;
                    }
                }
            }
        }
        let _ = decode_message_set(bytes.clone(), MIB);
        let _ = convert_message_set(bytes.clone(), MIB, None);
        let mut patch = BytesMut::from(&bytes[..]);
        let _ = assign_offsets(&mut patch, 5, Some(1));
        for c in Compression::ALL {
            let _ = decompress(c, &bytes, MIB);
        }
    }

    /// Random bytes never panic any decoder either.
    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let bytes = Bytes::from(data);
        for mode in [TailMode::Strict, TailMode::AllowTruncated] {
            for batch in batches(bytes.clone(), mode).flatten() {
                let _ = batch.validate(MIB);
            }
        }
        let _ = decode_message_set(bytes.clone(), MIB);
        for c in Compression::ALL {
            let _ = decompress(c, &bytes, MIB);
        }
    }
}

/// Decompressing 100 MiB of zeros with a 1 MiB cap fails without ever holding
/// much more than the cap.
#[test]
fn decompression_bombs_do_not_allocate_past_the_cap() {
    let zeros = vec![0u8; MIB];
    for c in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        // 1 MiB compressed, repeated 100 times: gzip members, lz4 and zstd frames
        // concatenate; snappy's xerial blocks do after the one 16-byte header.
        let mut one = BytesMut::new();
        strata_proto::records::compress(c, &zeros, &mut one).unwrap();
        let bomb = match c {
            Compression::Snappy => {
                let mut b = one[..16].to_vec();
                for _ in 0..100 {
                    b.extend_from_slice(&one[16..]);
                }
                b
            }
            _ => one.repeat(100),
        };
        assert_eq!(decompress(c, &bomb, 100 * MIB).unwrap().len(), 100 * MIB, "{c}");
        // Warm up per-thread codec state (zstd's context) outside the measurement.
        let _ = decompress(c, &bomb[..bomb.len().min(64)], 16);
        let (res, peak) = peak_during(|| decompress(c, &bomb, MIB));
        assert_eq!(res.unwrap_err(), RecordsError::DecompressedTooLarge { cap: MIB }, "{c}");
        assert!(peak <= 2 * MIB, "{c}: peak {peak} bytes");
        // The meter works: about a cap's worth was held.
        assert!(peak >= MIB / 2, "{c}: peak {peak} bytes");
    }
}
