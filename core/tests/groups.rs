//! Consumer groups through the broker's front door: the classic protocol's
//! joins, syncs, heartbeats and timeouts, offset commits and their checks,
//! coordinator fencing and restarts, and the admin APIs.

mod common;

use bytes::Bytes;
use common::Harness;
use strata_core::error_code as ec;
use strata_core::io::Input;
use strata_core::log::commit::{Commit, CommitBody, Origin};
use strata_core::log::group::{GroupCommit, GroupOp};
use strata_proto::messages::join_group_request::JoinGroupRequestProtocol;
use strata_proto::messages::leave_group_request::MemberIdentity;
use strata_proto::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use strata_proto::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use strata_proto::messages::offset_fetch_request::OffsetFetchRequestTopic;
use strata_proto::messages::sync_group_request::SyncGroupRequestAssignment;
use strata_proto::messages::*;
use strata_proto::ResponseBody;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

/// A consumer-protocol subscription to `topics` (version 0).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0u8, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

fn join_request(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol { name: "range".into(), metadata: subscription(&["t"]) }],
        reason: None,
    }
}

fn join_response(h: &mut Harness, request: u64) -> JoinGroupResponse {
    match h.take(request) {
        Some(ResponseBody::JoinGroup(r)) => r,
        other => panic!("no JoinGroup answer yet: {other:?}"),
    }
}

/// Joins as a new dynamic member (the v9 MEMBER_ID_REQUIRED round trip
/// included); returns the pending JoinGroup's request number and member id.
fn join_new(h: &mut Harness, conn: u64, group: &str) -> (u64, String) {
    let r = h.send_on(conn, 9, join_request(group, "", None).into());
    let first = join_response(h, r);
    assert_eq!(first.error_code, ec::MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with(&format!("client-{conn}-")), "{}", first.member_id);
    let r = h.send_on(conn, 9, join_request(group, &first.member_id, None).into());
    (r, first.member_id)
}

fn sync(h: &mut Harness, conn: u64, group: &str, generation: i32, member: &str, assignments: &[(&str, &str)]) -> u64 {
    let req = SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupRequestAssignment { member_id: m.to_string(), assignment: Bytes::from(a.to_string()) })
            .collect(),
        ..Default::default()
    };
    h.send_on(conn, 5, req.into())
}

fn sync_response(h: &mut Harness, request: u64) -> SyncGroupResponse {
    match h.take(request) {
        Some(ResponseBody::SyncGroup(r)) => r,
        other => panic!("no SyncGroup answer yet: {other:?}"),
    }
}

fn heartbeat(h: &mut Harness, group: &str, generation: i32, member: &str, instance: Option<&str>) -> i16 {
    let req = HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
    };
    let ResponseBody::Heartbeat(r) = h.call(4, req.into()) else { panic!() };
    r.error_code
}

fn commit(h: &mut Harness, group: &str, generation: i32, member: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("meta".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::OffsetCommit(r) = h.call(9, req.into()) else { panic!() };
    r.topics[0].partitions[0].error_code
}

fn fetch_offset(h: &mut Harness, group: &str) -> (i64, Option<String>) {
    let req = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic { name: "t".into(), partition_indexes: vec![0] }]),
        ..Default::default()
    };
    let ResponseBody::OffsetFetch(r) = h.call(7, req.into()) else { panic!() };
    assert_eq!(r.error_code, ec::NONE);
    let p = &r.topics[0].partitions[0];
    (p.committed_offset, p.metadata.clone())
}

fn describe(h: &mut Harness, group: &str) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest { groups: vec![group.into()], include_authorized_operations: false };
    let ResponseBody::DescribeGroups(r) = h.call(5, req.into()) else { panic!() };
    r.groups.into_iter().next().unwrap()
}

/// Three members joined and synced: (generation, member ids, leader).
fn stable_group_of_three(h: &mut Harness, group: &str) -> (i32, Vec<String>, String) {
    h.create_topic("t", 6);
    for conn in 1..=3 {
        h.feed(Input::Opened { conn, peer: "127.0.0.1".into() });
    }
    let joins: Vec<(u64, String)> = (1..=3).map(|c| join_new(h, c, group)).collect();
    // The initial rebalance delay (3 s) holds the join open for more
    // members, and once more because members arrived during it (as Kafka).
    h.advance(3_100);
    assert!(h.take(joins[0].0).is_none());
    h.advance(3_000);
    let answers: Vec<JoinGroupResponse> = joins.iter().map(|(r, _)| join_response(h, *r)).collect();
    let generation = answers[0].generation_id;
    assert_eq!(generation, 1);
    let leader = answers[0].leader.clone();
    for a in &answers {
        assert_eq!(a.error_code, ec::NONE);
        assert_eq!(a.generation_id, generation);
        assert_eq!(a.leader, leader);
        assert_eq!(a.protocol_name.as_deref(), Some("range"));
        // Only the leader learns the members and their subscriptions.
        if a.member_id == leader {
            assert_eq!(a.members.len(), 3);
            assert!(a.members.iter().all(|m| m.metadata == subscription(&["t"])));
        } else {
            assert!(a.members.is_empty());
        }
    }
    let ids: Vec<String> = joins.iter().map(|(_, m)| m.clone()).collect();
    let followers: Vec<(u64, &String)> = (1..=3).zip(&ids).filter(|(_, m)| **m != leader).collect();
    let pending: Vec<u64> = followers.iter().map(|(c, m)| sync(h, *c, group, generation, m, &[])).collect();
    for r in &pending {
        assert!(h.take(*r).is_none(), "a follower's sync waits for the leader's assignment");
    }
    let plan: Vec<(String, String)> = ids.iter().map(|m| (m.clone(), format!("parts-of-{m}"))).collect();
    let plan_refs: Vec<(&str, &str)> = plan.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let leader_conn = 1 + ids.iter().position(|m| *m == leader).unwrap() as u64;
    let r = sync(h, leader_conn, group, generation, &leader, &plan_refs);
    let mine = sync_response(h, r);
    assert_eq!(mine.error_code, ec::NONE);
    assert_eq!(mine.assignment, Bytes::from(format!("parts-of-{leader}")));
    for ((_, m), r) in followers.iter().zip(pending) {
        let s = sync_response(h, r);
        assert_eq!(s.error_code, ec::NONE);
        assert_eq!(s.assignment, Bytes::from(format!("parts-of-{m}")), "each member gets what the leader assigned it");
    }
    (generation, ids, leader)
}

#[test]
fn three_members_join_sync_and_heartbeat() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    for m in &ids {
        assert_eq!(heartbeat(&mut h, "g", generation, m, None), ec::NONE);
    }
    assert_eq!(heartbeat(&mut h, "g", generation + 1, &ids[0], None), ec::ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut h, "g", generation, "nobody", None), ec::UNKNOWN_MEMBER_ID);
    let d = describe(&mut h, "g");
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 3);
    assert!(d.members.iter().all(|m| m.member_assignment == format!("parts-of-{}", m.member_id).as_bytes()));
    assert!(d.members.iter().all(|m| m.client_id.starts_with("client-")));
    assert!(d.members.iter().all(|m| m.client_host == "/127.0.0.1"), "{:?}", d.members);
}

#[test]
fn a_silent_member_is_dropped_after_its_session_and_the_rest_rebalance() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    // Members 0 and 1 keep heartbeating; member 2 goes silent.
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(heartbeat(&mut h, "g", generation, &ids[0], None), ec::NONE);
        assert_eq!(heartbeat(&mut h, "g", generation, &ids[1], None), ec::NONE);
    }
    h.advance(2_000);
    // 11 s > the 10 s session: member 2 is gone and a rebalance started.
    assert_eq!(heartbeat(&mut h, "g", generation, &ids[0], None), ec::REBALANCE_IN_PROGRESS);
    let r0 = h.send_on(1, 9, join_request("g", &ids[0], None).into());
    let r1 = h.send_on(2, 9, join_request("g", &ids[1], None).into());
    let (a0, a1) = (join_response(&mut h, r0), join_response(&mut h, r1));
    assert_eq!(a0.generation_id, generation + 1);
    assert_eq!(a1.generation_id, generation + 1);
    let leader = if a0.member_id == a0.leader { &a0 } else { &a1 };
    assert_eq!(leader.members.len(), 2, "the silent member is out");
    assert_eq!(heartbeat(&mut h, "g", generation + 1, &ids[2], None), ec::UNKNOWN_MEMBER_ID);
}

#[test]
fn offset_commits_are_checked_against_member_and_generation() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    assert_eq!(commit(&mut h, "g", generation, &ids[0], 42), ec::NONE);
    assert_eq!(fetch_offset(&mut h, "g"), (42, Some("meta".into())));
    assert_eq!(commit(&mut h, "g", generation - 1, &ids[0], 43), ec::ILLEGAL_GENERATION);
    assert_eq!(commit(&mut h, "g", generation, "intruder", 44), ec::UNKNOWN_MEMBER_ID);
    // A simple consumer's commit (generation -1) is refused while the group has members.
    assert_eq!(commit(&mut h, "g", -1, "", 45), ec::UNKNOWN_MEMBER_ID);
    assert_eq!(fetch_offset(&mut h, "g"), (42, Some("meta".into())), "refused commits change nothing");
}

#[test]
fn a_group_without_members_holds_offsets_for_simple_consumers() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    assert_eq!(fetch_offset(&mut h, "solo"), (-1, Some(String::new())), "nothing committed yet");
    assert_eq!(commit(&mut h, "solo", -1, "", 7), ec::NONE);
    assert_eq!(fetch_offset(&mut h, "solo"), (7, Some("meta".into())));
    let ResponseBody::ListGroups(l) = h.call(5, ListGroupsRequest::default().into()) else { panic!() };
    assert_eq!(l.groups.len(), 1);
    assert_eq!(l.groups[0].group_id, "solo");
    assert_eq!(l.groups[0].group_state, "Empty");
    // Unknown topics and oversized metadata are refused per partition.
    let big = OffsetCommitRequest {
        group_id: "solo".into(),
        generation_id_or_member_epoch: -1,
        topics: vec![
            OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 9,
                    committed_metadata: Some("x".repeat(5000)),
                    ..Default::default()
                }],
                ..Default::default()
            },
            OffsetCommitRequestTopic {
                name: "nope".into(),
                partitions: vec![OffsetCommitRequestPartition { partition_index: 0, committed_offset: 1, ..Default::default() }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let ResponseBody::OffsetCommit(r) = h.call(9, big.into()) else { panic!() };
    assert_eq!(r.topics[0].partitions[0].error_code, ec::OFFSET_METADATA_TOO_LARGE);
    assert_eq!(r.topics[1].partitions[0].error_code, ec::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(fetch_offset(&mut h, "solo").0, 7);
}

#[test]
fn after_a_restart_the_group_and_its_offsets_resume_without_a_rebalance() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    assert_eq!(commit(&mut h, "g", generation, &ids[1], 99), ec::NONE);
    let before = h.broker.log().digest();
    h.restart(8);
    assert_eq!(h.broker.log().digest(), before, "replaying the log rebuilds the same state");
    // Members keep heartbeating on the generation they had: no rebalance.
    for m in &ids {
        assert_eq!(heartbeat(&mut h, "g", generation, m, None), ec::NONE);
    }
    assert_eq!(fetch_offset(&mut h, "g").0, 99);
    assert_eq!(describe(&mut h, "g").group_state, "Stable");
    assert_eq!(commit(&mut h, "g", generation, &ids[2], 100), ec::NONE);
}

#[test]
fn a_deposed_coordinator_is_fenced_by_the_apply() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    // Member 0 changes its subscription: a rebalance starts and its join waits.
    let mut rejoin = join_request("g", &ids[0], None);
    rejoin.protocols[0].metadata = subscription(&["t", "u"]);
    let r = h.send_on(1, 9, rejoin.into());
    assert!(h.take(r).is_none());
    // Another broker claims the group (the sequencer orders its claim next).
    let epoch = h.broker.log().groups["g"].epoch;
    let claim = Commit {
        origin: Origin { broker: 2, incarnation: 77, seq: 1 },
        body: CommitBody::Groups(vec![GroupCommit { group: "g".into(), epoch, op: GroupOp::Claim }]),
    };
    h.log.push(claim.encode());
    let revision = h.log.len() as u64;
    h.feed(Input::Applied { revision, commit: claim });
    // The waiting join learns this broker no longer coordinates the group.
    assert_eq!(join_response(&mut h, r).error_code, ec::NOT_COORDINATOR);
    // A commit proposed with the old epoch would be refused on every broker.
    let stale = GroupCommit { group: "g".into(), epoch, op: GroupOp::Delete };
    let mut groups = h.broker.log().groups.clone();
    let own = Origin { broker: 1, incarnation: 7, seq: 99 };
    assert_eq!(strata_core::log::group::apply_groups(&mut groups, &own, &[stale]), vec![Err(ec::NOT_COORDINATOR)]);
    // The hash still names this broker, so it claims the group back and
    // resumes from the committed generation.
    assert_eq!(heartbeat(&mut h, "g", generation, &ids[1], None), ec::NONE);
    assert_eq!(h.broker.log().groups["g"].epoch, epoch + 2);
}

#[test]
fn a_static_member_returns_without_a_rebalance_and_fences_its_old_self() {
    let mut h = Harness::new();
    h.create_topic("t", 2);
    let a = h.send_on(1, 9, join_request("g", "", Some("app-a")).into());
    let b = h.send_on(2, 9, join_request("g", "", Some("app-b")).into());
    h.advance(3_100);
    h.advance(3_100);
    let (ja, jb) = (join_response(&mut h, a), join_response(&mut h, b));
    assert_eq!(ja.error_code, ec::NONE, "static members need no MEMBER_ID_REQUIRED round trip");
    assert!(ja.member_id.starts_with("app-a-"));
    let generation = ja.generation_id;
    let (leader, follower) = if ja.member_id == ja.leader { (&ja, &jb) } else { (&jb, &ja) };
    let lc = if leader.member_id == ja.member_id { 1 } else { 2 };
    let fr = sync(&mut h, 3 - lc, "g", generation, &follower.member_id, &[]);
    let lr = sync(&mut h, lc, "g", generation, &leader.member_id, &[(&leader.member_id, "L"), (&follower.member_id, "F")]);
    assert_eq!(sync_response(&mut h, lr).error_code, ec::NONE);
    assert_eq!(sync_response(&mut h, fr).assignment, Bytes::from_static(b"F"));
    // The follower's process restarts and rejoins with its instance id.
    let instance = follower.group_instance_id_hint();
    let r = h.send_on(3, 9, join_request("g", "", Some(instance)).into());
    let rejoined = join_response(&mut h, r);
    assert_eq!(rejoined.error_code, ec::NONE);
    assert_eq!(rejoined.generation_id, generation, "no new generation");
    assert_ne!(rejoined.member_id, follower.member_id);
    let s = sync(&mut h, 3, "g", generation, &rejoined.member_id, &[]);
    assert_eq!(sync_response(&mut h, s).assignment, Bytes::from_static(b"F"), "it keeps its assignment");
    assert_eq!(heartbeat(&mut h, "g", generation, &leader.member_id, None), ec::NONE, "the leader saw no rebalance");
    assert_eq!(heartbeat(&mut h, "g", generation, &follower.member_id, Some(instance)), ec::FENCED_INSTANCE_ID);
    assert_eq!(heartbeat(&mut h, "g", generation, &rejoined.member_id, Some(instance)), ec::NONE);
}

/// The instance id a static member's id was made from ("app-a-<uuid>" → "app-a").
trait InstanceHint {
    fn group_instance_id_hint(&self) -> &str;
}

impl InstanceHint for JoinGroupResponse {
    fn group_instance_id_hint(&self) -> &str {
        if self.member_id.starts_with("app-a-") {
            "app-a"
        } else {
            "app-b"
        }
    }
}

#[test]
fn leaving_empties_the_group_and_admin_apis_follow_kafka() {
    let mut h = Harness::new();
    let (generation, ids, _) = stable_group_of_three(&mut h, "g");
    assert_eq!(commit(&mut h, "g", generation, &ids[0], 5), ec::NONE);
    // Deleting a group with members, or offsets of a topic they consume, is refused.
    let ResponseBody::DeleteGroups(d) = h.call(2, DeleteGroupsRequest { groups_names: vec!["g".into()] }.into()) else { panic!() };
    assert_eq!(d.results[0].error_code, ec::NON_EMPTY_GROUP);
    let od = OffsetDeleteRequest {
        group_id: "g".into(),
        topics: vec![OffsetDeleteRequestTopic { name: "t".into(), partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }] }],
    };
    let ResponseBody::OffsetDelete(o) = h.call(0, od.clone().into()) else { panic!() };
    assert_eq!(o.topics[0].partitions[0].error_code, ec::GROUP_SUBSCRIBED_TO_TOPIC);
    // Everyone leaves (v3+ batch).
    let leave = LeaveGroupRequest {
        group_id: "g".into(),
        members: ids.iter().map(|m| MemberIdentity { member_id: m.clone(), ..Default::default() }).collect(),
        ..Default::default()
    };
    let ResponseBody::LeaveGroup(l) = h.call(5, leave.into()) else { panic!() };
    assert!(l.members.iter().all(|m| m.error_code == ec::NONE));
    let d = describe(&mut h, "g");
    assert_eq!(d.group_state, "Empty");
    assert!(d.members.is_empty());
    assert_eq!(fetch_offset(&mut h, "g").0, 5, "an empty group keeps its offsets");
    let ResponseBody::ListGroups(l) = h.call(4, ListGroupsRequest { states_filter: vec!["stable".into()], ..Default::default() }.into()) else {
        panic!()
    };
    assert!(l.groups.is_empty(), "the state filter excludes the empty group");
    // Now the offsets and the group itself can go.
    let ResponseBody::OffsetDelete(o) = h.call(0, od.into()) else { panic!() };
    assert_eq!(o.error_code, ec::NONE);
    assert_eq!(o.topics[0].partitions[0].error_code, ec::NONE);
    assert_eq!(fetch_offset(&mut h, "g").0, -1);
    let ResponseBody::DeleteGroups(d) = h.call(2, DeleteGroupsRequest { groups_names: vec!["g".into(), "never".into()] }.into()) else {
        panic!()
    };
    assert_eq!(d.results[0].error_code, ec::NONE);
    assert_eq!(d.results[1].error_code, ec::GROUP_ID_NOT_FOUND);
    let gone = describe(&mut h, "g");
    assert_eq!(gone.group_state, "Dead");
    assert_eq!(gone.error_code, ec::NONE, "v5 reports a missing group as Dead without an error");
}

#[test]
fn find_coordinator_names_this_broker_in_every_version() {
    let mut h = Harness::new();
    for v in 0..=3 {
        let req = FindCoordinatorRequest { key: "g".into(), key_type: 0, ..Default::default() };
        let ResponseBody::FindCoordinator(r) = h.call(v, req.into()) else { panic!() };
        assert_eq!((r.error_code, r.node_id, r.port), (ec::NONE, 1, 9092));
    }
    for v in 4..=6 {
        let req = FindCoordinatorRequest { key_type: 1, coordinator_keys: vec!["a".into(), "b".into()], ..Default::default() };
        let ResponseBody::FindCoordinator(r) = h.call(v, req.into()) else { panic!() };
        assert_eq!(r.coordinators.len(), 2);
        assert!(r.coordinators.iter().all(|c| c.error_code == ec::NONE && c.node_id == 1 && c.host == "127.0.0.1"));
    }
    let req = FindCoordinatorRequest { key: "g".into(), key_type: 9, ..Default::default() };
    let ResponseBody::FindCoordinator(r) = h.call(3, req.into()) else { panic!() };
    assert_eq!(r.error_code, ec::INVALID_REQUEST);
}

#[test]
fn join_refuses_bad_session_timeouts_and_mismatched_protocols() {
    let mut h = Harness::new();
    let mut bad = join_request("g", "", None);
    bad.session_timeout_ms = 10;
    let ResponseBody::JoinGroup(r) = h.call(9, bad.into()) else { panic!() };
    assert_eq!(r.error_code, ec::INVALID_SESSION_TIMEOUT);
    let mut empty = join_request("", "", None);
    empty.group_id = String::new();
    let ResponseBody::JoinGroup(r) = h.call(9, empty.into()) else { panic!() };
    assert_eq!(r.error_code, ec::INVALID_GROUP_ID);
    // A member of a "range" group arrives speaking only "roundrobin".
    let (_, _) = join_new(&mut h, 1, "g");
    let mut other = join_request("g", "", None);
    other.protocols = vec![JoinGroupRequestProtocol { name: "roundrobin".into(), metadata: Bytes::new() }];
    let ResponseBody::JoinGroup(r) = h.call(5, other.into()) else { panic!() };
    assert_eq!(r.error_code, ec::INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn groups_spread_over_the_cluster_and_others_get_not_coordinator() {
    use strata_core::broker::Peer;
    let peers = vec![
        Peer { node_id: 2, host: "b2".into(), port: 9093, rack: None },
        Peer { node_id: 3, host: "b3".into(), port: 9094, rack: None },
    ];
    let mut h = Harness::new();
    h.feed(strata_core::io::Input::Members(peers));
    let keys: Vec<String> = (0..60).map(|i| format!("group-{i}")).collect();
    let req = FindCoordinatorRequest { key_type: 0, coordinator_keys: keys.clone(), ..Default::default() };
    let ResponseBody::FindCoordinator(r) = h.call(4, req.into()) else { panic!() };
    let mut per_node = std::collections::BTreeMap::new();
    for c in &r.coordinators {
        *per_node.entry(c.node_id).or_insert(0) += 1;
    }
    assert_eq!(per_node.len(), 3, "every broker coordinates some groups: {per_node:?}");
    let elsewhere = r.coordinators.iter().find(|c| c.node_id != 1).unwrap();
    let ResponseBody::JoinGroup(j) = h.call(9, join_request(&elsewhere.key, "", None).into()) else { panic!() };
    assert_eq!(j.error_code, ec::NOT_COORDINATOR);
    assert!(h.broker.log().groups.is_empty(), "no claim for a group this broker does not coordinate");
}
