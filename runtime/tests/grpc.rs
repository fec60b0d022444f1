//! The internal gRPC surface (issue 6) on in-process brokers sharing one
//! sequencer and one object store: a tail read on broker 2 of an object
//! broker 1 wrote is served by broker 1 from memory (no object-store GET),
//! and goes to the store when broker 1 no longer has it or is gone; the admin
//! service's status, flush and drain do what they say.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use strata_proto::messages::MetadataRequest;
use strata_proto::{RequestBody, ResponseBody};
use strata_runtime::cli::ServeArgs;
use strata_runtime::grpc::proto::admin_client::AdminClient;
use strata_runtime::grpc::proto::peer_client::PeerClient;
use strata_runtime::grpc::proto::{DrainRequest, FlushRequest, ReadObjectRequest, StatusRequest, StatusResponse};
use strata_runtime::sequencer::MemorySequencer;
use strata_runtime::server::{Server, ServerConfig};
use strata_runtime::store::ObjectStoreBackend;
use tokio::net::TcpStream;
use tonic::transport::Channel;

/// Kafka's NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

async fn start_with(node_id: i32, seq: &MemorySequencer, store: &ObjectStoreBackend, tweak: impl FnOnce(&mut ServeArgs)) -> Server {
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.node_id = node_id;
    args.flush_ms = 2;
    args.default_partitions = 2;
    tweak(&mut args);
    let cfg = ServerConfig::from_args(&args, 2000 + node_id as u64);
    Server::start(cfg, Arc::new(seq.clone()), store.clone()).await.expect("server starts")
}

async fn start(node_id: i32, seq: &MemorySequencer, store: &ObjectStoreBackend) -> Server {
    start_with(node_id, seq, store, |_| {}).await
}

async fn admin(s: &Server) -> AdminClient<Channel> {
    let addr = s.internal_addr().expect("an internal listener");
    AdminClient::connect(format!("http://{addr}")).await.expect("admin connects")
}

async fn status(client: &mut AdminClient<Channel>) -> StatusResponse {
    client.status(StatusRequest {}).await.expect("status answers").into_inner()
}

/// Node ids in a broker's Metadata.
async fn metadata_brokers(s: &mut TcpStream) -> Vec<i32> {
    let ResponseBody::Metadata(m) = call(s, 1, METADATA_V, RequestBody::Metadata(MetadataRequest::default())).await else {
        panic!("not Metadata")
    };
    m.brokers.iter().map(|b| b.node_id).collect()
}

/// Evaluates `$get` until `$done` holds of it (a bounded number of tries).
macro_rules! until {
    ($what:expr, $get:expr, $done:expr) => {{
        let mut last = None;
        let mut found = None;
        for _ in 0..400 {
            let v = $get;
            if ($done)(&v) {
                found = Some(v);
                break;
            }
            last = Some(v);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        match found {
            Some(v) => v,
            None => panic!("never saw {}: last {:?}", $what, last),
        }
    }};
}

/// Fetches `partition` from `offset` through `conn` until it returns records.
async fn fetch_some(conn: &mut TcpStream, topic: &str, partition: i32, offset: i64) -> Vec<(i64, String)> {
    let mut records = Vec::new();
    for i in 0..400 {
        records = decode_records(fetch_raw(conn, 500 + i, topic, partition, offset).await.1);
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    records
}

#[tokio::test]
async fn tail_reads_come_from_the_writer_and_fall_back_to_the_store() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::open("memory://").await.unwrap();
    let b1 = start(1, &seq, &store).await;
    let b2 = start(2, &seq, &store).await;
    let mut c1 = TcpStream::connect(b1.local_addr()).await.unwrap();
    let mut c2 = TcpStream::connect(b2.local_addr()).await.unwrap();
    until!("both brokers in broker 2's Metadata", metadata_brokers(&mut c2).await, |b: &Vec<i32>| b.len() == 2);
    assert_eq!(create_topic(&mut c1, "tail").await, 2);

    // Two objects written by broker 1: one on each partition.
    assert_eq!(produce_to(&mut c1, 10, "tail", 0, &["a0", "a1"]).await, 0);
    assert_eq!(produce_to(&mut c1, 11, "tail", 1, &["b0"]).await, 0);

    // Broker 2 reads partition 0 from broker 1's memory, not from the store.
    let before = b2.read_counts();
    assert_eq!(fetch_some(&mut c2, "tail", 0, 0).await, [(0, "a0".to_owned()), (1, "a1".to_owned())]);
    let after = b2.read_counts();
    assert!(after.peer_reads_used > before.peer_reads_used, "no peer read: {after:?}");
    assert_eq!(after.store_gets, before.store_gets, "broker 2 read the store: {after:?}");
    assert!(b1.read_counts().peer_reads_served > 0, "broker 1 served nothing: {:?}", b1.read_counts());
    assert!(status(&mut admin(&b2).await).await.peer_reads_used > 0, "Status does not show the peer read");

    // Broker 1 gone: partition 1's object comes from the store.
    b1.shutdown().await;
    until!("broker 1 gone from broker 2's Metadata", metadata_brokers(&mut c2).await, |b: &Vec<i32>| b == &[2]);
    let before = b2.read_counts();
    assert_eq!(fetch_some(&mut c2, "tail", 1, 0).await, [(0, "b0".to_owned())]);
    let after = b2.read_counts();
    assert!(after.store_gets > before.store_gets, "not read from the store: {after:?}");
    assert_eq!(after.peer_reads_used, before.peer_reads_used, "{after:?}");
    b2.shutdown().await;
}

#[tokio::test]
async fn a_writer_without_the_object_in_memory_sends_readers_to_the_store() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::open("memory://").await.unwrap();
    // Broker 1 keeps none of its objects in memory: every peer read is NOT_FOUND.
    let b1 = start_with(1, &seq, &store, |a| a.recent_object_bytes = 0).await;
    let b2 = start(2, &seq, &store).await;
    let mut c1 = TcpStream::connect(b1.local_addr()).await.unwrap();
    let mut c2 = TcpStream::connect(b2.local_addr()).await.unwrap();
    until!("both brokers in broker 2's Metadata", metadata_brokers(&mut c2).await, |b: &Vec<i32>| b.len() == 2);
    create_topic(&mut c1, "evicted").await;
    produce_to(&mut c1, 10, "evicted", 0, &["x"]).await;
    assert_eq!(fetch_some(&mut c2, "evicted", 0, 0).await, [(0, "x".to_owned())]);
    let counts = b2.read_counts();
    assert!(counts.peer_reads_missed > 0, "the peer was not asked: {counts:?}");
    assert!(counts.store_gets > 0, "not read from the store: {counts:?}");
    assert_eq!(counts.peer_reads_used, 0, "{counts:?}");

    // The peer service itself: NOT_FOUND, and bad ranges refused.
    let addr = b1.internal_addr().unwrap();
    let mut peer = PeerClient::connect(format!("http://{addr}")).await.unwrap();
    let miss = peer.read_object(ReadObjectRequest { key: "objects/00/1-0-0-r0".into(), start: 0, end: 1 }).await.unwrap_err();
    assert_eq!(miss.code(), tonic::Code::NotFound);
    let huge = peer.read_object(ReadObjectRequest { key: "k".into(), start: 0, end: 1 << 40 }).await.unwrap_err();
    assert_eq!(huge.code(), tonic::Code::ResourceExhausted);
    let backwards = peer.read_object(ReadObjectRequest { key: "k".into(), start: 5, end: 1 }).await.unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::InvalidArgument);
    b1.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test]
async fn admin_status_flush_and_drain() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::open("memory://").await.unwrap();
    // Broker 1 writes only when told (or after a minute): flush is what commits.
    let b1 = start_with(1, &seq, &store, |a| {
        a.flush_ms = 60_000;
        a.flush_when_idle = false;
    })
    .await;
    let b2 = start(2, &seq, &store).await;
    let mut c1 = TcpStream::connect(b1.local_addr()).await.unwrap();
    let mut c2 = TcpStream::connect(b2.local_addr()).await.unwrap();
    until!("both brokers in broker 2's Metadata", metadata_brokers(&mut c2).await, |b: &Vec<i32>| b.len() == 2);
    create_topic(&mut c1, "admin").await;
    let mut a1 = admin(&b1).await;

    let s = until!("broker 2 in broker 1's status", status(&mut a1).await, |s: &StatusResponse| s.members.len() == 2);
    assert_eq!((s.node_id, s.cluster_id.as_str(), s.draining), (1, "strata", false));
    assert_eq!((s.topics, s.partitions), (1, 2));
    assert!(s.applied_revision > 0);
    assert_eq!(s.members[0].internal_address, b1.internal_advertised().unwrap());
    assert_eq!(s.members[1].internal_address, b2.internal_advertised().unwrap());

    // Flush: a produce waits in the open object until the flush commits it.
    let mut p1 = TcpStream::connect(b1.local_addr()).await.unwrap();
    let pending = tokio::spawn(async move { produce_raw(&mut p1, 20, "admin", 0, &["flushed"]).await });
    let s = until!("the record in the open object", status(&mut a1).await, |s: &StatusResponse| s.open_object_bytes > 0);
    assert!(!pending.is_finished(), "answered before any flush");
    let committed = s.objects_committed;
    let f = a1.flush(FlushRequest {}).await.expect("flush").into_inner();
    assert_eq!(f.objects, 1);
    assert_eq!(pending.await.unwrap(), (0, 0), "the produce is answered by the flush's commit");
    let s = status(&mut a1).await;
    assert_eq!(s.objects_committed, committed + 1);
    assert!(s.applied_revision >= f.applied_revision && s.open_object_bytes == 0 && s.inflight_objects == 0, "{s:?}");
    // Nothing open: answers at once.
    assert_eq!(a1.flush(FlushRequest {}).await.unwrap().into_inner().objects, 0);

    // Drain: what is buffered is committed, produce is refused, broker 1 leaves the live set.
    let mut p1 = TcpStream::connect(b1.local_addr()).await.unwrap();
    let pending = tokio::spawn(async move { produce_raw(&mut p1, 21, "admin", 1, &["drained"]).await });
    until!("the record in the open object", status(&mut a1).await, |s: &StatusResponse| s.open_object_bytes > 0);
    let d = a1.drain(DrainRequest { exit: false }).await.expect("drain").into_inner();
    assert_eq!((d.objects, d.exiting), (1, false));
    assert_eq!(pending.await.unwrap(), (0, 0), "the buffered produce is committed by the drain");
    assert_eq!(produce_raw(&mut c1, 22, "admin", 0, &["refused"]).await.0, NOT_LEADER_OR_FOLLOWER);
    until!("broker 1 gone from broker 2's Metadata", metadata_brokers(&mut c2).await, |b: &Vec<i32>| b == &[2]);
    // Broker 1 names broker 2 for everything now, and still serves fetches.
    assert_eq!(metadata_brokers(&mut c1).await, [2]);
    assert_eq!(fetch_some(&mut c1, "admin", 1, 0).await, [(0, "drained".to_owned())]);
    let s = status(&mut a1).await;
    assert!(s.draining, "{s:?}");
    assert_eq!(s.members.iter().map(|m| m.node_id).collect::<Vec<_>>(), [2]);
    // The data is on the other broker too, and produce there works.
    assert_eq!(fetch_some(&mut c2, "admin", 0, 0).await, [(0, "flushed".to_owned())]);
    assert_eq!(fetch_some(&mut c2, "admin", 1, 0).await, [(0, "drained".to_owned())]);
    assert_eq!(produce_raw(&mut c2, 23, "admin", 0, &["moved"]).await, (0, 1));

    // Drain with exit: the server says so and its owner shuts it down.
    let mut a2 = admin(&b2).await;
    let exit = a2.drain(DrainRequest { exit: true }).await.expect("drain").into_inner();
    assert!(exit.exiting);
    tokio::time::timeout(TIMEOUT, b2.exit_requested()).await.expect("exit requested");
    b2.shutdown().await;
    b1.shutdown().await;
}
