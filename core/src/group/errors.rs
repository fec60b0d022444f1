//! What group requests name and how each answers a request-wide error
//! (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...), shaped per api and
//! version as Kafka shapes it.

use strata_proto::messages::delete_groups_response::DeletableGroupResult;
use strata_proto::messages::describe_groups_response::DescribedGroup;
use strata_proto::messages::leave_group_response::MemberResponse;
use strata_proto::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use strata_proto::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use strata_proto::messages::*;
use strata_proto::{RequestBody, ResponseBody};

use super::state::join_error;

/// The group ids a group-keyed request names.
pub(crate) fn groups_of(body: &RequestBody) -> Vec<String> {
    match body {
        RequestBody::JoinGroup(r) => vec![r.group_id.clone()],
        RequestBody::SyncGroup(r) => vec![r.group_id.clone()],
        RequestBody::Heartbeat(r) => vec![r.group_id.clone()],
        RequestBody::LeaveGroup(r) => vec![r.group_id.clone()],
        RequestBody::OffsetCommit(r) => vec![r.group_id.clone()],
        RequestBody::OffsetDelete(r) => vec![r.group_id.clone()],
        RequestBody::OffsetFetch(r) => {
            if r.groups.is_empty() {
                vec![r.group_id.clone()]
            } else {
                r.groups.iter().map(|g| g.group_id.clone()).collect()
            }
        }
        RequestBody::DescribeGroups(r) => r.groups.clone(),
        RequestBody::DeleteGroups(r) => r.groups_names.clone(),
        _ => Vec::new(),
    }
}

/// The whole request answered with `code`.
pub(crate) fn error_response(body: &RequestBody, version: i16, code: i16) -> ResponseBody {
    match body {
        RequestBody::JoinGroup(r) => join_error(version, &r.member_id, code).into(),
        RequestBody::SyncGroup(_) => SyncGroupResponse { error_code: code, ..Default::default() }.into(),
        RequestBody::Heartbeat(_) => HeartbeatResponse { error_code: code, ..Default::default() }.into(),
        RequestBody::LeaveGroup(r) => LeaveGroupResponse {
            error_code: code,
            members: if version >= 3 {
                r.members
                    .iter()
                    .map(|m| MemberResponse { member_id: m.member_id.clone(), group_instance_id: m.group_instance_id.clone(), error_code: code })
                    .collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetCommit(r) => OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitResponsePartition { partition_index: p.partition_index, error_code: code })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetFetch(r) => {
            if version >= 8 {
                OffsetFetchResponse {
                    groups: r
                        .groups
                        .iter()
                        .map(|g| OffsetFetchResponseGroup { group_id: g.group_id.clone(), error_code: code, ..Default::default() })
                        .collect(),
                    ..Default::default()
                }
                .into()
            } else {
                // v0-1 carry errors per partition only; v2+ also at the top.
                let topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| OffsetFetchResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&p| OffsetFetchResponsePartition {
                                partition_index: p,
                                committed_offset: -1,
                                committed_leader_epoch: -1,
                                metadata: Some(String::new()),
                                error_code: code,
                            })
                            .collect(),
                    })
                    .collect();
                OffsetFetchResponse { topics, error_code: code, ..Default::default() }.into()
            }
        }
        RequestBody::DescribeGroups(r) => DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| DescribedGroup { error_code: code, group_id: g.clone(), ..Default::default() })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DeleteGroups(r) => DeleteGroupsResponse {
            results: r.groups_names.iter().map(|g| DeletableGroupResult { group_id: g.clone(), error_code: code }).collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetDelete(_) => OffsetDeleteResponse { error_code: code, ..Default::default() }.into(),
        other => {
            debug_assert!(false, "not a group request: {:?}", other.api_key());
            HeartbeatResponse { error_code: code, ..Default::default() }.into()
        }
    }
}
