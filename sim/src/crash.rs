//! Planned broker crashes at the runtime's crash points (mid-flush,
//! mid-commit, mid-apply), drawn from the seed like every other fault. The
//! broker's driver freezes at the point; the cluster's fault injector picks
//! the request up here and kills the node, then restarts it.

use std::cell::RefCell;

use strata_runtime::server::crash_point::{set_crash_decider, CrashPoint};

use crate::chance;

/// The crash probability per crash point passed, and the crashes decided but
/// not yet carried out: (broker index, point).
struct Armed {
    p: f64,
    pending: Vec<(usize, CrashPoint)>,
}

thread_local! {
    // A seed runs on one thread, so the decider (a plain fn) finds its run here.
    static ARMED: RefCell<Option<Armed>> = const { RefCell::new(None) };
}

/// Arms crashes with probability `p` per crash point passed, for the run on
/// this thread.
pub fn arm(p: f64) {
    set_crash_decider(decide);
    ARMED.with(|a| *a.borrow_mut() = Some(Armed { p, pending: Vec::new() }));
}

/// The crashes decided since the last call, in order: (broker index, point).
pub fn take_pending() -> Vec<(usize, CrashPoint)> {
    ARMED.with(|a| a.borrow_mut().as_mut().map(|a| std::mem::take(&mut a.pending)).unwrap_or_default())
}

/// How a crash point reads in the trail.
pub fn describe(point: CrashPoint) -> &'static str {
    match point {
        CrashPoint::MidFlush => "mid-flush (object written, its commit not appended)",
        CrashPoint::MidCommit => "mid-commit (commit durable, the broker has not heard)",
        CrashPoint::MidApply => "mid-apply (commit applied, its answers not sent)",
    }
}

fn decide(point: CrashPoint, node_id: i32) -> bool {
    ARMED.with(|a| match &mut *a.borrow_mut() {
        // Brokers are numbered from 1; the cluster indexes them from 0.
        Some(armed) if node_id >= 1 && chance(armed.p) => {
            armed.pending.push((node_id as usize - 1, point));
            true
        }
        _ => false,
    })
}
