//! A group member as the coordinator tracks it between commits.

use bytes::Bytes;

use crate::broker::ReqInfo;
use crate::log::group::MemberRecord;

/// One member of a loaded group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Member id (given by the coordinator).
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout it asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout it asked for.
    pub rebalance_timeout_ms: i32,
    /// Its protocols (assignor name, metadata), most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub assignment: Bytes,
    /// When its session ends unless it heartbeats.
    pub heartbeat_deadline: u64,
    /// Its JoinGroup, answered when the join phase completes.
    pub awaiting_join: Option<ReqInfo>,
    /// Its SyncGroup, answered when the generation is committed.
    pub awaiting_sync: Option<ReqInfo>,
    /// Joined in the current rebalance and not answered yet.
    pub is_new: bool,
    /// When it joined (for the new-member join timeout).
    pub joined_at: u64,
    /// Sent its SyncGroup for the current generation.
    pub synced: bool,
}

impl Member {
    /// Its metadata for `protocol`, if it supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m)
    }

    /// Whether it lists exactly these protocols (names and metadata, in order).
    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// Whether it supports `protocol`.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    /// Its record in a generation commit.
    pub fn record(&self, protocol: Option<&str>) -> MemberRecord {
        MemberRecord {
            member_id: self.id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            subscription: protocol.and_then(|p| self.metadata(p)).cloned().unwrap_or_default(),
            assignment: self.assignment.clone(),
        }
    }

    /// A member of a committed generation, as a new coordinator loads it.
    pub fn from_record(r: &MemberRecord, protocol: Option<&str>, now: u64) -> Member {
        Member {
            id: r.member_id.clone(),
            instance_id: r.instance_id.clone(),
            client_id: r.client_id.clone(),
            client_host: r.client_host.clone(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocols: protocol.map(|p| vec![(p.to_string(), r.subscription.clone())]).unwrap_or_default(),
            assignment: r.assignment.clone(),
            heartbeat_deadline: now + session_ms(r.session_timeout_ms),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            joined_at: now,
            synced: true,
        }
    }

    /// When the coordinator should drop it if nothing else happens, or None
    /// while it waits on the coordinator (a join or sync in progress).
    pub fn expires_at(&self) -> Option<u64> {
        if self.awaiting_join.is_some() {
            return self.is_new.then_some(self.joined_at + super::NEW_MEMBER_JOIN_TIMEOUT_MS);
        }
        if self.awaiting_sync.is_some() {
            return None;
        }
        Some(self.heartbeat_deadline)
    }
}

/// A session timeout in ms as a clock delta (negative reads as zero).
pub(crate) fn session_ms(timeout: i32) -> u64 {
    timeout.max(0) as u64
}
