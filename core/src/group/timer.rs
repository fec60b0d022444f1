//! Group timers: each loaded group has one timer, set to its earliest
//! deadline (a session, a pending member, the end of a join or sync phase);
//! and one sweep timer expires old offsets of empty groups
//! (`offsets.retention.minutes`, checked every
//! `offsets.retention.check.interval.ms`).

use super::sync::GenerationPurpose;
use super::{GroupProposal, GroupState};
use crate::broker::{Broker, Proposal};
use crate::io::{Output, TimerId};
use crate::log::commit::CommitBody;
use crate::log::group::{GroupCommit, GroupOp};

/// The offset-expiry sweep's timer.
pub(crate) const TIMER_OFFSET_EXPIRY: TimerId = 2;

impl Broker {
    /// Sets the group's timer to its earliest deadline (and arms the expiry
    /// sweep the first time a group is touched).
    pub(crate) fn rearm_group(&mut self, group: &str, out: &mut Vec<Output>) {
        if let Some(g) = self.groups.groups.get_mut(group) {
            let next = g.next_deadline();
            if next != g.timer_at {
                if let Some(at) = next {
                    out.push(Output::SetTimer { timer: g.timer, at_ms: at });
                }
                g.timer_at = next;
            }
        }
        if !self.groups.expiry_armed && !self.groups.groups.is_empty() {
            self.groups.expiry_armed = true;
            let at = self.now_ms + self.group_settings().retention_check_ms;
            out.push(Output::SetTimer { timer: TIMER_OFFSET_EXPIRY, at_ms: at });
        }
    }

    /// Handles `timer` if it is a group timer.
    pub(crate) fn on_group_timer(&mut self, timer: TimerId, out: &mut Vec<Output>) -> bool {
        if timer == TIMER_OFFSET_EXPIRY {
            self.groups.expiry_armed = false;
            self.expire_offsets(out);
            let at = self.now_ms + self.group_settings().retention_check_ms;
            self.groups.expiry_armed = true;
            out.push(Output::SetTimer { timer: TIMER_OFFSET_EXPIRY, at_ms: at });
            return true;
        }
        let Some(group) = self.groups.timers.get(&timer).cloned() else { return false };
        let now = self.now_ms;
        let settings = self.group_settings();
        let mut commit = None;
        if let Some(g) = self.groups.groups.get_mut(&group) {
            g.timer_at = None;
            commit = g.on_timer(now, &settings, out);
        }
        if let Some(gen) = commit {
            self.commit_generation(&group, gen, GenerationPurpose::Empty, out);
        }
        self.rearm_group(&group, out);
        true
    }

    /// Removes offsets past retention from the empty groups this broker holds:
    /// an explicit expiry (OffsetCommit v2-4 retention) when given; else
    /// retention after the group became empty, or after the commit for
    /// groups that never had members. A group left with nothing is deleted.
    fn expire_offsets(&mut self, out: &mut Vec<Output>) {
        let now = self.now_ms as i64;
        let retention = self.group_settings().retention_ms;
        let mut commits = Vec::new();
        let mut groups = Vec::new();
        for (id, g) in &self.groups.groups {
            if g.state != GroupState::Empty || !self.holds(id) {
                continue;
            }
            let Some(log) = self.log.groups.get(id) else { continue };
            let expired: Vec<(String, i32)> = log
                .offsets
                .iter()
                .filter(|(_, o)| {
                    if o.expire_timestamp >= 0 {
                        now >= o.expire_timestamp
                    } else {
                        let base = if g.protocol_type.is_some() { g.state_timestamp } else { o.commit_timestamp };
                        now >= base.saturating_add(retention)
                    }
                })
                .map(|(k, _)| k.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let op = if expired.len() == log.offsets.len() { GroupOp::Delete } else { GroupOp::DeleteOffsets(expired) };
            commits.push(GroupCommit { group: id.clone(), epoch: log.epoch, op });
            groups.push(id.clone());
        }
        for (commit, group) in commits.into_iter().zip(groups) {
            self.propose(CommitBody::Groups(vec![commit]), Proposal::Group(GroupProposal::Expire(group)), out);
        }
    }
}
