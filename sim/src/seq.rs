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
    /// Wakes long-polling reads. (Not a tokio `watch`: its receivers pick one
    /// of several notifiers at random, from a seed the simulation cannot set.)
    appended: Notify,
}

impl SeqLog {
    /// An empty log.
    pub fn new() -> Arc<Self> {
        Arc::new(SeqLog { records: Mutex::new(Vec::new()), leases: Leases::default(), appended: Notify::new() })
    }

    /// Every record, in revision order (revision = index + 1).
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
            }
        }
    })
    .await
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
}
