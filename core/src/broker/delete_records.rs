//! DeleteRecords: move partitions' log start offsets forward, by commit. The
//! apply decides against the high watermark it sees (offset -1 means "up to
//! the high watermark"; beyond it is OFFSET_OUT_OF_RANGE) and answers with the
//! new low watermark. Extents wholly below the new start are dropped.

use strata_proto::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use strata_proto::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{respond, Broker, Proposal, ReqInfo};
use crate::config::{effective_value, CleanupPolicy};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;

/// Kafka's "up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

/// A DeleteRecords request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingDeleteRecords {
    info: ReqInfo,
    response: DeleteRecordsResponse,
    /// For each partition of the commit, its (topic, partition) index in the response.
    slots: Vec<(usize, usize)>,
}

impl Broker {
    pub(crate) fn on_delete_records(&mut self, info: ReqInfo, request: DeleteRecordsRequest, out: &mut Vec<Output>) {
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let mut response = DeleteRecordsResponse::default();
        let mut commit = Vec::new();
        let mut slots = Vec::new();
        for (ti, t) in request.topics.iter().enumerate() {
            let topic = self.log.topics.get(&t.name);
            let deletes = topic.is_none_or(|tp| {
                let policy = effective_value("cleanup.policy", &tp.configs, &view);
                policy.as_ref().and_then(|p| p.as_list()).is_none_or(|l| CleanupPolicy::from_list(l).delete)
            });
            let mut tr = DeleteRecordsTopicResult { name: t.name.clone(), partitions: Vec::with_capacity(t.partitions.len()) };
            for (pi, p) in t.partitions.iter().enumerate() {
                let mut pr = DeleteRecordsPartitionResult { partition_index: p.partition_index, low_watermark: -1, error_code: ec::NONE };
                let found = topic.filter(|tp| usize::try_from(p.partition_index).is_ok_and(|i| i < tp.partitions.len()));
                if let Some(tp) = found {
                    if p.offset < 0 && p.offset != HIGH_WATERMARK {
                        pr.error_code = ec::OFFSET_OUT_OF_RANGE;
                    } else if !deletes {
                        // Kafka: "Records of partition ... can not be deleted due to the configured policy".
                        pr.error_code = ec::POLICY_VIOLATION;
                    } else {
                        // The apply compares with the high watermark it sees,
                        // which may be ahead of ours.
                        slots.push((ti, pi));
                        commit.push((tp.id, p.partition_index, p.offset));
                    }
                } else {
                    pr.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION;
                }
                tr.partitions.push(pr);
            }
            response.topics.push(tr);
        }
        if commit.is_empty() {
            return respond(out, &info, response);
        }
        let pending = PendingDeleteRecords { info, response, slots };
        self.propose(CommitBody::DeleteRecords(commit), Proposal::DeleteRecords(pending), out);
    }

    /// The apply's verdict per partition: the new low watermark, or an error.
    pub(crate) fn on_delete_records_applied(&mut self, pending: PendingDeleteRecords, verdicts: Vec<Result<i64, i16>>, out: &mut Vec<Output>) {
        let PendingDeleteRecords { info, mut response, slots } = pending;
        for ((ti, pi), verdict) in slots.into_iter().zip(verdicts) {
            let Some(pr) = response.topics.get_mut(ti).and_then(|t| t.partitions.get_mut(pi)) else { continue };
            match verdict {
                Ok(low) => pr.low_watermark = low,
                Err(code) => pr.error_code = code,
            }
        }
        respond(out, &info, response);
    }
}

/// Fails every partition whose commit did not make it.
pub(crate) fn fail_delete_records(pending: PendingDeleteRecords, error: i16, out: &mut Vec<Output>) {
    let PendingDeleteRecords { info, mut response, slots } = pending;
    for (ti, pi) in slots {
        if let Some(pr) = response.topics.get_mut(ti).and_then(|t| t.partitions.get_mut(pi)) {
            pr.error_code = error;
        }
    }
    respond(out, &info, response);
}
