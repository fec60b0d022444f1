//! Leased broker membership in the simulated sequencer (issues 4 and 6): the
//! lease table (durable like the log: it survives the node's crash, as
//! etcd's leases do), its requests, and the broker side of `register` /
//! `watch_members` (a keep-alive task, a long-polling watch).
//!
//! Leases expire in simulated time when keep-alives stop arriving (a killed
//! broker, a partition from the sequencer, a sequencer down longer than the
//! TTL); the fault `seq_lease_expire` drops a lease early at a keep-alive, and
//! the broker must register again. Nothing here waits on a `Notify` or a
//! tokio `watch` (their wake-up order is not seeded): the watch long-polls by
//! sleeping in simulated time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strata_runtime::sequencer::{Member, MemberWatch, Registration, SequencerError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::history::History;
use crate::rpc::{CallError, RpcClient};
use crate::seq::{SeqReq, SeqResp};
use crate::{chance, Faults};

/// How often a member watch re-checks the table while it long-polls.
const POLL: Duration = Duration::from_millis(100);
/// How long one member read waits for a change.
const MEMBERS_WAIT: Duration = Duration::from_millis(1000);
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The lease table: one leased key per node id.
#[derive(Default)]
pub struct Leases {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// By node id: the lease, its encoded member, when it expires.
    live: BTreeMap<i32, Lease>,
    next_lease: u64,
    /// Bumped by every change of `live`.
    version: u64,
}

struct Lease {
    id: u64,
    member: Bytes,
    ttl: Duration,
    expires: Instant,
}

impl Table {
    /// Drops the leases whose time is up.
    fn expire(&mut self, history: &History) {
        let now = Instant::now();
        let gone: Vec<i32> = self.live.iter().filter(|(_, l)| l.expires <= now).map(|(n, _)| *n).collect();
        for node in gone {
            if let Some(l) = self.live.remove(&node) {
                history.log("seq", format!("lease {} of broker {node} expired", l.id));
                self.version += 1;
            }
        }
    }
}

impl Leases {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers a membership request at the sequencer node (None: not one).
    pub async fn serve(&self, req: SeqReq, faults: &Faults, history: &History) -> Option<SeqResp> {
        match req {
            SeqReq::Register { node_id, member, ttl } => {
                let mut t = self.table();
                t.expire(history);
                t.next_lease += 1;
                let id = t.next_lease;
                t.live.insert(node_id, Lease { id, member, ttl, expires: Instant::now() + ttl });
                t.version += 1;
                history.log("seq", format!("broker {node_id} registered, lease {id} ({} ms)", ttl.as_millis()));
                Some(SeqResp::Leased(id))
            }
            SeqReq::KeepAlive { lease } => {
                let mut t = self.table();
                t.expire(history);
                let Some((&node, l)) = t.live.iter_mut().find(|(_, l)| l.id == lease) else {
                    return Some(SeqResp::KeptAlive(false));
                };
                if chance(faults.seq_lease_expire) {
                    t.live.remove(&node);
                    t.version += 1;
                    history.log("seq", format!("lease {lease} of broker {node} expired early (fault)"));
                    return Some(SeqResp::KeptAlive(false));
                }
                l.expires = Instant::now() + l.ttl;
                Some(SeqResp::KeptAlive(true))
            }
            SeqReq::Revoke { lease } => {
                let mut t = self.table();
                let node = t.live.iter().find(|(_, l)| l.id == lease).map(|(n, _)| *n);
                if let Some(node) = node {
                    t.live.remove(&node);
                    t.version += 1;
                    history.log("seq", format!("lease {lease} of broker {node} revoked"));
                }
                Some(SeqResp::Revoked)
            }
            SeqReq::Members { known } => {
                let deadline = Instant::now() + MEMBERS_WAIT;
                loop {
                    {
                        let mut t = self.table();
                        t.expire(history);
                        if Some(t.version) != known || Instant::now() >= deadline {
                            let members = t.live.values().map(|l| l.member.clone()).collect();
                            return Some(SeqResp::Members { version: t.version, members });
                        }
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
            _ => None,
        }
    }
}

fn unavailable(e: CallError) -> SequencerError {
    SequencerError::Unavailable(format!("{e:?}"))
}

/// Registers `me`: a lease, then a keep-alive task every `ttl / 3` that
/// registers again when the lease lapsed. Dropping the registration stops the
/// task, which revokes the lease (best effort; a killed node's lease expires).
pub async fn register(rpc: Arc<RpcClient>, me: Member, ttl: Duration) -> Result<Registration, SequencerError> {
    let member = Bytes::from(me.encode().map_err(|e| SequencerError::Unavailable(e.to_string()))?);
    let node_id = me.node_id;
    let put = {
        let (rpc, member) = (rpc.clone(), member.clone());
        move || {
            let (rpc, member) = (rpc.clone(), member.clone());
            async move {
                match rpc.call::<SeqReq, SeqResp>(SeqReq::Register { node_id, member, ttl }, CALL_TIMEOUT).await {
                    Ok(SeqResp::Leased(id)) => Ok(id),
                    Ok(_) => Err(SequencerError::Unavailable("odd answer".into())),
                    Err(e) => Err(unavailable(e)),
                }
            }
        }
    };
    let mut lease = put().await?;
    let (stop, mut stopped) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let period = (ttl / 3).max(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = stopped.recv() => {
                    let _ = rpc.call::<SeqReq, SeqResp>(SeqReq::Revoke { lease }, CALL_TIMEOUT).await;
                    return;
                }
                _ = tokio::time::sleep(period) => {}
            }
            match rpc.call::<SeqReq, SeqResp>(SeqReq::KeepAlive { lease }, CALL_TIMEOUT).await {
                Ok(SeqResp::KeptAlive(true)) => {}
                // Lapsed: a new lease (or, unreachable, another try at the next tick).
                Ok(SeqResp::KeptAlive(false)) => {
                    if let Ok(id) = put().await {
                        lease = id;
                    }
                }
                _ => {}
            }
        }
    });
    Ok(Registration::new(stop))
}

/// Long-polls the live set; each new version goes to the stream.
pub async fn watch_members(rpc: Arc<RpcClient>) -> Result<MemberWatch, SequencerError> {
    let (tx, watch) = MemberWatch::channel();
    tokio::spawn(async move {
        let mut known = None;
        loop {
            match rpc.call::<SeqReq, SeqResp>(SeqReq::Members { known }, MEMBERS_WAIT + CALL_TIMEOUT).await {
                Ok(SeqResp::Members { version, members }) => {
                    if known != Some(version) {
                        known = Some(version);
                        // A value that does not decode is left out, as the contract says.
                        let set = members.iter().filter_map(|m| Member::decode(m).ok()).collect();
                        if tx.send(Ok(set)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {
                    let _ = tx.send(Err(SequencerError::Unavailable("odd answer".into()))).await;
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
