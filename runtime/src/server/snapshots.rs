//! Snapshots of the applied state (DESIGN.md, "The sequencer", Snapshots):
//! loading the newest one (at start, and when a lagging broker's next commit
//! was truncated away), and the snapshotter task that writes, publishes and
//! garbage-collects them and truncates the sequencer's log behind them.
//!
//! The state at revision R is the same on every broker, so any broker may
//! write `snapshots/{R:020}`: objects are create-only (a second writer gets
//! AlreadyExists, with the same bytes there), and the sequencer's
//! compare-and-swap keeps the published pointer moving forward only.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_core::log::snapshot::{self, SnapshotError};
use strata_core::log::state::LogState;
use tokio::sync::mpsc;

use crate::sequencer::{Sequencer, SequencerError};
use crate::store::{ObjectStoreBackend, StoreError};

/// Why the newest snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The sequencer did not say which snapshot is the newest.
    #[error("cannot read the published snapshot's revision: {0}")]
    Sequencer(#[from] SequencerError),
    /// The snapshot object could not be read.
    #[error("cannot read snapshot {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: StoreError,
    },
    /// The snapshot object is damaged or from another version.
    #[error("snapshot {key} cannot be loaded: {source}")]
    Decode {
        key: String,
        #[source]
        source: SnapshotError,
    },
    /// The object's header names another revision than its key.
    #[error("snapshot {key} holds revision {found}")]
    WrongRevision { key: String, found: u64 },
}

/// How often to re-read the pointer when the object it named is gone (a
/// newer snapshot was published, and the older one collected, in between).
const LOAD_ATTEMPTS: usize = 5;

/// The newest published snapshot, decoded; `None` when none is published.
pub async fn load_newest<S: Sequencer>(sequencer: &S, store: &ObjectStoreBackend) -> Result<Option<LogState>, LoadError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(revision) = sequencer.snapshot_revision().await? else { return Ok(None) };
        let key = snapshot::key(revision);
        let bytes = match store.get(&key).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) if attempt < LOAD_ATTEMPTS => continue,
            Err(source) => return Err(LoadError::Store { key, source }),
        };
        let state = snapshot::decode(bytes).map_err(|source| LoadError::Decode { key: key.clone(), source })?;
        if state.revision != revision {
            return Err(LoadError::WrongRevision { key, found: state.revision });
        }
        return Ok(Some(state));
    }
}

/// The snapshotter's settings.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotPolicy {
    /// Snapshot each time the applied revision crosses a multiple of this (0: never).
    pub every_commits: u64,
}

impl SnapshotPolicy {
    /// Whether applying from `before` to `after` crossed a snapshot point.
    pub fn due(&self, before: u64, after: u64) -> bool {
        self.every_commits > 0 && before / self.every_commits < after / self.every_commits
    }
}

/// The snapshotter: for each state the driver hands it (cloned at a snapshot
/// point), write the object, publish it, truncate the log behind it and
/// delete the snapshots no broker needs any more. Stops when the sequencer
/// keeps no snapshots, or when the driver goes away.
pub async fn run_snapshotter<S: Sequencer + 'static>(
    sequencer: Arc<S>,
    store: ObjectStoreBackend,
    mut rx: mpsc::Receiver<LogState>,
) {
    while let Some(state) = rx.recv().await {
        match take_snapshot(&*sequencer, &store, &state).await {
            Ok(Taken::Published { revision, bytes, previous }) => {
                tracing::info!(revision, bytes, "snapshot published");
                if let Err(e) = sequencer.truncate(revision).await {
                    tracing::warn!(revision, error = %e, "cannot truncate the sequencer log behind the snapshot");
                }
                if let Some(previous) = previous {
                    collect_older(&store, previous).await;
                }
            }
            Ok(Taken::NotNewer) => {}
            Ok(Taken::Unsupported) => {
                tracing::info!("the sequencer keeps no snapshots; the snapshotter stops");
                return;
            }
            Err(e) => tracing::warn!(revision = state.revision, error = %e, "snapshot not taken; trying again at the next point"),
        }
    }
}

/// What one snapshot round did.
enum Taken {
    /// Written and published at `revision`; `previous` was published before it.
    Published { revision: u64, bytes: usize, previous: Option<u64> },
    /// Another broker published this one or a newer one first.
    NotNewer,
    /// The sequencer refused without having a newer one: it keeps none.
    Unsupported,
}

#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error("writing the object: {0}")]
    Store(#[from] StoreError),
    #[error("publishing: {0}")]
    Sequencer(#[from] SequencerError),
}

async fn take_snapshot<S: Sequencer>(sequencer: &S, store: &ObjectStoreBackend, state: &LogState) -> Result<Taken, TakeError> {
    let revision = state.revision;
    let previous = sequencer.snapshot_revision().await?;
    if previous.is_some_and(|p| p >= revision) {
        return Ok(Taken::NotNewer);
    }
    let bytes: Bytes = snapshot::encode(state);
    let size = bytes.len();
    match store.put_create(&snapshot::key(revision), bytes).await {
        // Another broker wrote the same state first: the same bytes.
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if sequencer.publish_snapshot(revision).await? {
        return Ok(Taken::Published { revision, bytes: size, previous });
    }
    match sequencer.snapshot_revision().await? {
        Some(now) if now >= revision => Ok(Taken::NotNewer),
        _ => Ok(Taken::Unsupported),
    }
}

/// Deletes snapshot objects older than `keep_from` (the snapshot published
/// before the newest: a broker may still be loading it).
async fn collect_older(store: &ObjectStoreBackend, keep_from: u64) {
    let keys = match store.list("snapshots/").await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list old snapshots");
            return;
        }
    };
    for key in keys.into_iter().map(|o| o.key) {
        if snapshot::revision_of_key(&key).is_some_and(|r| r < keep_from) {
            if let Err(e) = store.delete(&key).await {
                tracing::warn!(%key, error = %e, "cannot delete an old snapshot");
            }
        }
    }
}

/// Pause between attempts to reload a snapshot.
pub const RELOAD_BACKOFF: Duration = Duration::from_millis(200);
