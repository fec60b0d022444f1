//! Three in-process brokers on one sequencer and one object store (issue 6):
//! each registers in the live set, every Metadata lists all of them with the
//! same leaders, one leaving drops out of the others' Metadata, and any
//! broker serves any partition with the same bytes at the same offsets.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use strata_proto::messages::create_topics_request::CreatableTopic;
use strata_proto::messages::{CreateTopicsRequest, MetadataRequest, MetadataResponse};
use strata_proto::{RequestBody, ResponseBody};
use strata_runtime::cli::ServeArgs;
use strata_runtime::sequencer::MemorySequencer;
use strata_runtime::server::{Server, ServerConfig};
use strata_runtime::store::ObjectStoreBackend;
use tokio::net::TcpStream;

const TOPIC: &str = "spread";
const PARTITIONS: i32 = 6;

async fn start(node_id: i32, seq: &MemorySequencer, store: &ObjectStoreBackend) -> Server {
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.node_id = node_id;
    args.rack = Some(format!("rack-{node_id}"));
    args.flush_ms = 2;
    let cfg = ServerConfig::from_args(&args, 1000 + node_id as u64);
    Server::start(cfg, Arc::new(seq.clone()), store.clone()).await.expect("server starts")
}

async fn metadata(s: &mut TcpStream) -> MetadataResponse {
    let ResponseBody::Metadata(m) = call(s, 1, METADATA_V, RequestBody::Metadata(MetadataRequest::default())).await else {
        panic!("not Metadata")
    };
    m
}

/// (node id, port, rack) of the brokers, and each partition of the topic's leader.
type View = (Vec<(i32, i32, Option<String>)>, BTreeMap<i32, i32>);

fn view(m: &MetadataResponse) -> View {
    let brokers = m.brokers.iter().map(|b| (b.node_id, b.port, b.rack.clone())).collect();
    let leaders = m
        .topics
        .iter()
        .filter(|t| t.name.as_deref() == Some(TOPIC))
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.leader_id)))
        .collect();
    (brokers, leaders)
}

/// Polls a broker's Metadata until `done` holds of it.
async fn metadata_until(s: &mut TcpStream, what: &str, done: impl Fn(&View) -> bool) -> View {
    let mut last = None;
    for _ in 0..200 {
        let v = view(&metadata(s).await);
        if done(&v) {
            return v;
        }
        last = Some(v);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Metadata never showed {what}: last {last:?}");
}

#[tokio::test]
async fn brokers_share_the_live_set_and_serve_every_partition() {
    let seq = MemorySequencer::new();
    let store = ObjectStoreBackend::open("memory://").await.unwrap();
    let mut servers = Vec::new();
    for node in 1..=3 {
        servers.push(start(node, &seq, &store).await);
    }
    let mut conns = Vec::new();
    for s in &servers {
        conns.push(TcpStream::connect(s.local_addr()).await.unwrap());
    }

    let create = CreateTopicsRequest {
        topics: vec![CreatableTopic { name: TOPIC.into(), num_partitions: PARTITIONS, replication_factor: -1, ..Default::default() }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let ResponseBody::CreateTopics(r) = call(&mut conns[0], 2, 7, RequestBody::CreateTopics(create)).await else { panic!() };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);

    // Every broker lists all three, with their ports and racks, and names the same leaders.
    let mut views = Vec::new();
    for c in &mut conns {
        views.push(metadata_until(c, "three brokers and the topic", |(b, l)| b.len() == 3 && l.len() == PARTITIONS as usize).await);
    }
    assert!(views.iter().all(|v| v == &views[0]), "{views:?}");
    let (brokers, leaders) = &views[0];
    for (i, s) in servers.iter().enumerate() {
        let node = i as i32 + 1;
        assert_eq!(brokers[i], (node, i32::from(s.local_addr().port()), Some(format!("rack-{node}"))));
    }
    assert!(leaders.values().collect::<std::collections::BTreeSet<_>>().len() > 1, "partitions spread: {leaders:?}");

    // Produce everything through broker 1 (leader or not), fetch through 2 and 3.
    let mut offsets = BTreeMap::new();
    for p in 0..PARTITIONS {
        let values: Vec<String> = (0..3).map(|i| format!("p{p}-r{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        produce_to(&mut conns[0], 10 + p, TOPIC, p, &values[..1]).await;
        offsets.insert(p, produce_to(&mut conns[0], 20 + p, TOPIC, p, &values[1..]).await);
    }
    for p in 0..PARTITIONS {
        assert_eq!(offsets[&p], 1);
        let (hw1, bytes1) = fetch_raw(&mut conns[0], 30, TOPIC, p, 0).await;
        let (hw2, bytes2) = fetch_raw(&mut conns[1], 31, TOPIC, p, 0).await;
        let (hw3, bytes3) = fetch_raw(&mut conns[2], 32, TOPIC, p, 0).await;
        assert_eq!((hw1, hw2, hw3), (3, 3, 3), "partition {p}");
        assert_eq!(bytes2, bytes1, "partition {p}: broker 2 serves other bytes");
        assert_eq!(bytes3, bytes1, "partition {p}: broker 3 serves other bytes");
        let want: Vec<(i64, String)> = (0..3).map(|i| (i, format!("p{p}-r{i}"))).collect();
        assert_eq!(decode_records(bytes2), want);
    }

    // Broker 3 leaves: the others stop listing it and move its partitions.
    let third = servers.pop().unwrap();
    third.shutdown().await;
    let mut after = Vec::new();
    for c in &mut conns[..2] {
        after.push(metadata_until(c, "broker 3 gone", |(b, _)| b.len() == 2).await);
    }
    assert_eq!(after[0], after[1]);
    assert!(after[0].1.values().all(|&l| l != 3), "{:?}", after[0].1);
    for (p, l) in leaders {
        if *l != 3 {
            assert_eq!(after[0].1[p], *l, "partition {p} moved though its leader stayed");
        }
    }
    // Clients keep working through it.
    assert_eq!(produce_to(&mut conns[1], 40, TOPIC, 0, &["after"]).await, 3);
    assert_eq!(fetch_raw(&mut conns[0], 41, TOPIC, 0, 3).await.0, 4);
    for s in servers {
        s.shutdown().await;
    }
}
