//! LeaveGroup: members leave at once instead of timing out (v3+ batches
//! members, and static members may leave by instance id alone).

use strata_proto::messages::leave_group_response::MemberResponse;
use strata_proto::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::sync::GenerationPurpose;
use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

impl Broker {
    pub(crate) fn on_leave_group(&mut self, req: ReqInfo, r: LeaveGroupRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        let leaving: Vec<(String, Option<String>)> = if v >= 3 {
            r.members.iter().map(|m| (m.member_id.clone(), m.group_instance_id.clone())).collect()
        } else {
            vec![(r.member_id.clone(), None)]
        };
        let top = |code: i16| LeaveGroupResponse { error_code: code, ..Default::default() };
        if r.group_id.is_empty() {
            return respond(out, &req, top(ec::INVALID_GROUP_ID));
        }
        if !self.holds(&r.group_id) {
            return respond(out, &req, top(ec::NOT_COORDINATOR));
        }
        let now = self.now_ms;
        let settings = self.group_settings();
        let mut results = Vec::with_capacity(leaving.len());
        let mut commit = None;
        if let Some(g) = self.group_mut(&r.group_id) {
            for (member_id, instance_id) in leaving {
                let code = if member_id.is_empty() {
                    // A static member leaving by instance id alone.
                    match instance_id.as_ref().and_then(|i| g.static_members.get(i)).cloned() {
                        Some(id) => {
                            commit = g.remove_member(&id, now, &settings, out).or(commit);
                            ec::NONE
                        }
                        None => ec::UNKNOWN_MEMBER_ID,
                    }
                } else if g.static_fenced(instance_id.as_deref(), &member_id) {
                    ec::FENCED_INSTANCE_ID
                } else if g.pending_members.remove(&member_id).is_some() {
                    commit = g.try_complete_join(now, out).or(commit);
                    ec::NONE
                } else if g.members.contains_key(&member_id) {
                    commit = g.remove_member(&member_id, now, &settings, out).or(commit);
                    ec::NONE
                } else {
                    ec::UNKNOWN_MEMBER_ID
                };
                results.push(MemberResponse { member_id, group_instance_id: instance_id, error_code: code });
            }
        }
        let response = if v >= 3 {
            LeaveGroupResponse { error_code: ec::NONE, members: results, ..Default::default() }
        } else {
            // v0-2 name one member: its error is the request's.
            top(results.first().map_or(ec::NONE, |m| m.error_code))
        };
        respond(out, &req, response);
        if let Some(gen) = commit {
            self.commit_generation(&r.group_id, gen, GenerationPurpose::Empty, out);
        }
        self.rearm_group(&r.group_id, out);
    }
}
