//! The consumer: partitions are assigned directly (no group); one task per
//! partition leader keeps one Fetch in flight on its own connection, as
//! Kafka's consumer does per broker.
//!
//! Checked on every fetched partition: each batch's CRC, that record offset
//! deltas run 0, 1, 2..., that offsets continue exactly where the previous
//! batch ended (a jump forward is a **gap**, a batch starting below the
//! position after the first of a response is a **duplicate**), and that no
//! record lies at or past the high watermark the same answer gave.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::FetchRequest;
use strata_proto::records::{batches, TailMode};
use strata_proto::{ApiKey, RequestBody, ResponseBody};

use super::accumulator::value_timestamp;
use super::args::ConsumerArgs;
use super::client::Connection;
use super::cluster::TopicInfo;
use super::report::{ErrorCounts, LatencyRecorder, Throughput};
use super::{Progress, WallClock};

/// The largest batch the consumer decompresses.
const MAX_DECOMPRESSED: usize = 256 << 20;

/// Shared stop conditions for the fetchers.
#[derive(Debug)]
pub struct ConsumeControl {
    /// Per partition, the offset to reach (None: no such bound yet).
    ends: Mutex<Option<BTreeMap<i32, i64>>>,
    /// Stop after this many records in all (u64::MAX: no bound).
    target: AtomicU64,
    consumed: AtomicU64,
    deadline: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

impl ConsumeControl {
    /// No bound yet.
    pub fn new() -> ConsumeControl {
        ConsumeControl {
            ends: Mutex::new(None),
            target: AtomicU64::new(u64::MAX),
            consumed: AtomicU64::new(0),
            deadline: Mutex::new(None),
            stop: AtomicBool::new(false),
        }
    }

    /// Stop each partition once its position reaches `ends[p]`.
    pub fn set_ends(&self, ends: BTreeMap<i32, i64>) {
        *self.ends.lock().unwrap_or_else(|p| p.into_inner()) = Some(ends);
    }

    /// Stop after `n` records in all.
    pub fn set_target(&self, n: u64) {
        self.target.store(n, Ordering::SeqCst);
    }

    /// Stop at `t`.
    pub fn set_deadline(&self, t: Instant) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Stop now.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Records consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::SeqCst)
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self.consumed.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst)
            || self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    fn end_of(&self, p: i32) -> Option<i64> {
        self.ends.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(&p).copied())
    }
}

impl Default for ConsumeControl {
    fn default() -> Self {
        Self::new()
    }
}

/// What the consumer found.
#[derive(Debug, Default)]
pub struct ConsumeOutcome {
    /// Records delivered.
    pub throughput: Throughput,
    /// Fetch requests.
    pub fetches: u64,
    /// Fetches that brought no record.
    pub empty_fetches: u64,
    /// End-to-end latency, when measured.
    pub e2e: LatencyRecorder,
    /// Errors and failed checks.
    pub errors: ErrorCounts,
    /// Final position per partition.
    pub positions: BTreeMap<i32, i64>,
    /// Values whose time lay in the future (clocks of producer and consumer disagree).
    pub future_timestamps: u64,
}

/// The verdict on one batch from the offset checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Deliver the batch's records from this offset on; None: skip the batch.
    pub deliver_from: Option<i64>,
    /// Offsets missing before the batch, [from, to] inclusive.
    pub gap: Option<(i64, i64)>,
    /// Records of this batch that were delivered already.
    pub duplicates: u64,
}

/// Follows one partition's position and judges each fetched batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetTracker {
    /// The next offset expected.
    pub position: i64,
}

impl OffsetTracker {
    /// Starts at `position`.
    pub fn new(position: i64) -> OffsetTracker {
        OffsetTracker { position }
    }

    /// Judges a batch holding offsets `base..=last`. `first_in_response`:
    /// the first batch of this partition in this fetch answer, which may
    /// legitimately start before the fetch offset (a fetch from the middle
    /// of a batch returns the whole batch).
    pub fn check(&mut self, base: i64, last: i64, first_in_response: bool) -> Verdict {
        let mut v = Verdict { deliver_from: None, gap: None, duplicates: 0 };
        if last < self.position {
            if !first_in_response {
                v.duplicates = (last - base + 1).max(0) as u64;
            }
            return v;
        }
        if base > self.position {
            v.gap = Some((self.position, base - 1));
            v.deliver_from = Some(base);
        } else {
            if base < self.position && !first_in_response {
                v.duplicates = (self.position - base) as u64;
            }
            v.deliver_from = Some(self.position);
        }
        self.position = last + 1;
        v
    }
}

/// Settings shared by the fetchers.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Topic.
    pub topic: TopicInfo,
    /// fetch.min.bytes etc.
    pub args: ConsumerArgs,
    /// Measure end-to-end latency from the values' first 8 bytes.
    pub e2e: bool,
    /// Values stamped before this (ns since epoch) are not from this run.
    pub run_start_nanos: u64,
    /// Backoff after a partition error.
    pub backoff: Duration,
}

/// Consumes from `starts` (partition → first offset); each fetcher is a
/// connection to a leader and the partitions it fetches there.
pub async fn run(
    fetchers: Vec<(Connection, Vec<i32>)>,
    starts: BTreeMap<i32, i64>,
    cfg: FetchConfig,
    ctl: Arc<ConsumeControl>,
    progress: Arc<Progress>,
    clock: WallClock,
) -> ConsumeOutcome {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (conn, ps) in fetchers {
        let positions: BTreeMap<i32, OffsetTracker> =
            ps.iter().map(|p| (*p, OffsetTracker::new(starts.get(p).copied().unwrap_or(0)))).collect();
        tasks.push(tokio::spawn(fetcher(conn, positions, cfg.clone(), ctl.clone(), progress.clone(), clock)));
    }
    let mut out = ConsumeOutcome::default();
    let mut last_record: Option<Instant> = None;
    for t in tasks {
        match t.await {
            Ok(r) => {
                out.throughput.records += r.throughput.records;
                out.throughput.payload_bytes += r.throughput.payload_bytes;
                out.throughput.wire_bytes += r.throughput.wire_bytes;
                out.fetches += r.fetches;
                out.empty_fetches += r.empty_fetches;
                out.e2e.merge(&r.e2e);
                out.errors.merge(r.errors);
                out.positions.extend(r.positions);
                out.future_timestamps += r.future_timestamps;
                last_record = match (last_record, r.last_record) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            Err(e) => out.errors.client("internal", || format!("a consumer task failed: {e}")),
        }
    }
    out.throughput.elapsed = last_record.unwrap_or_else(Instant::now).saturating_duration_since(start);
    out
}

struct FetcherResult {
    throughput: Throughput,
    fetches: u64,
    empty_fetches: u64,
    e2e: LatencyRecorder,
    errors: ErrorCounts,
    positions: BTreeMap<i32, i64>,
    last_record: Option<Instant>,
    future_timestamps: u64,
}

async fn fetcher(
    conn: Connection,
    mut positions: BTreeMap<i32, OffsetTracker>,
    cfg: FetchConfig,
    ctl: Arc<ConsumeControl>,
    progress: Arc<Progress>,
    clock: WallClock,
) -> FetcherResult {
    let mut r = FetcherResult {
        throughput: Throughput::default(),
        fetches: 0,
        empty_fetches: 0,
        e2e: LatencyRecorder::new(),
        errors: ErrorCounts::default(),
        positions: BTreeMap::new(),
        last_record: None,
        future_timestamps: 0,
    };
    let topic = &cfg.topic.name;
    let version = match conn.version(ApiKey::Fetch) {
        Ok(v) => v,
        Err(e) => {
            r.errors.client(e.kind(), || e.to_string());
            r.positions = positions.iter().map(|(p, t)| (*p, t.position)).collect();
            return r;
        }
    };
    if version >= 13 && cfg.topic.id.is_zero() {
        r.errors.client("protocol", || format!("Fetch v{version} needs a topic id and Metadata gave none"));
        r.positions = positions.iter().map(|(p, t)| (*p, t.position)).collect();
        return r;
    }
    let mut backoff_until: BTreeMap<i32, Instant> = BTreeMap::new();
    let max_wait = Duration::from_millis(cfg.args.fetch_max_wait_ms.max(0) as u64);
    loop {
        if ctl.should_stop() {
            break;
        }
        let now = Instant::now();
        let active: Vec<(i32, i64)> = positions
            .iter()
            .filter(|(p, t)| ctl.end_of(**p).is_none_or(|end| t.position < end))
            .filter(|(p, _)| backoff_until.get(*p).is_none_or(|t| now >= *t))
            .map(|(p, t)| (*p, t.position))
            .collect();
        if active.is_empty() {
            let all_done = positions.iter().all(|(p, t)| ctl.end_of(*p).is_some_and(|end| t.position >= end));
            if all_done && ctl.ends.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let req = fetch_request(&cfg, version, &active);
        r.fetches += 1;
        let (resp, received_at) = match conn.call_timed(req, max_wait).await {
            Ok((ResponseBody::Fetch(resp), at)) => (resp, at),
            Ok((other, _)) => {
                let kind = other.api_key().name();
                r.errors.client("protocol", || format!("Fetch answered with {kind}"));
                break;
            }
            Err(e) => {
                r.errors.client(e.kind(), || e.to_string());
                break;
            }
        };
        if resp.error_code != 0 {
            r.errors.kafka("Fetch", resp.error_code);
            tokio::time::sleep(cfg.backoff).await;
            continue;
        }
        let now_nanos = clock.nanos_at(received_at);
        let mut delivered = 0u64;
        let mut delivered_bytes = 0u64;
        for t in &resp.responses {
            let ours = t.topic == *topic || (!t.topic_id.is_zero() && t.topic_id == cfg.topic.id);
            if !ours {
                r.errors.check("fetch answer names another topic", 1, || {
                    format!("fetch answer for topic {:?} / {:?}", t.topic, t.topic_id)
                });
                continue;
            }
            for p in &t.partitions {
                let Some(tracker) = positions.get_mut(&p.partition_index) else {
                    r.errors.check("fetch answer names a partition not asked for", 1, || {
                        format!("{topic}-{} was not in the request", p.partition_index)
                    });
                    continue;
                };
                if p.error_code != 0 {
                    r.errors.kafka("Fetch", p.error_code);
                    backoff_until.insert(p.partition_index, Instant::now() + cfg.backoff);
                    continue;
                }
                let Some(records) = &p.records else { continue };
                let got = process_partition(
                    topic,
                    p.partition_index,
                    records.clone(),
                    p.high_watermark,
                    tracker,
                    &cfg,
                    now_nanos,
                    &mut r,
                );
                delivered += got.0;
                delivered_bytes += got.1;
            }
        }
        if delivered == 0 {
            r.empty_fetches += 1;
        } else {
            r.last_record = Some(received_at);
            r.throughput.records += delivered;
            r.throughput.payload_bytes += delivered_bytes;
            ctl.consumed.fetch_add(delivered, Ordering::SeqCst);
            progress.consumed(delivered, delivered_bytes);
        }
    }
    r.positions = positions.iter().map(|(p, t)| (*p, t.position)).collect();
    r
}

fn fetch_request(cfg: &FetchConfig, version: i16, active: &[(i32, i64)]) -> RequestBody {
    let (topic, topic_id) = if version >= 13 {
        (String::new(), cfg.topic.id)
    } else {
        (cfg.topic.name.clone(), strata_proto::Uuid::ZERO)
    };
    RequestBody::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: cfg.args.fetch_max_wait_ms,
        min_bytes: cfg.args.fetch_min_bytes,
        max_bytes: cfg.args.fetch_max_bytes,
        isolation_level: 0,
        // A full fetch each time, without a fetch session.
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic,
            topic_id,
            partitions: active
                .iter()
                .map(|&(partition, fetch_offset)| FetchPartition {
                    partition,
                    fetch_offset,
                    partition_max_bytes: cfg.args.max_partition_fetch_bytes,
                    ..Default::default()
                })
                .collect(),
        }],
        ..Default::default()
    })
}

/// Walks one partition's records blob; returns (records, payload bytes) delivered.
#[allow(clippy::too_many_arguments)]
fn process_partition(
    topic: &str,
    partition: i32,
    blob: Bytes,
    high_watermark: i64,
    tracker: &mut OffsetTracker,
    cfg: &FetchConfig,
    now_nanos: u64,
    r: &mut FetcherResult,
) -> (u64, u64) {
    let mut delivered = 0u64;
    let mut bytes = 0u64;
    let mut first = true;
    for batch in batches(blob, TailMode::AllowTruncated) {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                r.errors.check("corrupt batches", 1, || format!("{topic}-{partition} at {}: {e}", tracker.position));
                break;
            }
        };
        let h = *batch.header();
        if let Err(e) = batch.verify_crc() {
            r.errors.check("batch CRC mismatches", 1, || format!("{topic}-{partition} batch at {}: {e}", h.base_offset));
        }
        if h.last_offset_delta < 0 || h.record_count < 0 {
            r.errors.check("corrupt batches", 1, || {
                format!("{topic}-{partition} batch at {}: lastOffsetDelta {} records {}", h.base_offset, h.last_offset_delta, h.record_count)
            });
            break;
        }
        let base = h.base_offset;
        let last = h.last_offset();
        let v = tracker.check(base, last, first);
        first = false;
        if let Some((from, to)) = v.gap {
            r.errors.check("offset gaps", 1, || format!("{topic}-{partition}: offsets {from}..={to} missing"));
            r.errors.check("missing offsets", (to - from + 1) as u64, || {
                format!("{topic}-{partition}: {} offsets missing before {base}", to - from + 1)
            });
        }
        if v.duplicates > 0 {
            r.errors.check("duplicate offsets", v.duplicates, || {
                format!("{topic}-{partition}: batch {base}..={last} repeats {} offsets already consumed", v.duplicates)
            });
        }
        if high_watermark >= 0 && last >= high_watermark {
            r.errors.check("records past the high watermark", 1, || {
                format!("{topic}-{partition}: batch {base}..={last} returned with high watermark {high_watermark}")
            });
        }
        r.throughput.wire_bytes += batch.len() as u64;
        let Some(from) = v.deliver_from else { continue };
        if h.attributes.is_control() {
            continue;
        }
        let records = match batch.records(MAX_DECOMPRESSED) {
            Ok(rs) => rs,
            Err(e) => {
                r.errors.check("corrupt batches", 1, || format!("{topic}-{partition} batch at {base}: {e}"));
                continue;
            }
        };
        let mut i: i32 = 0;
        for rec in records {
            let rec = match rec {
                Ok(rec) => rec,
                Err(e) => {
                    r.errors.check("corrupt batches", 1, || format!("{topic}-{partition} batch at {base}: {e}"));
                    break;
                }
            };
            if rec.offset_delta != i {
                r.errors.check("record offset deltas out of sequence", 1, || {
                    format!("{topic}-{partition} batch at {base}: record {i} has offset delta {}", rec.offset_delta)
                });
            }
            i = i.saturating_add(1);
            let offset = rec.offset(base);
            if offset < from {
                continue;
            }
            delivered += 1;
            let value_len = rec.value.as_ref().map_or(0, |v| v.len());
            let key_len = rec.key.as_ref().map_or(0, |k| k.len());
            bytes += (value_len + key_len) as u64;
            if cfg.e2e {
                if let Some(ts) = rec.value.as_deref().and_then(value_timestamp) {
                    if ts >= cfg.run_start_nanos {
                        if ts > now_nanos {
                            r.future_timestamps += 1;
                            r.e2e.record_micros(0);
                        } else {
                            r.e2e.record_micros((now_nanos - ts) / 1000);
                        }
                    }
                }
            }
        }
        if i != h.record_count {
            r.errors.check("batch record counts wrong", 1, || {
                format!("{topic}-{partition} batch at {base}: declares {} records, holds {i}", h.record_count)
            });
        }
    }
    (delivered, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_batches_pass() {
        let mut t = OffsetTracker::new(0);
        assert_eq!(t.check(0, 9, true), Verdict { deliver_from: Some(0), gap: None, duplicates: 0 });
        assert_eq!(t.check(10, 19, false), Verdict { deliver_from: Some(10), gap: None, duplicates: 0 });
        assert_eq!(t.position, 20);
        assert_eq!(t.check(20, 20, true).deliver_from, Some(20));
        assert_eq!(t.position, 21);
    }

    #[test]
    fn a_jump_forward_is_a_gap() {
        let mut t = OffsetTracker::new(10);
        let v = t.check(15, 19, true);
        assert_eq!(v.gap, Some((10, 14)));
        assert_eq!(v.deliver_from, Some(15));
        assert_eq!(t.position, 20);
    }

    #[test]
    fn a_fetch_from_mid_batch_returns_the_whole_batch_and_that_is_fine() {
        let mut t = OffsetTracker::new(5);
        let v = t.check(0, 9, true);
        assert_eq!(v, Verdict { deliver_from: Some(5), gap: None, duplicates: 0 });
        assert_eq!(t.position, 10);
        // An older batch first in an answer is skipped without complaint.
        let v = t.check(0, 9, true);
        assert_eq!(v, Verdict { deliver_from: None, gap: None, duplicates: 0 });
        assert_eq!(t.position, 10);
    }

    #[test]
    fn overlapping_batches_within_an_answer_are_duplicates() {
        let mut t = OffsetTracker::new(0);
        t.check(0, 9, true);
        let v = t.check(5, 14, false);
        assert_eq!(v.duplicates, 5);
        assert_eq!(v.deliver_from, Some(10));
        assert_eq!(t.position, 15);
        let v = t.check(0, 9, false);
        assert_eq!(v.duplicates, 10);
        assert_eq!(v.deliver_from, None);
        assert_eq!(t.position, 15);
    }
}
