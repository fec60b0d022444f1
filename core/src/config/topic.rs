//! Kafka's topic configs (Kafka 3.7 `LogConfig`) and their broker synonyms
//! (`ServerTopicConfigSynonyms`), and a topic's effective values.

use std::collections::BTreeMap;

use super::broker::{broker_config, BrokerConfigView};
use super::describe::ConfigSynonym;
use super::value::{parse_and_validate, parse_value, ConfigType, ConfigValue, Validator};
use super::{ConfigError, ConfigSource};

/// How a broker synonym's value converts to the topic config's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Same unit.
    Same,
    /// Minutes → milliseconds (`log.retention.minutes`).
    MinutesToMs,
    /// Hours → milliseconds (`log.retention.hours`, `log.roll.hours`, ...).
    HoursToMs,
}

/// A broker config that supplies a topic config's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synonym {
    /// Broker config name.
    pub name: &'static str,
    /// Conversion to the topic config's unit.
    pub unit: Unit,
}

const fn same(name: &'static str) -> Synonym {
    Synonym { name, unit: Unit::Same }
}

const fn hours(name: &'static str) -> Synonym {
    Synonym { name, unit: Unit::HoursToMs }
}

const fn minutes(name: &'static str) -> Synonym {
    Synonym { name, unit: Unit::MinutesToMs }
}

/// One topic config: Kafka's name, type, default, validator, the broker
/// configs it falls back to (highest priority first), and our short doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Kafka's type.
    pub ty: ConfigType,
    /// Kafka's default, in `convertToString` form.
    pub default: &'static str,
    /// Kafka's validator.
    pub validator: Validator,
    /// Broker synonyms in priority order (`ServerTopicConfigSynonyms`).
    pub synonyms: &'static [Synonym],
    /// Documentation (DescribeConfigs v3+).
    pub doc: &'static str,
}

impl TopicConfigDef {
    /// Parses and validates one value of this config.
    pub fn parse(&self, raw: &str) -> Result<ConfigValue, ConfigError> {
        parse_and_validate(self.name, raw, self.ty, self.validator)
    }

    /// Kafka's default, parsed.
    pub fn default_value(&self) -> ConfigValue {
        parse_value(self.name, self.default, self.ty).unwrap_or(ConfigValue::String(self.default.to_string()))
    }
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

macro_rules! topic {
    ($name:expr, $ty:ident, $default:expr, $validator:expr, [$($syn:expr),*], $doc:expr) => {
        TopicConfigDef {
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            validator: $validator,
            synonyms: &[$($syn),*],
            doc: $doc,
        }
    };
}

/// Every topic config of Kafka 3.7, sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic!("cleanup.policy", List, "delete", Validator::ListOf(CLEANUP_POLICIES), [same("log.cleanup.policy")],
        "\"delete\", \"compact\" or both: what happens to old data (retention limits, key-based compaction)."),
    topic!("compression.type", String, "producer", Validator::OneOf(COMPRESSION_TYPES), [same("compression.type")],
        "Final compression of the topic's batches: gzip, snappy, lz4, zstd, uncompressed, or producer (keep the producer's codec)."),
    topic!("delete.retention.ms", Long, "86400000", Validator::AtLeast(0), [same("log.cleaner.delete.retention.ms")],
        "How long delete tombstones stay in a compacted topic."),
    topic!("file.delete.delay.ms", Long, "60000", Validator::AtLeast(0), [same("log.segment.delete.delay.ms")],
        "Delay before deleting data that retention removed."),
    topic!("flush.messages", Long, LONG_MAX, Validator::AtLeast(1), [same("log.flush.interval.messages")],
        "Accepted for compatibility; Strata's durability comes from the object store."),
    topic!("flush.ms", Long, LONG_MAX, Validator::AtLeast(0), [same("log.flush.interval.ms"), same("log.flush.scheduler.interval.ms")],
        "Accepted for compatibility; Strata's durability comes from the object store."),
    topic!("follower.replication.throttled.replicas", List, "", Validator::ThrottledReplicas, [],
        "Replicas to throttle on the follower side: '*' or partition:broker pairs. Accepted, not used."),
    topic!("index.interval.bytes", Int, "4096", Validator::AtLeast(0), [same("log.index.interval.bytes")],
        "Bytes between offset index entries."),
    topic!("leader.replication.throttled.replicas", List, "", Validator::ThrottledReplicas, [],
        "Replicas to throttle on the leader side: '*' or partition:broker pairs. Accepted, not used."),
    topic!("local.retention.bytes", Long, "-2", Validator::AtLeast(-2), [same("log.local.retention.bytes")],
        "Tiered storage: local size limit per partition; -2 means retention.bytes."),
    topic!("local.retention.ms", Long, "-2", Validator::AtLeast(-2), [same("log.local.retention.ms")],
        "Tiered storage: local time limit; -2 means retention.ms."),
    topic!("max.compaction.lag.ms", Long, LONG_MAX, Validator::AtLeast(1), [same("log.cleaner.max.compaction.lag.ms")],
        "Longest time a record stays ineligible for compaction."),
    topic!("max.message.bytes", Int, "1048588", Validator::AtLeast(0), [same("message.max.bytes")],
        "Largest record batch the topic accepts (after compression)."),
    topic!("message.downconversion.enable", Boolean, "true", Validator::None, [same("log.message.downconversion.enable")],
        "Whether fetches from old clients may down-convert record batches."),
    topic!("message.format.version", String, "3.0-IV1", Validator::MetadataVersion, [same("log.message.format.version")],
        "Deprecated; ignored (the format is always v2)."),
    topic!("message.timestamp.after.max.ms", Long, LONG_MAX, Validator::AtLeast(0), [same("log.message.timestamp.after.max.ms")],
        "How far in the future a CreateTime timestamp may be."),
    topic!("message.timestamp.before.max.ms", Long, LONG_MAX, Validator::AtLeast(0), [same("log.message.timestamp.before.max.ms")],
        "How far in the past a CreateTime timestamp may be."),
    topic!("message.timestamp.difference.max.ms", Long, LONG_MAX, Validator::AtLeast(0), [same("log.message.timestamp.difference.max.ms")],
        "Deprecated: largest difference between a CreateTime timestamp and the broker's clock."),
    topic!("message.timestamp.type", String, "CreateTime", Validator::OneOf(TIMESTAMP_TYPES), [same("log.message.timestamp.type")],
        "CreateTime (the producer's timestamp) or LogAppendTime (the broker's)."),
    topic!("min.cleanable.dirty.ratio", Double, "0.5", Validator::Between(0, 1), [same("log.cleaner.min.cleanable.ratio")],
        "Dirty fraction of the log above which compaction runs."),
    topic!("min.compaction.lag.ms", Long, "0", Validator::AtLeast(0), [same("log.cleaner.min.compaction.lag.ms")],
        "Shortest time a record stays uncompacted."),
    topic!("min.insync.replicas", Int, "1", Validator::AtLeast(1), [same("min.insync.replicas")],
        "Minimum replicas acknowledging an acks=all write; Strata writes are durable once acknowledged."),
    topic!("preallocate", Boolean, "false", Validator::None, [same("log.preallocate")],
        "Accepted for compatibility; no effect in Strata."),
    topic!("remote.storage.enable", Boolean, "false", Validator::None, [],
        "Kafka tiered storage; not available (Strata keeps all data in object storage)."),
    topic!("retention.bytes", Long, "-1", Validator::None, [same("log.retention.bytes")],
        "Largest size of a partition before old data is deleted; -1 for no limit."),
    topic!("retention.ms", Long, "604800000", Validator::AtLeast(-1),
        [same("log.retention.ms"), minutes("log.retention.minutes"), hours("log.retention.hours")],
        "How long data is kept before deletion; -1 for no limit."),
    topic!("segment.bytes", Int, "1073741824", Validator::AtLeast(14), [same("log.segment.bytes")],
        "Target size of a compacted segment object."),
    topic!("segment.index.bytes", Int, "10485760", Validator::AtLeast(4), [same("log.index.size.max.bytes")],
        "Size of a segment's offset index."),
    topic!("segment.jitter.ms", Long, "0", Validator::AtLeast(0), [same("log.roll.jitter.ms"), hours("log.roll.jitter.hours")],
        "Largest random jitter subtracted from segment.ms."),
    topic!("segment.ms", Long, "604800000", Validator::AtLeast(1), [same("log.roll.ms"), hours("log.roll.hours")],
        "Time after which a segment is rolled even if not full."),
    topic!("unclean.leader.election.enable", Boolean, "false", Validator::None, [same("unclean.leader.election.enable")],
        "Accepted for compatibility; Strata has no leaders to elect."),
];

/// The topic config named `name`.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.binary_search_by(|d| d.name.cmp(name)).ok().map(|i| &TOPIC_CONFIGS[i])
}

/// Where an effective topic value came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// The effective value, in the topic config's type and unit.
    pub value: ConfigValue,
    /// Its source.
    pub source: ConfigSource,
    /// Every place that sets it, highest precedence first (Kafka's order:
    /// topic; then per source level dynamic broker, dynamic default, static,
    /// default; within a level, synonyms in priority order).
    pub synonyms: Vec<ConfigSynonym>,
}

/// Converts a broker synonym's parsed value into the topic config's type and unit.
fn convert(def: &TopicConfigDef, syn: &Synonym, v: &ConfigValue) -> Option<ConfigValue> {
    let factor: i64 = match syn.unit {
        Unit::Same => 1,
        Unit::MinutesToMs => 60_000,
        Unit::HoursToMs => 3_600_000,
    };
    let mut out = match def.ty {
        ConfigType::Long => ConfigValue::Long(v.as_i64()?.saturating_mul(factor)),
        ConfigType::Int => ConfigValue::Int(i32::try_from(v.as_i64()?.saturating_mul(factor)).ok()?),
        _ if factor == 1 => match (def.ty, v) {
            (ConfigType::Double, other) => ConfigValue::Double(other.as_f64()?),
            (_, other) => other.clone(),
        },
        _ => return None,
    };
    // Kafka's `KafkaConfig.logRetentionTimeMillis`: a negative broker retention means -1.
    if def.name == "retention.ms" {
        if let ConfigValue::Long(ms) = out {
            if ms < 0 {
                out = ConfigValue::Long(-1);
            }
        }
    }
    Some(out)
}

/// Resolves one topic config for a topic with `overrides` on `broker`.
pub(crate) fn resolve(def: &TopicConfigDef, overrides: &BTreeMap<String, String>, broker: &BrokerConfigView<'_>) -> Resolved {
    let mut synonyms = Vec::new();
    let mut effective: Option<(ConfigValue, ConfigSource)> = None;

    if let Some(raw) = overrides.get(def.name) {
        if let Ok(v) = parse_value(def.name, raw, def.ty) {
            synonyms.push(ConfigSynonym {
                name: def.name,
                value: Some(v.to_kafka_string()),
                source: ConfigSource::TopicConfig,
            });
            effective = Some((v, ConfigSource::TopicConfig));
        }
    }

    for level in BrokerConfigView::LEVELS {
        for syn in def.synonyms {
            let Some(bdef) = broker_config(syn.name) else { continue };
            let Some(raw) = broker.raw_at(level, syn.name) else { continue };
            let Ok(bv) = parse_value(syn.name, &raw, bdef.ty) else { continue };
            let Some(tv) = convert(def, syn, &bv) else { continue };
            synonyms.push(ConfigSynonym { name: syn.name, value: Some(raw), source: level });
            if effective.is_none() {
                effective = Some((tv, level));
            }
        }
    }

    let (value, source) = effective.unwrap_or_else(|| (def.default_value(), ConfigSource::DefaultConfig));
    Resolved { value, source, synonyms }
}

/// The effective value of topic config `name` (None for an unknown name).
pub fn effective_value(name: &str, overrides: &BTreeMap<String, String>, broker: &BrokerConfigView<'_>) -> Option<ConfigValue> {
    topic_config(name).map(|def| resolve(def, overrides, broker).value)
}

/// `cleanup.policy`, as the two flags Kafka derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    /// Key-based compaction.
    pub compact: bool,
    /// Time/size-based deletion.
    pub delete: bool,
}

impl CleanupPolicy {
    /// From the list value (Kafka lower-cases each element).
    pub fn from_list(list: &[String]) -> CleanupPolicy {
        CleanupPolicy {
            compact: list.iter().any(|s| s.eq_ignore_ascii_case("compact")),
            delete: list.iter().any(|s| s.eq_ignore_ascii_case("delete")),
        }
    }
}

/// `compression.type` (Kafka's `BrokerCompressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep the producer's codec.
    Producer,
    /// Store uncompressed.
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    /// From Kafka's name, case-insensitively (as `BrokerCompressionType.forName`).
    pub fn from_name(name: &str) -> Option<CompressionType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp.
    CreateTime,
    /// The broker's append time.
    LogAppendTime,
}

impl TimestampType {
    /// From Kafka's name (`CreateTime`, `LogAppendTime`).
    pub fn from_name(name: &str) -> Option<TimestampType> {
        match name {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// A topic's effective configuration, typed (Kafka's `LogConfig` fields).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `segment.bytes`.
    pub segment_bytes: i32,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: i32,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `retention.bytes` (-1: no limit).
    pub retention_bytes: i64,
    /// `retention.ms` (-1: no limit).
    pub retention_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `index.interval.bytes`.
    pub index_interval_bytes: i32,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `file.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `preallocate`.
    pub preallocate: bool,
    /// `message.format.version` (ignored).
    pub message_format_version: String,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.difference.max.ms` as set (deprecated).
    pub message_timestamp_difference_max_ms: i64,
    /// Effective `message.timestamp.before.max.ms`: its value, or
    /// `message.timestamp.difference.max.ms` while it is left at Long.MAX (Kafka 3.7).
    pub message_timestamp_before_max_ms: i64,
    /// Effective `message.timestamp.after.max.ms`, with the same fallback.
    pub message_timestamp_after_max_ms: i64,
    /// `message.downconversion.enable`.
    pub message_downconversion_enable: bool,
    /// `remote.storage.enable`.
    pub remote_storage_enable: bool,
    /// Effective `local.retention.ms` (-2 resolved to `retention.ms`).
    pub local_retention_ms: i64,
    /// Effective `local.retention.bytes` (-2 resolved to `retention.bytes`).
    pub local_retention_bytes: i64,
    /// `leader.replication.throttled.replicas`.
    pub leader_replication_throttled_replicas: Vec<String>,
    /// `follower.replication.throttled.replicas`.
    pub follower_replication_throttled_replicas: Vec<String>,
}

impl TopicConfig {
    /// The effective configuration of a topic with explicit `overrides` on `broker`.
    /// Unknown or unparsable overrides are ignored (they are refused on write).
    pub fn resolve(overrides: &BTreeMap<String, String>, broker: &BrokerConfigView<'_>) -> TopicConfig {
        let get = |name: &str| -> ConfigValue {
            match topic_config(name) {
                Some(def) => resolve(def, overrides, broker).value,
                None => ConfigValue::Long(0),
            }
        };
        let long = |name: &str| get(name).as_i64().unwrap_or(0);
        let int = |name: &str| get(name).as_i32().unwrap_or(0);
        let boolean = |name: &str| get(name).as_bool().unwrap_or(false);
        let list = |name: &str| get(name).as_list().map(<[String]>::to_vec).unwrap_or_default();
        let string = |name: &str| get(name).as_str().map(str::to_string).unwrap_or_default();

        let difference = long("message.timestamp.difference.max.ms");
        let before = long("message.timestamp.before.max.ms");
        let after = long("message.timestamp.after.max.ms");
        let retention_ms = long("retention.ms");
        let retention_bytes = long("retention.bytes");
        let local_ms = long("local.retention.ms");
        let local_bytes = long("local.retention.bytes");

        TopicConfig {
            segment_bytes: int("segment.bytes"),
            segment_ms: long("segment.ms"),
            segment_jitter_ms: long("segment.jitter.ms"),
            segment_index_bytes: int("segment.index.bytes"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            retention_bytes,
            retention_ms,
            max_message_bytes: int("max.message.bytes"),
            index_interval_bytes: int("index.interval.bytes"),
            delete_retention_ms: long("delete.retention.ms"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            file_delete_delay_ms: long("file.delete.delay.ms"),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").as_f64().unwrap_or(0.5),
            cleanup_policy: CleanupPolicy::from_list(&list("cleanup.policy")),
            unclean_leader_election_enable: boolean("unclean.leader.election.enable"),
            min_insync_replicas: int("min.insync.replicas"),
            compression_type: CompressionType::from_name(&string("compression.type"))
                .unwrap_or(CompressionType::Producer),
            preallocate: boolean("preallocate"),
            message_format_version: string("message.format.version"),
            message_timestamp_type: TimestampType::from_name(&string("message.timestamp.type"))
                .unwrap_or(TimestampType::CreateTime),
            message_timestamp_difference_max_ms: difference,
            message_timestamp_before_max_ms: if before != i64::MAX { before } else { difference },
            message_timestamp_after_max_ms: if after != i64::MAX { after } else { difference },
            message_downconversion_enable: boolean("message.downconversion.enable"),
            remote_storage_enable: boolean("remote.storage.enable"),
            local_retention_ms: if local_ms == -2 { retention_ms } else { local_ms },
            local_retention_bytes: if local_bytes == -2 { retention_bytes } else { local_bytes },
            leader_replication_throttled_replicas: list("leader.replication.throttled.replicas"),
            follower_replication_throttled_replicas: list("follower.replication.throttled.replicas"),
        }
    }

    /// Whether `cleanup.policy` includes `compact`.
    pub fn is_compacted(&self) -> bool {
        self.cleanup_policy.compact
    }

    /// Whether `cleanup.policy` includes `delete`.
    pub fn deletes(&self) -> bool {
        self.cleanup_policy.delete
    }
}
