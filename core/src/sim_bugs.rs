//! PLANTED BUGS for the simulator (`strata-sim --bug NAME`), compiled only with
//! the `sim-bugs` feature, which no real build enables. Each planted bug is a
//! tiny `#[cfg(feature = "sim-bugs")]` block at the place it breaks, guarded by
//! [`active`]; the simulator must catch every one of them (see sim/).

use std::sync::atomic::{AtomicU8, Ordering};

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Bug {
    /// Answer a produce once its object is written, before its commit is applied.
    AckBeforeApply = 1,
    /// The apply appends an idempotent retry again instead of answering it as a duplicate.
    SkipDedup = 2,
    /// After a sequencer watch reconnect, apply the last applied commit again.
    DoubleApply = 3,
    /// A fetch beyond the log end gets an empty answer instead of OFFSET_OUT_OF_RANGE.
    FetchBeyondEnd = 4,
    /// A failed object write is treated as written: the object is lost, its requests are not failed.
    LoseFailedObject = 5,
    /// The group coordinator takes an OffsetCommit without checking its member and generation.
    CommitAnyGeneration = 6,
    /// A claim of a group drops its committed offsets (a new coordinator starts without them).
    ForgetOffsetsOnClaim = 7,
    /// The object GC deletes unreferenced objects without fencing them first.
    GcWithoutFence = 8,
}

/// Every planted bug, by name.
pub const ALL: [(&str, Bug); 8] = [
    ("ack-before-apply", Bug::AckBeforeApply),
    ("skip-dedup", Bug::SkipDedup),
    ("double-apply", Bug::DoubleApply),
    ("fetch-beyond-end", Bug::FetchBeyondEnd),
    ("lose-failed-object", Bug::LoseFailedObject),
    ("commit-any-generation", Bug::CommitAnyGeneration),
    ("forget-offsets-on-claim", Bug::ForgetOffsetsOnClaim),
    ("gc-without-fence", Bug::GcWithoutFence),
];

static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Selects the planted bug in force (process-wide), or none.
pub fn set(bug: Option<Bug>) {
    ACTIVE.store(bug.map_or(0, |b| b as u8), Ordering::Relaxed);
}

/// True when `bug` is the planted bug in force.
pub fn active(bug: Bug) -> bool {
    ACTIVE.load(Ordering::Relaxed) == bug as u8
}

/// The bug called `name`.
pub fn by_name(name: &str) -> Option<Bug> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
