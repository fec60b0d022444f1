//! The simulated sequencer: our own etcd-like node holding an ordered log with
//! dense revisions, reached over the simulated network, and the client side
//! implementing the runtime's `Sequencer` trait for the brokers.
//!
//! Faults: appends that fail cleanly, appends applied whose answer is lost
//! and appends lost before being applied (both seen as unknown outcome by
//! the broker), watch streams that break (the broker's applier re-watches from
//! its last applied revision), and crash/restart of the node (its log is
//! durable: it lives outside the node and survives the restart). Broker
//! membership (leases, keep-alives, the live set) is in [`crate::leases`].
//!
//! Snapshots: the log also holds the published snapshot's revision, moved by
//! compare-and-swap, and truncates its prefix behind it: reads from a
//! truncated revision are answered `Compacted`, as etcd does. Faults: a
//! publish or a truncate lost before it reached the log, or applied with its
//! answer lost (the broker sees an unknown outcome either way). Truncation
//! hides records from the brokers only: the checker still replays the whole
//! history ([`SeqLog::records`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strata_runtime::sequencer::{AppendError, Member, MemberWatch, Registration, Sequencer, SequencerError, Watch};
use tokio::sync::Notify;

use crate::history::History;
use crate::leases::{self, Leases};
use crate::rpc::{self, CallError, RpcClient};
use crate::{chance, Faults};

/// Where the sequencer listens.
pub const SEQ_PORT: u16 = 2379;

/// The durable part of the sequencer: survives the node's crash.
pub struct SeqLog {
    records: Mutex<Vec<Bytes>>,
    /// The brokers' leases (durable like the log).
    leases: Leases,
    /// The published snapshot and the first revision still served.
    snapshots: Mutex<SnapshotPointer>,
    /// Wakes long-polling reads. (Not a tokio `watch`: its receivers pick one
    /// of several notifiers at random, from a seed the simulation cannot set.)
    appended: Notify,
}

/// The snapshot pointer and the truncation point.
#[derive(Debug, Clone, Copy)]
struct SnapshotPointer {
    published: Option<u64>,
    /// The first revision reads are still served from (1 until a truncate).
    first: u64,
}

impl SeqLog {
    /// An empty log.
    pub fn new() -> Arc<Self> {
        Arc::new(SeqLog {
            records: Mutex::new(Vec::new()),
            leases: Leases::default(),
            snapshots: Mutex::new(SnapshotPointer { published: None, first: 1 }),
            appended: Notify::new(),
        })
    }

    /// The published snapshot's revision and the first revision still served.
    pub fn snapshot_state(&self) -> (Option<u64>, u64) {
        let p = *self.snapshots.lock().unwrap();
        (p.published, p.first)
    }

    fn publish(&self, revision: u64) -> bool {
        let mut p = self.snapshots.lock().unwrap();
        if p.published.is_some_and(|s| s >= revision) || revision > self.revision() {
            return false;
        }
        p.published = Some(revision);
        true
    }

    fn truncate(&self, through: u64) -> Result<(), Option<u64>> {
        let mut p = self.snapshots.lock().unwrap();
        if p.published.is_none_or(|s| through > s) {
            return Err(p.published);
        }
        p.first = p.first.max(through + 1);
        Ok(())
    }

    /// Every record ever appended, in revision order (revision = index + 1),
    /// truncated or not.
    pub fn records(&self) -> Vec<Bytes> {
        self.records.lock().unwrap().clone()
    }

    /// The last revision.
    pub fn revision(&self) -> u64 {
        self.records.lock().unwrap().len() as u64
    }

    fn append(&self, record: Bytes) -> u64 {
        let mut r = self.records.lock().unwrap();
        r.push(record);
        let rev = r.len() as u64;
        self.appended.notify_waiters();
        rev
    }
}

/// Requests to the sequencer node.
pub enum SeqReq {
    Append(Bytes),
    /// Records from revision `from`, waiting up to `wait` for one to exist.
    Read { from: u64, wait: Duration },
    Current,
    /// Puts a broker's member record under a new lease of `ttl`.
    Register { node_id: i32, member: Bytes, ttl: Duration },
    /// Extends a lease.
    KeepAlive { lease: u64 },
    /// Ends a lease (its member leaves).
    Revoke { lease: u64 },
    /// The live set once its version differs from `known` (or after a wait).
    Members { known: Option<u64> },
    SnapshotRevision,
    Publish(u64),
    Truncate(u64),
}

/// Answers of the sequencer node.
pub enum SeqResp {
    Appended(u64),
    AppendFailed,
    Records(Vec<(u64, Bytes)>),
    ReadFailed,
    Current(u64),
    Leased(u64),
    /// False: the lease is unknown or expired.
    KeptAlive(bool),
    Revoked,
    Members { version: u64, members: Vec<Bytes> },
    /// The read's revision is truncated; the log starts at `first`.
    Compacted { first: u64 },
    Snapshot(Option<u64>),
    Published(bool),
    /// Truncated, or refused (beyond the published snapshot, which is given).
    Truncated(Result<(), Option<u64>>),
}

/// Records handed out per read.
const READ_BATCH: usize = 64;

/// Runs the sequencer node's server (its init task; restarted after a crash).
pub async fn run_server(addr: SocketAddr, log: Arc<SeqLog>, faults: Arc<Faults>, history: History) {
    rpc::serve(addr, move |req: SeqReq| {
        let log = log.clone();
        let faults = faults.clone();
        let history = history.clone();
        async move {
            match req {
                SeqReq::Append(record) => {
                    if chance(faults.seq_fail) {
                        history.log("seq", "append refused (failed, not appended)".into());
                        return Some(SeqResp::AppendFailed);
                    }
                    if chance(faults.seq_drop) {
                        history.log("seq", "append lost before the log (unknown outcome, not appended)".into());
                        return None;
                    }
                    let summary = crate::history::summarize_commit(&record);
                    let rev = log.append(record);
                    if chance(faults.seq_lost_answer) {
                        history.log("seq", format!("rev {rev} appended, answer lost: {summary}"));
                        return None;
                    }
                    history.log("seq", format!("rev {rev} appended: {summary}"));
                    Some(SeqResp::Appended(rev))
                }
                SeqReq::Read { from, wait } => {
                    if chance(faults.seq_break_watch) {
                        history.log("seq", format!("watch from {from} broken"));
                        return Some(SeqResp::ReadFailed);
                    }
                    let from = from.max(1);
                    let (_, first) = log.snapshot_state();
                    if from < first {
                        history.log("seq", format!("read from {from}: compacted (log starts at {first})"));
                        return Some(SeqResp::Compacted { first });
                    }
                    let _ = tokio::time::timeout(wait, async {
                        loop {
                            let notified = log.appended.notified();
                            if log.revision() >= from {
                                return;
                            }
                            notified.await;
                        }
                    })
                    .await;
                    let records = log.records.lock().unwrap();
                    let start = (from - 1) as usize;
                    let out = records
                        .iter()
                        .enumerate()
                        .skip(start)
                        .take(READ_BATCH)
                        .map(|(i, r)| (i as u64 + 1, r.clone()))
                        .collect();
                    Some(SeqResp::Records(out))
                }
                SeqReq::Current => Some(SeqResp::Current(log.revision())),
                req @ (SeqReq::Register { .. } | SeqReq::KeepAlive { .. } | SeqReq::Revoke { .. } | SeqReq::Members { .. }) => {
                    log.leases.serve(req, &faults, &history).await
                }
                SeqReq::SnapshotRevision => Some(SeqResp::Snapshot(log.snapshot_state().0)),
                SeqReq::Publish(revision) => {
                    lossy(&faults, &history, format!("publish snapshot {revision}"), || log.publish(revision)).map(SeqResp::Published)
                }
                SeqReq::Truncate(through) => {
                    lossy(&faults, &history, format!("truncate through {through}"), || log.truncate(through)).map(SeqResp::Truncated)
                }
            }
        }
    })
    .await
}

/// Runs `op` on the log under the faults of a request that changes it: lost
/// before it reached the log, or done with its answer lost (either way the
/// broker hears nothing: an unknown outcome).
fn lossy<T: std::fmt::Debug>(faults: &Faults, history: &History, what: String, op: impl FnOnce() -> T) -> Option<T> {
    if chance(faults.seq_drop) {
        history.log("seq", format!("{what}: lost before the log"));
        return None;
    }
    let result = op();
    let lost = chance(faults.seq_lost_answer);
    history.log("seq", format!("{what}: {result:?}{}", if lost { ", answer lost" } else { "" }));
    (!lost).then_some(result)
}

/// The broker's handle on the simulated sequencer.
pub struct SimSequencer {
    rpc: Arc<RpcClient>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const WATCH_WAIT: Duration = Duration::from_millis(1000);

impl SimSequencer {
    /// Connects from the current node.
    pub async fn connect(addr: SocketAddr) -> Self {
        SimSequencer { rpc: RpcClient::new(addr).await.expect("bind a client endpoint") }
    }
}

fn unavailable(e: CallError) -> SequencerError {
    SequencerError::Unavailable(format!("{e:?}"))
}

impl Sequencer for SimSequencer {
    fn append(&self, record: Bytes) -> impl std::future::Future<Output = Result<u64, AppendError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::Append(record), CALL_TIMEOUT).await {
                Ok(SeqResp::Appended(rev)) => Ok(rev),
                Ok(SeqResp::AppendFailed) => Err(AppendError::Failed(SequencerError::Unavailable("refused".into()))),
                Ok(_) => Err(AppendError::Unknown(SequencerError::Unavailable("odd answer".into()))),
                Err(e) => Err(AppendError::Unknown(unavailable(e))),
            }
        }
    }

    fn watch(&self, from: u64) -> impl std::future::Future<Output = Result<Watch, SequencerError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            let (tx, watch) = Watch::channel();
            tokio::spawn(async move {
                let mut next = from.max(1);
                loop {
                    let req = SeqReq::Read { from: next, wait: WATCH_WAIT };
                    match rpc.call::<SeqReq, SeqResp>(req, WATCH_WAIT + CALL_TIMEOUT).await {
                        Ok(SeqResp::Records(records)) => {
                            for (rev, record) in records {
                                if tx.send(Ok((rev, record))).await.is_err() {
                                    return;
                                }
                                next = rev + 1;
                            }
                        }
                        Ok(SeqResp::Compacted { first }) => {
                            let _ = tx.send(Err(SequencerError::Compacted { requested: next, first_available: first })).await;
                            return;
                        }
                        Ok(_) => {
                            let _ = tx.send(Err(SequencerError::Unavailable("watch broken".into()))).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(unavailable(e))).await;
                            return;
                        }
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
            });
            Ok(watch)
        }
    }

    fn current_revision(&self) -> impl std::future::Future<Output = Result<u64, SequencerError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::Current, CALL_TIMEOUT).await {
                Ok(SeqResp::Current(rev)) => Ok(rev),
                Ok(_) => Err(SequencerError::Unavailable("odd answer".into())),
                Err(e) => Err(unavailable(e)),
            }
        }
    }

    // Membership
    fn register(&self, me: Member, ttl: Duration) -> impl std::future::Future<Output = Result<Registration, SequencerError>> + Send {
        leases::register(self.rpc.clone(), me, ttl)
    }

    fn watch_members(&self) -> impl std::future::Future<Output = Result<MemberWatch, SequencerError>> + Send {
        leases::watch_members(self.rpc.clone())
    }

    // Snapshots
    fn snapshot_revision(&self) -> impl std::future::Future<Output = Result<Option<u64>, SequencerError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::SnapshotRevision, CALL_TIMEOUT).await {
                Ok(SeqResp::Snapshot(rev)) => Ok(rev),
                Ok(_) => Err(SequencerError::Unavailable("odd answer".into())),
                Err(e) => Err(unavailable(e)),
            }
        }
    }

    fn publish_snapshot(&self, revision: u64) -> impl std::future::Future<Output = Result<bool, SequencerError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::Publish(revision), CALL_TIMEOUT).await {
                Ok(SeqResp::Published(done)) => Ok(done),
                Ok(_) => Err(SequencerError::Unavailable("odd answer".into())),
                // Timed out: published or not, the caller re-reads the pointer.
                Err(e) => Err(unavailable(e)),
            }
        }
    }

    fn truncate(&self, through: u64) -> impl std::future::Future<Output = Result<(), SequencerError>> + Send {
        let rpc = self.rpc.clone();
        async move {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::Truncate(through), CALL_TIMEOUT).await {
                Ok(SeqResp::Truncated(Ok(()))) => Ok(()),
                Ok(SeqResp::Truncated(Err(snapshot))) => Err(SequencerError::BeyondSnapshot { through, snapshot }),
                Ok(_) => Err(SequencerError::Unavailable("odd answer".into())),
                Err(e) => Err(unavailable(e)),
            }
        }
    }
}
