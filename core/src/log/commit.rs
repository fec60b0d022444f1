//! Commits: the records the sequencer orders. Every broker applies every commit
//! in sequencer order, so everything they decide is a function of this list.
//!
//! The binary form is ours, versioned, and decoded totally: a commit read back
//! from the sequencer is untrusted input like any other.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use strata_proto::codec::wire;
use strata_proto::{DecodeError, Uuid};

use super::group::{self, GroupCommit};

/// Who proposed a commit: lets the proposing broker recognise its own commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Origin {
    /// The proposing broker's node id.
    pub broker: i32,
    /// A random number the broker drew at start (tells restarts apart).
    pub incarnation: u64,
    /// The broker's per-incarnation commit counter.
    pub seq: u64,
}

/// One batch of an object, as the proposing broker parsed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchEntry {
    /// Byte position of the batch in the object.
    pub position: u64,
    /// Batch size in bytes (its whole encoding).
    pub length: u32,
    /// Offsets the batch spans: `last_offset_delta + 1`.
    pub offset_count: u32,
    /// Records in the batch.
    pub record_count: u32,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// First sequence, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

impl BatchEntry {
    /// The batch's last sequence number (Kafka wraps at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let delta = self.offset_count.saturating_sub(1) as i64;
        ((self.base_sequence as i64 + delta) % (i32::MAX as i64 + 1)) as i32
    }
}

/// The batches an object holds for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionEntry {
    /// The topic, by id (a deleted and recreated topic is a different topic).
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The batches, in the order the producers sent them.
    pub batches: Vec<BatchEntry>,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTopic {
    /// The topic name (validated by the proposer, checked again by the apply).
    pub name: String,
    /// Partition count.
    pub partitions: u32,
    /// Explicit config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A resource's new config overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigUpdate {
    /// The whole new override map.
    pub configs: BTreeMap<String, String>,
    /// Applied only while [`crate::log::LogState::config_changes`] still has
    /// this value: an incremental alter computed `configs` from that state,
    /// and a config change applied since (through any broker) would be lost.
    /// None: unconditional (a legacy AlterConfigs replaces the whole map).
    pub based_on: Option<u64>,
}

/// What a commit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitBody {
    /// An object was written; index its batches.
    Object {
        /// Object-store key.
        key: String,
        /// Object size in bytes.
        size: u64,
        /// The partitions it holds.
        partitions: Vec<PartitionEntry>,
    },
    /// Create topics (each independently: an existing name fails alone).
    CreateTopics(Vec<NewTopic>),
    /// Delete topics by id.
    DeleteTopics(Vec<Uuid>),
    /// Grow topics to these partition counts.
    CreatePartitions(Vec<(Uuid, u32)>),
    /// Replace a topic's config overrides.
    SetTopicConfigs(Uuid, ConfigUpdate),
    /// Replace the cluster-wide default broker config overrides (the broker
    /// resource with an empty name).
    SetBrokerConfigs(ConfigUpdate),
    /// Replace one broker's own dynamic config overrides (the broker resource
    /// named by its node id).
    SetNodeConfigs(i32, ConfigUpdate),
    /// Allocate one producer id (non-transactional).
    AllocateProducerId,
    /// Move partitions' log start offsets forward (DeleteRecords).
    DeleteRecords(Vec<(Uuid, i32, i64)>),
    /// Consumer-group operations, each fenced by its group's coordinator epoch.
    Groups(Vec<GroupCommit>),
    /// Fence the objects created before revision `below` (see
    /// [`crate::object::key`]): no later commit may name one, so the ones
    /// nothing references can be deleted.
    FenceObjects { below: u64 },
    /// Forget the idempotence state of producers whose last batch in a
    /// partition is older than a time: (topic, partition, before_ms).
    ExpireProducers(Vec<(Uuid, i32, i64)>),
}

/// A commit: who proposed it and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The proposer.
    pub origin: Origin,
    /// The content.
    pub body: CommitBody,
}

const FORMAT: u8 = 1;

pub(super) fn put_str(w: &mut BytesMut, s: &str) {
    wire::put_uvarint(w, s.len() as u32);
    w.put_slice(s.as_bytes());
}

pub(super) fn get_str(r: &mut Bytes) -> Result<String, DecodeError> {
    let n = wire::uvarint(r)?;
    let b = wire::take(r, u64::from(n))?;
    String::from_utf8(b.to_vec()).map_err(|_| strata_proto::DecodeErrorKind::InvalidUtf8.into())
}

pub(super) fn put_map(w: &mut BytesMut, m: &BTreeMap<String, String>) {
    wire::put_uvarint(w, m.len() as u32);
    for (k, v) in m {
        put_str(w, k);
        put_str(w, v);
    }
}

fn put_config_update(w: &mut BytesMut, u: &ConfigUpdate) {
    if let Some(n) = u.based_on {
        w.put_u64(n);
    }
    put_map(w, &u.configs);
}

fn get_config_update(r: &mut Bytes, based: bool) -> Result<ConfigUpdate, DecodeError> {
    let based_on = if based { Some(wire::i64(r)? as u64) } else { None };
    Ok(ConfigUpdate { based_on, configs: get_map(r)? })
}

pub(super) fn get_count(r: &mut Bytes, min_item: usize) -> Result<usize, DecodeError> {
    let n = wire::uvarint(r)? as usize;
    if n.saturating_mul(min_item) > r.len() {
        return Err(strata_proto::DecodeErrorKind::CountTooLarge { count: n as u64, remaining: r.len() }.into());
    }
    Ok(n)
}

pub(super) fn get_map(r: &mut Bytes) -> Result<BTreeMap<String, String>, DecodeError> {
    let n = get_count(r, 2)?;
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let k = get_str(r)?;
        let v = get_str(r)?;
        m.insert(k, v);
    }
    Ok(m)
}

impl Commit {
    /// The binary form stored in the sequencer.
    pub fn encode(&self) -> Bytes {
        let mut w = BytesMut::with_capacity(64);
        w.put_u8(FORMAT);
        w.put_i32(self.origin.broker);
        w.put_u64(self.origin.incarnation);
        w.put_u64(self.origin.seq);
        match &self.body {
            CommitBody::Object { key, size, partitions } => {
                w.put_u8(1);
                put_str(&mut w, key);
                w.put_u64(*size);
                wire::put_uvarint(&mut w, partitions.len() as u32);
                for p in partitions {
                    wire::put_uuid(&mut w, &p.topic_id);
                    w.put_i32(p.partition);
                    wire::put_uvarint(&mut w, p.batches.len() as u32);
                    for b in &p.batches {
                        w.put_u64(b.position);
                        w.put_u32(b.length);
                        w.put_u32(b.offset_count);
                        w.put_u32(b.record_count);
                        w.put_i64(b.max_timestamp);
                        w.put_i64(b.producer_id);
                        w.put_i16(b.producer_epoch);
                        w.put_i32(b.base_sequence);
                        w.put_u8(b.transactional as u8);
                    }
                }
            }
            CommitBody::CreateTopics(topics) => {
                w.put_u8(2);
                wire::put_uvarint(&mut w, topics.len() as u32);
                for t in topics {
                    put_str(&mut w, &t.name);
                    w.put_u32(t.partitions);
                    put_map(&mut w, &t.configs);
                }
            }
            CommitBody::DeleteTopics(ids) => {
                w.put_u8(3);
                wire::put_uvarint(&mut w, ids.len() as u32);
                for id in ids {
                    wire::put_uuid(&mut w, id);
                }
            }
            CommitBody::CreatePartitions(list) => {
                w.put_u8(4);
                wire::put_uvarint(&mut w, list.len() as u32);
                for (id, n) in list {
                    wire::put_uuid(&mut w, id);
                    w.put_u32(*n);
                }
            }
            // Tags 5, 6 and 9 are unconditional; 12, 13 and 14 carry `based_on`.
            CommitBody::SetTopicConfigs(id, u) => {
                w.put_u8(if u.based_on.is_some() { 12 } else { 5 });
                wire::put_uuid(&mut w, id);
                put_config_update(&mut w, u);
            }
            CommitBody::SetBrokerConfigs(u) => {
                w.put_u8(if u.based_on.is_some() { 13 } else { 6 });
                put_config_update(&mut w, u);
            }
            CommitBody::SetNodeConfigs(node, u) => {
                w.put_u8(if u.based_on.is_some() { 14 } else { 9 });
                w.put_i32(*node);
                put_config_update(&mut w, u);
            }
            CommitBody::AllocateProducerId => w.put_u8(7),
            CommitBody::DeleteRecords(list) => {
                w.put_u8(8);
                wire::put_uvarint(&mut w, list.len() as u32);
                for (id, p, o) in list {
                    wire::put_uuid(&mut w, id);
                    w.put_i32(*p);
                    w.put_i64(*o);
                }
            }
            CommitBody::Groups(list) => {
                w.put_u8(10);
                group::encode(&mut w, list);
            }
            CommitBody::FenceObjects { below } => {
                w.put_u8(11);
                w.put_u64(*below);
            }
            CommitBody::ExpireProducers(list) => {
                w.put_u8(15);
                wire::put_uvarint(&mut w, list.len() as u32);
                for (id, p, before) in list {
                    wire::put_uuid(&mut w, id);
                    w.put_i32(*p);
                    w.put_i64(*before);
                }
            }
        }
        w.freeze()
    }

    /// Reads a commit back; any bytes give a commit or an error.
    pub fn decode(bytes: Bytes) -> Result<Commit, DecodeError> {
        let mut r = bytes;
        let r = &mut r;
        let format = wire::i8(r)? as u8;
        if format != FORMAT {
            return Err(strata_proto::DecodeErrorKind::UnsupportedVersion { api_key: -1, version: format as i16 }.into());
        }
        let origin = Origin { broker: wire::i32(r)?, incarnation: wire::i64(r)? as u64, seq: wire::i64(r)? as u64 };
        let tag = wire::i8(r)? as u8;
        let body = match tag {
            1 => {
                let key = get_str(r)?;
                let size = wire::i64(r)? as u64;
                let n = get_count(r, 21)?;
                let mut partitions = Vec::with_capacity(n);
                for _ in 0..n {
                    let topic_id = wire::uuid(r)?;
                    let partition = wire::i32(r)?;
                    let m = get_count(r, 43)?;
                    let mut batches = Vec::with_capacity(m);
                    for _ in 0..m {
                        batches.push(BatchEntry {
                            position: wire::i64(r)? as u64,
                            length: wire::u32(r)?,
                            offset_count: wire::u32(r)?,
                            record_count: wire::u32(r)?,
                            max_timestamp: wire::i64(r)?,
                            producer_id: wire::i64(r)?,
                            producer_epoch: wire::i16(r)?,
                            base_sequence: wire::i32(r)?,
                            transactional: wire::bool(r)?,
                        });
                    }
                    partitions.push(PartitionEntry { topic_id, partition, batches });
                }
                CommitBody::Object { key, size, partitions }
            }
            2 => {
                let n = get_count(r, 6)?;
                let mut topics = Vec::with_capacity(n);
                for _ in 0..n {
                    topics.push(NewTopic { name: get_str(r)?, partitions: wire::u32(r)?, configs: get_map(r)? });
                }
                CommitBody::CreateTopics(topics)
            }
            3 => {
                let n = get_count(r, 16)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(wire::uuid(r)?);
                }
                CommitBody::DeleteTopics(ids)
            }
            4 => {
                let n = get_count(r, 20)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push((wire::uuid(r)?, wire::u32(r)?));
                }
                CommitBody::CreatePartitions(list)
            }
            5 => CommitBody::SetTopicConfigs(wire::uuid(r)?, get_config_update(r, false)?),
            6 => CommitBody::SetBrokerConfigs(get_config_update(r, false)?),
            7 => CommitBody::AllocateProducerId,
            9 => CommitBody::SetNodeConfigs(wire::i32(r)?, get_config_update(r, false)?),
            12 => CommitBody::SetTopicConfigs(wire::uuid(r)?, get_config_update(r, true)?),
            13 => CommitBody::SetBrokerConfigs(get_config_update(r, true)?),
            14 => CommitBody::SetNodeConfigs(wire::i32(r)?, get_config_update(r, true)?),
            8 => {
                let n = get_count(r, 28)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push((wire::uuid(r)?, wire::i32(r)?, wire::i64(r)?));
                }
                CommitBody::DeleteRecords(list)
            }
            10 => CommitBody::Groups(group::decode(r)?),
            11 => CommitBody::FenceObjects { below: wire::i64(r)? as u64 },
            15 => {
                let n = get_count(r, 28)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push((wire::uuid(r)?, wire::i32(r)?, wire::i64(r)?));
                }
                CommitBody::ExpireProducers(list)
            }
            other => {
                return Err(strata_proto::DecodeErrorKind::UnsupportedVersion { api_key: -2, version: other as i16 }.into())
            }
        };
        Ok(Commit { origin, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Commit> {
        let origin = Origin { broker: 3, incarnation: 0xfeed, seq: 9 };
        let id = Uuid::from_u64_pair(1, 2);
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        vec![
            Commit {
                origin,
                body: CommitBody::Object {
                    key: "objects/ab/1".into(),
                    size: 4096,
                    partitions: vec![PartitionEntry {
                        topic_id: id,
                        partition: 2,
                        batches: vec![BatchEntry {
                            position: 0,
                            length: 100,
                            offset_count: 3,
                            record_count: 3,
                            max_timestamp: 77,
                            producer_id: 5,
                            producer_epoch: 1,
                            base_sequence: 10,
                            transactional: false,
                        }],
                    }],
                },
            },
            Commit { origin, body: CommitBody::CreateTopics(vec![NewTopic { name: "t".into(), partitions: 4, configs: configs.clone() }]) },
            Commit { origin, body: CommitBody::DeleteTopics(vec![id]) },
            Commit { origin, body: CommitBody::CreatePartitions(vec![(id, 8)]) },
            Commit { origin, body: CommitBody::SetTopicConfigs(id, ConfigUpdate { configs: configs.clone(), based_on: None }) },
            Commit { origin, body: CommitBody::SetTopicConfigs(id, ConfigUpdate { configs: configs.clone(), based_on: Some(9) }) },
            Commit { origin, body: CommitBody::SetNodeConfigs(3, ConfigUpdate { configs: configs.clone(), based_on: None }) },
            Commit { origin, body: CommitBody::SetNodeConfigs(3, ConfigUpdate { configs: configs.clone(), based_on: Some(0) }) },
            Commit { origin, body: CommitBody::SetBrokerConfigs(ConfigUpdate { configs: configs.clone(), based_on: None }) },
            Commit { origin, body: CommitBody::SetBrokerConfigs(ConfigUpdate { configs, based_on: Some(u64::MAX) }) },
            Commit { origin, body: CommitBody::AllocateProducerId },
            Commit { origin, body: CommitBody::DeleteRecords(vec![(id, 1, 50)]) },
            Commit {
                origin,
                body: CommitBody::Groups(vec![group::GroupCommit { group: "g".into(), epoch: 3, op: group::GroupOp::Delete }]),
            },
            Commit { origin, body: CommitBody::FenceObjects { below: u64::MAX - 1 } },
            Commit { origin, body: CommitBody::ExpireProducers(vec![(id, 3, -5), (id, 0, i64::MAX)]) },
        ]
    }

    #[test]
    fn commits_round_trip() {
        for c in samples() {
            assert_eq!(Commit::decode(c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        for c in samples() {
            let b = c.encode();
            for cut in 0..b.len() {
                assert!(Commit::decode(b.slice(..cut)).is_err());
            }
        }
        let mut x = 0x1234_5678_u64;
        for _ in 0..2000 {
            let n = (x % 64) as usize;
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Commit::decode(Bytes::from(bytes));
        }
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let b = BatchEntry { base_sequence: i32::MAX - 1, offset_count: 3, ..Default::default() };
        assert_eq!(b.last_sequence(), 0);
    }
}
