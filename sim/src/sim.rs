//! One seed: build the cluster on a fresh madsim runtime, run the workload
//! under faults, heal, read everything back, check.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use strata_core::broker::BrokerConfig;
use strata_core::log::apply::apply;
use strata_core::log::commit::Commit;
use strata_core::log::state::LogState;
use strata_runtime::server::{Server, ServerConfig};
use strata_runtime::store::ObjectStoreBackend;

use crate::check::{check, BrokerRead, Violation};
use crate::clients::{self, Conns, Ctx, TOPIC};
use crate::groups;
use crate::history::History;
use crate::seq::{self, SeqLog, SimSequencer, SEQ_PORT};
use crate::store::{self, Objects, SimStore, STORE_PORT};
use crate::{set_faults_on, Faults, Profile};

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Opts {
    pub brokers: usize,
    pub partitions: i32,
    /// Simulated seconds of workload (the healing and final reads come after).
    pub duration_s: u64,
    pub profile: Profile,
}

/// What one seed gave.
pub struct Outcome {
    pub seed: u64,
    pub digest: u64,
    pub violations: Vec<Violation>,
    pub history: History,
    /// Simulated milliseconds the run took.
    pub sim_ms: u64,
    pub acks: usize,
    pub seen: usize,
}

const BROKER_PORT: u16 = 9092;

/// Lease of a broker's membership: brokers learn the live set from the
/// sequencer, so all agree on each group's coordinator once leases settle.
const MEMBER_TTL: Duration = Duration::from_millis(3000);
/// Commits between snapshots in the simulation.
const SNAPSHOT_EVERY_COMMITS: u64 = 20;

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs a panic hook that keeps the message (the checker reports it).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("{info}");
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
    }));
}

/// Runs one seed, on a fresh thread: thread-local state (std's hash keys,
/// which advance with every map created) must start the same for every run.
pub fn run_seed(opts: &Opts, seed: u64) -> Outcome {
    let opts = opts.clone();
    std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .stack_size(64 << 20)
        .spawn(move || run_seed_here(&opts, seed))
        .expect("spawn a simulation thread")
        .join()
        .expect("the simulation thread reports panics itself")
}

fn run_seed_here(opts: &Opts, seed: u64) -> Outcome {
    let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    // A run that cannot finish (a hang) ends here instead of spinning forever.
    rt.set_time_limit(Duration::from_secs(opts.duration_s + 600));
    let history = History::default();
    set_faults_on(true);
    *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let h = history.clone();
    let o = opts.clone();
    let result = std::panic::catch_unwind(AssertUnwindSafe(move || rt.block_on(scenario(o, h))));
    set_faults_on(true);
    let (violations, sim_ms) = match result {
        Ok(v) => v,
        Err(_) => {
            let msg = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_else(|| "unknown panic".into());
            history.log("checker", format!("panic: {msg}"));
            (vec![Violation { invariant: "8 (no panic)".into(), detail: msg, keys: vec![] }], history.now_ms())
        }
    };
    let (acks, seen) = {
        let inner = history.0.lock().unwrap();
        (inner.acks.len(), inner.seen.len())
    };
    Outcome { seed, digest: history.digest(), violations, history, sim_ms, acks, seen }
}

/// A broker node's life: connect to the services, start the real server on
/// them (retrying while the sequencer is unreachable), then serve forever.
async fn broker_main(i: usize, seq_addr: SocketAddr, store_addr: SocketAddr, history: History, flush_ms: u64) {
    loop {
        let sequencer = Arc::new(SimSequencer::connect(seq_addr).await);
        let store = ObjectStoreBackend::new(Arc::new(SimStore::connect(store_addr).await), "sim://store");
        let incarnation = madsim::rand::random::<u64>();
        let broker = BrokerConfig {
            node_id: i as i32 + 1,
            cluster_id: "strata-sim".into(),
            flush_bytes: 64 << 10,
            flush_ms,
            request_timeout_ms: 5000,
            incarnation,
            recent_object_bytes: 1 << 20,
            // Collect often, with the shortest grace (twice the request timeout),
            // so runs see orphans of failed flushes deleted beside live objects.
            object_gc_interval_ms: 2000,
            object_gc_grace_ms: 0,
            // Short group timings, so a 20 s run sees several rebalances.
            static_props: [("group.initial.rebalance.delay.ms", "300"), ("group.min.session.timeout.ms", "1000")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..BrokerConfig::for_tests()
        };
        let cfg = ServerConfig {
            listen: format!("0.0.0.0:{BROKER_PORT}"),
            advertised: Some(format!("10.0.1.{}:{BROKER_PORT}", i + 1)),
            // No internal gRPC under the simulator (peer reads are not tried).
            internal_listen: None,
            internal_advertised: None,
            broker,
            max_request_bytes: 8 << 20,
            max_inflight_requests: 64,
            max_inflight_bytes: 8 << 20,
            idle_timeout: Duration::from_secs(600),
            cache_bytes: 1 << 20,
            shutdown_timeout: Duration::from_secs(5),
            // Short enough that partitions and crashes of a 20 s run expire leases.
            member_ttl: MEMBER_TTL,
            // Small, so that a run sees several snapshots, truncations, starts
            // from a snapshot and reloads of lagging brokers.
            snapshot_every_commits: SNAPSHOT_EVERY_COMMITS,
        };
        match Server::start(cfg, sequencer, store).await {
            Ok(server) => {
                let (n, _) = server.replayed();
                let from = server.start_revision();
                history.log(
                    &format!("broker{i}"),
                    format!("started (incarnation {incarnation:016x}) from snapshot {from}, replayed to revision {n}"),
                );
                std::future::pending::<()>().await;
                drop(server);
            }
            Err(e) => {
                history.log(&format!("broker{i}"), format!("start failed: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn rand_ms(min: u64, max: u64) -> Duration {
    Duration::from_millis(min + madsim::rand::random::<u64>() % (max - min + 1))
}

struct Cluster {
    seq: NodeHandle,
    store: NodeHandle,
    brokers: Vec<NodeHandle>,
    clients: Vec<NodeHandle>,
    /// Brokers between a kill and their restart: one kill at a time per broker
    /// (madsim's restart of a running node would keep its old sockets).
    down: Mutex<std::collections::BTreeSet<usize>>,
}

impl Cluster {
    fn all_ids(&self) -> Vec<(String, madsim::task::NodeId)> {
        let mut v = vec![("seq".to_string(), self.seq.id()), ("store".to_string(), self.store.id())];
        v.extend(self.brokers.iter().enumerate().map(|(i, b)| (format!("broker{i}"), b.id())));
        v.extend(self.clients.iter().enumerate().map(|(i, c)| (format!("clients{i}"), c.id())));
        v
    }
}

/// Kills broker `i` (unless it is down already) and restarts it after `down_for`.
async fn kill_broker(cluster: &Cluster, i: usize, down_for: Duration, history: &History, how: &str) {
    if !cluster.down.lock().unwrap().insert(i) {
        return;
    }
    history.log("faults", format!("broker{i} {how}, restarts in {} ms", down_for.as_millis()));
    let handle = Handle::current();
    handle.kill(cluster.brokers[i].id());
    tokio::time::sleep(down_for).await;
    handle.restart(cluster.brokers[i].id());
    cluster.down.lock().unwrap().remove(&i);
}

/// Carries out the crashes brokers decided at their crash points (the broker
/// is frozen there until killed), for the whole run.
async fn carry_out_crashes(cluster: Arc<Cluster>, history: History) {
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        for (i, point) in crate::crash::take_pending() {
            let (cluster, history) = (cluster.clone(), history.clone());
            let how = format!("crashes {}", crate::crash::describe(point));
            tokio::spawn(async move { kill_broker(&cluster, i, rand_ms(100, 4000), &history, &how).await });
        }
    }
}

/// Injects the profile's process and network faults until `until_ms`.
async fn inject(cluster: Arc<Cluster>, profile: Profile, history: History, until_ms: u64) {
    let handle = Handle::current();
    let net = NetSim::current();
    let nodes = cluster.all_ids();
    loop {
        tokio::time::sleep(rand_ms(300, 2500)).await;
        if history.now_ms() >= until_ms {
            return;
        }
        let mut kinds = Vec::new();
        if profile.network() {
            kinds.extend(["partition", "isolate"]);
        }
        if profile.sequencer() {
            kinds.push("seq-crash");
        }
        if profile.process() {
            kinds.push("broker-kill");
        }
        if kinds.is_empty() {
            return;
        }
        let kind = kinds[(madsim::rand::random::<u64>() % kinds.len() as u64) as usize];
        match kind {
            "partition" => {
                let a = (madsim::rand::random::<u64>() % nodes.len() as u64) as usize;
                let mut b = (madsim::rand::random::<u64>() % nodes.len() as u64) as usize;
                if a == b {
                    b = (b + 1) % nodes.len();
                }
                let (na, ia) = nodes[a].clone();
                let (nb, ib) = nodes[b].clone();
                let d = rand_ms(200, 5000);
                history.log("faults", format!("partition {na} <-> {nb} for {} ms", d.as_millis()));
                net.clog_link(ia, ib);
                net.clog_link(ib, ia);
                let (net, history) = (net.clone(), history.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    net.unclog_link(ia, ib);
                    net.unclog_link(ib, ia);
                    history.log("faults", format!("healed {na} <-> {nb}"));
                });
            }
            "isolate" => {
                let (n, id) = nodes[(madsim::rand::random::<u64>() % nodes.len() as u64) as usize].clone();
                let d = rand_ms(200, 3000);
                history.log("faults", format!("isolate {n} for {} ms", d.as_millis()));
                net.clog_node(id);
                let (net, history) = (net.clone(), history.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    net.unclog_node(id);
                    history.log("faults", format!("healed {n}"));
                });
            }
            "seq-crash" => {
                let d = rand_ms(100, 3000);
                history.log("faults", format!("sequencer crashes, restarts in {} ms", d.as_millis()));
                handle.kill(cluster.seq.id());
                tokio::time::sleep(d).await;
                handle.restart(cluster.seq.id());
                history.log("faults", "sequencer restarted".into());
            }
            "broker-kill" => {
                let i = (madsim::rand::random::<u64>() % cluster.brokers.len() as u64) as usize;
                kill_broker(&cluster, i, rand_ms(100, 4000), &history, "killed").await;
            }
            _ => {}
        }
    }
}

/// Each partition's log end by replaying the sequencer's log through the apply.
fn reference_ends(log: &SeqLog, partitions: i32) -> BTreeMap<i32, i64> {
    let mut state = LogState::default();
    for (i, rec) in log.records().into_iter().enumerate() {
        if let Ok(commit) = Commit::decode(rec) {
            apply(&mut state, i as u64 + 1, &commit);
        }
    }
    (0..partitions).filter_map(|p| state.partition(TOPIC, p).map(|pp| (p, pp.log_end))).collect()
}

async fn scenario(opts: Opts, history: History) -> (Vec<Violation>, u64) {
    history.start();
    let handle = Handle::current();
    let faults = Arc::new(Faults::for_profile(opts.profile));
    crate::crash::arm(faults.broker_crash);
    let seq_log = SeqLog::new();
    let objects = Arc::new(Objects::default());
    let seq_addr = SocketAddr::new(ip(10, 0, 0, 1), SEQ_PORT);
    let store_addr = SocketAddr::new(ip(10, 0, 0, 2), STORE_PORT);

    let seq = {
        let (log, faults, history) = (seq_log.clone(), faults.clone(), history.clone());
        handle
            .create_node()
            .name("seq")
            .ip(seq_addr.ip())
            .init(move || seq::run_server(seq_addr, log.clone(), faults.clone(), history.clone()))
            .build()
    };
    let store = {
        let (objects, faults, history) = (objects.clone(), faults.clone(), history.clone());
        handle
            .create_node()
            .name("store")
            .ip(store_addr.ip())
            .init(move || store::run_server(store_addr, objects.clone(), faults.clone(), history.clone()))
            .build()
    };
    let mut brokers = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..opts.brokers {
        let history = history.clone();
        let flush_ms = 5 + madsim::rand::random::<u64>() % 40;
        addrs.push(format!("10.0.1.{}:{BROKER_PORT}", i + 1));
        brokers.push(
            handle
                .create_node()
                .name(format!("broker{i}"))
                .ip(ip(10, 0, 1, i as u8 + 1))
                .init(move || broker_main(i, seq_addr, store_addr, history.clone(), flush_ms))
                .build(),
        );
    }
    // Nodes 0 and 1 run producers and consumers; then one node per group member.
    let clients: Vec<NodeHandle> =
        (0..2 + groups::MEMBERS as u8).map(|i| handle.create_node().name(format!("clients{i}")).ip(ip(10, 0, 2, i + 1)).build()).collect();
    let cluster = Arc::new(Cluster { seq, store, brokers, clients, down: Mutex::new(Default::default()) });

    // Set-up, without faults.
    set_faults_on(false);
    let topic_id = {
        let (addrs, history, n) = (addrs.clone(), history.clone(), opts.partitions);
        cluster.clients[0].spawn(async move { clients::setup_topic(&addrs, n, &history).await }).await.expect("set-up task")
    };
    set_faults_on(true);
    let ctx = Ctx { brokers: addrs.clone(), partitions: opts.partitions, history: history.clone(), topic_id };
    let until = history.now_ms() + opts.duration_s * 1000;

    let mut work = Vec::new();
    for i in 0..2 {
        let c = ctx.clone();
        work.push(cluster.clients[0].spawn(clients::idempotent_producer(c, format!("idem{i}"), until)));
    }
    work.push(cluster.clients[0].spawn(clients::plain_producer(ctx.clone(), "plain0".into(), until)));
    for i in 0..2 {
        work.push(cluster.clients[1].spawn(clients::consumer(ctx.clone(), format!("cons{i}"), until)));
    }
    for (i, node) in cluster.clients[2..].iter().enumerate() {
        work.push(node.spawn(groups::member(ctx.clone(), format!("gm{i}"), until)));
    }
    let injector = tokio::spawn(inject(cluster.clone(), opts.profile, history.clone(), until));
    let _crashes = tokio::spawn(carry_out_crashes(cluster.clone(), history.clone()));
    let _ = injector.await;
    // Producers may still be retrying their last batch: give them time while healing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_faults_on(false);
    let net = NetSim::current();
    let ids = cluster.all_ids();
    for (_, a) in &ids {
        net.unclog_node(*a);
        for (_, b) in &ids {
            net.unclog_link(*a, *b);
        }
    }
    history.log("faults", "all healed".into());
    for w in work {
        let _ = tokio::time::timeout(Duration::from_secs(120), w).await;
    }

    // Quiescence: brokers may still commit what they buffered for requests the
    // clients gave up on; wait until the log stops growing.
    loop {
        let before = seq_log.revision();
        tokio::time::sleep(Duration::from_secs(8)).await;
        if seq_log.revision() == before {
            break;
        }
    }
    cluster.clients[1].spawn(groups::read_final_offsets(ctx.clone())).await.expect("final offsets reader");
    // Final reads: wait until each broker has applied the whole log, then read everything.
    let expected = reference_ends(&seq_log, opts.partitions);
    history.log("checker", format!("the sequencer's log ({} records) gives log ends {expected:?}", seq_log.records().len()));
    let (published, first) = seq_log.snapshot_state();
    history.log("checker", format!("published snapshot {published:?}; the log is served from revision {first}"));
    let reads = {
        let (ctx, expected, n) = (ctx.clone(), expected.clone(), opts.brokers);
        cluster.clients[1]
            .spawn(async move {
                let mut conns = Conns::new("final", &ctx.brokers);
                let mut reads: Vec<BrokerRead> = Vec::new();
                for b in 0..n {
                    let mut read = BrokerRead::new();
                    for p in 0..ctx.partitions {
                        let want = expected.get(&p).copied().unwrap_or(0);
                        let mut last = Err("never answered".to_string());
                        for _ in 0..40 {
                            last = clients::read_all(&ctx, &mut conns, b, p).await;
                            if matches!(&last, Ok((hw, _)) if *hw >= want) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        read.insert(p, last);
                    }
                    reads.push(read);
                }
                reads
            })
            .await
            .expect("final reader")
    };
    // The reference replay must not run the planted bug (it checks the brokers).
    #[cfg(feature = "sim-bugs")]
    let bug = strata_core::sim_bugs::ALL.iter().map(|(_, b)| *b).find(|b| strata_core::sim_bugs::active(*b));
    #[cfg(feature = "sim-bugs")]
    strata_core::sim_bugs::set(None);
    let expected = reference_ends(&seq_log, opts.partitions);
    #[cfg(feature = "sim-bugs")]
    strata_core::sim_bugs::set(bug);
    let violations = check(&history.0.lock().unwrap(), &reads, &expected, opts.partitions);
    history.log("checker", format!("{} violations", violations.len()));
    (violations, history.now_ms())
}

static CHECK_OPTS: std::sync::OnceLock<Opts> = std::sync::OnceLock::new();

/// madsim's own determinism check: runs the seed twice, logging every random
/// draw the first time, and panics where the second run's draws first differ.
pub fn madsim_determinism_check(opts: &Opts, seed: u64) {
    let _ = CHECK_OPTS.set(opts.clone());
    Runtime::check_determinism(seed, madsim::Config::default(), || {
        scenario(CHECK_OPTS.get().expect("set above").clone(), History::default())
    });
}
