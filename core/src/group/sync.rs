//! SyncGroup and generation commits. The leader's SyncGroup carries the
//! assignment; the coordinator commits the completed generation (members,
//! protocol, leader, assignment) with its coordinator epoch as precondition,
//! and only once that commit is applied does the group turn Stable and
//! every member get its part (DESIGN.md: "honour the leader's assignment").

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::messages::{SyncGroupRequest, SyncGroupResponse};

use super::join::{everyone, StaticRejoin};
use super::member::{session_ms, Member};
use super::state::{join_error, join_ok, sync_error, GroupState};
use super::GroupProposal;
use crate::broker::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;
use crate::log::group::{GroupCommit, GroupGeneration, GroupOp};

/// Why a generation is committed, and who waits for it.
#[derive(Debug)]
pub(crate) enum GenerationPurpose {
    /// The leader's assignment: members' SyncGroups wait for it.
    Sync,
    /// The group became empty (its offsets start to age).
    Empty,
    /// A static member replaced its old id without a rebalance.
    StaticRejoin(StaticRejoin, Box<Member>),
}

/// The code a member sees when a group commit failed: NOT_COORDINATOR when
/// another broker holds the group now, else COORDINATOR_NOT_AVAILABLE
/// (retriable: the client finds the coordinator again and retries).
pub(crate) fn failure_code(code: i16) -> i16 {
    if code == ec::NOT_COORDINATOR {
        ec::NOT_COORDINATOR
    } else {
        ec::COORDINATOR_NOT_AVAILABLE
    }
}

impl Broker {
    pub(crate) fn on_sync_group(&mut self, req: ReqInfo, r: SyncGroupRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        let fail = |out: &mut Vec<Output>, code: i16| respond(out, &req, sync_error(v, code));
        if r.group_id.is_empty() {
            return fail(out, ec::INVALID_GROUP_ID);
        }
        let now = self.now_ms;
        let Some(g) = self.group_mut(&r.group_id) else { return fail(out, ec::NOT_COORDINATOR) };
        if g.static_fenced(r.group_instance_id.as_deref(), &r.member_id) {
            return fail(out, ec::FENCED_INSTANCE_ID);
        }
        if !g.members.contains_key(&r.member_id) {
            return fail(out, ec::UNKNOWN_MEMBER_ID);
        }
        if r.generation_id != g.generation {
            return fail(out, ec::ILLEGAL_GENERATION);
        }
        if (r.protocol_type.is_some() && r.protocol_type != g.protocol_type)
            || (r.protocol_name.is_some() && r.protocol_name != g.protocol)
        {
            return fail(out, ec::INCONSISTENT_GROUP_PROTOCOL);
        }
        let is_leader = g.leader.as_deref() == Some(r.member_id.as_str());
        let state = g.state;
        let generation = g.generation;
        let mut commit = None;
        match state {
            GroupState::Empty => return fail(out, ec::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => return fail(out, ec::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => {
                if let Some(m) = g.members.get_mut(&r.member_id) {
                    m.synced = true;
                    m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
                    if let Some(prev) = m.awaiting_sync.replace(req) {
                        respond(out, &prev, sync_error(prev.api_version, ec::REBALANCE_IN_PROGRESS));
                    }
                }
                if is_leader && g.proposed.is_none() {
                    let assignments: BTreeMap<String, Bytes> = r
                        .assignments
                        .iter()
                        .filter(|a| g.members.contains_key(&a.member_id))
                        .map(|a| (a.member_id.clone(), a.assignment.clone()))
                        .collect();
                    let mut gen = g.generation_record(now);
                    for m in &mut gen.members {
                        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    g.proposed = Some((generation, assignments));
                    commit = Some(gen);
                }
            }
            GroupState::Stable => {
                let protocol_type = g.protocol_type.clone();
                let protocol_name = g.protocol.clone();
                if let Some(m) = g.members.get_mut(&r.member_id) {
                    m.synced = true;
                    m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
                    let body = SyncGroupResponse {
                        error_code: ec::NONE,
                        protocol_type,
                        protocol_name,
                        assignment: m.assignment.clone(),
                        ..Default::default()
                    };
                    respond(out, &req, body);
                }
            }
        }
        if g.members.values().all(|m| m.synced) {
            g.sync_deadline = None;
        }
        if let Some(gen) = commit {
            self.commit_generation(&r.group_id, gen, GenerationPurpose::Sync, out);
        }
        self.rearm_group(&r.group_id, out);
    }

    /// Proposes a generation of `group`, fenced by the epoch this broker holds.
    pub(crate) fn commit_generation(&mut self, group: &str, gen: GroupGeneration, purpose: GenerationPurpose, out: &mut Vec<Output>) {
        let generation = gen.generation;
        let commit = GroupCommit { group: group.to_string(), epoch: self.group_epoch(group), op: GroupOp::Generation(gen) };
        let proposal = Proposal::Group(GroupProposal::Generation(group.to_string(), generation, purpose));
        self.propose(CommitBody::Groups(vec![commit]), proposal, out);
    }

    /// A generation commit of ours was applied (`Ok`) or refused / failed.
    pub(crate) fn on_generation_decided(
        &mut self,
        group: &str,
        generation: i32,
        purpose: GenerationPurpose,
        verdict: Result<(), i16>,
        out: &mut Vec<Output>,
    ) {
        let now = self.now_ms;
        let settings = self.group_settings();
        if verdict == Err(ec::NOT_COORDINATOR) {
            if let GenerationPurpose::StaticRejoin(rejoin, _) = &purpose {
                respond(out, &rejoin.req, join_error(rejoin.req.api_version, &rejoin.member_id, ec::NOT_COORDINATOR));
            }
            return self.unload_group(group, ec::NOT_COORDINATOR, out);
        }
        let Some(g) = self.groups.groups.get_mut(group) else { return };
        match purpose {
            GenerationPurpose::Sync => {
                let current = g.state == GroupState::CompletingRebalance
                    && g.generation == generation
                    && g.proposed.as_ref().is_some_and(|(gen, _)| *gen == generation);
                if !current {
                    return;
                }
                match verdict {
                    Ok(()) => {
                        let (_, assignments) = g.proposed.take().unwrap_or_default();
                        g.state = GroupState::Stable;
                        g.state_timestamp = now as i64;
                        let protocol_type = g.protocol_type.clone();
                        let protocol = g.protocol.clone();
                        for m in g.members.values_mut() {
                            m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                            if let Some(req) = m.awaiting_sync.take() {
                                m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
                                let body = SyncGroupResponse {
                                    error_code: ec::NONE,
                                    protocol_type: protocol_type.clone(),
                                    protocol_name: protocol.clone(),
                                    assignment: m.assignment.clone(),
                                    ..Default::default()
                                };
                                respond(out, &req, body);
                            }
                        }
                    }
                    Err(code) => {
                        g.proposed = None;
                        for m in g.members.values_mut() {
                            if let Some(req) = m.awaiting_sync.take() {
                                respond(out, &req, sync_error(req.api_version, failure_code(code)));
                            }
                        }
                        g.prepare_rebalance(now, &settings, out);
                    }
                }
            }
            GenerationPurpose::Empty => {}
            GenerationPurpose::StaticRejoin(rejoin, old) => match verdict {
                Ok(()) => {
                    let members = if rejoin.skip_assignment { everyone(g) } else { Vec::new() };
                    let mut body =
                        join_ok(rejoin.req.api_version, g.generation, &g.protocol_type, &g.protocol, &rejoin.leader, &rejoin.member_id, members);
                    body.skip_assignment = rejoin.skip_assignment;
                    respond(out, &rejoin.req, body);
                }
                Err(code) => {
                    // Put the old member back, as Kafka does when the store fails.
                    if g.members.remove(&rejoin.member_id).is_some() {
                        if let Some(i) = &old.instance_id {
                            g.static_members.insert(i.clone(), old.id.clone());
                        }
                        if g.leader.as_deref() == Some(rejoin.member_id.as_str()) {
                            g.leader = Some(old.id.clone());
                        }
                        g.members.insert(rejoin.old_id.clone(), *old);
                    }
                    respond(out, &rejoin.req, join_error(rejoin.req.api_version, &rejoin.member_id, failure_code(code)));
                }
            },
        }
        self.rearm_group(group, out);
    }
}
