//! Metadata: brokers, topics and partitions, with auto-creation (by commit)
//! when the broker and the request allow it.

use strata_proto::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
use strata_proto::messages::{MetadataRequest, MetadataResponse};

use super::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::{CommitBody, NewTopic};
use crate::topic_name;

/// Kafka's "operations not requested" marker for authorized-operation fields.
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (no ACLs yet: all allowed).
pub(crate) const TOPIC_OPS: i32 = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPS: i32 = (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// A Metadata request waiting for its auto-created topics.
#[derive(Debug)]
pub(crate) struct PendingMetadata {
    info: ReqInfo,
    request: MetadataRequest,
}

impl Broker {
    pub(crate) fn on_metadata(&mut self, info: ReqInfo, request: MetadataRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let allow = self.cfg.auto_create_topics && (v < 4 || request.allow_auto_topic_creation);
        let mut create = Vec::new();
        if allow {
            for t in request.topics.iter().flatten() {
                if let Some(name) = &t.name {
                    if !self.log.topics.contains_key(name)
                        && topic_name::validate(name).is_ok()
                        && self.log.colliding_topic(name).is_none()
                        && !create.iter().any(|n: &NewTopic| &n.name == name)
                    {
                        create.push(NewTopic {
                            name: name.clone(),
                            partitions: self.cfg.default_partitions,
                            configs: Default::default(),
                        });
                    }
                }
            }
        }
        let pending = PendingMetadata { info, request };
        if create.is_empty() {
            self.answer_metadata(pending, out);
        } else {
            self.propose(CommitBody::CreateTopics(create), Proposal::AutoCreate(pending), out);
        }
    }

    /// Answers a Metadata request from the applied state.
    pub(crate) fn answer_metadata(&mut self, pending: PendingMetadata, out: &mut Vec<Output>) {
        let PendingMetadata { info, request } = pending;
        let v = info.api_version;
        let with_ops = request.include_topic_authorized_operations;
        let mut response = MetadataResponse {
            brokers: self.live_brokers(),
            cluster_id: Some(self.cfg.cluster_id.clone()),
            controller_id: self.controller_id(),
            cluster_authorized_operations: if request.include_cluster_authorized_operations { CLUSTER_OPS } else { OPS_NOT_REQUESTED },
            ..Default::default()
        };
        // v0: an empty list means all topics; v1+: null means all, empty means none.
        let all = match &request.topics {
            None => true,
            Some(t) => t.is_empty() && v == 0,
        };
        if all {
            for t in self.log.topics.values() {
                response.topics.push(self.topic_entry(t, with_ops));
            }
        } else {
            for rt in request.topics.iter().flatten() {
                let found = match &rt.name {
                    Some(name) => self.log.topics.get(name),
                    None => self.log.topic_by_id(&rt.topic_id),
                };
                let entry = match found {
                    Some(t) => self.topic_entry(t, with_ops),
                    None => {
                        let error = match &rt.name {
                            Some(name) if topic_name::validate(name).is_err() => ec::INVALID_TOPIC_EXCEPTION,
                            Some(_) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                            None => ec::UNKNOWN_TOPIC_ID,
                        };
                        MetadataResponseTopic {
                            error_code: error,
                            name: rt.name.clone().or(if v < 12 { Some(String::new()) } else { None }),
                            topic_id: rt.topic_id,
                            topic_authorized_operations: OPS_NOT_REQUESTED,
                            ..Default::default()
                        }
                    }
                };
                response.topics.push(entry);
            }
        }
        respond(out, &info, response);
    }

    fn topic_entry(&self, t: &crate::log::state::Topic, with_ops: bool) -> MetadataResponseTopic {
        MetadataResponseTopic {
            error_code: ec::NONE,
            name: Some(t.name.clone()),
            topic_id: t.id,
            is_internal: false,
            partitions: (0..t.partitions.len() as i32)
                .map(|i| {
                    // Any broker serves any partition: the leader is where the
                    // client sends it, and its one replica.
                    let node = self.leader_of(t.id, i);
                    MetadataResponsePartition {
                        error_code: ec::NONE,
                        partition_index: i,
                        leader_id: node,
                        // Data never moves with the leader, so the epoch stays 0
                        // (clients take a new leader at an equal epoch).
                        leader_epoch: 0,
                        replica_nodes: vec![node],
                        isr_nodes: vec![node],
                        offline_replicas: vec![],
                    }
                })
                .collect(),
            topic_authorized_operations: if with_ops { TOPIC_OPS } else { OPS_NOT_REQUESTED },
        }
    }
}
