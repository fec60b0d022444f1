//! The driver: one task owning the core's [`Broker`]. It feeds it [`Input`]s
//! and carries out its [`Output`]s — responses to connections, object writes
//! and reads, sequencer appends, timers — feeding the results back as inputs.
//!
//! The broker is single-threaded and pure, so the driver never does anything
//! slow itself: IO runs in spawned tasks (object store) or the appender task
//! (sequencer), whose results come back through the driver's channel.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use object_store::PutPayload;
use strata_core::broker::Broker;
use strata_core::io::{AppendId, AppendResult, ConnId, Input, Output, ReadId};
use strata_core::log::state::LogState;
use strata_proto::ResponseBody;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::admin::{read_recent, AdminRequest, CoreStatus, FlushWaiter, PeerReadRefusal};
use super::counters::ReadCounters;
use super::crash_point::{crash_point, CrashPoint};
use super::peer_reads::{PeerRead, PeerReads};
use super::snapshots::SnapshotPolicy;
use super::timers::Timers;
use crate::sequencer::{AppendError, Sequencer};
use crate::store::{BlockCache, ObjectStoreBackend};

/// Capacity of the driver's input channel. Connections wait (and so stop
/// reading) when the driver falls this far behind.
pub const DRIVER_QUEUE: usize = 4096;

/// What reaches the driver.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // nearly every message is an Input
pub enum DriverMsg {
    /// Something for the core.
    Input(Input),
    /// A new connection and where its responses go. Sent by the connection
    /// itself before its first request.
    Open { conn: ConnId, peer: std::net::SocketAddr, events: mpsc::UnboundedSender<ConnEvent> },
    /// The sequencer holds a record at `revision` that is not a commit this
    /// build can decode; it was skipped (the applied watermark moves past it).
    Skipped { revision: u64 },
    /// A read of `range` of object `key` finished: every read waiting on it
    /// gets the result.
    ReadDone { key: String, range: std::ops::Range<u64>, result: Result<Bytes, String> },
    /// Replace the applied state with this newer snapshot (the commits between
    /// were truncated from the sequencer before this broker applied them).
    Reload(Box<strata_core::log::state::LogState>),
    /// Report the applied revision and the state's digest (tests, checks).
    Digest(tokio::sync::oneshot::Sender<(u64, u64)>),
    /// Write the open object now (graceful shutdown).
    Flush,
    /// A peer asks for `range` of one of this broker's recent objects (internal gRPC).
    PeerRead { key: String, range: std::ops::Range<u64>, reply: tokio::sync::oneshot::Sender<Result<Bytes, PeerReadRefusal>> },
    /// An operator's request (internal gRPC admin service).
    Admin(AdminRequest),
    /// Stop the driver.
    Stop,
}

/// What the driver tells a connection.
#[derive(Debug)]
pub enum ConnEvent {
    /// The response to request number `request`.
    Respond { request: u64, correlation_id: i32, api_version: i16, body: ResponseBody },
    /// Request number `request` gets no response (acks=0).
    NoResponse { request: u64 },
    /// Close the connection now.
    Close,
    /// From the connection's own reader, which stopped reading (shutdown):
    /// finish once the first `requests` requests are answered.
    Drain { requests: u64 },
}

/// The driver's clock: Unix-epoch milliseconds read once at start, advanced by
/// tokio's monotonic clock — wall time for LogAppendTime stamps, and never
/// going backwards for timers.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_epoch_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        let start_epoch_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Clock { start: Instant::now(), start_epoch_ms }
    }

    /// Milliseconds since the Unix epoch, monotonic.
    pub fn now_ms(&self) -> u64 {
        self.start_epoch_ms + self.start.elapsed().as_millis() as u64
    }

    /// The instant at which `now_ms()` reaches `ms`.
    pub fn instant(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.start_epoch_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The driver task's state.
pub struct Driver {
    broker: Broker,
    clock: Clock,
    rx: mpsc::Receiver<DriverMsg>,
    /// Cloned into the tasks whose results come back as inputs.
    tx: mpsc::Sender<DriverMsg>,
    conns: HashMap<ConnId, mpsc::UnboundedSender<ConnEvent>>,
    timers: Timers,
    appender: mpsc::UnboundedSender<(AppendId, Bytes)>,
    store: ObjectStoreBackend,
    cache: Arc<Mutex<BlockCache>>,
    /// Inputs produced by the driver itself (cache hits), fed before anything new.
    local: VecDeque<Input>,
    /// Store reads in flight, by (object, start, end), and the reads waiting on each.
    reads: HashMap<(String, u64, u64), Vec<ReadId>>,
    /// The last applied revision, for whoever waits on the replay.
    applied: watch::Sender<u64>,
    /// Bound on an object write.
    write_timeout: Duration,
    /// When to snapshot, and the snapshotter task taking the states.
    snapshots: Option<(SnapshotPolicy, mpsc::Sender<LogState>)>,
    out: Vec<Output>,
    /// The simulator crashed this broker at a crash point: do nothing more.
    crashed: bool,
    /// Asked before the object store, for objects other live brokers wrote.
    peer_reads: PeerReads,
    /// Where reads went.
    counters: Arc<ReadCounters>,
    /// Admin flushes and drains waiting for their objects to be committed.
    flush_waiters: Vec<FlushWaiter>,
}

impl Driver {
    /// A driver for `broker`. `tx` is the sending side of `rx`; `applied`
    /// starts at the revision the broker's state already reflects.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        broker: Broker,
        clock: Clock,
        rx: mpsc::Receiver<DriverMsg>,
        tx: mpsc::Sender<DriverMsg>,
        appender: mpsc::UnboundedSender<(AppendId, Bytes)>,
        store: ObjectStoreBackend,
        cache: Arc<Mutex<BlockCache>>,
        applied: watch::Sender<u64>,
        write_timeout: Duration,
    ) -> Self {
        Driver {
            broker,
            clock,
            rx,
            tx,
            conns: HashMap::new(),
            timers: Timers::default(),
            appender,
            store,
            cache,
            local: VecDeque::new(),
            reads: HashMap::new(),
            applied,
            write_timeout,
            snapshots: None,
            out: Vec::new(),
            crashed: false,
            peer_reads: PeerReads::none(),
            counters: Arc::default(),
            flush_waiters: Vec::new(),
        }
    }

    /// Asks `peers` before the object store, and counts reads in `counters`.
    pub fn with_peer_reads(mut self, peers: PeerReads, counters: Arc<ReadCounters>) -> Self {
        self.peer_reads = peers;
        self.counters = counters;
        self
    }

    /// Hands the applied state to `snapshotter` at each of `policy`'s points.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy, snapshotter: mpsc::Sender<LogState>) -> Self {
        self.snapshots = Some((policy, snapshotter));
        self
    }

    /// Runs until [`DriverMsg::Stop`] (or until every sender is gone).
    pub async fn run(mut self) {
        loop {
            if self.crashed {
                // Frozen at a crash point until the simulator kills the node.
                std::future::pending::<()>().await;
            }
            while let Some(input) = self.local.pop_front() {
                self.feed(input);
            }
            let deadline = self.timers.next_deadline().map(|ms| self.clock.instant(ms));
            crate::det_select! {
                msg = self.rx.recv() => match msg {
                    None | Some(DriverMsg::Stop) => break,
                    Some(msg) => self.on_msg(msg),
                },
                _ = sleep_until_opt(deadline) => {
                    for timer in self.timers.pop_due(self.clock.now_ms()) {
                        self.feed(Input::Timer { timer });
                    }
                }
            }
        }
        tracing::debug!("driver stopped");
    }

    fn on_msg(&mut self, msg: DriverMsg) {
        match msg {
            DriverMsg::Input(input) => {
                if let Input::Closed { conn } = &input {
                    self.conns.remove(conn);
                }
                let point = match &input {
                    Input::ObjectWritten { result: Ok(()), .. } => Some(CrashPoint::MidFlush),
                    Input::Appended { result: AppendResult::Ok(_), .. } => Some(CrashPoint::MidCommit),
                    _ => None,
                };
                if point.is_some_and(|p| self.crash_at(p)) {
                    return;
                }
                self.feed(input);
            }
            DriverMsg::Open { conn, peer, events } => {
                self.conns.insert(conn, events);
                self.feed(Input::Opened { conn, peer: peer.ip().to_string() });
            }
            DriverMsg::Skipped { revision } => {
                self.feed(Input::Skipped { revision });
                self.applied.send_replace(revision);
            }
            DriverMsg::ReadDone { key, range, result } => {
                for read in self.reads.remove(&(key, range.start, range.end)).unwrap_or_default() {
                    self.feed(Input::ReadDone { read, result: result.clone() });
                }
            }
            DriverMsg::Reload(state) => {
                let revision = state.revision;
                let mut out = std::mem::take(&mut self.out);
                if self.broker.reload(*state, &mut out) {
                    self.applied.send_replace(revision);
                }
                for output in out.drain(..) {
                    self.carry(output);
                }
                self.out = out;
            }
            DriverMsg::Digest(reply) => {
                let _ = reply.send((self.broker.log().revision, self.broker.log().digest()));
            }
            DriverMsg::Flush => self.feed(Input::Flush),
            DriverMsg::PeerRead { key, range, reply } => {
                let _ = reply.send(read_recent(&self.broker, &key, range));
            }
            DriverMsg::Admin(request) => self.on_admin(request),
            DriverMsg::Stop => {}
        }
    }

    fn on_admin(&mut self, request: AdminRequest) {
        let reply = match request {
            AdminRequest::Status(reply) => {
                let _ = reply.send(CoreStatus::of(&self.broker));
                return;
            }
            AdminRequest::Flush(reply) => reply,
            AdminRequest::Drain(reply) => {
                let mut out = std::mem::take(&mut self.out);
                self.broker.drain(&mut out);
                for output in out.drain(..) {
                    self.carry(output);
                }
                self.out = out;
                reply
            }
        };
        // What was open and in flight before the flush is what the answer waits for.
        let before = self.broker.flush_progress();
        let objects = before.inflight_objects as u64 + u64::from(before.open_bytes > 0);
        self.feed(Input::Flush);
        self.flush_waiters.push(FlushWaiter::new(&self.broker, objects, before.failed, reply));
        self.settle_flush_waiters();
    }

    /// Answers the admin flushes whose objects are all settled.
    fn settle_flush_waiters(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let broker = &self.broker;
        self.flush_waiters = std::mem::take(&mut self.flush_waiters).into_iter().filter_map(|w| w.settle(broker)).collect();
    }

    /// Feeds one input to the core and carries out what it asks.
    fn feed(&mut self, input: Input) {
        let applied = match &input {
            Input::Applied { revision, .. } => Some(*revision),
            _ => None,
        };
        let mut out = std::mem::take(&mut self.out);
        let before = self.broker.log().revision;
        self.broker.handle(self.clock.now_ms(), input, &mut out);
        if applied.is_some() && self.crash_at(CrashPoint::MidApply) {
            out.clear();
            self.out = out;
            return;
        }
        if let Some(revision) = applied {
            self.applied.send_replace(revision);
        }
        self.maybe_snapshot(before);
        for output in out.drain(..) {
            self.carry(output);
        }
        self.out = out;
        self.settle_flush_waiters();
    }

    /// Whether the simulator crashes this broker at `point` (it then stays frozen).
    fn crash_at(&mut self, point: CrashPoint) -> bool {
        self.crashed = self.crashed || crash_point(point, self.broker.config().node_id);
        self.crashed
    }

    /// At a snapshot point, hands a copy of the applied state to the
    /// snapshotter (which encodes and writes it off this task), if this broker
    /// takes the cluster's snapshots. A snapshotter still busy with the
    /// previous one skips this point.
    fn maybe_snapshot(&mut self, before: u64) {
        let Some((policy, snapshotter)) = &self.snapshots else { return };
        let after = self.broker.log().revision;
        if policy.due(before, after) && snapshotter.capacity() > 0 && self.broker.takes_snapshots() {
            let _ = snapshotter.try_send(self.broker.log().clone());
        }
    }

    fn send_to_conn(&mut self, conn: ConnId, event: ConnEvent) {
        if let Some(events) = self.conns.get(&conn) {
            // A connection that is gone sends `Closed` soon; drop what it missed.
            let _ = events.send(event);
        }
    }

    fn carry(&mut self, output: Output) {
        match output {
            Output::Respond { conn, request, correlation_id, api_version, body } => {
                self.send_to_conn(conn, ConnEvent::Respond { request, correlation_id, api_version, body })
            }
            Output::NoResponse { conn, request } => self.send_to_conn(conn, ConnEvent::NoResponse { request }),
            Output::Close { conn } => self.send_to_conn(conn, ConnEvent::Close),
            Output::SetTimer { timer, at_ms } => self.timers.set(timer, at_ms),
            Output::Append { append, commit } => {
                // The appender keeps the order of appends; it lives as long as we do.
                let _ = self.appender.send((append, commit.encode()));
            }
            Output::WriteObject { write, key, bytes } => {
                let store = self.store.clone();
                let tx = self.tx.clone();
                let limit = self.write_timeout;
                tokio::spawn(async move {
                    let size = bytes.len();
                    let started = Instant::now();
                    let result = match tokio::time::timeout(limit, store.put_create(&key, PutPayload::from_iter(bytes.parts().iter().cloned()))).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("writing object {key} timed out after {} ms", limit.as_millis())),
                    };
                    match &result {
                        Ok(()) => tracing::trace!(%key, size, us = started.elapsed().as_micros() as u64, "object written"),
                        Err(e) => tracing::warn!(%key, size, error = %e, "object write failed"),
                    }
                    let _ = tx.send(DriverMsg::Input(Input::ObjectWritten { write, result })).await;
                });
            }
            Output::ListObjects { prefix } => {
                let store = self.store.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = store.list(&prefix).await.map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::warn!(%prefix, error = %e, "object GC: listing failed; the next pass lists again");
                    }
                    let _ = tx.send(DriverMsg::Input(Input::ObjectsListed { result })).await;
                });
            }
            Output::DeleteObjects { keys } => {
                let store = self.store.clone();
                tokio::spawn(async move {
                    let mut failed = 0usize;
                    for key in &keys {
                        if let Err(e) = store.delete(key).await {
                            failed += 1;
                            tracing::warn!(%key, error = %e, "object GC: delete failed; the next pass retries");
                        }
                    }
                    tracing::info!(deleted = keys.len() - failed, failed, "object GC: deleted unreferenced objects");
                });
            }
            Output::Read { read, key, range } => {
                let hit = self.cache.lock().expect("cache lock").get(&key, &range);
                if let Some(bytes) = hit {
                    self.local.push_back(Input::ReadDone { read, result: Ok(bytes) });
                    return;
                }
                // One store read per range at a time: a fetch asking for a range
                // that is being read ahead waits for that read.
                match self.reads.entry((key.clone(), range.start, range.end)) {
                    std::collections::hash_map::Entry::Occupied(mut waiting) => {
                        waiting.get_mut().push(read);
                        return;
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(vec![read]);
                    }
                }
                let store = self.store.clone();
                let cache = self.cache.clone();
                let tx = self.tx.clone();
                let peers = self.peer_reads.clone();
                let counters = self.counters.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    // The broker that wrote it may still hold it in memory: no GET then.
                    match peers.read(&key, range.clone()).await {
                        PeerRead::Got(bytes) => {
                            ReadCounters::bump(&counters.peer_reads_used);
                            tracing::trace!(%key, size = bytes.len(), us = started.elapsed().as_micros() as u64, "object read from a peer");
                            cache.lock().expect("cache lock").insert(&key, &range, bytes.clone());
                            let _ = tx.send(DriverMsg::ReadDone { key, range, result: Ok(bytes) }).await;
                            return;
                        }
                        PeerRead::Missed => ReadCounters::bump(&counters.peer_reads_missed),
                        PeerRead::NotTried => {}
                    }
                    ReadCounters::bump(&counters.store_gets);
                    // The GET's own time (a missed peer read is not in it).
                    let started = Instant::now();
                    let result = match store.get_range(&key, range.clone()).await {
                        // A short answer is not cached: the core fails that read, and a
                        // cached one would fail every later read of the range too.
                        Ok(bytes) if bytes.len() as u64 == range.end.saturating_sub(range.start) => {
                            tracing::trace!(%key, size = bytes.len(), us = started.elapsed().as_micros() as u64, "object read");
                            cache.lock().expect("cache lock").insert(&key, &range, bytes.clone());
                            Ok(bytes)
                        }
                        Ok(bytes) => {
                            tracing::warn!(%key, ?range, got = bytes.len(), "object read returned the wrong length");
                            Ok(bytes)
                        }
                        Err(e) => {
                            tracing::warn!(%key, ?range, error = %e, "object read failed");
                            Err(e.to_string())
                        }
                    };
                    let _ = tx.send(DriverMsg::ReadDone { key, range, result }).await;
                });
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The appender: hands commits to the sequencer in the order the core emitted
/// them, without waiting for one to be durable before starting the next (the
/// sequencer's group commit keeps them pipelined). Each append is polled once
/// here, in order — that is when it joins the sequencer's queue — and then
/// awaited in its own task, which feeds [`Input::Appended`].
pub async fn run_appender<S: Sequencer + 'static>(
    sequencer: Arc<S>,
    mut rx: mpsc::UnboundedReceiver<(AppendId, Bytes)>,
    tx: mpsc::Sender<DriverMsg>,
) {
    while let Some((append, record)) = rx.recv().await {
        let seq = sequencer.clone();
        let started = Instant::now();
        let mut fut: Pin<Box<dyn Future<Output = Result<u64, AppendError>> + Send>> = Box::pin(async move {
            let result = seq.append(record).await;
            tracing::trace!(us = started.elapsed().as_micros() as u64, "commit appended");
            result
        });
        // One poll now, in emission order; it registers the waker as usual.
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        let tx = tx.clone();
        match first {
            Poll::Ready(result) => {
                let _ = tx.send(DriverMsg::Input(Input::Appended { append, result: append_result(result) })).await;
            }
            Poll::Pending => {
                tokio::spawn(async move {
                    let result = fut.await;
                    let _ = tx.send(DriverMsg::Input(Input::Appended { append, result: append_result(result) })).await;
                });
            }
        }
    }
}

fn append_result(result: Result<u64, AppendError>) -> AppendResult {
    match result {
        Ok(revision) => AppendResult::Ok(revision),
        Err(AppendError::Failed(e)) => {
            tracing::warn!(error = %e, "sequencer append failed");
            AppendResult::Failed(e.to_string())
        }
        Err(AppendError::Unknown(e)) => {
            tracing::warn!(error = %e, "sequencer append outcome unknown");
            AppendResult::Unknown(e.to_string())
        }
    }
}
