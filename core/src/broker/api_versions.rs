//! ApiVersions: the apis and versions this broker serves. Only implemented apis
//! are advertised, each at the versions its handler supports.

use strata_proto::messages::api_versions_response::ApiVersion;
use strata_proto::messages::ApiVersionsResponse;
use strata_proto::{ApiKey, ResponseBody};

use crate::error_code as ec;

/// The apis served, with the version range served (within the codec's range).
pub fn supported_apis() -> Vec<(ApiKey, i16, i16)> {
    [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::SyncGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DeleteRecords,
        ApiKey::InitProducerId,
        ApiKey::DescribeConfigs,
        ApiKey::AlterConfigs,
        ApiKey::DescribeLogDirs,
        ApiKey::CreatePartitions,
        ApiKey::DeleteGroups,
        ApiKey::IncrementalAlterConfigs,
        ApiKey::OffsetDelete,
        ApiKey::DescribeCluster,
        ApiKey::DescribeProducers,
        ApiKey::DescribeTopicPartitions,
    ]
    .into_iter()
    .map(|k| {
        let (lo, hi) = k.versions();
        (k, lo, hi.min(newest_stable(k)))
    })
    .collect()
}

/// The newest version Kafka itself serves by default: OffsetCommit and
/// OffsetFetch v10 (topic ids) are still unstable in Kafka's definitions.
fn newest_stable(k: ApiKey) -> i16 {
    match k {
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 9,
        _ => i16::MAX,
    }
}

fn api_list() -> Vec<ApiVersion> {
    supported_apis()
        .into_iter()
        .map(|(k, lo, hi)| ApiVersion { api_key: k as i16, min_version: lo, max_version: hi })
        .collect()
}

/// The response to a decodable ApiVersions request.
pub(crate) fn respond(_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse { error_code: ec::NONE, api_keys: api_list(), throttle_time_ms: 0, ..Default::default() }
}

/// The answer to an ApiVersions request of a version we do not know: Kafka
/// replies UNSUPPORTED_VERSION with its api list, encoded as version 0, so the
/// client can retry with a version both sides speak.
pub fn api_versions_fallback() -> (i16, ResponseBody) {
    let body = ApiVersionsResponse { error_code: ec::UNSUPPORTED_VERSION, api_keys: api_list(), ..Default::default() };
    (0, ResponseBody::ApiVersions(body))
}
