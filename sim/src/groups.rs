//! Consumer-group members (classic protocol, real wire protocol): a few
//! members of one group share the sim topic's partitions. Each finds the
//! coordinator, joins (the v9 MEMBER_ID_REQUIRED round trip), syncs (the
//! leader assigns), then heartbeats, reads its partitions from any broker
//! and commits what it read, reacting to errors as Kafka's clients do. Now
//! and then a member stalls past its session (a GC pause) and commits with
//! its old generation at once, or leaves and rejoins later. The history gets
//! every successful SyncGroup, every OffsetCommit with its outcome, and the
//! committed offsets read after the run (invariants 5 and 6, check.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use strata_core::error_code as ec;
use strata_proto::messages::join_group_request::JoinGroupRequestProtocol;
use strata_proto::messages::join_group_response::JoinGroupResponseMember;
use strata_proto::messages::leave_group_request::MemberIdentity;
use strata_proto::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use strata_proto::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics};
use strata_proto::messages::sync_group_request::SyncGroupRequestAssignment;
use strata_proto::messages::{
    FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest,
};
use strata_proto::{RequestBody, ResponseBody};

use crate::clients::{self, Conns, Ctx, TOPIC};
use crate::history::{CommitOutcome, FinalOffset, GroupCommitSent, GroupRead, GroupSync, History};

/// The group every member joins.
pub const GROUP: &str = "sim-group";
/// How many members (each on its own client node, so network faults can cut one off).
pub const MEMBERS: usize = 3;
/// Session and rebalance timeouts the members ask for (the sim's brokers
/// allow sessions this short, see sim.rs), so a 20 s run sees several rebalances.
pub const SESSION_MS: i32 = 3000;
const REBALANCE_MS: i32 = 4000;
/// Our assignor's name; its assignment format is ours (see `encode_assignment`).
const PROTOCOL: &str = "sim-roundrobin";
/// Chances per loop turn (a turn is ~300 ms) of a stall, and of leaving.
const STALL_CHANCE: f64 = 0.012;
const LEAVE_CHANCE: f64 = 0.006;

fn rand_u64() -> u64 {
    madsim::rand::random::<u64>()
}

fn rand_between(min: u64, max: u64) -> u64 {
    min + rand_u64() % (max - min + 1)
}

async fn pause(min_ms: u64, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rand_between(min_ms, max_ms))).await;
}

/// The consumer protocol's subscription (v0) to the sim topic: the coordinator
/// reads the topic list (OffsetDelete consults it).
fn subscription() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(TOPIC.len() as i16);
    b.put_slice(TOPIC.as_bytes());
    b.put_i32(-1);
    b.freeze()
}

/// Our assignment format: magic "RR", a u16 count, then the partitions as i32s.
fn encode_assignment(partitions: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(b"RR");
    b.put_u16(partitions.len() as u16);
    for p in partitions {
        b.put_i32(*p);
    }
    b.freeze()
}

fn decode_assignment(mut b: Bytes) -> Option<Vec<i32>> {
    if b.is_empty() {
        // A member the leader left out (or an empty generation) owns nothing.
        return Some(Vec::new());
    }
    if b.len() < 4 || &b[..2] != b"RR" {
        return None;
    }
    b.advance(2);
    let n = b.get_u16() as usize;
    if b.len() != n * 4 {
        return None;
    }
    Some((0..n).map(|_| b.get_i32()).collect())
}

/// The leader's plan: partitions round-robin over the members sorted by id.
fn assign(members: &[JoinGroupResponseMember], partitions: i32) -> Vec<SyncGroupRequestAssignment> {
    let mut ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut plan: BTreeMap<&str, Vec<i32>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for p in 0..partitions {
        plan.entry(ids[p as usize % ids.len()]).or_default().push(p);
    }
    plan.into_iter()
        .map(|(id, ps)| SyncGroupRequestAssignment { member_id: id.to_string(), assignment: encode_assignment(&ps) })
        .collect()
}

/// How a member reacts to an error code, as Kafka's clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum React {
    Ok,
    /// Rejoin with the same member id.
    Rejoin,
    /// Rejoin as a new member (the coordinator forgot us).
    RejoinFresh,
    /// Find the coordinator again and retry.
    Rediscover,
    /// Retry later.
    Retry,
}

fn react(code: i16) -> React {
    match code {
        ec::NONE => React::Ok,
        ec::REBALANCE_IN_PROGRESS | ec::ILLEGAL_GENERATION => React::Rejoin,
        ec::UNKNOWN_MEMBER_ID | ec::FENCED_INSTANCE_ID => React::RejoinFresh,
        ec::NOT_COORDINATOR | ec::COORDINATOR_NOT_AVAILABLE | ec::COORDINATOR_LOAD_IN_PROGRESS => React::Rediscover,
        _ => React::Retry,
    }
}

/// Finds the group's coordinator through a random broker: its index in
/// `ctx.brokers`, or an error to retry on.
async fn find_coordinator(ctx: &Ctx, conns: &mut Conns) -> Result<usize, String> {
    let b = (rand_u64() % ctx.brokers.len() as u64) as usize;
    let req = FindCoordinatorRequest { key: GROUP.into(), key_type: 0, coordinator_keys: vec![GROUP.into()] };
    let (code, host, port) = match conns.call(b, RequestBody::FindCoordinator(req)).await? {
        // v4+ answers per key; earlier versions at the top.
        ResponseBody::FindCoordinator(r) => match r.coordinators.first() {
            Some(c) => (c.error_code, c.host.clone(), c.port),
            None => (r.error_code, r.host, r.port),
        },
        other => return Err(format!("FindCoordinator answered with {:?}", other.api_key())),
    };
    if code != ec::NONE {
        return Err(format!("FindCoordinator via broker {b}: error {code}"));
    }
    let addr = format!("{host}:{port}");
    ctx.brokers.iter().position(|a| *a == addr).ok_or_else(|| format!("FindCoordinator via broker {b}: unknown broker {addr}"))
}

/// One group member's state, as a real client keeps it.
struct Member {
    name: String,
    ctx: Ctx,
    conns: Conns,
    coordinator: Option<usize>,
    member_id: String,
    generation: i32,
    partitions: Vec<i32>,
    /// In a generation it completed the SyncGroup of.
    synced: bool,
    /// Where it has read each partition up to (the offset it commits next).
    positions: BTreeMap<i32, i64>,
    /// Which of its partitions it works on next.
    turn: usize,
}

impl Member {
    fn h(&self) -> &History {
        &self.ctx.history
    }

    fn log(&self, what: String) {
        self.ctx.history.log(&self.name, what);
    }

    /// A request to the coordinator (found first if unknown). A connection
    /// error forgets the coordinator, as Kafka's clients do.
    async fn call(&mut self, body: RequestBody) -> Result<ResponseBody, String> {
        let c = match self.coordinator {
            Some(c) => c,
            None => {
                let c = find_coordinator(&self.ctx, &mut self.conns).await?;
                self.log(format!("coordinator is broker {c}"));
                self.coordinator = Some(c);
                c
            }
        };
        let r = self.conns.call(c, body).await;
        if r.is_err() {
            self.coordinator = None;
        }
        r
    }

    /// Applies the reaction to `code`; true when the member must rejoin.
    fn on_error(&mut self, what: &str, code: i16) -> bool {
        let r = react(code);
        if r != React::Ok {
            self.log(format!("{what}: error {code} ({r:?})"));
        }
        match r {
            React::Ok | React::Retry => false,
            React::Rediscover => {
                self.coordinator = None;
                false
            }
            React::Rejoin => {
                self.synced = false;
                true
            }
            React::RejoinFresh => {
                self.synced = false;
                self.member_id.clear();
                true
            }
        }
    }

    /// Joins and syncs until it is in a generation (false when time is up).
    async fn join(&mut self, until_ms: u64) -> bool {
        'join: loop {
            if self.h().now_ms() >= until_ms {
                return false;
            }
            self.synced = false;
            let req = JoinGroupRequest {
                group_id: GROUP.into(),
                session_timeout_ms: SESSION_MS,
                rebalance_timeout_ms: REBALANCE_MS,
                member_id: self.member_id.clone(),
                group_instance_id: None,
                protocol_type: "consumer".into(),
                protocols: vec![JoinGroupRequestProtocol { name: PROTOCOL.into(), metadata: subscription() }],
                reason: None,
            };
            let r = match self.call(RequestBody::JoinGroup(req)).await {
                Ok(ResponseBody::JoinGroup(r)) => r,
                Ok(other) => {
                    self.log(format!("JoinGroup answered with {:?}", other.api_key()));
                    pause(50, 200).await;
                    continue;
                }
                Err(e) => {
                    self.log(format!("JoinGroup: {e}"));
                    pause(50, 300).await;
                    continue;
                }
            };
            match r.error_code {
                ec::NONE => {}
                ec::MEMBER_ID_REQUIRED => {
                    // KIP-394: join again at once with the id the coordinator gave.
                    self.log(format!("member id {} required", r.member_id));
                    self.member_id = r.member_id;
                    continue;
                }
                code => {
                    self.on_error("JoinGroup", code);
                    pause(50, 300).await;
                    continue;
                }
            }
            self.member_id = r.member_id.clone();
            self.generation = r.generation_id;
            let leader = r.leader == r.member_id;
            self.log(format!(
                "joined gen {} as {}{}",
                r.generation_id,
                r.member_id,
                if leader { format!(", leader of {} members", r.members.len()) } else { String::new() }
            ));
            self.h().group_count("joins");
            let assignments = if leader { assign(&r.members, self.ctx.partitions) } else { Vec::new() };
            let req = SyncGroupRequest {
                group_id: GROUP.into(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some(PROTOCOL.into()),
                assignments,
            };
            let s = match self.call(RequestBody::SyncGroup(req)).await {
                Ok(ResponseBody::SyncGroup(s)) => s,
                Ok(other) => {
                    self.log(format!("SyncGroup answered with {:?}", other.api_key()));
                    continue 'join;
                }
                Err(e) => {
                    // Kafka's client rejoins when a sync fails.
                    self.log(format!("SyncGroup gen {}: {e}", self.generation));
                    pause(50, 300).await;
                    continue 'join;
                }
            };
            if s.error_code != ec::NONE {
                self.on_error(&format!("SyncGroup gen {}", self.generation), s.error_code);
                pause(20, 200).await;
                continue 'join;
            }
            let Some(partitions) = decode_assignment(s.assignment.clone()) else {
                self.h().anomaly(
                    "5 (a member gets the assignment its leader sent)",
                    None,
                    format!("{}: undecodable assignment {:?} in gen {}", self.name, s.assignment, self.generation),
                );
                continue 'join;
            };
            self.partitions = partitions;
            self.synced = true;
            self.turn = 0;
            self.log(format!("{} synced gen {}: partitions {:?}", self.member_id, self.generation, self.partitions));
            self.h().group_synced(GroupSync {
                member: self.name.clone(),
                member_id: self.member_id.clone(),
                generation: self.generation,
                partitions: self.partitions.clone(),
                at_ms: 0,
                order: 0,
            });
            return true;
        }
    }

    async fn heartbeat(&mut self) {
        let req = HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: None,
        };
        match self.call(RequestBody::Heartbeat(req)).await {
            Ok(ResponseBody::Heartbeat(r)) => {
                self.on_error(&format!("Heartbeat gen {}", self.generation), r.error_code);
            }
            Ok(other) => self.log(format!("Heartbeat answered with {:?}", other.api_key())),
            Err(e) => self.log(format!("Heartbeat: {e}")),
        }
    }

    /// The committed offset of `partition` (-1 when none), from the coordinator.
    async fn committed(&mut self, partition: i32) -> Option<i64> {
        let (sent_ms, sent_order) = (self.h().now_ms(), self.h().next_order());
        let r = match self.call(offset_fetch_request(&[partition])).await {
            Ok(ResponseBody::OffsetFetch(r)) => r,
            Ok(other) => {
                self.log(format!("OffsetFetch answered with {:?}", other.api_key()));
                return None;
            }
            Err(e) => {
                self.log(format!("OffsetFetch: {e}"));
                return None;
            }
        };
        match parse_offsets(r).map(|mut o| o.remove(&partition)) {
            Ok(Some(Ok((offset, metadata)))) => {
                self.h().group_read(GroupRead { member: self.name.clone(), partition, offset, metadata, sent_ms, sent_order });
                Some(offset)
            }
            Ok(Some(Err(code))) | Err(code) => {
                self.on_error("OffsetFetch", code);
                None
            }
            Ok(None) => None,
        }
    }

    /// Commits `offset` for `partition` with the generation it believes in,
    /// recording the commit and its outcome.
    async fn commit(&mut self, partition: i32, offset: i64, after_stall: bool) {
        let id = self.h().group_commit_sent(GroupCommitSent {
            id: 0,
            member: self.name.clone(),
            member_id: self.member_id.clone(),
            generation: self.generation,
            partition,
            offset,
            after_stall,
            sent_ms: 0,
            sent_order: 0,
            outcome: CommitOutcome::Pending,
            done_ms: 0,
            done_order: 0,
        });
        self.log(format!(
            "commit#{id} p{partition} offset {offset} gen {} member {}{} sent",
            self.generation,
            self.member_id,
            if after_stall { " (right after a stall)" } else { "" }
        ));
        let req = OffsetCommitRequest {
            group_id: GROUP.into(),
            generation_id_or_member_epoch: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: TOPIC.into(),
                topic_id: self.ctx.topic_id,
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: partition,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    // Names the commit, so the final committed offset tells which commit it came from.
                    committed_metadata: Some(format!("{} gen {} commit#{id}", self.name, self.generation)),
                }],
            }],
        };
        let outcome = match self.call(RequestBody::OffsetCommit(req)).await {
            Ok(ResponseBody::OffsetCommit(r)) => {
                match r.topics.first().and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition)) {
                    Some(p) if p.error_code == ec::NONE => CommitOutcome::Acked,
                    Some(p) => CommitOutcome::Refused(p.error_code),
                    None => CommitOutcome::Unknown("partition missing from the answer".into()),
                }
            }
            Ok(other) => CommitOutcome::Unknown(format!("answered with {:?}", other.api_key())),
            Err(e) => CommitOutcome::Unknown(e),
        };
        let what = match &outcome {
            CommitOutcome::Acked => "acked".to_string(),
            CommitOutcome::Refused(code) => format!("refused with error {code}"),
            CommitOutcome::Unknown(e) => format!("outcome unknown: {e}"),
            CommitOutcome::Pending => "pending".to_string(),
        };
        self.log(format!("commit#{id} p{partition} {what}"));
        if let CommitOutcome::Refused(code) = &outcome {
            self.on_error(&format!("commit#{id}"), *code);
        }
        self.h().group_commit_done(id, outcome);
    }

    /// One partition's turn: read the committed offset, fetch from there on a
    /// random broker, commit the next offset.
    async fn work(&mut self) {
        let Some(&partition) = self.partitions.get(self.turn % self.partitions.len().max(1)) else { return };
        self.turn += 1;
        let Some(committed) = self.committed(partition).await else { return };
        if !self.synced {
            return;
        }
        let start = committed.max(0);
        let b = (rand_u64() % self.ctx.brokers.len() as u64) as usize;
        let ctx = self.ctx.clone();
        let mut next = start;
        match clients::fetch(&ctx, &mut self.conns, b, &[(partition, start)], 0).await {
            Ok(answers) => {
                for a in answers.into_iter().filter(|a| a.partition == partition && a.error == ec::NONE) {
                    for (offset, _) in a.records {
                        if offset >= next {
                            next = offset + 1;
                        }
                    }
                }
            }
            Err(e) => self.log(format!("fetch p{partition} at {start} via broker {b}: {e}")),
        }
        self.positions.insert(partition, next);
        // Commit progress; without progress only now and then (as a timer-driven auto-commit would).
        if next > committed || rand_u64() % 3 == 0 {
            self.commit(partition, next, false).await;
        }
    }

    /// A pause past the session timeout (a GC pause); right after it, before
    /// noticing anything, the member commits with the generation it had.
    async fn stall(&mut self) {
        let ms = SESSION_MS as u64 + rand_between(1500, 4500);
        self.log(format!("stalls for {ms} ms in gen {} owning {:?}", self.generation, self.partitions));
        self.h().group_count("stalls");
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if let Some(&p) = self.partitions.first() {
            let offset = self.positions.get(&p).copied().unwrap_or(0);
            self.commit(p, offset, true).await;
        }
    }

    /// Leaves the group (a real client's close), to come back later as a new member.
    async fn leave(&mut self) {
        let req = LeaveGroupRequest {
            group_id: GROUP.into(),
            member_id: self.member_id.clone(),
            members: vec![MemberIdentity { member_id: self.member_id.clone(), group_instance_id: None, reason: None }],
        };
        match self.call(RequestBody::LeaveGroup(req)).await {
            Ok(ResponseBody::LeaveGroup(r)) => {
                let code = r.members.first().map_or(r.error_code, |m| m.error_code);
                self.log(format!("left gen {} as {}: error {code}", self.generation, self.member_id));
            }
            Ok(other) => self.log(format!("LeaveGroup answered with {:?}", other.api_key())),
            Err(e) => self.log(format!("LeaveGroup: {e}")),
        }
        self.member_id.clear();
        self.synced = false;
        self.partitions.clear();
    }
}

/// A group member until `until_ms`.
pub async fn member(ctx: Ctx, name: String, until_ms: u64) {
    let conns = Conns::new(&name, &ctx.brokers);
    let mut m = Member {
        name,
        ctx,
        conns,
        coordinator: None,
        member_id: String::new(),
        generation: -1,
        partitions: Vec::new(),
        synced: false,
        positions: BTreeMap::new(),
        turn: 0,
    };
    while m.h().now_ms() < until_ms {
        if !m.synced && !m.join(until_ms).await {
            break;
        }
        let dice = madsim::rand::random::<f64>();
        if dice < STALL_CHANCE {
            m.stall().await;
        } else if dice < STALL_CHANCE + LEAVE_CHANCE {
            m.leave().await;
            m.h().group_count("leaves");
            pause(500, 3000).await;
            continue;
        }
        m.heartbeat().await;
        if m.synced {
            m.work().await;
        }
        pause(100, 400).await;
    }
    if m.synced {
        m.leave().await;
    }
    m.log("stopped".into());
}

/// OffsetFetch of the sim topic's `partitions`, in both layouts (v8+ batches
/// groups; the connection picks the version).
fn offset_fetch_request(partitions: &[i32]) -> RequestBody {
    RequestBody::OffsetFetch(OffsetFetchRequest {
        group_id: GROUP.into(),
        topics: Some(vec![OffsetFetchRequestTopic { name: TOPIC.into(), partition_indexes: partitions.to_vec() }]),
        groups: vec![OffsetFetchRequestGroup {
            group_id: GROUP.into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: TOPIC.into(),
                topic_id: Default::default(),
                partition_indexes: partitions.to_vec(),
            }]),
        }],
        require_stable: false,
    })
}

/// Each partition's (offset, metadata) or error code, from either layout;
/// `Err` with a group-wide error.
type Offsets = BTreeMap<i32, Result<(i64, Option<String>), i16>>;

fn parse_offsets(r: strata_proto::messages::OffsetFetchResponse) -> Result<Offsets, i16> {
    let answer = |code: i16, offset: i64, metadata: Option<String>| if code == ec::NONE { Ok((offset, metadata)) } else { Err(code) };
    let mut out = BTreeMap::new();
    for g in r.groups {
        if g.error_code != ec::NONE {
            return Err(g.error_code);
        }
        for t in g.topics.into_iter().filter(|t| t.name == TOPIC) {
            for p in t.partitions {
                out.insert(p.partition_index, answer(p.error_code, p.committed_offset, p.metadata));
            }
        }
    }
    if r.error_code != ec::NONE {
        return Err(r.error_code);
    }
    for t in r.topics.into_iter().filter(|t| t.name == TOPIC) {
        for p in t.partitions {
            out.insert(p.partition_index, answer(p.error_code, p.committed_offset, p.metadata));
        }
    }
    Ok(out)
}

/// After the run (faults healed, members gone): each partition's committed
/// offset, read from the coordinator, retried until it answers; into the history.
pub async fn read_final_offsets(ctx: Ctx) {
    let mut conns = Conns::new("final-offsets", &ctx.brokers);
    let all: Vec<i32> = (0..ctx.partitions).collect();
    let mut last: BTreeMap<i32, FinalOffset> = all.iter().map(|&p| (p, Err("never answered".to_string()))).collect();
    let mut order = 0;
    for _ in 0..60 {
        order = ctx.history.next_order();
        let answer = match find_coordinator(&ctx, &mut conns).await {
            Ok(c) => match conns.call(c, offset_fetch_request(&all)).await {
                Ok(ResponseBody::OffsetFetch(r)) => parse_offsets(r).map(|o| (c, o)).map_err(|code| format!("error {code} from broker {c}")),
                Ok(other) => Err(format!("answered with {:?}", other.api_key())),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match answer {
            Ok((c, offsets)) => {
                for &p in &all {
                    let v = match offsets.get(&p) {
                        Some(Ok(o)) => Ok(o.clone()),
                        Some(Err(code)) => Err(format!("error {code} from broker {c}")),
                        None => Err(format!("p{p} missing from broker {c}'s answer")),
                    };
                    last.insert(p, v);
                }
                if last.values().all(|v| v.is_ok()) {
                    break;
                }
            }
            Err(e) => ctx.history.log("final-offsets", e),
        }
        pause(400, 600).await;
    }
    for (p, v) in &last {
        ctx.history.log("final-offsets", format!("final-offsets p{p}: {v:?}"));
    }
    let mut inner = ctx.history.0.lock().unwrap();
    inner.final_offsets = last;
    inner.final_offsets_order = order;
}
