//! OffsetCommit: checked against the member and generation in the
//! coordinator's memory, then committed with the coordinator epoch as
//! precondition, and answered once applied. A group with no members takes
//! commits from anyone with generation -1 (simple consumers, admin tools).

use strata_proto::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use strata_proto::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::member::session_ms;
use super::sync::failure_code;
use super::{errors, GroupProposal, GroupState};
use crate::broker::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;
use crate::log::group::{GroupCommit, GroupOp, OffsetRecord};

/// An OffsetCommit waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingCommit {
    req: ReqInfo,
    group: String,
    response: OffsetCommitResponse,
    /// (topic, partition) slots of the response the commit decides.
    slots: Vec<(usize, usize)>,
}

impl Broker {
    pub(crate) fn on_offset_commit(&mut self, req: ReqInfo, r: OffsetCommitRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        let whole = |code: i16| errors::error_response(&strata_proto::RequestBody::OffsetCommit(r.clone()), v, code);
        if r.group_id.is_empty() {
            return respond(out, &req, whole(ec::INVALID_GROUP_ID));
        }
        let generation = if v >= 1 { r.generation_id_or_member_epoch } else { -1 };
        let now = self.now_ms;
        let settings = self.group_settings();
        let Some(g) = self.group_mut(&r.group_id) else { return respond(out, &req, whole(ec::NOT_COORDINATOR)) };
        let check = if generation < 0 && g.state == GroupState::Empty {
            ec::NONE
        } else if g.static_fenced(r.group_instance_id.as_deref(), &r.member_id) {
            ec::FENCED_INSTANCE_ID
        } else if !g.members.contains_key(&r.member_id) {
            ec::UNKNOWN_MEMBER_ID
        } else if generation != g.generation {
            ec::ILLEGAL_GENERATION
        } else if g.state == GroupState::CompletingRebalance {
            ec::REBALANCE_IN_PROGRESS
        } else {
            ec::NONE
        };
        #[cfg(feature = "sim-bugs")]
        let check = if crate::sim_bugs::active(crate::sim_bugs::Bug::CommitAnyGeneration) { ec::NONE } else { check };
        if check != ec::NONE {
            return respond(out, &req, whole(check));
        }
        if let Some(m) = g.members.get_mut(&r.member_id) {
            m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
        }
        let epoch = self.group_epoch(&r.group_id);
        let mut response = OffsetCommitResponse::default();
        let mut records = Vec::new();
        let mut slots = Vec::new();
        for (ti, t) in r.topics.iter().enumerate() {
            let name = if v >= 10 { self.log.topic_by_id(&t.topic_id).map(|t| t.name.clone()) } else { Some(t.name.clone()) };
            let topic = name.as_ref().and_then(|n| self.log.topics.get(n));
            let mut tr = OffsetCommitResponseTopic { name: t.name.clone(), topic_id: t.topic_id, partitions: Vec::new() };
            for (pi, p) in t.partitions.iter().enumerate() {
                let exists = topic.is_some_and(|tp| usize::try_from(p.partition_index).is_ok_and(|i| i < tp.partitions.len()));
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let code = if !exists {
                    if v >= 10 { ec::UNKNOWN_TOPIC_ID } else { ec::UNKNOWN_TOPIC_OR_PARTITION }
                } else if metadata.len() > settings.metadata_max_bytes {
                    ec::OFFSET_METADATA_TOO_LARGE
                } else {
                    let commit_timestamp = if v == 1 && p.commit_timestamp >= 0 { p.commit_timestamp } else { now as i64 };
                    let expire_timestamp = if (2..=4).contains(&v) && r.retention_time_ms >= 0 {
                        commit_timestamp.saturating_add(r.retention_time_ms)
                    } else {
                        -1
                    };
                    records.push(OffsetRecord {
                        topic: name.clone().unwrap_or_default(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: Some(metadata),
                        commit_timestamp,
                        expire_timestamp,
                    });
                    slots.push((ti, pi));
                    ec::NONE
                };
                tr.partitions.push(OffsetCommitResponsePartition { partition_index: p.partition_index, error_code: code });
            }
            response.topics.push(tr);
        }
        if records.is_empty() {
            respond(out, &req, response);
        } else {
            let commit = GroupCommit { group: r.group_id.clone(), epoch, op: GroupOp::CommitOffsets(records) };
            let pending = PendingCommit { req, group: r.group_id.clone(), response, slots };
            self.propose(CommitBody::Groups(vec![commit]), Proposal::Group(GroupProposal::CommitOffsets(pending)), out);
        }
        self.rearm_group(&r.group_id, out);
    }

    /// The offset commit was applied (`Ok`) or refused / failed.
    pub(crate) fn on_offsets_committed(&mut self, pending: PendingCommit, verdict: Result<(), i16>, out: &mut Vec<Output>) {
        let PendingCommit { req, group, mut response, slots } = pending;
        if let Err(code) = verdict {
            for (ti, pi) in slots {
                if let Some(p) = response.topics.get_mut(ti).and_then(|t| t.partitions.get_mut(pi)) {
                    p.error_code = failure_code(code);
                }
            }
            if code == ec::NOT_COORDINATOR {
                self.unload_group(&group, ec::NOT_COORDINATOR, out);
            }
        }
        respond(out, &req, response);
    }
}
