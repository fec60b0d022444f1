//! CreateTopics configs, AlterConfigs (replace the whole override set) and
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT) on an override
//! map, for topics and for the broker resource, with Kafka's (KRaft) checks
//! and messages. Each function returns the new map, or the error for the
//! whole resource; nothing is changed on error.

use std::collections::{BTreeMap, BTreeSet};

use super::broker::{broker_config, BrokerConfigView};
use super::topic::{resolve, topic_config};
use super::value::{java_split_comma, ConfigType};
use super::ConfigError;
use crate::error_code;

/// An IncrementalAlterConfigs operation (`config_operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    /// 0: set the value.
    Set,
    /// 1: remove the override (back to the default).
    Delete,
    /// 2: add elements to a LIST value.
    Append,
    /// 3: remove elements from a LIST value.
    Subtract,
}

impl AlterOp {
    /// The wire value.
    pub fn id(self) -> i8 {
        match self {
            AlterOp::Set => 0,
            AlterOp::Delete => 1,
            AlterOp::Append => 2,
            AlterOp::Subtract => 3,
        }
    }

    /// From the wire value; INVALID_REQUEST `Unknown operations type N` otherwise.
    pub fn from_id(id: i8) -> Result<AlterOp, ConfigError> {
        match id {
            0 => Ok(AlterOp::Set),
            1 => Ok(AlterOp::Delete),
            2 => Ok(AlterOp::Append),
            3 => Ok(AlterOp::Subtract),
            other => Err(ConfigError::invalid_request(format!("Unknown operations type {other}"))),
        }
    }

    /// Kafka's name (`SET`, `DELETE`, `APPEND`, `SUBTRACT`).
    pub fn name(self) -> &'static str {
        match self {
            AlterOp::Set => "SET",
            AlterOp::Delete => "DELETE",
            AlterOp::Append => "APPEND",
            AlterOp::Subtract => "SUBTRACT",
        }
    }
}

/// One IncrementalAlterConfigs entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// Config name.
    pub name: String,
    /// Operation.
    pub op: AlterOp,
    /// Value (ignored for DELETE; required otherwise).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, op: AlterOp, value: Option<&str>) -> AlterConfigOp {
        AlterConfigOp { name: name.into(), op, value: value.map(str::to_string) }
    }
}

fn check_duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(ConfigError::invalid_request("Error due to duplicate config keys"));
        }
    }
    Ok(())
}

fn check_nulls<'a>(nulls: impl Iterator<Item = &'a str>) -> Result<(), ConfigError> {
    let nulls: Vec<&str> = nulls.collect();
    if nulls.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::invalid_request(format!("Null value not supported for : {}", nulls.join(", "))))
    }
}

/// Shape checks Kafka runs before anything else (`ControllerApis` /
/// `ConfigAdminManager.preprocess`): a key twice, or a null value on an
/// operation other than DELETE, is INVALID_REQUEST.
fn check_ops(ops: &[AlterConfigOp]) -> Result<(), ConfigError> {
    check_duplicates(ops.iter().map(|o| o.name.as_str()))?;
    check_nulls(ops.iter().filter(|o| o.op != AlterOp::Delete && o.value.is_none()).map(|o| o.name.as_str()))
}

/// Applies `ops` in order to `current` (KRaft's `incrementalAlterConfigResource`).
/// `list_default(name)` is None when `name` is not a LIST config, else the
/// config's static default (the starting point of APPEND/SUBTRACT on an unset key).
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[AlterConfigOp],
    list_default: impl Fn(&str) -> Option<&'static str>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut new = current.clone();
    for op in ops {
        match op.op {
            AlterOp::Set => {
                if let Some(v) = &op.value {
                    new.insert(op.name.clone(), v.clone());
                }
            }
            AlterOp::Delete => {
                new.remove(&op.name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                let Some(default) = list_default(&op.name) else {
                    return Err(ConfigError::invalid_config(format!(
                        "Can't {} to key {} because its type is not LIST.",
                        op.op.name(),
                        op.name
                    )));
                };
                let base = new.get(&op.name).map(String::as_str).unwrap_or(default);
                let mut parts: Vec<String> = base.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect();
                let given = java_split_comma(op.value.as_deref().unwrap_or_default());
                if op.op == AlterOp::Append {
                    for v in given {
                        if !parts.contains(&v) {
                            parts.push(v);
                        }
                    }
                } else {
                    for v in given {
                        if let Some(i) = parts.iter().position(|p| *p == v) {
                            parts.remove(i);
                        }
                    }
                }
                new.insert(op.name.clone(), parts.join(","));
            }
        }
    }
    Ok(new)
}

/// Checks a topic's complete override map (Kafka's `LogConfig.validate`):
/// every name known (`Unknown topic config name: x`), every value valid
/// (`Invalid value abc for configuration retention.ms: Not a number of type LONG`),
/// `min.compaction.lag.ms` not above `max.compaction.lag.ms` (effective
/// values), and no `remote.storage.enable=true` (Strata has no Kafka tiered
/// storage). Errors are INVALID_CONFIG.
pub fn validate_topic_overrides(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfigView<'_>,
) -> Result<(), ConfigError> {
    for name in overrides.keys() {
        if topic_config(name).is_none() {
            return Err(ConfigError::unknown_topic_config(name));
        }
    }
    let mut remote = false;
    for (name, raw) in overrides {
        if let Some(def) = topic_config(name) {
            let v = def.parse(raw)?;
            if def.name == "remote.storage.enable" {
                remote = v.as_bool() == Some(true);
            }
        }
    }
    let lag = |name: &str| topic_config(name).and_then(|d| resolve(d, overrides, broker).value.as_i64());
    if let (Some(min), Some(max)) = (lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms")) {
        if min > max {
            return Err(ConfigError::invalid_config(format!(
                "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
            )));
        }
    }
    if remote {
        return Err(ConfigError::invalid_config(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
        ));
    }
    Ok(())
}

/// The override map of a topic being created from CreateTopics `configs`:
/// a null value is INVALID_CONFIG `Null value not supported for topic configs: a,b`;
/// a repeated name keeps the last value; then [`validate_topic_overrides`].
pub fn create_topic_configs(
    configs: &[(String, Option<String>)],
    broker: &BrokerConfigView<'_>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let nulls: Vec<&str> = configs.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| n.as_str()).collect();
    if !nulls.is_empty() {
        return Err(ConfigError::invalid_config(format!(
            "Null value not supported for topic configs: {}",
            nulls.join(",")
        )));
    }
    let map: BTreeMap<String, String> =
        configs.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone()))).collect();
    validate_topic_overrides(&map, broker)?;
    Ok(map)
}

/// AlterConfigs (non-incremental) on a topic: the given configs replace the
/// whole override set. Duplicate names or null values are INVALID_REQUEST;
/// the result is validated as [`validate_topic_overrides`].
pub fn alter_topic(
    configs: &[(String, Option<String>)],
    broker: &BrokerConfigView<'_>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    check_duplicates(configs.iter().map(|(n, _)| n.as_str()))?;
    check_nulls(configs.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| n.as_str()))?;
    let map: BTreeMap<String, String> =
        configs.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone()))).collect();
    validate_topic_overrides(&map, broker)?;
    Ok(map)
}

/// IncrementalAlterConfigs on a topic: applies `ops` to the topic's current
/// overrides and validates the result. APPEND/SUBTRACT on a non-LIST (or
/// unknown) config is INVALID_CONFIG `Can't APPEND to key x because its type
/// is not LIST.`; an unset LIST starts from Kafka's default (`cleanup.policy`
/// APPEND `compact` gives `delete,compact`). DELETE of an unset or unknown key
/// is a no-op.
pub fn incremental_alter_topic(
    current: &BTreeMap<String, String>,
    ops: &[AlterConfigOp],
    broker: &BrokerConfigView<'_>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    check_ops(ops)?;
    let new = apply_ops(current, ops, |name| {
        topic_config(name).filter(|d| d.ty == ConfigType::List).map(|d| d.default)
    })?;
    validate_topic_overrides(&new, broker)?;
    Ok(new)
}

/// Checks a broker resource's dynamic override map: names must be known
/// (INVALID_CONFIG `Unknown broker config name: x`, Strata's rule) and
/// dynamically updatable (INVALID_REQUEST `Cannot update these configs
/// dynamically: Set(num.partitions)`); values must be valid (INVALID_REQUEST
/// with the value's message: Kafka reports broker validation failures so).
pub fn validate_broker_overrides(overrides: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for name in overrides.keys() {
        if broker_config(name).is_none() {
            return Err(ConfigError::unknown_broker_config(name));
        }
    }
    let fixed: Vec<&str> = overrides
        .keys()
        .filter(|n| broker_config(n).is_some_and(|d| !d.dynamic))
        .map(String::as_str)
        .collect();
    if !fixed.is_empty() {
        return Err(ConfigError::invalid_request(format!(
            "Cannot update these configs dynamically: Set({})",
            fixed.join(", ")
        )));
    }
    for (name, raw) in overrides {
        if let Some(def) = broker_config(name) {
            def.parse(raw).map_err(|e| e.with_code(error_code::INVALID_REQUEST))?;
        }
    }
    Ok(())
}

/// AlterConfigs (non-incremental) on a broker resource: the given configs
/// replace its dynamic overrides.
pub fn alter_broker(configs: &[(String, Option<String>)]) -> Result<BTreeMap<String, String>, ConfigError> {
    check_duplicates(configs.iter().map(|(n, _)| n.as_str()))?;
    check_nulls(configs.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| n.as_str()))?;
    let map: BTreeMap<String, String> =
        configs.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone()))).collect();
    validate_broker_overrides(&map)?;
    Ok(map)
}

/// IncrementalAlterConfigs on a broker resource: applies `ops` to its current
/// dynamic overrides (APPEND/SUBTRACT on LIST configs such as
/// `log.cleanup.policy`) and validates the result.
pub fn incremental_alter_broker(
    current: &BTreeMap<String, String>,
    ops: &[AlterConfigOp],
) -> Result<BTreeMap<String, String>, ConfigError> {
    check_ops(ops)?;
    let new = apply_ops(current, ops, |name| {
        broker_config(name).filter(|d| d.ty == ConfigType::List).map(|d| d.default.unwrap_or(""))
    })?;
    validate_broker_overrides(&new)?;
    Ok(new)
}
