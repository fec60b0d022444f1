//! Claiming groups: before a broker acts as a group's coordinator it appends
//! a claim that bumps the group's coordinator epoch. Requests for groups
//! being claimed wait here. The claim's apply is also a barrier: once it is
//! applied, this broker has applied everything the previous coordinator
//! committed, so it resumes from the latest generation and offsets.

use strata_proto::RequestBody;

use super::{errors, GroupProposal, MAX_PARKED};
use crate::broker::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;
use crate::log::group::{GroupCommit, GroupOp};

/// A group request waiting for claims.
#[derive(Debug)]
pub(crate) struct Parked {
    /// The request.
    pub req: ReqInfo,
    /// The request header's client id (JoinGroup records it).
    pub client_id: String,
    /// The request body.
    pub body: RequestBody,
    /// Groups still being claimed.
    waiting: Vec<String>,
}

impl Parked {
    /// A request not waiting for anything yet.
    pub fn new(req: ReqInfo, client_id: String, body: RequestBody) -> Parked {
        Parked { req, client_id, body, waiting: Vec::new() }
    }
}

impl Broker {
    /// Handles the request now if this broker holds its groups (or is not
    /// their coordinator, which the handler answers); otherwise claims them
    /// and parks the request until the claims are decided.
    pub(super) fn gate_group_request(&mut self, mut parked: Parked, out: &mut Vec<Output>) {
        let need: Vec<String> = errors::groups_of(&parked.body)
            .into_iter()
            .filter(|g| !g.is_empty() && self.coordinates(g) && !self.holds(g))
            .collect();
        if need.is_empty() {
            return self.dispatch_group_request(parked, out);
        }
        if self.groups.parked.len() >= MAX_PARKED {
            let body = errors::error_response(&parked.body, parked.req.api_version, ec::COORDINATOR_LOAD_IN_PROGRESS);
            return respond(out, &parked.req, body);
        }
        let mut to_claim: Vec<String> = need.iter().filter(|g| !self.groups.claiming.contains_key(*g)).cloned().collect();
        to_claim.sort();
        to_claim.dedup();
        if !to_claim.is_empty() {
            let commits = to_claim
                .iter()
                .map(|g| GroupCommit { group: g.clone(), epoch: self.group_epoch(g), op: GroupOp::Claim })
                .collect();
            for g in &to_claim {
                self.groups.claiming.insert(g.clone(), ());
            }
            self.propose(CommitBody::Groups(commits), Proposal::Group(GroupProposal::Claim(to_claim)), out);
        }
        parked.waiting = need;
        self.groups.parked.push(parked);
    }

    /// The claims of `groups` are decided (won, lost, or failed): requests
    /// that waited only for them are handled now. The handlers answer
    /// NOT_COORDINATOR for groups this broker did not get.
    pub(super) fn on_claims_decided(&mut self, groups: &[String], out: &mut Vec<Output>) {
        for g in groups {
            self.groups.claiming.remove(g);
            // A group loaded under an earlier epoch is stale: reload from the log.
            self.unload_group(g, ec::NOT_COORDINATOR, out);
        }
        let mut ready = Vec::new();
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut self.groups.parked) {
            p.waiting.retain(|g| !groups.contains(g));
            if p.waiting.is_empty() {
                ready.push(p);
            } else {
                still.push(p);
            }
        }
        self.groups.parked = still;
        for p in ready {
            self.dispatch_group_request(p, out);
        }
    }

    /// Forgets the in-memory group, answering what it waits on with `code`.
    pub(crate) fn unload_group(&mut self, group: &str, code: i16, out: &mut Vec<Output>) {
        if let Some(mut g) = self.groups.groups.remove(group) {
            g.fence(code, out);
            self.groups.timers.remove(&g.timer);
        }
    }

    /// After any group commit is applied: groups this broker has loaded but no
    /// longer holds (another broker claimed them) are dropped.
    pub(crate) fn on_group_commits_applied(&mut self, commits: &[GroupCommit], out: &mut Vec<Output>) {
        for c in commits {
            if self.groups.groups.contains_key(&c.group) && !self.holds(&c.group) {
                self.unload_group(&c.group, ec::NOT_COORDINATOR, out);
            }
        }
    }
}
