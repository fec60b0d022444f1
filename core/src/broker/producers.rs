//! DescribeProducers: the idempotent producers the applied state remembers
//! per partition. Strata has no transactions yet, so no coordinator epoch and
//! no open transaction to report.

use strata_proto::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use strata_proto::messages::{DescribeProducersRequest, DescribeProducersResponse};

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::topic_name;

impl Broker {
    pub(crate) fn on_describe_producers(&mut self, info: ReqInfo, request: DescribeProducersRequest, out: &mut Vec<Output>) {
        let mut response = DescribeProducersResponse::default();
        for t in &request.topics {
            // Topic-level errors carry a message, partition-level ones do not (as in Kafka).
            let topic_error = match topic_name::validate(&t.name) {
                Err(e) => Some((ec::INVALID_TOPIC_EXCEPTION, e.to_string())),
                Ok(()) if !self.log.topics.contains_key(&t.name) => {
                    Some((ec::UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.".to_string()))
                }
                Ok(()) => None,
            };
            let mut tr = TopicResponse { name: t.name.clone(), partitions: Vec::with_capacity(t.partition_indexes.len()) };
            for &index in &t.partition_indexes {
                let mut pr = PartitionResponse { partition_index: index, error_code: ec::NONE, error_message: None, active_producers: Vec::new() };
                if let Some((code, message)) = &topic_error {
                    pr.error_code = *code;
                    pr.error_message = Some(message.clone());
                } else {
                    match self.log.partition(&t.name, index) {
                        None => pr.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
                        Some(p) => {
                            pr.active_producers = p
                                .producers
                                .iter()
                                .map(|(id, st)| ProducerState {
                                    producer_id: *id,
                                    producer_epoch: i32::from(st.epoch),
                                    last_sequence: st.recent.back().map_or(-1, |b| b.last_seq),
                                    last_timestamp: st.last_timestamp,
                                    coordinator_epoch: -1,
                                    current_txn_start_offset: -1,
                                })
                                .collect();
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            response.topics.push(tr);
        }
        respond(out, &info, response);
    }
}
