//! `strata serve` in-process: start a server on 127.0.0.1:0 with a temporary
//! data directory and talk Kafka to it over TCP.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use strata_proto::codec::header::decode_response_frame;
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::{ApiVersionsRequest, ApiVersionsResponse, FetchRequest, ProduceRequest};
use strata_proto::{ApiKey, RequestBody, ResponseBody};
use strata_runtime::cli::ServeArgs;
use strata_runtime::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(dir: &Path) -> Server {
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.data_dir = dir.to_path_buf();
    Server::open(&args).await.expect("server starts")
}


fn api_versions(correlation_id: i32) -> BytesMut {
    let body = ApiVersionsRequest { client_software_name: "strata-test".into(), client_software_version: "1".into() };
    request_frame(correlation_id, 3, RequestBody::ApiVersions(body))
}


async fn expect_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await.expect("connection not closed in time") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the connection closed, got {n} bytes"),
    }
}


fn check_api_versions(body: &ApiVersionsResponse) {
    assert_eq!(body.error_code, 0);
    let keys: Vec<i16> = body.api_keys.iter().map(|k| k.api_key).collect();
    for key in [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::Produce, ApiKey::Fetch] {
        assert!(keys.contains(&(key as i16)), "{key:?} advertised: {keys:?}");
    }
}

#[tokio::test]
async fn api_versions_v3() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(&api_versions(7)).await.unwrap();
    let (header, body) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::ApiVersions, 3).unwrap();
    assert_eq!(header.correlation_id, 7);
    let ResponseBody::ApiVersions(body) = body else { panic!("not ApiVersions: {body:?}") };
    check_api_versions(&body);
    server.shutdown().await;
}

#[tokio::test]
async fn api_versions_of_an_unknown_version_gets_v0_unsupported_version_and_the_connection_stays() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    // ApiVersions v99: header v2 (key, version, correlation id, client id, no tags), then a body we cannot know.
    let mut frame = Vec::new();
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&99i16.to_be_bytes());
    frame.extend_from_slice(&42i32.to_be_bytes());
    frame.extend_from_slice(&4i16.to_be_bytes());
    frame.extend_from_slice(b"test");
    frame.push(0);
    frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01]);
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    s.write_all(&bytes).await.unwrap();
    let (header, body) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::ApiVersions, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let ResponseBody::ApiVersions(body) = body else { panic!("not ApiVersions: {body:?}") };
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(body.api_keys.iter().any(|k| k.api_key == 18 && k.max_version >= 3), "{:?}", body.api_keys);
    // Still usable: the client retries with a version we speak.
    s.write_all(&api_versions(43)).await.unwrap();
    let (header, body) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::ApiVersions, 3).unwrap();
    assert_eq!(header.correlation_id, 43);
    let ResponseBody::ApiVersions(body) = body else { panic!() };
    check_api_versions(&body);
    server.shutdown().await;
}

/// Bytes from a fixed-seed xorshift, with an api key no Kafka api has.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out[0] = 0x7f; // api key 0x7fxx: unknown
    out
}

#[tokio::test]
async fn bad_frames_close_the_connection_and_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let addr = server.local_addr();

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut random = 64i32.to_be_bytes().to_vec();
    random.extend_from_slice(&garbage(64));
    cases.push(("random bytes", random));
    cases.push(("oversized size prefix", 0x7fff_ffffi32.to_be_bytes().to_vec()));
    cases.push(("negative size", (-1i32).to_be_bytes().to_vec()));
    cases.push(("short frame", vec![0, 0, 0, 2, 0, 18]));
    // A valid ApiVersions v3 header followed by a truncated body.
    let mut truncated = api_versions(5).to_vec();
    truncated.truncate(truncated.len() - 3);
    let len = (truncated.len() - 4) as i32;
    truncated[..4].copy_from_slice(&len.to_be_bytes());
    cases.push(("malformed body", truncated));
    // A known api at a version nobody speaks.
    let mut produce99 = api_versions(6).to_vec();
    produce99[4..6].copy_from_slice(&0i16.to_be_bytes());
    produce99[6..8].copy_from_slice(&99i16.to_be_bytes());
    cases.push(("unsupported version", produce99));

    for (what, bytes) in cases {
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(&bytes).await.unwrap();
        expect_closed(&mut bad).await;
        let mut good = TcpStream::connect(addr).await.unwrap();
        good.write_all(&api_versions(1)).await.unwrap();
        assert!(read_frame(&mut good).await.is_some(), "server still answers after {what}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut all = BytesMut::new();
    for i in 0..50 {
        all.extend_from_slice(&api_versions(1000 + i));
    }
    s.write_all(&all).await.unwrap();
    for i in 0..50 {
        let (header, body) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(header.correlation_id, 1000 + i);
        let ResponseBody::ApiVersions(body) = body else { panic!() };
        assert_eq!(body.error_code, 0);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.data_dir = dir.path().to_path_buf();
    args.idle_timeout_ms = 200;
    let server = Server::open(&args).await.unwrap();
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(&api_versions(1)).await.unwrap();
    assert!(read_frame(&mut s).await.is_some());
    let started = std::time::Instant::now();
    expect_closed(&mut s).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "closed too early: {:?}", started.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_busy_port_is_reported_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let other = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::defaults();
    args.listen = server.local_addr().to_string();
    args.data_dir = other.path().to_path_buf();
    let err = Server::open(&args).await.unwrap_err().to_string();
    assert!(err.contains("another process listens on") && err.contains("--listen"), "{err}");
    // The same data directory is locked by the running server.
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.data_dir = dir.path().to_path_buf();
    let err = Server::open(&args).await.unwrap_err().to_string();
    assert!(err.contains("locked"), "{err}");
    server.shutdown().await;
}

// ---- produce and fetch ----------------------------------------------------

fn expected(values: &[&str], from: i64) -> Vec<(i64, String)> {
    values.iter().enumerate().map(|(i, v)| (from + i as i64, v.to_string())).collect()
}

#[tokio::test]
async fn produce_then_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    assert_eq!(create_topic(&mut s, "orders").await, 1);
    assert_eq!(produce(&mut s, 1, "orders", &["a", "b", "c"]).await, 0);
    assert_eq!(produce(&mut s, 2, "orders", &["d", "e"]).await, 3);
    let (hw, records) = fetch(&mut s, 3, "orders", 0).await;
    assert_eq!(hw, 5);
    assert_eq!(records, expected(&["a", "b", "c", "d", "e"], 0));
    let (_, records) = fetch(&mut s, 4, "orders", 3).await;
    assert_eq!(records, expected(&["d", "e"], 3));
    server.shutdown().await;
}

#[tokio::test]
async fn records_survive_a_restart_at_the_same_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<String> = (0..20).map(|i| format!("value-{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    {
        let server = start(dir.path()).await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        create_topic(&mut s, "events").await;
        assert_eq!(produce(&mut s, 1, "events", &values[..10]).await, 0);
        assert_eq!(produce(&mut s, 2, "events", &values[10..]).await, 10);
        server.shutdown().await;
    }
    let server = start(dir.path()).await;
    assert!(server.replayed().0 >= 3, "topic creation and two objects replayed: {:?}", server.replayed());
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let (hw, records) = fetch(&mut s, 1, "events", 0).await;
    assert_eq!(hw, 20);
    assert_eq!(records, expected(&values, 0));
    // That came from the object store (nothing is in memory after a restart)...
    let (hits, misses) = server.cache_stats();
    assert!(misses >= 1, "read from the object store: {hits} hits, {misses} misses");
    // ... and this comes from the block cache.
    let (_, again) = fetch(&mut s, 2, "events", 10).await;
    assert_eq!(again, expected(&values[10..], 10));
    assert!(server.cache_stats().0 > hits, "served from the cache: {:?}", server.cache_stats());
    assert_eq!(produce(&mut s, 3, "events", &["after"]).await, 20);
    server.shutdown().await;
}

#[tokio::test]
async fn acknowledged_records_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = start(dir.path()).await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        create_topic(&mut s, "crash").await;
        assert_eq!(produce(&mut s, 1, "crash", &["x", "y"]).await, 0);
        server.kill().await;
    }
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let (hw, records) = fetch(&mut s, 1, "crash", 0).await;
    assert_eq!(hw, 2);
    assert_eq!(records, expected(&["x", "y"], 0));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_produces_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.data_dir = dir.path().to_path_buf();
    args.flush_ms = 300; // the produce waits in the open object when shutdown starts
    let server = Server::open(&args).await.unwrap();
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    create_topic(&mut s, "late").await;
    let body = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: "late".into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(batch(&["last"])) }],
            ..Default::default()
        }],
        ..Default::default()
    };
    s.write_all(&request_frame(9, PRODUCE_V, RequestBody::Produce(body))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutdown = tokio::spawn(server.shutdown());
    let frame = read_frame(&mut s).await.expect("the produce is answered before the connection closes");
    let (header, body) = decode_response_frame(frame, ApiKey::Produce, PRODUCE_V).unwrap();
    assert_eq!(header.correlation_id, 9);
    let ResponseBody::Produce(r) = body else { panic!() };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    expect_closed(&mut s).await;
    shutdown.await.unwrap();
    // And the record is there after a restart.
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    assert_eq!(fetch(&mut s, 1, "late", 0).await.1, expected(&["last"], 0));
    server.shutdown().await;
}

#[tokio::test]
async fn responses_keep_request_order_and_acks_0_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    create_topic(&mut s, "quiet").await;
    // A long-poll fetch on an empty partition, then an ApiVersions: the core
    // answers the ApiVersions at once, but it must go out after the fetch.
    let fetch = FetchRequest {
        replica_id: -1,
        max_wait_ms: 300,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "quiet".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // An acks=0 produce in between gets no response at all.
    let produce0 = ProduceRequest {
        acks: 0,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: "other-topic-that-does-not-exist".into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(batch(&["z"])) }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut all = request_frame(1, FETCH_V, RequestBody::Fetch(fetch));
    all.extend_from_slice(&request_frame(2, PRODUCE_V, RequestBody::Produce(produce0)));
    all.extend_from_slice(&api_versions(3));
    let started = std::time::Instant::now();
    s.write_all(&all).await.unwrap();
    let (h, _) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::Fetch, FETCH_V).unwrap();
    assert_eq!(h.correlation_id, 1);
    assert!(started.elapsed() >= Duration::from_millis(250), "the fetch waited: {:?}", started.elapsed());
    let (h, _) = decode_response_frame(read_frame(&mut s).await.unwrap(), ApiKey::ApiVersions, 3).unwrap();
    assert_eq!(h.correlation_id, 3, "the acks=0 produce got no response");
    server.shutdown().await;
}

// ---- snapshots ------------------------------------------------------------

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata_runtime::sequencer::{AppendError, Member, MemberWatch, MemorySequencer, Registration, Sequencer, SequencerError, Watch};
use strata_runtime::server::ServerConfig;
use strata_runtime::store::ObjectStoreBackend;

/// A broker of a cluster sharing `seq` and `store` (the lowest live node id
/// snapshots every `every` commits).
async fn start_shared<S: Sequencer + 'static>(node_id: i32, every: u64, seq: S, store: &ObjectStoreBackend) -> Server {
    let mut cfg = ServerConfig::from_args(&ServeArgs::defaults(), 1000 + node_id as u64);
    cfg.listen = "127.0.0.1:0".into();
    cfg.broker.node_id = node_id;
    cfg.snapshot_every_commits = every;
    Server::start(cfg, Arc::new(seq), store.clone()).await.expect("server starts")
}

/// Waits until `b` has applied what `a` has and has the same state.
async fn same_state(a: &Server, b: &Server) -> (u64, u64) {
    for _ in 0..500 {
        let (x, y) = (a.applied_digest().await.unwrap(), b.applied_digest().await.unwrap());
        if x == y {
            return x;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the brokers never reached the same state: {:?} vs {:?}", a.applied_digest().await, b.applied_digest().await);
}

/// Waits until a snapshot at or after `at_least` is published and the log truncated behind it.
async fn truncated_past(seq: &MemorySequencer, at_least: u64) -> u64 {
    for _ in 0..500 {
        if let Some(r) = seq.snapshot_revision().await.unwrap() {
            if r >= at_least && seq.first_revision() > r {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no snapshot at or after {at_least} was published and truncated behind");
}

#[tokio::test]
async fn a_new_broker_starts_from_the_snapshot_plus_the_tail_and_serves_identical_data() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::memory();
    let a = start_shared(1, 5, seq.clone(), &store).await;
    let mut sa = TcpStream::connect(a.local_addr()).await.unwrap();
    create_topic(&mut sa, "snap").await;
    let mut values = Vec::new();
    for i in 0..23 {
        values.push(format!("v{i}"));
        let v = values.last().unwrap().clone();
        produce(&mut sa, 1000 + i, "snap", &[v.as_str()]).await;
    }
    let snapped = truncated_past(&seq, 20).await;
    // Older snapshots are collected: at most the newest two are kept.
    let kept = store.list("snapshots/").await.unwrap();
    assert!(!kept.is_empty() && kept.len() <= 3, "{kept:?}");
    // A new broker: from the snapshot, then the tail.
    let b = start_shared(2, 5, seq.clone(), &store).await;
    assert!(b.start_revision() >= snapped, "started from {} (snapshot {snapped})", b.start_revision());
    let (revision, digest) = same_state(&a, &b).await;
    println!("broker B started from snapshot {}, replayed to revision {}; both at revision {revision}, digest {digest:016x}", b.start_revision(), b.replayed().0);
    let mut sb = TcpStream::connect(b.local_addr()).await.unwrap();
    let from_a = fetch(&mut sa, 2000, "snap", 0).await;
    let from_b = fetch(&mut sb, 2000, "snap", 0).await;
    assert_eq!(from_a, from_b);
    let want: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(from_b.1, expected(&want, 0));
    // It keeps following: a record produced on A is served by B at the same offset.
    let off = produce(&mut sa, 3000, "snap", &["late"]).await;
    same_state(&a, &b).await;
    assert_eq!(fetch(&mut sb, 3001, "snap", off).await.1, vec![(off, "late".to_string())]);
    a.shutdown().await;
    b.shutdown().await;
}

/// A sequencer whose watches break while the gate is closed (a broker cut
/// off from the sequencer, falling behind).
#[derive(Clone)]
struct Gated {
    inner: MemorySequencer,
    open: Arc<AtomicBool>,
}

impl Sequencer for Gated {
    async fn append(&self, record: Bytes) -> Result<u64, AppendError> {
        self.inner.append(record).await
    }
    async fn watch(&self, from: u64) -> Result<Watch, SequencerError> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(SequencerError::Unavailable("gated".into()));
        }
        let mut inner = self.inner.watch(from).await?;
        let (tx, watch) = Watch::channel();
        let open = self.open.clone();
        tokio::spawn(async move {
            while let Some(item) = inner.next().await {
                let item = if open.load(Ordering::SeqCst) { item } else { Err(SequencerError::Unavailable("gated".into())) };
                let end = item.is_err();
                if tx.send(item).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(watch)
    }
    async fn current_revision(&self) -> Result<u64, SequencerError> {
        self.inner.current_revision().await
    }
    async fn snapshot_revision(&self) -> Result<Option<u64>, SequencerError> {
        self.inner.snapshot_revision().await
    }
    async fn publish_snapshot(&self, revision: u64) -> Result<bool, SequencerError> {
        self.inner.publish_snapshot(revision).await
    }
    async fn truncate(&self, through: u64) -> Result<(), SequencerError> {
        self.inner.truncate(through).await
    }
    async fn register(&self, me: Member, ttl: Duration) -> Result<Registration, SequencerError> {
        self.inner.register(me, ttl).await
    }
    async fn watch_members(&self) -> Result<MemberWatch, SequencerError> {
        self.inner.watch_members().await
    }
}

#[tokio::test]
async fn a_broker_whose_next_commit_was_truncated_reloads_the_snapshot() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::memory();
    let a = start_shared(1, 4, seq.clone(), &store).await;
    let open = Arc::new(AtomicBool::new(true));
    let b = start_shared(2, 4, Gated { inner: seq.clone(), open: open.clone() }, &store).await;
    let mut sa = TcpStream::connect(a.local_addr()).await.unwrap();
    create_topic(&mut sa, "lag").await;
    produce(&mut sa, 1, "lag", &["before"]).await;
    same_state(&a, &b).await;
    let (behind, _) = b.applied_digest().await.unwrap();
    // B is cut off; A goes on, snapshots and truncates past B's position.
    open.store(false, Ordering::SeqCst);
    for i in 0..12 {
        produce(&mut sa, 10 + i, "lag", &["during"]).await;
    }
    truncated_past(&seq, behind + 4).await;
    assert!(b.applied_digest().await.unwrap().0 <= behind + 1, "B was not cut off");
    open.store(true, Ordering::SeqCst);
    // B's next revision is gone: it reloads the snapshot and catches up.
    same_state(&a, &b).await;
    let mut sb = TcpStream::connect(b.local_addr()).await.unwrap();
    assert_eq!(fetch(&mut sa, 50, "lag", 0).await, fetch(&mut sb, 50, "lag", 0).await);
    a.shutdown().await;
    b.shutdown().await;
}

/// The figure the issue asks for: size of a snapshot of 10,000 partitions
/// (10 extents each) and how long a new broker takes to start from it.
/// Printed, not asserted: `cargo test -p strata-runtime --test serve
/// snapshot_of_10000_partitions -- --nocapture` (add --release for real figures).
#[tokio::test]
async fn snapshot_of_10000_partitions() {
    use strata_core::log::apply::apply;
    use strata_core::log::commit::{BatchEntry, Commit, CommitBody, NewTopic, Origin, PartitionEntry};
    use strata_core::log::state::LogState;
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::memory();
    let mut state = LogState::default();
    let origin = Origin { broker: 9, incarnation: 9, seq: 1 };
    let topics: Vec<NewTopic> =
        (0..10).map(|t| NewTopic { name: format!("topic-{t}"), partitions: 1000, configs: Default::default() }).collect();
    let create = Commit { origin, body: CommitBody::CreateTopics(topics) };
    apply(&mut state, seq.append(create.encode()).await.unwrap(), &create);
    let ids: Vec<_> = state.topics.values().map(|t| t.id).collect();
    for o in 0..100u64 {
        let partitions = (0..1000u64)
            .map(|i| {
                let p = (o * 1000 + i) % 10_000;
                let batch = BatchEntry { position: i * 1000, length: 1000, offset_count: 10, record_count: 10, max_timestamp: o as i64, producer_id: -1, producer_epoch: -1, base_sequence: -1, transactional: false };
                PartitionEntry { topic_id: ids[(p / 1000) as usize], partition: (p % 1000) as i32, batches: vec![batch] }
            })
            .collect();
        let c = Commit { origin, body: CommitBody::Object { key: format!("objects/{:02x}/object-{o:04}", o % 256), size: 1_000_000, partitions } };
        apply(&mut state, seq.append(c.encode()).await.unwrap(), &c);
    }
    let started = std::time::Instant::now();
    let bytes = strata_core::log::snapshot::encode(&state);
    let encode_ms = started.elapsed().as_secs_f64() * 1000.0;
    let size = bytes.len();
    store.put_create(&strata_core::log::snapshot::key(state.revision), bytes).await.unwrap();
    assert!(seq.publish_snapshot(state.revision).await.unwrap());
    seq.truncate(state.revision).await.unwrap();
    let b = start_shared(2, 0, seq.clone(), &store).await;
    let (replayed, took) = b.replayed();
    // Started from the snapshot, with nothing after it to replay.
    assert_eq!((b.start_revision(), replayed), (state.revision, state.revision));
    assert_eq!(b.applied_digest().await.unwrap(), (state.revision, state.digest()));
    println!(
        "snapshot of 10,000 partitions, 100,000 extents: {size} bytes ({:.1} MiB), encoded in {encode_ms:.0} ms; \
         a new broker loaded it and was serving after {} ms",
        size as f64 / (1 << 20) as f64,
        took.as_millis()
    );
    b.shutdown().await;
}
