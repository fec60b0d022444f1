//! Produce: validate each partition's batches (topic, size, CRC, format), buffer
//! them in the open object, and answer once the commit holding them is applied.
//! Offsets and duplicate verdicts come only from the apply.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use strata_proto::messages::{ProduceRequest, ProduceResponse};
use strata_proto::records::{batches, convert_message_set, peek_magic, RecordsError, TailMode};
use strata_proto::Uuid;

use super::flush::{PendingProduce, Waiter};
use super::{Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::BatchEntry;

/// A validated batch ready for the open object.
struct Valid {
    data: Bytes,
    entry: BatchEntry,
}

/// Kafka's error for a batch that fails validation.
fn records_error(e: &RecordsError) -> i16 {
    match e {
        RecordsError::UnknownCompression(_) => ec::UNSUPPORTED_COMPRESSION_TYPE,
        RecordsError::DecompressedTooLarge { .. } => ec::RECORD_LIST_TOO_LARGE,
        _ => ec::CORRUPT_MESSAGE,
    }
}

impl Broker {
    pub(crate) fn on_produce(&mut self, info: ReqInfo, p: ProduceRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let acks = p.acks;
        let mut response = ProduceResponse::default();
        let mut waiting: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        let mut to_buffer: Vec<(Uuid, i32, Valid, (usize, usize))> = Vec::new();

        for (ti, t) in p.topic_data.into_iter().enumerate() {
            let mut tr = TopicProduceResponse { name: t.name.clone(), topic_id: t.topic_id, ..Default::default() };
            let topic = if v >= 13 { self.log.topic_by_id(&t.topic_id) } else { self.log.topics.get(&t.name) };
            let topic_info = topic.map(|tp| (tp.id, tp.partitions.len(), self.topic_max_message_bytes(&tp.configs)));
            for (pi, part) in t.partition_data.into_iter().enumerate() {
                let mut pr = PartitionProduceResponse { index: part.index, base_offset: -1, ..Default::default() };
                let verdict = if !matches!(acks, 0 | 1 | -1) {
                    Err(ec::INVALID_REQUIRED_ACKS)
                } else if p.transactional_id.is_some() {
                    // Transactions are not served yet (InitProducerId refuses them).
                    Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                } else {
                    match topic_info {
                        None => Err(if v >= 13 { ec::UNKNOWN_TOPIC_ID } else { ec::UNKNOWN_TOPIC_OR_PARTITION }),
                        Some((_, n, _)) if part.index < 0 || part.index as usize >= n => {
                            Err(ec::UNKNOWN_TOPIC_OR_PARTITION)
                        }
                        Some((_, _, max)) => self.validate_records(part.records, v, max),
                    }
                };
                match verdict {
                    Err(error) => pr.error_code = error,
                    Ok(valid) => {
                        let (id, _, _) = topic_info.unwrap_or((Uuid::ZERO, 0, 0));
                        waiting.insert((ti, pi), valid.len() as u32);
                        for b in valid {
                            to_buffer.push((id, part.index, b, (ti, pi)));
                        }
                    }
                }
                tr.partition_responses.push(pr);
            }
            response.responses.push(tr);
        }

        let track = acks != 0 && !waiting.is_empty();
        for (id, partition, valid, (ti, pi)) in to_buffer {
            let waiter = track.then_some(Waiter { req: info.key, topic: ti, partition: pi });
            self.buffer_batch(id, partition, valid.data, valid.entry, waiter, out);
        }
        if acks == 0 {
            // No answer, even for errors: that is what acks=0 means.
            out.push(Output::NoResponse { conn: info.key.conn, request: info.key.request });
        } else {
            let pending = PendingProduce { info, response, waiting };
            if track {
                self.flush.pending.insert(pending.info.key, pending);
            } else {
                self.finish_produce(pending, out);
            }
        }
        self.maybe_flush(out);
    }

    /// Splits a partition's records into checked magic-2 batches.
    fn validate_records(&self, records: Option<Bytes>, version: i16, max_message_bytes: usize) -> Result<Vec<Valid>, i16> {
        let Some(mut records) = records.filter(|r| !r.is_empty()) else { return Err(ec::CORRUPT_MESSAGE) };
        let magic = peek_magic(&records).map_err(|e| records_error(&e))?;
        if magic < 2 {
            // Old clients (Produce v0-2) send message sets; store them as magic 2.
            if version > 2 {
                return Err(ec::INVALID_RECORD);
            }
            records = convert_message_set(records, self.cfg.max_decompressed_bytes, None).map_err(|e| records_error(&e))?;
        } else if version < 3 {
            return Err(ec::UNSUPPORTED_FOR_MESSAGE_FORMAT);
        }
        let mut out = Vec::new();
        for batch in batches(records, TailMode::Strict) {
            let batch = batch.map_err(|e| records_error(&e))?;
            if batch.len() > max_message_bytes {
                return Err(ec::MESSAGE_TOO_LARGE);
            }
            batch.verify_crc().map_err(|e| records_error(&e))?;
            let h = *batch.header();
            h.attributes.compression().map_err(|e| records_error(&e))?;
            if h.record_count < 0 || h.last_offset_delta < 0 || h.attributes.is_control() {
                return Err(ec::INVALID_RECORD);
            }
            if h.producer_id >= 0 && (h.base_sequence < 0 || h.producer_epoch < 0) {
                return Err(ec::INVALID_RECORD);
            }
            let entry = BatchEntry {
                position: 0,
                length: batch.len() as u32,
                offset_count: h.last_offset_delta as u32 + 1,
                record_count: h.record_count as u32,
                max_timestamp: h.max_timestamp,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                transactional: h.attributes.is_transactional(),
            };
            out.push(Valid { data: batch.into_bytes(), entry });
        }
        if out.is_empty() {
            return Err(ec::CORRUPT_MESSAGE);
        }
        Ok(out)
    }

    /// A topic's max.message.bytes (its override, else the broker's).
    pub(crate) fn topic_max_message_bytes(&self, configs: &BTreeMap<String, String>) -> usize {
        configs
            .get("max.message.bytes")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.cfg.message_max_bytes)
    }
}
