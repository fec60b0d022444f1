//! Group administration: DescribeGroups, ListGroups, DeleteGroups and
//! OffsetDelete, as Kafka's AdminClient uses them.

use std::collections::BTreeSet;

use strata_proto::messages::delete_groups_response::DeletableGroupResult;
use strata_proto::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use strata_proto::messages::list_groups_response::ListedGroup;
use strata_proto::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use strata_proto::messages::*;

use super::consumer_protocol::subscribed_topics;
use super::sync::failure_code;
use super::{GroupProposal, GroupState};
use crate::broker::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;
use crate::log::group::{GroupCommit, GroupOp};

/// Kafka's "authorized operations not requested" marker.
const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// Operations a describer may perform on a group (no ACLs yet: all of
/// READ, DESCRIBE, DELETE), as a bit set of Kafka's AclOperation codes.
const GROUP_OPS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// A DeleteGroups request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingDeleteGroups {
    req: ReqInfo,
    response: DeleteGroupsResponse,
    /// Result slots the commit's operations decide, in order.
    slots: Vec<usize>,
}

impl PendingDeleteGroups {
    /// How many deletions it waits for.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

/// An OffsetDelete request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingOffsetDelete {
    req: ReqInfo,
    group: String,
    response: OffsetDeleteResponse,
}

impl Broker {
    pub(crate) fn on_describe_groups(&mut self, req: ReqInfo, r: DescribeGroupsRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        let ops = if r.include_authorized_operations { GROUP_OPS } else { OPS_NOT_REQUESTED };
        let groups = r.groups.iter().map(|id| self.describe_group(v, id, ops)).collect();
        respond(out, &req, DescribeGroupsResponse { groups, ..Default::default() });
    }

    fn describe_group(&mut self, v: i16, id: &str, ops: i32) -> DescribedGroup {
        let base = DescribedGroup { group_id: id.to_string(), authorized_operations: ops, ..Default::default() };
        if id.is_empty() {
            return DescribedGroup { error_code: ec::INVALID_GROUP_ID, ..base };
        }
        let exists = self.log.groups.get(id).is_some_and(|g| g.exists());
        let Some(g) = self.group_mut(id) else { return DescribedGroup { error_code: ec::NOT_COORDINATOR, ..base } };
        if !exists && g.members.is_empty() {
            // Kafka: Dead for a group it does not know; v6+ says so with an error.
            return DescribedGroup {
                error_code: if v >= 6 { ec::GROUP_ID_NOT_FOUND } else { ec::NONE },
                error_message: (v >= 6).then(|| format!("Group {id} not found.")),
                group_state: "Dead".into(),
                ..base
            };
        }
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| DescribedGroupMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                // Kafka shows metadata and assignment only when Stable.
                member_metadata: if stable { m.metadata(&protocol).cloned().unwrap_or_default() } else { Default::default() },
                member_assignment: if stable { m.assignment.clone() } else { Default::default() },
            })
            .collect();
        DescribedGroup {
            group_state: g.state.name().into(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
            ..base
        }
    }

    pub(crate) fn on_list_groups(&mut self, req: ReqInfo, r: ListGroupsRequest, out: &mut Vec<Output>) {
        let states: BTreeSet<String> = r.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
        let types: BTreeSet<String> = r.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
        let mut ids: BTreeSet<&String> = self.log.groups.iter().filter(|(_, g)| g.exists()).map(|(id, _)| id).collect();
        ids.extend(self.groups.groups.iter().filter(|(_, g)| !g.members.is_empty()).map(|(id, _)| id));
        let mut groups = Vec::new();
        for id in ids {
            if !self.coordinates(id) {
                continue;
            }
            // Loaded groups know their state; others are as their last generation left them.
            let (state, protocol_type) = match self.groups.groups.get(id) {
                Some(g) => (g.state.name(), g.protocol_type.clone().unwrap_or_default()),
                None => {
                    let gen = self.log.groups.get(id).and_then(|g| g.generation.as_ref());
                    let state = if gen.is_some_and(|g| !g.members.is_empty()) { "Stable" } else { "Empty" };
                    (state, gen.and_then(|g| g.protocol_type.clone()).unwrap_or_default())
                }
            };
            if !states.is_empty() && !states.contains(&state.to_ascii_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.contains("classic") {
                continue;
            }
            groups.push(ListedGroup { group_id: id.clone(), protocol_type, group_state: state.into(), group_type: "classic".into() });
        }
        respond(out, &req, ListGroupsResponse { error_code: ec::NONE, groups, ..Default::default() });
    }

    pub(crate) fn on_delete_groups(&mut self, req: ReqInfo, r: DeleteGroupsRequest, out: &mut Vec<Output>) {
        let mut response = DeleteGroupsResponse::default();
        let mut commits = Vec::new();
        let mut slots = Vec::new();
        for (i, id) in r.groups_names.iter().enumerate() {
            let exists = self.log.groups.get(id).is_some_and(|g| g.exists());
            let code = if id.is_empty() {
                ec::INVALID_GROUP_ID
            } else {
                match self.group_mut(id) {
                    None => ec::NOT_COORDINATOR,
                    Some(g) if !g.members.is_empty() => ec::NON_EMPTY_GROUP,
                    Some(_) if !exists => ec::GROUP_ID_NOT_FOUND,
                    Some(_) => {
                        commits.push(GroupCommit { group: id.clone(), epoch: self.group_epoch(id), op: GroupOp::Delete });
                        slots.push(i);
                        ec::NONE
                    }
                }
            };
            response.results.push(DeletableGroupResult { group_id: id.clone(), error_code: code });
        }
        if commits.is_empty() {
            return respond(out, &req, response);
        }
        let pending = PendingDeleteGroups { req, response, slots };
        self.propose(CommitBody::Groups(commits), Proposal::Group(GroupProposal::DeleteGroups(pending)), out);
    }

    /// The deletions were applied (per group `Ok`) or refused / failed.
    pub(crate) fn on_groups_deleted(&mut self, pending: PendingDeleteGroups, verdicts: &[Result<(), i16>], out: &mut Vec<Output>) {
        let PendingDeleteGroups { req, mut response, slots } = pending;
        for (slot, verdict) in slots.into_iter().zip(verdicts) {
            let Some(result) = response.results.get_mut(slot) else { continue };
            match verdict {
                Ok(()) => {
                    let id = result.group_id.clone();
                    self.unload_group(&id, ec::NOT_COORDINATOR, out);
                }
                Err(code) => result.error_code = failure_code(*code),
            }
        }
        respond(out, &req, response);
    }

    pub(crate) fn on_offset_delete(&mut self, req: ReqInfo, r: OffsetDeleteRequest, out: &mut Vec<Output>) {
        let top = |code: i16| OffsetDeleteResponse { error_code: code, ..Default::default() };
        if r.group_id.is_empty() {
            return respond(out, &req, top(ec::INVALID_GROUP_ID));
        }
        let exists = self.log.groups.get(&r.group_id).is_some_and(|g| g.exists());
        let Some(g) = self.group_mut(&r.group_id) else { return respond(out, &req, top(ec::NOT_COORDINATOR)) };
        if !exists && g.members.is_empty() {
            return respond(out, &req, top(ec::GROUP_ID_NOT_FOUND));
        }
        // Topics members consume: their offsets stay (GROUP_SUBSCRIBED_TO_TOPIC).
        let subscribed: Option<BTreeSet<String>> = if g.members.is_empty() {
            Some(BTreeSet::new())
        } else if g.protocol_type.as_deref() == Some("consumer") {
            let protocol = g.protocol.clone().unwrap_or_default();
            Some(g.members.values().filter_map(|m| m.metadata(&protocol)).filter_map(subscribed_topics).flatten().collect())
        } else {
            None
        };
        let Some(subscribed) = subscribed else { return respond(out, &req, top(ec::NON_EMPTY_GROUP)) };
        let mut response = top(ec::NONE);
        let mut deletes = Vec::new();
        for t in &r.topics {
            let topic = self.log.topics.get(&t.name);
            let mut tr = OffsetDeleteResponseTopic { name: t.name.clone(), partitions: Vec::new() };
            for p in &t.partitions {
                let exists = topic.is_some_and(|tp| usize::try_from(p.partition_index).is_ok_and(|i| i < tp.partitions.len()));
                let code = if !exists {
                    ec::UNKNOWN_TOPIC_OR_PARTITION
                } else if subscribed.contains(&t.name) {
                    ec::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    deletes.push((t.name.clone(), p.partition_index));
                    ec::NONE
                };
                tr.partitions.push(OffsetDeleteResponsePartition { partition_index: p.partition_index, error_code: code });
            }
            response.topics.push(tr);
        }
        if deletes.is_empty() {
            return respond(out, &req, response);
        }
        let commit = GroupCommit { group: r.group_id.clone(), epoch: self.group_epoch(&r.group_id), op: GroupOp::DeleteOffsets(deletes) };
        let pending = PendingOffsetDelete { req, group: r.group_id.clone(), response };
        self.propose(CommitBody::Groups(vec![commit]), Proposal::Group(GroupProposal::DeleteOffsets(pending)), out);
    }

    /// The offset deletion was applied or refused / failed.
    pub(crate) fn on_offsets_deleted(&mut self, pending: PendingOffsetDelete, verdict: Result<(), i16>, out: &mut Vec<Output>) {
        let PendingOffsetDelete { req, group, mut response } = pending;
        if let Err(code) = verdict {
            response = OffsetDeleteResponse { error_code: failure_code(code), ..Default::default() };
            if code == ec::NOT_COORDINATOR {
                self.unload_group(&group, ec::NOT_COORDINATOR, out);
            }
        }
        respond(out, &req, response);
    }
}
