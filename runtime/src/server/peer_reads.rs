//! The read path's stop between the block cache and the object store: an
//! object written by another live broker is asked of that broker first (it
//! keeps its recent objects in memory), so a tail read needs no store GET.
//! Any failure — not held there any more, unreachable, slow — is a miss, and
//! the read goes to the object store as before. The simulator's build has no
//! gRPC: there nothing is tried.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use tokio::sync::watch;

/// The internal (gRPC) address of every live broker but this one, by node id;
/// kept by the membership task ([`super::members::run_members`]).
pub type PeerDirectory = BTreeMap<i32, String>;

/// Largest range asked of a peer (and served to one) in a single answer;
/// larger ranges go to the object store.
pub const MAX_PEER_READ_BYTES: u64 = 16 << 20;

/// What asking a peer gave.
#[derive(Debug)]
pub enum PeerRead {
    /// No live peer wrote that object (or peer reads are off): not asked.
    NotTried,
    /// The peer's bytes (exactly the range).
    Got(Bytes),
    /// Asked, and got nothing usable.
    Missed,
}

/// Peer reads for the driver's read tasks; cheap to clone.
#[derive(Clone)]
pub struct PeerReads {
    #[cfg_attr(madsim, allow(dead_code))]
    directory: watch::Receiver<PeerDirectory>,
    #[cfg(not(madsim))]
    clients: std::sync::Arc<crate::grpc::peer::PeerClients>,
}

impl PeerReads {
    /// Peer reads from the brokers `directory` lists.
    pub fn new(directory: watch::Receiver<PeerDirectory>) -> Self {
        PeerReads {
            directory,
            #[cfg(not(madsim))]
            clients: std::sync::Arc::new(crate::grpc::peer::PeerClients::default()),
        }
    }

    /// Peer reads that never ask anyone.
    pub fn none() -> Self {
        Self::new(watch::channel(PeerDirectory::new()).1)
    }

    /// Asks the live broker that wrote `key` for `range` of it.
    pub async fn read(&self, key: &str, range: Range<u64>) -> PeerRead {
        #[cfg(madsim)]
        {
            let _ = (key, range);
            PeerRead::NotTried
        }
        #[cfg(not(madsim))]
        {
            if range.end.saturating_sub(range.start) > MAX_PEER_READ_BYTES {
                return PeerRead::NotTried;
            }
            let Some(node) = strata_core::object::key::writer_node(key) else { return PeerRead::NotTried };
            let Some(addr) = self.directory.borrow().get(&node).cloned() else { return PeerRead::NotTried };
            match self.clients.read(&addr, key, range.clone()).await {
                Ok(bytes) if bytes.len() as u64 == range.end - range.start => PeerRead::Got(bytes),
                Ok(bytes) => {
                    tracing::warn!(%key, ?range, got = bytes.len(), peer = node, "peer read returned the wrong length; reading the object store");
                    PeerRead::Missed
                }
                Err(e) => {
                    tracing::debug!(%key, ?range, peer = node, error = %e, "peer read missed; reading the object store");
                    PeerRead::Missed
                }
            }
        }
    }
}
