//! What the admin surface (internal gRPC, `strata admin`) asks of the driver,
//! and what the driver answers: the core's status, and flush / drain, which
//! answer once every object started up to then is committed (or failed).

use bytes::Bytes;
use strata_core::broker::{Broker, FlushProgress, Peer};
use tokio::sync::oneshot;

/// An operator's request, carried to the driver ([`super::driver::DriverMsg::Admin`]).
#[derive(Debug)]
pub enum AdminRequest {
    /// The core's view of itself.
    Status(oneshot::Sender<CoreStatus>),
    /// Write the open object now; answer once it and every object before it are committed.
    Flush(oneshot::Sender<Flushed>),
    /// Drain ([`Broker::drain`]), then answer as [`AdminRequest::Flush`] does.
    Drain(oneshot::Sender<Flushed>),
}

/// The core's side of the admin Status.
#[derive(Debug, Clone)]
pub struct CoreStatus {
    pub node_id: i32,
    pub cluster_id: String,
    pub applied_revision: u64,
    /// The live set the core names leaders from (a draining broker is not in it).
    pub members: Vec<Peer>,
    pub topics: usize,
    pub partitions: usize,
    pub flush: FlushProgress,
    pub draining: bool,
}

impl CoreStatus {
    /// `broker`'s status now.
    pub fn of(broker: &Broker) -> Self {
        let log = broker.log();
        CoreStatus {
            node_id: broker.config().node_id,
            cluster_id: broker.config().cluster_id.clone(),
            applied_revision: log.revision,
            members: broker.live_members().to_vec(),
            topics: log.topics.len(),
            partitions: log.topics.values().map(|t| t.partitions.len()).sum(),
            flush: broker.flush_progress(),
            draining: broker.draining(),
        }
    }
}

/// The answer to a flush or drain: every object started before it was asked
/// for is committed and applied, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Objects that were open or in flight when it was asked for.
    pub objects: u64,
    /// Objects that failed meanwhile (their producers were told to retry).
    pub failed: u64,
    /// The applied revision once they were settled.
    pub applied_revision: u64,
}

/// A flush or drain waiting for its objects.
#[derive(Debug)]
pub(crate) struct FlushWaiter {
    /// Flush ids below this must be settled.
    started: u64,
    objects: u64,
    failed_before: u64,
    reply: oneshot::Sender<Flushed>,
}

impl FlushWaiter {
    /// A waiter for what `broker` has started so far (call after it wrote its open object).
    pub(crate) fn new(broker: &Broker, objects: u64, failed_before: u64, reply: oneshot::Sender<Flushed>) -> Self {
        FlushWaiter { started: broker.flush_progress().started, objects, failed_before, reply }
    }

    /// Answers and returns `None` once `broker` has settled the waiter's objects; else gives it back.
    pub(crate) fn settle(self, broker: &Broker) -> Option<Self> {
        if !broker.flushed_before(self.started) {
            return Some(self);
        }
        let progress = broker.flush_progress();
        let _ = self.reply.send(Flushed {
            objects: self.objects,
            failed: progress.failed.saturating_sub(self.failed_before),
            applied_revision: broker.log().revision,
        });
        None
    }
}

/// Why a peer read of a recent object is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerReadRefusal {
    /// This broker does not hold the object in memory (never wrote it, or evicted it).
    #[error("object not held in memory here")]
    NotHeld,
    /// The range is not inside the object.
    #[error("range {start}..{end} is outside the object's {size} bytes")]
    OutOfRange { start: u64, end: u64, size: u64 },
}

/// The bytes of `range` of recent object `key`, if `broker` holds it.
pub fn read_recent(broker: &Broker, key: &str, range: std::ops::Range<u64>) -> Result<Bytes, PeerReadRefusal> {
    let object = broker.recent_object(key).ok_or(PeerReadRefusal::NotHeld)?;
    let size = object.len() as u64;
    object.slice(range.clone()).ok_or(PeerReadRefusal::OutOfRange { start: range.start, end: range.end, size })
}
