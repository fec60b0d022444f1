//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use strata_proto::messages::{HeartbeatRequest, HeartbeatResponse};

use super::member::session_ms;
use super::state::GroupState;
use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

impl Broker {
    pub(crate) fn on_heartbeat(&mut self, req: ReqInfo, r: HeartbeatRequest, out: &mut Vec<Output>) {
        let code = self.heartbeat(&r);
        respond(out, &req, HeartbeatResponse { error_code: code, ..Default::default() });
        self.rearm_group(&r.group_id, out);
    }

    /// Kafka's checks, in Kafka's order; a valid heartbeat extends the session.
    fn heartbeat(&mut self, r: &HeartbeatRequest) -> i16 {
        if r.group_id.is_empty() {
            return ec::INVALID_GROUP_ID;
        }
        let now = self.now_ms;
        let Some(g) = self.group_mut(&r.group_id) else { return ec::NOT_COORDINATOR };
        if g.static_fenced(r.group_instance_id.as_deref(), &r.member_id) {
            return ec::FENCED_INSTANCE_ID;
        }
        let state = g.state;
        let generation = g.generation;
        let Some(m) = g.members.get_mut(&r.member_id) else { return ec::UNKNOWN_MEMBER_ID };
        if r.generation_id != generation {
            return ec::ILLEGAL_GENERATION;
        }
        match state {
            GroupState::Empty => ec::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
                ec::REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.heartbeat_deadline = now + session_ms(m.session_timeout_ms);
                ec::NONE
            }
        }
    }
}
