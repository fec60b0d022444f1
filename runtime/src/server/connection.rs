//! One client connection: a reader that turns frames into requests for the
//! driver, and a writer that sends the responses back in request order.
//!
//! Reader: 4-byte size prefix, checked against `--max-request-bytes` before a
//! byte of the frame is read; the frame; decoding (in this task, off the
//! driver). A frame that cannot be decoded closes the connection, as Kafka
//! does — except an ApiVersions request of a version we do not know, which
//! gets a v0 UNSUPPORTED_VERSION answer with our api list, so the client can
//! retry with a version we speak.
//!
//! Writer: responses arrive from the driver in any order; each is sent once
//! every earlier request is answered (or skipped, for acks=0). Encoding
//! happens here too.
//!
//! Bounds: at most `max_inflight_requests` requests and `max_inflight_bytes`
//! request bytes unanswered per connection (the reader stops reading when
//! either is reached); a connection with nothing in flight that stays quiet
//! for `idle_timeout` is closed.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_core::broker::api_versions_fallback;
use strata_core::io::{ConnId, Input};
use strata_proto::codec::header::{encode_response_frame_deferred, Request, RequestError};
use strata_proto::{ApiKey, FrameDecoder, ResponseBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};

use super::driver::{Clock, ConnEvent, DriverMsg};
use crate::compat::{OwnedReadHalf, OwnedWriteHalf};
use crate::frame_write::write_all_parts;

/// Write the response buffer out once it holds this much, even if more
/// responses are ready.
const WRITE_CHUNK: usize = 1 << 20;
/// Read buffer of a connection (many small pipelined requests per syscall).
const READ_BUFFER: usize = 64 << 10;

/// What every connection shares.
#[derive(Debug)]
pub struct ConnConfig {
    /// The driver's channel.
    pub driver: mpsc::Sender<DriverMsg>,
    /// Frame size check (`--max-request-bytes`).
    pub frames: FrameDecoder,
    /// Requests in flight per connection.
    pub max_inflight_requests: usize,
    /// Request bytes in flight per connection.
    pub max_inflight_bytes: usize,
    /// Close quiet connections after this long.
    pub idle_timeout: Duration,
    /// The server's clock (for idleness).
    pub clock: Clock,
}

/// Per-connection state shared by its reader and writer.
struct Shared {
    inflight: Semaphore,
    bytes: Semaphore,
    /// Byte permits taken by each unanswered request, in request order.
    sizes: Mutex<VecDeque<(u32, std::time::Instant)>>,
    /// When the last response was written (clock ms).
    last_write_ms: AtomicU64,
}

/// Why the reader stopped.
enum ReadEnd {
    /// The client closed the connection.
    Eof,
    /// Nothing happened for the idle timeout.
    Idle,
    /// A read failed.
    Io(std::io::Error),
    /// The client sent something we close the connection for (logged).
    Protocol,
    /// The server is shutting down: this many requests were read.
    Drain(u64),
    /// The driver is gone.
    DriverGone,
}

/// Runs connection `conn` until it closes; tells the driver when it does.
pub async fn run_connection(
    conn: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<ConnConfig>,
    stop: watch::Receiver<bool>,
) {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    if cfg.driver.send(DriverMsg::Open { conn, peer, events: events_tx.clone() }).await.is_err() {
        return;
    }
    tracing::debug!(conn, %peer, "connection opened");
    let bytes_budget = cfg.max_inflight_bytes.clamp(1, u32::MAX as usize);
    let shared = Arc::new(Shared {
        inflight: Semaphore::new(cfg.max_inflight_requests.max(1)),
        bytes: Semaphore::new(bytes_budget),
        sizes: Mutex::new(VecDeque::new()),
        last_write_ms: AtomicU64::new(cfg.clock.now_ms()),
    });
    let (rd, wr) = crate::compat::split(stream);
    let reader = read_loop(conn, peer, rd, &cfg, &shared, &events_tx, stop);
    let writer = write_loop(conn, peer, wr, &cfg, &shared, events_rx);
    tokio::pin!(reader, writer);
    crate::det_select! {
        end = &mut reader => {
            match end {
                ReadEnd::Drain(requests) => {
                    // Answer what was read, then close.
                    let _ = events_tx.send(ConnEvent::Drain { requests });
                    writer.await;
                }
                ReadEnd::Eof => tracing::debug!(conn, %peer, "client closed the connection"),
                ReadEnd::Idle => tracing::debug!(conn, %peer, idle_ms = cfg.idle_timeout.as_millis() as u64, "closing idle connection"),
                ReadEnd::Io(e) => tracing::debug!(conn, %peer, error = %e, "connection read failed"),
                ReadEnd::Protocol | ReadEnd::DriverGone => {}
            }
        }
        () = &mut writer => {}
    }
    let _ = cfg.driver.send(DriverMsg::Input(Input::Closed { conn })).await;
    tracing::debug!(conn, %peer, "connection closed");
}

/// Resolves once the server is stopping (or gone).
pub(crate) async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn read_loop(
    conn: ConnId,
    peer: SocketAddr,
    rd: OwnedReadHalf,
    cfg: &ConnConfig,
    shared: &Shared,
    events: &mpsc::UnboundedSender<ConnEvent>,
    mut stop: watch::Receiver<bool>,
) -> ReadEnd {
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let mut n: u64 = 0;
    let mut client_id: Option<String> = None;
    loop {
        // A request slot first: stop reading while the connection is at its bound.
        crate::det_select! {
            permit = shared.inflight.acquire() => match permit {
                Ok(p) => p.forget(),
                Err(_) => return ReadEnd::DriverGone,
            },
            () = stopping(&mut stop) => return ReadEnd::Drain(n),
        }
        // The size prefix, waiting as long as the connection is not idle.
        let mut prefix = [0u8; 4];
        let last_read_ms = cfg.clock.now_ms();
        {
            let read = rd.read_exact(&mut prefix);
            tokio::pin!(read);
            loop {
                let quiet_since = last_read_ms.max(shared.last_write_ms.load(Ordering::Relaxed));
                let idle_at = cfg.clock.instant(quiet_since) + cfg.idle_timeout;
                crate::det_select! {
                    r = &mut read => match r {
                        Ok(_) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Eof,
                        Err(e) => return ReadEnd::Io(e),
                    },
                    () = stopping(&mut stop) => return ReadEnd::Drain(n),
                    () = tokio::time::sleep_until(idle_at) => {
                        // Our own slot is taken; anything else unanswered keeps the connection busy.
                        let busy = cfg.max_inflight_requests.max(1) - shared.inflight.available_permits() > 1;
                        let quiet_since = last_read_ms.max(shared.last_write_ms.load(Ordering::Relaxed));
                        if !busy && cfg.clock.now_ms().saturating_sub(quiet_since) >= cfg.idle_timeout.as_millis() as u64 {
                            return ReadEnd::Idle;
                        }
                    }
                }
            }
        }
        let len = match cfg.frames.frame_len(prefix) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(
                    conn, %peer, client_id = client_id.as_deref().unwrap_or(""), error = %e,
                    "closing connection: bad request size (not a Kafka client, or a request larger than \
                     --max-request-bytes = {})", cfg.frames.max_frame()
                );
                return ReadEnd::Protocol;
            }
        };
        // Byte budget (a request larger than the whole budget takes all of it).
        let want = len.clamp(1, cfg.max_inflight_bytes.clamp(1, u32::MAX as usize)) as u32;
        crate::det_select! {
            permit = shared.bytes.acquire_many(want) => match permit {
                Ok(p) => p.forget(),
                Err(_) => return ReadEnd::DriverGone,
            },
            () = stopping(&mut stop) => return ReadEnd::Drain(n),
        }
        let mut frame = BytesMut::with_capacity(len);
        match tokio::time::timeout(cfg.idle_timeout, read_frame(&mut rd, &mut frame, len)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Eof,
            Ok(Err(e)) => return ReadEnd::Io(e),
            Err(_) => return ReadEnd::Idle,
        }
        shared.sizes.lock().expect("sizes lock").push_back((want, std::time::Instant::now()));
        let request = n;
        n += 1;
        match Request::decode(frame.freeze()) {
            Ok(Request { header, body }) => {
                if client_id.as_deref() != header.client_id.as_deref() {
                    client_id.clone_from(&header.client_id);
                }
                let input = Input::Request { conn, request, header, body, size: len };
                if cfg.driver.send(DriverMsg::Input(input)).await.is_err() {
                    return ReadEnd::DriverGone;
                }
            }
            Err(RequestError { header: Some(h), .. })
                if h.api_key == ApiKey::ApiVersions as i16
                    && !version_supported(ApiKey::ApiVersions, h.api_version) =>
            {
                tracing::debug!(conn, %peer, version = h.api_version, "ApiVersions of an unknown version: answering v0");
                let (api_version, body) = api_versions_fallback();
                let _ =
                    events.send(ConnEvent::Respond { request, correlation_id: h.correlation_id, api_version, body });
            }
            Err(RequestError { header, error }) => {
                let (key, version, cid) = match &header {
                    Some(h) => (h.api_key, h.api_version, h.client_id.clone().or(client_id.clone())),
                    None => (-1, -1, client_id.clone()),
                };
                tracing::warn!(
                    conn, %peer, client_id = cid.as_deref().unwrap_or(""), api_key = key, api_version = version,
                    error = %error, "closing connection: request could not be decoded"
                );
                return ReadEnd::Protocol;
            }
        }
    }
}

/// Reads exactly `len` bytes into `frame`'s spare capacity (not zeroed first:
/// the frame is written once, by the socket read).
async fn read_frame(rd: &mut BufReader<OwnedReadHalf>, frame: &mut BytesMut, len: usize) -> std::io::Result<()> {
    while frame.len() < len {
        let mut limited = (&mut *rd).take((len - frame.len()) as u64);
        if limited.read_buf(frame).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

fn version_supported(key: ApiKey, version: i16) -> bool {
    let (lo, hi) = key.versions();
    (lo..=hi).contains(&version)
}

async fn write_loop(
    conn: ConnId,
    peer: SocketAddr,
    mut wr: OwnedWriteHalf,
    cfg: &ConnConfig,
    shared: &Shared,
    mut events: mpsc::UnboundedReceiver<ConnEvent>,
) {
    let mut next: u64 = 0;
    let mut ready: BTreeMap<u64, Option<(i32, i16, ResponseBody)>> = BTreeMap::new();
    let mut drain_at: Option<u64> = None;
    let mut buf = BytesMut::new();
    // Records left out of `buf` (fetch data), with where they go in it.
    let mut records: Vec<(usize, Bytes)> = Vec::new();
    let mut records_len = 0usize;
    loop {
        if drain_at.is_some_and(|d| next >= d) {
            let _ = wr.shutdown().await;
            return;
        }
        // Take every event that is there (at least one), then write.
        let Some(first) = events.recv().await else { return };
        let mut event = Some(first);
        while let Some(ev) = event.take().or_else(|| events.try_recv().ok()) {
            match ev {
                ConnEvent::Respond { request, correlation_id, api_version, body } => {
                    ready.insert(request, Some((correlation_id, api_version, body)));
                }
                ConnEvent::NoResponse { request } => {
                    ready.insert(request, None);
                }
                ConnEvent::Close => {
                    tracing::debug!(conn, %peer, "closing connection as the broker asked");
                    return;
                }
                ConnEvent::Drain { requests } => drain_at = Some(requests),
            }
        }
        // Send the in-order prefix, in chunks of about WRITE_CHUNK bytes.
        loop {
            let mut answered = 0usize;
            let mut freed_bytes = 0usize;
            while let Some(entry) = ready.remove(&next) {
                if let Some((correlation_id, api_version, body)) = entry {
                    // Fetch data is not copied here: it is written from the
                    // response's own buffers, between the encoded parts.
                    match encode_response_frame_deferred(&mut buf, correlation_id, api_version, &body) {
                        Ok(deferred) => {
                            records_len += deferred.iter().map(|(_, b)| b.len()).sum::<usize>();
                            records.extend(deferred);
                        }
                        Err(e) => {
                            tracing::error!(
                                conn, %peer, api_key = body.api_key() as i16, api_version, error = %e,
                                "cannot encode a response; closing the connection"
                            );
                            return;
                        }
                    }
                }
                next += 1;
                answered += 1;
                if let Some((size, read_at)) = shared.sizes.lock().expect("sizes lock").pop_front() {
                    freed_bytes += size as usize;
                    tracing::trace!(conn, us = read_at.elapsed().as_micros() as u64, "answered");
                }
                if buf.len() + records_len >= WRITE_CHUNK {
                    break;
                }
            }
            if answered == 0 {
                break;
            }
            if !buf.is_empty() {
                // flush: a no-op on a real socket; madsim's stream sends on flush.
                let written = match write_all_parts(&mut wr, &buf, &records).await {
                    Ok(()) => wr.flush().await,
                    Err(e) => Err(e),
                };
                records.clear();
                records_len = 0;
                if let Err(e) = written {
                    tracing::debug!(conn, %peer, error = %e, "connection write failed");
                    return;
                }
                buf.clear();
                if buf.capacity() > 4 * WRITE_CHUNK {
                    buf = BytesMut::new(); // do not keep a huge response's buffer
                }
                shared.last_write_ms.store(cfg.clock.now_ms(), Ordering::Relaxed);
            }
            shared.inflight.add_permits(answered);
            shared.bytes.add_permits(freed_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Many large records: the socket takes them in partial writes, and more
    /// than `MAX_IOV` parts need several vectored writes.
    #[tokio::test]
    async fn vectored_writes_send_the_buffer_with_the_records_in_place() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, client) = tokio::join!(listener.accept(), TcpStream::connect(addr));
        let (_rd, mut wr) = crate::compat::split(accepted.unwrap().0);
        let mut client = client.unwrap();

        let buf: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        // At the start, back to back at one position, and at the very end.
        let mut positions: Vec<usize> = vec![0, 0];
        positions.extend((1..200).map(|i| i * 24));
        positions.extend([buf.len(), buf.len()]);
        let records: Vec<(usize, Bytes)> = positions
            .iter()
            .enumerate()
            .map(|(i, &at)| (at, Bytes::from(vec![i as u8; 30_000 + i])))
            .collect();
        let mut expected = Vec::new();
        let mut at = 0;
        for (pos, b) in &records {
            expected.extend_from_slice(&buf[at..*pos]);
            expected.extend_from_slice(b);
            at = *pos;
        }
        expected.extend_from_slice(&buf[at..]);

        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_all_parts(&mut wr, &buf, &records).await.unwrap();
        wr.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes sent differ from the spliced frame");
    }
}
