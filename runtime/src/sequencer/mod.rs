//! The sequencer: a totally ordered, durable, linearizable log of commits.
//!
//! Every broker appends its commits here and applies everything it reads back,
//! in order; offsets are a pure function of this order (see DESIGN.md, "The
//! sequencer"). This module holds the abstraction only — nothing in it knows
//! about files, etcd or simulation:
//!
//! * [`Sequencer`]: `append` a record and learn its revision, `watch` every
//!   record from a revision on, read the `current_revision`; publish a
//!   snapshot's revision (compare-and-swap) and `truncate` the log up to it.
//! * [`Watch`]: the ordered stream a watch returns.
//! * Membership: `register` a broker under a lease, `watch_members` the live
//!   set ([`members`]).
//! * [`AppendError`] / [`SequencerError`]: what can go wrong, and in
//!   particular whether an append *definitely did not happen* ([`AppendError::Failed`])
//!   or *may have happened* ([`AppendError::Unknown`]).
//!
//! Implementations: [`EmbeddedSequencer`] (an fsynced local file with group
//! commit, the single-node default), [`EtcdSequencer`] (an etcd cluster shared
//! by every broker; not in the simulator's build) and [`MemorySequencer`] (in
//! memory, with fault injection, for tests). The simulator has its own.
//!
//! Revisions are positive and increase along the log; they are what orders
//! it, and nothing may assume more. In particular they need not be dense: the
//! embedded and memory sequencers number records 1, 2, 3, ..., but etcd's
//! revision counts every change to any key, so its records' revisions have
//! gaps. `0` means "nothing yet" (`current_revision` of an empty log).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

pub mod embedded;
#[cfg(not(madsim))] // real tokio and tonic: not in the simulator's build
pub mod etcd;
pub mod members;
pub mod memory;

pub use embedded::EmbeddedSequencer;
#[cfg(not(madsim))]
pub use etcd::EtcdSequencer;
pub use members::{Member, MemberWatch, Registration};
pub use memory::MemorySequencer;

/// How many records a [`Watch`] buffers ahead of its reader. The producer side
/// waits when the buffer is full, so a slow reader costs at most this many
/// records of memory (and never slows appends down).
pub const WATCH_BUFFER: usize = 256;

/// One item of a watch stream: a durable record and its revision, or the
/// error that ended the stream.
pub type WatchItem = Result<(u64, Bytes), SequencerError>;

/// A totally ordered, durable log.
///
/// All methods take `&self`; implementations are shared (`Arc<S>` is itself a
/// `Sequencer`). The futures are `Send`, so they can be awaited from spawned
/// tasks.
pub trait Sequencer: Send + Sync {
    /// Appends one record. Resolves once the record is durable, with its
    /// revision.
    ///
    /// * `Err(AppendError::Failed(_))`: the record was not appended and never
    ///   will be; retrying is safe.
    /// * `Err(AppendError::Unknown(_))`: the record may or may not have been
    ///   appended. The caller learns the outcome from a watch stream (the
    ///   record shows up, or the caller gives up after its own timeout).
    ///
    /// Dropping the future once it has started polling also leaves the outcome
    /// unknown.
    ///
    /// Order: of two appends on one sequencer, the one first polled earlier
    /// gets the lower revision if both succeed (the runtime's appender relies
    /// on it to keep a broker's commits in the order it proposed them).
    fn append(&self, record: Bytes) -> impl Future<Output = Result<u64, AppendError>> + Send;

    /// Streams every record with revision `>= from`, in revision order: first
    /// those already durable, then new ones as they become durable. A record
    /// that is not durable is never delivered, and none is delivered twice.
    /// `from == 0` means from the beginning; `from` may be beyond the current
    /// revision (the stream then waits for it). Revisions may skip numbers
    /// (see the module docs): a gap is not a lost record.
    ///
    /// The stream ends (`None`) after it has delivered an `Err` (for example
    /// [`SequencerError::Compacted`] when records from `from` on are gone);
    /// the reader re-watches from the revision after the last one it got. It
    /// also ends when the [`Watch`] is dropped, which stops the work behind it.
    fn watch(&self, from: u64) -> impl Future<Output = Result<Watch, SequencerError>> + Send;

    /// The revision of the last durable record (0 for an empty log): a watch
    /// read up to a record with this revision has seen every append that
    /// resolved `Ok` before this call started (a linearizable read). It is
    /// always a record's revision, never a number no watch delivers.
    fn current_revision(&self) -> impl Future<Output = Result<u64, SequencerError>> + Send;

    // Membership (see the contract in [`members`]).

    /// Puts `me` in the live-broker set under a lease of `ttl`, kept alive
    /// (and re-granted if it lapsed) in the background until the returned
    /// [`Registration`] is dropped, which removes `me` (best effort).
    fn register(&self, me: Member, ttl: Duration) -> impl Future<Output = Result<Registration, SequencerError>> + Send;

    /// Streams the live-broker set: now, then after each change.
    fn watch_members(&self) -> impl Future<Output = Result<MemberWatch, SequencerError>> + Send;

    // Snapshots (DESIGN.md, "The sequencer"): a pointer to the newest
    // snapshot object, moved forward only, and truncation of the log up to it.

    /// The revision of the newest published snapshot (`snapshots/{R:020}` in
    /// the object store), if any. A broker starts from it and watches from R + 1.
    fn snapshot_revision(&self) -> impl Future<Output = Result<Option<u64>, SequencerError>> + Send;

    /// Publishes the snapshot at `revision`, whose object must already be
    /// written: a compare-and-swap that succeeds (`Ok(true)`) only if
    /// `revision` is newer than the published one and not beyond the log.
    /// `Ok(false)`: not published (an equal or newer one is, or this sequencer
    /// keeps no snapshots). `Err`: the outcome may be unknown; read
    /// [`snapshot_revision`](Self::snapshot_revision) to learn it.
    fn publish_snapshot(&self, revision: u64) -> impl Future<Output = Result<bool, SequencerError>> + Send;

    /// Deletes the log's records up to and including `through`, which must be
    /// at or below the published snapshot ([`SequencerError::BeyondSnapshot`]
    /// otherwise). A later watch from a truncated revision gets
    /// [`SequencerError::Compacted`]; the current revision does not change.
    fn truncate(&self, through: u64) -> impl Future<Output = Result<(), SequencerError>> + Send;
}

impl<S: Sequencer + ?Sized> Sequencer for Arc<S> {
    fn append(&self, record: Bytes) -> impl Future<Output = Result<u64, AppendError>> + Send {
        (**self).append(record)
    }
    fn watch(&self, from: u64) -> impl Future<Output = Result<Watch, SequencerError>> + Send {
        (**self).watch(from)
    }
    fn current_revision(&self) -> impl Future<Output = Result<u64, SequencerError>> + Send {
        (**self).current_revision()
    }

    // Membership
    fn register(&self, me: Member, ttl: Duration) -> impl Future<Output = Result<Registration, SequencerError>> + Send {
        (**self).register(me, ttl)
    }
    fn watch_members(&self) -> impl Future<Output = Result<MemberWatch, SequencerError>> + Send {
        (**self).watch_members()
    }

    // Snapshots
    fn snapshot_revision(&self) -> impl Future<Output = Result<Option<u64>, SequencerError>> + Send {
        (**self).snapshot_revision()
    }
    fn publish_snapshot(&self, revision: u64) -> impl Future<Output = Result<bool, SequencerError>> + Send {
        (**self).publish_snapshot(revision)
    }
    fn truncate(&self, through: u64) -> impl Future<Output = Result<(), SequencerError>> + Send {
        (**self).truncate(through)
    }
}

/// The stream returned by [`Sequencer::watch`]: a bounded channel fed by the
/// implementation.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<WatchItem>,
}

impl Watch {
    /// Wraps the receiving end of a channel. Implementations feed the sending
    /// end with records in revision order, and stop when it reports closed.
    pub fn from_receiver(rx: mpsc::Receiver<WatchItem>) -> Self {
        Watch { rx }
    }

    /// A bounded channel of [`WATCH_BUFFER`] items and the `Watch` reading it.
    pub fn channel() -> (mpsc::Sender<WatchItem>, Watch) {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        (tx, Watch { rx })
    }

    /// The next record `(revision, payload)`, an error (after which the stream
    /// ends), or `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<WatchItem> {
        self.rx.recv().await
    }
}

/// Why an append did not resolve with a revision.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The record was definitely not appended (and never will be).
    #[error("append failed, the record was not appended: {0}")]
    Failed(#[source] SequencerError),
    /// The record may have been appended; watch the log to find out.
    #[error("append outcome unknown, the record may have been appended: {0}")]
    Unknown(#[source] SequencerError),
}

impl AppendError {
    /// The underlying error.
    pub fn cause(&self) -> &SequencerError {
        match self {
            AppendError::Failed(e) | AppendError::Unknown(e) => e,
        }
    }

    /// True when the record may have been appended.
    pub fn is_unknown(&self) -> bool {
        matches!(self, AppendError::Unknown(_))
    }
}

/// Errors of a sequencer. `Clone`, because one error may end many watches.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SequencerError {
    /// An I/O error; `context` says what was being done.
    #[error("sequencer I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The log's header is not one this build can read.
    #[error(
        "sequencer log {path} has a bad header: {detail}. The log was not opened. \
         If this is the right file, restore it from a backup; otherwise move it aside \
         (the sequencer then starts an empty log, and brokers lose every commit it held)"
    )]
    CorruptHeader { path: PathBuf, detail: String },
    /// A record inside the log is damaged and is not a torn write at the tail
    /// (valid records follow it), so opening would drop acknowledged records.
    #[error(
        "sequencer log {path} is corrupt at byte {offset}, record (revision) {revision}: {detail}. \
         This is not a torn write from a crash, because valid records follow it, so the log \
         was not opened rather than silently dropping acknowledged commits. To recover: \
         restore {path} from a backup; or truncate it to {offset} bytes to keep the {kept} \
         records before the damage (losing everything after); or move it aside to start \
         an empty log"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        revision: u64,
        /// Records before the damage (what truncating to `offset` keeps).
        kept: u64,
        detail: String,
    },
    /// Another sequencer (this process or another) has the log open.
    #[error(
        "sequencer log in {path} is locked by another process (or another sequencer in this \
         process); two writers would corrupt it. Stop the other broker, or use another data directory"
    )]
    Locked { path: PathBuf },
    /// The record is larger than the sequencer accepts.
    #[error("record of {size} bytes exceeds the sequencer's limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// The requested revision is older than the oldest one the log keeps.
    #[error(
        "revision {requested} is no longer in the log, which starts at revision {first_available}"
    )]
    Compacted {
        requested: u64,
        first_available: u64,
    },
    /// The sequencer stopped after an error it cannot recover from in this
    /// process (e.g. a failed fsync); restart to recover from the durable log.
    #[error("the sequencer stopped after a fatal error: {reason}")]
    Fatal { reason: String },
    /// The sequencer was shut down.
    #[error("the sequencer is closed")]
    Closed,
    /// The sequencer cannot be reached right now (e.g. a remote one); the
    /// operation may succeed later.
    #[error("the sequencer is unavailable: {0}")]
    Unavailable(String),
    /// Truncation past the published snapshot was refused (brokers could not
    /// start any more: the commits would be in neither the log nor a snapshot).
    #[error("cannot truncate the log through revision {through}: the published snapshot is at {snapshot:?}")]
    BeyondSnapshot { through: u64, snapshot: Option<u64> },
}

impl SequencerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SequencerError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}
