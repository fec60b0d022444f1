//! `strata serve`: the runtime that drives the core for real.
//!
//! * [`driver`]: the task owning the core's `Broker`, carrying out its outputs;
//!   and the appender, which hands commits to the sequencer in order.
//! * [`applier`]: the applied stream (sequencer watch → `Input::Applied`).
//! * [`listener`] and [`connection`]: TCP, framing, decoding, response order.
//! * [`timers`]: the core's timers.
//! * [`crash_point`]: where the simulator crashes a broker on purpose.
//! * [`snapshots`]: loading the newest snapshot; the snapshotter.
//! * [`members`]: this broker's registration and the live set; [`peer_reads`]:
//!   reads of other brokers' recent objects; [`admin`] and [`counters`]: what
//!   the internal gRPC service (`crate::grpc`) asks of the driver and reports.
//!
//! Start-up order: open the object store and the sequencer, bind the listener
//! (so a busy port fails fast), load the newest snapshot (if the sequencer
//! has published one) and replay the sequencer log after it into the core,
//! and only then accept connections — a restarted broker answers with the
//! full state from its first request.

pub mod admin;
pub mod applier;
pub mod connection;
pub mod counters;
pub mod crash_point;
pub mod driver;
pub mod listener;
pub mod members;
pub mod peer_reads;
pub mod snapshots;
pub mod timers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_core::broker::{Broker, BrokerConfig};
use strata_proto::FrameDecoder;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cli::{SequencerChoice, ServeArgs};
#[cfg(not(madsim))]
use crate::sequencer::EtcdSequencer;
use crate::sequencer::{EmbeddedSequencer, Member, Sequencer, SequencerError};
use crate::store::{BlockCache, ObjectStoreBackend, OpenStoreError};
use connection::ConnConfig;
use driver::{Clock, Driver, DriverMsg, DRIVER_QUEUE};

/// Everything `strata serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// host:port to advertise (default: the bound address).
    pub advertised: Option<String>,
    /// Address of the internal gRPC listener (peer reads, admin). `None`: the
    /// host of `listen` and its port + 1 (port 0 stays 0: any free port).
    pub internal_listen: Option<String>,
    /// host:port other brokers reach the internal listener at. `None`: the
    /// bound address, or with an unspecified one (0.0.0.0), the advertised
    /// host and the bound port.
    pub internal_advertised: Option<String>,
    /// The core's settings; `advertised_host`/`advertised_port` are filled in
    /// once the listener is bound.
    pub broker: BrokerConfig,
    /// Largest request frame.
    pub max_request_bytes: usize,
    /// Requests in flight per connection.
    pub max_inflight_requests: usize,
    /// Request bytes in flight per connection.
    pub max_inflight_bytes: usize,
    /// Close quiet connections after this long.
    pub idle_timeout: Duration,
    /// Bytes of the block cache.
    pub cache_bytes: usize,
    /// Bound on the graceful shutdown.
    pub shutdown_timeout: Duration,
    /// Lease of this broker's entry in the live-broker set.
    pub member_ttl: Duration,
    /// Snapshot the applied state every this many commits (0: never); only
    /// the broker with the lowest live node id does.
    pub snapshot_every_commits: u64,
}

impl ServerConfig {
    /// The configuration the flags describe; `incarnation` is this run's random number.
    pub fn from_args(args: &ServeArgs, incarnation: u64) -> Self {
        let broker = BrokerConfig {
            node_id: args.node_id,
            cluster_id: args.cluster_id.clone(),
            advertised_host: String::new(),
            advertised_port: 0,
            rack: args.rack.clone(),
            flush_bytes: usize::try_from(args.flush_bytes()).unwrap_or(usize::MAX),
            flush_ms: args.flush_ms,
            flush_when_idle: args.flush_when_idle,
            flush_concurrency: args.flush_concurrency() as usize,
            auto_create_topics: args.auto_create_topics,
            default_partitions: args.default_partitions,
            message_max_bytes: args.message_max_bytes,
            max_decompressed_bytes: args.max_decompressed_bytes,
            request_timeout_ms: args.request_timeout_ms,
            incarnation,
            recent_object_bytes: args.recent_object_bytes,
            log_dir: std::path::absolute(&args.data_dir).unwrap_or_else(|_| args.data_dir.clone()).display().to_string(),
            // Checked by `Server::open` before anything starts.
            static_props: args.static_props().unwrap_or_default(),
            object_gc_interval_ms: args.object_gc_interval_ms,
            object_gc_grace_ms: args.object_gc_grace_ms,
        };
        ServerConfig {
            listen: args.listen.clone(),
            advertised: args.advertised.clone(),
            internal_listen: args.internal_listen.clone(),
            internal_advertised: args.internal_advertised.clone(),
            broker,
            max_request_bytes: args.max_request_bytes,
            max_inflight_requests: args.max_inflight_requests,
            max_inflight_bytes: args.max_inflight_bytes,
            idle_timeout: Duration::from_millis(args.idle_timeout_ms),
            cache_bytes: args.cache_bytes,
            shutdown_timeout: Duration::from_millis(args.shutdown_timeout_ms),
            member_ttl: Duration::from_millis(args.member_ttl_ms),
            snapshot_every_commits: args.snapshot_every_commits,
        }
    }
}

/// Why the server could not start, in words that say what to do.
/// Refuses `--config` entries that are not NAME=VALUE, name no Kafka broker
/// config Strata knows, or hold a value that config does not take.
fn check_static_configs(args: &ServeArgs) -> Result<(), ServeError> {
    let props = args.static_props().map_err(|entry| ServeError::Config {
        detail: format!("`{entry}` is not NAME=VALUE"),
    })?;
    strata_core::config::BrokerSettings::from_props(args.node_id, &props)
        .map(|_| ())
        .map_err(|e| ServeError::Config { detail: e.to_string() })
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A `--config` entry is unusable.
    #[error("bad --config: {detail}; pass NAME=VALUE with a Kafka broker config name (strata serve --help)")]
    Config { detail: String },
    /// The port is taken.
    #[error("another process listens on {addr}; stop it or pass --listen with another address")]
    AddressInUse { addr: String },
    /// The internal listener cannot be bound.
    #[error("cannot listen on {addr} for the internal gRPC service (peer reads, `strata admin`): {source}; \
             pass --internal-listen with a free host:port (default: the --listen port + 1)")]
    InternalBind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other bind failure.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    /// The advertised address cannot be used.
    #[error("{0}")]
    Advertised(String),
    /// The data directory cannot be used.
    #[error("cannot use data directory {dir}: {source}. Check its permissions, or pass --data-dir")]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The object store cannot be opened.
    #[error(transparent)]
    Store(#[from] OpenStoreError),
    /// The sequencer cannot be opened.
    #[error("cannot open the sequencer log in {dir}: {source}")]
    Sequencer {
        dir: PathBuf,
        #[source]
        source: SequencerError,
    },
    /// etcd (`--sequencer etcd://...`) cannot be reached.
    #[error(
        "cannot use etcd at {endpoints} (--sequencer): {source}. etcd must be running and \
         reachable at that address before the broker starts: start it (or check the address, \
         which is etcd's client URL, port 2379 by default), then start the broker again"
    )]
    Etcd {
        endpoints: String,
        #[source]
        source: SequencerError,
    },
    /// The `--sequencer` is not available in this build.
    #[error("--sequencer {0} is not available in this build")]
    SequencerUnsupported(String),
    /// The sequencer log could not be replayed.
    #[error("cannot replay the sequencer log: {0}")]
    Replay(#[source] SequencerError),
    /// The newest snapshot could not be loaded.
    #[error("cannot start from the newest snapshot: {0}")]
    Snapshot(#[from] snapshots::LoadError),
}

/// A running broker. Dropping it aborts everything; prefer [`Server::shutdown`].
pub struct Server {
    local_addr: SocketAddr,
    advertised: String,
    /// The internal gRPC listener's bound and advertised addresses (none under the simulator).
    internal: Option<(SocketAddr, String)>,
    objects: String,
    cache: Arc<Mutex<BlockCache>>,
    counters: Arc<counters::ReadCounters>,
    /// Turned true by `strata admin drain --exit`.
    exit: watch::Receiver<bool>,
    replayed: u64,
    /// The snapshot's revision the broker started from (0: none).
    start_revision: u64,
    replay_time: Duration,
    stop: watch::Sender<bool>,
    driver_tx: mpsc::Sender<DriverMsg>,
    listener: Option<JoinHandle<()>>,
    driver: Option<JoinHandle<()>>,
    applier: Option<JoinHandle<()>>,
    appender: Option<JoinHandle<()>>,
    /// Holds this broker's registration in the live set and feeds the set to the driver.
    members: Option<JoinHandle<()>>,
    snapshotter: Option<JoinHandle<()>>,
    /// The internal gRPC server.
    internal_server: Option<JoinHandle<()>>,
    /// Held to release it last (the embedded sequencer's lock goes with it).
    sequencer_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local_addr", &self.local_addr).field("advertised", &self.advertised).finish()
    }
}

fn bind_error(addr: &str, e: std::io::Error) -> ServeError {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => ServeError::AddressInUse { addr: addr.into() },
        std::io::ErrorKind::PermissionDenied => ServeError::Bind {
            addr: addr.into(),
            source: e,
            hint: "; ports below 1024 need privileges: pass --listen with a port above 1023",
        },
        std::io::ErrorKind::AddrNotAvailable => ServeError::Bind {
            addr: addr.into(),
            source: e,
            hint: "; that address is not one of this machine's: check --listen",
        },
        _ => ServeError::Bind { addr: addr.into(), source: e, hint: "; check --listen (host:port)" },
    }
}

/// Splits "host:port" (IPv6 hosts in brackets) for the advertised address.
fn split_host_port(s: &str) -> Option<(String, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), i32::from(port)))
}

/// A bound listener and the address to advertise.
struct Bound {
    listener: TcpListener,
    local_addr: SocketAddr,
    advertised: String,
    host: String,
    port: i32,
    /// The internal listener, its bound address and the address to advertise.
    internal: Option<(TcpListener, SocketAddr, String)>,
}

/// The default internal listen address: `listen`'s host and port + 1 (0 stays 0).
#[cfg_attr(madsim, allow(dead_code))]
fn default_internal_listen(listen: &str) -> Option<String> {
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let port = if port == 0 { 0 } else { port.checked_add(1)? };
    Some(format!("{host}:{port}"))
}

/// Binds the internal gRPC listener (not in the simulator, which has no gRPC).
#[cfg(not(madsim))]
async fn bind_internal(cfg: &ServerConfig, advertised_host: &str) -> Result<Option<(TcpListener, SocketAddr, String)>, ServeError> {
    let addr = match &cfg.internal_listen {
        Some(a) => a.clone(),
        None => default_internal_listen(&cfg.listen).ok_or_else(|| {
            ServeError::Advertised(format!(
                "cannot derive the internal listen address from --listen {}; pass --internal-listen",
                cfg.listen
            ))
        })?,
    };
    let internal_error = |source| ServeError::InternalBind { addr: addr.clone(), source };
    let listener = TcpListener::bind(&addr).await.map_err(internal_error)?;
    let local = listener.local_addr().map_err(internal_error)?;
    let advertised = match &cfg.internal_advertised {
        Some(a) => a.clone(),
        None if local.ip().is_unspecified() => match advertised_host.contains(':') {
            true => format!("[{advertised_host}]:{}", local.port()),
            false => format!("{advertised_host}:{}", local.port()),
        },
        None => local.to_string(),
    };
    Ok(Some((listener, local, advertised)))
}

#[cfg(madsim)]
async fn bind_internal(_cfg: &ServerConfig, _advertised_host: &str) -> Result<Option<(TcpListener, SocketAddr, String)>, ServeError> {
    Ok(None)
}

/// Binds `--listen` and works out the advertised address.
async fn bind(cfg: &ServerConfig) -> Result<Bound, ServeError> {
    let listener = TcpListener::bind(&cfg.listen).await.map_err(|e| bind_error(&cfg.listen, e))?;
    let local_addr = listener.local_addr().map_err(|e| bind_error(&cfg.listen, e))?;
    let advertised = match &cfg.advertised {
        Some(a) => a.clone(),
        None if local_addr.ip().is_unspecified() => {
            return Err(ServeError::Advertised(format!(
                "--listen {} accepts connections on every interface, but clients cannot connect to {}; \
                 pass --advertised with the host:port clients should use",
                cfg.listen,
                local_addr.ip()
            )))
        }
        None => local_addr.to_string(),
    };
    let (host, port) = split_host_port(&advertised).ok_or_else(|| {
        ServeError::Advertised(format!(
            "--advertised {advertised:?} is not host:port (for example broker1.example.com:9092)"
        ))
    })?;
    let internal = bind_internal(cfg, &host).await?;
    Ok(Bound { listener, local_addr, advertised, host, port, internal })
}

/// Draws this run's incarnation number.
pub fn draw_incarnation() -> u64 {
    match getrandom::u64() {
        Ok(x) => x,
        Err(_) => {
            // No OS randomness: time and pid still tell runs apart.
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
        }
    }
}

impl Server {
    /// Opens what the flags name — the object store, the sequencer (embedded in
    /// `<data-dir>/log`, or etcd) — and starts the server on them. The listener is bound
    /// first, so a busy port fails before anything is created on disk.
    pub async fn open(args: &ServeArgs) -> Result<Server, ServeError> {
        let mut cfg = ServerConfig::from_args(args, draw_incarnation());
        if !matches!(args.sequencer, SequencerChoice::Etcd { .. }) {
            // The embedded log keeps no snapshots (it serves this broker alone and
            // replays from its own file): writing them would only cost.
            cfg.snapshot_every_commits = 0;
        }
        check_static_configs(args)?;
        let listener = bind(&cfg).await?;
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|source| ServeError::DataDir { dir: args.data_dir.clone(), source })?;
        let data_dir = std::fs::canonicalize(&args.data_dir)
            .map_err(|source| ServeError::DataDir { dir: args.data_dir.clone(), source })?;
        let url = match &args.objects {
            Some(url) => url.clone(),
            // Object keys start with `objects/` (and later `snapshots/`): the data
            // directory plays the bucket, so objects land in <data-dir>/objects/.
            None => format!("file://{}", data_dir.display()),
        };
        let store = ObjectStoreBackend::open_with(&url, &args.store_options()).await?;
        if let SequencerChoice::Etcd { endpoints } = &args.sequencer {
            return Server::start_etcd(listener, cfg, endpoints, &args.cluster_id, store).await;
        }
        let log_dir = data_dir.join("log");
        let dir = log_dir.clone();
        let sequencer = tokio::task::spawn_blocking(move || EmbeddedSequencer::open(&dir))
            .await
            .expect("opening the sequencer panicked")
            .map_err(|source| ServeError::Sequencer { dir: log_dir, source })?;
        Server::start_on(listener, cfg, Arc::new(sequencer), store).await
    }

    /// Connects to etcd (`--sequencer etcd://...`) and starts on it.
    #[cfg(not(madsim))]
    async fn start_etcd(
        listener: Bound,
        cfg: ServerConfig,
        endpoints: &[String],
        cluster: &str,
        store: ObjectStoreBackend,
    ) -> Result<Server, ServeError> {
        let sequencer = EtcdSequencer::connect(endpoints, cluster)
            .await
            .map_err(|source| ServeError::Etcd { endpoints: endpoints.join(","), source })?;
        Server::start_on(listener, cfg, Arc::new(sequencer), store).await
    }

    /// The simulator's build has no etcd client.
    #[cfg(madsim)]
    async fn start_etcd(
        _listener: Bound,
        _cfg: ServerConfig,
        endpoints: &[String],
        _cluster: &str,
        _store: ObjectStoreBackend,
    ) -> Result<Server, ServeError> {
        Err(ServeError::SequencerUnsupported(format!("etcd://{}", endpoints.join(","))))
    }

    /// Starts a server on `sequencer` and `store`: binds, replays the whole
    /// sequencer log into a fresh core, then accepts connections.
    pub async fn start<S: Sequencer + 'static>(
        cfg: ServerConfig,
        sequencer: Arc<S>,
        store: ObjectStoreBackend,
    ) -> Result<Server, ServeError> {
        let listener = bind(&cfg).await?;
        Server::start_on(listener, cfg, sequencer, store).await
    }

    async fn start_on<S: Sequencer + 'static>(
        listener: Bound,
        mut cfg: ServerConfig,
        sequencer: Arc<S>,
        store: ObjectStoreBackend,
    ) -> Result<Server, ServeError> {
        let Bound { listener, local_addr, advertised, host, port, internal } = listener;
        cfg.broker.advertised_host = host;
        cfg.broker.advertised_port = port;

        // Start from the newest snapshot, if one is published.
        let started = Instant::now();
        let snapshot = snapshots::load_newest(&*sequencer, &store).await?;
        let start_revision = snapshot.as_ref().map_or(0, |s| s.revision);
        let broker = match snapshot {
            Some(state) => {
                tracing::info!(revision = start_revision, ms = started.elapsed().as_millis() as u64, "snapshot loaded");
                Broker::from_snapshot(cfg.broker.clone(), state)
            }
            None => Broker::new(cfg.broker.clone()),
        };

        let clock = Clock::new();
        let (driver_tx, driver_rx) = mpsc::channel(DRIVER_QUEUE);
        let (append_tx, append_rx) = mpsc::unbounded_channel();
        let (applied_tx, mut applied_rx) = watch::channel(start_revision);
        let cache = Arc::new(Mutex::new(BlockCache::new(cfg.cache_bytes)));
        let counters = Arc::new(counters::ReadCounters::default());
        let (directory_tx, directory_rx) = watch::channel(peer_reads::PeerDirectory::new());
        let (leave_tx, leave_rx) = watch::channel(false);
        let (exit_tx, exit_rx) = watch::channel(false);
        let objects = store.describe();
        let policy = snapshots::SnapshotPolicy { every_commits: cfg.snapshot_every_commits };
        // Every broker is ready to snapshot; the driver hands states over only
        // while the live set makes this broker the snapshotter.
        let snapshotter_here = policy.every_commits > 0;
        let (snap_tx, snap_rx) = mpsc::channel(1);
        let snapshotter =
            snapshotter_here.then(|| tokio::spawn(snapshots::run_snapshotter(sequencer.clone(), store.clone(), snap_rx)));
        let applier_store = store.clone();
        let driver = Driver::new(
            broker,
            clock,
            driver_rx,
            driver_tx.clone(),
            append_tx,
            store,
            cache.clone(),
            applied_tx,
            Duration::from_millis(cfg.broker.request_timeout_ms),
        );
        let driver = if snapshotter_here { driver.with_snapshots(policy, snap_tx) } else { driver };
        let driver = driver.with_peer_reads(peer_reads::PeerReads::new(directory_rx.clone()), counters.clone());
        let driver = tokio::spawn(driver.run());
        let appender = tokio::spawn(driver::run_appender(sequencer.clone(), append_rx, driver_tx.clone()));

        // Replay everything after the snapshot up to the current revision
        // before serving anyone.
        let target = sequencer.current_revision().await.map_err(ServeError::Replay)?;
        let applier =
            tokio::spawn(applier::run_applier(sequencer.clone(), applier_store, start_revision + 1, driver_tx.clone()));
        let replay = applied_rx.wait_for(|&r| r >= target).await;
        if replay.is_err() {
            return Err(ServeError::Replay(SequencerError::Closed));
        }
        drop(replay);
        let replay_time = started.elapsed();
        let replayed = target;
        tracing::info!(snapshot = start_revision, revision = target, ms = replay_time.as_millis() as u64, "sequencer log replayed");

        let (stop, stop_rx) = watch::channel(false);
        let conn_cfg = Arc::new(ConnConfig {
            driver: driver_tx.clone(),
            frames: FrameDecoder::new(cfg.max_request_bytes),
            max_inflight_requests: cfg.max_inflight_requests,
            max_inflight_bytes: cfg.max_inflight_bytes,
            idle_timeout: cfg.idle_timeout,
            clock,
        });
        let listener = tokio::spawn(listener::run_listener(listener, conn_cfg, stop_rx.clone(), cfg.shutdown_timeout));
        let internal_addrs = internal.as_ref().map(|(_, local, advertised)| (*local, advertised.clone()));
        #[cfg(not(madsim))]
        let internal_server = internal.map(|(internal_listener, _, internal_advertised)| {
            let ctx = Arc::new(crate::grpc::InternalContext {
                driver: driver_tx.clone(),
                counters: counters.clone(),
                cache: cache.clone(),
                started: tokio::time::Instant::now() - started.elapsed(),
                advertised: advertised.clone(),
                internal_advertised,
                directory: directory_rx.clone(),
                leave: leave_tx,
                exit: exit_tx,
            });
            tokio::spawn(crate::grpc::serve(internal_listener, ctx, stop_rx))
        });
        #[cfg(madsim)]
        let internal_server: Option<JoinHandle<()>> = {
            let _ = (internal, leave_tx, exit_tx, stop_rx);
            None
        };
        // Registered once it can serve, so clients sent here find it ready.
        let me = Member {
            node_id: cfg.broker.node_id,
            host: cfg.broker.advertised_host.clone(),
            port: u16::try_from(cfg.broker.advertised_port).unwrap_or(0),
            rack: cfg.broker.rack.clone(),
            internal: internal_addrs.as_ref().map(|(_, advertised)| advertised.clone()),
        };
        let links = members::MembersLinks { driver: driver_tx.clone(), directory: directory_tx, leave: leave_rx };
        let members = tokio::spawn(members::run_members(sequencer.clone(), me, cfg.member_ttl, links));
        let seq = sequencer;
        Ok(Server {
            local_addr,
            advertised,
            internal: internal_addrs,
            objects,
            cache,
            counters,
            exit: exit_rx,
            replayed,
            start_revision,
            replay_time,
            stop,
            driver_tx,
            listener: Some(listener),
            driver: Some(driver),
            applier: Some(applier),
            appender: Some(appender),
            members: Some(members),
            snapshotter,
            internal_server,
            sequencer_drop: Some(Box::new(move || release(seq))),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The host:port advertised to clients.
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// The internal gRPC listener's bound address (none under the simulator).
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal.as_ref().map(|(local, _)| *local)
    }

    /// The internal address other brokers are told (none under the simulator).
    pub fn internal_advertised(&self) -> Option<&str> {
        self.internal.as_ref().map(|(_, advertised)| advertised.as_str())
    }

    /// Where object reads went since start (peer or object store).
    pub fn read_counts(&self) -> counters::ReadCounts {
        self.counters.snapshot()
    }

    /// Resolves once an operator asked this broker to exit (`strata admin
    /// drain --exit`); never otherwise. The caller then shuts it down.
    pub async fn exit_requested(&self) {
        let mut exit = self.exit.clone();
        if exit.wait_for(|&e| e).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Where the objects are.
    pub fn objects(&self) -> &str {
        &self.objects
    }

    /// Block cache (hits, misses) since start.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.lock().expect("cache lock").stats()
    }

    /// The revision replayed up to at start (after the snapshot it started
    /// from; on the embedded sequencer, whose revisions are dense, the number
    /// of records), and how long loading and replaying took.
    pub fn replayed(&self) -> (u64, Duration) {
        (self.replayed, self.replay_time)
    }

    /// The applied revision and the digest of the applied state (every
    /// broker at the same revision has the same digest).
    pub async fn applied_digest(&self) -> Option<(u64, u64)> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.driver_tx.send(DriverMsg::Digest(reply)).await.ok()?;
        rx.await.ok()
    }

    /// The revision of the snapshot the broker started from (0: none).
    pub fn start_revision(&self) -> u64 {
        self.start_revision
    }

    /// Graceful shutdown: stop accepting and reading, let in-flight requests be
    /// answered (the core writes its open object at once, and on its flush timer
    /// for anything read after that), bounded by the shutdown timeout; then stop
    /// everything and release the sequencer.
    pub async fn shutdown(mut self) {
        // Leave the live set first: clients move to the other brokers while this one drains.
        self.stop_members().await;
        let _ = self.stop.send(true);
        let _ = self.driver_tx.send(DriverMsg::Flush).await;
        if let Some(listener) = self.listener.take() {
            let _ = listener.await;
        }
        // The internal server answers what it is serving (a drain's answer) and stops.
        if let Some(mut internal) = self.internal_server.take() {
            if tokio::time::timeout(INTERNAL_STOP_TIMEOUT, &mut internal).await.is_err() {
                internal.abort();
            }
        }
        let _ = self.driver_tx.send(DriverMsg::Stop).await;
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
        self.stop_tasks().await;
    }

    /// Stops at once, as a crash would (nothing is flushed; unanswered requests
    /// stay unanswered), but still releases the sequencer so the same data
    /// directory can be opened again in this process.
    pub async fn kill(mut self) {
        let _ = self.stop.send(true);
        for task in [self.listener.take(), self.driver.take(), self.internal_server.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        self.stop_tasks().await;
    }

    async fn stop_members(&mut self) {
        if let Some(task) = self.members.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn stop_tasks(&mut self) {
        self.stop_members().await;
        for task in [self.applier.take(), self.appender.take(), self.snapshotter.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        if let Some(release) = self.sequencer_drop.take() {
            // Dropping the embedded sequencer joins its writer thread.
            let _ = tokio::task::spawn_blocking(release).await;
        }
    }
}

/// Bound on the internal gRPC server's graceful stop (answers in flight).
const INTERNAL_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits (bounded) for the tasks still holding the sequencer to let go, then drops it.
fn release<S>(seq: Arc<S>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&seq) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(seq);
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let tasks = [&self.listener, &self.driver, &self.applier, &self.appender, &self.members, &self.snapshotter, &self.internal_server];
        for task in tasks.into_iter().flatten() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_internal_listen;

    #[test]
    fn the_internal_listener_defaults_to_the_next_port() {
        assert_eq!(default_internal_listen("127.0.0.1:9092").as_deref(), Some("127.0.0.1:9093"));
        assert_eq!(default_internal_listen("0.0.0.0:0").as_deref(), Some("0.0.0.0:0"), "any free port stays any");
        assert_eq!(default_internal_listen("[::1]:9092").as_deref(), Some("[::1]:9093"));
        assert_eq!(default_internal_listen("localhost:65535"), None);
        assert_eq!(default_internal_listen("no-port"), None);
    }
}
