//! JoinGroup: new members get an id (v4+ first answers MEMBER_ID_REQUIRED
//! with it), known members rejoin, static members (`group.instance.id`)
//! replace their earlier incarnation without a rebalance when nothing about
//! their protocols changed.

use bytes::Bytes;
use strata_proto::messages::join_group_response::JoinGroupResponseMember;
use strata_proto::messages::JoinGroupRequest;

use super::member::{session_ms, Member};
use super::state::{join_error, join_ok, GroupState};
use super::sync::GenerationPurpose;
use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// A rejoining static member's answer, sent once the replacement is committed.
#[derive(Debug)]
pub(crate) struct StaticRejoin {
    /// The JoinGroup to answer.
    pub req: ReqInfo,
    /// The new member id.
    pub member_id: String,
    /// The member id it replaced (restored if the commit fails).
    pub old_id: String,
    /// The leader to report.
    pub leader: String,
    /// Whether the leader may skip assigning (v9+, the leader rejoined).
    pub skip_assignment: bool,
}

impl Broker {
    pub(crate) fn on_join_group(&mut self, req: ReqInfo, client_id: String, r: JoinGroupRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        let settings = self.group_settings();
        let fail = |out: &mut Vec<Output>, code: i16| respond(out, &req, join_error(v, &r.member_id, code));
        if r.group_id.is_empty() {
            return fail(out, ec::INVALID_GROUP_ID);
        }
        if r.session_timeout_ms < settings.min_session_ms || r.session_timeout_ms > settings.max_session_ms {
            return fail(out, ec::INVALID_SESSION_TIMEOUT);
        }
        let protocols: Vec<(String, Bytes)> = r.protocols.iter().map(|p| (p.name.clone(), p.metadata.clone())).collect();
        // v0 has no rebalance timeout: the session timeout stands in.
        let rebalance_timeout_ms = if r.rebalance_timeout_ms <= 0 { r.session_timeout_ms } else { r.rebalance_timeout_ms };
        let now = self.now_ms;
        let id_suffix = self.fresh_member_suffix();
        // Kafka shows a member's host as Java prints an address: "/127.0.0.1".
        let client_host = format!("/{}", self.peers.get(&req.key.conn).map_or("", String::as_str));
        let Some(g) = self.group_mut(&r.group_id) else { return fail(out, ec::NOT_COORDINATOR) };
        if r.protocol_type.is_empty() || protocols.is_empty() || !g.supports_protocols(&r.protocol_type, &protocols) {
            return fail(out, ec::INCONSISTENT_GROUP_PROTOCOL);
        }
        let instance_id = r.group_instance_id.clone().filter(|i| !i.is_empty());
        let new_member = |id: String| Member {
            id,
            instance_id: instance_id.clone(),
            client_id: client_id.clone(),
            client_host: client_host.clone(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms,
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            heartbeat_deadline: now + session_ms(r.session_timeout_ms),
            awaiting_join: Some(req),
            awaiting_sync: None,
            is_new: true,
            joined_at: now,
            synced: false,
        };

        let mut commit = None;
        if r.member_id.is_empty() {
            let prefix = instance_id.as_deref().unwrap_or(&client_id);
            let member_id = format!("{prefix}-{id_suffix}");
            if let Some(old_id) = instance_id.as_ref().and_then(|i| g.static_members.get(i)).cloned() {
                // A static member back after a restart: takes over its old id's place.
                let Some(mut old) = g.members.remove(&old_id) else { return fail(out, ec::UNKNOWN_MEMBER_ID) };
                let was_leader = g.leader.as_deref() == Some(old_id.as_str());
                let leader_before = g.leader.clone().unwrap_or_default();
                if let Some(prev) = old.awaiting_join.take() {
                    respond(out, &prev, join_error(prev.api_version, &old_id, ec::FENCED_INSTANCE_ID));
                }
                if let Some(prev) = old.awaiting_sync.take() {
                    respond(out, &prev, super::state::sync_error(prev.api_version, ec::FENCED_INSTANCE_ID));
                }
                let mut m = new_member(member_id.clone());
                m.assignment = old.assignment.clone();
                m.is_new = false;
                m.synced = old.synced;
                if let Some(i) = &instance_id {
                    g.static_members.insert(i.clone(), member_id.clone());
                }
                if was_leader {
                    g.leader = Some(member_id.clone());
                }
                match g.state {
                    GroupState::Stable => {
                        let protocol_kept = g.protocol.as_deref().is_some_and(|p| m.supports(p));
                        m.awaiting_join = None;
                        g.members.insert(member_id.clone(), m);
                        if protocol_kept && g.select_protocol() == g.protocol {
                            // No rebalance: commit the new member id, then answer.
                            let skip = v >= 9 && was_leader;
                            let rejoin = StaticRejoin {
                                req,
                                member_id: member_id.clone(),
                                old_id,
                                leader: if skip { member_id.clone() } else { leader_before },
                                skip_assignment: skip,
                            };
                            commit = Some((g.generation_record(now), GenerationPurpose::StaticRejoin(rejoin, Box::new(old))));
                        } else {
                            if let Some(m) = g.members.get_mut(&member_id) {
                                m.awaiting_join = Some(req);
                            }
                            g.prepare_rebalance(now, &settings, out);
                        }
                    }
                    GroupState::CompletingRebalance => {
                        g.members.insert(member_id.clone(), m);
                        g.prepare_rebalance(now, &settings, out);
                    }
                    GroupState::PreparingRebalance | GroupState::Empty => {
                        g.members.insert(member_id.clone(), m);
                        if let Some(gen) = g.try_complete_join(now, out) {
                            commit = Some((gen, GenerationPurpose::Empty));
                        }
                    }
                }
            } else if g.members.len() + g.pending_members.len() >= settings.max_size {
                return fail(out, ec::GROUP_MAX_SIZE_REACHED);
            } else if instance_id.is_none() && v >= 4 {
                // KIP-394: the member must come back with this id.
                g.pending_members.insert(member_id.clone(), now + session_ms(r.session_timeout_ms));
                let mut body = join_error(v, &member_id, ec::MEMBER_ID_REQUIRED);
                body.member_id = member_id;
                respond(out, &req, body);
            } else {
                self.add_member(&r.group_id, &r.protocol_type, new_member(member_id), out);
            }
        } else if g.pending_members.remove(&r.member_id).is_some() {
            self.add_member(&r.group_id, &r.protocol_type, new_member(r.member_id.clone()), out);
        } else if g.static_fenced(instance_id.as_deref(), &r.member_id) {
            return fail(out, ec::FENCED_INSTANCE_ID);
        } else if !g.members.contains_key(&r.member_id) || g.state == GroupState::Empty {
            return fail(out, ec::UNKNOWN_MEMBER_ID);
        } else {
            let is_leader = g.leader.as_deref() == Some(r.member_id.as_str());
            let state = g.state;
            let generation = g.generation;
            let Some(m) = g.members.get_mut(&r.member_id) else { return fail(out, ec::UNKNOWN_MEMBER_ID) };
            let unchanged = m.same_protocols(&protocols);
            m.session_timeout_ms = r.session_timeout_ms;
            m.rebalance_timeout_ms = rebalance_timeout_ms;
            m.heartbeat_deadline = now + session_ms(r.session_timeout_ms);
            match state {
                GroupState::CompletingRebalance | GroupState::Stable if unchanged && !(state == GroupState::Stable && is_leader) => {
                    // Nothing changed: the current generation again.
                    let leader = g.leader.clone().unwrap_or_default();
                    let members = if is_leader { everyone(g) } else { Vec::new() };
                    let body = join_ok(v, generation, &g.protocol_type, &g.protocol, &leader, &r.member_id, members);
                    respond(out, &req, body);
                }
                _ => {
                    m.protocols = protocols;
                    if let Some(prev) = m.awaiting_join.replace(req) {
                        respond(out, &prev, join_error(prev.api_version, &r.member_id, ec::REBALANCE_IN_PROGRESS));
                    }
                    if state != GroupState::PreparingRebalance {
                        g.prepare_rebalance(now, &settings, out);
                    }
                    let done = g.try_complete_join(now, out);
                    if let Some(gen) = done {
                        commit = Some((gen, GenerationPurpose::Empty));
                    }
                }
            }
        }
        if let Some((gen, purpose)) = commit {
            self.commit_generation(&r.group_id, gen, purpose, out);
        }
        self.rearm_group(&r.group_id, out);
    }

    /// Adds a member that joins now, and starts or advances the rebalance.
    fn add_member(&mut self, group: &str, protocol_type: &str, member: Member, out: &mut Vec<Output>) {
        let now = self.now_ms;
        let settings = self.group_settings();
        let Some(g) = self.group_mut(group) else { return };
        if g.members.is_empty() {
            g.protocol_type = Some(protocol_type.to_string());
        }
        if let Some(i) = &member.instance_id {
            g.static_members.insert(i.clone(), member.id.clone());
        }
        g.members.insert(member.id.clone(), member);
        // Only a brand-new group's first join keeps waiting while members arrive.
        if g.state == GroupState::PreparingRebalance && g.generation == 0 {
            g.new_member_added = true;
        }
        g.maybe_prepare_rebalance(now, &settings, out);
        if let Some(gen) = g.try_complete_join(now, out) {
            self.commit_generation(group, gen, GenerationPurpose::Empty, out);
        }
    }

    /// A fresh suffix for a member id, unique within this broker's lifetime
    /// and across restarts (the incarnation is random), in UUID form.
    fn fresh_member_suffix(&mut self) -> String {
        let n = self.fresh_id();
        let a = mix(self.cfg.incarnation ^ n.rotate_left(17));
        let b = mix(a ^ n ^ (self.cfg.node_id as u64).rotate_left(40));
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Every member with its metadata for the group's protocol (the leader's view).
pub(crate) fn everyone(g: &super::Group) -> Vec<JoinGroupResponseMember> {
    let protocol = g.protocol.clone().unwrap_or_default();
    g.members
        .values()
        .map(|m| JoinGroupResponseMember {
            member_id: m.id.clone(),
            group_instance_id: m.instance_id.clone(),
            metadata: m.metadata(&protocol).cloned().unwrap_or_default(),
        })
        .collect()
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
