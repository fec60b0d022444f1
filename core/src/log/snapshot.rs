//! Snapshots: the whole applied [`LogState`] at a revision, as bytes, so that a
//! broker can start from the newest snapshot and replay only the commits after
//! it, and the sequencer can drop the commits before it (DESIGN.md, "The
//! sequencer", Snapshots).
//!
//! ```text
//! header: magic "STRS" (4) | format version (2) | revision (8) | body length (8)
//!         | crc32c of the header fields before it and the body (4)
//! body:   next producer id, object fence, broker and node configs, the object-key table,
//!         topics (partitions, extents, batches, producers), groups
//! ```
//!
//! Extents name their object by an index into the object-key table: one key is
//! shared by every partition an object holds, so it is written once (and shared
//! again, as one `Arc<str>`, once decoded).
//!
//! The decoder is total like every other: a snapshot is read back from the
//! object store, and any bytes give a state or a [`SnapshotError`]. Counts are
//! checked against the bytes that remain before anything is allocated, and
//! the structure the rest of the core indexes into (extents and their batches)
//! is checked, so a damaged snapshot that passes the CRC cannot make a later
//! fetch panic.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use strata_proto::codec::wire;
use strata_proto::DecodeError;

use super::commit::{get_count, get_map, get_str, put_map, put_str};
use super::group::{get_generation, get_offset, put_generation, put_offset, GroupLog, OFFSET_MIN_BYTES};
use super::state::{BatchRef, Extent, LogState, Partition, ProducerPartition, RecentBatch, Topic};

/// Magic at the start of every snapshot.
pub const MAGIC: &[u8; 4] = b"STRS";
/// The snapshot format version.
pub const VERSION: u16 = 2;
/// Header bytes: magic, version, revision, body length, CRC.
const HEADER: usize = 4 + 2 + 8 + 8 + 4;

/// The object-store key of the snapshot at `revision` (zero-padded, so keys
/// sort by revision).
pub fn key(revision: u64) -> String {
    format!("snapshots/{revision:020}")
}

/// The revision a snapshot key names, if it is one.
pub fn revision_of_key(key: &str) -> Option<u64> {
    let digits = key.strip_prefix("snapshots/")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Why bytes are not a snapshot this build can load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot of {0} bytes is too small for its header")]
    TooSmall(usize),
    #[error("bad magic: not a Strata snapshot")]
    BadMagic,
    #[error("snapshot format version {0} is not supported")]
    Version(u16),
    #[error("snapshot body is {actual} bytes, its header says {expected}")]
    Length { expected: u64, actual: usize },
    #[error("snapshot CRC mismatch")]
    Crc,
    #[error("snapshot body does not decode: {0:?}")]
    Body(DecodeError),
    #[error("snapshot is inconsistent: {0}")]
    Invalid(&'static str),
}

impl From<DecodeError> for SnapshotError {
    fn from(e: DecodeError) -> Self {
        SnapshotError::Body(e)
    }
}

/// Encodes `state`, at the revision it has applied.
pub fn encode(state: &LogState) -> Bytes {
    // Destructured without `..`: a field added to LogState (or to anything
    // below) does not compile until the snapshot writes it.
    let LogState {
        revision,
        topics,
        // Derived: the inverse of `topics` (rebuilt by the decoder).
        topic_names: _,
        next_producer_id,
        object_fence,
        broker_configs,
        node_configs,
        config_changes,
        groups,
    } = state;
    let mut w = BytesMut::with_capacity(4096);
    w.put_i64(*next_producer_id);
    w.put_u64(*object_fence);
    w.put_u64(*config_changes);
    put_map(&mut w, broker_configs);
    wire::put_uvarint(&mut w, node_configs.len() as u32);
    for (node, m) in node_configs {
        w.put_i32(*node);
        put_map(&mut w, m);
    }
    // The object-key table, in first-use order.
    let mut objects: BTreeMap<&str, u32> = BTreeMap::new();
    let mut table: Vec<&str> = Vec::new();
    for e in topics.values().flat_map(|t| &t.partitions).flat_map(|p| &p.extents) {
        objects.entry(&e.object).or_insert_with(|| {
            table.push(&e.object);
            table.len() as u32 - 1
        });
    }
    wire::put_uvarint(&mut w, table.len() as u32);
    for k in &table {
        put_str(&mut w, k);
    }
    wire::put_uvarint(&mut w, topics.len() as u32);
    for t in topics.values() {
        put_topic(&mut w, t, &objects);
    }
    wire::put_uvarint(&mut w, groups.len() as u32);
    for (name, g) in groups {
        put_str(&mut w, name);
        put_group(&mut w, g);
    }
    let body = w.freeze();
    let mut out = BytesMut::with_capacity(HEADER + body.len());
    out.put_slice(MAGIC);
    out.put_u16(VERSION);
    out.put_u64(*revision);
    out.put_u64(body.len() as u64);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out), &body);
    out.put_u32(crc);
    out.put_slice(&body);
    out.freeze()
}

fn put_topic(w: &mut BytesMut, t: &Topic, objects: &BTreeMap<&str, u32>) {
    let Topic { id, name, configs, partitions } = t;
    put_str(w, name);
    wire::put_uuid(w, id);
    put_map(w, configs);
    wire::put_uvarint(w, partitions.len() as u32);
    for p in partitions {
        let Partition { log_start, log_end, extents, size_bytes, max_timestamp, producers } = p;
        w.put_i64(*log_start);
        w.put_i64(*log_end);
        w.put_u64(*size_bytes);
        match max_timestamp {
            Some((ts, offset)) => {
                w.put_u8(1);
                w.put_i64(*ts);
                w.put_i64(*offset);
            }
            None => w.put_u8(0),
        }
        wire::put_uvarint(w, extents.len() as u32);
        for e in extents {
            let Extent { base_offset, end_offset, object, position, length, max_timestamp, batches } = e;
            w.put_i64(*base_offset);
            w.put_i64(*end_offset);
            wire::put_uvarint(w, objects.get(&**object).copied().unwrap_or_default());
            w.put_u64(*position);
            w.put_u64(*length);
            w.put_i64(*max_timestamp);
            wire::put_uvarint(w, batches.len() as u32);
            for b in batches {
                let BatchRef { base_offset, max_timestamp, position } = b;
                w.put_i64(*base_offset);
                w.put_i64(*max_timestamp);
                w.put_u64(*position);
            }
        }
        wire::put_uvarint(w, producers.len() as u32);
        for (id, s) in producers {
            let ProducerPartition { epoch, recent, last_timestamp } = s;
            w.put_i64(*id);
            w.put_i16(*epoch);
            w.put_i64(*last_timestamp);
            wire::put_uvarint(w, recent.len() as u32);
            for r in recent {
                let RecentBatch { first_seq, last_seq, base_offset } = r;
                w.put_i32(*first_seq);
                w.put_i32(*last_seq);
                w.put_i64(*base_offset);
            }
        }
    }
}

fn put_group(w: &mut BytesMut, g: &GroupLog) {
    let GroupLog { epoch, owner, generation, offsets } = g;
    w.put_u32(*epoch);
    match owner {
        Some((broker, incarnation)) => {
            w.put_u8(1);
            w.put_i32(*broker);
            w.put_u64(*incarnation);
        }
        None => w.put_u8(0),
    }
    match generation {
        Some(gen) => {
            w.put_u8(1);
            put_generation(w, gen);
        }
        None => w.put_u8(0),
    }
    // The map's key is (topic, partition) of the record: not written twice.
    wire::put_uvarint(w, offsets.len() as u32);
    for o in offsets.values() {
        put_offset(w, o);
    }
}

/// The revision a snapshot's header names, without decoding the body.
pub fn peek_revision(bytes: &[u8]) -> Result<u64, SnapshotError> {
    if bytes.len() < HEADER {
        return Err(SnapshotError::TooSmall(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let mut rev = [0u8; 8];
    rev.copy_from_slice(&bytes[6..14]);
    Ok(u64::from_be_bytes(rev))
}

/// Decodes a snapshot; any bytes give a state or an error.
pub fn decode(bytes: Bytes) -> Result<LogState, SnapshotError> {
    let revision = peek_revision(&bytes)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[14..22]);
    let expected = u64::from_be_bytes(len);
    let crc = u32::from_be_bytes([bytes[22], bytes[23], bytes[24], bytes[25]]);
    let mut r = bytes.slice(HEADER..);
    if r.len() as u64 != expected {
        return Err(SnapshotError::Length { expected, actual: r.len() });
    }
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[..HEADER - 4]), &r) != crc {
        return Err(SnapshotError::Crc);
    }
    let r = &mut r;
    let mut state = LogState {
        revision,
        next_producer_id: wire::i64(r)?,
        object_fence: wire::i64(r)? as u64,
        config_changes: wire::i64(r)? as u64,
        broker_configs: get_map(r)?,
        ..LogState::default()
    };
    let n = get_count(r, 5)?;
    for _ in 0..n {
        let node = wire::i32(r)?;
        if state.node_configs.insert(node, get_map(r)?).is_some() {
            return Err(SnapshotError::Invalid("a node's configs appear twice"));
        }
    }
    let n = get_count(r, 1)?;
    let mut objects: Vec<Arc<str>> = Vec::with_capacity(n);
    for _ in 0..n {
        objects.push(Arc::from(get_str(r)?));
    }
    let n = get_count(r, 19)?;
    for _ in 0..n {
        let t = get_topic(r, &objects)?;
        if state.topic_names.insert(t.id, t.name.clone()).is_some() {
            return Err(SnapshotError::Invalid("two topics share an id"));
        }
        if state.topics.insert(t.name.clone(), t).is_some() {
            return Err(SnapshotError::Invalid("a topic appears twice"));
        }
    }
    let n = get_count(r, 8)?;
    for _ in 0..n {
        let name = get_str(r)?;
        let g = get_group(r)?;
        if state.groups.insert(name, g).is_some() {
            return Err(SnapshotError::Invalid("a group appears twice"));
        }
    }
    if !r.is_empty() {
        return Err(SnapshotError::Invalid("bytes after the last group"));
    }
    Ok(state)
}

fn get_topic(r: &mut Bytes, objects: &[Arc<str>]) -> Result<Topic, SnapshotError> {
    let name = get_str(r)?;
    let id = wire::uuid(r)?;
    let configs = get_map(r)?;
    let n = get_count(r, 27)?;
    let mut partitions = Vec::with_capacity(n);
    for _ in 0..n {
        let log_start = wire::i64(r)?;
        let log_end = wire::i64(r)?;
        if log_start > log_end {
            return Err(SnapshotError::Invalid("log start after log end"));
        }
        let size_bytes = wire::i64(r)? as u64;
        let max_timestamp = if wire::bool(r)? { Some((wire::i64(r)?, wire::i64(r)?)) } else { None };
        let m = get_count(r, 42)?;
        let mut extents: Vec<Extent> = Vec::with_capacity(m);
        for _ in 0..m {
            let e = get_extent(r, objects)?;
            if extents.last().is_some_and(|prev| prev.end_offset > e.base_offset) || e.end_offset > log_end {
                return Err(SnapshotError::Invalid("extents overlap, are out of order or pass the log end"));
            }
            extents.push(e);
        }
        let m = get_count(r, 19)?;
        let mut producers = BTreeMap::new();
        for _ in 0..m {
            let id = wire::i64(r)?;
            let epoch = wire::i16(r)?;
            let last_timestamp = wire::i64(r)?;
            let k = get_count(r, 16)?;
            let mut recent = VecDeque::with_capacity(k);
            for _ in 0..k {
                recent.push_back(RecentBatch { first_seq: wire::i32(r)?, last_seq: wire::i32(r)?, base_offset: wire::i64(r)? });
            }
            if producers.insert(id, ProducerPartition { epoch, recent, last_timestamp }).is_some() {
                return Err(SnapshotError::Invalid("a producer appears twice in a partition"));
            }
        }
        partitions.push(Partition { log_start, log_end, extents, size_bytes, max_timestamp, producers });
    }
    Ok(Topic { id, name, configs, partitions })
}

fn get_extent(r: &mut Bytes, objects: &[Arc<str>]) -> Result<Extent, SnapshotError> {
    let base_offset = wire::i64(r)?;
    let end_offset = wire::i64(r)?;
    let object = wire::uvarint(r)? as usize;
    let object = objects.get(object).cloned().ok_or(SnapshotError::Invalid("extent names an object not in the table"))?;
    let position = wire::i64(r)? as u64;
    let length = wire::i64(r)? as u64;
    let max_timestamp = wire::i64(r)?;
    let n = get_count(r, 24)?;
    let mut batches: Vec<BatchRef> = Vec::with_capacity(n);
    for _ in 0..n {
        batches.push(BatchRef { base_offset: wire::i64(r)?, max_timestamp: wire::i64(r)?, position: wire::i64(r)? as u64 });
    }
    // What `Extent::batch_at` / `batch_len` and the fetch planner rely on.
    let end = position.checked_add(length).ok_or(SnapshotError::Invalid("extent byte range overflows"))?;
    let ordered = batches.windows(2).all(|w| w[0].base_offset < w[1].base_offset && w[0].position < w[1].position);
    let fits = batches.first().is_some_and(|b| b.base_offset == base_offset && b.position == position)
        && batches.last().is_some_and(|b| b.base_offset < end_offset && b.position < end);
    if base_offset >= end_offset || !ordered || !fits {
        return Err(SnapshotError::Invalid("extent batches do not fit the extent"));
    }
    Ok(Extent { base_offset, end_offset, object, position, length, max_timestamp, batches })
}

fn get_group(r: &mut Bytes) -> Result<GroupLog, SnapshotError> {
    let epoch = wire::u32(r)?;
    let owner = if wire::bool(r)? { Some((wire::i32(r)?, wire::i64(r)? as u64)) } else { None };
    let generation = if wire::bool(r)? { Some(get_generation(r)?) } else { None };
    let n = get_count(r, OFFSET_MIN_BYTES)?;
    let mut offsets = BTreeMap::new();
    for _ in 0..n {
        let o = get_offset(r)?;
        if offsets.insert((o.topic.clone(), o.partition), o).is_some() {
            return Err(SnapshotError::Invalid("a committed offset appears twice"));
        }
    }
    Ok(GroupLog { epoch, owner, generation, offsets })
}

#[cfg(test)]
mod tests;
