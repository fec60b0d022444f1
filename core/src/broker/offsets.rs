//! ListOffsets: earliest, latest, max timestamp and by timestamp. The last two
//! are answered to the record, as Kafka does: the index finds the batch, and the
//! batch's records (read from memory or the object store) give the offset.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use strata_proto::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strata_proto::records::{RecordBatch, TimestampType};

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::{Output, ReadId};
use crate::log::state::BatchLocation;

/// Kafka's special ListOffsets timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// What to look for in a batch's records.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The first record with a timestamp at or after this.
    AtOrAfter(i64),
    /// The first record carrying the partition's max timestamp.
    Max(i64),
}

/// One partition waiting for its batch's bytes.
#[derive(Debug)]
struct Lookup {
    topic: usize,
    partition: usize,
    target: Target,
    batch: BatchLocation,
}

/// A ListOffsets request waiting for batch reads.
#[derive(Debug)]
struct Pending {
    info: ReqInfo,
    response: ListOffsetsResponse,
    outstanding: usize,
}

/// ListOffsets requests waiting for reads.
#[derive(Debug, Default)]
pub(crate) struct OffsetLookups {
    pending: BTreeMap<u64, Pending>,
    reads: BTreeMap<ReadId, (u64, Lookup)>,
}

impl OffsetLookups {
    /// True when `read` was issued for a ListOffsets lookup.
    pub fn waits_for(&self, read: ReadId) -> bool {
        self.reads.contains_key(&read)
    }
}

impl Broker {
    pub(crate) fn on_list_offsets(&mut self, info: ReqInfo, request: ListOffsetsRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let mut response = ListOffsetsResponse::default();
        let mut lookups = Vec::new();
        for (ti, t) in request.topics.iter().enumerate() {
            let mut tr = ListOffsetsTopicResponse { name: t.name.clone(), partitions: Vec::new() };
            for (pi, p) in t.partitions.iter().enumerate() {
                let mut pr = ListOffsetsPartitionResponse {
                    partition_index: p.partition_index,
                    timestamp: -1,
                    offset: -1,
                    leader_epoch: -1,
                    ..Default::default()
                };
                match self.log.partition(&t.name, p.partition_index) {
                    None => pr.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(_) if p.current_leader_epoch > 0 => pr.error_code = ec::UNKNOWN_LEADER_EPOCH,
                    Some(part) => {
                        let found = match p.timestamp {
                            LATEST | LATEST_TIERED => Some(part.log_end),
                            EARLIEST | EARLIEST_LOCAL => Some(part.log_start),
                            MAX_TIMESTAMP => {
                                if let Some((ts, base)) = part.max_timestamp {
                                    if let Some(batch) = part.batch_at(base).filter(|_| base >= part.log_start) {
                                        lookups.push(Lookup { topic: ti, partition: pi, target: Target::Max(ts), batch });
                                    }
                                }
                                None
                            }
                            ts if ts >= 0 => {
                                if let Some(batch) = part.batch_for_timestamp(ts) {
                                    lookups.push(Lookup { topic: ti, partition: pi, target: Target::AtOrAfter(ts), batch });
                                }
                                None
                            }
                            _ => {
                                pr.error_code = ec::INVALID_REQUEST;
                                None
                            }
                        };
                        if let Some(offset) = found {
                            pr.offset = offset;
                            pr.leader_epoch = 0;
                            if v == 0 {
                                pr.old_style_offsets = vec![offset];
                            }
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            response.topics.push(tr);
        }

        let id = self.fresh_id();
        let mut pending = Pending { info, response, outstanding: 0 };
        for lookup in lookups {
            let in_memory = self
                .flush
                .recent_object(&lookup.batch.object)
                .and_then(|o| o.slice(lookup.batch.range.clone()));
            match in_memory {
                Some(bytes) => self.settle_lookup(&mut pending.response, &lookup, Ok(bytes)),
                None => {
                    let read = self.next_read();
                    out.push(Output::Read { read, key: lookup.batch.object.to_string(), range: lookup.batch.range.clone() });
                    self.offsets.reads.insert(read, (id, lookup));
                    pending.outstanding += 1;
                }
            }
        }
        if pending.outstanding == 0 {
            respond(out, &pending.info, pending.response);
        } else {
            self.offsets.pending.insert(id, pending);
        }
    }

    /// Feeds a read result to the ListOffsets waiting for it.
    pub(crate) fn on_offsets_read(&mut self, read: ReadId, result: Result<Bytes, String>, out: &mut Vec<Output>) {
        let Some((id, lookup)) = self.offsets.reads.remove(&read) else { return };
        let Some(mut pending) = self.offsets.pending.remove(&id) else { return };
        self.settle_lookup(&mut pending.response, &lookup, result);
        pending.outstanding -= 1;
        if pending.outstanding == 0 {
            respond(out, &pending.info, pending.response);
        } else {
            self.offsets.pending.insert(id, pending);
        }
    }

    /// Finds the answer in the batch's records.
    fn settle_lookup(&self, response: &mut ListOffsetsResponse, lookup: &Lookup, bytes: Result<Bytes, String>) {
        let Some(pr) = response.topics.get_mut(lookup.topic).and_then(|t| t.partitions.get_mut(lookup.partition)) else {
            return;
        };
        match bytes.ok().and_then(|b| find_in_batch(b, lookup, self.cfg.max_decompressed_bytes)) {
            Some((offset, ts)) => {
                pr.offset = offset;
                pr.timestamp = ts;
                pr.leader_epoch = 0;
            }
            None => pr.error_code = ec::KAFKA_STORAGE_ERROR,
        }
    }

    /// Forgets lookups of a closed connection.
    pub(crate) fn drop_offset_lookups(&mut self, conn: crate::io::ConnId) {
        self.offsets.pending.retain(|_, p| p.info.key.conn != conn);
        let pending = &self.offsets.pending;
        self.offsets.reads.retain(|_, (id, _)| pending.contains_key(id));
    }
}

/// The (offset, timestamp) of the first record of the batch that matches.
fn find_in_batch(bytes: Bytes, lookup: &Lookup, cap: usize) -> Option<(i64, i64)> {
    let batch = RecordBatch::parse(bytes).ok()?;
    let h = *batch.header();
    let log_append = h.attributes.timestamp_type() == TimestampType::LogAppendTime;
    for record in batch.records(cap).ok()? {
        let record = record.ok()?;
        // In a LogAppendTime batch every record carries the batch's time.
        let ts = if log_append { h.max_timestamp } else { record.timestamp(h.base_timestamp) };
        let hit = match lookup.target {
            Target::AtOrAfter(t) => ts >= t,
            Target::Max(t) => ts == t,
        };
        if hit {
            return Some((lookup.batch.base_offset + i64::from(record.offset_delta), ts));
        }
    }
    None
}
