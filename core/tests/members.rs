//! The live broker set (issue 6): Metadata, DescribeCluster, FindCoordinator
//! and partition leaders follow `Input::Members`, agree across brokers given
//! the same set, and groups move with it.

mod common;

use std::collections::BTreeMap;

use common::*;
use strata_core::broker::{BrokerConfig, Peer};
use strata_core::error_code as ec;
use strata_core::io::Input;
use strata_core::log::commit::Commit;
use strata_proto::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use strata_proto::messages::*;
use strata_proto::ResponseBody;

fn peer(node_id: i32) -> Peer {
    Peer { node_id, host: format!("b{node_id}"), port: 9090 + node_id, rack: Some(format!("rack-{}", node_id % 2)) }
}

fn broker(node_id: i32) -> Harness {
    let p = peer(node_id);
    Harness::with_config(BrokerConfig { node_id, advertised_host: p.host, advertised_port: p.port, rack: p.rack, ..BrokerConfig::for_tests() })
}

fn set_members(h: &mut Harness, nodes: &[i32]) {
    h.feed(Input::Members(nodes.iter().map(|&n| peer(n)).collect()));
}

/// Two brokers on one log: every commit one of them appends is relayed to
/// the other before the next step, so revisions agree; objects are shared.
struct Pair {
    a: Harness,
    b: Harness,
}

impl Pair {
    fn new() -> Pair {
        Pair { a: broker(1), b: broker(2) }
    }

    /// Relays what either broker appended (and wrote) since the last relay.
    fn relay(&mut self) {
        copy(&self.a, &mut self.b);
        copy(&self.b, &mut self.a);
    }
}

/// Gives `to` the objects and log records of `from` it lacks, applying the records.
fn copy(from: &Harness, to: &mut Harness) {
    for (k, v) in &from.objects {
        to.objects.entry(k.clone()).or_insert_with(|| v.clone());
    }
    while to.log.len() < from.log.len() {
        let bytes = from.log[to.log.len()].clone();
        to.log.push(bytes.clone());
        let revision = to.log.len() as u64;
        to.feed(Input::Applied { revision, commit: Commit::decode(bytes).unwrap() });
    }
}

fn metadata(h: &mut Harness) -> MetadataResponse {
    let ResponseBody::Metadata(m) = h.call(12, MetadataRequest { topics: None, ..Default::default() }.into()) else { panic!() };
    m
}

/// (broker ids, and each partition's leader) as a Metadata answer names them.
fn view(m: &MetadataResponse) -> (Vec<i32>, BTreeMap<i32, i32>) {
    let brokers = m.brokers.iter().map(|b| b.node_id).collect();
    let leaders = m.topics[0].partitions.iter().map(|p| (p.partition_index, p.leader_id)).collect();
    (brokers, leaders)
}

fn coordinators(h: &mut Harness, keys: &[String]) -> Vec<i32> {
    let req = FindCoordinatorRequest { key_type: 0, coordinator_keys: keys.to_vec(), ..Default::default() };
    let ResponseBody::FindCoordinator(r) = h.call(4, req.into()) else { panic!() };
    r.coordinators.iter().map(|c| c.node_id).collect()
}

/// A group whose coordinator is `before` among `set_before` and `after` among `set_after`.
fn group_moving(h: &mut Harness, set_before: &[i32], before: i32, set_after: &[i32], after: i32) -> String {
    let keys: Vec<String> = (0..200).map(|i| format!("group-{i}")).collect();
    set_members(h, set_before);
    let a = coordinators(h, &keys);
    set_members(h, set_after);
    let b = coordinators(h, &keys);
    let i = (0..keys.len()).find(|&i| a[i] == before && b[i] == after).expect("some group moves that way");
    keys[i].clone()
}

fn standalone_commit(h: &mut Harness, group: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition { partition_index: 0, committed_offset: offset, committed_leader_epoch: -1, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::OffsetCommit(r) = h.call(9, req.into()) else { panic!() };
    r.topics[0].partitions[0].error_code
}

fn committed(h: &mut Harness, group: &str) -> (i16, i64) {
    use strata_proto::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let req = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic { name: "t".into(), partition_indexes: vec![0] }]),
        ..Default::default()
    };
    let ResponseBody::OffsetFetch(r) = h.call(7, req.into()) else { panic!() };
    (r.error_code, r.topics[0].partitions[0].committed_offset)
}

#[test]
fn metadata_lists_the_live_brokers_and_both_brokers_name_the_same_leaders() {
    let mut p = Pair::new();
    p.a.create_topic("t", 12);
    p.relay();
    // Alone, a broker lists itself and leads everything.
    let (brokers, leaders) = view(&metadata(&mut p.b));
    assert_eq!(brokers, [2]);
    assert!(leaders.values().all(|&l| l == 2));

    // Broker 1's set does not name it (its registration is not seen yet): it is in its own view anyway.
    set_members(&mut p.a, &[3, 2]);
    set_members(&mut p.b, &[1, 2, 3]);
    let ma = metadata(&mut p.a);
    let mb = metadata(&mut p.b);
    assert_eq!(view(&ma), view(&mb));
    let (brokers, leaders) = view(&ma);
    assert_eq!(brokers, [1, 2, 3]);
    let used: std::collections::BTreeSet<i32> = leaders.values().copied().collect();
    assert_eq!(used.len(), 3, "12 partitions spread over 3 brokers: {leaders:?}");
    assert_eq!(ma.controller_id, mb.controller_id);
    let b3 = ma.brokers.iter().find(|b| b.node_id == 3).unwrap();
    assert_eq!((b3.host.as_str(), b3.port, b3.rack.as_deref()), ("b3", 9093, Some("rack-1")));
    let ResponseBody::Metadata(v0) = p.a.call(0, MetadataRequest { topics: Some(vec![]), ..Default::default() }.into()) else { panic!() };
    assert_eq!(view(&v0), view(&ma), "every version lists the same");

    let ResponseBody::DescribeCluster(dc) = p.b.call(1, DescribeClusterRequest { endpoint_type: 1, ..Default::default() }.into()) else { panic!() };
    let ids: Vec<i32> = dc.brokers.iter().map(|b| b.broker_id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(dc.controller_id, ma.controller_id);

    // Broker 3 leaves: only its partitions move, and both brokers agree again.
    set_members(&mut p.a, &[1, 2]);
    set_members(&mut p.b, &[1, 2]);
    let (_, after) = view(&metadata(&mut p.a));
    assert_eq!(view(&metadata(&mut p.b)).1, after);
    for (part, before) in &leaders {
        if *before == 3 {
            assert_ne!(after[part], 3);
        } else {
            assert_eq!(after[part], *before, "partition {part} moved though its leader stayed");
        }
    }

    // Any broker serves any partition, leader or not: a produce through the
    // one that does not lead and a fetch through the other give the same records.
    let part = *after.iter().find(|(_, l)| **l == 2).unwrap().0;
    let r = p.a.produce("t", part, batch(&["x", "y"], None), -1);
    assert_eq!(r.responses[0].partition_responses[0].error_code, ec::NONE);
    p.relay();
    let fa = p.a.fetch("t", part, 0, 1 << 20);
    let fb = p.b.fetch("t", part, 0, 1 << 20);
    assert_eq!(fb.responses[0].partitions[0].error_code, ec::NONE);
    assert_eq!(records_of(&fa), vec![(0, "x".to_string()), (1, "y".to_string())]);
    assert_eq!(records_of(&fa), records_of(&fb));
}

#[test]
fn find_coordinator_agrees_across_brokers() {
    let mut p = Pair::new();
    let keys: Vec<String> = (0..50).map(|i| format!("g{i}")).collect();
    set_members(&mut p.a, &[1, 2, 3]);
    set_members(&mut p.b, &[3, 1]);
    assert_eq!(coordinators(&mut p.a, &keys), coordinators(&mut p.b, &keys));
}

#[test]
fn a_broker_joining_takes_its_groups_and_the_old_coordinator_stops_acting() {
    let mut h = broker(1);
    h.create_topic("t", 1);
    let g = group_moving(&mut h, &[1, 2], 1, &[1, 2, 3], 3);
    set_members(&mut h, &[1, 2]);
    // A member joins and waits out the initial rebalance delay.
    let join = |member: &str| JoinGroupRequest {
        group_id: g.clone(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![join_group_request::JoinGroupRequestProtocol { name: "range".into(), metadata: bytes::Bytes::new() }],
        ..Default::default()
    };
    let ResponseBody::JoinGroup(first) = h.call(9, join("").into()) else { panic!() };
    assert_eq!(first.error_code, ec::MEMBER_ID_REQUIRED);
    let pending = h.send(9, join(&first.member_id).into());
    assert!(h.take(pending).is_none(), "the join waits for the rebalance delay");

    set_members(&mut h, &[1, 2, 3]);
    let Some(ResponseBody::JoinGroup(r)) = h.take(pending) else { panic!("the waiting join is answered at once") };
    assert_eq!(r.error_code, ec::NOT_COORDINATOR);
    assert_eq!(standalone_commit(&mut h, &g, 5), ec::NOT_COORDINATOR);
    assert_eq!(coordinators(&mut h, std::slice::from_ref(&g)), [3]);
}

#[test]
fn a_broker_leaving_hands_its_groups_over_with_their_offsets() {
    let mut p = Pair::new();
    let g = group_moving(&mut p.b, &[1, 2], 1, &[2], 2);
    p.a.create_topic("t", 1);
    p.relay();
    for h in [&mut p.a, &mut p.b] {
        set_members(h, &[1, 2]);
    }
    assert_eq!(standalone_commit(&mut p.a, &g, 5), ec::NONE);
    p.relay();
    assert_eq!(committed(&mut p.b, &g).0, ec::NOT_COORDINATOR);

    // Broker 1 leaves (its lease expired): broker 2 claims the group and
    // resumes from the log; the claim fences broker 1, which drops the group.
    set_members(&mut p.b, &[2]);
    assert_eq!(committed(&mut p.b, &g), (ec::NONE, 5));
    assert_eq!(standalone_commit(&mut p.b, &g, 7), ec::NONE);
    p.relay();
    assert_eq!(committed(&mut p.b, &g), (ec::NONE, 7));
    assert_eq!(p.a.broker.log().groups.get(&g).and_then(|s| s.owner).map(|o| o.0), Some(2));
}
