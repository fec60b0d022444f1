//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (resource type 2), the broker (4: this node's id, or "" for the
//! cluster-wide default) and broker loggers (8, which Strata has none of).
//!
//! The semantics (names, defaults, synonyms, sources, validation, the
//! incremental operations) live in [`crate::config`]; this file checks the
//! resources as Kafka's `ConfigAdminManager` (broker side) and
//! `ControllerConfigurationValidator` (controller side) do, then proposes one
//! commit per changed resource (`SetTopicConfigs`, `SetBrokerConfigs`,
//! `SetNodeConfigs`: the whole new override map) and answers once the last
//! one is applied, with the apply's verdict per resource. An incremental
//! alter's map is computed from the applied state, so its commit is applied
//! only if no other config change came first; if one did, it is computed
//! again from the newer state and proposed again (as Kafka's controller
//! applies incremental operations one after the other).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use strata_proto::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use strata_proto::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::{respond, Broker, Proposal, ReqInfo};
use crate::config::{
    self, check_broker_resource, describe_broker, describe_topic, AlterConfigOp, AlterOp, BrokerConfigView,
    BrokerSettings, ConfigError, DescribedConfig,
};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::{CommitBody, ConfigUpdate};
use crate::topic_name;

/// Kafka's `ConfigResource.Type` ids.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;

/// An empty override map, for brokers without dynamic overrides.
static NO_OVERRIDES: BTreeMap<String, String> = BTreeMap::new();

/// Kafka's name of a resource type (`ConfigResource.Type`).
fn resource_type_name(t: i8) -> &'static str {
    match t {
        RESOURCE_TOPIC => "TOPIC",
        RESOURCE_BROKER => "BROKER",
        RESOURCE_BROKER_LOGGER => "BROKER_LOGGER",
        RESOURCE_CLIENT_METRICS => "CLIENT_METRICS",
        RESOURCE_GROUP => "GROUP",
        _ => "UNKNOWN",
    }
}

/// One resource's outcome in an alter response.
#[derive(Debug, Clone)]
struct AlterResult {
    resource_type: i8,
    resource_name: String,
    error_code: i16,
    error_message: Option<String>,
}

impl AlterResult {
    fn fail(&mut self, e: ConfigError) {
        self.error_code = e.code;
        self.error_message = Some(e.message);
    }
}

/// An AlterConfigs / IncrementalAlterConfigs request waiting for its commits,
/// which are proposed one after the other (one per changed resource).
#[derive(Debug)]
pub(crate) struct PendingAlter {
    info: ReqInfo,
    incremental: bool,
    results: Vec<AlterResult>,
    /// Resources still to commit, by index (each commit is computed from the
    /// applied state just before it is proposed).
    queue: VecDeque<usize>,
    /// The result the commit in flight answers.
    current: usize,
    /// The request's resources, to compute a commit again after a conflict.
    resources: Vec<(i8, String, RawOps)>,
    /// Commits of this request refused because another change came first.
    conflicts: u32,
}

/// Conflicting config changes an alter request rides out before it answers
/// REQUEST_TIMED_OUT (retriable) for the resource.
const MAX_ALTER_CONFLICTS: u32 = 16;

/// A request's configs as (name, op, value), before parsing the op.
type RawOps = Vec<(String, i8, Option<String>)>;

impl Broker {
    /// The broker's static configuration as Kafka config names, from the
    /// typed [`super::BrokerConfig`] fields: values that differ from Kafka's
    /// default are reported as STATIC_BROKER_CONFIG, the rest as DEFAULT_CONFIG.
    pub(crate) fn static_settings(&self) -> BrokerSettings {
        let mut s = BrokerSettings::new(self.cfg.node_id);
        let typed = [
            ("num.partitions", self.cfg.default_partitions.to_string()),
            ("message.max.bytes", self.cfg.message_max_bytes.to_string()),
            ("auto.create.topics.enable", self.cfg.auto_create_topics.to_string()),
            ("strata.flush.bytes", self.cfg.flush_bytes.to_string()),
            ("strata.flush.ms", self.cfg.flush_ms.to_string()),
        ];
        for (name, value) in typed {
            let default = config::broker_config(name).and_then(|d| d.default);
            if default != Some(value.as_str()) {
                // A value the config table refuses stays at its default.
                let _ = s.set(name, &value);
            }
        }
        for (name, value) in &self.cfg.static_props {
            // Checked at startup (the runtime refuses unknown names and bad values).
            let _ = s.set(name, value);
        }
        s
    }

    /// This broker's configuration: static settings, the cluster-wide
    /// dynamic defaults and this node's dynamic overrides, as applied.
    pub(crate) fn config_view<'a>(&'a self, settings: &'a BrokerSettings) -> BrokerConfigView<'a> {
        let node = self.log.node_configs.get(&self.cfg.node_id).unwrap_or(&NO_OVERRIDES);
        BrokerConfigView::new(settings).with_dynamic(node).with_cluster_default(&self.log.broker_configs)
    }

    pub(crate) fn on_describe_configs(&mut self, info: ReqInfo, request: DescribeConfigsRequest, out: &mut Vec<Output>) {
        let settings = self.static_settings();
        let view = self.config_view(&settings);
        let syn = request.include_synonyms;
        let doc = request.include_documentation;
        let mut response = DescribeConfigsResponse::default();
        for r in &request.resources {
            let keys = r.configuration_keys.as_deref();
            let mut result = DescribeConfigsResult {
                error_code: ec::NONE,
                error_message: None,
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                configs: Vec::new(),
            };
            let described: Result<Vec<DescribedConfig>, (i16, Option<String>)> = match r.resource_type {
                RESOURCE_TOPIC => match topic_name::validate(&r.resource_name) {
                    Err(e) => Err((ec::INVALID_TOPIC_EXCEPTION, Some(e.to_string()))),
                    Ok(()) => match self.log.topics.get(&r.resource_name) {
                        // Kafka sends no message with this one.
                        None => Err((ec::UNKNOWN_TOPIC_OR_PARTITION, None)),
                        Some(t) => Ok(describe_topic(&t.configs, &view, keys, syn, doc)),
                    },
                },
                RESOURCE_BROKER => match check_broker_resource(&r.resource_name, self.cfg.node_id) {
                    Err(e) => Err((e.code, Some(e.message))),
                    Ok(scope) => Ok(describe_broker(&view, scope, keys, syn, doc)),
                },
                RESOURCE_BROKER_LOGGER => {
                    // Kafka lists the broker's log4j loggers; Strata has none to list.
                    describe_logger_name(&r.resource_name, self.cfg.node_id).map(|()| Vec::new())
                }
                RESOURCE_CLIENT_METRICS | RESOURCE_GROUP => Err((
                    ec::INVALID_REQUEST,
                    Some(format!("Unsupported resource type: {}", resource_type_name(r.resource_type))),
                )),
                other => Err((
                    ec::INVALID_REQUEST,
                    Some(format!("Unexpected resource type {} for resource {}", resource_type_name(other), r.resource_name)),
                )),
            };
            match described {
                Ok(entries) => result.configs = entries.into_iter().map(wire_entry).collect(),
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = message;
                }
            }
            response.results.push(result);
        }
        respond(out, &info, response);
    }

    pub(crate) fn on_alter_configs(&mut self, info: ReqInfo, request: AlterConfigsRequest, out: &mut Vec<Output>) {
        let resources: Vec<(i8, String, RawOps)> = request
            .resources
            .into_iter()
            .map(|r| {
                let ops = r.configs.into_iter().map(|c| (c.name, AlterOp::Set.id(), c.value)).collect();
                (r.resource_type, r.resource_name, ops)
            })
            .collect();
        self.alter(info, false, resources, request.validate_only, out);
    }

    pub(crate) fn on_incremental_alter_configs(
        &mut self,
        info: ReqInfo,
        request: IncrementalAlterConfigsRequest,
        out: &mut Vec<Output>,
    ) {
        let resources: Vec<(i8, String, RawOps)> = request
            .resources
            .into_iter()
            .map(|r| {
                let ops = r.configs.into_iter().map(|c| (c.name, c.config_operation, c.value)).collect();
                (r.resource_type, r.resource_name, ops)
            })
            .collect();
        self.alter(info, true, resources, request.validate_only, out);
    }

    /// Both alter apis: check every resource, then propose the changes.
    fn alter(&mut self, info: ReqInfo, incremental: bool, resources: Vec<(i8, String, RawOps)>, validate_only: bool, out: &mut Vec<Output>) {
        let mut seen: BTreeMap<(i8, &str), usize> = BTreeMap::new();
        let mut duplicated = BTreeSet::new();
        for (i, (t, name, _)) in resources.iter().enumerate() {
            if let Some(first) = seen.insert((*t, name.as_str()), i) {
                duplicated.insert(first);
                duplicated.insert(i);
            }
        }
        let mut results = Vec::with_capacity(resources.len());
        let mut queue = VecDeque::new();
        for (i, (resource_type, resource_name, ops)) in resources.iter().enumerate() {
            let mut result = AlterResult {
                resource_type: *resource_type,
                resource_name: resource_name.clone(),
                error_code: ec::NONE,
                error_message: None,
            };
            let verdict = if duplicated.contains(&i) {
                Err(ConfigError::invalid_request("Each resource must appear at most once."))
            } else {
                self.check_alter(incremental, *resource_type, resource_name, ops)
            };
            match verdict {
                Err(e) => result.fail(e),
                Ok(Some(_)) if !validate_only => queue.push_back(i),
                Ok(_) => {}
            }
            results.push(result);
        }
        let pending = PendingAlter { info, incremental, results, queue, current: usize::MAX, resources, conflicts: 0 };
        self.continue_alter(pending, out);
    }

    /// One resource of an alter request: its error, or the commit that makes
    /// the change (None when there is nothing to persist).
    fn check_alter(&self, incremental: bool, resource_type: i8, name: &str, raw: &RawOps) -> Result<Option<CommitBody>, ConfigError> {
        // ConfigAdminManager.preprocess: the shape of the configs first.
        let mut keys = BTreeSet::new();
        if !raw.iter().all(|(n, _, _)| keys.insert(n.as_str())) {
            return Err(ConfigError::invalid_request("Error due to duplicate config keys"));
        }
        let nulls: Vec<&str> =
            raw.iter().filter(|(_, op, v)| *op != AlterOp::Delete.id() && v.is_none()).map(|(n, _, _)| n.as_str()).collect();
        if !nulls.is_empty() {
            return Err(ConfigError::invalid_request(format!("Null value not supported for : {}", nulls.join(", "))));
        }
        let parse_ops = || -> Result<Vec<AlterConfigOp>, ConfigError> {
            raw.iter()
                .map(|(n, op, v)| Ok(AlterConfigOp { name: n.clone(), op: AlterOp::from_id(*op)?, value: v.clone() }))
                .collect()
        };
        let legacy = || -> Vec<(String, Option<String>)> { raw.iter().map(|(n, _, v)| (n.clone(), v.clone())).collect() };
        match resource_type {
            RESOURCE_TOPIC => {
                if name.is_empty() {
                    return Err(ConfigError::invalid_request("Default topic resources are not allowed."));
                }
                topic_name::validate(name).map_err(|e| ConfigError::new(ec::INVALID_TOPIC_EXCEPTION, e.to_string()))?;
                let settings = self.static_settings();
                let view = self.config_view(&settings);
                let topic = self.log.topics.get(name);
                let current = topic.map_or(&NO_OVERRIDES, |t| &t.configs);
                let new = if incremental {
                    config::incremental_alter_topic(current, &parse_ops()?, &view)?
                } else {
                    config::alter_topic(&legacy(), &view)?
                };
                let topic = topic.ok_or_else(|| ConfigError::unknown_topic(name))?;
                Ok(Some(CommitBody::SetTopicConfigs(topic.id, self.config_update(incremental, new))))
            }
            RESOURCE_BROKER => {
                let node = if name.is_empty() { None } else { Some(self.alter_node_id(name, "Unexpected broker id, expected {n}, but received {r}")?) };
                let current = match node {
                    None => &self.log.broker_configs,
                    Some(n) => self.log.node_configs.get(&n).unwrap_or(&NO_OVERRIDES),
                };
                let new = if incremental { config::incremental_alter_broker(current, &parse_ops()?)? } else { config::alter_broker(&legacy())? };
                let update = self.config_update(incremental, new);
                Ok(Some(match node {
                    None => CommitBody::SetBrokerConfigs(update),
                    Some(n) => CommitBody::SetNodeConfigs(n, update),
                }))
            }
            // Legacy AlterConfigs never supported broker loggers.
            RESOURCE_BROKER_LOGGER if incremental => {
                self.alter_node_id(name, "Unexpected node id. Expected {n}, but received {r}")?;
                // Strata has no loggers, so the first operation fails.
                if let Some((logger, op, _)) = raw.first() {
                    return Err(match AlterOp::from_id(*op) {
                        Ok(AlterOp::Set | AlterOp::Delete) => ConfigError::invalid_config(format!("Logger {logger} does not exist!")),
                        Ok(other) => ConfigError::invalid_request(format!(
                            "{} operation is not allowed for the BROKER_LOGGER resource",
                            other.name()
                        )),
                        Err(_) => ConfigError::invalid_request(format!(
                            "Unknown operation type {op} is not allowed for the BROKER_LOGGER resource"
                        )),
                    });
                }
                // Log levels are not persisted, so there is never a commit.
                Ok(None)
            }
            other => Err(ConfigError::invalid_request(format!("Unknown resource type {other}"))),
        }
    }

    /// The commit's update: an incremental alter's map came from the applied
    /// state, so it holds only if no config change is applied before it.
    fn config_update(&self, incremental: bool, configs: BTreeMap<String, String>) -> ConfigUpdate {
        ConfigUpdate { configs, based_on: incremental.then_some(self.log.config_changes) }
    }

    /// Checks a non-empty broker (or broker-logger) resource name of an alter
    /// request against this node, with Kafka's messages.
    fn alter_node_id(&self, name: &str, mismatch: &str) -> Result<i32, ConfigError> {
        let n = self.cfg.node_id;
        let id: i32 = name
            .parse()
            .map_err(|_| ConfigError::invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
        if id != n {
            return Err(ConfigError::invalid_request(mismatch.replace("{n}", &n.to_string()).replace("{r}", name)));
        }
        Ok(id)
    }

    /// Proposes the next commit of an alter request, or answers it.
    fn continue_alter(&mut self, mut pending: PendingAlter, out: &mut Vec<Output>) {
        while let Some(i) = pending.queue.pop_front() {
            let Some((t, name, ops)) = pending.resources.get(i) else { continue };
            match self.check_alter(pending.incremental, *t, name, ops) {
                Ok(Some(commit)) => {
                    pending.current = i;
                    self.propose(commit, Proposal::AlterConfigs(pending), out);
                    return;
                }
                Ok(None) => {}
                // The state changed since the request was checked.
                Err(e) => pending.results[i].fail(e),
            }
        }
        answer_alter(pending, out);
    }

    /// The apply's verdict on the commit in flight.
    pub(crate) fn on_alter_configs_applied(&mut self, mut pending: PendingAlter, verdict: Result<(), i16>, out: &mut Vec<Output>) {
        if verdict == Err(ec::INVALID_UPDATE_VERSION) && pending.conflicts < MAX_ALTER_CONFLICTS {
            // Computed from a state another config change has overtaken: again.
            pending.conflicts += 1;
            pending.queue.push_front(pending.current);
            self.continue_alter(pending, out);
            return;
        }
        let verdict = if verdict == Err(ec::INVALID_UPDATE_VERSION) { Err(ec::REQUEST_TIMED_OUT) } else { verdict };
        if let (Err(code), Some(r)) = (verdict, pending.results.get_mut(pending.current)) {
            // The topic went away between the check and the apply.
            let message = (code == ec::UNKNOWN_TOPIC_OR_PARTITION).then(|| ConfigError::unknown_topic(&r.resource_name).message);
            r.error_code = code;
            r.error_message = message;
        }
        self.continue_alter(pending, out);
    }
}

/// Fails the commit in flight and every one not yet proposed.
pub(crate) fn fail_alter(mut pending: PendingAlter, error: i16, out: &mut Vec<Output>) {
    let mut failed: Vec<usize> = pending.queue.drain(..).collect();
    failed.push(pending.current);
    for i in failed {
        if let Some(r) = pending.results.get_mut(i) {
            r.error_code = error;
            r.error_message = None;
        }
    }
    answer_alter(pending, out);
}

fn answer_alter(pending: PendingAlter, out: &mut Vec<Output>) {
    if pending.incremental {
        let responses = pending
            .results
            .into_iter()
            .map(|r| incremental_alter_configs_response::AlterConfigsResourceResponse {
                error_code: r.error_code,
                error_message: r.error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
            })
            .collect();
        respond(out, &pending.info, IncrementalAlterConfigsResponse { throttle_time_ms: 0, responses });
    } else {
        let responses = pending
            .results
            .into_iter()
            .map(|r| alter_configs_response::AlterConfigsResourceResponse {
                error_code: r.error_code,
                error_message: r.error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
            })
            .collect();
        respond(out, &pending.info, AlterConfigsResponse { throttle_time_ms: 0, responses });
    }
}

/// Kafka's checks on a BROKER_LOGGER resource name in DescribeConfigs.
fn describe_logger_name(name: &str, node_id: i32) -> Result<(), (i16, Option<String>)> {
    if name.is_empty() {
        return Err((ec::INVALID_REQUEST, Some("Broker id must not be empty".into())));
    }
    let id: i32 = name
        .parse()
        .map_err(|_| (ec::INVALID_REQUEST, Some(format!("Broker id must be an integer, but it is: {name}"))))?;
    if id != node_id {
        return Err((ec::INVALID_REQUEST, Some(format!("Unexpected broker id, expected {node_id} but received {name}"))));
    }
    Ok(())
}

/// One described config as DescribeConfigs sends it (fields absent at the
/// request's version are left out by the encoder).
fn wire_entry(d: DescribedConfig) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: d.name.to_string(),
        value: d.value.clone(),
        read_only: d.read_only,
        is_default: d.is_default,
        config_source: d.source_id(),
        is_sensitive: d.sensitive,
        synonyms: d
            .synonyms
            .iter()
            .map(|s| DescribeConfigsSynonym { name: s.name.to_string(), value: s.value.clone(), source: s.source.id() })
            .collect(),
        config_type: d.config_type_id(),
        documentation: d.documentation.map(str::to_string),
    }
}
