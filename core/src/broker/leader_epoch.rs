//! OffsetForLeaderEpoch. Strata has no leader changes: every partition's
//! leader epoch is 0 from offset 0, so epoch 0 ends at the log end, and any
//! other epoch is unknown (-1, -1), as Kafka's epoch cache answers.

use strata_proto::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use strata_proto::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// Kafka's "no epoch given" value of `current_leader_epoch`.
const NO_EPOCH: i32 = -1;

impl Broker {
    pub(crate) fn on_offset_for_leader_epoch(&mut self, info: ReqInfo, request: OffsetForLeaderEpochRequest, out: &mut Vec<Output>) {
        let mut response = OffsetForLeaderEpochResponse::default();
        for t in &request.topics {
            let mut tr = OffsetForLeaderTopicResult { topic: t.topic.clone(), partitions: Vec::with_capacity(t.partitions.len()) };
            for p in &t.partitions {
                let mut r = EpochEndOffset { error_code: ec::NONE, partition: p.partition, leader_epoch: -1, end_offset: -1 };
                match self.log.partition(&t.topic, p.partition) {
                    None => r.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
                    // The client has seen a newer epoch than ours, or an older one.
                    Some(_) if p.current_leader_epoch != NO_EPOCH && p.current_leader_epoch > 0 => r.error_code = ec::UNKNOWN_LEADER_EPOCH,
                    Some(_) if p.current_leader_epoch != NO_EPOCH && p.current_leader_epoch < 0 => r.error_code = ec::FENCED_LEADER_EPOCH,
                    Some(part) => {
                        if p.leader_epoch == 0 {
                            r.leader_epoch = 0;
                            r.end_offset = part.log_end;
                        }
                    }
                }
                tr.partitions.push(r);
            }
            response.topics.push(tr);
        }
        respond(out, &info, response);
    }
}
