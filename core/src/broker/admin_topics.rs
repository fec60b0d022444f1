//! CreateTopics, DeleteTopics and CreatePartitions. Each request is checked
//! against the applied state with Kafka's (KRaft controller's) rules, codes
//! and messages, then decided by the apply of one commit; the answer carries
//! the apply's verdict per topic. `validate_only` answers from the checks
//! alone, without a commit.
//!
//! Replication: Strata's data lives in object storage, so any replication
//! factor of -1 or at least 1 is accepted; every partition has exactly one
//! replica, its leader among the live brokers — which is what Metadata shows —
//! so CreateTopics reports a replication factor of 1, and manual assignments
//! must name one live broker per partition (the leader is still chosen by
//! the hash: an assignment is checked, not kept).

use std::collections::{BTreeMap, BTreeSet};

use strata_proto::messages::create_partitions_response::CreatePartitionsTopicResult;
use strata_proto::messages::create_topics_request::CreatableTopic;
use strata_proto::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use strata_proto::messages::delete_topics_response::DeletableTopicResult;
use strata_proto::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse,
};
use strata_proto::Uuid;

use super::{respond, Broker, Peer, Proposal, ReqInfo};
use crate::config::{create_topic_configs, describe_topic, BrokerConfigView};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::apply::MAX_PARTITIONS;
use crate::log::commit::{CommitBody, NewTopic};
use crate::topic_name;

/// Kafka refuses a CreateTopics request creating more partitions than this
/// (`ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`).
const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// KRaft's own metadata topic: never creatable.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// The replication factor Strata reports: one replica, this broker.
const REPLICATION_FACTOR: i16 = 1;

/// A CreateTopics request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingCreate {
    info: ReqInfo,
    response: CreateTopicsResponse,
    /// For each topic of the commit, its index in the response.
    slots: Vec<usize>,
}

/// A DeleteTopics request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingDelete {
    info: ReqInfo,
    response: DeleteTopicsResponse,
    slots: Vec<usize>,
}

/// A CreatePartitions request waiting for its commit.
#[derive(Debug)]
pub(crate) struct PendingPartitions {
    info: ReqInfo,
    response: CreatePartitionsResponse,
    /// For each topic of the commit, its index in the response and the count asked for.
    slots: Vec<(usize, u32)>,
}

/// A CreateTopics result carrying an error.
fn create_error(name: &str, code: i16, message: Option<String>) -> CreatableTopicResult {
    CreatableTopicResult {
        name: name.to_string(),
        topic_id: Uuid::ZERO,
        error_code: code,
        error_message: message,
        topic_config_error_code: ec::NONE,
        num_partitions: -1,
        replication_factor: -1,
        // Kafka's default here is an empty list, not null.
        configs: Some(Vec::new()),
    }
}

fn already_exists(name: &str) -> String {
    format!("Topic '{name}' already exists.")
}

fn collides(name: &str, other: &str) -> String {
    format!("Topic '{name}' collides with existing topic: {other}")
}

/// Kafka's `validateManualPartitionAssignment` against the live brokers.
/// Errors are INVALID_REPLICA_ASSIGNMENT messages.
fn check_replicas(replicas: &[i32], live: &[Peer], replication_factor: Option<usize>) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut prev = None;
    for &b in &sorted {
        if !live.iter().any(|p| p.node_id == b) {
            return Err(format!("The manual partition assignment includes broker {b}, but no such broker is registered."));
        }
        if prev == Some(b) {
            return Err(format!("The manual partition assignment includes the broker {b} more than once."));
        }
        prev = Some(b);
    }
    match replication_factor {
        Some(rf) if rf != sorted.len() => Err(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
            sorted.len()
        )),
        _ => Ok(()),
    }
}

impl Broker {
    pub(crate) fn on_create_topics(&mut self, info: ReqInfo, request: CreateTopicsRequest, out: &mut Vec<Output>) {
        // ControllerApis: a name given twice is refused, once, after the others.
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &request.topics {
            *count.entry(t.name.as_str()).or_default() += 1;
        }
        let mut duplicates: Vec<&str> = Vec::new();
        for t in &request.topics {
            if count[t.name.as_str()] > 1 && !duplicates.contains(&t.name.as_str()) {
                duplicates.push(&t.name);
            }
        }
        let candidates: Vec<&CreatableTopic> =
            request.topics.iter().filter(|t| count[t.name.as_str()] == 1 && t.name != CLUSTER_METADATA_TOPIC).collect();

        let total: i64 = candidates
            .iter()
            .map(|t| match (t.assignments.is_empty(), t.num_partitions) {
                (false, _) => t.assignments.len() as i64,
                (true, -1) => i64::from(self.cfg.default_partitions),
                (true, n) => i64::from(n.max(0)),
            })
            .sum();
        if total > MAX_PARTITIONS_PER_REQUEST {
            // Kafka fails the whole request, every entry alike.
            let message = "Excessively large number of partitions per request.";
            let topics = request.topics.iter().map(|t| create_error(&t.name, ec::POLICY_VIOLATION, Some(message.into()))).collect();
            return respond(out, &info, CreateTopicsResponse { throttle_time_ms: 0, topics });
        }

        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let mut response = CreateTopicsResponse::default();
        let mut create = Vec::new();
        let mut slots = Vec::new();
        for t in candidates {
            match self.check_new_topic(t, &view) {
                Err((code, message)) => response.topics.push(create_error(&t.name, code, Some(message))),
                Ok(new) => {
                    let configs = describe_topic(&new.configs, &view, None, false, false)
                        .into_iter()
                        .map(|d| CreatableTopicConfigs {
                            name: d.name.to_string(),
                            value: d.value.clone(),
                            read_only: d.read_only,
                            config_source: d.source_id(),
                            is_sensitive: d.sensitive,
                        })
                        .collect();
                    slots.push(response.topics.len());
                    response.topics.push(CreatableTopicResult {
                        name: t.name.clone(),
                        // validate_only creates nothing, so there is no id to report.
                        topic_id: Uuid::ZERO,
                        error_code: ec::NONE,
                        error_message: None,
                        topic_config_error_code: ec::NONE,
                        num_partitions: new.partitions as i32,
                        replication_factor: REPLICATION_FACTOR,
                        configs: Some(configs),
                    });
                    create.push(new);
                }
            }
        }
        for name in duplicates {
            response.topics.push(create_error(name, ec::INVALID_REQUEST, Some("Duplicate topic name.".into())));
        }
        if count.contains_key(CLUSTER_METADATA_TOPIC) && count[CLUSTER_METADATA_TOPIC] == 1 {
            let message = format!("Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited.");
            response.topics.push(create_error(CLUSTER_METADATA_TOPIC, ec::INVALID_REQUEST, Some(message)));
        }
        if create.is_empty() || request.validate_only {
            return respond(out, &info, response);
        }
        let pending = PendingCreate { info, response, slots };
        self.propose(CommitBody::CreateTopics(create), Proposal::CreateTopics(pending), out);
    }

    /// Kafka's checks on one topic to create, in the controller's order:
    /// name, existence, name collision, configs, then assignment or counts.
    fn check_new_topic(&self, t: &CreatableTopic, view: &BrokerConfigView<'_>) -> Result<NewTopic, (i16, String)> {
        topic_name::validate(&t.name).map_err(|e| (ec::INVALID_TOPIC_EXCEPTION, e.to_string()))?;
        if self.log.topics.contains_key(&t.name) {
            return Err((ec::TOPIC_ALREADY_EXISTS, already_exists(&t.name)));
        }
        if let Some(other) = self.log.colliding_topic(&t.name) {
            return Err((ec::INVALID_TOPIC_EXCEPTION, collides(&t.name, other)));
        }
        let pairs: Vec<(String, Option<String>)> = t.configs.iter().map(|c| (c.name.clone(), c.value.clone())).collect();
        let configs = create_topic_configs(&pairs, view).map_err(|e| (e.code, e.message))?;
        let partitions = if !t.assignments.is_empty() {
            if t.replication_factor != -1 {
                return Err((
                    ec::INVALID_REQUEST,
                    "A manual partition assignment was specified, but replication factor was not set to -1.".into(),
                ));
            }
            if t.num_partitions != -1 {
                return Err((
                    ec::INVALID_REQUEST,
                    "A manual partition assignment was specified, but numPartitions was not set to -1.".into(),
                ));
            }
            let mut seen = BTreeSet::new();
            let mut rf = None;
            for a in &t.assignments {
                if !seen.insert(a.partition_index) {
                    return Err((
                        ec::INVALID_REPLICA_ASSIGNMENT,
                        format!("Found multiple manual partition assignments for partition {}", a.partition_index),
                    ));
                }
                check_replicas(&a.broker_ids, self.members.live(), rf).map_err(|m| (ec::INVALID_REPLICA_ASSIGNMENT, m))?;
                rf = Some(a.broker_ids.len());
            }
            if !seen.iter().copied().eq(0..seen.len() as i32) {
                return Err((ec::INVALID_REPLICA_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence".into()));
            }
            seen.len() as u32
        } else if t.replication_factor < -1 || t.replication_factor == 0 {
            return Err((
                ec::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        } else if t.num_partitions < -1 || t.num_partitions == 0 {
            return Err((ec::INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.".into()));
        } else if t.num_partitions == -1 {
            self.cfg.default_partitions
        } else {
            t.num_partitions as u32
        };
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err((ec::INVALID_PARTITIONS, format!("A topic may have between 1 and {MAX_PARTITIONS} partitions, not {partitions}.")));
        }
        Ok(NewTopic { name: t.name.clone(), partitions, configs })
    }

    /// The apply's verdict per created topic.
    pub(crate) fn on_create_topics_applied(&mut self, pending: PendingCreate, verdicts: Vec<Result<Uuid, i16>>, out: &mut Vec<Output>) {
        let PendingCreate { info, mut response, slots } = pending;
        for (slot, verdict) in slots.into_iter().zip(verdicts) {
            let Some(r) = response.topics.get_mut(slot) else { continue };
            match verdict {
                Ok(id) => r.topic_id = id,
                Err(code) => {
                    let message = match code {
                        ec::TOPIC_ALREADY_EXISTS => Some(already_exists(&r.name)),
                        ec::INVALID_TOPIC_EXCEPTION => self.log.colliding_topic(&r.name).map(|o| collides(&r.name, o)),
                        _ => None,
                    };
                    *r = create_error(&r.name, code, message);
                }
            }
        }
        respond(out, &info, response);
    }

    pub(crate) fn on_delete_topics(&mut self, info: ReqInfo, request: DeleteTopicsRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let mut response = DeleteTopicsResponse::default();
        let push = |response: &mut DeleteTopicsResponse, name: Option<String>, id: Uuid, code: i16, message: Option<&str>| {
            response.responses.push(DeletableTopicResult {
                name,
                topic_id: id,
                error_code: code,
                error_message: message.map(str::to_string),
            });
        };
        // ControllerApis.deleteTopics: sort out names, ids, and duplicates of either.
        let mut names: Vec<String> = Vec::new();
        let mut duplicate_names: Vec<String> = Vec::new();
        let mut ids: Vec<Uuid> = Vec::new();
        let mut duplicate_ids: Vec<Uuid> = Vec::new();
        let mut add_name = |name: String, names: &mut Vec<String>| {
            if duplicate_names.contains(&name) {
                return;
            }
            if let Some(i) = names.iter().position(|n| *n == name) {
                names.remove(i);
                duplicate_names.push(name);
            } else {
                names.push(name);
            }
        };
        if v < 6 {
            for name in request.topic_names {
                add_name(name, &mut names);
            }
        } else {
            for t in request.topics {
                match (t.name, t.topic_id.is_zero()) {
                    (None, true) => push(&mut response, None, Uuid::ZERO, ec::INVALID_REQUEST, Some("Neither topic name nor id were specified.")),
                    (None, false) => {
                        if duplicate_ids.contains(&t.topic_id) {
                            continue;
                        }
                        if let Some(i) = ids.iter().position(|id| *id == t.topic_id) {
                            ids.remove(i);
                            duplicate_ids.push(t.topic_id);
                        } else {
                            ids.push(t.topic_id);
                        }
                    }
                    (Some(name), true) => add_name(name, &mut names),
                    (Some(name), false) => push(
                        &mut response,
                        Some(name),
                        t.topic_id,
                        ec::INVALID_REQUEST,
                        Some("You may not specify both topic name and topic id."),
                    ),
                }
            }
        }
        for name in duplicate_names {
            push(&mut response, Some(name), Uuid::ZERO, ec::INVALID_REQUEST, Some("Duplicate topic name."));
        }
        for id in &duplicate_ids {
            push(&mut response, None, *id, ec::INVALID_REQUEST, Some("Duplicate topic id."));
        }
        // Resolve ids, then names; a name naming an id already given is refused.
        let mut delete: Vec<(Uuid, String)> = Vec::new();
        for id in ids {
            match self.log.topic_names.get(&id) {
                Some(name) => delete.push((id, name.clone())),
                None => push(&mut response, None, id, ec::UNKNOWN_TOPIC_ID, Some("This server does not host this topic ID.")),
            }
        }
        for name in names {
            let Some(t) = self.log.topics.get(&name) else {
                push(&mut response, Some(name), Uuid::ZERO, ec::UNKNOWN_TOPIC_OR_PARTITION, Some("This server does not host this topic-partition."));
                continue;
            };
            let id = t.id;
            if duplicate_ids.contains(&id) || delete.iter().any(|(d, _)| *d == id) {
                delete.retain(|(d, _)| *d != id);
                duplicate_ids.push(id);
                push(&mut response, Some(name), id, ec::INVALID_REQUEST, Some("The provided topic name maps to an ID that was already supplied."));
            } else {
                delete.push((id, name));
            }
        }
        if delete.is_empty() {
            return respond(out, &info, response);
        }
        let mut slots = Vec::with_capacity(delete.len());
        let mut commit = Vec::with_capacity(delete.len());
        for (id, name) in delete {
            slots.push(response.responses.len());
            push(&mut response, Some(name), id, ec::NONE, None);
            commit.push(id);
        }
        let pending = PendingDelete { info, response, slots };
        self.propose(CommitBody::DeleteTopics(commit), Proposal::DeleteTopics(pending), out);
    }

    /// The apply's verdict per deleted topic.
    pub(crate) fn on_delete_topics_applied(&mut self, pending: PendingDelete, verdicts: Vec<Result<(), i16>>, out: &mut Vec<Output>) {
        let PendingDelete { info, mut response, slots } = pending;
        for (slot, verdict) in slots.into_iter().zip(verdicts) {
            let (Some(r), Err(code)) = (response.responses.get_mut(slot), verdict) else { continue };
            // Gone since the check: old clients know the topic by name only.
            if code == ec::UNKNOWN_TOPIC_ID && info.api_version < 6 {
                r.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION;
                r.error_message = Some("This server does not host this topic-partition.".into());
            } else {
                r.error_code = code;
                r.error_message = (code == ec::UNKNOWN_TOPIC_ID).then(|| "This server does not host this topic ID.".into());
            }
        }
        respond(out, &info, response);
    }

    pub(crate) fn on_create_partitions(&mut self, info: ReqInfo, request: CreatePartitionsRequest, out: &mut Vec<Output>) {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &request.topics {
            *count.entry(t.name.as_str()).or_default() += 1;
        }
        let mut response = CreatePartitionsResponse::default();
        let mut reported = BTreeSet::new();
        for t in &request.topics {
            if count[t.name.as_str()] > 1 && reported.insert(t.name.as_str()) {
                response.results.push(CreatePartitionsTopicResult {
                    name: t.name.clone(),
                    error_code: ec::INVALID_REQUEST,
                    error_message: Some("Duplicate topic name.".into()),
                });
            }
        }
        let mut commit = Vec::new();
        let mut slots = Vec::new();
        for t in request.topics.iter().filter(|t| count[t.name.as_str()] == 1) {
            let mut r = CreatePartitionsTopicResult { name: t.name.clone(), error_code: ec::NONE, error_message: None };
            match self.check_new_partitions(t) {
                Err((code, message)) => {
                    r.error_code = code;
                    r.error_message = message;
                }
                Ok(id) => {
                    slots.push((response.results.len(), t.count as u32));
                    commit.push((id, t.count as u32));
                }
            }
            response.results.push(r);
        }
        if commit.is_empty() || request.validate_only {
            return respond(out, &info, response);
        }
        let pending = PendingPartitions { info, response, slots };
        self.propose(CommitBody::CreatePartitions(commit), Proposal::CreatePartitions(pending), out);
    }

    /// Kafka's checks on one topic to grow; the topic id when they pass.
    fn check_new_partitions(
        &self,
        t: &strata_proto::messages::create_partitions_request::CreatePartitionsTopic,
    ) -> Result<Uuid, (i16, Option<String>)> {
        // Kafka sends no message with an unknown topic here.
        let topic = self.log.topics.get(&t.name).ok_or((ec::UNKNOWN_TOPIC_OR_PARTITION, None))?;
        let current = topic.partitions.len() as i64;
        let count = i64::from(t.count);
        if let Some(message) = no_increase(&t.name, current, count) {
            return Err((ec::INVALID_PARTITIONS, Some(message)));
        }
        if count > i64::from(MAX_PARTITIONS) {
            return Err((
                ec::INVALID_PARTITIONS,
                Some(format!("A topic may have between 1 and {MAX_PARTITIONS} partitions, not {count}.")),
            ));
        }
        let additional = count - current;
        if let Some(assignments) = &t.assignments {
            if assignments.len() as i64 != additional {
                return Err((
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    Some(format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    )),
                ));
            }
            for a in assignments {
                check_replicas(&a.broker_ids, self.members.live(), Some(REPLICATION_FACTOR as usize))
                    .map_err(|m| (ec::INVALID_REPLICA_ASSIGNMENT, Some(m)))?;
            }
        }
        Ok(topic.id)
    }

    /// The apply's verdict per grown topic.
    pub(crate) fn on_create_partitions_applied(&mut self, pending: PendingPartitions, verdicts: Vec<Result<(), i16>>, out: &mut Vec<Output>) {
        let PendingPartitions { info, mut response, slots } = pending;
        for ((slot, asked), verdict) in slots.into_iter().zip(verdicts) {
            let (Some(r), Err(code)) = (response.results.get_mut(slot), verdict) else { continue };
            r.error_code = code;
            r.error_message = match self.log.topics.get(&r.name) {
                Some(t) if code == ec::INVALID_PARTITIONS => no_increase(&r.name, t.partitions.len() as i64, i64::from(asked)),
                _ => None,
            };
        }
        respond(out, &info, response);
    }
}

/// Kafka's INVALID_PARTITIONS messages when `count` does not grow the topic.
fn no_increase(name: &str, current: i64, count: i64) -> Option<String> {
    if count == current {
        Some(format!("Topic already has {current} partition(s)."))
    } else if count < current {
        Some(format!("The topic {name} currently has {current} partition(s); {count} would not be an increase."))
    } else {
        None
    }
}

/// Fails every topic of a create, delete or grow whose commit did not make it.
pub(crate) fn fail_create(pending: PendingCreate, error: i16, out: &mut Vec<Output>) {
    let PendingCreate { info, mut response, slots } = pending;
    for slot in slots {
        if let Some(r) = response.topics.get_mut(slot) {
            *r = create_error(&r.name, error, None);
        }
    }
    respond(out, &info, response);
}

/// See [`fail_create`].
pub(crate) fn fail_delete(pending: PendingDelete, error: i16, out: &mut Vec<Output>) {
    let PendingDelete { info, mut response, slots } = pending;
    for slot in slots {
        if let Some(r) = response.responses.get_mut(slot) {
            r.error_code = error;
        }
    }
    respond(out, &info, response);
}

/// See [`fail_create`].
pub(crate) fn fail_partitions(pending: PendingPartitions, error: i16, out: &mut Vec<Output>) {
    let PendingPartitions { info, mut response, slots } = pending;
    for (slot, _) in slots {
        if let Some(r) = response.results.get_mut(slot) {
            r.error_code = error;
        }
    }
    respond(out, &info, response);
}
