//! The `strata` command line: `strata serve` (the broker) and `strata bench`
//! (the load tool). Every `serve` flag can also be set by an environment
//! variable `STRATA_<FLAG>` (flag wins).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Strata: a Kafka-compatible broker that keeps record data in an object store.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a broker: serve Kafka clients, keep data in the object store and the
    /// order of everything in the sequencer.
    Serve(Box<ServeArgs>),
    /// Load generator and checker for any Kafka-compatible broker.
    Bench(Box<crate::bench::BenchArgs>),
    /// Ask a running broker, on its internal listener: status, flush, drain.
    Admin(AdminArgs),
}

/// The flags of `strata admin`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// What to ask.
    #[command(subcommand)]
    pub action: AdminAction,
    /// The broker's internal address (its --internal-listen, by default its
    /// Kafka port + 1).
    #[arg(long, global = true, env = "STRATA_ADMIN_ADDR", default_value = "127.0.0.1:9093")]
    pub addr: String,
    /// Print the answer as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up after this many milliseconds (flush and drain wait for the
    /// broker's objects to be committed).
    #[arg(long, global = true, default_value_t = 60_000)]
    pub timeout_ms: u64,
}

/// What `strata admin` asks.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminAction {
    /// Node id, cluster, applied revision, live brokers, buffered bytes, and
    /// where reads went (peers, object store).
    Status,
    /// Write the broker's open object now; returns once it and every object
    /// before it are committed, with the applied revision.
    Flush,
    /// Stop taking produce on this broker (clients get the retriable
    /// NOT_LEADER_OR_FOLLOWER and move to the others), leave the live-broker
    /// set (partition leaders and group coordinators move), write what is
    /// buffered and return once it is committed. The broker keeps serving
    /// fetches until it is stopped (SIGTERM), or exits at once with --exit.
    Drain {
        /// Exit the broker (gracefully) once drained.
        #[arg(long)]
        exit: bool,
    },
}

const MIB: u64 = 1 << 20;

/// The flags of `strata serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for Kafka clients (host:port; port 0 picks a free one).
    #[arg(long, env = "STRATA_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,

    /// host:port that clients are told to connect to (in Metadata and
    /// FindCoordinator answers). Defaults to the listen address; required when
    /// listening on 0.0.0.0 or [::].
    #[arg(long, env = "STRATA_ADVERTISED")]
    pub advertised: Option<String>,

    /// Address of the internal gRPC listener (host:port): other brokers read
    /// this broker's recent objects from it (so their tail reads need no
    /// object-store GET), and `strata admin` talks to it. Default: the
    /// --listen host and the --listen port + 1 (9093 next to 9092; with
    /// port 0, any free port). It has no authentication: keep it on a network
    /// only the brokers and operators reach.
    #[arg(long, env = "STRATA_INTERNAL_LISTEN")]
    pub internal_listen: Option<String>,

    /// host:port other brokers use to reach the internal listener. Default:
    /// the bound internal address, or, when it listens on 0.0.0.0 or [::],
    /// the --advertised host with the internal port.
    #[arg(long, env = "STRATA_INTERNAL_ADVERTISED")]
    pub internal_advertised: Option<String>,

    /// Directory for this broker's local state: the embedded sequencer's log
    /// (<data-dir>/log) and, unless --objects says otherwise, the object store
    /// (objects are appended to segment files in <data-dir>/segments/).
    /// Created if missing.
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    pub data_dir: PathBuf,

    /// Where record data is kept, like a bucket: file:///some/dir (a local
    /// directory: objects are appended to segment files in segments/ in it,
    /// one fsync each),
    /// s3://BUCKET/PREFIX (AWS S3 or an S3-compatible store: see the --s3-*
    /// flags) or memory:// (lost at exit; tests only). Default: file://<data-dir>.
    #[arg(long, env = "STRATA_OBJECTS")]
    pub objects: Option<String>,

    /// With s3:// objects: the endpoint URL of an S3-compatible store (MinIO,
    /// R2, ...), for example http://127.0.0.1:9000. Default: AWS_ENDPOINT_URL,
    /// else AWS S3 itself.
    #[arg(long, env = "STRATA_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// With s3:// objects: the bucket's region (R2: auto). Default: AWS_REGION
    /// or AWS_DEFAULT_REGION, else us-east-1.
    #[arg(long, env = "STRATA_S3_REGION")]
    pub s3_region: Option<String>,

    /// With s3:// objects: allow a plain-HTTP --s3-endpoint (a local test
    /// store; never across a network).
    #[arg(long, env = "STRATA_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,

    /// With s3:// objects: the access key id. Default: AWS_ACCESS_KEY_ID (with
    /// AWS_SESSION_TOKEN if set); without keys, on AWS, the instance or task role.
    #[arg(long, env = "STRATA_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    /// With s3:// objects: the secret access key. Default: AWS_SECRET_ACCESS_KEY.
    /// Prefer the environment variable: a flag shows in the process list.
    #[arg(long, env = "STRATA_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<crate::store::Secret>,

    /// Where the order of everything is kept (the sequencer): `embedded`, a
    /// log in <data-dir>/log for a single broker; or
    /// `etcd://HOST:PORT[,HOST:PORT...]`, the client addresses of an etcd
    /// cluster shared by every broker of the Strata cluster, which keeps its
    /// records under the key prefix /<cluster-id>/log/ (--cluster-id), its
    /// live brokers under /<cluster-id>/brokers/ and its snapshot's revision
    /// at /<cluster-id>/snapshot. etcd must be running and reachable when the
    /// broker starts.
    #[arg(long, env = "STRATA_SEQUENCER", default_value = "embedded", value_parser = parse_sequencer)]
    pub sequencer: SequencerChoice,

    /// This broker's node id, as clients see it in Metadata.
    #[arg(long, env = "STRATA_NODE_ID", default_value_t = 1)]
    pub node_id: i32,

    /// The cluster id reported to clients. Every broker of one cluster must use
    /// the same one.
    #[arg(long, env = "STRATA_CLUSTER_ID", default_value = "strata")]
    pub cluster_id: String,

    /// Rack of this broker, reported in Metadata (optional).
    #[arg(long, env = "STRATA_RACK")]
    pub rack: Option<String>,

    /// Lease of this broker's entry in the live-broker set: a broker that
    /// stops (or is cut off from the sequencer) leaves Metadata and its
    /// partitions and groups move to the others within this long. Like
    /// Kafka's broker.session.timeout.ms (9 s), rounded to etcd's whole
    /// seconds; shorter moves work sooner after a crash but a pause (GC,
    /// a slow sequencer) longer than it makes a live broker drop out.
    #[arg(long, env = "STRATA_MEMBER_TTL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1000..))]
    pub member_ttl_ms: u64,

    /// Write the open object once it holds this many bytes. Each object costs
    /// one object-store PUT and one sequencer commit whatever its size, so
    /// bigger objects amortise both under load, and smaller ones let a busy
    /// broker write several at once. Default: 16 MiB on s3:// (where PUTs are
    /// billed and slow: a saturated broker writes objects of 8 MiB and more,
    /// under 128 PUTs per GiB), 4 MiB on a local directory or memory://.
    #[arg(long, env = "STRATA_FLUSH_BYTES")]
    pub flush_bytes: Option<u64>,

    /// Write the open object at most this many milliseconds after its first
    /// batch arrived, full or not. Without --flush-when-idle this is the
    /// floor of produce latency (producers are answered once their object is
    /// written and committed), like a producer's linger.ms: 5 ms suits a local
    /// directory; on S3, 50 to 250 ms cuts the number of PUTs on a lightly
    /// loaded broker.
    #[arg(long, env = "STRATA_FLUSH_MS", default_value_t = 5)]
    pub flush_ms: u64,

    /// Also write the open object at once whenever no object write is in
    /// flight: an idle broker does not wait for --flush-ms, and a busy one
    /// gathers what arrives while the previous object is written (group
    /// commit), so produce latency is the write and commit time rather than
    /// --flush-ms plus them. Costs more, smaller objects at light load: turn
    /// it off where each PUT is billed (S3) to let --flush-ms batch them.
    #[arg(long, env = "STRATA_FLUSH_WHEN_IDLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub flush_when_idle: bool,

    /// With --flush-when-idle: how many object writes may be in flight before
    /// what arrives waits for one to finish. 1 gathers the most per object;
    /// 2 starts a batch's write without waiting out the one ahead of it
    /// (lower produce and end-to-end latency, more objects under moderate
    /// load). Commits are appended in flush order either way. Default: 1 on
    /// s3:// (fewer PUTs), 2 on a local directory or memory://.
    #[arg(long, env = "STRATA_FLUSH_CONCURRENCY", value_parser = clap::value_parser!(u64).range(1..=16))]
    pub flush_concurrency: Option<u64>,

    /// Create a topic when a client asks Metadata for one that does not exist
    /// (Kafka's auto.create.topics.enable).
    #[arg(long, env = "STRATA_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partitions of auto-created topics and of CreateTopics asking for the default (-1).
    #[arg(long, env = "STRATA_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: u32,

    /// Largest request frame accepted; a client announcing a larger one is
    /// disconnected before a byte of it is read (Kafka's socket.request.max.bytes).
    #[arg(long, env = "STRATA_MAX_REQUEST_BYTES", default_value_t = 104_857_600)]
    pub max_request_bytes: usize,

    /// Largest record batch accepted (Kafka's message.max.bytes).
    #[arg(long, env = "STRATA_MESSAGE_MAX_BYTES", default_value_t = 1_048_588)]
    pub message_max_bytes: usize,

    /// Cap on a batch's size once decompressed, when the broker must
    /// decompress it to validate it.
    #[arg(long, env = "STRATA_MAX_DECOMPRESSED_BYTES", default_value_t = 64 * MIB as usize)]
    pub max_decompressed_bytes: usize,

    /// Bytes of this broker's most recently written objects kept in memory, so
    /// that consumers at the tail are served without reading the object store.
    #[arg(long, env = "STRATA_RECENT_OBJECT_BYTES", default_value_t = 64 * MIB as usize)]
    pub recent_object_bytes: usize,

    /// Write a snapshot of the applied state to the object store every this
    /// many commits, publish it in the sequencer and drop the commits before
    /// it, so that the sequencer stays small and brokers start from the
    /// snapshot (0: never). With etcd, counted in etcd revisions (which also
    /// count other changes). The embedded sequencer keeps no snapshots.
    #[arg(long, env = "STRATA_SNAPSHOT_EVERY_COMMITS", default_value_t = 10_000)]
    pub snapshot_every_commits: u64,

    /// Bytes of object ranges kept in memory for fetches (LRU).
    #[arg(long, env = "STRATA_CACHE_BYTES", default_value_t = 256 * MIB as usize)]
    pub cache_bytes: usize,

    /// With a local directory for objects: how many bytes of the objects
    /// written last are left in the OS page cache, for consumers catching up.
    /// The pages of older objects are dropped once written or read (the
    /// broker keeps its recent objects in memory and reads older ones through
    /// its own cache), which leaves the page cache to everything else.
    #[arg(long, env = "STRATA_PAGE_CACHE_BYTES", default_value_t = crate::store::DEFAULT_PAGE_CACHE_BYTES)]
    pub page_cache_bytes: u64,

    /// How long a produce waits on an object write (then KAFKA_STORAGE_ERROR),
    /// and a request on its commit to the sequencer, appended or not (an
    /// append that hangs or whose outcome is unknown), before it is answered
    /// REQUEST_TIMED_OUT (Kafka's request.timeout.ms).
    #[arg(long, env = "STRATA_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Requests one connection may have in flight; the broker stops reading
    /// from a connection that reaches it until a response goes out.
    #[arg(long, env = "STRATA_MAX_INFLIGHT_REQUESTS", default_value_t = 100)]
    pub max_inflight_requests: usize,

    /// Request bytes one connection may have in flight (a single request larger
    /// than this is still read, alone).
    #[arg(long, env = "STRATA_MAX_INFLIGHT_BYTES", default_value_t = 104_857_600)]
    pub max_inflight_bytes: usize,

    /// Close connections with no request in flight that have been quiet this
    /// long (Kafka's connections.max.idle.ms).
    #[arg(long, env = "STRATA_IDLE_TIMEOUT_MS", default_value_t = 600_000)]
    pub idle_timeout_ms: u64,

    /// On SIGINT/SIGTERM, how long to wait for in-flight requests to be
    /// answered before exiting anyway.
    #[arg(long, env = "STRATA_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// How often the object store is listed to delete objects nothing
    /// references any more (what retention, DeleteRecords and DeleteTopics
    /// freed, and orphans of flushes whose commit never came). One broker of
    /// the cluster does it. 0 turns it off.
    #[arg(long, env = "STRATA_OBJECT_GC_INTERVAL_MS", default_value_t = 300_000)]
    pub object_gc_interval_ms: u64,

    /// How old an unreferenced object must be before the GC deletes it: covers
    /// a commit still on its way and a lagging broker still reading. Never
    /// less than twice --request-timeout-ms.
    #[arg(long, env = "STRATA_OBJECT_GC_GRACE_MS", default_value_t = 600_000)]
    pub object_gc_grace_ms: u64,

    /// Any other Kafka broker config, as NAME=VALUE (repeatable; the
    /// environment variable takes a comma-separated list), e.g.
    /// `--config group.initial.rebalance.delay.ms=0`. DescribeConfigs reports
    /// these as STATIC_BROKER_CONFIG.
    #[arg(long = "config", env = "STRATA_CONFIG", value_name = "NAME=VALUE", value_delimiter = ',')]
    pub configs: Vec<String>,
}

/// The `--sequencer` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerChoice {
    /// The embedded log in `<data-dir>/log`.
    Embedded,
    /// An etcd cluster at these `host:port` client endpoints.
    Etcd { endpoints: Vec<String> },
}

impl std::fmt::Display for SequencerChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SequencerChoice::Embedded => f.write_str("embedded"),
            SequencerChoice::Etcd { endpoints } => write!(f, "etcd://{}", endpoints.join(",")),
        }
    }
}

/// Parses `embedded` or `etcd://HOST:PORT[,HOST:PORT...]`.
pub fn parse_sequencer(s: &str) -> Result<SequencerChoice, String> {
    const EXPECTED: &str = "expected `embedded` or `etcd://HOST:PORT[,HOST:PORT...]` (etcd's client addresses, e.g. etcd://127.0.0.1:2379)";
    let s = s.trim();
    if s == "embedded" {
        return Ok(SequencerChoice::Embedded);
    }
    let Some(list) = s.strip_prefix("etcd://") else {
        return Err(format!("`{s}`: {EXPECTED}"));
    };
    let mut endpoints = Vec::new();
    for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let port_ok = e.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || e.contains('/') {
            return Err(format!("`{e}` is not HOST:PORT; {EXPECTED}"));
        }
        endpoints.push(e.to_owned());
    }
    if endpoints.is_empty() {
        return Err(format!("no etcd address in `{s}`; {EXPECTED}"));
    }
    Ok(SequencerChoice::Etcd { endpoints })
}

impl ServeArgs {
    /// The `--config` pairs by name; an entry without `=` is an error naming it.
    pub fn static_props(&self) -> Result<std::collections::BTreeMap<String, String>, String> {
        self.configs
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(kv.clone()),
            })
            .collect()
    }
}

impl ServeArgs {
    /// --flush-bytes, or its default for the object store in use.
    pub fn flush_bytes(&self) -> u64 {
        self.flush_bytes.unwrap_or(if self.on_s3() { 16 * MIB } else { 4 * MIB })
    }

    /// `--flush-concurrency`, or its default for the object store.
    pub fn flush_concurrency(&self) -> u64 {
        self.flush_concurrency.unwrap_or(if self.on_s3() { 1 } else { 2 })
    }

    fn on_s3(&self) -> bool {
        self.objects.as_deref().is_some_and(|url| url.starts_with("s3://"))
    }

    /// The object-store settings these flags give.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            page_cache_bytes: self.page_cache_bytes,
            s3: crate::store::S3Options {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                allow_http: self.s3_allow_http,
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
            },
        }
    }

    /// The flags' defaults (as if `strata serve` were run with none), for tests.
    pub fn defaults() -> Self {
        let cli = Cli::parse_from(["strata", "serve"]);
        match cli.command {
            Command::Serve(args) => *args,
            _ => unreachable!("parsed `serve`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_defaults_match_kafka() {
        Cli::command().debug_assert();
        let a = ServeArgs::defaults();
        assert_eq!(a.listen, "127.0.0.1:9092");
        assert_eq!(a.max_request_bytes, 104_857_600);
        assert_eq!(a.message_max_bytes, 1_048_588);
        assert_eq!(a.idle_timeout_ms, 600_000);
        assert!(a.auto_create_topics);
        let cli = Cli::parse_from(["strata", "serve", "--auto-create-topics", "false", "--flush-ms", "9"]);
        let Command::Serve(a) = cli.command else { panic!("parsed `serve`") };
        assert!(!a.auto_create_topics);
        assert_eq!(a.flush_ms, 9);
        let cli = Cli::parse_from(["strata", "serve", "--config", "group.max.size=5", "--config", "offsets.retention.minutes=1"]);
        let Command::Serve(a) = cli.command else { panic!("parsed `serve`") };
        let props = a.static_props().unwrap();
        assert_eq!(props["group.max.size"], "5");
        assert_eq!(props["offsets.retention.minutes"], "1");
        assert_eq!(a.internal_listen, None, "derived from --listen at start");
    }

    #[test]
    fn admin_flags() {
        let cli = Cli::parse_from(["strata", "admin", "drain", "--exit", "--addr", "10.0.0.1:9093", "--json"]);
        let Command::Admin(a) = cli.command else { panic!("parsed `admin`") };
        assert!(matches!(a.action, AdminAction::Drain { exit: true }));
        assert_eq!(a.addr, "10.0.0.1:9093");
        assert!(a.json);
        let cli = Cli::parse_from(["strata", "admin", "--addr", "h:1", "status"]);
        let Command::Admin(a) = cli.command else { panic!("parsed `admin`") };
        assert!(matches!(a.action, AdminAction::Status));
        assert!(!a.json);
    }

    #[test]
    fn sequencer_flag() {
        assert_eq!(ServeArgs::defaults().sequencer, SequencerChoice::Embedded);
        let cli = Cli::parse_from(["strata", "serve", "--sequencer", "etcd://127.0.0.1:2379,etcd2:2379"]);
        let Command::Serve(a) = cli.command else { panic!("parsed `serve`") };
        let want = vec!["127.0.0.1:2379".to_owned(), "etcd2:2379".to_owned()];
        assert_eq!(a.sequencer, SequencerChoice::Etcd { endpoints: want });
        assert_eq!(a.sequencer.to_string(), "etcd://127.0.0.1:2379,etcd2:2379");
        for bad in ["etcd", "etcd://", "etcd://host", "etcd://host:x", "zk://h:1", "etcd://h:1/p"] {
            assert!(parse_sequencer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_flags() {
        let cli = Cli::parse_from([
            "strata", "serve", "--objects", "s3://b/p", "--s3-endpoint", "http://127.0.0.1:9000", "--s3-region", "auto",
            "--s3-allow-http", "--s3-access-key-id", "id", "--s3-secret-access-key", "hunter2",
        ]);
        let Command::Serve(a) = cli.command else { panic!("parsed `serve`") };
        let o = a.store_options();
        assert_eq!(o.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.s3.region.as_deref(), Some("auto"));
        assert!(o.s3.allow_http);
        assert_eq!(o.s3.secret_access_key.as_ref().map(|s| s.expose()), Some("hunter2"));
        assert!(!format!("{a:?}").contains("hunter2"), "the secret stays out of Debug");
        assert!(!ServeArgs::defaults().s3_allow_http);
        // Bigger objects on S3 (PUTs per GiB), unless the flag says otherwise.
        assert_eq!(a.flush_bytes(), 16 * MIB);
        assert_eq!(ServeArgs::defaults().flush_bytes(), 4 * MIB);
        // One object write at a time on S3 (PUTs again), two elsewhere.
        assert_eq!(a.flush_concurrency(), 1);
        assert_eq!(ServeArgs::defaults().flush_concurrency(), 2);
        let cli = Cli::parse_from(["strata", "serve", "--objects", "s3://b", "--flush-bytes", "1000", "--flush-concurrency", "3"]);
        let Command::Serve(a) = cli.command else { panic!("parsed `serve`") };
        assert_eq!(a.flush_bytes(), 1000);
        assert_eq!(a.flush_concurrency(), 3);
    }
}
