//! DescribeLogDirs: one log directory (the broker's data directory, named by
//! [`super::BrokerConfig::log_dir`]) holding every partition. A partition's
//! size is the bytes its extents reference in object storage; there are no
//! replicas to lag and no future logs; disk space is not known.

use strata_proto::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use strata_proto::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

impl Broker {
    pub(crate) fn on_describe_log_dirs(&mut self, info: ReqInfo, request: DescribeLogDirsRequest, out: &mut Vec<Output>) {
        let entry = |index: usize, p: &crate::log::state::Partition| DescribeLogDirsPartition {
            partition_index: index as i32,
            partition_size: i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
            offset_lag: 0,
            is_future_key: false,
        };
        let mut topics = Vec::new();
        match &request.topics {
            // null: every partition.
            None => {
                for t in self.log.topics.values() {
                    let partitions = t.partitions.iter().enumerate().map(|(i, p)| entry(i, p)).collect();
                    topics.push(DescribeLogDirsTopic { name: t.name.clone(), partitions });
                }
            }
            Some(wanted) => {
                // Kafka answers per topic with the requested partitions it
                // holds; topics with none of them are left out here.
                let mut by_name: std::collections::BTreeMap<&str, std::collections::BTreeSet<i32>> = Default::default();
                for w in wanted {
                    by_name.entry(w.topic.as_str()).or_default().extend(w.partitions.iter().copied());
                }
                for (name, indexes) in by_name {
                    let Some(t) = self.log.topics.get(name) else { continue };
                    let partitions: Vec<_> = indexes
                        .into_iter()
                        .filter_map(|i| usize::try_from(i).ok().and_then(|u| t.partitions.get(u).map(|p| entry(u, p))))
                        .collect();
                    if !partitions.is_empty() {
                        topics.push(DescribeLogDirsTopic { name: t.name.clone(), partitions });
                    }
                }
            }
        }
        let dir = DescribeLogDirsResult {
            error_code: ec::NONE,
            log_dir: self.cfg.log_dir.clone(),
            topics,
            total_bytes: -1,
            usable_bytes: -1,
        };
        respond(out, &info, DescribeLogDirsResponse { throttle_time_ms: 0, error_code: ec::NONE, results: vec![dir] });
    }
}
