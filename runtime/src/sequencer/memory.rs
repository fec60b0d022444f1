//! An in-memory sequencer for tests: every record kept in a `Vec`, with fault
//! injection for the append outcomes a real sequencer can produce.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::members::LocalMembers;
use super::{AppendError, Member, MemberWatch, Registration, Sequencer, SequencerError, Watch, WatchItem};

/// Records handed to a watch per batch.
const WATCH_BATCH: usize = 256;

/// What the next append does instead of succeeding (see
/// [`MemorySequencer::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not appended; `Err(Failed)`.
    Fail,
    /// Appended, but the caller hears `Err(Unknown)`.
    UnknownAppended,
    /// Not appended, and the caller hears `Err(Unknown)`.
    UnknownNotAppended,
}

/// The in-memory sequencer. Cloning gives another handle on the same log
/// (and the same live-broker set: a test expires a member by dropping its
/// registration).
#[derive(Clone, Default)]
pub struct MemorySequencer {
    inner: Arc<Inner>,
    members: LocalMembers,
}

struct Inner {
    state: Mutex<State>,
    /// The last revision; watchers subscribe to it.
    revision: watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            state: Mutex::new(State::default()),
            revision: watch::channel(0).0,
        }
    }
}

#[derive(Default)]
struct State {
    /// The records kept: revision `first + i` at index `i`.
    records: VecDeque<Bytes>,
    /// Records deleted by [`Sequencer::truncate`] (the first kept is `dropped + 1`).
    dropped: u64,
    /// The published snapshot's revision.
    snapshot: Option<u64>,
    faults: VecDeque<Fault>,
}

impl State {
    fn revision(&self) -> u64 {
        self.dropped + self.records.len() as u64
    }
}

impl std::fmt::Debug for MemorySequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySequencer")
            .field("revision", &*self.inner.revision.borrow())
            .finish()
    }
}

impl MemorySequencer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next appends (one per queued fault) fail this way.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Every record kept, in order (revision `first + i` at index `i`, where
    /// `first` is 1 until [`Sequencer::truncate`] drops a prefix).
    pub fn records(&self) -> Vec<Bytes> {
        self.lock().records.iter().cloned().collect()
    }

    /// The first revision still kept.
    pub fn first_revision(&self) -> u64 {
        self.lock().dropped + 1
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, state: &mut State, record: Bytes) -> u64 {
        state.records.push_back(record);
        let revision = state.revision();
        self.inner.revision.send_replace(revision);
        revision
    }
}

impl Sequencer for MemorySequencer {
    async fn append(&self, record: Bytes) -> Result<u64, AppendError> {
        let mut state = self.lock();
        let injected = || SequencerError::Unavailable("injected fault".into());
        match state.faults.pop_front() {
            None => Ok(self.push(&mut state, record)),
            Some(Fault::Fail) => Err(AppendError::Failed(injected())),
            Some(Fault::UnknownNotAppended) => Err(AppendError::Unknown(injected())),
            Some(Fault::UnknownAppended) => {
                self.push(&mut state, record);
                Err(AppendError::Unknown(injected()))
            }
        }
    }

    async fn watch(&self, from: u64) -> Result<Watch, SequencerError> {
        let (tx, watch) = Watch::channel();
        tokio::spawn(feed(self.inner.clone(), from.max(1), tx));
        Ok(watch)
    }

    async fn current_revision(&self) -> Result<u64, SequencerError> {
        Ok(self.lock().revision())
    }

    // Snapshots
    async fn snapshot_revision(&self) -> Result<Option<u64>, SequencerError> {
        Ok(self.lock().snapshot)
    }

    async fn publish_snapshot(&self, revision: u64) -> Result<bool, SequencerError> {
        let mut state = self.lock();
        if state.snapshot.is_some_and(|s| s >= revision) || revision > state.revision() {
            return Ok(false);
        }
        state.snapshot = Some(revision);
        Ok(true)
    }

    async fn truncate(&self, through: u64) -> Result<(), SequencerError> {
        let mut state = self.lock();
        if state.snapshot.is_none_or(|s| through > s) {
            return Err(SequencerError::BeyondSnapshot { through, snapshot: state.snapshot });
        }
        while state.dropped < through && state.records.pop_front().is_some() {
            state.dropped += 1;
        }
        Ok(())
    }

    // Membership
    async fn register(&self, me: Member, _ttl: std::time::Duration) -> Result<Registration, SequencerError> {
        Ok(self.members.register(me))
    }

    async fn watch_members(&self) -> Result<MemberWatch, SequencerError> {
        Ok(self.members.watch())
    }
}

async fn feed(inner: Arc<Inner>, mut next: u64, tx: mpsc::Sender<WatchItem>) {
    let mut revision = inner.revision.subscribe();
    loop {
        let batch: Result<Vec<Bytes>, u64> = {
            let state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            if next <= state.dropped {
                Err(state.dropped + 1)
            } else {
                let start = (next - 1 - state.dropped) as usize;
                Ok(state.records.iter().skip(start).take(WATCH_BATCH).cloned().collect())
            }
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(first_available) => {
                let _ = tx.send(Err(SequencerError::Compacted { requested: next, first_available })).await;
                return;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                changed = revision.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
            continue;
        }
        for record in batch {
            if tx.send(Ok((next, record))).await.is_err() {
                return;
            }
            next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next_ok(w: &mut Watch) -> (u64, Bytes) {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Ok(item))) => item,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn memory_sequencer_appends_watches_and_injects_faults() {
        let seq = MemorySequencer::new();
        assert_eq!(seq.current_revision().await.unwrap(), 0);
        let mut all = seq.watch(0).await.unwrap();
        for i in 1..=300u64 {
            assert_eq!(seq.append(Bytes::from(i.to_string())).await.unwrap(), i);
        }
        let mut mid = seq.watch(290).await.unwrap();
        for i in 1..=300u64 {
            assert_eq!(next_ok(&mut all).await, (i, Bytes::from(i.to_string())));
        }
        for i in 290..=300u64 {
            assert_eq!(next_ok(&mut mid).await, (i, Bytes::from(i.to_string())));
        }
        seq.inject(Fault::Fail);
        seq.inject(Fault::UnknownNotAppended);
        seq.inject(Fault::UnknownAppended);
        assert!(matches!(
            seq.append(Bytes::from_static(b"a")).await,
            Err(AppendError::Failed(_))
        ));
        assert!(matches!(
            seq.append(Bytes::from_static(b"b")).await,
            Err(AppendError::Unknown(_))
        ));
        assert!(matches!(
            seq.append(Bytes::from_static(b"c")).await,
            Err(AppendError::Unknown(_))
        ));
        assert_eq!(seq.append(Bytes::from_static(b"d")).await.unwrap(), 302);
        // The unknown-but-appended one shows up in the stream.
        assert_eq!(next_ok(&mut all).await, (301, Bytes::from_static(b"c")));
        assert_eq!(next_ok(&mut all).await, (302, Bytes::from_static(b"d")));
        assert_eq!(seq.current_revision().await.unwrap(), 302);
    }

    #[tokio::test]
    async fn snapshots_are_published_by_compare_and_swap_and_truncate_the_log() {
        let seq = MemorySequencer::new();
        for i in 1..=10u64 {
            seq.append(Bytes::from(i.to_string())).await.unwrap();
        }
        assert_eq!(seq.snapshot_revision().await.unwrap(), None);
        // Nothing may be truncated before a snapshot covers it.
        assert!(matches!(seq.truncate(3).await, Err(SequencerError::BeyondSnapshot { .. })));
        assert!(!seq.publish_snapshot(11).await.unwrap(), "beyond the log");
        assert!(seq.publish_snapshot(6).await.unwrap());
        assert!(!seq.publish_snapshot(6).await.unwrap(), "not newer");
        assert!(!seq.publish_snapshot(4).await.unwrap(), "older");
        assert_eq!(seq.snapshot_revision().await.unwrap(), Some(6));
        assert!(matches!(seq.truncate(7).await, Err(SequencerError::BeyondSnapshot { .. })));
        let mut lagging = seq.watch(2).await.unwrap();
        seq.truncate(6).await.unwrap();
        assert_eq!(seq.first_revision(), 7);
        assert_eq!(seq.current_revision().await.unwrap(), 10);
        // A watch from a truncated revision ends with Compacted.
        let mut old = seq.watch(3).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(10), old.next()).await {
            Ok(Some(Err(SequencerError::Compacted { requested: 3, first_available: 7 }))) => {}
            other => panic!("expected Compacted, got {other:?}"),
        }
        // One that already read past the cut goes on; one that did not is told.
        let mut tail = seq.watch(7).await.unwrap();
        assert_eq!(next_ok(&mut tail).await, (7, Bytes::from("7")));
        seq.append(Bytes::from_static(b"11")).await.unwrap();
        for i in 8..=11u64 {
            assert_eq!(next_ok(&mut tail).await.0, i);
        }
        let mut got = Vec::new();
        while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(10), lagging.next()).await {
            match item {
                Ok((rev, _)) => got.push(rev),
                Err(e) => {
                    assert!(matches!(e, SequencerError::Compacted { .. }), "{e}");
                    break;
                }
            }
        }
        assert!(got.is_empty() || got[0] == 2, "in order from where it asked: {got:?}");
        // Truncating again up to the same point is fine.
        seq.truncate(6).await.unwrap();
    }
}
