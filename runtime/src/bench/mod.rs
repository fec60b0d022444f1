//! `strata bench`: a load generator and checker for any Kafka-compatible
//! broker, built on Strata's own codec (`strata-proto`).
//!
//! It speaks the standard protocol only, so it treats Apache Kafka, Redpanda
//! and Strata alike: ApiVersions on every connection (the highest version
//! both sides speak is used), Metadata to find each partition's leader, one
//! connection per leader for the producer and another for the consumer,
//! CreateTopics when asked (then Metadata until every partition has a
//! leader). The producer batches like Kafka's Java producer (per-partition
//! batches, `batch.size`, `linger.ms`, `max.in.flight`, `buffer.memory`,
//! sticky partitioning, compression); the consumer fetches partitions
//! assigned directly, with no group.
//!
//! It checks the broker as it goes: produce error codes and base offsets that
//! only move forward; consumed offsets without gaps or duplicates, valid CRCs,
//! nothing past the high watermark; in e2e runs, that every acknowledged
//! record is consumed. Failures show in the report's `errors.checks`.
//!
//! Entry point: [`run`] with [`BenchArgs`] (a `clap::Args`), then print the
//! [`Report`] (`Display`, or [`Report::to_json`] for `--json`).

pub mod accumulator;
pub mod args;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod errors;
pub mod produce;
pub mod report;

#[cfg(test)]
mod fake_broker;
#[cfg(test)]
mod tests;


use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use args::{BenchArgs, ConsumeArgs, E2eArgs, ProduceArgs, Workload};
pub use report::Report;

use args::{ConnArgs, ConsumerArgs, LimitArgs, ProducerArgs, StartFrom, TopicArgs};
use client::{ClientError, ConnectOptions, Connection};
use cluster::{list_offsets, Cluster, Created, TopicInfo, EARLIEST, LATEST};
use consume::{ConsumeControl, FetchConfig};
use report::{ConsumeReport, ErrorCounts};

/// Why a run could not be carried out (problems *during* a run are counted
/// in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad or contradictory flags.
    #[error("{0}")]
    Args(String),
    /// Talking to a broker failed.
    #[error(transparent)]
    Client(ClientError),
    /// The broker answered something this client cannot use.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A Kafka error code that stops the run (e.g. CreateTopics refused).
    #[error("{api} failed: {} {detail}", cluster::code_text(*code))]
    Kafka {
        /// The api.
        api: &'static str,
        /// Kafka error code.
        code: i16,
        /// More words.
        detail: String,
    },
    /// The topic does not exist and --create-topic was not given.
    #[error("topic {0} does not exist (add --create-topic to create it)")]
    NoTopic(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Maps monotonic instants to wall-clock nanoseconds since the Unix epoch,
/// from one reading of the system clock (so that times never go backwards
/// within a run, and producer and consumer in one process agree exactly).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base: Instant,
    base_nanos: u64,
}

impl WallClock {
    /// Reads the system clock once.
    pub fn new() -> WallClock {
        let base = Instant::now();
        let base_nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        WallClock { base, base_nanos }
    }

    /// Nanoseconds since the epoch at `t`.
    pub fn nanos_at(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.base) {
            Some(d) => self.base_nanos + d.as_nanos() as u64,
            None => self.base_nanos.saturating_sub(self.base.duration_since(t).as_nanos() as u64),
        }
    }

    /// Nanoseconds since the epoch now.
    pub fn now_nanos(&self) -> u64 {
        self.nanos_at(Instant::now())
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Live counters for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    acked: AtomicU64,
    acked_bytes: AtomicU64,
    consumed: AtomicU64,
    consumed_bytes: AtomicU64,
}

impl Progress {
    fn acked(&self, records: u64, bytes: u64) {
        self.acked.fetch_add(records, Ordering::Relaxed);
        self.acked_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn consumed(&self, records: u64, bytes: u64) {
        self.consumed.fetch_add(records, Ordering::Relaxed);
        self.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [u64; 4] {
        [
            self.acked.load(Ordering::Relaxed),
            self.acked_bytes.load(Ordering::Relaxed),
            self.consumed.load(Ordering::Relaxed),
            self.consumed_bytes.load(Ordering::Relaxed),
        ]
    }
}

/// Prints a progress line to stderr every `every` until dropped.
struct ProgressPrinter(Option<tokio::task::JoinHandle<()>>);

impl ProgressPrinter {
    fn start(progress: Arc<Progress>, every: Duration, produce: bool, consume: bool) -> ProgressPrinter {
        if every.is_zero() {
            return ProgressPrinter(None);
        }
        let start = Instant::now();
        ProgressPrinter(Some(tokio::spawn(async move {
            let mut last = progress.snapshot();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let now = progress.snapshot();
                let secs = every.as_secs_f64();
                let mut line = format!("[{:>7.1}s]", start.elapsed().as_secs_f64());
                if produce {
                    line += &format!(
                        " produced {} ({} records/s, {:.2} MB/s)",
                        report::group(now[0]),
                        report::group(((now[0] - last[0]) as f64 / secs) as u64),
                        (now[1] - last[1]) as f64 / 1e6 / secs
                    );
                }
                if consume {
                    line += &format!(
                        " consumed {} ({} records/s, {:.2} MB/s)",
                        report::group(now[2]),
                        report::group(((now[2] - last[2]) as f64 / secs) as u64),
                        (now[3] - last[3]) as f64 / 1e6 / secs
                    );
                }
                eprintln!("{line}");
                last = now;
            }
        })))
    }
}

impl Drop for ProgressPrinter {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Runs a workload and returns its report. Errors that stop the run before
/// it measures anything (no broker, no topic, bad flags) are `Err`; errors
/// during the run are counted in the report.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    match args.workload {
        Workload::Produce(a) => run_produce(a).await,
        Workload::Consume(a) => run_consume(a).await,
        Workload::E2e(a) => run_e2e(a).await,
    }
}

/// The cluster, the topic and the partitions a run uses.
struct Setup {
    cluster: Cluster,
    topic: TopicInfo,
    partitions: Vec<i32>,
    timeout: Duration,
    notes: Vec<String>,
}

async fn setup(conn: &ConnArgs, t: &TopicArgs, max_frame: usize) -> Result<Setup, BenchError> {
    if t.create_topic && t.partitions < 1 {
        return Err(BenchError::Args("--partitions must be at least 1".into()));
    }
    let timeout = Duration::from_millis(conn.request_timeout_ms.max(1));
    let opts = ConnectOptions { client_id: Some(conn.client_id.clone()), timeout, max_frame };
    let mut cluster = Cluster::connect(&conn.bootstrap, opts).await?;
    let mut notes = Vec::new();
    let existing = cluster.metadata(&t.topic).await?;
    let mut want_partitions = None;
    if existing.is_none() {
        if !t.create_topic {
            return Err(BenchError::NoTopic(t.topic.clone()));
        }
        let (created, n) = cluster.create_topic(&t.topic, t.partitions, t.replication_factor, &t.topic_configs).await?;
        notes.extend(n);
        if created == Created::AlreadyExisted {
            notes.push(format!("topic {} was created by someone else meanwhile", t.topic));
        } else {
            want_partitions = Some(t.partitions);
        }
    }
    let topic = cluster.wait_for_topic(&t.topic, want_partitions, timeout).await?;
    if t.create_topic && existing.is_some() && topic.partitions.len() as i32 != t.partitions {
        notes.push(format!(
            "topic {} already existed with {} partitions (not the {} asked for); used as it is",
            t.topic,
            topic.partitions.len(),
            t.partitions
        ));
    }
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.index).collect();
    let partitions = if t.partition_ids.is_empty() {
        all
    } else {
        for p in &t.partition_ids {
            if !all.contains(p) {
                return Err(BenchError::Args(format!("topic {} has no partition {p}", t.topic)));
            }
        }
        let mut ps = t.partition_ids.clone();
        ps.sort_unstable();
        ps.dedup();
        ps
    };
    Ok(Setup { cluster, topic, partitions, timeout, notes })
}

/// One new connection to each leader of `partitions`.
async fn leader_connections(s: &Setup) -> Result<BTreeMap<i32, Connection>, BenchError> {
    let mut out = BTreeMap::new();
    for node in s.topic.by_leader(&s.partitions).keys() {
        out.insert(*node, s.cluster.connect_node(*node).await?);
    }
    Ok(out)
}

/// Connections for `n` producers: each gets its own to every leader.
async fn producer_connections(s: &Setup, n: usize) -> Result<Vec<BTreeMap<i32, Connection>>, BenchError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(leader_connections(s).await?);
    }
    Ok(out)
}

/// Fetchers for `n` consumers: the partitions are dealt out round-robin,
/// and each consumer has its own connection to each of its leaders.
async fn consumer_fetchers(s: &Setup, n: usize) -> Result<Vec<(Connection, Vec<i32>)>, BenchError> {
    let n = n.max(1);
    let mut out = Vec::new();
    for i in 0..n {
        let mine: Vec<i32> = s.partitions.iter().enumerate().filter(|(j, _)| j % n == i).map(|(_, p)| *p).collect();
        if mine.is_empty() {
            continue;
        }
        for (node, ps) in s.topic.by_leader(&mine) {
            out.push((s.cluster.connect_node(node).await?, ps));
        }
    }
    Ok(out)
}

fn check_producer_args(p: &ProducerArgs, e2e: bool) -> Result<(), BenchError> {
    if p.batch_size == 0 || p.max_in_flight == 0 || p.max_request_size == 0 || p.producers == 0 {
        return Err(BenchError::Args(
            "--batch-size, --max-in-flight, --max-request-size and --producers must be positive".into(),
        ));
    }
    if !(p.rate >= 0.0 && p.rate.is_finite()) {
        return Err(BenchError::Args("--rate must be 0 (unlimited) or a positive number".into()));
    }
    if e2e && p.record_size < accumulator::TIMESTAMP_BYTES {
        return Err(BenchError::Args(format!(
            "e2e needs --record-size of at least {} bytes (the produce time travels in the value)",
            accumulator::TIMESTAMP_BYTES
        )));
    }
    Ok(())
}

fn default_limit(limit: &LimitArgs, notes: &mut Vec<String>) -> LimitArgs {
    let mut l = limit.clone();
    if l.num_records.is_none() && l.duration.is_none() {
        l.num_records = Some(1_000_000);
        notes.push("neither --num-records nor --duration given: produced 1,000,000 records".into());
    }
    l
}

fn conn_params(c: &ConnArgs, s: &Setup) -> Vec<(String, String)> {
    let leaders = s.topic.by_leader(&s.partitions);
    vec![
        ("bootstrap.servers".into(), c.bootstrap.join(",")),
        ("brokers".into(), s.cluster.brokers.iter().map(|(id, a)| format!("{id}={a}")).collect::<Vec<_>>().join(" ")),
        ("topic".into(), s.topic.name.clone()),
        ("partitions".into(), format!("{} of {} ({} leaders)", s.partitions.len(), s.topic.partitions.len(), leaders.len())),
        ("request.timeout.ms".into(), c.request_timeout_ms.to_string()),
    ]
}

fn limit_params(l: &LimitArgs) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(n) = l.num_records {
        v.push(("num.records".into(), n.to_string()));
    }
    if let Some(d) = l.duration {
        v.push(("duration".into(), format!("{:.3}s", d.as_secs_f64())));
    }
    v
}

fn producer_params(p: &ProducerArgs) -> Vec<(String, String)> {
    vec![
        ("record.size".into(), format!("{} bytes (value, no key)", p.record_size)),
        ("acks".into(), if p.acks == -1 { "all".into() } else { p.acks.to_string() }),
        ("compression.type".into(), strata_proto::records::Compression::from(p.compression).to_string()),
        ("linger.ms".into(), p.linger_ms.to_string()),
        ("batch.size".into(), p.batch_size.to_string()),
        ("max.in.flight.requests.per.connection".into(), p.max_in_flight.to_string()),
        ("max.request.size".into(), p.max_request_size.to_string()),
        ("buffer.memory".into(), p.buffer_memory.to_string()),
        ("target rate".into(), if p.rate > 0.0 { format!("{} records/s", p.rate) } else { "unlimited".into() }),
        ("partitioner".into(), format!("{:?}", p.partitioner).to_lowercase()),
        ("retries".into(), p.retries.to_string()),
        ("enable.idempotence".into(), p.idempotence.to_string()),
        ("producers".into(), p.producers.to_string()),
    ]
}

fn consumer_params(c: &ConsumerArgs, from: StartFrom) -> Vec<(String, String)> {
    vec![
        ("from".into(), format!("{from:?}").to_lowercase()),
        ("fetch.min.bytes".into(), c.fetch_min_bytes.to_string()),
        ("fetch.max.wait.ms".into(), c.fetch_max_wait_ms.to_string()),
        ("fetch.max.bytes".into(), c.fetch_max_bytes.to_string()),
        ("max.partition.fetch.bytes".into(), c.max_partition_fetch_bytes.to_string()),
        ("consumers".into(), c.consumers.to_string()),
    ]
}

fn api_versions(conn: &Connection) -> Vec<(String, i16)> {
    use strata_proto::ApiKey;
    [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets, ApiKey::CreateTopics]
        .iter()
        .filter_map(|k| conn.versions().pick(*k).map(|v| (k.name().to_string(), v)))
        .collect()
}

fn max_frame(c: Option<&ConsumerArgs>) -> usize {
    let fetch = c.map_or(0, |c| c.fetch_max_bytes.max(0) as usize);
    (fetch + (16 << 20)).max(100 << 20)
}

async fn run_produce(a: ProduceArgs) -> Result<Report, BenchError> {
    check_producer_args(&a.producer, false)?;
    let s = setup(&a.conn, &a.topic, max_frame(None)).await?;
    let mut notes = s.notes.clone();
    let limit = default_limit(&a.limit, &mut notes);
    let conns = producer_connections(&s, a.producer.producers).await?;
    let progress = Arc::new(Progress::default());
    let printer = ProgressPrinter::start(progress.clone(), Duration::from_secs(a.conn.progress_secs), true, false);
    let clock = WallClock::new();
    let out = produce::run(conns, &s.topic, &s.partitions, &a.producer, &limit, s.timeout, progress, clock).await?;
    drop(printer);
    let mut report = Report {
        workload: "produce".into(),
        parameters: [conn_params(&a.conn, &s), limit_params(&limit), producer_params(&a.producer)].concat(),
        api_versions: api_versions(s.cluster.bootstrap()),
        ..Default::default()
    };
    finish_produce_notes(&out, &mut notes);
    report.produce = Some(out.report);
    report.errors = out.errors;
    report.notes = notes;
    Ok(report)
}

fn finish_produce_notes(out: &produce::ProduceOutcome, notes: &mut Vec<String>) {
    if let Some(reason) = &out.aborted {
        notes.push(format!("the producer stopped early: {reason}"));
    }
    let settled = out.report.throughput.records + out.report.records_failed;
    if out.generated > settled {
        notes.push(format!("{} records were generated but never acknowledged", report::group(out.generated - settled)));
    }
}

async fn starting_offsets(
    s: &Setup,
    conns: &BTreeMap<i32, Connection>,
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, BenchError> {
    let mut out = BTreeMap::new();
    for (node, ps) in s.topic.by_leader(&s.partitions) {
        let conn = conns.get(&node).ok_or_else(|| BenchError::Protocol(format!("no connection to node {node}")))?;
        out.extend(list_offsets(conn, &s.topic.name, &ps, timestamp, s.timeout).await?);
    }
    Ok(out)
}

fn fetch_config(s: &Setup, c: &ConsumerArgs, e2e: bool, clock: &WallClock) -> FetchConfig {
    FetchConfig {
        topic: s.topic.clone(),
        args: c.clone(),
        e2e,
        run_start_nanos: clock.now_nanos(),
        backoff: Duration::from_millis(100),
    }
}

fn consume_report(out: &consume::ConsumeOutcome, notes: &mut Vec<String>, e2e: bool) -> ConsumeReport {
    if out.future_timestamps > 0 {
        notes.push(format!(
            "{} records carried a produce time later than their consume time (clock skew); counted as 0 latency",
            out.future_timestamps
        ));
    }
    ConsumeReport {
        throughput: out.throughput,
        fetches: out.fetches,
        empty_fetches: out.empty_fetches,
        e2e_latency: if e2e { out.e2e.summary() } else { None },
    }
}

async fn run_consume(a: ConsumeArgs) -> Result<Report, BenchError> {
    if a.consumer.from == StartFrom::Latest && a.limit.num_records.is_none() && a.limit.duration.is_none() {
        return Err(BenchError::Args("consuming from latest needs --num-records or --duration".into()));
    }
    if a.consumer.consumers == 0 {
        return Err(BenchError::Args("--consumers must be positive".into()));
    }
    let s = setup(&a.conn, &a.topic, max_frame(Some(&a.consumer))).await?;
    let mut notes = s.notes.clone();
    let conns = leader_connections(&s).await?;
    let ctl = Arc::new(ConsumeControl::new());
    let starts = match a.consumer.from {
        StartFrom::Earliest => starting_offsets(&s, &conns, EARLIEST).await?,
        StartFrom::Latest => starting_offsets(&s, &conns, LATEST).await?,
    };
    if a.limit.num_records.is_none() && a.limit.duration.is_none() {
        let ends = starting_offsets(&s, &conns, LATEST).await?;
        notes.push("consumed up to the end offsets seen at the start".into());
        ctl.set_ends(ends);
    }
    if let Some(n) = a.limit.num_records {
        ctl.set_target(n);
    }
    if let Some(d) = a.limit.duration {
        ctl.set_deadline(Instant::now() + d);
    }
    let progress = Arc::new(Progress::default());
    let printer = ProgressPrinter::start(progress.clone(), Duration::from_secs(a.conn.progress_secs), false, true);
    let clock = WallClock::new();
    let cfg = fetch_config(&s, &a.consumer, false, &clock);
    let fetchers = consumer_fetchers(&s, a.consumer.consumers).await?;
    drop(conns);
    let out = consume::run(fetchers, starts, cfg, ctl, progress, clock).await;
    drop(printer);
    let consume = consume_report(&out, &mut notes, false);
    Ok(Report {
        workload: "consume".into(),
        parameters: [conn_params(&a.conn, &s), limit_params(&a.limit), consumer_params(&a.consumer, a.consumer.from)]
            .concat(),
        api_versions: api_versions(s.cluster.bootstrap()),
        produce: None,
        consume: Some(consume),
        errors: out.errors,
        notes,
    })
}

async fn run_e2e(a: E2eArgs) -> Result<Report, BenchError> {
    check_producer_args(&a.producer, true)?;
    let s = setup(&a.conn, &a.topic, max_frame(Some(&a.consumer))).await?;
    let mut notes = s.notes.clone();
    let limit = default_limit(&a.limit, &mut notes);
    if a.consumer.from == StartFrom::Earliest {
        notes.push("e2e consumes from the latest offsets (only this run's records)".into());
    }
    if a.consumer.consumers == 0 {
        return Err(BenchError::Args("--consumers must be positive".into()));
    }
    let producer_conns = producer_connections(&s, a.producer.producers).await?;
    let fetchers = consumer_fetchers(&s, a.consumer.consumers).await?;
    // Positions first, so that the consumer sees every record produced.
    let starts = {
        let conns = leader_connections(&s).await?;
        starting_offsets(&s, &conns, LATEST).await?
    };
    let ctl = Arc::new(ConsumeControl::new());
    let progress = Arc::new(Progress::default());
    let printer = ProgressPrinter::start(progress.clone(), Duration::from_secs(a.conn.progress_secs), true, true);
    let clock = WallClock::new();
    let cfg = fetch_config(&s, &a.consumer, true, &clock);
    let consumer = tokio::spawn(consume::run(
        fetchers,
        starts.clone(),
        cfg,
        ctl.clone(),
        progress.clone(),
        clock,
    ));
    let produced = produce::run(producer_conns, &s.topic, &s.partitions, &a.producer, &limit, s.timeout, progress, clock).await;
    let produced = match produced {
        Ok(p) => p,
        Err(e) => {
            ctl.stop();
            let _ = consumer.await;
            return Err(e);
        }
    };
    // Tell the consumer where to stop: after the last acknowledged record of
    // each partition (or, with acks=0, after as many records as were sent).
    if a.producer.acks == 0 {
        ctl.set_target(produced.report.throughput.records);
    } else {
        let ends: BTreeMap<i32, i64> =
            starts.iter().map(|(p, start)| (*p, produced.acked_end.get(p).copied().unwrap_or(*start))).collect();
        ctl.set_ends(ends);
    }
    ctl.set_deadline(Instant::now() + a.drain_timeout);
    let consumed = consumer.await.map_err(|e| BenchError::Protocol(format!("the consumer task failed: {e}")))?;
    drop(printer);

    let mut errors = ErrorCounts::default();
    errors.merge(produced.errors.clone());
    errors.merge(consumed.errors.clone());
    // Every acknowledged record must have been consumed.
    if a.producer.acks != 0 {
        for (p, end) in &produced.acked_end {
            let pos = consumed.positions.get(p).copied().unwrap_or(0);
            if pos < *end {
                let topic = &s.topic.name;
                errors.check("acknowledged records never consumed", (*end - pos) as u64, || {
                    format!("{topic}-{p}: acknowledged up to offset {} but consumed only up to {pos} within {:?}", end - 1, a.drain_timeout)
                });
            }
        }
    } else if consumed.throughput.records < produced.report.throughput.records {
        notes.push(format!(
            "acks=0: {} records sent, {} consumed",
            produced.report.throughput.records, consumed.throughput.records
        ));
    }
    finish_produce_notes(&produced, &mut notes);
    let consume = consume_report(&consumed, &mut notes, true);
    let mut parameters = [conn_params(&a.conn, &s), limit_params(&limit), producer_params(&a.producer)].concat();
    parameters.extend(consumer_params(&a.consumer, StartFrom::Latest));
    if a.producer.rate <= 0.0 {
        notes.push(
            "e2e at an unlimited rate: latency includes time queued in the producer's buffer (buffer.memory); \
             give --rate for the latency at a given load"
                .into(),
        );
    }
    parameters.push(("drain timeout".into(), format!("{:?}", a.drain_timeout)));
    parameters.push(("e2e latency".into(), "consume time - produce time in the value's first 8 bytes".into()));
    Ok(Report {
        workload: "e2e".into(),
        parameters,
        api_versions: api_versions(s.cluster.bootstrap()),
        produce: Some(produced.report),
        consume: Some(consume),
        errors,
        notes,
    })
}
