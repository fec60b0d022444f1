//! The applied state: topic catalog, per-partition offsets and extent index,
//! idempotent-producer state. Changed only by [`super::apply`], in sequencer order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use strata_proto::Uuid;

use super::group::GroupLog;

/// How many recent batches per producer and partition are remembered for
/// duplicate detection (Kafka keeps five, matching max.in.flight = 5).
pub const PRODUCER_WINDOW: usize = 5;

/// A run of batches of one partition stored contiguously in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// First offset.
    pub base_offset: i64,
    /// One past the last offset.
    pub end_offset: i64,
    /// Object-store key.
    pub object: Arc<str>,
    /// Byte position in the object.
    pub position: u64,
    /// Byte length.
    pub length: u64,
    /// Largest batch max-timestamp in the extent.
    pub max_timestamp: i64,
    /// Each batch, for timestamp lookups and reading part of the extent.
    pub batches: Vec<BatchRef>,
}

/// One batch inside an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRef {
    /// The offset given to the batch.
    pub base_offset: i64,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
    /// Byte position in the object.
    pub position: u64,
}

impl Extent {
    /// Index of the batch holding `offset` (the extent must hold it).
    pub fn batch_at(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.base_offset <= offset).saturating_sub(1)
    }

    /// Byte length of batch `i`.
    pub fn batch_len(&self, i: usize) -> u64 {
        let end = self.batches.get(i + 1).map_or(self.position + self.length, |b| b.position);
        end - self.batches[i].position
    }
}

/// One batch remembered for idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentBatch {
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// Offset given to the batch.
    pub base_offset: i64,
}

/// An idempotent producer's state on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerPartition {
    /// The producer's epoch as last seen on this partition.
    pub epoch: i16,
    /// The last batches, oldest first, at most [`PRODUCER_WINDOW`].
    pub recent: VecDeque<RecentBatch>,
    /// The apply revision of the last batch (DescribeProducers' last timestamp stand-in).
    pub last_timestamp: i64,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partition {
    /// First readable offset.
    pub log_start: i64,
    /// Next offset to assign (the high watermark: every applied batch is durable).
    pub log_end: i64,
    /// Extents ordered by offset, covering [log_start or a little before, log_end).
    pub extents: Vec<Extent>,
    /// Bytes referenced by the extents.
    pub size_bytes: u64,
    /// Largest batch max-timestamp seen and the base offset of that batch (ListOffsets -3).
    pub max_timestamp: Option<(i64, i64)>,
    /// Idempotent producers by id.
    pub producers: BTreeMap<i64, ProducerPartition>,
}

impl Partition {
    /// Index of the extent holding `offset`, if any.
    pub fn extent_at(&self, offset: i64) -> Option<usize> {
        let i = self.extents.partition_point(|e| e.end_offset <= offset);
        (i < self.extents.len() && self.extents[i].base_offset <= offset).then_some(i)
    }

    /// The first batch (at or after the log start) whose max timestamp is at or
    /// after `ts`: the batch that holds the first record with such a timestamp.
    pub fn batch_for_timestamp(&self, ts: i64) -> Option<BatchLocation> {
        for e in &self.extents {
            if e.max_timestamp < ts || e.end_offset <= self.log_start {
                continue;
            }
            for (i, b) in e.batches.iter().enumerate() {
                let end = e.batches.get(i + 1).map_or(e.end_offset, |n| n.base_offset);
                if b.max_timestamp >= ts && end > self.log_start {
                    return Some(BatchLocation::of(e, i));
                }
            }
        }
        None
    }

    /// Where the batch starting at `base_offset` lives.
    pub fn batch_at(&self, base_offset: i64) -> Option<BatchLocation> {
        let e = &self.extents[self.extent_at(base_offset)?];
        let i = e.batch_at(base_offset);
        (e.batches[i].base_offset == base_offset).then(|| BatchLocation::of(e, i))
    }
}

/// One batch's bytes in the object store, with its applied base offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLocation {
    /// Object key.
    pub object: Arc<str>,
    /// Byte range of the batch in the object.
    pub range: std::ops::Range<u64>,
    /// Applied offset of the batch's first record.
    pub base_offset: i64,
}

impl BatchLocation {
    fn of(e: &Extent, i: usize) -> Self {
        let start = e.batches[i].position;
        BatchLocation { object: e.object.clone(), range: start..start + e.batch_len(i), base_offset: e.batches[i].base_offset }
    }
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The topic id.
    pub id: Uuid,
    /// The name.
    pub name: String,
    /// Explicit config overrides.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index.
    pub partitions: Vec<Partition>,
}

/// Everything the apply has decided so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogState {
    /// Last applied revision (0 before any).
    pub revision: u64,
    /// Topics by name.
    pub topics: BTreeMap<String, Topic>,
    /// Topic names by id.
    pub topic_names: BTreeMap<Uuid, String>,
    /// Next producer id to hand out.
    pub next_producer_id: i64,
    /// Cluster-wide default broker config overrides (broker resource "").
    pub broker_configs: BTreeMap<String, String>,
    /// Per-broker dynamic config overrides (broker resource "<node id>").
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Config commits applied so far (topic, broker and node overrides): an
    /// incremental alter is applied only if none came between its proposal
    /// and its apply ([`crate::log::commit::ConfigUpdate::based_on`]).
    pub config_changes: u64,
    /// Objects created before this revision are fenced: a commit naming one
    /// is refused, because the object GC may have deleted it.
    pub object_fence: u64,
    /// Consumer groups: coordinator epochs, generations, committed offsets.
    pub groups: BTreeMap<String, GroupLog>,
}

impl LogState {
    /// The topic with this id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Topic> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// The existing topic whose name differs from `name` only by '.' versus
    /// '_' (Kafka refuses to create such a topic: their metric names collide).
    pub fn colliding_topic(&self, name: &str) -> Option<&str> {
        let seps: Vec<usize> = name.bytes().enumerate().filter(|(_, c)| matches!(c, b'.' | b'_')).map(|(i, _)| i).collect();
        if seps.is_empty() {
            return None;
        }
        if seps.len() > 12 {
            // Too many spellings to try: compare with every topic instead.
            let unify = |s: &str| s.replace('.', "_");
            let unified = unify(name);
            return self
                .topics
                .keys()
                .find(|t| t.as_str() != name && t.len() == name.len() && unify(t) == unified)
                .map(String::as_str);
        }
        // Every spelling with each separator as '.' or '_'.
        let mut buf = name.as_bytes().to_vec();
        for mask in 0u32..(1 << seps.len()) {
            for (j, &i) in seps.iter().enumerate() {
                buf[i] = if (mask >> j) & 1 == 1 { b'.' } else { b'_' };
            }
            let Ok(candidate) = std::str::from_utf8(&buf) else { continue };
            if candidate != name {
                if let Some((found, _)) = self.topics.get_key_value(candidate) {
                    return Some(found.as_str());
                }
            }
        }
        None
    }

    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&Partition> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition).ok().and_then(|i| t.partitions.get(i))
    }

    /// A 64-bit digest of the whole state: equal states give equal digests, and
    /// any difference (an offset, an extent, a producer) changes it.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        h.u64(self.revision);
        h.u64(self.next_producer_id as u64);
        h.u64(self.object_fence);
        h.u64(self.config_changes);
        h.map(&self.broker_configs);
        h.u64(self.node_configs.len() as u64);
        for (node, m) in &self.node_configs {
            h.u64(*node as u64);
            h.map(m);
        }
        h.u64(self.topics.len() as u64);
        for (name, t) in &self.topics {
            h.str(name);
            h.bytes(&t.id.0);
            h.map(&t.configs);
            h.u64(t.partitions.len() as u64);
            for p in &t.partitions {
                h.u64(p.log_start as u64);
                h.u64(p.log_end as u64);
                h.u64(p.size_bytes);
                match p.max_timestamp {
                    Some((ts, o)) => {
                        h.u64(1);
                        h.u64(ts as u64);
                        h.u64(o as u64);
                    }
                    None => h.u64(0),
                }
                h.u64(p.extents.len() as u64);
                for e in &p.extents {
                    h.u64(e.base_offset as u64);
                    h.u64(e.end_offset as u64);
                    h.str(&e.object);
                    h.u64(e.position);
                    h.u64(e.length);
                    h.u64(e.max_timestamp as u64);
                    for b in &e.batches {
                        h.u64(b.base_offset as u64);
                        h.u64(b.max_timestamp as u64);
                        h.u64(b.position);
                    }
                }
                h.u64(p.producers.len() as u64);
                for (id, s) in &p.producers {
                    h.u64(*id as u64);
                    h.u64(s.epoch as u64);
                    h.u64(s.last_timestamp as u64);
                    for b in &s.recent {
                        h.u64(b.first_seq as u64);
                        h.u64(b.last_seq as u64);
                        h.u64(b.base_offset as u64);
                    }
                }
            }
        }
        h.u64(self.groups.len() as u64);
        for (name, g) in &self.groups {
            h.str(name);
            h.u64(u64::from(g.epoch));
            let (b, i) = g.owner.unwrap_or((-1, 0));
            h.u64(b as u64);
            h.u64(i);
            match &g.generation {
                Some(gen) => {
                    h.u64(gen.generation as u64);
                    h.opt_str(gen.protocol_type.as_deref());
                    h.opt_str(gen.protocol.as_deref());
                    h.opt_str(gen.leader.as_deref());
                    h.u64(gen.timestamp_ms as u64);
                    h.u64(gen.members.len() as u64);
                    for m in &gen.members {
                        h.str(&m.member_id);
                        h.opt_str(m.instance_id.as_deref());
                        h.str(&m.client_id);
                        h.str(&m.client_host);
                        h.u64(m.session_timeout_ms as u64);
                        h.u64(m.rebalance_timeout_ms as u64);
                        h.u64(m.subscription.len() as u64);
                        h.bytes(&m.subscription);
                        h.u64(m.assignment.len() as u64);
                        h.bytes(&m.assignment);
                    }
                }
                None => h.u64(u64::MAX),
            }
            h.u64(g.offsets.len() as u64);
            for o in g.offsets.values() {
                h.str(&o.topic);
                h.u64(o.partition as u64);
                h.u64(o.offset as u64);
                h.u64(o.leader_epoch as u64);
                h.opt_str(o.metadata.as_deref());
                h.u64(o.commit_timestamp as u64);
                h.u64(o.expire_timestamp as u64);
            }
        }
        h.finish()
    }
}

/// FNV-1a, 64-bit: tiny, deterministic, good enough to tell states apart in tests.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u64(1);
                self.str(s);
            }
            None => self.u64(0),
        }
    }
    fn map(&mut self, m: &BTreeMap<String, String>) {
        self.u64(m.len() as u64);
        for (k, v) in m {
            self.str(k);
            self.str(v);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A deterministic, non-zero topic id for a topic created at `revision`.
pub fn topic_id_for(revision: u64, index: usize, name: &str) -> Uuid {
    let mut a = Fnv::new();
    a.u64(revision);
    a.u64(index as u64);
    a.str(name);
    let hi = a.finish();
    a.u64(0x5354_5241_5441); // "STRATA"
    let lo = a.finish() | 1;
    Uuid::from_u64_pair(hi, lo)
}
