//! DescribeTopicPartitions: Metadata's topics and partitions, sorted by name
//! and paginated with a cursor and a partition limit, as Kafka's
//! `DescribeTopicPartitionsRequestHandler` and `describeTopicResponse` do.

use std::collections::BTreeSet;

use strata_proto::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use strata_proto::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};
use strata_proto::Uuid;

use super::metadata::TOPIC_OPS;
use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::topic_name;

/// Kafka's `max.request.partition.size.limit` default: the most partitions
/// one response holds, whatever the request asks.
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

impl Broker {
    pub(crate) fn on_describe_topic_partitions(&mut self, info: ReqInfo, request: DescribeTopicPartitionsRequest, out: &mut Vec<Output>) {
        let fetch_all = request.topics.is_empty();
        let cursor = request.cursor.as_ref();
        let cursor_topic = cursor.map_or("", |c| c.topic_name.as_str());
        let names: BTreeSet<&str> = if fetch_all {
            self.log.topics.keys().map(String::as_str).filter(|n| *n >= cursor_topic).collect()
        } else {
            request.topics.iter().map(|t| t.name.as_str()).filter(|n| *n >= cursor_topic).collect()
        };
        // The cursor's topic must be among those asked for, and its partition valid.
        let invalid = match cursor {
            Some(c) => (!fetch_all && !names.contains(c.topic_name.as_str())) || c.partition_index < 0,
            None => false,
        };
        if invalid {
            // Kafka fails the whole request: INVALID_REQUEST for every topic asked for.
            let topics = request
                .topics
                .iter()
                .map(|t| DescribeTopicPartitionsResponseTopic {
                    error_code: ec::INVALID_REQUEST,
                    name: Some(t.name.clone()),
                    ..Default::default()
                })
                .collect();
            return respond(out, &info, DescribeTopicPartitionsResponse { throttle_time_ms: 0, topics, next_cursor: None });
        }

        let mut remaining = i64::from(request.response_partition_limit.clamp(1, MAX_PARTITIONS_PER_RESPONSE));
        let mut response = DescribeTopicPartitionsResponse::default();
        for name in names {
            if remaining == 0 {
                // The next page starts with this topic.
                response.next_cursor = Some(Cursor { topic_name: name.to_string(), partition_index: 0 });
                break;
            }
            let Some(t) = self.log.topics.get(name) else {
                if !fetch_all {
                    let error = if topic_name::validate(name).is_ok() { ec::UNKNOWN_TOPIC_OR_PARTITION } else { ec::INVALID_TOPIC_EXCEPTION };
                    response.topics.push(DescribeTopicPartitionsResponseTopic {
                        error_code: error,
                        name: Some(name.to_string()),
                        topic_id: Uuid::ZERO,
                        is_internal: false,
                        partitions: Vec::new(),
                        topic_authorized_operations: TOPIC_OPS,
                    });
                }
                continue;
            };
            let count = t.partitions.len() as i64;
            let start = match cursor {
                Some(c) if c.topic_name == name => i64::from(c.partition_index),
                _ => 0,
            };
            let upper = count.min(start + remaining);
            let partitions: Vec<_> = (start..upper.max(start))
                .map(|i| {
                    // As Metadata names it (see `topic_entry`).
                    let node = self.leader_of(t.id, i as i32);
                    DescribeTopicPartitionsResponsePartition {
                        error_code: ec::NONE,
                        partition_index: i as i32,
                        leader_id: node,
                        leader_epoch: 0,
                        replica_nodes: vec![node],
                        isr_nodes: vec![node],
                        eligible_leader_replicas: Some(Vec::new()),
                        last_known_elr: Some(Vec::new()),
                        offline_replicas: Vec::new(),
                    }
                })
                .collect();
            let taken = partitions.len() as i64;
            response.topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ec::NONE,
                name: Some(t.name.clone()),
                topic_id: t.id,
                is_internal: false,
                partitions,
                topic_authorized_operations: TOPIC_OPS,
            });
            if upper < count {
                response.next_cursor = Some(Cursor { topic_name: t.name.clone(), partition_index: upper as i32 });
                break;
            }
            remaining -= taken;
        }
        respond(out, &info, response);
    }
}
