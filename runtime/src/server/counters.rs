//! Counters of where object reads went (peer or object store) and what this
//! broker served to peers; the admin Status reports them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters since start, shared by the driver's read tasks and the
/// internal gRPC service.
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Ranged GETs sent to the object store for reads the core asked for.
    pub store_gets: AtomicU64,
    /// Reads answered by a peer instead of the object store.
    pub peer_reads_used: AtomicU64,
    /// Peer reads tried that gave nothing (not held there, error, timeout).
    pub peer_reads_missed: AtomicU64,
    /// Peer reads this broker answered with data, and their bytes.
    pub peer_reads_served: AtomicU64,
    pub peer_bytes_served: AtomicU64,
}

/// A copy of [`ReadCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub store_gets: u64,
    pub peer_reads_used: u64,
    pub peer_reads_missed: u64,
    pub peer_reads_served: u64,
    pub peer_bytes_served: u64,
}

impl ReadCounters {
    /// Adds one to `counter` (relaxed: counts, not synchronisation).
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ReadCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReadCounts {
            store_gets: get(&self.store_gets),
            peer_reads_used: get(&self.peer_reads_used),
            peer_reads_missed: get(&self.peer_reads_missed),
            peer_reads_served: get(&self.peer_reads_served),
            peer_bytes_served: get(&self.peer_bytes_served),
        }
    }
}
