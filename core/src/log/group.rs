//! Consumer groups in the replicated log: who coordinates each group (the
//! coordinator epoch), its last completed generation and its committed
//! offsets. Group commits carry the coordinator epoch as a precondition, so a
//! deposed coordinator's commits are refused by the apply on every broker
//! alike (DESIGN.md, "Groups").

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use strata_proto::codec::wire;
use strata_proto::DecodeError;

use super::commit::{get_count, get_str, put_str, Origin};
use crate::error_code as ec;

/// One group operation, valid only while the group's coordinator epoch is `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommit {
    /// The group id.
    pub group: String,
    /// The coordinator epoch the proposer holds (for a claim: the one it replaces).
    pub epoch: u32,
    /// What to do.
    pub op: GroupOp,
}

/// What a group commit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOp {
    /// The proposer becomes the group's coordinator, with the next epoch.
    Claim,
    /// A completed generation (or a group that became empty).
    Generation(GroupGeneration),
    /// Offset commits.
    CommitOffsets(Vec<OffsetRecord>),
    /// Remove these (topic, partition) offsets (OffsetDelete, expiry).
    DeleteOffsets(Vec<(String, i32)>),
    /// Remove the group and all its offsets (DeleteGroups).
    Delete,
}

/// A generation as the coordinator completed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupGeneration {
    /// The generation id.
    pub generation: i32,
    /// The members' protocol type ("consumer", "connect", ...), if any member ever joined.
    pub protocol_type: Option<String>,
    /// The selected protocol (assignor name); None when empty.
    pub protocol: Option<String>,
    /// The leader's member id; None when empty.
    pub leader: Option<String>,
    /// When this generation was completed (ms; an empty group's offsets expire from here).
    pub timestamp_ms: i64,
    /// The members with their assignments.
    pub members: Vec<MemberRecord>,
}

/// A member of a completed generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// Static membership id (`group.instance.id`).
    pub instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout it asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout it asked for.
    pub rebalance_timeout_ms: i32,
    /// Its metadata for the selected protocol.
    pub subscription: Bytes,
    /// What the leader assigned it.
    pub assignment: Bytes,
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetRecord {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// Client metadata, round-tripped.
    pub metadata: Option<String>,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
    /// When it expires (ms), or -1 for the broker's retention rule.
    pub expire_timestamp: i64,
}

/// A group as the apply knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupLog {
    /// Coordinator epoch: bumped by every claim.
    pub epoch: u32,
    /// The coordinator holding `epoch`: (broker, incarnation).
    pub owner: Option<(i32, u64)>,
    /// The last completed generation.
    pub generation: Option<GroupGeneration>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), OffsetRecord>,
}

impl GroupLog {
    /// Whether the group exists for clients: it has had a generation or holds offsets.
    pub fn exists(&self) -> bool {
        self.generation.is_some() || !self.offsets.is_empty()
    }
}

/// Applies group commits in order; one verdict each (NOT_COORDINATOR when the
/// epoch precondition fails).
pub fn apply_groups(groups: &mut BTreeMap<String, GroupLog>, origin: &Origin, commits: &[GroupCommit]) -> Vec<Result<(), i16>> {
    commits.iter().map(|c| apply_one(groups, origin, c)).collect()
}

fn apply_one(groups: &mut BTreeMap<String, GroupLog>, origin: &Origin, c: &GroupCommit) -> Result<(), i16> {
    let proposer = (origin.broker, origin.incarnation);
    if let GroupOp::Claim = c.op {
        let g = groups.entry(c.group.clone()).or_default();
        if g.epoch != c.epoch {
            return Err(ec::NOT_COORDINATOR);
        }
        g.epoch += 1;
        g.owner = Some(proposer);
        #[cfg(feature = "sim-bugs")]
        if crate::sim_bugs::active(crate::sim_bugs::Bug::ForgetOffsetsOnClaim) {
            g.offsets.clear();
        }
        return Ok(());
    }
    let g = groups.get_mut(&c.group).ok_or(ec::NOT_COORDINATOR)?;
    if g.epoch != c.epoch || g.owner != Some(proposer) {
        return Err(ec::NOT_COORDINATOR);
    }
    match &c.op {
        GroupOp::Claim => {}
        GroupOp::Generation(gen) => g.generation = Some(gen.clone()),
        GroupOp::CommitOffsets(list) => {
            for o in list {
                g.offsets.insert((o.topic.clone(), o.partition), o.clone());
            }
        }
        GroupOp::DeleteOffsets(list) => {
            for key in list {
                g.offsets.remove(key);
            }
        }
        GroupOp::Delete => {
            g.generation = None;
            g.offsets.clear();
        }
    }
    Ok(())
}

/// Drops every group's offsets for a deleted topic (Kafka does the same).
pub fn forget_topic(groups: &mut BTreeMap<String, GroupLog>, topic: &str) {
    for g in groups.values_mut() {
        g.offsets.retain(|(t, _), _| t != topic);
    }
}

pub(super) fn put_opt_str(w: &mut BytesMut, s: &Option<String>) {
    match s {
        Some(s) => {
            w.put_u8(1);
            put_str(w, s);
        }
        None => w.put_u8(0),
    }
}

pub(super) fn get_opt_str(r: &mut Bytes) -> Result<Option<String>, DecodeError> {
    Ok(if wire::bool(r)? { Some(get_str(r)?) } else { None })
}

fn put_blob(w: &mut BytesMut, b: &[u8]) {
    wire::put_uvarint(w, b.len() as u32);
    w.put_slice(b);
}

fn get_blob(r: &mut Bytes) -> Result<Bytes, DecodeError> {
    let n = wire::uvarint(r)?;
    wire::take(r, u64::from(n))
}

/// Fewest bytes an encoded [`OffsetRecord`] takes (bounds decode allocations).
pub(super) const OFFSET_MIN_BYTES: usize = 34;

/// Writes a completed generation (shared by group commits and snapshots).
pub(super) fn put_generation(w: &mut BytesMut, g: &GroupGeneration) {
    // Destructured so that a new field cannot be forgotten here.
    let GroupGeneration { generation, protocol_type, protocol, leader, timestamp_ms, members } = g;
    w.put_i32(*generation);
    put_opt_str(w, protocol_type);
    put_opt_str(w, protocol);
    put_opt_str(w, leader);
    w.put_i64(*timestamp_ms);
    wire::put_uvarint(w, members.len() as u32);
    for m in members {
        let MemberRecord {
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            subscription,
            assignment,
        } = m;
        put_str(w, member_id);
        put_opt_str(w, instance_id);
        put_str(w, client_id);
        put_str(w, client_host);
        w.put_i32(*session_timeout_ms);
        w.put_i32(*rebalance_timeout_ms);
        put_blob(w, subscription);
        put_blob(w, assignment);
    }
}

/// Reads what [`put_generation`] wrote.
pub(super) fn get_generation(r: &mut Bytes) -> Result<GroupGeneration, DecodeError> {
    let generation = wire::i32(r)?;
    let protocol_type = get_opt_str(r)?;
    let protocol = get_opt_str(r)?;
    let leader = get_opt_str(r)?;
    let timestamp_ms = wire::i64(r)?;
    let m = get_count(r, 14)?;
    let mut members = Vec::with_capacity(m);
    for _ in 0..m {
        members.push(MemberRecord {
            member_id: get_str(r)?,
            instance_id: get_opt_str(r)?,
            client_id: get_str(r)?,
            client_host: get_str(r)?,
            session_timeout_ms: wire::i32(r)?,
            rebalance_timeout_ms: wire::i32(r)?,
            subscription: get_blob(r)?,
            assignment: get_blob(r)?,
        });
    }
    Ok(GroupGeneration { generation, protocol_type, protocol, leader, timestamp_ms, members })
}

/// Writes one committed offset (shared by group commits and snapshots).
pub(super) fn put_offset(w: &mut BytesMut, o: &OffsetRecord) {
    let OffsetRecord { topic, partition, offset, leader_epoch, metadata, commit_timestamp, expire_timestamp } = o;
    put_str(w, topic);
    w.put_i32(*partition);
    w.put_i64(*offset);
    w.put_i32(*leader_epoch);
    put_opt_str(w, metadata);
    w.put_i64(*commit_timestamp);
    w.put_i64(*expire_timestamp);
}

/// Reads what [`put_offset`] wrote.
pub(super) fn get_offset(r: &mut Bytes) -> Result<OffsetRecord, DecodeError> {
    Ok(OffsetRecord {
        topic: get_str(r)?,
        partition: wire::i32(r)?,
        offset: wire::i64(r)?,
        leader_epoch: wire::i32(r)?,
        metadata: get_opt_str(r)?,
        commit_timestamp: wire::i64(r)?,
        expire_timestamp: wire::i64(r)?,
    })
}

/// Writes group commits (the body of [`super::commit::CommitBody::Groups`]).
pub(super) fn encode(w: &mut BytesMut, commits: &[GroupCommit]) {
    wire::put_uvarint(w, commits.len() as u32);
    for c in commits {
        put_str(w, &c.group);
        w.put_u32(c.epoch);
        match &c.op {
            GroupOp::Claim => w.put_u8(1),
            GroupOp::Generation(g) => {
                w.put_u8(2);
                put_generation(w, g);
            }
            GroupOp::CommitOffsets(list) => {
                w.put_u8(3);
                wire::put_uvarint(w, list.len() as u32);
                for o in list {
                    put_offset(w, o);
                }
            }
            GroupOp::DeleteOffsets(list) => {
                w.put_u8(4);
                wire::put_uvarint(w, list.len() as u32);
                for (t, p) in list {
                    put_str(w, t);
                    w.put_i32(*p);
                }
            }
            GroupOp::Delete => w.put_u8(5),
        }
    }
}

/// Reads group commits back; any bytes give commits or an error.
pub(super) fn decode(r: &mut Bytes) -> Result<Vec<GroupCommit>, DecodeError> {
    let n = get_count(r, 6)?;
    let mut commits = Vec::with_capacity(n);
    for _ in 0..n {
        let group = get_str(r)?;
        let epoch = wire::u32(r)?;
        let op = match wire::i8(r)? {
            1 => GroupOp::Claim,
            2 => GroupOp::Generation(get_generation(r)?),
            3 => {
                let m = get_count(r, OFFSET_MIN_BYTES)?;
                let mut list = Vec::with_capacity(m);
                for _ in 0..m {
                    list.push(get_offset(r)?);
                }
                GroupOp::CommitOffsets(list)
            }
            4 => {
                let m = get_count(r, 5)?;
                let mut list = Vec::with_capacity(m);
                for _ in 0..m {
                    list.push((get_str(r)?, wire::i32(r)?));
                }
                GroupOp::DeleteOffsets(list)
            }
            5 => GroupOp::Delete,
            other => return Err(strata_proto::DecodeErrorKind::UnsupportedVersion { api_key: -3, version: other as i16 }.into()),
        };
        commits.push(GroupCommit { group, epoch, op });
    }
    Ok(commits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(broker: i32) -> Origin {
        Origin { broker, incarnation: 1, seq: 1 }
    }

    fn commit(group: &str, epoch: u32, op: GroupOp) -> GroupCommit {
        GroupCommit { group: group.into(), epoch, op }
    }

    fn offsets(offset: i64) -> GroupOp {
        GroupOp::CommitOffsets(vec![OffsetRecord { topic: "t".into(), partition: 0, offset, leader_epoch: -1, ..Default::default() }])
    }

    #[test]
    fn a_deposed_coordinator_cannot_commit() {
        let mut groups = BTreeMap::new();
        assert_eq!(apply_groups(&mut groups, &origin(1), &[commit("g", 0, GroupOp::Claim)]), vec![Ok(())]);
        assert_eq!(apply_groups(&mut groups, &origin(1), &[commit("g", 1, offsets(5))]), vec![Ok(())]);
        // Broker 2 takes over; broker 1's next commit, at its old epoch, is refused.
        assert_eq!(apply_groups(&mut groups, &origin(2), &[commit("g", 1, GroupOp::Claim)]), vec![Ok(())]);
        assert_eq!(apply_groups(&mut groups, &origin(1), &[commit("g", 1, offsets(9))]), vec![Err(ec::NOT_COORDINATOR)]);
        // A stale claim is refused too; broker 2 commits at epoch 2.
        assert_eq!(apply_groups(&mut groups, &origin(1), &[commit("g", 1, GroupOp::Claim)]), vec![Err(ec::NOT_COORDINATOR)]);
        assert_eq!(apply_groups(&mut groups, &origin(2), &[commit("g", 2, offsets(7))]), vec![Ok(())]);
        assert_eq!(groups["g"].offsets[&("t".to_string(), 0)].offset, 7);
        // The same broker with a new incarnation (a restart) is another coordinator.
        let restarted = Origin { broker: 2, incarnation: 9, seq: 1 };
        assert_eq!(apply_groups(&mut groups, &restarted, &[commit("g", 2, offsets(8))]), vec![Err(ec::NOT_COORDINATOR)]);
    }

    #[test]
    fn group_commits_round_trip_and_decode_totally() {
        let list = vec![
            commit("g", 0, GroupOp::Claim),
            commit(
                "g",
                1,
                GroupOp::Generation(GroupGeneration {
                    generation: 3,
                    protocol_type: Some("consumer".into()),
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    timestamp_ms: 77,
                    members: vec![MemberRecord {
                        member_id: "m1".into(),
                        instance_id: Some("i1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        session_timeout_ms: 6000,
                        rebalance_timeout_ms: 30000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            ),
            commit(
                "g",
                1,
                GroupOp::CommitOffsets(vec![OffsetRecord {
                    topic: "t".into(),
                    partition: 2,
                    offset: 10,
                    leader_epoch: 4,
                    metadata: Some("meta".into()),
                    commit_timestamp: 5,
                    expire_timestamp: -1,
                }]),
            ),
            commit("g", 1, GroupOp::DeleteOffsets(vec![("t".into(), 2)])),
            commit("g", 1, GroupOp::Delete),
        ];
        let mut w = BytesMut::new();
        encode(&mut w, &list);
        let bytes = w.freeze();
        assert_eq!(decode(&mut bytes.clone()).unwrap(), list);
        for cut in 0..bytes.len() {
            assert!(decode(&mut bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
}
