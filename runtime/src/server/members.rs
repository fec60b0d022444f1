//! Membership (issue 6): registers this broker in the sequencer's live set
//! under a lease, and feeds the live set to the driver ([`Input::Members`])
//! whenever it changes. While the watch is down the core keeps the last set
//! it was given; the watch is re-established with backoff. The internal
//! addresses of the other live brokers go to the [`PeerDirectory`] (the read
//! path asks them before the object store). A drain (`leave`) drops the
//! registration but keeps watching.

use std::sync::Arc;
use std::time::Duration;

use strata_core::broker::Peer;
use strata_core::io::Input;
use tokio::sync::{mpsc, watch};

use super::driver::DriverMsg;
use super::peer_reads::PeerDirectory;
use crate::sequencer::{Member, Sequencer};

/// Pause before retrying a registration or a watch (doubles up to [`MAX_BACKOFF`]).
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where [`run_members`] sends what it learns, and what tells it to leave.
pub struct MembersLinks {
    /// The driver, fed [`Input::Members`].
    pub driver: mpsc::Sender<DriverMsg>,
    /// The other live brokers' internal addresses.
    pub directory: watch::Sender<PeerDirectory>,
    /// Becomes true when this broker drains: the registration is dropped.
    pub leave: watch::Receiver<bool>,
}

/// Registers `me` with a lease of `ttl` (retrying until it succeeds) and
/// holds the registration, while feeding every live set to the driver;
/// until `leave` turns true (the watch goes on), the driver's channel
/// closes or the task is aborted, which drop the registration (the member
/// leaves the set).
pub async fn run_members<S: Sequencer + 'static>(sequencer: Arc<S>, me: Member, ttl: Duration, links: MembersLinks) {
    let MembersLinks { driver: tx, directory, mut leave } = links;
    let node_id = me.node_id;
    let register = async {
        if *leave.borrow() {
            return std::future::pending::<()>().await;
        }
        let mut backoff = MIN_BACKOFF;
        let registration = loop {
            match sequencer.register(me.clone(), ttl).await {
                Ok(r) => break r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register this broker with the sequencer; retrying in {} ms", backoff.as_millis());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!(node_id = me.node_id, ttl_ms = ttl.as_millis() as u64, "registered in the live broker set");
        // Held for as long as the task runs, or until the broker drains.
        let _ = leave.wait_for(|&l| l).await;
        drop(registration);
        tracing::info!(node_id = me.node_id, "draining: left the live broker set");
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = register => {}
        _ = feed_members(&*sequencer, &tx, &directory, node_id) => {}
    }
}

/// Watches the live set and sends each change to the driver (and the other
/// brokers' internal addresses to `directory`); returns when the driver stops.
async fn feed_members<S: Sequencer>(sequencer: &S, tx: &mpsc::Sender<DriverMsg>, directory: &watch::Sender<PeerDirectory>, me: i32) {
    let mut last: Option<Vec<Peer>> = None;
    let mut backoff = MIN_BACKOFF;
    loop {
        match sequencer.watch_members().await {
            Ok(mut watch) => {
                while let Some(item) = watch.next().await {
                    let set = match item {
                        Ok(set) => set,
                        Err(e) => {
                            tracing::warn!(error = %e, "live broker watch ended; keeping the last set, re-watching in {} ms", backoff.as_millis());
                            break;
                        }
                    };
                    backoff = MIN_BACKOFF;
                    let internal: PeerDirectory = set
                        .iter()
                        .filter(|m| m.node_id != me)
                        .filter_map(|m| Some((m.node_id, m.internal.clone()?)))
                        .collect();
                    directory.send_if_modified(|d| {
                        let changed = *d != internal;
                        *d = internal;
                        changed
                    });
                    let peers: Vec<Peer> = set.into_iter().map(peer).collect();
                    if last.as_ref() == Some(&peers) {
                        continue;
                    }
                    tracing::info!(brokers = ?peers.iter().map(|p| p.node_id).collect::<Vec<_>>(), "live brokers");
                    last = Some(peers.clone());
                    if tx.send(DriverMsg::Input(Input::Members(peers))).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the live brokers; retrying in {} ms", backoff.as_millis()),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn peer(m: Member) -> Peer {
    Peer { node_id: m.node_id, host: m.host, port: i32::from(m.port), rack: m.rack }
}
