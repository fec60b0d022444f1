//! A small async Kafka connection: size-prefixed framing, correlation ids,
//! ApiVersions negotiation and pipelined requests.
//!
//! One reader task per connection reads response frames and hands each to the
//! request that is waiting for it (matched by correlation id). A request is
//! either awaited on its own ([`Connection::call`]) or *streamed*
//! ([`Connection::send_streamed`]): its response is then delivered, in the
//! order the broker sent it, on the connection's response stream
//! ([`Connection::take_stream`]). Streaming is how the producer keeps several
//! requests in flight and still sees their answers in order. Requests that
//! get no answer (Produce with acks=0) are sent with [`Connection::send_oneway`].
//!
//! The window of requests in flight is the caller's to bound: the producer
//! never sends more than `max.in.flight.requests.per.connection`, the consumer
//! has one Fetch in flight per broker, as Kafka's own clients do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use strata_proto::codec::header::{decode_response_frame, Request};
use strata_proto::messages::{ApiVersionsRequest, ApiVersionsResponse, Message};
use strata_proto::{ApiKey, FrameDecoder, RequestBody, RequestHeader, ResponseBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::compat::OwnedWriteHalf;
use crate::frame_write::write_all_parts;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// What went wrong talking to one broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error or "timed out".
        reason: String,
    },
    /// Reading or writing the socket failed, or the broker closed it.
    #[error("connection to {addr} lost: {reason}")]
    Closed {
        /// host:port.
        addr: String,
        /// What ended it.
        reason: String,
    },
    /// A request could not be encoded.
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        /// Api name.
        api: &'static str,
        /// Api version.
        version: i16,
        /// The codec's message.
        reason: String,
    },
    /// A response could not be decoded.
    #[error("cannot decode {api} v{version} response: {reason}")]
    Decode {
        /// Api name.
        api: &'static str,
        /// Api version.
        version: i16,
        /// The codec's message.
        reason: String,
    },
    /// The broker and this client share no version of an api.
    #[error("the broker at {addr} supports no version of {api} that this client speaks")]
    Unsupported {
        /// host:port.
        addr: String,
        /// Api name.
        api: &'static str,
    },
    /// ApiVersions failed with a Kafka error code.
    #[error("ApiVersions to {addr} failed with error code {code}")]
    ApiVersions {
        /// host:port.
        addr: String,
        /// Kafka error code.
        code: i16,
    },
    /// No response within the request timeout.
    #[error("{api} request to {addr} timed out after {timeout:?}")]
    Timeout {
        /// host:port.
        addr: String,
        /// Api name.
        api: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The broker answered a correlation id that was not asked.
    #[error("{addr} answered correlation id {correlation_id}, which no request is waiting for")]
    UnknownCorrelation {
        /// host:port.
        addr: String,
        /// The id it sent.
        correlation_id: i32,
    },
}

impl ClientError {
    /// A short, stable name for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } => "connect",
            ClientError::Closed { .. } => "connection lost",
            ClientError::Encode { .. } => "encode",
            ClientError::Decode { .. } => "decode",
            ClientError::Unsupported { .. } => "unsupported api",
            ClientError::ApiVersions { .. } => "api versions",
            ClientError::Timeout { .. } => "request timeout",
            ClientError::UnknownCorrelation { .. } => "unknown correlation id",
        }
    }
}

/// A response frame as it arrived, not yet decoded.
#[derive(Debug)]
pub struct RawResponse {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// The api of the request.
    pub api: ApiKey,
    /// The version the request was sent at.
    pub version: i16,
    /// The frame (after the size prefix), or why none came.
    pub frame: Result<Bytes, ClientError>,
    /// When the reader task had the whole frame.
    pub received_at: Instant,
}

impl RawResponse {
    /// Decodes the frame into its body.
    pub fn decode(self) -> Result<ResponseBody, ClientError> {
        let frame = self.frame?;
        let (header, body) = decode_response_frame(frame, self.api, self.version).map_err(|e| ClientError::Decode {
            api: self.api.name(),
            version: self.version,
            reason: e.to_string(),
        })?;
        debug_assert_eq!(header.correlation_id, self.correlation_id);
        Ok(body)
    }
}

enum Reply {
    Once(oneshot::Sender<RawResponse>),
    Stream,
}

struct PendingEntry {
    api: ApiKey,
    version: i16,
    reply: Reply,
}

struct Shared {
    addr: String,
    pending: Mutex<HashMap<i32, PendingEntry>>,
    /// Set when the connection is dead; later requests fail at once.
    closed: Mutex<Option<ClientError>>,
    stream_tx: mpsc::UnboundedSender<RawResponse>,
}

impl Shared {
    fn fail_all(&self, err: ClientError) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if closed.is_none() {
            *closed = Some(err.clone());
        }
        drop(closed);
        let mut pending: Vec<(i32, PendingEntry)> =
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        pending.sort_by_key(|(c, _)| *c);
        let now = Instant::now();
        for (correlation_id, e) in pending {
            let raw = RawResponse { correlation_id, api: e.api, version: e.version, frame: Err(err.clone()), received_at: now };
            match e.reply {
                Reply::Once(tx) => {
                    let _ = tx.send(raw);
                }
                Reply::Stream => {
                    let _ = self.stream_tx.send(raw);
                }
            }
        }
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match &*self.closed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// The versions of each api that both sides speak.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    broker: HashMap<i16, (i16, i16)>,
}

impl Versions {
    /// Builds the table from an ApiVersions response.
    pub fn from_response(resp: &ApiVersionsResponse) -> Versions {
        Versions { broker: resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect() }
    }

    /// The highest version of `api` that both this client's codec and the broker support.
    pub fn pick(&self, api: ApiKey) -> Option<i16> {
        let (our_min, our_max) = api.versions();
        let &(their_min, their_max) = self.broker.get(&(api as i16))?;
        let v = our_max.min(their_max);
        (v >= our_min.max(their_min)).then_some(v)
    }
}

/// One TCP connection to a broker, after ApiVersions.
pub struct Connection {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    client_id: Option<String>,
    next_correlation: AtomicI32,
    versions: Versions,
    stream_rx: Mutex<Option<mpsc::UnboundedReceiver<RawResponse>>>,
    reader: JoinHandle<()>,
    timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).finish()
    }
}

/// Options for a new connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Sent in every request header.
    pub client_id: Option<String>,
    /// Timeout for connecting and for each `call`.
    pub timeout: Duration,
    /// The largest response frame accepted.
    pub max_frame: usize,
}

impl Connection {
    /// Connects to `addr` (host:port) and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Connection, ClientError> {
        let connect_err = |reason: String| ClientError::Connect { addr: addr.to_string(), reason };
        let stream = tokio::time::timeout(opts.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(format!("timed out after {:?}", opts.timeout)))?
            .map_err(|e| connect_err(e.to_string()))?;
        // Kafka's clients disable Nagle too.
        stream.set_nodelay(true).map_err(|e| connect_err(e.to_string()))?;
        let (read, write) = crate::compat::split(stream);
        let (stream_tx, stream_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            stream_tx,
        });
        let reader = tokio::spawn(read_loop(read, shared.clone(), FrameDecoder::new(opts.max_frame)));
        let mut conn = Connection {
            shared,
            writer: tokio::sync::Mutex::new(write),
            client_id: opts.client_id.clone(),
            next_correlation: AtomicI32::new(0),
            versions: Versions::default(),
            stream_rx: Mutex::new(Some(stream_rx)),
            reader,
            timeout: opts.timeout,
        };
        conn.versions = conn.negotiate().await?;
        Ok(conn)
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The negotiated versions.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The version this connection uses for `api`.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions.pick(api).ok_or_else(|| ClientError::Unsupported { addr: self.shared.addr.clone(), api: api.name() })
    }

    /// ApiVersions at the highest version we speak; on UNSUPPORTED_VERSION the
    /// broker answers in v0 with its own range, and we retry at the best common one.
    async fn negotiate(&self) -> Result<Versions, ClientError> {
        let ours = ApiVersionsRequest::VERSIONS.1;
        let mut version = ours;
        for _ in 0..2 {
            let body = RequestBody::ApiVersions(ApiVersionsRequest {
                client_software_name: "strata-bench".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
            });
            let raw = self.call_at(body, version).await?;
            let frame = raw.frame.clone()?;
            // Try the version we asked for; a broker that does not know it answers in v0.
            let resp = match raw.decode() {
                Ok(ResponseBody::ApiVersions(r)) => r,
                _ => match decode_response_frame(frame, ApiKey::ApiVersions, 0) {
                    Ok((_, ResponseBody::ApiVersions(r))) => r,
                    Ok(_) => unreachable!("ApiVersions decodes to ApiVersions"),
                    Err(e) => {
                        return Err(ClientError::Decode { api: "ApiVersions", version, reason: e.to_string() });
                    }
                },
            };
            if resp.error_code == UNSUPPORTED_VERSION {
                let theirs = resp.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions as i16);
                match theirs {
                    Some(k) if k.max_version < version && k.max_version >= 0 => {
                        version = k.max_version.min(ours);
                        continue;
                    }
                    _ => return Err(ClientError::ApiVersions { addr: self.shared.addr.clone(), code: resp.error_code }),
                }
            }
            if resp.error_code != 0 {
                return Err(ClientError::ApiVersions { addr: self.shared.addr.clone(), code: resp.error_code });
            }
            return Ok(Versions::from_response(&resp));
        }
        Err(ClientError::ApiVersions { addr: self.shared.addr.clone(), code: UNSUPPORTED_VERSION })
    }

    /// The request's frame, with its large records left out (sent from their
    /// own buffers, as a client's batches are, not copied into the frame).
    fn encode(&self, body: RequestBody, version: i16) -> Result<(i32, ApiKey, BytesMut, Vec<(usize, Bytes)>), ClientError> {
        let api = body.api_key();
        let correlation_id = self.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let request = Request {
            header: RequestHeader { api_key: api as i16, api_version: version, correlation_id, client_id: self.client_id.clone() },
            body,
        };
        let mut buf = BytesMut::with_capacity(1024);
        let records = request
            .encode_frame_deferred(&mut buf)
            .map_err(|e| ClientError::Encode { api: api.name(), version, reason: e.to_string() })?;
        Ok((correlation_id, api, buf, records))
    }

    async fn write(&self, buf: &[u8], records: &[(usize, Bytes)]) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        // flush: a no-op on a real socket; madsim's stream sends on flush.
        let written = match write_all_parts(&mut *w, buf, records).await {
            Ok(()) => w.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let err = ClientError::Closed { addr: self.shared.addr.clone(), reason: e.to_string() };
            self.shared.fail_all(err.clone());
            return Err(err);
        }
        Ok(())
    }

    async fn send_with(&self, body: RequestBody, version: i16, reply: Option<Reply>) -> Result<(i32, Instant), ClientError> {
        self.shared.check_open()?;
        let (correlation_id, api, buf, records) = self.encode(body, version)?;
        if let Some(reply) = reply {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(correlation_id, PendingEntry { api, version, reply });
        }
        let sent_at = Instant::now();
        self.write(&buf, &records).await?;
        Ok((correlation_id, sent_at))
    }

    async fn call_at(&self, body: RequestBody, version: i16) -> Result<RawResponse, ClientError> {
        let api = body.api_key();
        let (tx, rx) = oneshot::channel();
        self.send_with(body, version, Some(Reply::Once(tx))).await?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(raw)) => Ok(raw),
            Ok(Err(_)) => Err(ClientError::Closed { addr: self.shared.addr.clone(), reason: "reader stopped".into() }),
            Err(_) => Err(ClientError::Timeout { addr: self.shared.addr.clone(), api: api.name(), timeout: self.timeout }),
        }
    }

    /// Sends a request at the negotiated version and waits for its response
    /// (up to the connection timeout plus `extra`, e.g. a fetch's max wait).
    pub async fn call(&self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        self.call_timed(body, Duration::ZERO).await.map(|(b, _)| b)
    }

    /// Like [`call`](Self::call), also returning when the response arrived.
    pub async fn call_timed(&self, body: RequestBody, extra: Duration) -> Result<(ResponseBody, Instant), ClientError> {
        let api = body.api_key();
        let version = self.version(api)?;
        let (tx, rx) = oneshot::channel();
        self.send_with(body, version, Some(Reply::Once(tx))).await?;
        let timeout = self.timeout + extra;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(raw)) => {
                let at = raw.received_at;
                Ok((raw.decode()?, at))
            }
            Ok(Err(_)) => Err(ClientError::Closed { addr: self.shared.addr.clone(), reason: "reader stopped".into() }),
            Err(_) => {
                let err = ClientError::Timeout { addr: self.shared.addr.clone(), api: api.name(), timeout };
                // A late answer would desynchronise nothing (ids are unique), but the
                // connection is suspect: fail it, as Kafka's clients do.
                self.shared.fail_all(err.clone());
                Err(err)
            }
        }
    }

    /// Sends a request whose response will come on the response stream.
    /// Returns the correlation id and when the write started.
    pub async fn send_streamed(&self, body: RequestBody) -> Result<(i32, Instant), ClientError> {
        let version = self.version(body.api_key())?;
        self.send_with(body, version, Some(Reply::Stream)).await
    }

    /// Sends a request the broker will not answer (Produce with acks=0).
    pub async fn send_oneway(&self, body: RequestBody) -> Result<Instant, ClientError> {
        let version = self.version(body.api_key())?;
        self.send_with(body, version, None).await.map(|(_, t)| t)
    }

    /// Takes the stream of responses to streamed requests, in arrival order.
    /// A dead connection yields one error per streamed request still waiting.
    pub fn take_stream(&self) -> Option<mpsc::UnboundedReceiver<RawResponse>> {
        self.stream_rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Marks the connection dead (e.g. after a response timeout seen by the caller).
    pub fn fail(&self, err: ClientError) {
        self.shared.fail_all(err);
    }
}

async fn read_loop(mut read: crate::compat::OwnedReadHalf, shared: Arc<Shared>, frames: FrameDecoder) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            match frames.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let received_at = Instant::now();
                    if frame.len() < 4 {
                        shared.fail_all(ClientError::Closed {
                            addr: shared.addr.clone(),
                            reason: format!("response frame of {} bytes has no correlation id", frame.len()),
                        });
                        return;
                    }
                    let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                    let entry = shared.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&correlation_id);
                    let Some(entry) = entry else {
                        shared.fail_all(ClientError::UnknownCorrelation { addr: shared.addr.clone(), correlation_id });
                        return;
                    };
                    let raw =
                        RawResponse { correlation_id, api: entry.api, version: entry.version, frame: Ok(frame), received_at };
                    match entry.reply {
                        Reply::Once(tx) => {
                            let _ = tx.send(raw);
                        }
                        Reply::Stream => {
                            let _ = shared.stream_tx.send(raw);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.fail_all(ClientError::Closed { addr: shared.addr.clone(), reason: e.to_string() });
                    return;
                }
            }
        }
        // Room for the rest of the frame being read (a large fetch response is
        // read into one allocation, not grown step by step), and at least 64 KiB.
        let frame_rest = match buf.get(..4) {
            Some(p) => (i32::from_be_bytes([p[0], p[1], p[2], p[3]]).max(0) as usize + 4).saturating_sub(buf.len()),
            None => 0,
        };
        let want = frame_rest.min(frames.max_frame() + 4).max(16 * 1024);
        if buf.capacity() - buf.len() < want {
            buf.reserve(want.max(64 * 1024));
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                shared.fail_all(ClientError::Closed { addr: shared.addr.clone(), reason: "closed by the broker".into() });
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail_all(ClientError::Closed { addr: shared.addr.clone(), reason: e.to_string() });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_proto::messages::api_versions_response::ApiVersion;

    #[test]
    fn versions_pick_the_highest_common_one() {
        let resp = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion { api_key: ApiKey::Produce as i16, min_version: 3, max_version: 9 },
                ApiVersion { api_key: ApiKey::Fetch as i16, min_version: 0, max_version: 3 },
            ],
            ..Default::default()
        };
        let v = Versions::from_response(&resp);
        assert_eq!(v.pick(ApiKey::Produce), Some(9));
        // Our codec speaks Fetch from v4 only; the broker tops out at v3.
        assert_eq!(v.pick(ApiKey::Fetch), None);
        assert_eq!(v.pick(ApiKey::Metadata), None);
    }
}
