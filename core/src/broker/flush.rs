//! The produce path after validation: batches wait in the open object; a flush
//! lays the object out partition by partition, writes it, then proposes its
//! commit. Commits are proposed in flush order so an idempotent producer's
//! batches reach the apply in the order it sent them.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use strata_proto::messages::ProduceResponse;
use strata_proto::Uuid;

use super::{respond, Broker, Proposal, ReqInfo, ReqKey, TIMER_FLUSH};
use crate::error_code as ec;
use crate::io::{Output, WriteId};
use crate::log::apply::BatchOutcome;
use crate::log::commit::{BatchEntry, Commit, CommitBody, PartitionEntry};
use crate::object::format::{write_footer, FooterRow};
use crate::object::key::object_key;
use crate::object::parts::ObjectParts;

/// Where a batch's verdict goes: a partition of a waiting produce request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waiter {
    pub req: ReqKey,
    pub topic: usize,
    pub partition: usize,
}

/// Largest commit an object may need: etcd refuses requests above 1.5 MiB by
/// default, and the commit of an object lists every batch in it.
pub(crate) const MAX_COMMIT_BYTES: usize = 1 << 20;
/// A batch's share of its object's commit (its encoded `BatchEntry`, rounded up).
const COMMIT_BYTES_PER_BATCH: usize = 48;
/// A partition's share of its object's commit (topic id, index, count).
const COMMIT_BYTES_PER_PARTITION: usize = 32;

/// A batch waiting in the open object.
#[derive(Debug)]
struct OpenBatch {
    data: Bytes,
    entry: BatchEntry,
    waiter: Option<Waiter>,
}

/// A produce request waiting for its partitions' verdicts.
#[derive(Debug)]
pub(crate) struct PendingProduce {
    pub info: ReqInfo,
    pub response: ProduceResponse,
    /// Batches still waiting, per (topic, partition) index of the response.
    pub waiting: BTreeMap<(usize, usize), u32>,
}

/// An object on its way: being written, then committed.
#[derive(Debug)]
struct Flush {
    write: WriteId,
    key: String,
    size: u64,
    written: bool,
    proposed: bool,
    entries: Vec<PartitionEntry>,
    waiters: Vec<Vec<Option<Waiter>>>,
    bytes: ObjectParts,
}

/// Open object, flushes in flight, and waiting produce requests.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    open: BTreeMap<(Uuid, i32), Vec<OpenBatch>>,
    open_bytes: usize,
    /// Bytes the open object's commit will take (about).
    open_commit_bytes: usize,
    open_since: Option<u64>,
    flushes: BTreeMap<u64, Flush>,
    next_flush: u64,
    pub pending: BTreeMap<ReqKey, PendingProduce>,
    /// Recently committed objects of ours, served to fetches from memory.
    recent: VecDeque<(String, ObjectParts)>,
    recent_bytes: usize,
    /// Objects committed and failed since start (the admin status).
    committed: u64,
    failed: u64,
}

/// Where the produce path stands (the runtime's admin status and flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushProgress {
    /// Bytes waiting in the open object.
    pub open_bytes: usize,
    /// Objects being written or committed, and their bytes.
    pub inflight_objects: usize,
    pub inflight_bytes: u64,
    /// Own objects held in memory for tail reads, and their bytes.
    pub recent_objects: usize,
    pub recent_bytes: usize,
    /// Flush ids started so far: every object started before a point in time
    /// has an id below the value read then.
    pub started: u64,
    /// Objects committed and failed since start.
    pub committed: u64,
    pub failed: u64,
}

impl Flusher {
    /// Objects of ours being written.
    fn writes_in_flight(&self) -> usize {
        self.flushes.values().filter(|f| !f.written).count()
    }

    /// An own object still in memory, by key.
    pub fn recent_object(&self, key: &str) -> Option<&ObjectParts> {
        self.recent.iter().find(|(k, _)| k == key).map(|(_, b)| b)
    }
}

impl Broker {
    /// (flush bytes, flush ms) in force: the static settings, or the dynamic
    /// broker overrides of `strata.flush.bytes` / `strata.flush.ms`.
    fn flush_limits(&mut self) -> (usize, u64) {
        if let Some(limits) = self.flush_limits {
            return limits;
        }
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let limits = (usize::try_from(view.flush_bytes().max(1)).unwrap_or(usize::MAX), view.flush_ms().max(0) as u64);
        self.flush_limits = Some(limits);
        limits
    }

    /// An object this broker wrote and still holds in memory, by key (what
    /// the runtime serves to peers, so their tail reads skip the object store).
    pub fn recent_object(&self, key: &str) -> Option<&ObjectParts> {
        self.flush.recent_object(key)
    }

    /// The produce path's counts: open, in-flight and recent objects.
    pub fn flush_progress(&self) -> FlushProgress {
        let f = &self.flush;
        FlushProgress {
            open_bytes: f.open_bytes,
            inflight_objects: f.flushes.len(),
            inflight_bytes: f.flushes.values().map(|x| x.size).sum(),
            recent_objects: f.recent.len(),
            recent_bytes: f.recent_bytes,
            started: f.next_flush,
            committed: f.committed,
            failed: f.failed,
        }
    }

    /// Whether every object with a flush id below `started` (a
    /// [`FlushProgress::started`] read earlier) is committed and applied, or failed.
    pub fn flushed_before(&self, started: u64) -> bool {
        self.flush.flushes.range(..started).next().is_none()
    }
}

impl Broker {
    /// Adds a validated batch to the open object.
    pub(crate) fn buffer_batch(&mut self, topic_id: Uuid, partition: i32, data: Bytes, entry: BatchEntry, waiter: Option<Waiter>, out: &mut Vec<Output>) {
        // The commit naming the object lists every batch: cut the object before
        // that commit outgrows what a sequencer takes in one request.
        let cost_in = |f: &Flusher| {
            COMMIT_BYTES_PER_BATCH + if f.open.contains_key(&(topic_id, partition)) { 0 } else { COMMIT_BYTES_PER_PARTITION }
        };
        if !self.flush.open.is_empty() && self.flush.open_commit_bytes + cost_in(&self.flush) > MAX_COMMIT_BYTES {
            self.flush_now(out);
        }
        let cost = cost_in(&self.flush);
        let flush_ms = self.flush_limits().1;
        let f = &mut self.flush;
        f.open_commit_bytes += cost;
        f.open_bytes += data.len();
        f.open.entry((topic_id, partition)).or_default().push(OpenBatch { data, entry, waiter });
        if f.open_since.is_none() {
            f.open_since = Some(self.now_ms);
            out.push(Output::SetTimer { timer: TIMER_FLUSH, at_ms: self.now_ms + flush_ms });
        }
    }

    /// Flushes if the open object is big enough, or (`flush_when_idle`) if
    /// fewer than `flush_concurrency` objects are being written.
    pub(crate) fn maybe_flush(&mut self, out: &mut Vec<Output>) {
        let idle = self.flush.writes_in_flight() < self.cfg.flush_concurrency.max(1);
        if self.flush.open_bytes >= self.flush_limits().0 || (self.cfg.flush_when_idle && idle) {
            self.flush_now(out);
        }
    }

    pub(crate) fn on_flush_timer(&mut self, out: &mut Vec<Output>) {
        let flush_ms = self.flush_limits().1;
        match self.flush.open_since {
            Some(since) if self.now_ms >= since + flush_ms => self.flush_now(out),
            // A size flush happened since the timer was set; a newer timer is due.
            Some(since) => out.push(Output::SetTimer { timer: TIMER_FLUSH, at_ms: since + flush_ms }),
            None => {}
        }
    }

    /// Writes the open object now (also used at shutdown).
    pub fn flush_now(&mut self, out: &mut Vec<Output>) {
        if self.flush.open.is_empty() {
            return;
        }
        let open = std::mem::take(&mut self.flush.open);
        let batch_count: usize = open.values().map(Vec::len).sum();
        self.flush.open_bytes = 0;
        self.flush.open_commit_bytes = 0;
        self.flush.open_since = None;

        // The batches are laid out as they arrived, not copied together.
        let mut parts: Vec<Bytes> = Vec::with_capacity(batch_count + 1);
        let mut position = 0u64;
        let mut entries = Vec::with_capacity(open.len());
        let mut waiters = Vec::with_capacity(open.len());
        let mut rows = Vec::with_capacity(open.len());
        for ((topic_id, partition), batches) in open {
            let start = position;
            let mut entry = PartitionEntry { topic_id, partition, batches: Vec::with_capacity(batches.len()) };
            let mut ws = Vec::with_capacity(batches.len());
            let mut row = FooterRow { topic_id, partition, position: start, length: 0, record_count: 0, batch_count: 0, max_timestamp: -1 };
            for b in batches {
                let mut e = b.entry;
                e.position = position;
                position += b.data.len() as u64;
                parts.push(b.data);
                row.record_count += u64::from(e.record_count);
                row.batch_count += 1;
                row.max_timestamp = row.max_timestamp.max(e.max_timestamp);
                entry.batches.push(e);
                ws.push(b.waiter);
            }
            row.length = position - start;
            rows.push(row);
            entries.push(entry);
            waiters.push(ws);
        }
        let mut footer = BytesMut::with_capacity(64 * (rows.len() + 1));
        write_footer(&mut footer, &rows);
        parts.push(footer.freeze());
        let bytes = ObjectParts::new(parts);
        let id = self.flush.next_flush;
        self.flush.next_flush += 1;
        let write = self.next_write();
        let key = object_key(self.cfg.node_id, self.cfg.incarnation, id, self.log.revision);
        out.push(Output::WriteObject { write, key: key.clone(), bytes: bytes.clone() });
        self.flush.flushes.insert(id, Flush { write, key, size: bytes.len() as u64, written: false, proposed: false, entries, waiters, bytes });
    }

    pub(crate) fn on_object_written(&mut self, write: WriteId, result: Result<(), String>, out: &mut Vec<Output>) {
        let Some((&id, _)) = self.flush.flushes.iter().find(|(_, f)| f.write == write) else { return };
        #[cfg(feature = "sim-bugs")] // PLANTED BUG lose-failed-object
        let result = if crate::sim_bugs::active(crate::sim_bugs::Bug::LoseFailedObject) { Ok(()) } else { result };
        match result {
            Ok(()) => {
                if let Some(f) = self.flush.flushes.get_mut(&id) {
                    f.written = true;
                }
                #[cfg(feature = "sim-bugs")] // PLANTED BUG ack-before-apply
                if crate::sim_bugs::active(crate::sim_bugs::Bug::AckBeforeApply) {
                    self.ack_before_apply(id, out);
                }
            }
            Err(_) => self.fail_flush(id, ec::KAFKA_STORAGE_ERROR, out),
        }
        self.propose_written_in_order(out);
        // What arrived while that object was written goes out now (group commit).
        if self.cfg.flush_when_idle && !self.flush.open.is_empty() {
            self.maybe_flush(out);
        }
    }

    /// Proposes the commits of written objects at the head of the flush order.
    fn propose_written_in_order(&mut self, out: &mut Vec<Output>) {
        loop {
            let Some((&id, f)) = self.flush.flushes.iter_mut().find(|(_, f)| !f.proposed) else { return };
            if !f.written {
                return;
            }
            f.proposed = true;
            let body = CommitBody::Object { key: f.key.clone(), size: f.size, partitions: std::mem::take(&mut f.entries) };
            self.propose(body, Proposal::Object(id), out);
        }
    }

    /// Fails every request waiting on flush `id` with `error`.
    pub(crate) fn fail_flush(&mut self, id: u64, error: i16, out: &mut Vec<Output>) {
        let Some(f) = self.flush.flushes.remove(&id) else { return };
        self.flush.failed += 1;
        for ws in f.waiters {
            for w in ws.into_iter().flatten() {
                self.settle(w, Err(error), out);
            }
        }
        self.propose_written_in_order(out);
    }

    pub(crate) fn on_object_applied(&mut self, id: u64, _commit: &Commit, outcomes: Vec<Vec<BatchOutcome>>, out: &mut Vec<Output>) {
        let Some(f) = self.flush.flushes.remove(&id) else { return };
        self.flush.committed += 1;
        for (ws, os) in f.waiters.into_iter().zip(outcomes) {
            for (w, o) in ws.into_iter().zip(os) {
                let Some(w) = w else { continue };
                let verdict = match o {
                    BatchOutcome::Appended { base_offset } | BatchOutcome::Duplicate { base_offset } => Ok(base_offset),
                    BatchOutcome::Rejected { error } => Err(error),
                };
                self.settle(w, verdict, out);
            }
        }
        // Keep the object in memory for tail reads, bounded by bytes.
        let limit = self.cfg.recent_object_bytes;
        if f.bytes.len() <= limit {
            self.flush.recent_bytes += f.bytes.len();
            self.flush.recent.push_back((f.key, f.bytes));
            while self.flush.recent_bytes > limit {
                match self.flush.recent.pop_front() {
                    Some((_, b)) => self.flush.recent_bytes -= b.len(),
                    None => break,
                }
            }
        }
    }

    /// PLANTED BUG ack-before-apply: answers flush `id`'s requests with the
    /// offsets its batches would get if nothing came before its commit.
    #[cfg(feature = "sim-bugs")]
    fn ack_before_apply(&mut self, id: u64, out: &mut Vec<Output>) {
        let Some(f) = self.flush.flushes.get(&id) else { return };
        let mut verdicts = Vec::new();
        for (entry, ws) in f.entries.iter().zip(&f.waiters) {
            let name = self.log.topic_names.get(&entry.topic_id).cloned().unwrap_or_default();
            let mut end = self.log.partition(&name, entry.partition).map_or(0, |p| p.log_end);
            for (b, w) in entry.batches.iter().zip(ws) {
                if let Some(w) = w {
                    verdicts.push((*w, end));
                }
                end += i64::from(b.offset_count);
            }
        }
        for (w, base) in verdicts {
            self.settle(w, Ok(base), out);
        }
    }

    /// Records one batch's verdict; answers the request when it has them all.
    fn settle(&mut self, w: Waiter, verdict: Result<i64, i16>, out: &mut Vec<Output>) {
        let Some(p) = self.flush.pending.get_mut(&w.req) else { return };
        if let Some(part) = p.response.responses.get_mut(w.topic).and_then(|t| t.partition_responses.get_mut(w.partition)) {
            match verdict {
                Ok(base) => {
                    if part.error_code == ec::NONE && (part.base_offset < 0 || base < part.base_offset) {
                        part.base_offset = base;
                    }
                }
                Err(error) => {
                    part.error_code = error;
                    part.base_offset = -1;
                }
            }
        }
        if let Some(n) = p.waiting.get_mut(&(w.topic, w.partition)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                p.waiting.remove(&(w.topic, w.partition));
            }
        }
        if p.waiting.is_empty() {
            if let Some(p) = self.flush.pending.remove(&w.req) {
                self.finish_produce(p, out);
            }
        }
    }

    /// Fills log start offsets and sends a produce response.
    pub(crate) fn finish_produce(&mut self, mut p: PendingProduce, out: &mut Vec<Output>) {
        for t in &mut p.response.responses {
            for part in &mut t.partition_responses {
                let start = if p.info.api_version >= 13 {
                    self.log.topic_by_id(&t.topic_id).and_then(|tp| usize::try_from(part.index).ok().and_then(|i| tp.partitions.get(i)))
                } else {
                    self.log.partition(&t.name, part.index)
                }
                .map(|pp| pp.log_start);
                part.log_start_offset = if part.error_code == ec::NONE { start.unwrap_or(-1) } else { -1 };
            }
        }
        respond(out, &p.info, p.response);
    }
}

