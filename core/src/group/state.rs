//! A loaded group and its state machine: Empty → PreparingRebalance →
//! CompletingRebalance → Stable (and back), with Kafka's join, sync and
//! session timeouts. Methods answer the requests that a transition settles;
//! a transition that must be committed returns the generation to commit.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::messages::join_group_response::JoinGroupResponseMember;
use strata_proto::messages::{JoinGroupResponse, SyncGroupResponse};

use super::member::{session_ms, Member};
use super::GroupSettings;
use crate::broker::respond;
use crate::error_code as ec;
use crate::io::{Output, TimerId};
use crate::log::group::{GroupGeneration, GroupLog};

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No members (may still hold offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned; members heartbeat.
    Stable,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// The join phase of a rebalance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinPhase {
    /// When the join phase ends at the latest.
    pub deadline: u64,
    /// For a group's first rebalance (from Empty): the rebalance time left to
    /// extend the initial delay into while new members keep arriving.
    pub initial_remaining: Option<u64>,
}

/// A group this broker coordinates.
#[derive(Debug)]
pub(crate) struct Group {
    /// The state.
    pub state: GroupState,
    /// The current generation id.
    pub generation: i32,
    /// The members' protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol of the current generation.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Static members: instance id → member id.
    pub static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, to their join deadline.
    pub pending_members: BTreeMap<String, u64>,
    /// A member joined since the initial delay was last extended.
    pub new_member_added: bool,
    /// The join phase, while PreparingRebalance.
    pub join: Option<JoinPhase>,
    /// Members must send SyncGroup by then (while some have not).
    pub sync_deadline: Option<u64>,
    /// The leader's assignment, while its generation commit is in flight.
    pub proposed: Option<(i32, BTreeMap<String, Bytes>)>,
    /// When the group last became empty or completed a generation (ms).
    pub state_timestamp: i64,
    /// This group's timer.
    pub timer: TimerId,
    /// When the timer is set to fire.
    pub timer_at: Option<u64>,
}

impl Group {
    /// The group as the applied log has it: its last generation's members,
    /// Stable (they keep heartbeating), or Empty.
    pub fn load(log: Option<&GroupLog>, now: u64, timer: TimerId) -> Group {
        let mut g = Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            new_member_added: false,
            join: None,
            sync_deadline: None,
            proposed: None,
            state_timestamp: now as i64,
            timer,
            timer_at: None,
        };
        if let Some(gen) = log.and_then(|l| l.generation.as_ref()) {
            g.generation = gen.generation;
            g.protocol_type = gen.protocol_type.clone();
            g.protocol = gen.protocol.clone();
            g.leader = gen.leader.clone();
            g.state_timestamp = gen.timestamp_ms;
            for r in &gen.members {
                let m = Member::from_record(r, gen.protocol.as_deref(), now);
                if let Some(i) = &m.instance_id {
                    g.static_members.insert(i.clone(), m.id.clone());
                }
                g.members.insert(m.id.clone(), m);
            }
            if !g.members.is_empty() {
                g.state = GroupState::Stable;
            }
        }
        g
    }

    /// Whether the member is fenced: its instance id belongs to another member id.
    pub fn static_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.and_then(|i| self.static_members.get(i)).is_some_and(|m| m != member_id)
    }

    /// The largest rebalance timeout of the members (the join phase's length).
    pub fn rebalance_timeout(&self) -> u64 {
        self.members.values().map(|m| session_ms(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Protocols every member supports, in the order of the first member's preference.
    fn candidates(&self) -> Vec<String> {
        let Some(first) = self.members.values().next() else { return Vec::new() };
        first.protocols.iter().map(|(n, _)| n.clone()).filter(|p| self.members.values().all(|m| m.supports(p))).collect()
    }

    /// Kafka's protocol vote: each member votes for its most preferred
    /// candidate; the most votes win (ties: the first member's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates.into_iter().find(|c| votes.get(c.as_str()) == Some(&best))
    }

    /// Whether a member with these protocols may join (Kafka's `supportsProtocols`).
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self.candidates().iter().any(|c| protocols.iter().any(|(n, _)| n == c))
    }

    /// Starts a rebalance: pending syncs learn of it; members must rejoin.
    pub fn prepare_rebalance(&mut self, now: u64, settings: &GroupSettings, out: &mut Vec<Output>) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(req) = m.awaiting_sync.take() {
                    respond(out, &req, sync_error(req.api_version, ec::REBALANCE_IN_PROGRESS));
                }
                m.assignment = Bytes::new();
            }
        }
        self.proposed = None;
        self.sync_deadline = None;
        let rebalance = self.rebalance_timeout();
        self.join = Some(if self.state == GroupState::Empty {
            let delay = settings.initial_delay_ms;
            JoinPhase { deadline: now + delay, initial_remaining: Some(rebalance.saturating_sub(delay)) }
        } else {
            JoinPhase { deadline: now + rebalance, initial_remaining: None }
        });
        self.new_member_added = false;
        self.state = GroupState::PreparingRebalance;
    }

    /// Starts a rebalance unless one is already under way.
    pub fn maybe_prepare_rebalance(&mut self, now: u64, settings: &GroupSettings, out: &mut Vec<Output>) {
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty) {
            self.prepare_rebalance(now, settings, out);
        }
    }

    /// Ends the join phase early when every member has rejoined (not during
    /// the initial delay, which waits for more members by design).
    pub fn try_complete_join(&mut self, now: u64, out: &mut Vec<Output>) -> Option<GroupGeneration> {
        let join = self.join?;
        if self.state != GroupState::PreparingRebalance || join.initial_remaining.is_some() {
            return None;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty();
        if all_joined {
            return self.complete_join(now, out);
        }
        None
    }

    /// Ends the join phase: members that did not rejoin are dropped, the next
    /// generation starts, and every joined member gets its JoinGroup answer
    /// (the leader with everyone's metadata). Returns the generation to commit
    /// when the group became empty.
    pub fn complete_join(&mut self, now: u64, out: &mut Vec<Output>) -> Option<GroupGeneration> {
        let gone: Vec<String> = self.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            self.drop_member(&id, ec::UNKNOWN_MEMBER_ID, out);
        }
        self.join = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.state_timestamp = now as i64;
            return Some(self.generation_record(now));
        }
        self.protocol = self.select_protocol();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        self.sync_deadline = Some(now + self.rebalance_timeout());
        let protocol = self.protocol.clone().unwrap_or_default();
        let everyone: Vec<JoinGroupResponseMember> = self
            .members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(&protocol).cloned().unwrap_or_default(),
            })
            .collect();
        let leader = self.leader.clone().unwrap_or_default();
        for m in self.members.values_mut() {
            m.is_new = false;
            m.synced = false;
            m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
            if let Some(req) = m.awaiting_join.take() {
                let members = if m.id == leader { everyone.clone() } else { Vec::new() };
                let body = join_ok(req.api_version, self.generation, &self.protocol_type, &self.protocol, &leader, &m.id, members);
                respond(out, &req, body);
            }
        }
        None
    }

    /// Removes a member, answering what it waits for with `code`.
    pub fn drop_member(&mut self, id: &str, code: i16, out: &mut Vec<Output>) {
        let Some(m) = self.members.remove(id) else { return };
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i).is_some_and(|x| x == id) {
                self.static_members.remove(i);
            }
        }
        if let Some(req) = m.awaiting_join {
            respond(out, &req, join_error(req.api_version, id, code));
        }
        if let Some(req) = m.awaiting_sync {
            respond(out, &req, sync_error(req.api_version, code));
        }
    }

    /// Removes a member that left or timed out, and rebalances what remains.
    pub fn remove_member(&mut self, id: &str, now: u64, settings: &GroupSettings, out: &mut Vec<Output>) -> Option<GroupGeneration> {
        self.drop_member(id, ec::UNKNOWN_MEMBER_ID, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, settings, out);
                self.try_complete_join(now, out)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::Empty => None,
        }
    }

    /// The current generation as a commit records it.
    pub fn generation_record(&self, now: u64) -> GroupGeneration {
        let protocol = self.protocol.as_deref();
        GroupGeneration {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            timestamp_ms: now as i64,
            members: self.members.values().map(|m| m.record(protocol)).collect(),
        }
    }

    /// The earliest time anything in the group is due.
    pub fn next_deadline(&self) -> Option<u64> {
        let members = self.members.values().filter_map(Member::expires_at);
        let pending = self.pending_members.values().copied();
        let phases = self.join.map(|j| j.deadline).into_iter().chain(self.sync_deadline);
        members.chain(pending).chain(phases).min()
    }

    /// Does what is due at `now`: expired sessions and pending members, the
    /// end of the join phase, members that never synced. Returns the
    /// generation to commit when the group became empty.
    pub fn on_timer(&mut self, now: u64, settings: &GroupSettings, out: &mut Vec<Output>) -> Option<GroupGeneration> {
        let mut commit = None;
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> =
            self.members.values().filter(|m| m.expires_at().is_some_and(|t| t <= now)).map(|m| m.id.clone()).collect();
        for id in expired {
            commit = self.remove_member(&id, now, settings, out).or(commit);
        }
        if self.state == GroupState::PreparingRebalance {
            if let Some(join) = self.join {
                if join.deadline <= now {
                    match join.initial_remaining {
                        Some(remaining) if self.new_member_added && remaining > 0 => {
                            let delay = settings.initial_delay_ms.min(remaining);
                            self.new_member_added = false;
                            self.join = Some(JoinPhase { deadline: now + delay, initial_remaining: Some(remaining - delay) });
                        }
                        _ => commit = self.complete_join(now, out).or(commit),
                    }
                } else {
                    commit = self.try_complete_join(now, out).or(commit);
                }
            }
        }
        if let Some(deadline) = self.sync_deadline {
            if deadline <= now && matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) {
                let laggards: Vec<String> = self.members.values().filter(|m| !m.synced).map(|m| m.id.clone()).collect();
                self.sync_deadline = None;
                if !laggards.is_empty() {
                    for id in &laggards {
                        self.drop_member(id, ec::REBALANCE_IN_PROGRESS, out);
                    }
                    self.prepare_rebalance(now, settings, out);
                    commit = self.try_complete_join(now, out).or(commit);
                }
            }
        }
        commit
    }

    /// Answers everything the group waits on with `code` (the group is lost
    /// to another coordinator).
    pub fn fence(&mut self, code: i16, out: &mut Vec<Output>) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.drop_member(&id, code, out);
        }
    }
}

/// A successful JoinGroup answer.
pub(crate) fn join_ok(
    version: i16,
    generation: i32,
    protocol_type: &Option<String>,
    protocol: &Option<String>,
    leader: &str,
    member_id: &str,
    members: Vec<JoinGroupResponseMember>,
) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: ec::NONE,
        generation_id: generation,
        protocol_type: protocol_type.clone(),
        protocol_name: if version >= 7 { protocol.clone() } else { Some(protocol.clone().unwrap_or_default()) },
        leader: leader.to_string(),
        member_id: member_id.to_string(),
        members,
        ..Default::default()
    }
}

/// A JoinGroup error answer.
pub(crate) fn join_error(version: i16, member_id: &str, code: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code,
        generation_id: -1,
        protocol_type: None,
        protocol_name: if version >= 7 { None } else { Some(String::new()) },
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// A SyncGroup error answer.
pub(crate) fn sync_error(_version: i16, code: i16) -> SyncGroupResponse {
    SyncGroupResponse { error_code: code, ..Default::default() }
}
