//! Object garbage collection: deletes the objects no extent references any
//! more — those retention, DeleteRecords or DeleteTopics left behind, and the
//! orphans of flushes whose commit never made it (a crash between the object
//! write and the append, a failed append).
//!
//! Deleting is fenced through the log, like everything else that must not
//! race: a commit naming an object may still be on its way (an append delayed
//! by the network lands long after its broker gave up on it), so "nothing
//! references it now" is not enough. A pass:
//!
//! 1. every `object_gc_interval_ms` one broker (the rendezvous choice for
//!    [`GC_KEY`], so a cluster lists the store once per pass) lists `objects/`;
//! 2. candidates are the objects older than the grace period that the applied
//!    state does not reference; it proposes `FenceObjects { below: R }` with R
//!    past every candidate's creation revision (in its key);
//! 3. once the fence is applied no commit can name a candidate any more, so
//!    the candidates still unreferenced then are deleted.
//!
//! The grace period (on the store's write time) spares objects a lagging
//! broker may still be reading after retention dropped their extents.

use std::collections::BTreeSet;

use super::{Broker, Proposal};
use crate::io::{ListedObject, Output, TimerId};
use crate::log::commit::CommitBody;
use crate::object::key::{created_at, OBJECTS_PREFIX};

/// The GC pass's timer.
pub(crate) const TIMER_OBJECT_GC: TimerId = 4;

/// The key whose rendezvous choice runs the pass.
const GC_KEY: &str = "__strata_object_gc";

/// Deletes asked for in one output, so a huge backlog goes out in slices.
const DELETE_BATCH: usize = 1000;

/// Where the pass is.
#[derive(Debug, Default)]
pub(crate) struct ObjectGc {
    /// The timer is set.
    armed: bool,
    /// A pass is under way (listing, or waiting for its fence).
    busy: bool,
}

impl Broker {
    /// Arms the pass once (the first commit applied starts it); off when the interval is 0.
    pub(crate) fn arm_object_gc(&mut self, out: &mut Vec<Output>) {
        if self.object_gc.armed || self.cfg.object_gc_interval_ms == 0 {
            return;
        }
        self.object_gc.armed = true;
        out.push(Output::SetTimer { timer: TIMER_OBJECT_GC, at_ms: self.now_ms + self.cfg.object_gc_interval_ms });
    }

    /// The pass's timer fired: list the objects if this broker runs the pass.
    pub(crate) fn on_object_gc_timer(&mut self, out: &mut Vec<Output>) {
        self.object_gc.armed = false;
        if !self.object_gc.busy && self.coordinator_for(GC_KEY).node_id == self.cfg.node_id {
            self.object_gc.busy = true;
            out.push(Output::ListObjects { prefix: OBJECTS_PREFIX.into() });
        }
        self.arm_object_gc(out);
    }

    /// The listing came back: fence the candidates, or delete them at once
    /// when the fence in force already covers them all.
    pub(crate) fn on_objects_listed(&mut self, result: Result<Vec<ListedObject>, String>, out: &mut Vec<Output>) {
        // A failed listing was logged by the runtime; the next pass lists again.
        let listed = result.unwrap_or_default();
        let grace = self.object_gc_grace_ms();
        let candidates: Vec<String> = {
            let referenced = self.referenced_objects();
            listed
                .into_iter()
                .filter(|o| o.key.starts_with(OBJECTS_PREFIX))
                .filter(|o| o.last_modified_ms.saturating_add(grace) <= self.now_ms)
                .filter(|o| !referenced.contains(o.key.as_str()))
                .map(|o| o.key)
                .collect()
        };
        let Some(below) = candidates.iter().map(|k| created_at(k) + 1).max() else {
            self.object_gc.busy = false;
            return;
        };
        #[cfg(feature = "sim-bugs")] // PLANTED BUG gc-without-fence: what is unreferenced now is deleted now
        if crate::sim_bugs::active(crate::sim_bugs::Bug::GcWithoutFence) {
            self.object_gc.busy = false;
            for keys in candidates.chunks(DELETE_BATCH) {
                out.push(Output::DeleteObjects { keys: keys.to_vec() });
            }
            return;
        }
        if below <= self.log.object_fence {
            self.delete_fenced(candidates, out);
        } else {
            self.propose(CommitBody::FenceObjects { below }, Proposal::ObjectGc(candidates), out);
        }
    }

    /// Our fence was applied: what it covers and nothing references is garbage.
    pub(crate) fn delete_fenced(&mut self, candidates: Vec<String>, out: &mut Vec<Output>) {
        self.object_gc.busy = false;
        let doomed: Vec<String> = {
            let referenced = self.referenced_objects();
            candidates
                .into_iter()
                .filter(|k| created_at(k) < self.log.object_fence && !referenced.contains(k.as_str()))
                .collect()
        };
        for keys in doomed.chunks(DELETE_BATCH) {
            out.push(Output::DeleteObjects { keys: keys.to_vec() });
        }
    }

    /// The fence was not appended: the next pass tries again.
    pub(crate) fn object_gc_failed(&mut self) {
        self.object_gc.busy = false;
    }

    fn referenced_objects(&self) -> BTreeSet<&str> {
        self.log
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.extents.iter())
            .map(|e| &*e.object)
            .collect()
    }

    /// The grace period: the configured one, but never less than twice the
    /// request timeout.
    fn object_gc_grace_ms(&self) -> u64 {
        self.cfg.object_gc_grace_ms.max(self.cfg.request_timeout_ms.saturating_mul(2))
    }
}
