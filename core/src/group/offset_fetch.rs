//! OffsetFetch: a group's committed offsets, from the applied log (this
//! broker holds the group, so it has applied every commit of it). v8+ asks
//! for several groups at once; a null topic list means every committed one.

use std::collections::BTreeMap;

use strata_proto::messages::offset_fetch_request::OffsetFetchRequestTopics;
use strata_proto::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use strata_proto::messages::{OffsetFetchRequest, OffsetFetchResponse};
use strata_proto::Uuid;

use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::group::OffsetRecord;

/// One partition's answer: offset, leader epoch, metadata, error.
type Answer = (i32, i64, i32, Option<String>, i16);

/// One topic's answer: its name, id and partitions.
type TopicAnswer = (String, Uuid, Vec<Answer>);

impl Broker {
    pub(crate) fn on_offset_fetch(&mut self, req: ReqInfo, r: OffsetFetchRequest, out: &mut Vec<Output>) {
        let v = req.api_version;
        if v >= 8 {
            let groups = r
                .groups
                .iter()
                .map(|g| {
                    let wanted = g.topics.as_ref().map(|ts| {
                        ts.iter().map(|t| self.wanted_topic(v, t)).collect::<Vec<_>>()
                    });
                    let (code, topics) = self.fetch_group_offsets(&g.group_id, wanted);
                    OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        error_code: code,
                        topics: topics
                            .into_iter()
                            .map(|(name, topic_id, parts)| OffsetFetchResponseTopics {
                                name,
                                topic_id,
                                partitions: parts
                                    .into_iter()
                                    .map(|(partition_index, committed_offset, committed_leader_epoch, metadata, error_code)| {
                                        OffsetFetchResponsePartitions {
                                            partition_index,
                                            committed_offset,
                                            committed_leader_epoch,
                                            metadata,
                                            error_code,
                                        }
                                    })
                                    .collect(),
                            })
                            .collect(),
                    }
                })
                .collect();
            return respond(out, &req, OffsetFetchResponse { groups, ..Default::default() });
        }
        // v0 and v1 cannot ask for all topics (an empty list is no topics).
        let wanted = match &r.topics {
            Some(ts) => Some(ts.iter().map(|t| (t.name.clone(), Uuid::default(), t.partition_indexes.clone())).collect()),
            None if v < 2 => Some(Vec::new()),
            None => None,
        };
        let (code, topics) = self.fetch_group_offsets(&r.group_id, wanted);
        let mut topics: Vec<OffsetFetchResponseTopic> = topics
            .into_iter()
            .map(|(name, _, parts)| OffsetFetchResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(|(partition_index, committed_offset, committed_leader_epoch, metadata, error_code)| {
                        OffsetFetchResponsePartition { partition_index, committed_offset, committed_leader_epoch, metadata, error_code }
                    })
                    .collect(),
            })
            .collect();
        if v < 2 && code != ec::NONE {
            // v0-1 have no group-level error: every partition carries it.
            for t in &mut topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
        }
        respond(out, &req, OffsetFetchResponse { topics, error_code: code, ..Default::default() });
    }

    /// (name, id, partitions) a v8+ request names; v10 names topics by id.
    fn wanted_topic(&self, v: i16, t: &OffsetFetchRequestTopics) -> (String, Uuid, Vec<i32>) {
        let name = if v >= 10 { self.log.topic_by_id(&t.topic_id).map(|x| x.name.clone()).unwrap_or_default() } else { t.name.clone() };
        (name, t.topic_id, t.partition_indexes.clone())
    }

    /// A group's answer: group error, then per topic the partitions' answers.
    /// `wanted` None means every committed offset.
    fn fetch_group_offsets(&mut self, group: &str, wanted: Option<Vec<(String, Uuid, Vec<i32>)>>) -> (i16, Vec<TopicAnswer>) {
        let err_topics = |wanted: &Option<Vec<(String, Uuid, Vec<i32>)>>, code: i16| -> Vec<TopicAnswer> {
            wanted
                .iter()
                .flatten()
                .map(|(n, id, ps)| (n.clone(), *id, ps.iter().map(|&p| (p, -1, -1, Some(String::new()), code)).collect()))
                .collect()
        };
        if self.group_mut(group).is_none() {
            return (ec::NOT_COORDINATOR, err_topics(&wanted, ec::NOT_COORDINATOR));
        }
        let empty = BTreeMap::new();
        let offsets = self.log.groups.get(group).map_or(&empty, |g| &g.offsets);
        let answer = |p: i32, o: Option<&OffsetRecord>| match o {
            Some(o) => (p, o.offset, o.leader_epoch, Some(o.metadata.clone().unwrap_or_default()), ec::NONE),
            None => (p, -1, -1, Some(String::new()), ec::NONE),
        };
        let topics = match wanted {
            Some(list) => list
                .into_iter()
                .map(|(name, id, parts)| {
                    let answers = parts.iter().map(|&p| answer(p, offsets.get(&(name.clone(), p)))).collect();
                    (name, id, answers)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<&str, Vec<Answer>> = BTreeMap::new();
                for ((t, p), o) in offsets {
                    by_topic.entry(t.as_str()).or_default().push(answer(*p, Some(o)));
                }
                by_topic
                    .into_iter()
                    .map(|(t, parts)| {
                        let id = self.log.topics.get(t).map_or(Uuid::default(), |x| x.id);
                        (t.to_string(), id, parts)
                    })
                    .collect()
            }
        };
        (ec::NONE, topics)
    }
}
