//! The applied stream: watches the sequencer from the revision after the last
//! applied one, decodes each record as a commit and feeds it to the driver in
//! revision order ([`Input::Applied`]). If the watch ends with an error it is
//! re-established from where it stopped, after a pause that grows up to
//! [`MAX_BACKOFF`] while the sequencer stays unreachable (an etcd restart is
//! ridden out, however long it takes). If the log no longer holds the next
//! revision (truncated behind a snapshot while this broker lagged), it loads the newest snapshot, has the driver replace the
//! state with it ([`DriverMsg::Reload`]) and watches on from there.

use std::sync::Arc;
use std::time::Duration;

use strata_core::io::Input;
use strata_core::log::commit::Commit;
use tokio::sync::mpsc;

use super::driver::DriverMsg;
use super::snapshots::{load_newest, RELOAD_BACKOFF};
use crate::sequencer::{Sequencer, SequencerError};
use crate::store::ObjectStoreBackend;

/// Pause before re-watching after an error (doubles up to [`MAX_BACKOFF`]).
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Feeds every record with revision `>= from` to the driver, forever (until
/// the driver's channel closes).
pub async fn run_applier<S: Sequencer + 'static>(
    sequencer: Arc<S>,
    store: ObjectStoreBackend,
    from: u64,
    tx: mpsc::Sender<DriverMsg>,
) {
    let mut next = from.max(1);
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut watch = match sequencer.watch(next).await {
            Ok(w) => w,
            Err(SequencerError::Compacted { .. }) => {
                let Some(after) = reload(&*sequencer, &store, next, &tx).await else { return };
                next = after;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, revision = next, "cannot watch the sequencer; retrying in {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        while let Some(item) = watch.next().await {
            let (revision, record) = match item {
                Ok(x) => x,
                Err(SequencerError::Compacted { requested, first_available }) => {
                    tracing::warn!(requested, first_available, "this broker's next commit was truncated; reloading the newest snapshot");
                    let Some(after) = reload(&*sequencer, &store, next, &tx).await else { return };
                    next = after;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, revision = next, "sequencer watch ended; re-watching in {} ms", backoff.as_millis());
                    break;
                }
            };
            backoff = MIN_BACKOFF;
            if revision < next {
                continue; // already applied (a re-watch may repeat records)
            }
            // A revision above `next` is no loss: revisions may skip numbers
            // (etcd's count changes to other keys too); only their order matters.
            let msg = match Commit::decode(record) {
                Ok(commit) => DriverMsg::Input(Input::Applied { revision, commit }),
                Err(e) => {
                    // Every broker of the same version skips the same record, so
                    // they stay in agreement; a newer broker's format needs an upgrade.
                    tracing::error!(
                        revision, error = %e,
                        "sequencer record is not a commit this version can read; skipped. \
                         If brokers of a newer version write to this log, upgrade this one"
                    );
                    DriverMsg::Skipped { revision }
                }
            };
            if tx.send(msg).await.is_err() {
                return; // the driver stopped
            }
            next = revision + 1;
        }
        if tx.is_closed() {
            return;
        }
        #[cfg(feature = "sim-bugs")] // PLANTED BUG double-apply: re-deliver the last applied record
        if strata_core::sim_bugs::active(strata_core::sim_bugs::Bug::DoubleApply) && next > 1 {
            next -= 1;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Loads the newest snapshot (one that covers `next`, the first revision the
/// log no longer holds) and hands it to the driver; retries until it can.
/// Returns the revision to watch from, or None once the driver has stopped.
async fn reload<S: Sequencer>(sequencer: &S, store: &ObjectStoreBackend, next: u64, tx: &mpsc::Sender<DriverMsg>) -> Option<u64> {
    loop {
        match load_newest(sequencer, store).await {
            Ok(Some(state)) if state.revision >= next => {
                let after = state.revision + 1;
                tracing::info!(revision = state.revision, "reloaded the newest snapshot");
                tx.send(DriverMsg::Reload(Box::new(state))).await.ok()?;
                return Some(after);
            }
            Ok(other) => tracing::warn!(
                published = other.map(|s| s.revision),
                next,
                "the log is truncated past this broker, but no snapshot covers it yet; retrying"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot load the newest snapshot; retrying"),
        }
        if tx.is_closed() {
            return None;
        }
        tokio::time::sleep(RELOAD_BACKOFF).await;
    }
}
