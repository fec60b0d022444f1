//! The etcd sequencer (`--sequencer etcd://HOST:PORT,...`): every broker of a
//! cluster appends its commits to one etcd cluster and watches them back.
//!
//! * A commit is a `Put` of the record under `/{cluster}/log/{writer}-{n}`:
//!   `writer` is a random number drawn per [`EtcdSequencer`] and `n` its
//!   counter, so keys never collide and a Put needs no compare (no
//!   contention between brokers). The order is etcd's revision, and a
//!   record's revision is the `mod_revision` of its key.
//! * Revisions are therefore increasing but not dense: etcd counts every
//!   change of every key, so other keys (and other clusters sharing the etcd)
//!   leave gaps. Users rely on the order only (see the trait's docs).
//! * Appends of one sequencer are written one at a time, in the order they
//!   were started, so that a broker's commits keep its order (an idempotent
//!   producer's batches reach the apply in the order it sent them). Two Puts
//!   in flight at once could be applied by etcd in either order.
//! * A watch is etcd's Watch on the prefix from a revision. If the stream
//!   breaks (etcd restarted, connection lost) it is re-established from the
//!   revision after the last one delivered, with backoff, for as long as the
//!   [`Watch`] is alive: nothing is delivered twice or skipped.
//! * etcd's compaction is etcd-wide: another cluster's truncation (or an
//!   operator) compacts this cluster's history too, while its records stay
//!   as keys. A watch from a compacted revision therefore reads the records
//!   from their keys and watches on after them; only when this cluster's own
//!   snapshot covers the revision (its truncation may have deleted records
//!   from there) does it end with [`SequencerError::Compacted`].
//! * Membership ([`members`]): leased keys under `/{cluster}/brokers/`.
//! * Snapshots ([`snapshots`]): the published revision under
//!   `/{cluster}/snapshot`; truncation deletes log keys and compacts etcd.

mod members;
mod snapshots;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, ConnectOptions, GetOptions, KvClient, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchClient,
    WatchFilterType, WatchOptions,
};
use tokio::sync::{mpsc, oneshot};

use super::{AppendError, Member, MemberWatch, Registration, Sequencer, SequencerError, Watch, WatchItem};

/// etcd's default `--max-request-bytes` (1.5 MiB): a Put larger than this is
/// refused by a default-configured etcd, which we report as
/// [`SequencerError::RecordTooLarge`].
pub const ETCD_DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Appends waiting for the writer; a full queue makes `append` wait (in order).
const APPEND_QUEUE: usize = 1024;

/// A Put not answered within this long has an unknown outcome.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on a read (`current_revision`, the start-up check).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on the start-up check that etcd answers.
const CONNECT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest watch response accepted: etcd splits large ones (`fragment`), so
/// one holds at most about one request's worth of events, or one event.
const WATCH_MAX_MESSAGE: usize = 64 << 20;

/// Records read per request when a watch catches up from keys after a compaction.
const CATCH_UP_PAGE: i64 = 64;

/// Pause before re-establishing a broken watch (doubles up to the max).
const WATCH_MIN_BACKOFF: Duration = Duration::from_millis(50);
const WATCH_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A sequencer on an etcd cluster.
#[derive(Clone)]
pub struct EtcdSequencer {
    client: Client,
    /// `/{cluster}/log/`: every record's key starts with it.
    prefix: String,
    /// `/{cluster}/brokers/`: the live brokers' keys.
    brokers: String,
    /// `/{cluster}/snapshot`: the published snapshot's revision.
    snapshot_key: String,
    /// The endpoints, for messages.
    endpoints: Arc<str>,
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for EtcdSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSequencer").field("endpoints", &self.endpoints).field("prefix", &self.prefix).finish()
    }
}

/// An append waiting for the writer.
struct Pending {
    record: Bytes,
    reply: oneshot::Sender<Result<u64, AppendError>>,
}

/// `host:port` → `http://host:port` (etcd-client wants a URL).
fn endpoint_url(e: &str) -> String {
    if e.starts_with("http://") || e.starts_with("https://") {
        e.to_owned()
    } else {
        format!("http://{e}")
    }
}

impl EtcdSequencer {
    /// Connects to etcd at `endpoints` (`host:port` each) for the cluster
    /// named `cluster`, and checks that etcd answers. Must be called inside a
    /// tokio runtime (it spawns the writer task).
    pub async fn connect(endpoints: &[String], cluster: &str) -> Result<EtcdSequencer, SequencerError> {
        if endpoints.is_empty() {
            return Err(SequencerError::Unavailable("no etcd endpoint given".into()));
        }
        let listed: Arc<str> = endpoints.join(",").into();
        let urls: Vec<String> = endpoints.iter().map(|e| endpoint_url(e)).collect();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            // A dead etcd or a half-open connection is noticed within seconds,
            // so a watch is re-established rather than silently stalled.
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            // A member cut off from its cluster's leader cancels our watch
            // (we then re-watch, perhaps through another member) instead of
            // leaving it waiting for changes it will never see.
            .with_require_leader(true);
        let client = Client::connect(&urls, Some(options))
            .await
            .map_err(|e| SequencerError::Unavailable(format!("cannot connect to etcd at {listed}: {e}")))?;
        let prefix = format!("/{cluster}/log/");
        // The connection is lazy: ask for something so that an etcd that is
        // not there is reported now, not on the first produce.
        let mut kv = client.kv_client();
        let check = kv.get(prefix.as_str(), Some(GetOptions::new().with_prefix().with_count_only()));
        match tokio::time::timeout(CONNECT_CHECK_TIMEOUT, check).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let why = match &e {
                    etcd_client::Error::GRpcStatus(s) if connection_refused(s) => {
                        "connection refused (nothing listens there)".to_owned()
                    }
                    _ => e.to_string(),
                };
                return Err(SequencerError::Unavailable(format!("etcd at {listed} did not answer: {why}")));
            }
            Err(_) => {
                return Err(SequencerError::Unavailable(format!(
                    "etcd at {listed} did not answer within {} s",
                    CONNECT_CHECK_TIMEOUT.as_secs()
                )));
            }
        }
        let (queue, rx) = mpsc::channel(APPEND_QUEUE);
        let writer = crate::server::draw_incarnation();
        tokio::spawn(run_writer(client.kv_client(), prefix.clone(), writer, rx));
        let brokers = format!("/{cluster}/brokers/");
        let snapshot_key = format!("/{cluster}/snapshot");
        Ok(EtcdSequencer { client, prefix, brokers, snapshot_key, endpoints: listed, queue })
    }

    /// The key prefix of this cluster's records (`/{cluster}/log/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The endpoints, comma-separated, as given.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }
}

/// Runs one etcd request within [`READ_TIMEOUT`]; any failure is
/// [`SequencerError::Unavailable`] saying `what` was being done.
async fn timed<T>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, SequencerError> {
    match tokio::time::timeout(READ_TIMEOUT, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SequencerError::Unavailable(format!("etcd failed {what}: {e}"))),
        Err(_) => Err(SequencerError::Unavailable(format!(
            "etcd did not answer within {} s while {what}",
            READ_TIMEOUT.as_secs()
        ))),
    }
}

/// The log's current revision and the published snapshot, in one linearizable
/// read: the newest record's revision, or the snapshot's once truncation
/// deleted every record (truncation does not move the current revision back).
/// Not etcd's header revision: that counts other keys too, and a watch of our
/// prefix never delivers it. Sorting by mod revision makes etcd read every key
/// of the prefix; snapshots keep the prefix short.
async fn log_revision(kv: &mut KvClient, prefix: &str, snapshot_key: &str) -> Result<(u64, Option<u64>), SequencerError> {
    let newest = GetOptions::new().with_prefix().with_sort(SortTarget::Mod, SortOrder::Descend).with_limit(1).with_keys_only();
    let txn = Txn::new().and_then([TxnOp::get(prefix, Some(newest)), TxnOp::get(snapshot_key, None)]);
    let resp = timed("reading the last revision", kv.txn(txn)).await?;
    let mut gets = resp.op_responses().into_iter().filter_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g),
        _ => None,
    });
    let (Some(records), Some(snapshot)) = (gets.next(), gets.next()) else {
        return Err(SequencerError::Unavailable("etcd answered a read without its results".into()));
    };
    let newest = records.kvs().first().map_or(0, |kv| kv.mod_revision().max(0) as u64);
    let published = snapshots::published(snapshot_key, &snapshot)?;
    Ok((newest.max(published.unwrap_or(0)), published))
}

/// Writes the queued appends one at a time, in queue order.
async fn run_writer(mut kv: KvClient, prefix: String, writer: u64, mut rx: mpsc::Receiver<Pending>) {
    let mut n: u64 = 0;
    while let Some(p) = rx.recv().await {
        if p.reply.is_closed() {
            continue; // the caller gave up (its outcome is "unknown"): not writing it is one
        }
        n += 1;
        let key = format!("{prefix}{writer:016x}-{n:016x}");
        let size = p.record.len();
        let put = kv.put(key, p.record.to_vec(), None);
        let result = match tokio::time::timeout(APPEND_TIMEOUT, put).await {
            Ok(Ok(resp)) => match resp.header().map(|h| h.revision()) {
                Some(rev) if rev > 0 => Ok(rev as u64),
                _ => Err(AppendError::Unknown(SequencerError::Unavailable(
                    "etcd answered a put without a revision".into(),
                ))),
            },
            Ok(Err(e)) => Err(classify(e, size)),
            Err(_) => Err(AppendError::Unknown(SequencerError::Unavailable(format!(
                "etcd did not answer a put within {} s",
                APPEND_TIMEOUT.as_secs()
            )))),
        };
        let _ = p.reply.send(result);
    }
}

/// Whether an error says the TCP connection was refused: then the request
/// never reached etcd.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// What a failed Put means for the record: definitely not written (a clear
/// rejection, or no connection at all), or unknown (it may have been sent).
fn classify(e: etcd_client::Error, size: usize) -> AppendError {
    use tonic::Code;
    let status = match &e {
        etcd_client::Error::GRpcStatus(s) => s,
        etcd_client::Error::TransportError(t) if connection_refused(t) => {
            return AppendError::Failed(SequencerError::Unavailable(e.to_string()));
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            return AppendError::Unknown(SequencerError::Unavailable(e.to_string()));
        }
        // Anything else is the client refusing before sending.
        _ => return AppendError::Failed(SequencerError::Unavailable(e.to_string())),
    };
    let message = status.message();
    match status.code() {
        // etcd: "etcdserver: request is too large"; gRPC: "received message larger than max".
        Code::InvalidArgument | Code::ResourceExhausted
            if message.contains("too large") || message.contains("larger than max") =>
        {
            AppendError::Failed(SequencerError::RecordTooLarge { size, max: ETCD_DEFAULT_MAX_REQUEST_BYTES })
        }
        // Refused by etcd after reading the request, before proposing it (bad
        // request, no permission, database space exceeded, ...).
        Code::InvalidArgument
        | Code::ResourceExhausted
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::AlreadyExists
        | Code::NotFound
        | Code::Unimplemented => AppendError::Failed(SequencerError::Unavailable(format!("etcd refused the put: {message}"))),
        Code::Unavailable if connection_refused(status) => {
            AppendError::Failed(SequencerError::Unavailable(format!("etcd is not reachable: {message}")))
        }
        // Timeouts, leader changes, broken connections: the proposal may commit.
        _ => AppendError::Unknown(SequencerError::Unavailable(format!("etcd put: {e}"))),
    }
}

impl Sequencer for EtcdSequencer {
    fn append(&self, record: Bytes) -> impl std::future::Future<Output = Result<u64, AppendError>> + Send {
        let queue = self.queue.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            // The queue's permits are handed out first come, first served, so
            // appends started in order are written in order.
            if queue.send(Pending { record, reply }).await.is_err() {
                return Err(AppendError::Failed(SequencerError::Closed));
            }
            answer.await.unwrap_or(Err(AppendError::Unknown(SequencerError::Closed)))
        }
    }

    fn watch(&self, from: u64) -> impl std::future::Future<Output = Result<Watch, SequencerError>> + Send {
        let client = self.client.watch_client().max_decoding_message_size(WATCH_MAX_MESSAGE);
        let kv = self.client.kv_client().max_decoding_message_size(WATCH_MAX_MESSAGE);
        let (prefix, snapshot_key) = (self.prefix.clone(), self.snapshot_key.clone());
        async move {
            let (tx, watch) = Watch::channel();
            tokio::spawn(run_watch(client, kv, prefix, snapshot_key, from.max(1), tx));
            Ok(watch)
        }
    }

    fn current_revision(&self) -> impl std::future::Future<Output = Result<u64, SequencerError>> + Send {
        let mut kv = self.client.kv_client();
        let (prefix, snapshot_key) = (self.prefix.clone(), self.snapshot_key.clone());
        async move { Ok(log_revision(&mut kv, &prefix, &snapshot_key).await?.0) }
    }

    // Membership
    fn register(&self, me: Member, ttl: Duration) -> impl std::future::Future<Output = Result<Registration, SequencerError>> + Send {
        let (client, brokers) = (self.client.clone(), self.brokers.clone());
        async move { members::register(client, &brokers, me, ttl).await }
    }

    fn watch_members(&self) -> impl std::future::Future<Output = Result<MemberWatch, SequencerError>> + Send {
        members::watch_members(self.client.clone(), self.brokers.clone())
    }

    // Snapshots
    fn snapshot_revision(&self) -> impl std::future::Future<Output = Result<Option<u64>, SequencerError>> + Send {
        let mut kv = self.client.kv_client();
        let key = self.snapshot_key.clone();
        async move { snapshots::snapshot_revision(&mut kv, &key).await }
    }

    fn publish_snapshot(&self, revision: u64) -> impl std::future::Future<Output = Result<bool, SequencerError>> + Send {
        let mut kv = self.client.kv_client();
        let (prefix, key) = (self.prefix.clone(), self.snapshot_key.clone());
        async move {
            let (log, _) = log_revision(&mut kv, &prefix, &key).await?;
            snapshots::publish(&mut kv, &key, log, revision).await
        }
    }

    fn truncate(&self, through: u64) -> impl std::future::Future<Output = Result<(), SequencerError>> + Send {
        let mut kv = self.client.kv_client();
        let (prefix, key) = (self.prefix.clone(), self.snapshot_key.clone());
        async move {
            let snapshot = snapshots::snapshot_revision(&mut kv, &key).await?;
            snapshots::truncate(&mut kv, &prefix, snapshot, through).await
        }
    }
}

/// Why one etcd watch stream stopped.
enum Stopped {
    /// The reader dropped the [`Watch`].
    ReaderGone,
    /// The records from this revision are compacted away.
    Compacted(u64),
    /// Broken or cancelled: re-watch.
    Broken(String),
}

/// Feeds `tx` with every record from revision `next` on, re-establishing the
/// etcd watch whenever it breaks, until the reader goes away or the records
/// from `next` on turn out to be truncated behind this cluster's snapshot.
async fn run_watch(
    client: WatchClient,
    mut kv: KvClient,
    prefix: String,
    snapshot_key: String,
    mut next: u64,
    tx: mpsc::Sender<WatchItem>,
) {
    let mut backoff = WATCH_MIN_BACKOFF;
    loop {
        let delivered_before = next;
        let stopped = tokio::select! {
            s = watch_once(client.clone(), &prefix, &mut next, &tx) => s,
            () = tx.closed() => Stopped::ReaderGone,
        };
        match stopped {
            Stopped::ReaderGone => return,
            Stopped::Compacted(first_available) => {
                let requested = next;
                match catch_up(&mut kv, &prefix, &snapshot_key, &mut next, &tx).await {
                    CatchUp::Done => {
                        tracing::info!(from = requested, to = next, compacted = first_available, "etcd history compacted (etcd-wide); read this log's records from their keys, watching on");
                        backoff = WATCH_MIN_BACKOFF;
                        continue;
                    }
                    CatchUp::Truncated => {
                        let _ = tx.send(Err(SequencerError::Compacted { requested, first_available })).await;
                        return;
                    }
                    CatchUp::ReaderGone => return,
                    CatchUp::Broken(why) => {
                        tracing::warn!(revision = next, reason = %why, "etcd history compacted and reading the log failed; retrying in {} ms", backoff.as_millis());
                    }
                }
            }
            Stopped::Broken(why) => {
                if next > delivered_before {
                    backoff = WATCH_MIN_BACKOFF;
                }
                tracing::warn!(revision = next, reason = %why, "etcd watch broken; re-watching in {} ms", backoff.as_millis());
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(WATCH_MAX_BACKOFF);
    }
}

/// How catching up from keys ended.
enum CatchUp {
    /// Every record up to the etcd revision read is delivered; watch from `*next`.
    Done,
    /// This cluster's published snapshot covers `*next`: records from there
    /// may be deleted (the reader reloads the snapshot).
    Truncated,
    /// The reader dropped the [`Watch`].
    ReaderGone,
    /// A read failed: try again.
    Broken(String),
}

/// After etcd refused a watch from `*next` as compacted: unless this
/// cluster's snapshot covers `*next` ([`CatchUp::Truncated`]), every record of
/// the log from `*next` on is still a key (only truncation behind a snapshot
/// deletes records, and records are never overwritten), so read them in
/// revision order, deliver them, and move `*next` past the etcd revision of
/// the last read, from where a watch carries on.
async fn catch_up(kv: &mut KvClient, prefix: &str, snapshot_key: &str, next: &mut u64, tx: &mpsc::Sender<WatchItem>) -> CatchUp {
    loop {
        let page = GetOptions::new()
            .with_prefix()
            .with_min_mod_revision(i64::try_from(*next).unwrap_or(i64::MAX))
            .with_sort(SortTarget::Mod, SortOrder::Ascend)
            .with_limit(CATCH_UP_PAGE);
        // The snapshot in the same read: a truncation cannot slip in between.
        let txn = Txn::new().and_then([TxnOp::get(prefix, Some(page)), TxnOp::get(snapshot_key, None)]);
        let resp = match timed("reading the log after a compaction", kv.txn(txn)).await {
            Ok(r) => r,
            Err(e) => return CatchUp::Broken(e.to_string()),
        };
        let read_at = resp.header().map_or(0, |h| h.revision().max(0) as u64);
        let mut gets = resp.op_responses().into_iter().filter_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g),
            _ => None,
        });
        let (Some(records), Some(snapshot)) = (gets.next(), gets.next()) else {
            return CatchUp::Broken("etcd answered a read without its results".into());
        };
        match snapshots::published(snapshot_key, &snapshot) {
            Ok(Some(published)) if published >= *next => return CatchUp::Truncated,
            Ok(_) => {}
            Err(e) => return CatchUp::Broken(e.to_string()),
        }
        for record in records.kvs() {
            let revision = record.mod_revision().max(0) as u64;
            if revision < *next {
                continue;
            }
            if tx.send(Ok((revision, Bytes::copy_from_slice(record.value())))).await.is_err() {
                return CatchUp::ReaderGone;
            }
            *next = revision + 1;
        }
        if !records.more() {
            *next = (*next).max(read_at + 1);
            return CatchUp::Done;
        }
    }
}

/// One etcd watch stream from `*next`; advances `*next` past every record delivered.
async fn watch_once(mut client: WatchClient, prefix: &str, next: &mut u64, tx: &mpsc::Sender<WatchItem>) -> Stopped {
    let start = i64::try_from(*next).unwrap_or(i64::MAX);
    // Deletes (of records a snapshot covers) are filtered out by etcd: every
    // event we get is a Put. (etcd-client's `Event::event_type` panics on a
    // type it does not know, so we never ask.)
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start)
        .with_fragment()
        .with_filters([WatchFilterType::NoDelete]);
    let stream = match client.watch(prefix, Some(options)).await {
        Ok(s) => s,
        Err(e) => return Stopped::Broken(e.to_string()),
    };
    // The request half stays alive while we read: dropping it ends the watch.
    let (_requests, mut responses) = stream.split();
    loop {
        let resp = match responses.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Stopped::Broken("etcd closed the watch stream".into()),
            Err(e) => return Stopped::Broken(e.to_string()),
        };
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Stopped::Compacted(resp.compact_revision() as u64);
            }
            return Stopped::Broken(format!("etcd cancelled the watch: {}", resp.cancel_reason()));
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let revision = kv.mod_revision().max(0) as u64;
            if revision < *next {
                continue;
            }
            if tx.send(Ok((revision, Bytes::copy_from_slice(kv.value())))).await.is_err() {
                return Stopped::ReaderGone;
            }
            *next = revision + 1;
        }
    }
}
