//! Named points where the simulator may crash a broker on purpose: after an
//! object is durable but before its commit is appended (mid-flush), after a
//! commit is durable but before the broker hears so (mid-commit), and after
//! the core applied a commit but before its answers leave (mid-apply). These are
//! the moments a real crash is most likely to break a careless design; a kill
//! from outside lands on them only by luck.
//!
//! The driver passes them all (it is where object writes, appends and applies
//! come back to the core): at a crash it stops, and the simulator kills the
//! node. Outside the madsim build a crash point compiles to nothing.

/// Where a broker may be crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// An object was written; its commit is not appended yet.
    MidFlush,
    /// A commit is durable in the sequencer; the core has not heard so.
    MidCommit,
    /// The core applied a commit; the answers it gave are not sent yet.
    MidApply,
}

#[cfg(madsim)]
static DECIDE: std::sync::OnceLock<fn(CrashPoint, i32) -> bool> = std::sync::OnceLock::new();

/// Installs the simulator's decision whether broker `node_id` crashes at a
/// point (first call wins).
#[cfg(madsim)]
pub fn set_crash_decider(decide: fn(CrashPoint, i32) -> bool) {
    let _ = DECIDE.set(decide);
}

/// True when the simulator crashes broker `node_id` here: the caller then
/// stops all work (the simulator kills and later restarts the node). Always
/// false outside the madsim build.
#[inline]
pub fn crash_point(point: CrashPoint, node_id: i32) -> bool {
    #[cfg(madsim)]
    if DECIDE.get().is_some_and(|decide| decide(point, node_id)) {
        return true;
    }
    let _ = (point, node_id);
    false
}
