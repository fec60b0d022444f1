//! The internal gRPC surface (`proto/grpc/strata/internal/v1/internal.proto`),
//! served on `--internal-listen`: the [`peer`] service (a broker's recent
//! objects, for other brokers' tail reads) and the [`admin`] service (status,
//! flush, drain; `strata admin`). Both reach the core through the driver's
//! channel, like a connection does. Not in the simulator's build.

pub mod admin;
pub mod peer;

/// The code tonic and prost generate from the .proto file (runtime/build.rs).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("strata.internal.v1");
}

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::server::counters::ReadCounters;
use crate::server::driver::DriverMsg;
use crate::server::peer_reads::PeerDirectory;
use crate::store::BlockCache;

/// Requests served at once on one connection (peers pipeline reads over one).
const MAX_CONCURRENT_PER_CONNECTION: usize = 256;

/// What the internal services share with the rest of the server.
#[derive(Debug)]
pub struct InternalContext {
    /// The driver, which owns the core.
    pub driver: mpsc::Sender<DriverMsg>,
    /// Where reads went, and what was served to peers.
    pub counters: Arc<ReadCounters>,
    /// The block cache (its hit and miss counts).
    pub cache: Arc<Mutex<BlockCache>>,
    /// When the server started.
    pub started: Instant,
    /// This broker's advertised Kafka address and internal address.
    pub advertised: String,
    pub internal_advertised: String,
    /// The other live brokers' internal addresses.
    pub directory: watch::Receiver<PeerDirectory>,
    /// Set by a drain: the membership task drops this broker's registration.
    pub leave: watch::Sender<bool>,
    /// Set by `drain --exit`: the process shuts down gracefully.
    pub exit: watch::Sender<bool>,
}

/// Serves both services on `listener` until `stop` turns true; requests in
/// flight then are still answered.
pub async fn serve(listener: TcpListener, ctx: Arc<InternalContext>, mut stop: watch::Receiver<bool>) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(MAX_CONCURRENT_PER_CONNECTION)
        .add_service(peer::service(ctx.clone()))
        .add_service(admin::service(ctx))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|&s| s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the internal gRPC server stopped");
    }
}
