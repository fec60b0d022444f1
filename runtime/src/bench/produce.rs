//! The producer: one generator task appends records into the shared
//! [`Accumulator`]; one sender task per partition leader drains it into
//! Produce requests, keeps up to `max.in.flight` of them outstanding on its
//! connection and reads their answers in order.
//!
//! Checked on every answer, per partition: the error code (counted by code;
//! retriable ones are retried up to `--retries`), and that base offsets only
//! move forward: a batch acknowledged after another on the same partition
//! must start at or after the end of the earlier one. An overlap is a broker
//! handing out the same offsets twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use strata_proto::{ApiKey, RequestBody, ResponseBody};
use tokio::sync::Notify;

use super::accumulator::{Accumulator, AccumulatorConfig, BuiltBatch, Pacer, PartitionChooser, Payloads};
use super::args::{LimitArgs, Partitioner, ProducerArgs};
use super::client::{ClientError, Connection, RawResponse};
use super::cluster::TopicInfo;
use super::errors::is_retriable;
use super::report::{ErrorCounts, LatencyRecorder, ProduceReport, Throughput};
use super::{BenchError, Progress, WallClock};

/// What the producer hands back.
#[derive(Debug, Default)]
pub struct ProduceOutcome {
    /// The producer's part of the report.
    pub report: ProduceReport,
    /// Errors and failed checks.
    pub errors: ErrorCounts,
    /// Per partition, the offset after the last acknowledged record.
    pub acked_end: BTreeMap<i32, i64>,
    /// Records generated (appended to the accumulator).
    pub generated: u64,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

struct Shared {
    acc: Mutex<Accumulator>,
    /// Woken when buffer memory is given back.
    space: Notify,
    /// Set when a connection died: everyone stops.
    abort: AtomicBool,
    abort_reason: Mutex<Option<String>>,
}

impl Shared {
    fn acc(&self) -> MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn abort(&self, reason: String) {
        let mut r = self.abort_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
}

/// A sender's settings.
#[derive(Debug, Clone)]
struct SenderConfig {
    node: i32,
    partitions: Vec<i32>,
    topic: TopicInfo,
    acks: i16,
    timeout: Duration,
    max_in_flight: usize,
    retries: u32,
    idempotent: bool,
}

/// What one sender measured.
#[derive(Debug, Default)]
struct SenderResult {
    latency: LatencyRecorder,
    errors: ErrorCounts,
    acked: Throughput,
    requests: u64,
    batches: u64,
    retried: u64,
    failed_records: u64,
    throttle_ms: u64,
    last_ack: Option<Instant>,
    acked_end: BTreeMap<i32, i64>,
}

struct InFlight {
    correlation_id: i32,
    sent_at: Instant,
    batches: Vec<BuiltBatch>,
}

/// Runs `conns.len()` independent producers over `partitions` of `topic`;
/// each has its own connection to every leader (`conns[i]`: node id →
/// connection), accumulator and generator. `--num-records` and `--rate` are
/// split evenly among them.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    conns: Vec<BTreeMap<i32, Connection>>,
    topic: &TopicInfo,
    partitions: &[i32],
    args: &ProducerArgs,
    limit: &LimitArgs,
    timeout: Duration,
    progress: Arc<Progress>,
    clock: WallClock,
) -> Result<ProduceOutcome, BenchError> {
    let n = conns.len().max(1) as u64;
    let mut tasks = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let mut l = limit.clone();
        if let Some(total) = limit.num_records {
            l.num_records = Some(total / n + u64::from((i as u64) < total % n));
        }
        tasks.push(tokio::spawn(instance(
            c,
            topic.clone(),
            partitions.to_vec(),
            args.clone(),
            l,
            args.rate / n as f64,
            i,
            timeout,
            progress.clone(),
            clock,
        )));
    }
    let mut out = ProduceOutcome::default();
    let mut latency = LatencyRecorder::new();
    let mut start: Option<Instant> = None;
    let mut last_ack: Option<Instant> = None;
    let mut acked = Throughput::default();
    let mut first_error = None;
    for t in tasks {
        let r = match t.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
                continue;
            }
            Err(e) => {
                first_error.get_or_insert(BenchError::Protocol(format!("a producer task failed: {e}")));
                continue;
            }
        };
        latency.merge(&r.latency);
        out.errors.merge(r.errors);
        acked.records += r.acked.records;
        acked.payload_bytes += r.acked.payload_bytes;
        acked.wire_bytes += r.acked.wire_bytes;
        out.report.requests += r.requests;
        out.report.batches += r.batches;
        out.report.batches_retried += r.retried;
        out.report.records_failed += r.failed_records;
        out.report.throttle_ms += r.throttle_ms;
        out.generated += r.generated;
        start = Some(start.map_or(r.start, |s| s.min(r.start)));
        last_ack = max_instant(last_ack, r.last_ack);
        for (p, end) in r.acked_end {
            let e = out.acked_end.entry(p).or_insert(end);
            *e = (*e).max(end);
        }
        if out.aborted.is_none() {
            out.aborted = r.aborted;
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let start = start.unwrap_or_else(Instant::now);
    acked.elapsed = last_ack.unwrap_or_else(Instant::now).saturating_duration_since(start);
    out.report.throughput = acked;
    out.report.request_latency = latency.summary();
    Ok(out)
}

fn max_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// What one producer measured.
#[derive(Debug)]
struct InstanceResult {
    start: Instant,
    latency: LatencyRecorder,
    errors: ErrorCounts,
    acked: Throughput,
    requests: u64,
    batches: u64,
    retried: u64,
    failed_records: u64,
    throttle_ms: u64,
    last_ack: Option<Instant>,
    acked_end: BTreeMap<i32, i64>,
    generated: u64,
    aborted: Option<String>,
}

/// One producer: a generator (this task) and a sender per leader.
#[allow(clippy::too_many_arguments)]
async fn instance(
    conns: BTreeMap<i32, Connection>,
    topic: TopicInfo,
    partitions: Vec<i32>,
    args: ProducerArgs,
    limit: LimitArgs,
    rate: f64,
    index: usize,
    timeout: Duration,
    progress: Arc<Progress>,
    clock: WallClock,
) -> Result<InstanceResult, BenchError> {
    let topic = &topic;
    let groups = topic.by_leader(&partitions);
    let leader_of: HashMap<i32, i32> =
        groups.iter().flat_map(|(node, ps)| ps.iter().map(move |p| (*p, *node))).collect();
    let producer = if args.idempotence {
        let conn = conns.values().next().ok_or_else(|| BenchError::Protocol("no leader to connect to".into()))?;
        Some(init_producer_id(conn, timeout).await?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        acc: Mutex::new(Accumulator::new(AccumulatorConfig {
            batch_size: args.batch_size,
            linger: Duration::from_millis(args.linger_ms),
            compression: args.compression.into(),
            max_request_size: args.max_request_size,
            retry_backoff: Duration::from_millis(args.retry_backoff_ms),
            producer,
        })),
        space: Notify::new(),
        abort: AtomicBool::new(false),
        abort_reason: Mutex::new(None),
    });

    let mut wakes: HashMap<i32, Arc<Notify>> = HashMap::new();
    let mut senders = Vec::new();
    let mut conns = conns;
    for (node, ps) in &groups {
        let conn = conns
            .remove(node)
            .ok_or_else(|| BenchError::Protocol(format!("no connection to leader node {node}")))?;
        let wake = Arc::new(Notify::new());
        wakes.insert(*node, wake.clone());
        let cfg = SenderConfig {
            node: *node,
            partitions: ps.clone(),
            topic: topic.clone(),
            acks: args.acks,
            timeout,
            max_in_flight: args.max_in_flight.max(1),
            retries: args.retries,
            idempotent: producer.is_some(),
        };
        senders.push(tokio::spawn(sender(conn, cfg, shared.clone(), wake, progress.clone())));
    }

    // The generator.
    let start = Instant::now();
    let pacer = Pacer::new(start, rate);
    let deadline = limit.duration.map(|d| start + d);
    let seed = clock.now_nanos() ^ 0x9E37_79B9_7F4A_7C15 ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407);
    let mut payloads = Payloads::new(args.record_size, seed);
    let sticky = matches!(args.partitioner, Partitioner::Sticky).then_some(args.batch_size);
    // Each producer starts on another partition.
    let mut rotated = partitions.clone();
    rotated.rotate_left(index % partitions.len().max(1));
    let mut chooser = PartitionChooser::new(rotated, sticky);
    let buffer_memory = args.buffer_memory.max(args.batch_size);
    let mut n: u64 = 0;
    loop {
        if limit.num_records.is_some_and(|max| n >= max) || shared.abort.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let Some(due) = pacer.due(n) {
            if due > now {
                let until = deadline.map_or(due, |d| due.min(d));
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
        }
        if shared.acc().buffered() >= buffer_memory {
            // buffer.memory exhausted: wait for acknowledgements, as Java's send() blocks.
            let _ = tokio::time::timeout(Duration::from_millis(5), shared.space.notified()).await;
            continue;
        }
        let p = chooser.next(args.record_size);
        let nanos = clock.nanos_at(now);
        let value = payloads.next(nanos);
        let appended = shared
            .acc()
            .append(p, now, (nanos / 1_000_000) as i64, value)
            .map_err(|e| BenchError::Protocol(format!("cannot build a record batch: {e}")))?;
        if appended.ready || appended.new_batch {
            if let Some(w) = leader_of.get(&p).and_then(|node| wakes.get(node)) {
                w.notify_one();
            }
        }
        n += 1;
        if n % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    shared.acc().flush();
    for w in wakes.values() {
        w.notify_one();
    }

    let mut out = InstanceResult {
        start,
        latency: LatencyRecorder::new(),
        errors: ErrorCounts::default(),
        acked: Throughput::default(),
        requests: 0,
        batches: 0,
        retried: 0,
        failed_records: 0,
        throttle_ms: 0,
        last_ack: None,
        acked_end: BTreeMap::new(),
        generated: n,
        aborted: None,
    };
    for s in senders {
        let r = s.await.map_err(|e| BenchError::Protocol(format!("a producer task failed: {e}")))?;
        out.latency.merge(&r.latency);
        out.errors.merge(r.errors);
        out.acked.records += r.acked.records;
        out.acked.payload_bytes += r.acked.payload_bytes;
        out.acked.wire_bytes += r.acked.wire_bytes;
        out.requests += r.requests;
        out.batches += r.batches;
        out.retried += r.retried;
        out.failed_records += r.failed_records;
        out.throttle_ms += r.throttle_ms;
        out.last_ack = max_instant(out.last_ack, r.last_ack);
        out.acked_end.extend(r.acked_end);
    }
    out.aborted = shared.abort_reason.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(out)
}

/// Drains the accumulator for one leader and reads the answers.
async fn sender(
    conn: Connection,
    cfg: SenderConfig,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    progress: Arc<Progress>,
) -> SenderResult {
    let mut res = SenderResult::default();
    let Some(mut stream) = conn.take_stream() else {
        res.errors.client("internal", || "response stream already taken".into());
        return res;
    };
    let version = match conn.version(ApiKey::Produce) {
        Ok(v) => v,
        Err(e) => {
            shared.abort(e.to_string());
            res.errors.client(e.kind(), || e.to_string());
            return res;
        }
    };
    if version >= 13 && cfg.topic.id.is_zero() {
        let msg = format!("Produce v{version} needs a topic id and Metadata gave none");
        shared.abort(msg.clone());
        res.errors.client("protocol", || msg);
        return res;
    }
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut last_offsets: HashMap<i32, (i64, u32)> = HashMap::new();
    let mut dead = false;
    loop {
        // Send while the window allows and something is ready.
        let mut next_due: Option<Instant> = None;
        while !dead && inflight.len() < cfg.max_in_flight && !shared.abort.load(Ordering::Relaxed) {
            let now = Instant::now();
            let drained = {
                let mut acc = shared.acc();
                match acc.ready(&cfg.partitions, now) {
                    Ok(()) => acc.drain(cfg.node, &cfg.partitions, now),
                    Err(t) => {
                        next_due = t;
                        Vec::new()
                    }
                }
            };
            if drained.is_empty() {
                break;
            }
            let mut built = Vec::with_capacity(drained.len());
            for d in drained {
                let (bytes, records) = (d.buffered_bytes, d.records);
                match d.build() {
                    Ok(b) => built.push(b),
                    Err(e) => {
                        res.errors.client("build batch", || format!("cannot build a batch: {e}"));
                        res.failed_records += u64::from(records);
                        shared.acc().release(bytes);
                    }
                }
            }
            {
                let mut acc = shared.acc();
                for b in &built {
                    acc.observe(b);
                }
            }
            if built.is_empty() {
                continue;
            }
            let request = produce_request(&cfg, version, &built);
            res.requests += 1;
            res.batches += built.len() as u64;
            if cfg.acks == 0 {
                match conn.send_oneway(request).await {
                    Ok(_) => {
                        let now = Instant::now();
                        for b in &built {
                            res.acked.records += u64::from(b.records);
                            res.acked.payload_bytes += b.payload_bytes;
                            res.acked.wire_bytes += b.bytes.len() as u64;
                        }
                        progress.acked(built.iter().map(|b| u64::from(b.records)).sum(), built.iter().map(|b| b.payload_bytes).sum());
                        res.last_ack = Some(now);
                        release(&shared, &built);
                    }
                    Err(e) => {
                        res.errors.client(e.kind(), || e.to_string());
                        res.failed_records += built.iter().map(|b| u64::from(b.records)).sum::<u64>();
                        release(&shared, &built);
                        shared.abort(e.to_string());
                        dead = true;
                    }
                }
            } else {
                match conn.send_streamed(request).await {
                    Ok((correlation_id, sent_at)) => inflight.push_back(InFlight { correlation_id, sent_at, batches: built }),
                    Err(e) => {
                        res.errors.client(e.kind(), || e.to_string());
                        res.failed_records += built.iter().map(|b| u64::from(b.records)).sum::<u64>();
                        release(&shared, &built);
                        shared.abort(e.to_string());
                        dead = true;
                    }
                }
            }
        }

        let aborting = shared.abort.load(Ordering::Relaxed) || dead;
        if inflight.is_empty() {
            if aborting {
                break;
            }
            let acc = shared.acc();
            if acc.is_flushing() && acc.is_empty_for(&cfg.partitions) {
                break;
            }
        }

        // Wait for an answer, a wake-up, linger, or the oldest request's timeout.
        let now = Instant::now();
        let mut wait_until = next_due.unwrap_or(now + Duration::from_millis(100));
        if let Some(front) = inflight.front() {
            wait_until = wait_until.min(front.sent_at + cfg.timeout);
        }
        if aborting {
            wait_until = wait_until.min(now + Duration::from_millis(50));
        }
        tokio::select! {
            raw = stream.recv(), if !inflight.is_empty() => {
                let Some(raw) = raw else { break };
                handle_answer(raw, &cfg, &shared, &mut inflight, &mut last_offsets, &mut res, &progress);
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(wait_until.into()) => {
                if let Some(front) = inflight.front() {
                    if Instant::now() >= front.sent_at + cfg.timeout {
                        let err = ClientError::Timeout { addr: conn.addr().to_string(), api: "Produce", timeout: cfg.timeout };
                        shared.abort(err.to_string());
                        // Fails every request in flight; their errors come on the stream.
                        conn.fail(err);
                        dead = true;
                    }
                }
            }
        }
    }
    res
}

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

/// InitProducerId without a transactional id: an idempotent producer's id and epoch.
async fn init_producer_id(conn: &Connection, timeout: Duration) -> Result<(i64, i16), BenchError> {
    let req = InitProducerIdRequest {
        transactional_id: None,
        // What Kafka's Java producer sends when it is idempotent only.
        transaction_timeout_ms: i32::MAX,
        ..Default::default()
    };
    let deadline = Instant::now() + timeout;
    loop {
        let resp = match conn.call(RequestBody::InitProducerId(req.clone())).await? {
            ResponseBody::InitProducerId(r) => r,
            other => {
                return Err(BenchError::Protocol(format!("InitProducerId answered with {}", other.api_key().name())));
            }
        };
        match resp.error_code {
            0 => return Ok((resp.producer_id, resp.producer_epoch)),
            // 15: COORDINATOR_NOT_AVAILABLE.
            code if (is_retriable(code) || code == 15) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            code => return Err(BenchError::Kafka { api: "InitProducerId", code, detail: String::new() }),
        }
    }
}

fn release(shared: &Shared, batches: &[BuiltBatch]) {
    let mut acc = shared.acc();
    for b in batches {
        acc.release(b.buffered_bytes);
    }
    drop(acc);
    shared.space.notify_waiters();
}

fn produce_request(cfg: &SenderConfig, version: i16, batches: &[BuiltBatch]) -> RequestBody {
    let (name, topic_id) = if version >= 13 {
        (String::new(), cfg.topic.id)
    } else {
        (cfg.topic.name.clone(), strata_proto::Uuid::ZERO)
    };
    RequestBody::Produce(ProduceRequest {
        transactional_id: None,
        acks: cfg.acks,
        timeout_ms: cfg.timeout.as_millis().min(i32::MAX as u128) as i32,
        topic_data: vec![TopicProduceData {
            name,
            topic_id,
            partition_data: batches
                .iter()
                .map(|b| PartitionProduceData { index: b.partition, records: Some(b.bytes.clone()) })
                .collect(),
        }],
    })
}

fn handle_answer(
    raw: RawResponse,
    cfg: &SenderConfig,
    shared: &Shared,
    inflight: &mut VecDeque<InFlight>,
    last_offsets: &mut HashMap<i32, (i64, u32)>,
    res: &mut SenderResult,
    progress: &Progress,
) {
    // Kafka answers a connection's requests in order.
    let pos = inflight.iter().position(|f| f.correlation_id == raw.correlation_id);
    let Some(pos) = pos else {
        res.errors.client("unknown correlation id", || format!("answer to unknown request {}", raw.correlation_id));
        return;
    };
    if pos != 0 {
        res.errors.check("produce answers out of order", 1, || {
            format!("node {}: answer to request {} came before older ones", cfg.node, raw.correlation_id)
        });
    }
    let f = inflight.remove(pos).expect("position found");
    let received_at = raw.received_at;
    let resp = match raw.decode() {
        Ok(ResponseBody::Produce(r)) => r,
        Ok(other) => {
            let kind = other.api_key().name();
            res.errors.client("protocol", || format!("Produce answered with {kind}"));
            fail_batches(shared, res, &f.batches);
            return;
        }
        Err(e) => {
            res.errors.client(e.kind(), || e.to_string());
            if matches!(e, ClientError::Closed { .. } | ClientError::Timeout { .. }) {
                shared.abort(e.to_string());
            }
            fail_batches(shared, res, &f.batches);
            return;
        }
    };
    res.latency.record(received_at.saturating_duration_since(f.sent_at));
    res.throttle_ms += resp.throttle_time_ms.max(0) as u64;
    let now = Instant::now();
    let mut to_release = Vec::new();
    let mut acked_records = 0u64;
    let mut acked_bytes = 0u64;
    for b in f.batches {
        match find_partition(&resp, cfg, b.partition) {
            None => {
                res.errors.check("produce answer lacks a partition", 1, || {
                    format!("{}-{}: no answer for this partition", cfg.topic.name, b.partition)
                });
                res.failed_records += u64::from(b.records);
                to_release.push(b);
            }
            // DUPLICATE_SEQUENCE_NUMBER: an idempotent retry the broker already had.
            Some((code @ (0 | DUPLICATE_SEQUENCE_NUMBER), base)) if code == 0 || cfg.idempotent => {
                // A retry the broker deduplicated is answered with its first offset,
                // which may lie behind batches acknowledged since.
                if !(cfg.idempotent && b.attempts > 0) {
                    check_base_offset(cfg, last_offsets, res, b.partition, base, b.records);
                }
                res.acked.records += u64::from(b.records);
                res.acked.payload_bytes += b.payload_bytes;
                res.acked.wire_bytes += b.bytes.len() as u64;
                acked_records += u64::from(b.records);
                acked_bytes += b.payload_bytes;
                if base >= 0 {
                    let end = base + i64::from(b.records);
                    let e = res.acked_end.entry(b.partition).or_insert(end);
                    *e = (*e).max(end);
                }
                to_release.push(b);
            }
            Some((code, _)) => {
                res.errors.kafka("Produce", code);
                // An idempotent producer resends batches refused because an earlier one failed.
                let retriable = is_retriable(code) || (cfg.idempotent && code == OUT_OF_ORDER_SEQUENCE_NUMBER);
                if retriable && b.attempts < cfg.retries && !shared.abort.load(Ordering::Relaxed) {
                    res.retried += 1;
                    shared.acc().reenqueue(b, now);
                } else {
                    res.failed_records += u64::from(b.records);
                    to_release.push(b);
                }
            }
        }
    }
    res.last_ack = Some(received_at);
    progress.acked(acked_records, acked_bytes);
    release(shared, &to_release);
}

fn fail_batches(shared: &Shared, res: &mut SenderResult, batches: &[BuiltBatch]) {
    res.failed_records += batches.iter().map(|b| u64::from(b.records)).sum::<u64>();
    release(shared, batches);
}

/// (error code, base offset) of `partition` in the answer.
fn find_partition(resp: &ProduceResponse, cfg: &SenderConfig, partition: i32) -> Option<(i16, i64)> {
    resp.responses
        .iter()
        .filter(|t| t.name == cfg.topic.name || (!t.topic_id.is_zero() && t.topic_id == cfg.topic.id))
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .map(|p| (p.error_code, p.base_offset))
}

/// Base offsets of one partition, in answer order, must not go backwards:
/// each acknowledged batch starts at or after the end of the one before.
fn check_base_offset(
    cfg: &SenderConfig,
    last: &mut HashMap<i32, (i64, u32)>,
    res: &mut SenderResult,
    partition: i32,
    base: i64,
    records: u32,
) {
    if let Some(problem) = base_offset_problem(last.get(&partition).copied(), base) {
        let topic = &cfg.topic.name;
        res.errors.check(problem, 1, || {
            format!("{topic}-{partition}: batch acknowledged at base offset {base} after {:?} (base, records)", last.get(&partition))
        });
    }
    if base >= 0 {
        last.insert(partition, (base, records));
    }
}

/// What is wrong with an acknowledged base offset, given the previous (base, records) of the partition.
pub fn base_offset_problem(previous: Option<(i64, u32)>, base: i64) -> Option<&'static str> {
    if base < 0 {
        return Some("produce acknowledged without a base offset");
    }
    match previous {
        Some((b, n)) if base < b + i64::from(n) => Some("produce offsets overlap or go backwards"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_offsets_must_move_forward() {
        assert_eq!(base_offset_problem(None, 0), None);
        assert_eq!(base_offset_problem(Some((0, 10)), 10), None);
        assert_eq!(base_offset_problem(Some((0, 10)), 25), None, "other producers may write in between");
        assert_eq!(base_offset_problem(Some((0, 10)), 9), Some("produce offsets overlap or go backwards"));
        assert_eq!(base_offset_problem(Some((100, 1)), 50), Some("produce offsets overlap or go backwards"));
        assert_eq!(base_offset_problem(Some((0, 10)), -1), Some("produce acknowledged without a base offset"));
    }
}
