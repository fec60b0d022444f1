//! The broker configs Strata reports (Kafka's names, types and defaults from
//! `KafkaConfig` 3.7, plus Strata's own), the static settings the runtime
//! gives, and the view that layers dynamic overrides on top.

use std::collections::BTreeMap;

use super::topic::TopicConfig;
use super::value::{parse_and_validate, parse_value, ConfigType, ConfigValue, Validator};
use super::{ConfigError, ConfigSource};

/// One broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfigDef {
    /// Kafka's (or Strata's) name.
    pub name: &'static str,
    /// Type.
    pub ty: ConfigType,
    /// Default in `convertToString` form; None where Kafka's default is null.
    pub default: Option<&'static str>,
    /// Validator.
    pub validator: Validator,
    /// Whether AlterConfigs may change it at run time (Kafka's dynamic
    /// broker configs: the primary synonym of each topic config except
    /// `log.message.format.version`, plus Strata's flush settings).
    pub dynamic: bool,
    /// Documentation.
    pub doc: &'static str,
}

impl BrokerConfigDef {
    /// Parses and validates one value (INVALID_CONFIG on failure).
    pub fn parse(&self, raw: &str) -> Result<ConfigValue, ConfigError> {
        parse_and_validate(self.name, raw, self.ty, self.validator)
    }

    /// Whether DescribeConfigs reports it read-only.
    pub fn read_only(&self) -> bool {
        !self.dynamic
    }

    /// Whether its value is a secret.
    pub fn sensitive(&self) -> bool {
        self.ty == ConfigType::Password
    }
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Default of `strata.flush.bytes`.
pub const DEFAULT_FLUSH_BYTES: i64 = 4 * 1024 * 1024;
/// Default of `strata.flush.ms`.
pub const DEFAULT_FLUSH_MS: i64 = 250;

macro_rules! broker {
    ($name:expr, $ty:ident, $default:expr, $validator:expr, $dynamic:expr, $doc:expr) => {
        BrokerConfigDef {
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            validator: $validator,
            dynamic: $dynamic,
            doc: $doc,
        }
    };
}

const DYNAMIC: bool = true;
const STATIC: bool = false;

/// Every broker config Strata reports, sorted by name.
pub static BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker!("auto.create.topics.enable", Boolean, Some("true"), Validator::None, STATIC,
        "Create a topic when a client asks for metadata of, or produces to, an unknown one."),
    broker!("broker.id", Int, Some("-1"), Validator::None, STATIC,
        "This broker's id (the same as node.id)."),
    broker!("compression.type", String, Some("producer"), Validator::OneOf(COMPRESSION_TYPES), DYNAMIC,
        "Default compression.type of topics."),
    broker!("default.replication.factor", Int, Some("1"), Validator::None, STATIC,
        "Replication factor of auto-created topics and CreateTopics with -1 (reported only: data lives in object storage)."),
    broker!("group.initial.rebalance.delay.ms", Int, Some("3000"), Validator::None, STATIC,
        "How long a new classic group waits for more members before its first rebalance."),
    broker!("group.max.session.timeout.ms", Int, Some("1800000"), Validator::None, STATIC,
        "Largest session timeout a group member may ask for."),
    broker!("group.max.size", Int, Some("2147483647"), Validator::AtLeast(1), STATIC,
        "Most members a consumer group may have."),
    broker!("group.min.session.timeout.ms", Int, Some("6000"), Validator::None, STATIC,
        "Smallest session timeout a group member may ask for."),
    broker!("log.cleaner.delete.retention.ms", Long, Some("86400000"), Validator::AtLeast(0), DYNAMIC,
        "Default delete.retention.ms of topics."),
    broker!("log.cleaner.max.compaction.lag.ms", Long, Some(LONG_MAX), Validator::AtLeast(1), DYNAMIC,
        "Default max.compaction.lag.ms of topics."),
    broker!("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), Validator::Between(0, 1), DYNAMIC,
        "Default min.cleanable.dirty.ratio of topics."),
    broker!("log.cleaner.min.compaction.lag.ms", Long, Some("0"), Validator::AtLeast(0), DYNAMIC,
        "Default min.compaction.lag.ms of topics."),
    broker!("log.cleanup.policy", List, Some("delete"), Validator::ListOf(CLEANUP_POLICIES), DYNAMIC,
        "Default cleanup.policy of topics."),
    broker!("log.flush.interval.messages", Long, Some(LONG_MAX), Validator::AtLeast(1), DYNAMIC,
        "Default flush.messages of topics."),
    broker!("log.flush.interval.ms", Long, None, Validator::None, DYNAMIC,
        "Default flush.ms of topics; if unset, log.flush.scheduler.interval.ms."),
    broker!("log.flush.scheduler.interval.ms", Long, Some(LONG_MAX), Validator::None, STATIC,
        "Fallback for log.flush.interval.ms."),
    broker!("log.index.interval.bytes", Int, Some("4096"), Validator::AtLeast(0), DYNAMIC,
        "Default index.interval.bytes of topics."),
    broker!("log.index.size.max.bytes", Int, Some("10485760"), Validator::AtLeast(4), DYNAMIC,
        "Default segment.index.bytes of topics."),
    broker!("log.local.retention.bytes", Long, Some("-2"), Validator::AtLeast(-2), DYNAMIC,
        "Default local.retention.bytes of topics."),
    broker!("log.local.retention.ms", Long, Some("-2"), Validator::AtLeast(-2), DYNAMIC,
        "Default local.retention.ms of topics."),
    broker!("log.message.downconversion.enable", Boolean, Some("true"), Validator::None, DYNAMIC,
        "Default message.downconversion.enable of topics."),
    broker!("log.message.format.version", String, Some("3.0-IV1"), Validator::MetadataVersion, STATIC,
        "Deprecated; ignored."),
    broker!("log.message.timestamp.after.max.ms", Long, Some(LONG_MAX), Validator::AtLeast(0), DYNAMIC,
        "Default message.timestamp.after.max.ms of topics."),
    broker!("log.message.timestamp.before.max.ms", Long, Some(LONG_MAX), Validator::AtLeast(0), DYNAMIC,
        "Default message.timestamp.before.max.ms of topics."),
    broker!("log.message.timestamp.difference.max.ms", Long, Some(LONG_MAX), Validator::AtLeast(0), DYNAMIC,
        "Default message.timestamp.difference.max.ms of topics (deprecated)."),
    broker!("log.message.timestamp.type", String, Some("CreateTime"), Validator::OneOf(TIMESTAMP_TYPES), DYNAMIC,
        "Default message.timestamp.type of topics."),
    broker!("log.preallocate", Boolean, Some("false"), Validator::None, DYNAMIC,
        "Default preallocate of topics."),
    broker!("log.retention.bytes", Long, Some("-1"), Validator::None, DYNAMIC,
        "Default retention.bytes of topics."),
    broker!("log.retention.check.interval.ms", Long, Some("300000"), Validator::AtLeast(1), STATIC,
        "How often the broker looks for log data past retention.ms or retention.bytes."),
    broker!("log.retention.hours", Int, Some("168"), Validator::None, STATIC,
        "Default retention of topics in hours, used when log.retention.ms and log.retention.minutes are unset."),
    broker!("log.retention.minutes", Int, None, Validator::None, STATIC,
        "Default retention of topics in minutes, used when log.retention.ms is unset."),
    broker!("log.retention.ms", Long, None, Validator::None, DYNAMIC,
        "Default retention.ms of topics."),
    broker!("log.roll.hours", Int, Some("168"), Validator::AtLeast(1), STATIC,
        "Default segment.ms of topics in hours, used when log.roll.ms is unset."),
    broker!("log.roll.jitter.hours", Int, Some("0"), Validator::AtLeast(0), STATIC,
        "Default segment.jitter.ms of topics in hours, used when log.roll.jitter.ms is unset."),
    broker!("log.roll.jitter.ms", Long, None, Validator::None, DYNAMIC,
        "Default segment.jitter.ms of topics."),
    broker!("log.roll.ms", Long, None, Validator::None, DYNAMIC,
        "Default segment.ms of topics."),
    broker!("log.segment.bytes", Int, Some("1073741824"), Validator::AtLeast(14), DYNAMIC,
        "Default segment.bytes of topics."),
    broker!("log.segment.delete.delay.ms", Long, Some("60000"), Validator::AtLeast(0), DYNAMIC,
        "Default file.delete.delay.ms of topics."),
    broker!("message.max.bytes", Int, Some("1048588"), Validator::AtLeast(0), DYNAMIC,
        "Largest record batch accepted; default max.message.bytes of topics."),
    broker!("min.insync.replicas", Int, Some("1"), Validator::AtLeast(1), DYNAMIC,
        "Default min.insync.replicas of topics."),
    broker!("node.id", Int, Some("-1"), Validator::None, STATIC,
        "This broker's id."),
    broker!("num.partitions", Int, Some("1"), Validator::AtLeast(1), STATIC,
        "Partitions of auto-created topics and of CreateTopics with -1."),
    broker!("offset.metadata.max.bytes", Int, Some("4096"), Validator::None, STATIC,
        "Longest metadata string an offset commit may carry."),
    broker!("offsets.retention.check.interval.ms", Long, Some("600000"), Validator::AtLeast(1), STATIC,
        "How often the group coordinator looks for expired offsets."),
    broker!("offsets.retention.minutes", Int, Some("10080"), Validator::AtLeast(1), STATIC,
        "How long committed offsets of an empty group are kept."),
    broker!("producer.id.expiration.ms", Int, Some("86400000"), Validator::AtLeast(1), DYNAMIC,
        "How long a producer id's idempotence state is kept after its last batch (by the batch's timestamp)."),
    broker!("socket.request.max.bytes", Int, Some("104857600"), Validator::AtLeast(1), STATIC,
        "Largest request frame accepted."),
    broker!("strata.flush.bytes", Long, Some("4194304"), Validator::AtLeast(1), DYNAMIC,
        "Strata: write the open object to the object store once it holds this many bytes."),
    broker!("strata.flush.ms", Long, Some("250"), Validator::AtLeast(0), DYNAMIC,
        "Strata: write the open object this long after its first batch arrived."),
    broker!("transaction.max.timeout.ms", Int, Some("900000"), Validator::AtLeast(1), STATIC,
        "Largest transaction timeout a producer may ask for."),
    broker!("unclean.leader.election.enable", Boolean, Some("false"), Validator::None, DYNAMIC,
        "Default unclean.leader.election.enable of topics."),
];

/// The broker config named `name`.
pub fn broker_config(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.binary_search_by(|d| d.name.cmp(name)).ok().map(|i| &BROKER_CONFIGS[i])
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the broker configs
/// that set the same thing, highest priority first.
pub fn broker_synonyms(name: &'static str) -> &'static [&'static str] {
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    const FLUSH: &[&str] = &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    const RETENTION: &[&str] = &["log.retention.ms", "log.retention.minutes", "log.retention.hours"];
    match name {
        "log.roll.ms" | "log.roll.hours" => ROLL,
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => JITTER,
        "log.flush.interval.ms" => FLUSH,
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => RETENTION,
        _ => match broker_config(name) {
            Some(def) => std::slice::from_ref(&def.name),
            None => &[],
        },
    }
}

/// A broker's static configuration (what `server.properties` or the command
/// line set), validated. Values not set here fall back to the defaults in
/// [`BROKER_CONFIGS`] and are reported as DEFAULT_CONFIG; values set here are
/// STATIC_BROKER_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    node_id: i32,
    props: BTreeMap<String, String>,
}

impl BrokerSettings {
    /// A broker with this node id and every other setting at its default.
    pub fn new(node_id: i32) -> BrokerSettings {
        BrokerSettings { node_id, props: BTreeMap::new() }
    }

    /// A broker with these static settings; fails on an unknown name or a bad value.
    pub fn from_props(node_id: i32, props: &BTreeMap<String, String>) -> Result<BrokerSettings, ConfigError> {
        let mut s = BrokerSettings::new(node_id);
        for (k, v) in props {
            s.set(k, v)?;
        }
        Ok(s)
    }

    /// Builder form of [`BrokerSettings::set`].
    pub fn with(mut self, name: &str, value: &str) -> Result<BrokerSettings, ConfigError> {
        self.set(name, value)?;
        Ok(self)
    }

    /// Sets one static value (any known broker config, dynamic or not).
    /// `node.id` / `broker.id` set the node id.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let def = broker_config(name).ok_or_else(|| ConfigError::unknown_broker_config(name))?;
        let parsed = def.parse(value)?;
        if name == "node.id" || name == "broker.id" {
            self.node_id = parsed.as_i32().unwrap_or(self.node_id);
            return Ok(());
        }
        self.props.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The static value of `name`, if set (`node.id` / `broker.id` always are).
    pub fn get(&self, name: &str) -> Option<String> {
        if name == "node.id" || name == "broker.id" {
            return Some(self.node_id.to_string());
        }
        self.props.get(name).cloned()
    }

    /// The explicitly set values (without node.id).
    pub fn props(&self) -> &BTreeMap<String, String> {
        &self.props
    }
}

/// A broker's configuration as seen at one moment: static settings, plus the
/// dynamic overrides set through AlterConfigs on this broker
/// (DYNAMIC_BROKER_CONFIG) and, optionally, on the cluster-wide default
/// broker resource (DYNAMIC_DEFAULT_BROKER_CONFIG).
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigView<'a> {
    settings: &'a BrokerSettings,
    dynamic: Option<&'a BTreeMap<String, String>>,
    dynamic_default: Option<&'a BTreeMap<String, String>>,
}

impl<'a> BrokerConfigView<'a> {
    /// Precedence of the broker-side sources, highest first.
    pub const LEVELS: [ConfigSource; 4] = [
        ConfigSource::DynamicBrokerConfig,
        ConfigSource::DynamicDefaultBrokerConfig,
        ConfigSource::StaticBrokerConfig,
        ConfigSource::DefaultConfig,
    ];

    /// Static settings only.
    pub fn new(settings: &'a BrokerSettings) -> BrokerConfigView<'a> {
        BrokerConfigView { settings, dynamic: None, dynamic_default: None }
    }

    /// With the overrides set by AlterConfigs on this broker's resource.
    pub fn with_dynamic(mut self, dynamic: &'a BTreeMap<String, String>) -> BrokerConfigView<'a> {
        self.dynamic = Some(dynamic);
        self
    }

    /// With the overrides set on the default broker resource (empty name).
    pub fn with_cluster_default(mut self, dynamic_default: &'a BTreeMap<String, String>) -> BrokerConfigView<'a> {
        self.dynamic_default = Some(dynamic_default);
        self
    }

    /// The static settings.
    pub fn settings(&self) -> &'a BrokerSettings {
        self.settings
    }

    /// The per-broker dynamic overrides, if any.
    pub fn dynamic(&self) -> Option<&'a BTreeMap<String, String>> {
        self.dynamic
    }

    /// The cluster-default dynamic overrides, if any.
    pub fn dynamic_default(&self) -> Option<&'a BTreeMap<String, String>> {
        self.dynamic_default
    }

    /// The raw value of `name` at one source level, if that level sets it.
    /// Dynamic levels only count for dynamic configs (Kafka ignores the rest).
    pub fn raw_at(&self, level: ConfigSource, name: &str) -> Option<String> {
        let def = broker_config(name)?;
        match level {
            ConfigSource::DynamicBrokerConfig if def.dynamic => self.dynamic?.get(name).cloned(),
            ConfigSource::DynamicDefaultBrokerConfig if def.dynamic => self.dynamic_default?.get(name).cloned(),
            ConfigSource::StaticBrokerConfig => self.settings.get(name),
            ConfigSource::DefaultConfig => def.default.map(str::to_string),
            _ => None,
        }
    }

    /// The raw value of exactly `name` and its source, highest precedence
    /// first; None where nothing sets it and its default is null.
    pub fn lookup(&self, name: &str) -> Option<(String, ConfigSource)> {
        Self::LEVELS.iter().find_map(|&level| self.raw_at(level, name).map(|v| (v, level)))
    }

    /// The parsed value of exactly `name` (see [`BrokerConfigView::lookup`]);
    /// an unparsable stored value falls through to the next level.
    pub fn value(&self, name: &str) -> Option<ConfigValue> {
        let def = broker_config(name)?;
        Self::LEVELS
            .iter()
            .filter_map(|&level| self.raw_at(level, name))
            .find_map(|raw| parse_value(name, &raw, def.ty).ok())
    }

    fn int(&self, name: &str, fallback: i32) -> i32 {
        self.value(name).and_then(|v| v.as_i32()).unwrap_or(fallback)
    }

    fn long(&self, name: &str, fallback: i64) -> i64 {
        self.value(name).and_then(|v| v.as_i64()).unwrap_or(fallback)
    }

    fn boolean(&self, name: &str, fallback: bool) -> bool {
        self.value(name).and_then(|v| v.as_bool()).unwrap_or(fallback)
    }

    /// `node.id`.
    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    /// `num.partitions`.
    pub fn num_partitions(&self) -> i32 {
        self.int("num.partitions", 1)
    }

    /// `default.replication.factor`.
    pub fn default_replication_factor(&self) -> i32 {
        self.int("default.replication.factor", 1)
    }

    /// `auto.create.topics.enable`.
    pub fn auto_create_topics_enable(&self) -> bool {
        self.boolean("auto.create.topics.enable", true)
    }

    /// `socket.request.max.bytes`.
    pub fn socket_request_max_bytes(&self) -> i32 {
        self.int("socket.request.max.bytes", 104_857_600)
    }

    /// `message.max.bytes`.
    pub fn message_max_bytes(&self) -> i32 {
        self.int("message.max.bytes", 1_048_588)
    }

    /// `min.insync.replicas`.
    pub fn min_insync_replicas(&self) -> i32 {
        self.int("min.insync.replicas", 1)
    }

    /// `offsets.retention.minutes`.
    pub fn offsets_retention_minutes(&self) -> i32 {
        self.int("offsets.retention.minutes", 10_080)
    }

    /// `offsets.retention.minutes` in milliseconds.
    pub fn offsets_retention_ms(&self) -> i64 {
        i64::from(self.offsets_retention_minutes()) * 60_000
    }

    /// `log.retention.check.interval.ms`.
    pub fn log_retention_check_interval_ms(&self) -> i64 {
        self.long("log.retention.check.interval.ms", 300_000)
    }

    /// `producer.id.expiration.ms`.
    pub fn producer_id_expiration_ms(&self) -> i64 {
        i64::from(self.int("producer.id.expiration.ms", 86_400_000))
    }

    /// `offset.metadata.max.bytes`.
    pub fn offset_metadata_max_bytes(&self) -> i32 {
        self.int("offset.metadata.max.bytes", 4_096)
    }

    /// `offsets.retention.check.interval.ms`.
    pub fn offsets_retention_check_interval_ms(&self) -> i64 {
        self.long("offsets.retention.check.interval.ms", 600_000)
    }

    /// `group.initial.rebalance.delay.ms`.
    pub fn group_initial_rebalance_delay_ms(&self) -> i32 {
        self.int("group.initial.rebalance.delay.ms", 3_000)
    }

    /// `group.min.session.timeout.ms`.
    pub fn group_min_session_timeout_ms(&self) -> i32 {
        self.int("group.min.session.timeout.ms", 6_000)
    }

    /// `group.max.session.timeout.ms`.
    pub fn group_max_session_timeout_ms(&self) -> i32 {
        self.int("group.max.session.timeout.ms", 1_800_000)
    }

    /// `group.max.size`.
    pub fn group_max_size(&self) -> i32 {
        self.int("group.max.size", i32::MAX)
    }

    /// `transaction.max.timeout.ms`.
    pub fn transaction_max_timeout_ms(&self) -> i32 {
        self.int("transaction.max.timeout.ms", 900_000)
    }

    /// `strata.flush.bytes`.
    pub fn flush_bytes(&self) -> i64 {
        self.long("strata.flush.bytes", DEFAULT_FLUSH_BYTES)
    }

    /// `strata.flush.ms`.
    pub fn flush_ms(&self) -> i64 {
        self.long("strata.flush.ms", DEFAULT_FLUSH_MS)
    }

    /// The effective configuration of a topic with no overrides: the
    /// broker-level defaults after synonyms and unit conversion
    /// (`log.retention.hours=2` gives `retention_ms` 7200000).
    pub fn topic_defaults(&self) -> TopicConfig {
        TopicConfig::resolve(&BTreeMap::new(), self)
    }
}

/// Which broker resource a DescribeConfigs / AlterConfigs names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    /// This broker (resource name = its node id).
    Node,
    /// The cluster-wide default (empty resource name).
    ClusterDefault,
}

/// Checks a BROKER resource name against this broker's id, with Kafka's
/// messages (INVALID_REQUEST): `Broker id must be an integer, but it is: x`,
/// `Unexpected broker id, expected 1 or empty string, but received 2`.
pub fn check_broker_resource(resource_name: &str, node_id: i32) -> Result<BrokerScope, ConfigError> {
    if resource_name.is_empty() {
        return Ok(BrokerScope::ClusterDefault);
    }
    let id: i32 = resource_name.parse().map_err(|_| {
        ConfigError::invalid_request(format!("Broker id must be an integer, but it is: {resource_name}"))
    })?;
    if id != node_id {
        return Err(ConfigError::invalid_request(format!(
            "Unexpected broker id, expected {node_id} or empty string, but received {resource_name}"
        )));
    }
    Ok(BrokerScope::Node)
}
