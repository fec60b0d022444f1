//! Starting from a snapshot, taking one, and reloading one in place (a broker
//! whose next commit was truncated from the sequencer: DESIGN.md, "The
//! sequencer", Snapshots).

use bytes::Bytes;

use super::{Broker, BrokerConfig};
use crate::io::Output;
use crate::log::snapshot;
use crate::log::state::LogState;

impl Broker {
    /// A broker starting from `state` (a decoded snapshot at revision R): the
    /// runtime then feeds it the commits from R + 1 on.
    pub fn from_snapshot(cfg: BrokerConfig, state: LogState) -> Self {
        let mut broker = Broker::new(cfg);
        broker.log = state;
        broker
    }

    /// The encoded snapshot of the applied state, and the revision it is at.
    /// Every broker that has applied up to that revision encodes the same bytes.
    pub fn snapshot(&self) -> (u64, Bytes) {
        (self.log.revision, snapshot::encode(&self.log))
    }

    /// Replaces the applied state with `state`, a snapshot newer than it (the
    /// commits in between are gone from the sequencer, so they will never be
    /// applied here). Returns false, changing nothing, for an older snapshot.
    ///
    /// What waited on those commits is settled: a proposal of ours whose
    /// revision the snapshot covers fails with a retriable error (its outcome
    /// is in the snapshot, but not the per-request verdict); proposals whose
    /// revision is unknown keep waiting for their timeout. Loaded groups are
    /// unloaded (members hear NOT_COORDINATOR and find the coordinator again,
    /// which reloads the group from the new state); parked fetches are re-planned.
    pub fn reload(&mut self, state: LogState, out: &mut Vec<Output>) -> bool {
        if state.revision <= self.log.revision {
            return false;
        }
        self.log = state;
        self.flush_limits = None;
        self.fail_unmatched_appends(out);
        let loaded: Vec<String> = self.groups.groups.keys().cloned().collect();
        for group in loaded {
            self.unload_group(&group, crate::error_code::NOT_COORDINATOR, out);
        }
        let touched = self.fetch.waiting_partitions();
        self.wake_fetches(&touched, out);
        self.arm_retention(out);
        true
    }
}
