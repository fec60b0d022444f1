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
    records: Vec<Bytes>,
    faults: VecDeque<Fault>,
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

    /// Every record so far, in order (revision `i + 1` at index `i`).
    pub fn records(&self) -> Vec<Bytes> {
        self.lock().records.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, state: &mut State, record: Bytes) -> u64 {
        state.records.push(record);
        let revision = state.records.len() as u64;
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
        Ok(self.lock().records.len() as u64)
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
        let batch: Vec<Bytes> = {
            let state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            let start = (next - 1) as usize;
            state
                .records
                .iter()
                .skip(start)
                .take(WATCH_BATCH)
                .cloned()
                .collect()
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
}
