//! ListOffsets: earliest, latest, max timestamp, and by timestamp (batch precision).

use strata_proto::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use strata_proto::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// Kafka's special ListOffsets timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

impl Broker {
    pub(crate) fn on_list_offsets(&mut self, info: ReqInfo, request: ListOffsetsRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let mut response = ListOffsetsResponse::default();
        for t in &request.topics {
            let mut tr = ListOffsetsTopicResponse { name: t.name.clone(), partitions: Vec::new() };
            for p in &t.partitions {
                let mut pr = ListOffsetsPartitionResponse { partition_index: p.partition_index, timestamp: -1, offset: -1, leader_epoch: -1, ..Default::default() };
                match self.log.partition(&t.name, p.partition_index) {
                    None => pr.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(_) if p.current_leader_epoch > 0 => pr.error_code = ec::UNKNOWN_LEADER_EPOCH,
                    Some(part) => {
                        let found = match p.timestamp {
                            LATEST | LATEST_TIERED => Some((-1, part.log_end)),
                            EARLIEST | EARLIEST_LOCAL => Some((-1, part.log_start)),
                            MAX_TIMESTAMP => part.max_timestamp.filter(|(_, o)| *o >= part.log_start),
                            ts if ts >= 0 => part.offset_for_timestamp(ts).map(|(o, ts)| (ts, o)),
                            _ => {
                                pr.error_code = ec::INVALID_REQUEST;
                                None
                            }
                        };
                        if let Some((ts, offset)) = found {
                            pr.timestamp = ts;
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
        respond(out, &info, response);
    }
}
