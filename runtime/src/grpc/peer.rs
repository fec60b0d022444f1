//! The `Peer` service: serves ranges of the objects this broker wrote and
//! still holds in memory (the core's recent objects), and the client side
//! that asks other brokers for theirs ([`PeerClients`]).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::proto::peer_client::PeerClient;
use super::proto::peer_server::{Peer, PeerServer};
use super::proto::{ReadObjectRequest, ReadObjectResponse};
use super::InternalContext;
use crate::server::admin::PeerReadRefusal;
use crate::server::counters::ReadCounters;
use crate::server::driver::DriverMsg;
use crate::server::peer_reads::MAX_PEER_READ_BYTES;

/// Longest object key accepted (ours are about 50 bytes).
const MAX_KEY_BYTES: usize = 1024;
/// Bound on a connection to a peer: past it, the object store is quicker.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on one peer read (the peer answers from memory; a slow one is skipped).
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// Room for the framing around a maximal answer.
const ENVELOPE_BYTES: usize = 4096;
/// Peers' channels kept at once (one per live broker; more means stale addresses).
const MAX_CHANNELS: usize = 256;

/// The service, with its message size bounds.
pub fn service(ctx: Arc<InternalContext>) -> PeerServer<PeerService> {
    PeerServer::new(PeerService { ctx })
        .max_decoding_message_size(MAX_KEY_BYTES + ENVELOPE_BYTES)
        .max_encoding_message_size(MAX_PEER_READ_BYTES as usize + ENVELOPE_BYTES)
}

/// Serves this broker's recent objects to peers.
#[derive(Debug)]
pub struct PeerService {
    ctx: Arc<InternalContext>,
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn read_object(&self, request: Request<ReadObjectRequest>) -> Result<Response<ReadObjectResponse>, Status> {
        let ReadObjectRequest { key, start, end } = request.into_inner();
        if key.len() > MAX_KEY_BYTES {
            return Err(Status::invalid_argument(format!("object key longer than {MAX_KEY_BYTES} bytes")));
        }
        if end < start {
            return Err(Status::invalid_argument(format!("range {start}..{end} ends before it starts")));
        }
        if end - start > MAX_PEER_READ_BYTES {
            return Err(Status::resource_exhausted(format!(
                "range of {} bytes; at most {MAX_PEER_READ_BYTES} are served in one answer",
                end - start
            )));
        }
        let (reply, answer) = oneshot::channel();
        let msg = DriverMsg::PeerRead { key, range: start..end, reply };
        if self.ctx.driver.send(msg).await.is_err() {
            return Err(Status::unavailable("the broker is stopping"));
        }
        match answer.await {
            Ok(Ok(data)) => {
                ReadCounters::bump(&self.ctx.counters.peer_reads_served);
                self.ctx.counters.peer_bytes_served.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Ok(Response::new(ReadObjectResponse { data }))
            }
            Ok(Err(e @ PeerReadRefusal::NotHeld)) => Err(Status::not_found(e.to_string())),
            Ok(Err(e @ PeerReadRefusal::OutOfRange { .. })) => Err(Status::out_of_range(e.to_string())),
            Err(_) => Err(Status::unavailable("the broker is stopping")),
        }
    }
}

/// Why a peer read gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum PeerReadError {
    /// The peer's address is not a usable URI.
    #[error("bad peer address {addr}: {reason}")]
    BadAddress { addr: String, reason: String },
    /// The peer answered with an error (NOT_FOUND: it does not hold the object).
    #[error("peer {addr} answered {code:?}: {message}")]
    Refused { addr: String, code: tonic::Code, message: String },
    /// No answer within the bound.
    #[error("peer {addr} did not answer within {} ms", READ_TIMEOUT.as_millis())]
    Timeout { addr: String },
}

/// One lazily connected channel per peer address (a channel reconnects by itself).
#[derive(Debug, Default)]
pub struct PeerClients {
    channels: Mutex<HashMap<String, Channel>>,
}

impl PeerClients {
    fn channel(&self, addr: &str) -> Result<Channel, PeerReadError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| PeerReadError::BadAddress { addr: addr.to_owned(), reason: e.to_string() })?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .tcp_nodelay(true);
        if channels.len() >= MAX_CHANNELS {
            channels.clear();
        }
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// `range` of object `key`, from the peer at `addr`.
    pub async fn read(&self, addr: &str, key: &str, range: Range<u64>) -> Result<Bytes, PeerReadError> {
        let channel = self.channel(addr)?;
        let mut client = PeerClient::new(channel).max_decoding_message_size(MAX_PEER_READ_BYTES as usize + ENVELOPE_BYTES);
        let request = ReadObjectRequest { key: key.to_owned(), start: range.start, end: range.end };
        match tokio::time::timeout(READ_TIMEOUT, client.read_object(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner().data),
            Ok(Err(status)) => {
                Err(PeerReadError::Refused { addr: addr.to_owned(), code: status.code(), message: status.message().to_owned() })
            }
            Err(_) => Err(PeerReadError::Timeout { addr: addr.to_owned() }),
        }
    }
}
