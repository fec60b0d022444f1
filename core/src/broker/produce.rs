//! Produce: validate each partition's batches (topic, size, CRC, format), buffer
//! them in the open object, and answer once the commit holding them is applied.
//! Offsets and duplicate verdicts come only from the apply.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_proto::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use strata_proto::messages::{ProduceRequest, ProduceResponse};
use bytes::BytesMut;
use strata_proto::records::{batches, convert_message_set, peek_magic, set_log_append_time, RecordsError, TailMode};
use strata_proto::Uuid;

use super::flush::{PendingProduce, Waiter};
use super::{Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::config::topic::effective_value;
use crate::log::commit::BatchEntry;

/// A validated batch ready for the open object.
struct Valid {
    data: Bytes,
    entry: BatchEntry,
}

/// What produce needs of a topic's effective configs.
#[derive(Debug, Clone, Copy)]
struct TopicLimits {
    max_message_bytes: usize,
    log_append_time: bool,
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
    /// `frame_bytes`: the size of the request as read, which the batches'
    /// buffers share.
    pub(crate) fn on_produce(&mut self, info: ReqInfo, p: ProduceRequest, frame_bytes: usize, out: &mut Vec<Output>) {
        let v = info.api_version;
        let acks = p.acks;
        let mut response = ProduceResponse::default();
        let mut waiting: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        let mut to_buffer: Vec<(Uuid, i32, Valid, (usize, usize))> = Vec::new();

        for (ti, t) in p.topic_data.into_iter().enumerate() {
            let mut tr = TopicProduceResponse { name: t.name.clone(), topic_id: t.topic_id, ..Default::default() };
            let topic = if v >= 13 { self.log.topic_by_id(&t.topic_id) } else { self.log.topics.get(&t.name) };
            let topic_info = topic.map(|tp| (tp.id, tp.partitions.len(), self.topic_limits(&tp.configs)));
            for (pi, part) in t.partition_data.into_iter().enumerate() {
                let mut pr = PartitionProduceResponse { index: part.index, base_offset: -1, ..Default::default() };
                let verdict = if !matches!(acks, 0 | 1 | -1) {
                    Err(ec::INVALID_REQUIRED_ACKS)
                } else if self.draining {
                    // Retriable: the client refreshes Metadata, which names
                    // another broker leader (this one left the live set).
                    Err(ec::NOT_LEADER_OR_FOLLOWER)
                } else if p.transactional_id.is_some() {
                    // Transactions are not served yet (InitProducerId refuses them).
                    Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                } else {
                    match topic_info {
                        None => Err(if v >= 13 { ec::UNKNOWN_TOPIC_ID } else { ec::UNKNOWN_TOPIC_OR_PARTITION }),
                        Some((_, n, _)) if part.index < 0 || part.index as usize >= n => {
                            Err(ec::UNKNOWN_TOPIC_OR_PARTITION)
                        }
                        Some((_, _, limits)) => self.validate_records(part.records, v, limits),
                    }
                };
                match verdict {
                    Err(error) => pr.error_code = error,
                    Ok(valid) => {
                        let Some((id, _, limits)) = topic_info else { continue };
                        if limits.log_append_time {
                            pr.log_append_time_ms = self.now_ms as i64;
                        }
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

        // The batches are slices of the request's buffer, and an object keeps
        // them (and so all of it) alive while it is written and held for
        // tail reads. When they are less than half of it (the rest refused,
        // or padding), they are copied out, so that memory held is at most
        // twice the bytes accounted for.
        let kept: usize = to_buffer.iter().map(|(_, _, v, _)| v.data.len()).sum();
        let copy_out = kept.saturating_mul(2) < frame_bytes;
        let track = acks != 0 && !waiting.is_empty();
        for (id, partition, mut valid, (ti, pi)) in to_buffer {
            if copy_out {
                valid.data = Bytes::copy_from_slice(&valid.data);
            }
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
    fn validate_records(&self, records: Option<Bytes>, version: i16, limits: TopicLimits) -> Result<Vec<Valid>, i16> {
        // Kafka answers InvalidRecordException with INVALID_RECORD from Produce v8
        // (KIP-467) and CORRUPT_MESSAGE before.
        let invalid_record = if version >= 8 { ec::INVALID_RECORD } else { ec::CORRUPT_MESSAGE };
        let Some(mut records) = records.filter(|r| !r.is_empty()) else { return Err(ec::CORRUPT_MESSAGE) };
        let magic = peek_magic(&records).map_err(|e| records_error(&e))?;
        if magic < 2 {
            // Old clients (Produce v0-2) send message sets; store them as magic 2.
            if version > 2 {
                return Err(invalid_record);
            }
            records = convert_message_set(records, self.cfg.max_decompressed_bytes, None).map_err(|e| records_error(&e))?;
        } else if version < 3 {
            return Err(ec::UNSUPPORTED_FOR_MESSAGE_FORMAT);
        }
        let mut out = Vec::new();
        for batch in batches(records, TailMode::Strict) {
            let batch = batch.map_err(|e| records_error(&e))?;
            if batch.len() > limits.max_message_bytes {
                return Err(ec::MESSAGE_TOO_LARGE);
            }
            batch.verify_crc().map_err(|e| records_error(&e))?;
            let h = *batch.header();
            h.attributes.compression().map_err(|e| records_error(&e))?;
            // A batch's offsets and its record count must agree (Kafka: "Inconsistent
            // batch offset range"): the offsets it takes are what the count says.
            if h.record_count <= 0 || h.last_offset_delta < 0 || i64::from(h.last_offset_delta) + 1 != i64::from(h.record_count) {
                return Err(invalid_record);
            }
            if h.attributes.is_control() {
                return Err(invalid_record);
            }
            if h.producer_id >= 0 && (h.base_sequence < 0 || h.producer_epoch < 0) {
                return Err(invalid_record);
            }
            let mut max_timestamp = h.max_timestamp;
            let data = if limits.log_append_time {
                // The broker's time stamps the batch; the fields are inside the CRC.
                let mut raw = BytesMut::from(&batch.as_bytes()[..]);
                max_timestamp = self.now_ms as i64;
                set_log_append_time(&mut raw, max_timestamp).map_err(|e| records_error(&e))?;
                raw.freeze()
            } else {
                batch.as_bytes().clone()
            };
            let entry = BatchEntry {
                position: 0,
                length: batch.len() as u32,
                offset_count: h.last_offset_delta as u32 + 1,
                record_count: h.record_count as u32,
                max_timestamp,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                transactional: h.attributes.is_transactional(),
            };
            out.push(Valid { data, entry });
        }
        if out.is_empty() {
            return Err(ec::CORRUPT_MESSAGE);
        }
        Ok(out)
    }

    /// A topic's effective max.message.bytes and message.timestamp.type.
    fn topic_limits(&self, configs: &BTreeMap<String, String>) -> TopicLimits {
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let max = effective_value("max.message.bytes", configs, &view).and_then(|v| v.as_i64());
        let ts_type = effective_value("message.timestamp.type", configs, &view);
        TopicLimits {
            max_message_bytes: max.and_then(|m| usize::try_from(m).ok()).unwrap_or(self.cfg.message_max_bytes),
            log_append_time: ts_type.as_ref().and_then(|v| v.as_str()) == Some("LogAppendTime"),
        }
    }
}
