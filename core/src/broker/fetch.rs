//! Fetch: plan which batches to return from the extent index (KIP-74 limits),
//! take their bytes from recent objects in memory or ranged reads, set each
//! batch's base offset to the applied one on the way out, and long-poll until
//! `min_bytes` are there or `max_wait_ms` passes — woken by applies, never by polling.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use strata_proto::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use strata_proto::messages::{FetchRequest, FetchResponse};
use strata_proto::records::assign_offsets;
use strata_proto::Uuid;

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::{ConnId, Output, ReadId, TimerId};
use crate::log::state::Partition;

/// Bytes of one object to return, with the applied offset of its first batch.
#[derive(Debug, Clone)]
struct Segment {
    key: std::sync::Arc<str>,
    range: std::ops::Range<u64>,
    base_offset: i64,
    /// The segment's bytes once read: one buffer from the store, or slices
    /// of the pieces of an object held in memory.
    data: Option<Vec<Bytes>>,
    failed: bool,
}

/// One partition of the response being built.
#[derive(Debug)]
struct Slot {
    topic: usize,
    data: PartitionData,
    segments: Vec<Segment>,
    /// The ranges the next fetch of this partition will likely read.
    prefetch: Vec<(std::sync::Arc<str>, std::ops::Range<u64>)>,
}

/// A fetch waiting for data (long poll) or for its reads.
#[derive(Debug)]
struct Waiting {
    info: ReqInfo,
    request: FetchRequest,
    timer: TimerId,
    deadline_ms: u64,
    partitions: BTreeSet<(Uuid, i32)>,
}

/// A fetch whose plan is made and whose reads are in flight.
#[derive(Debug)]
struct Reading {
    info: ReqInfo,
    topics: Vec<FetchableTopicResponse>,
    slots: Vec<Slot>,
    outstanding: usize,
}

/// Parked and reading fetches.
#[derive(Debug, Default)]
pub(crate) struct FetchWaits {
    waiting: BTreeMap<u64, Waiting>,
    reading: BTreeMap<u64, Reading>,
    reads: BTreeMap<ReadId, (u64, usize, usize)>,
    timers: BTreeMap<TimerId, u64>,
}

impl FetchWaits {
    /// Every partition a parked fetch waits on.
    pub fn waiting_partitions(&self) -> Vec<(Uuid, i32)> {
        let all: BTreeSet<(Uuid, i32)> = self.waiting.values().flat_map(|w| w.partitions.iter().copied()).collect();
        all.into_iter().collect()
    }

    /// Forgets every fetch of a closed connection.
    pub fn drop_conn(&mut self, conn: ConnId) {
        let gone: Vec<u64> = self.waiting.iter().filter(|(_, w)| w.info.key.conn == conn).map(|(id, _)| *id).collect();
        for id in gone {
            if let Some(w) = self.waiting.remove(&id) {
                self.timers.remove(&w.timer);
            }
        }
        let gone: Vec<u64> = self.reading.iter().filter(|(_, r)| r.info.key.conn == conn).map(|(id, _)| *id).collect();
        for id in gone {
            self.reading.remove(&id);
        }
        self.reads.retain(|_, (id, _, _)| self.reading.contains_key(id));
    }
}

/// The outcome of planning a fetch now.
struct Plan {
    topics: Vec<FetchableTopicResponse>,
    slots: Vec<Slot>,
    bytes: u64,
}

impl Broker {
    pub(crate) fn on_fetch(&mut self, info: ReqInfo, request: FetchRequest, out: &mut Vec<Output>) {
        if request.session_id != 0 {
            // We never hand out fetch sessions, so no client can hold one of ours.
            let response = FetchResponse { error_code: ec::FETCH_SESSION_ID_NOT_FOUND, session_id: 0, ..Default::default() };
            return respond(out, &info, response);
        }
        let id = self.fresh_id();
        let deadline_ms = self.now_ms + request.max_wait_ms.max(0) as u64;
        self.try_fetch(id, info, request, deadline_ms, out);
    }

    /// Plans the fetch; answers, reads, or parks it.
    fn try_fetch(&mut self, id: u64, info: ReqInfo, request: FetchRequest, deadline_ms: u64, out: &mut Vec<Output>) {
        let plan = self.plan_fetch(&info, &request);
        let has_error = plan.slots.iter().any(|s| s.data.error_code != ec::NONE);
        let enough = plan.bytes >= request.min_bytes.max(0) as u64 || has_error || self.now_ms >= deadline_ms;
        if !enough {
            let partitions = self.fetch_partitions(&info, &request);
            let timer = self.fresh_id();
            out.push(Output::SetTimer { timer, at_ms: deadline_ms });
            self.fetch.timers.insert(timer, id);
            self.fetch.waiting.insert(id, Waiting { info, request, timer, deadline_ms, partitions });
            return;
        }
        let mut reading = Reading { info, topics: plan.topics, slots: plan.slots, outstanding: 0 };
        for (si, slot) in reading.slots.iter_mut().enumerate() {
            let mut from_store = false;
            for (gi, seg) in slot.segments.iter_mut().enumerate() {
                let in_memory = self.flush.recent_object(&seg.key).and_then(|obj| obj.pieces_of(seg.range.clone()));
                if let Some(data) = in_memory {
                    seg.data = Some(data);
                    continue;
                }
                let read = self.next_read();
                self.fetch.reads.insert(read, (id, si, gi));
                reading.outstanding += 1;
                from_store = true;
                out.push(Output::Read { read, key: seg.key.to_string(), range: seg.range.clone() });
            }
            // A consumer reading from the store is catching up: read its next
            // ranges now, so they are in the block cache when it asks. Nothing
            // waits on these reads; their answers are ignored.
            if from_store {
                for (key, range) in std::mem::take(&mut slot.prefetch) {
                    if self.flush.recent_object(&key).is_none() {
                        let read = self.next_read();
                        out.push(Output::Read { read, key: key.to_string(), range });
                    }
                }
            }
        }
        if reading.outstanding == 0 {
            finish(reading, out);
        } else {
            self.fetch.reading.insert(id, reading);
        }
    }

    fn fetch_partitions(&self, info: &ReqInfo, request: &FetchRequest) -> BTreeSet<(Uuid, i32)> {
        let mut set = BTreeSet::new();
        for t in &request.topics {
            let id = if info.api_version >= 13 { Some(t.topic_id) } else { self.log.topics.get(&t.topic).map(|tp| tp.id) };
            if let Some(id) = id {
                for p in &t.partitions {
                    set.insert((id, p.partition));
                }
            }
        }
        set
    }

    /// Decides what each partition returns, within the request's byte limits.
    fn plan_fetch(&self, info: &ReqInfo, request: &FetchRequest) -> Plan {
        let v = info.api_version;
        let mut budget = request.max_bytes.max(0) as u64;
        let mut any_data = false;
        let mut topics = Vec::with_capacity(request.topics.len());
        let mut slots = Vec::new();
        let mut total = 0u64;
        for (ti, t) in request.topics.iter().enumerate() {
            topics.push(FetchableTopicResponse { topic: t.topic.clone(), topic_id: t.topic_id, partitions: Vec::new() });
            let topic = if v >= 13 { self.log.topic_by_id(&t.topic_id) } else { self.log.topics.get(&t.topic) };
            for fp in &t.partitions {
                let mut data = PartitionData {
                    partition_index: fp.partition,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    aborted_transactions: None,
                    preferred_read_replica: -1,
                    records: Some(Bytes::new()),
                    ..Default::default()
                };
                let part = topic.and_then(|tp| usize::try_from(fp.partition).ok().and_then(|i| tp.partitions.get(i)));
                let Some(part) = part else {
                    data.error_code = if topic.is_none() && v >= 13 { ec::UNKNOWN_TOPIC_ID } else { ec::UNKNOWN_TOPIC_OR_PARTITION };
                    slots.push(Slot { topic: ti, data, segments: Vec::new(), prefetch: Vec::new() });
                    continue;
                };
                data.high_watermark = part.log_end;
                data.last_stable_offset = part.log_end;
                data.log_start_offset = part.log_start;
                if fp.current_leader_epoch > 0 {
                    data.error_code = ec::UNKNOWN_LEADER_EPOCH;
                } else if fp.fetch_offset < part.log_start || fp.fetch_offset > part.log_end {
                    data.error_code = ec::OFFSET_OUT_OF_RANGE;
                    #[cfg(feature = "sim-bugs")] // PLANTED BUG fetch-beyond-end
                    if crate::sim_bugs::active(crate::sim_bugs::Bug::FetchBeyondEnd) && fp.fetch_offset > part.log_end {
                        data.error_code = ec::NONE;
                    }
                }
                let mut segments = Vec::new();
                let mut prefetch = Vec::new();
                if data.error_code == ec::NONE && fp.fetch_offset < part.log_end {
                    let part_budget = fp.partition_max_bytes.max(0) as u64;
                    let (segs, bytes, next) = plan_partition(part, fp.fetch_offset, part_budget, budget, any_data);
                    any_data |= !segs.is_empty();
                    budget = budget.saturating_sub(bytes);
                    total += bytes;
                    segments = segs;
                    // What the next fetch of this partition will most likely ask for,
                    // to read ahead for a consumer that is catching up.
                    if !segments.is_empty() && next < part.log_end {
                        let full = request.max_bytes.max(0) as u64;
                        prefetch = plan_partition(part, next, part_budget, full, false).0.into_iter().map(|s| (s.key, s.range)).collect();
                    }
                }
                slots.push(Slot { topic: ti, data, segments, prefetch });
            }
        }
        Plan { topics, slots, bytes: total }
    }

    pub(crate) fn on_read_done(&mut self, read: ReadId, result: Result<Bytes, String>, out: &mut Vec<Output>) {
        let Some((id, si, gi)) = self.fetch.reads.remove(&read) else { return };
        let Some(r) = self.fetch.reading.get_mut(&id) else { return };
        if let Some(seg) = r.slots.get_mut(si).and_then(|s| s.segments.get_mut(gi)) {
            match result {
                Ok(b) if b.len() as u64 == seg.range.end - seg.range.start => seg.data = Some(vec![b]),
                _ => seg.failed = true,
            }
        }
        r.outstanding = r.outstanding.saturating_sub(1);
        if r.outstanding == 0 {
            if let Some(r) = self.fetch.reading.remove(&id) {
                finish(r, out);
            }
        }
    }

    pub(crate) fn on_fetch_timer(&mut self, timer: TimerId, out: &mut Vec<Output>) {
        let Some(id) = self.fetch.timers.remove(&timer) else { return };
        if let Some(w) = self.fetch.waiting.remove(&id) {
            self.try_fetch(id, w.info, w.request, w.deadline_ms.min(self.now_ms), out);
        }
    }

    /// Re-plans parked fetches that wait on a partition that just got data.
    pub(crate) fn wake_fetches(&mut self, touched: &[(Uuid, i32)], out: &mut Vec<Output>) {
        let ready: Vec<u64> = self
            .fetch
            .waiting
            .iter()
            .filter(|(_, w)| touched.iter().any(|tp| w.partitions.contains(tp)))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            if let Some(w) = self.fetch.waiting.remove(&id) {
                self.fetch.timers.remove(&w.timer);
                self.try_fetch(id, w.info, w.request, w.deadline_ms, out);
            }
        }
    }
}

/// The segments of `part` from `offset` within `part_budget` and `budget`
/// bytes (KIP-74: unless `any_data`, the first batch goes out whatever its
/// size), the bytes they hold, and the offset after them.
fn plan_partition(part: &Partition, mut offset: i64, mut part_budget: u64, mut budget: u64, any_data: bool) -> (Vec<Segment>, u64, i64) {
    let mut segments = Vec::new();
    let mut total = 0u64;
    while let Some(ei) = part.extent_at(offset) {
        let e = &part.extents[ei];
        let first = e.batch_at(offset);
        let mut end = first;
        let mut bytes = 0u64;
        while end < e.batches.len() {
            let len = e.batch_len(end);
            // KIP-74: the first batch of the response goes out whatever its size.
            let must = !any_data && bytes == 0 && segments.is_empty();
            if !must && (bytes + len > part_budget || bytes + len > budget) {
                break;
            }
            bytes += len;
            end += 1;
        }
        if end == first {
            break;
        }
        let start_pos = e.batches[first].position;
        segments.push(Segment {
            key: e.object.clone(),
            range: start_pos..start_pos + bytes,
            base_offset: e.batches[first].base_offset,
            data: None,
            failed: false,
        });
        part_budget = part_budget.saturating_sub(bytes);
        budget = budget.saturating_sub(bytes);
        total += bytes;
        offset = if end < e.batches.len() { e.batches[end].base_offset } else { e.end_offset };
        if end < e.batches.len() || part_budget == 0 || budget == 0 {
            break;
        }
    }
    (segments, total, offset)
}

/// Builds the response: each partition's segments, offsets set to the applied ones.
fn finish(r: Reading, out: &mut Vec<Output>) {
    let mut topics = r.topics;
    for slot in r.slots {
        let mut data = slot.data;
        if slot.segments.iter().any(|s| s.failed) {
            data.error_code = ec::KAFKA_STORAGE_ERROR;
        } else if !slot.segments.is_empty() {
            let len: usize = slot.segments.iter().flat_map(|s| s.data.iter().flatten()).map(Bytes::len).sum();
            let mut buf = BytesMut::with_capacity(len);
            let mut ok = true;
            for seg in &slot.segments {
                let Some(pieces) = &seg.data else { continue };
                let at = buf.len();
                for d in pieces {
                    buf.extend_from_slice(d);
                }
                // The object holds the producer's bytes; the apply decided the offsets.
                if assign_offsets(&mut buf[at..], seg.base_offset, Some(0)).is_err() {
                    ok = false;
                }
            }
            if ok {
                data.records = Some(buf.freeze());
            } else {
                data.error_code = ec::CORRUPT_MESSAGE;
            }
        }
        if let Some(t) = topics.get_mut(slot.topic) {
            t.partitions.push(data);
        }
    }
    let response = FetchResponse { responses: topics, session_id: 0, ..Default::default() };
    respond(out, &r.info, response);
}
