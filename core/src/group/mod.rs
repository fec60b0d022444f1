//! Consumer-group coordination, classic protocol (DESIGN.md, "Groups").
//!
//! The coordinator of a group is one broker, chosen by rendezvous hashing of
//! the group id over the live brokers. Before it acts for a group it claims
//! it: a commit that bumps the group's coordinator epoch. Every later group
//! commit (a completed generation, offset commits, deletions) carries that
//! epoch, so once another broker claims the group the old coordinator's
//! commits are refused by the apply on every broker alike. Membership
//! (joins, heartbeats, timeouts) lives in the coordinator's memory; what
//! must survive it (generations, offsets) is in the log, and a new
//! coordinator resumes from there.

mod admin;
mod claim;
mod consumer_protocol;
mod errors;
mod find;
mod heartbeat;
mod join;
mod leave;
mod member;
mod offset_commit;
mod offset_fetch;
mod state;
mod sync;
mod timer;

use std::collections::BTreeMap;

use strata_proto::RequestBody;

pub(crate) use claim::Parked;
pub(crate) use state::{Group, GroupState};

use crate::broker::{Broker, ReqInfo};
use crate::io::{Output, TimerId};

/// Kafka's group settings, read from the broker config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub min_session_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.retention.minutes` in ms.
    pub retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub retention_check_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub metadata_max_bytes: usize,
}

/// Most requests parked while their groups are claimed; beyond it clients
/// get COORDINATOR_LOAD_IN_PROGRESS and retry.
const MAX_PARKED: usize = 4096;

/// How long a new member may wait in a join before it is dropped (Kafka's
/// `GroupCoordinator.NewMemberJoinTimeoutMs`).
const NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 300_000;

/// The coordinator's in-memory state for the groups it holds.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    /// Groups this broker coordinates and has loaded, by id.
    pub groups: BTreeMap<String, Group>,
    /// Each loaded group's timer.
    pub timers: BTreeMap<TimerId, String>,
    /// Groups whose claim is in flight.
    pub claiming: BTreeMap<String, ()>,
    /// Requests waiting for claims.
    pub parked: Vec<Parked>,
    /// Whether the offset-expiry sweep timer is armed.
    pub expiry_armed: bool,
}

/// What a group commit proposed by this broker is for.
#[derive(Debug)]
pub(crate) enum GroupProposal {
    /// Claims for these groups.
    Claim(Vec<String>),
    /// A generation of a group, for this reason.
    Generation(String, i32, sync::GenerationPurpose),
    /// An OffsetCommit request.
    CommitOffsets(offset_commit::PendingCommit),
    /// A DeleteGroups request.
    DeleteGroups(admin::PendingDeleteGroups),
    /// An OffsetDelete request.
    DeleteOffsets(admin::PendingOffsetDelete),
    /// Expired offsets of a group (the sweep; nobody waits).
    Expire(String),
}

impl Broker {
    /// Kafka's group settings from the effective broker config.
    pub(crate) fn group_settings(&self) -> GroupSettings {
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        GroupSettings {
            initial_delay_ms: view.group_initial_rebalance_delay_ms().max(0) as u64,
            min_session_ms: view.group_min_session_timeout_ms(),
            max_session_ms: view.group_max_session_timeout_ms(),
            max_size: view.group_max_size().max(1) as usize,
            retention_ms: view.offsets_retention_ms(),
            retention_check_ms: view.offsets_retention_check_interval_ms().max(1) as u64,
            metadata_max_bytes: view.offset_metadata_max_bytes().max(0) as usize,
        }
    }

    /// Routes a group request: ListGroups and FindCoordinator are answered at
    /// once; the rest first make sure this broker holds their groups.
    pub(crate) fn on_group_request(&mut self, req: ReqInfo, client_id: String, body: RequestBody, out: &mut Vec<Output>) {
        match body {
            RequestBody::FindCoordinator(r) => self.on_find_coordinator(req, r, out),
            RequestBody::ListGroups(r) => self.on_list_groups(req, r, out),
            body => self.gate_group_request(Parked::new(req, client_id, body), out),
        }
    }

    /// Handles a group-keyed request whose groups this broker holds (or that it
    /// will answer NOT_COORDINATOR for).
    fn dispatch_group_request(&mut self, parked: Parked, out: &mut Vec<Output>) {
        let Parked { req, client_id, body, .. } = parked;
        match body {
            RequestBody::JoinGroup(r) => self.on_join_group(req, client_id, r, out),
            RequestBody::SyncGroup(r) => self.on_sync_group(req, r, out),
            RequestBody::Heartbeat(r) => self.on_heartbeat(req, r, out),
            RequestBody::LeaveGroup(r) => self.on_leave_group(req, r, out),
            RequestBody::OffsetCommit(r) => self.on_offset_commit(req, r, out),
            RequestBody::OffsetFetch(r) => self.on_offset_fetch(req, r, out),
            RequestBody::DescribeGroups(r) => self.on_describe_groups(req, r, out),
            RequestBody::DeleteGroups(r) => self.on_delete_groups(req, r, out),
            RequestBody::OffsetDelete(r) => self.on_offset_delete(req, r, out),
            other => {
                debug_assert!(false, "not a group request: {:?}", other.api_key());
                out.push(Output::Close { conn: req.key.conn });
            }
        }
    }

    /// Whether this broker is the coordinator of `group` by the hash.
    pub(crate) fn coordinates(&self, group: &str) -> bool {
        self.coordinator_for(group).node_id == self.cfg.node_id
    }

    /// Whether this broker acts for `group`: the applied log says this broker
    /// (this incarnation) holds it, and it is still the coordinator by the
    /// live set (once the set moves the group elsewhere, it answers
    /// NOT_COORDINATOR even before the new coordinator's claim is applied).
    pub(crate) fn holds(&self, group: &str) -> bool {
        self.log.groups.get(group).and_then(|g| g.owner) == Some((self.cfg.node_id, self.cfg.incarnation))
            && self.coordinates(group)
    }

    /// The loaded group `id`, loading it from the applied state if this broker
    /// holds it. None when this broker does not hold it.
    pub(crate) fn group_mut(&mut self, id: &str) -> Option<&mut Group> {
        if !self.groups.groups.contains_key(id) {
            if !self.holds(id) {
                return None;
            }
            let timer = self.fresh_id();
            let group = Group::load(self.log.groups.get(id), self.now_ms, timer);
            self.groups.timers.insert(timer, id.to_string());
            self.groups.groups.insert(id.to_string(), group);
        }
        self.groups.groups.get_mut(id)
    }

    /// The coordinator epoch this broker holds for `group` (it must hold it).
    pub(crate) fn group_epoch(&self, group: &str) -> u32 {
        self.log.groups.get(group).map_or(0, |g| g.epoch)
    }
}

impl Broker {
    /// A group commit of ours was applied: one verdict per operation.
    pub(crate) fn on_group_commit_applied(&mut self, p: GroupProposal, verdicts: Vec<Result<(), i16>>, out: &mut Vec<Output>) {
        let first = verdicts.first().copied().unwrap_or(Err(crate::error_code::UNKNOWN_SERVER_ERROR));
        match p {
            GroupProposal::Claim(groups) => self.on_claims_decided(&groups, out),
            GroupProposal::Generation(group, generation, purpose) => {
                self.on_generation_decided(&group, generation, purpose, first, out)
            }
            GroupProposal::CommitOffsets(pending) => self.on_offsets_committed(pending, first, out),
            GroupProposal::DeleteGroups(pending) => self.on_groups_deleted(pending, &verdicts, out),
            GroupProposal::DeleteOffsets(pending) => self.on_offsets_deleted(pending, first, out),
            GroupProposal::Expire(group) => {
                if first.is_ok() && !self.log.groups.get(&group).is_some_and(|g| g.exists()) {
                    // Nothing left: the group is gone (Kafka marks it Dead).
                    let empty = self.groups.groups.get(&group).is_some_and(|g| g.members.is_empty());
                    if empty {
                        self.unload_group(&group, crate::error_code::NOT_COORDINATOR, out);
                    }
                }
            }
        }
    }

    /// A group commit of ours failed before any apply (append failed or timed out).
    pub(crate) fn on_group_commit_failed(&mut self, p: GroupProposal, code: i16, out: &mut Vec<Output>) {
        let n = match &p {
            GroupProposal::Claim(groups) => groups.len(),
            GroupProposal::DeleteGroups(pending) => pending.len(),
            _ => 1,
        };
        self.on_group_commit_applied(p, vec![Err(code); n], out);
    }
}
