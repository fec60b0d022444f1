//! The command line of `strata bench`.
//!
//! Defaults follow Apache Kafka's Java clients (4.x) wherever the same knob
//! exists, so that a run against Kafka, Redpanda or Strata measures the
//! broker and not a tuning difference.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use strata_proto::records::Compression;

/// Load generator and checker for any Kafka-compatible broker.
///
/// Speaks the standard Kafka protocol only: negotiates versions with
/// ApiVersions, finds partition leaders with Metadata and connects to each
/// leader, so it treats Apache Kafka, Redpanda and Strata alike. It also
/// checks the broker: produce answers (error codes, base offsets that only
/// move forward) and fetched offsets (no gaps, no duplicates, valid CRCs).
/// Throughput is given in records/s and MB/s, where 1 MB = 10^6 bytes.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    strata bench produce --create-topic --partitions 8 --num-records 1000000 --record-size 1024\n  \
    strata bench consume --from earliest --json\n  \
    strata bench e2e --create-topic --partitions 4 --rate 10000 --duration 60s --acks all")]
pub struct BenchArgs {
    /// Print the report as one JSON object (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The workload.
    #[command(subcommand)]
    pub workload: Workload,
}

/// What to run.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// Produce records as fast as allowed and measure throughput and
    /// request latency (send → ack).
    Produce(ProduceArgs),
    /// Consume a topic's partitions (assigned directly, no consumer group)
    /// and check that offsets run without gaps or duplicates.
    Consume(ConsumeArgs),
    /// Produce and consume at once; measures end-to-end latency (consume
    /// time minus the produce time carried in each record's first 8 bytes).
    #[command(alias = "both")]
    E2e(E2eArgs),
}

/// `strata bench produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub topic: TopicArgs,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

/// `strata bench consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub topic: TopicArgs,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// `strata bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub topic: TopicArgs,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten)]
    pub producer: ProducerArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    /// After the producer stops, how long the consumer may take to read the
    /// last acknowledged record before the missing ones are reported as lost.
    #[arg(long, default_value = "30s", value_parser = parse_duration, help_heading = "Run")]
    pub drain_timeout: Duration,
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(short = 'b', long = "bootstrap-servers", alias = "bootstrap", value_delimiter = ',', default_value = "localhost:9092")]
    pub bootstrap: Vec<String>,
    /// client.id sent in every request header.
    #[arg(long, default_value = "strata-bench")]
    pub client_id: String,
    /// request.timeout.ms: how long to wait for any answer.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Print progress to stderr every this many seconds (0: never).
    #[arg(long, default_value_t = 5)]
    pub progress_secs: u64,
}

/// Which topic, and whether to create it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Topic")]
pub struct TopicArgs {
    /// Topic name.
    #[arg(short = 't', long, default_value = "strata-bench")]
    pub topic: String,
    /// Create the topic (CreateTopics) if it does not exist, then wait until
    /// Metadata shows a leader for every partition.
    #[arg(long)]
    pub create_topic: bool,
    /// Number of partitions when creating the topic.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor when creating the topic (-1: the broker's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// A topic config for creation, KEY=VALUE (repeatable), e.g. min.insync.replicas=2.
    #[arg(long = "topic-config", value_parser = parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// Use only these partitions, comma-separated (default: all of the topic's).
    #[arg(long, value_delimiter = ',')]
    pub partition_ids: Vec<i32>,
}

/// When to stop.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Run")]
pub struct LimitArgs {
    /// Stop after this many records (produced, or consumed for `consume`).
    #[arg(short = 'n', long)]
    pub num_records: Option<u64>,
    /// Stop after this long, e.g. 30s, 500ms, 2m (a bare number is seconds).
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// The producer's knobs, named after Kafka's producer configs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Producer")]
pub struct ProducerArgs {
    /// Bytes of value per record (no key). The first 8 bytes carry the
    /// produce time (u64 nanoseconds since the Unix epoch, big-endian); the
    /// rest are random uppercase letters, as Kafka's producer-perf-test does.
    #[arg(short = 's', long, default_value_t = 1024)]
    pub record_size: usize,
    /// acks: 0 (no answer), 1 (leader) or -1/all.
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_negative_numbers = true)]
    pub acks: i16,
    /// compression.type.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// linger.ms: how long a batch may wait for more records before it is sent.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// batch.size: bytes per partition batch; a full batch is sent at once.
    #[arg(long, default_value_t = 16_384)]
    pub batch_size: usize,
    /// max.in.flight.requests.per.connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// max.request.size: the largest Produce request.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_request_size: usize,
    /// buffer.memory: bytes of records buffered before the producer waits.
    #[arg(long, default_value_t = 33_554_432)]
    pub buffer_memory: usize,
    /// Target rate in records/s (0: as fast as possible).
    #[arg(short = 'r', long, default_value_t = 0.0)]
    pub rate: f64,
    /// How records are spread over partitions: sticky (fill batch.size bytes
    /// on one partition, then move to the next, as Kafka's default
    /// partitioner does for unkeyed records) or round-robin (per record).
    #[arg(long, value_enum, default_value_t = Partitioner::Sticky)]
    pub partitioner: Partitioner,
    /// retries for retriable errors (e.g. NOT_LEADER_OR_FOLLOWER); every
    /// error is counted in the report, retried or not.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// retry.backoff.ms.
    #[arg(long, default_value_t = 100)]
    pub retry_backoff_ms: u64,
    /// enable.idempotence: get a producer id (InitProducerId) and number
    /// every batch, so the broker deduplicates retries. Kafka's Java producer
    /// turns it on by default with acks=all; here it is off unless asked.
    #[arg(long)]
    pub idempotence: bool,
    /// Independent producers, each with its own connections, accumulator
    /// and generator (like running this many client processes);
    /// --num-records and --rate are split evenly among them.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
}

/// The consumer's knobs, named after Kafka's consumer configs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Consumer")]
pub struct ConsumerArgs {
    /// Where to start: earliest or latest (e2e always starts at latest).
    /// With earliest and neither --num-records nor --duration, `consume`
    /// stops at the end offsets it saw when it started.
    #[arg(long, value_enum, default_value_t = StartFrom::Earliest)]
    pub from: StartFrom,
    /// fetch.min.bytes.
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    /// fetch.max.wait.ms.
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
    /// fetch.max.bytes.
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// max.partition.fetch.bytes.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_partition_fetch_bytes: i32,
    /// Independent consumers, each with its own connections; the partitions
    /// are dealt out among them round-robin (like a group of this many members).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
}

/// compression.type values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// Where a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartFrom {
    /// The log start offset.
    Earliest,
    /// The log end offset (only records produced after the start).
    Latest,
}

/// How unkeyed records are spread over partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Partitioner {
    /// batch.size bytes to one partition, then the next.
    Sticky,
    /// One record to each partition in turn.
    RoundRobin,
}

/// Parses 30s, 500ms, 2m, 1h, 1.5 (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?} (try 30s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" | "secs" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses acks: 0, 1, -1 or all.
pub fn parse_acks(s: &str) -> Result<i16, String> {
    match s.trim() {
        "0" => Ok(0),
        "1" => Ok(1),
        "-1" | "all" => Ok(-1),
        other => Err(format!("acks must be 0, 1, -1 or all, not {other:?}")),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Debug, Subcommand)]
    enum Top {
        Bench(BenchArgs),
    }

    fn parse(args: &[&str]) -> BenchArgs {
        let mut v = vec!["strata", "bench"];
        v.extend_from_slice(args);
        let Top::Bench(b) = Cli::try_parse_from(v).unwrap_or_else(|e| panic!("{e}")).cmd;
        b
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn produce_defaults_follow_the_java_producer() {
        let b = parse(&["produce"]);
        assert!(!b.json);
        let Workload::Produce(p) = b.workload else { panic!() };
        assert_eq!(p.conn.bootstrap, vec!["localhost:9092"]);
        assert_eq!(p.producer.acks, -1);
        assert_eq!(p.producer.batch_size, 16_384);
        assert_eq!(p.producer.linger_ms, 5);
        assert_eq!(p.producer.max_in_flight, 5);
        assert_eq!(p.producer.compression, CompressionArg::None);
        assert_eq!(p.topic.replication_factor, -1);
    }

    #[test]
    fn flags_parse() {
        let b = parse(&[
            "e2e", "--json", "-b", "a:1,b:2", "--acks", "1", "--compression", "zstd", "--rate", "1000", "-d", "10s",
            "--create-topic", "-p", "8", "--topic-config", "min.insync.replicas=2", "--partition-ids", "1,3",
            "--from", "latest", "--replication-factor", "-1",
        ]);
        assert!(b.json);
        let Workload::E2e(e) = b.workload else { panic!() };
        assert_eq!(e.conn.bootstrap, vec!["a:1", "b:2"]);
        assert_eq!(e.producer.acks, 1);
        assert_eq!(e.producer.compression, CompressionArg::Zstd);
        assert_eq!(e.producer.rate, 1000.0);
        assert_eq!(e.limit.duration, Some(Duration::from_secs(10)));
        assert!(e.topic.create_topic);
        assert_eq!(e.topic.partitions, 8);
        assert_eq!(e.topic.topic_configs, vec![("min.insync.replicas".to_string(), "2".to_string())]);
        assert_eq!(e.topic.partition_ids, vec![1, 3]);
        assert_eq!(e.consumer.from, StartFrom::Latest);
        let b = parse(&["both", "--acks", "-1"]);
        let Workload::E2e(e) = b.workload else { panic!() };
        assert_eq!(e.producer.acks, -1);
    }
}
