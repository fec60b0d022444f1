//! Applying commits: the only code that changes [`LogState`]. Every broker runs
//! it on the same commits in the same order and reaches the same state and the
//! same verdicts — offsets, duplicates, rejections.

use std::collections::VecDeque;
use std::sync::Arc;

use strata_proto::Uuid;

use super::commit::{BatchEntry, Commit, CommitBody};
use super::group;
use super::state::{topic_id_for, BatchRef, Extent, LogState, Partition, ProducerPartition, RecentBatch, Topic, PRODUCER_WINDOW};
use crate::error_code as ec;

/// What the apply decided for one batch of an object commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Appended at this base offset.
    Appended { base_offset: i64 },
    /// A retry of a batch already appended at this base offset.
    Duplicate { base_offset: i64 },
    /// Refused with this Kafka error code.
    Rejected { error: i16 },
}

/// What applying one commit decided, for the broker that proposed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Per partition entry, per batch.
    Object(Vec<Vec<BatchOutcome>>),
    /// Per topic: the new id, or an error code.
    CreateTopics(Vec<Result<Uuid, i16>>),
    /// Per topic: ok or an error code.
    DeleteTopics(Vec<Result<(), i16>>),
    /// Per topic: ok or an error code.
    CreatePartitions(Vec<Result<(), i16>>),
    /// Ok or an error code.
    SetConfigs(Result<(), i16>),
    /// The allocated producer id.
    ProducerId(i64),
    /// Per partition: the new log start offset, or an error code.
    DeleteRecords(Vec<Result<i64, i16>>),
    /// Per group operation: ok, or NOT_COORDINATOR when its epoch is stale.
    Groups(Vec<Result<(), i16>>),
    /// The object fence now in force.
    FenceObjects(u64),
    /// Producer states forgotten.
    ExpireProducers(usize),
}

/// True when `next` follows `last` in Kafka's wrapping sequence space.
fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (last == i32::MAX && next == 0)
}

/// Applies `commit` at `revision`. Revisions must increase; a commit at or below
/// the last applied revision is ignored (a replay after a watch reconnect).
pub fn apply(state: &mut LogState, revision: u64, commit: &Commit) -> Option<Applied> {
    if revision <= state.revision {
        #[cfg(feature = "sim-bugs")] // PLANTED BUG double-apply
        if crate::sim_bugs::active(crate::sim_bugs::Bug::DoubleApply) && revision == state.revision {
            return Some(apply_again(state, commit));
        }
        return None;
    }
    state.revision = revision;
    Some(match &commit.body {
        CommitBody::Object { key, partitions, .. } if crate::object::key::created_at(key) < state.object_fence => {
            // The GC may have deleted it: refuse, the writer retries with a new object.
            Applied::Object(
                partitions
                    .iter()
                    .map(|p| vec![BatchOutcome::Rejected { error: ec::KAFKA_STORAGE_ERROR }; p.batches.len()])
                    .collect(),
            )
        }
        CommitBody::Object { key, partitions, .. } => {
            let object: Arc<str> = Arc::from(key.as_str());
            let mut out = Vec::with_capacity(partitions.len());
            for entry in partitions {
                let part = state
                    .topic_names
                    .get(&entry.topic_id)
                    .cloned()
                    .and_then(|name| state.topics.get_mut(&name))
                    .and_then(|t| usize::try_from(entry.partition).ok().and_then(|i| t.partitions.get_mut(i)));
                match part {
                    None => out.push(vec![
                        BatchOutcome::Rejected { error: ec::UNKNOWN_TOPIC_OR_PARTITION };
                        entry.batches.len()
                    ]),
                    Some(p) => out.push(entry.batches.iter().map(|b| append_batch(p, &object, b)).collect()),
                }
            }
            Applied::Object(out)
        }
        CommitBody::CreateTopics(topics) => {
            let mut out = Vec::with_capacity(topics.len());
            for (i, t) in topics.iter().enumerate() {
                if state.topics.contains_key(&t.name) {
                    out.push(Err(ec::TOPIC_ALREADY_EXISTS));
                    continue;
                }
                if crate::topic_name::validate(&t.name).is_err() || t.partitions == 0 || t.partitions > MAX_PARTITIONS
                {
                    out.push(Err(ec::INVALID_REQUEST));
                    continue;
                }
                if state.colliding_topic(&t.name).is_some() {
                    out.push(Err(ec::INVALID_TOPIC_EXCEPTION));
                    continue;
                }
                let id = topic_id_for(revision, i, &t.name);
                state.topic_names.insert(id, t.name.clone());
                state.topics.insert(
                    t.name.clone(),
                    Topic {
                        id,
                        name: t.name.clone(),
                        configs: t.configs.clone(),
                        partitions: vec![Partition::default(); t.partitions as usize],
                    },
                );
                out.push(Ok(id));
            }
            Applied::CreateTopics(out)
        }
        CommitBody::DeleteTopics(ids) => Applied::DeleteTopics(
            ids.iter()
                .map(|id| match state.topic_names.remove(id) {
                    Some(name) => {
                        state.topics.remove(&name);
                        group::forget_topic(&mut state.groups, &name);
                        Ok(())
                    }
                    None => Err(ec::UNKNOWN_TOPIC_ID),
                })
                .collect(),
        ),
        CommitBody::CreatePartitions(list) => Applied::CreatePartitions(
            list.iter()
                .map(|(id, count)| {
                    let name = state.topic_names.get(id).ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
                    let t = state.topics.get_mut(name).ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
                    if (*count as usize) <= t.partitions.len() || *count > MAX_PARTITIONS {
                        return Err(ec::INVALID_PARTITIONS);
                    }
                    t.partitions.resize(*count as usize, Partition::default());
                    Ok(())
                })
                .collect(),
        ),
        CommitBody::SetTopicConfigs(_, u) | CommitBody::SetBrokerConfigs(u) | CommitBody::SetNodeConfigs(_, u)
            if u.based_on.is_some_and(|n| n != state.config_changes) =>
        {
            // Another config change came first: the proposer recomputes.
            Applied::SetConfigs(Err(ec::INVALID_UPDATE_VERSION))
        }
        CommitBody::SetTopicConfigs(id, u) => Applied::SetConfigs(
            match state.topic_names.get(id).cloned().and_then(|n| state.topics.get_mut(&n)) {
                Some(t) => {
                    t.configs = u.configs.clone();
                    state.config_changes += 1;
                    Ok(())
                }
                None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
            },
        ),
        CommitBody::SetBrokerConfigs(u) => {
            state.broker_configs = u.configs.clone();
            state.config_changes += 1;
            Applied::SetConfigs(Ok(()))
        }
        CommitBody::SetNodeConfigs(node, u) => {
            if u.configs.is_empty() {
                state.node_configs.remove(node);
            } else {
                state.node_configs.insert(*node, u.configs.clone());
            }
            state.config_changes += 1;
            Applied::SetConfigs(Ok(()))
        }
        CommitBody::AllocateProducerId => {
            let id = state.next_producer_id;
            state.next_producer_id += 1;
            Applied::ProducerId(id)
        }
        CommitBody::DeleteRecords(list) => Applied::DeleteRecords(
            list.iter()
                .map(|(id, partition, offset)| {
                    let name = state.topic_names.get(id).ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
                    let t = state.topics.get_mut(name).ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
                    let p = usize::try_from(*partition)
                        .ok()
                        .and_then(|i| t.partitions.get_mut(i))
                        .ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
                    // -1 means "up to the high watermark", as in Kafka.
                    let target = if *offset == -1 { p.log_end } else { *offset };
                    if target < 0 || target > p.log_end {
                        return Err(ec::OFFSET_OUT_OF_RANGE);
                    }
                    if target > p.log_start {
                        p.log_start = target;
                        truncate_front(p);
                    }
                    Ok(p.log_start)
                })
                .collect(),
        ),
        CommitBody::Groups(list) => Applied::Groups(group::apply_groups(&mut state.groups, &commit.origin, list)),
        CommitBody::FenceObjects { below } => {
            state.object_fence = state.object_fence.max(*below);
            Applied::FenceObjects(state.object_fence)
        }
        CommitBody::ExpireProducers(list) => {
            let mut expired = 0;
            for (id, partition, before) in list {
                let name = state.topic_names.get(id);
                let t = name.and_then(|n| state.topics.get_mut(n));
                let p = t.and_then(|t| usize::try_from(*partition).ok().and_then(|i| t.partitions.get_mut(i)));
                if let Some(p) = p {
                    let n = p.producers.len();
                    p.producers.retain(|_, s| s.last_timestamp >= *before);
                    expired += n - p.producers.len();
                }
            }
            Applied::ExpireProducers(expired)
        }
    })
}

/// PLANTED BUG double-apply: applies an object commit once more.
#[cfg(feature = "sim-bugs")]
fn apply_again(state: &mut LogState, commit: &Commit) -> Applied {
    let revision = state.revision;
    state.revision = revision - 1;
    let applied = apply(state, revision, commit).unwrap_or(Applied::Object(Vec::new()));
    state.revision = revision;
    applied
}

/// The most partitions a topic may have (bounds state and requests).
pub const MAX_PARTITIONS: u32 = 100_000;

/// Drops extents entirely below the log start.
fn truncate_front(p: &mut Partition) {
    let keep = p.extents.partition_point(|e| e.end_offset <= p.log_start);
    for e in p.extents.drain(..keep) {
        p.size_bytes = p.size_bytes.saturating_sub(e.length);
    }
}

fn append_batch(p: &mut Partition, object: &Arc<str>, b: &BatchEntry) -> BatchOutcome {
    if b.offset_count == 0 {
        return BatchOutcome::Rejected { error: ec::CORRUPT_MESSAGE };
    }
    if b.producer_id >= 0 {
        if let Some(outcome) = check_producer(p, b) {
            return outcome;
        }
    }
    let base_offset = p.log_end;
    let end_offset = base_offset + i64::from(b.offset_count);
    p.log_end = end_offset;
    p.size_bytes += u64::from(b.length);
    if p.max_timestamp.is_none_or(|(ts, _)| b.max_timestamp > ts) {
        p.max_timestamp = Some((b.max_timestamp, base_offset));
    }
    // Extend the last extent when this batch follows it in the same object.
    match p.extents.last_mut() {
        Some(e)
            if (Arc::ptr_eq(&e.object, object) || *e.object == **object)
                && e.end_offset == base_offset
                && e.position + e.length == b.position =>
        {
            e.end_offset = end_offset;
            e.length += u64::from(b.length);
            e.max_timestamp = e.max_timestamp.max(b.max_timestamp);
            e.batches.push(BatchRef { base_offset, max_timestamp: b.max_timestamp, position: b.position });
        }
        _ => p.extents.push(Extent {
            base_offset,
            end_offset,
            object: object.clone(),
            position: b.position,
            length: u64::from(b.length),
            max_timestamp: b.max_timestamp,
            batches: vec![BatchRef { base_offset, max_timestamp: b.max_timestamp, position: b.position }],
        }),
    }
    if b.producer_id >= 0 {
        let st = p.producers.entry(b.producer_id).or_insert_with(|| ProducerPartition {
            epoch: b.producer_epoch,
            recent: VecDeque::new(),
            last_timestamp: 0,
        });
        if st.epoch != b.producer_epoch {
            st.epoch = b.producer_epoch;
            st.recent.clear();
        }
        if st.recent.len() == PRODUCER_WINDOW {
            st.recent.pop_front();
        }
        st.recent.push_back(RecentBatch { first_seq: b.base_sequence, last_seq: b.last_sequence(), base_offset });
        st.last_timestamp = b.max_timestamp;
    }
    BatchOutcome::Appended { base_offset }
}

/// Kafka's idempotence rules; `None` means the batch may be appended.
fn check_producer(p: &Partition, b: &BatchEntry) -> Option<BatchOutcome> {
    let Some(st) = p.producers.get(&b.producer_id) else {
        // No state for this producer here (new, or removed by retention): any
        // sequence is accepted, as Kafka does.
        return None;
    };
    if b.producer_epoch < st.epoch {
        return Some(BatchOutcome::Rejected { error: ec::INVALID_PRODUCER_EPOCH });
    }
    if b.producer_epoch > st.epoch {
        // A bumped epoch restarts the sequence at 0.
        return (b.base_sequence != 0).then_some(BatchOutcome::Rejected { error: ec::OUT_OF_ORDER_SEQUENCE_NUMBER });
    }
    let last_seq = b.last_sequence();
    if let Some(dup) = st.recent.iter().find(|r| r.first_seq == b.base_sequence && r.last_seq == last_seq) {
        #[cfg(feature = "sim-bugs")] // PLANTED BUG skip-dedup
        if crate::sim_bugs::active(crate::sim_bugs::Bug::SkipDedup) {
            return None;
        }
        return Some(BatchOutcome::Duplicate { base_offset: dup.base_offset });
    }
    match st.recent.back() {
        Some(last) if !in_sequence(last.last_seq, b.base_sequence) => {
            Some(BatchOutcome::Rejected { error: ec::OUT_OF_ORDER_SEQUENCE_NUMBER })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::commit::{NewTopic, Origin, PartitionEntry};
    use crate::object::key::object_key;

    fn commit(seq: u64, body: CommitBody) -> Commit {
        Commit { origin: Origin { broker: 1, incarnation: 7, seq }, body }
    }

    fn object(key: String, topic_id: Uuid) -> CommitBody {
        let batch = BatchEntry {
            position: 0,
            length: 100,
            offset_count: 2,
            record_count: 2,
            max_timestamp: 5,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        };
        CommitBody::Object { key, size: 100, partitions: vec![PartitionEntry { topic_id, partition: 0, batches: vec![batch] }] }
    }

    #[test]
    fn a_commit_naming_a_fenced_object_is_refused_and_a_newer_one_is_not() {
        let mut state = LogState::default();
        let topics = vec![NewTopic { name: "t".into(), partitions: 1, configs: BTreeMap::new() }];
        let Some(Applied::CreateTopics(ids)) = apply(&mut state, 1, &commit(1, CommitBody::CreateTopics(topics))) else {
            panic!("create")
        };
        let id = ids[0].unwrap();
        // Created at revision 1, its commit delayed past a fence at 5 (the GC may have deleted it).
        let old = object_key(2, 9, 1, 1);
        assert_eq!(apply(&mut state, 2, &commit(2, CommitBody::FenceObjects { below: 5 })), Some(Applied::FenceObjects(5)));
        assert_eq!(
            apply(&mut state, 3, &commit(3, CommitBody::FenceObjects { below: 3 })),
            Some(Applied::FenceObjects(5)),
            "a fence never moves back"
        );
        assert_eq!(
            apply(&mut state, 4, &commit(4, object(old, id))),
            Some(Applied::Object(vec![vec![BatchOutcome::Rejected { error: ec::KAFKA_STORAGE_ERROR }]]))
        );
        assert_eq!(state.partition("t", 0).unwrap().log_end, 0);
        let new = object_key(2, 9, 2, 5);
        assert_eq!(
            apply(&mut state, 5, &commit(5, object(new, id))),
            Some(Applied::Object(vec![vec![BatchOutcome::Appended { base_offset: 0 }]]))
        );
        assert_eq!(state.partition("t", 0).unwrap().log_end, 2);
    }
}
