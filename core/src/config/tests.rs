use std::collections::BTreeMap;

use super::value::{java_double_to_string, parse_value};
use super::*;
use crate::error_code::{INVALID_CONFIG, INVALID_REQUEST};

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn entry<'a>(entries: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
    entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no entry {name}"))
}

fn syn(name: &'static str, value: &str, source: ConfigSource) -> ConfigSynonym {
    ConfigSynonym { name, value: Some(value.to_string()), source }
}

fn err(code: i16, message: &str) -> ConfigError {
    ConfigError::new(code, message)
}

// ---------- tables ----------

#[test]
fn tables_are_sorted_and_unique() {
    assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
    assert!(BROKER_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(TOPIC_CONFIGS.len(), 31);
    for def in TOPIC_CONFIGS {
        assert_eq!(topic_config(def.name), Some(def));
    }
    for def in BROKER_CONFIGS {
        assert_eq!(broker_config(def.name), Some(def));
    }
    assert!(topic_config("log.retention.ms").is_none());
    assert!(broker_config("retention.ms").is_none());
}

#[test]
fn every_default_parses_and_validates() {
    for def in TOPIC_CONFIGS {
        let v = def.parse(def.default).unwrap_or_else(|e| panic!("{}: {e}", def.name));
        assert_eq!(v.to_kafka_string(), def.default, "{} default is not canonical", def.name);
        assert!(!def.doc.is_empty());
    }
    for def in BROKER_CONFIGS {
        if let Some(d) = def.default {
            let v = def.parse(d).unwrap_or_else(|e| panic!("{}: {e}", def.name));
            assert_eq!(v.to_kafka_string(), d, "{} default is not canonical", def.name);
        }
        assert!(!def.doc.is_empty());
    }
}

#[test]
fn every_synonym_is_a_broker_config_whose_default_gives_the_topic_default() {
    let settings = BrokerSettings::new(1);
    let broker = BrokerConfigView::new(&settings);
    for def in TOPIC_CONFIGS {
        for s in def.synonyms {
            let b = broker_config(s.name).unwrap_or_else(|| panic!("{} -> {}", def.name, s.name));
            if s.unit == Unit::Same {
                assert!(b.ty == def.ty || matches!((b.ty, def.ty), (ConfigType::Int, ConfigType::Long)));
            }
        }
        // The broker-side defaults resolve to exactly Kafka's topic default.
        let d = describe_topic(&BTreeMap::new(), &broker, Some(&[def.name.to_string()]), true, false);
        assert_eq!(d[0].value.as_deref(), Some(def.default), "{}", def.name);
    }
    // Kafka's CONFIGS_WITH_NO_SERVER_DEFAULTS.
    let without: Vec<&str> = TOPIC_CONFIGS.iter().filter(|d| d.synonyms.is_empty()).map(|d| d.name).collect();
    assert_eq!(
        without,
        ["follower.replication.throttled.replicas", "leader.replication.throttled.replicas", "remote.storage.enable"]
    );
}

#[test]
fn dynamic_broker_configs_are_the_primary_synonyms_strata_flush_and_producer_expiry() {
    let mut primaries: Vec<&str> = TOPIC_CONFIGS
        .iter()
        .filter_map(|d| d.synonyms.first().map(|s| s.name))
        .filter(|n| *n != "log.message.format.version")
        .collect();
    primaries.extend(["strata.flush.bytes", "strata.flush.ms", "producer.id.expiration.ms"]);
    primaries.sort_unstable();
    let dynamic: Vec<&str> = BROKER_CONFIGS.iter().filter(|d| d.dynamic).map(|d| d.name).collect();
    assert_eq!(dynamic, primaries);
}

// ---------- defaults ----------

#[test]
fn every_topic_default_resolves() {
    let settings = BrokerSettings::new(1);
    let broker = BrokerConfigView::new(&settings);
    let t = TopicConfig::resolve(&BTreeMap::new(), &broker);
    assert_eq!(t.segment_bytes, 1_073_741_824);
    assert_eq!(t.segment_ms, 604_800_000);
    assert_eq!(t.segment_jitter_ms, 0);
    assert_eq!(t.segment_index_bytes, 10_485_760);
    assert_eq!(t.flush_messages, i64::MAX);
    assert_eq!(t.flush_ms, i64::MAX);
    assert_eq!(t.retention_bytes, -1);
    assert_eq!(t.retention_ms, 604_800_000);
    assert_eq!(t.max_message_bytes, 1_048_588);
    assert_eq!(t.index_interval_bytes, 4096);
    assert_eq!(t.delete_retention_ms, 86_400_000);
    assert_eq!(t.min_compaction_lag_ms, 0);
    assert_eq!(t.max_compaction_lag_ms, i64::MAX);
    assert_eq!(t.file_delete_delay_ms, 60_000);
    assert_eq!(t.min_cleanable_dirty_ratio, 0.5);
    assert_eq!(t.cleanup_policy, CleanupPolicy { compact: false, delete: true });
    assert!(!t.unclean_leader_election_enable);
    assert_eq!(t.min_insync_replicas, 1);
    assert_eq!(t.compression_type, CompressionType::Producer);
    assert!(!t.preallocate);
    assert_eq!(t.message_format_version, "3.0-IV1");
    assert_eq!(t.message_timestamp_type, TimestampType::CreateTime);
    assert_eq!(t.message_timestamp_difference_max_ms, i64::MAX);
    assert_eq!(t.message_timestamp_before_max_ms, i64::MAX);
    assert_eq!(t.message_timestamp_after_max_ms, i64::MAX);
    assert!(t.message_downconversion_enable);
    assert!(!t.remote_storage_enable);
    assert_eq!(t.local_retention_ms, 604_800_000);
    assert_eq!(t.local_retention_bytes, -1);
    assert!(t.leader_replication_throttled_replicas.is_empty());
    assert!(t.follower_replication_throttled_replicas.is_empty());
    assert_eq!(broker.topic_defaults(), t);

    let d = describe_topic(&BTreeMap::new(), &broker, None, true, true);
    assert_eq!(d.len(), TOPIC_CONFIGS.len());
    assert!(d.windows(2).all(|w| w[0].name < w[1].name));
    for e in &d {
        assert_eq!(e.source, ConfigSource::DefaultConfig, "{}", e.name);
        assert!(e.is_default && !e.read_only && !e.sensitive);
        assert!(e.documentation.is_some());
        assert!(e.synonyms.iter().all(|s| s.source == ConfigSource::DefaultConfig));
    }
    let seg = entry(&d, "segment.bytes");
    assert_eq!(seg.synonyms, vec![syn("log.segment.bytes", "1073741824", ConfigSource::DefaultConfig)]);
    assert_eq!(seg.config_type_id(), 3);
    assert_eq!(seg.source_id(), 5);
    let ret = entry(&d, "retention.ms");
    assert_eq!(ret.value.as_deref(), Some("604800000"));
    assert_eq!(ret.synonyms, vec![syn("log.retention.hours", "168", ConfigSource::DefaultConfig)]);
    assert!(entry(&d, "remote.storage.enable").synonyms.is_empty());
    assert_eq!(entry(&d, "cleanup.policy").config_type, ConfigType::List);
    assert_eq!(entry(&d, "min.cleanable.dirty.ratio").config_type_id(), 6);
}

#[test]
fn broker_defaults_and_typed_accessors() {
    let settings = BrokerSettings::new(7);
    let b = BrokerConfigView::new(&settings);
    assert_eq!(b.node_id(), 7);
    assert_eq!(b.num_partitions(), 1);
    assert_eq!(b.default_replication_factor(), 1);
    assert!(b.auto_create_topics_enable());
    assert_eq!(b.socket_request_max_bytes(), 104_857_600);
    assert_eq!(b.message_max_bytes(), 1_048_588);
    assert_eq!(b.min_insync_replicas(), 1);
    assert_eq!(b.offsets_retention_minutes(), 10_080);
    assert_eq!(b.offsets_retention_ms(), 604_800_000);
    assert_eq!(b.group_initial_rebalance_delay_ms(), 3_000);
    assert_eq!(b.group_min_session_timeout_ms(), 6_000);
    assert_eq!(b.group_max_session_timeout_ms(), 1_800_000);
    assert_eq!(b.group_max_size(), i32::MAX);
    assert_eq!(b.transaction_max_timeout_ms(), 900_000);
    assert_eq!(b.flush_bytes(), 4 * 1024 * 1024);
    assert_eq!(b.flush_ms(), 250);
    assert_eq!(b.lookup("log.retention.ms"), None);
    assert_eq!(b.lookup("node.id"), Some(("7".to_string(), ConfigSource::StaticBrokerConfig)));
}

// ---------- synonyms and sources ----------

#[test]
fn topic_override_then_dynamic_then_static_then_default() {
    let settings = BrokerSettings::new(1).with("log.segment.bytes", "536870912").unwrap();
    let dynamic = map(&[("log.segment.bytes", "268435456")]);
    let cluster = map(&[("log.segment.bytes", "134217728")]);

    // Static only.
    let b = BrokerConfigView::new(&settings);
    let d = describe_topic(&BTreeMap::new(), &b, None, true, false);
    let e = entry(&d, "segment.bytes");
    assert_eq!(e.value.as_deref(), Some("536870912"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    assert!(!e.is_default);
    assert_eq!(
        e.synonyms,
        vec![
            syn("log.segment.bytes", "536870912", ConfigSource::StaticBrokerConfig),
            syn("log.segment.bytes", "1073741824", ConfigSource::DefaultConfig),
        ]
    );

    // All levels, plus a topic override.
    let b = BrokerConfigView::new(&settings).with_dynamic(&dynamic).with_cluster_default(&cluster);
    let overrides = map(&[("segment.bytes", " 1048576 ")]);
    let d = describe_topic(&overrides, &b, Some(&["segment.bytes".to_string()]), true, false);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].value.as_deref(), Some("1048576"));
    assert_eq!(d[0].source, ConfigSource::TopicConfig);
    assert_eq!(
        d[0].synonyms,
        vec![
            syn("segment.bytes", "1048576", ConfigSource::TopicConfig),
            syn("log.segment.bytes", "268435456", ConfigSource::DynamicBrokerConfig),
            syn("log.segment.bytes", "134217728", ConfigSource::DynamicDefaultBrokerConfig),
            syn("log.segment.bytes", "536870912", ConfigSource::StaticBrokerConfig),
            syn("log.segment.bytes", "1073741824", ConfigSource::DefaultConfig),
        ]
    );

    // Without the topic override the dynamic per-broker value wins.
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["segment.bytes".to_string()]), false, false);
    assert_eq!(d[0].value.as_deref(), Some("268435456"));
    assert_eq!(d[0].source, ConfigSource::DynamicBrokerConfig);
    assert!(d[0].synonyms.is_empty(), "synonyms only when asked for");

    // Only the cluster default.
    let empty = BTreeMap::new();
    let b = BrokerConfigView::new(&settings).with_dynamic(&empty).with_cluster_default(&cluster);
    assert_eq!(TopicConfig::resolve(&BTreeMap::new(), &b).segment_bytes, 134_217_728);
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["segment.bytes".to_string()]), false, false);
    assert_eq!(d[0].source, ConfigSource::DynamicDefaultBrokerConfig);
}

#[test]
fn retention_hours_converts_to_ms_with_static_source() {
    let settings = BrokerSettings::new(1).with("log.retention.hours", "2").unwrap();
    let b = BrokerConfigView::new(&settings);
    assert_eq!(TopicConfig::resolve(&BTreeMap::new(), &b).retention_ms, 7_200_000);
    assert_eq!(b.topic_defaults().retention_ms, 7_200_000);
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["retention.ms".to_string()]), true, false);
    assert_eq!(d[0].value.as_deref(), Some("7200000"));
    assert_eq!(d[0].source, ConfigSource::StaticBrokerConfig);
    assert_eq!(
        d[0].synonyms,
        vec![
            syn("log.retention.hours", "2", ConfigSource::StaticBrokerConfig),
            syn("log.retention.hours", "168", ConfigSource::DefaultConfig),
        ]
    );
}

#[test]
fn retention_synonym_priority_and_units() {
    // minutes beat hours at the same level.
    let settings = BrokerSettings::new(1)
        .with("log.retention.hours", "2")
        .unwrap()
        .with("log.retention.minutes", "3")
        .unwrap();
    let b = BrokerConfigView::new(&settings);
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["retention.ms".to_string()]), true, false);
    assert_eq!(d[0].value.as_deref(), Some("180000"));
    assert_eq!(
        d[0].synonyms,
        vec![
            syn("log.retention.minutes", "3", ConfigSource::StaticBrokerConfig),
            syn("log.retention.hours", "2", ConfigSource::StaticBrokerConfig),
            syn("log.retention.hours", "168", ConfigSource::DefaultConfig),
        ]
    );
    // A dynamic log.retention.ms beats every static synonym.
    let dynamic = map(&[("log.retention.ms", "1000")]);
    let b = BrokerConfigView::new(&settings).with_dynamic(&dynamic);
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["retention.ms".to_string()]), true, false);
    assert_eq!(d[0].value.as_deref(), Some("1000"));
    assert_eq!(d[0].source, ConfigSource::DynamicBrokerConfig);
    assert_eq!(d[0].synonyms[0], syn("log.retention.ms", "1000", ConfigSource::DynamicBrokerConfig));
    // A negative broker retention means "forever" (-1), as KafkaConfig does.
    let settings = BrokerSettings::new(1).with("log.retention.hours", "-1").unwrap();
    assert_eq!(BrokerConfigView::new(&settings).topic_defaults().retention_ms, -1);
    // Roll hours and flush fallback.
    let settings = BrokerSettings::new(1)
        .with("log.roll.hours", "1")
        .unwrap()
        .with("log.flush.scheduler.interval.ms", "5000")
        .unwrap();
    let t = BrokerConfigView::new(&settings).topic_defaults();
    assert_eq!(t.segment_ms, 3_600_000);
    assert_eq!(t.flush_ms, 5000);
}

#[test]
fn dynamic_non_dynamic_keys_are_ignored_by_the_view() {
    // A dynamic map holding a read-only key (not writable through our
    // validation, but maybe through an old state) does not take effect.
    let settings = BrokerSettings::new(1);
    let dynamic = map(&[("log.retention.hours", "1"), ("num.partitions", "9")]);
    let b = BrokerConfigView::new(&settings).with_dynamic(&dynamic);
    assert_eq!(b.num_partitions(), 1);
    assert_eq!(b.topic_defaults().retention_ms, 604_800_000);
}

// ---------- validation ----------

#[test]
fn validation_messages_match_kafka() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let check = |k: &str, v: &str| validate_topic_overrides(&map(&[(k, v)]), &b);

    assert_eq!(
        check("retention.ms", "abc"),
        Err(err(INVALID_CONFIG, "Invalid value abc for configuration retention.ms: Not a number of type LONG"))
    );
    assert_eq!(
        check("segment.bytes", "1.5"),
        Err(err(INVALID_CONFIG, "Invalid value 1.5 for configuration segment.bytes: Not a number of type INT"))
    );
    assert_eq!(
        check("retention.ms", "-5"),
        Err(err(INVALID_CONFIG, "Invalid value -5 for configuration retention.ms: Value must be at least -1"))
    );
    assert_eq!(
        check("segment.bytes", "10"),
        Err(err(INVALID_CONFIG, "Invalid value 10 for configuration segment.bytes: Value must be at least 14"))
    );
    assert_eq!(
        check("cleanup.policy", "compact,foo"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete"
        ))
    );
    // Case rules: string values are case-sensitive, booleans are not.
    assert_eq!(
        check("cleanup.policy", "Compact"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value Compact for configuration cleanup.policy: String must be one of: compact, delete"
        ))
    );
    assert_eq!(
        check("compression.type", "GZIP"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value GZIP for configuration compression.type: String must be one of: \
             uncompressed, zstd, lz4, snappy, gzip, producer"
        ))
    );
    assert_eq!(
        check("message.timestamp.type", "createtime"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value createtime for configuration message.timestamp.type: String must be one of: \
             CreateTime, LogAppendTime"
        ))
    );
    assert_eq!(check("preallocate", "TRUE"), Ok(()));
    assert_eq!(
        check("preallocate", "yes"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value yes for configuration preallocate: Expected value to be either true or false"
        ))
    );
    assert_eq!(
        check("min.cleanable.dirty.ratio", "1.5"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        ))
    );
    assert_eq!(
        check("min.cleanable.dirty.ratio", "2"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        ))
    );
    assert_eq!(
        check("message.format.version", "9.9"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value 9.9 for configuration message.format.version: Version 9.9 is not a valid version"
        ))
    );
    assert_eq!(check("message.format.version", "2.8.1"), Ok(()));
    assert_eq!(check("message.format.version", "0.10.0-IV1"), Ok(()));
    assert_eq!(check("leader.replication.throttled.replicas", "0:1, 1:2"), Ok(()));
    assert_eq!(check("leader.replication.throttled.replicas", "*"), Ok(()));
    assert_eq!(
        check("follower.replication.throttled.replicas", "0-1"),
        Err(err(
            INVALID_CONFIG,
            "Invalid value [0-1] for configuration follower.replication.throttled.replicas: \
             follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the \
             following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
        ))
    );
    assert_eq!(check("retention.ms", " 1000 "), Ok(()));
    assert_eq!(check("cleanup.policy", ""), Ok(()));
}

#[test]
fn unknown_names_and_cross_checks() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    assert_eq!(
        validate_topic_overrides(&map(&[("retention.ms", "1"), ("x", "1")]), &b),
        Err(err(INVALID_CONFIG, "Unknown topic config name: x"))
    );
    // Names are checked before values.
    assert_eq!(
        validate_topic_overrides(&map(&[("a.bad.value", "1"), ("retention.ms", "abc")]), &b),
        Err(err(INVALID_CONFIG, "Unknown topic config name: a.bad.value"))
    );
    assert_eq!(
        validate_topic_overrides(&map(&[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")]), &b),
        Err(err(
            INVALID_CONFIG,
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"
        ))
    );
    // The conflict check uses effective values, broker defaults included.
    let settings = BrokerSettings::new(1).with("log.cleaner.max.compaction.lag.ms", "100").unwrap();
    let b2 = BrokerConfigView::new(&settings);
    assert!(validate_topic_overrides(&map(&[("min.compaction.lag.ms", "200")]), &b2).is_err());
    assert_eq!(
        validate_topic_overrides(&map(&[("remote.storage.enable", "true")]), &b),
        Err(err(
            INVALID_CONFIG,
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
        ))
    );
    assert_eq!(validate_topic_overrides(&map(&[("remote.storage.enable", "false")]), &b), Ok(()));
    assert_eq!(effective_value("nope", &BTreeMap::new(), &b), None);
    assert_eq!(
        BrokerSettings::new(1).with("log.retention.hourz", "1"),
        Err(err(INVALID_CONFIG, "Unknown broker config name: log.retention.hourz"))
    );
    assert_eq!(
        BrokerSettings::new(1).with("num.partitions", "0"),
        Err(err(INVALID_CONFIG, "Invalid value 0 for configuration num.partitions: Value must be at least 1"))
    );
}

#[test]
fn create_topic_configs_rules() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let c = |n: &str, v: Option<&str>| (n.to_string(), v.map(str::to_string));
    assert_eq!(
        create_topic_configs(&[c("segment.bytes", None), c("retention.ms", Some("1")), c("segment.ms", None)], &b),
        Err(err(INVALID_CONFIG, "Null value not supported for topic configs: segment.bytes,segment.ms"))
    );
    assert_eq!(
        create_topic_configs(&[c("retention.ms", Some("1")), c("retention.ms", Some("2"))], &b),
        Ok(map(&[("retention.ms", "2")]))
    );
    assert_eq!(
        create_topic_configs(&[c("retention.ms", Some("abc"))], &b),
        Err(err(INVALID_CONFIG, "Invalid value abc for configuration retention.ms: Not a number of type LONG"))
    );
}

// ---------- alter ----------

#[test]
fn incremental_set_delete_and_list_ops() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let op = AlterConfigOp::new;

    let current = map(&[("retention.ms", "1000")]);
    let new = incremental_alter_topic(
        &current,
        &[op("retention.ms", AlterOp::Delete, None), op("cleanup.policy", AlterOp::Append, Some("compact"))],
        &b,
    )
    .unwrap();
    // APPEND on an unset list starts from Kafka's default ("delete").
    assert_eq!(new, map(&[("cleanup.policy", "delete,compact")]));
    assert_eq!(TopicConfig::resolve(&new, &b).cleanup_policy, CleanupPolicy { compact: true, delete: true });

    let new = incremental_alter_topic(&new, &[op("cleanup.policy", AlterOp::Subtract, Some("delete"))], &b).unwrap();
    assert_eq!(new, map(&[("cleanup.policy", "compact")]));
    // Appending what is there changes nothing.
    let same = incremental_alter_topic(&new, &[op("cleanup.policy", AlterOp::Append, Some("compact"))], &b).unwrap();
    assert_eq!(same, new);
    // Subtracting everything leaves an empty (valid) list.
    let empty = incremental_alter_topic(&new, &[op("cleanup.policy", AlterOp::Subtract, Some("compact"))], &b).unwrap();
    assert_eq!(empty, map(&[("cleanup.policy", "")]));
    assert_eq!(TopicConfig::resolve(&empty, &b).cleanup_policy, CleanupPolicy::default());
    // APPEND a bad element: the result fails validation.
    assert_eq!(
        incremental_alter_topic(&new, &[op("cleanup.policy", AlterOp::Append, Some("foo"))], &b),
        Err(err(
            INVALID_CONFIG,
            "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete"
        ))
    );

    // SET, then DELETE of an unset or unknown key is a no-op.
    let new = incremental_alter_topic(
        &BTreeMap::new(),
        &[op("retention.ms", AlterOp::Set, Some("3600000")), op("not.a.config", AlterOp::Delete, None)],
        &b,
    )
    .unwrap();
    assert_eq!(new, map(&[("retention.ms", "3600000")]));
    assert_eq!(TopicConfig::resolve(&new, &b).retention_ms, 3_600_000);
}

#[test]
fn incremental_errors() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let op = AlterConfigOp::new;
    let none = BTreeMap::new();

    assert_eq!(
        incremental_alter_topic(&none, &[op("retention.ms", AlterOp::Append, Some("1"))], &b),
        Err(err(INVALID_CONFIG, "Can't APPEND to key retention.ms because its type is not LIST."))
    );
    assert_eq!(
        incremental_alter_topic(&none, &[op("segment.ms", AlterOp::Subtract, Some("1"))], &b),
        Err(err(INVALID_CONFIG, "Can't SUBTRACT to key segment.ms because its type is not LIST."))
    );
    assert_eq!(
        incremental_alter_topic(&none, &[op("foo", AlterOp::Append, Some("1"))], &b),
        Err(err(INVALID_CONFIG, "Can't APPEND to key foo because its type is not LIST."))
    );
    assert_eq!(
        incremental_alter_topic(&none, &[op("foo", AlterOp::Set, Some("1"))], &b),
        Err(err(INVALID_CONFIG, "Unknown topic config name: foo"))
    );
    assert_eq!(
        incremental_alter_topic(&none, &[op("retention.ms", AlterOp::Set, Some("abc"))], &b),
        Err(err(INVALID_CONFIG, "Invalid value abc for configuration retention.ms: Not a number of type LONG"))
    );
    assert_eq!(
        incremental_alter_topic(
            &none,
            &[op("retention.ms", AlterOp::Set, Some("1")), op("retention.ms", AlterOp::Delete, None)],
            &b
        ),
        Err(err(INVALID_REQUEST, "Error due to duplicate config keys"))
    );
    assert_eq!(
        incremental_alter_topic(
            &none,
            &[
                op("retention.ms", AlterOp::Set, None),
                op("segment.ms", AlterOp::Delete, None),
                op("cleanup.policy", AlterOp::Append, None)
            ],
            &b
        ),
        Err(err(INVALID_REQUEST, "Null value not supported for : retention.ms, cleanup.policy"))
    );
    assert_eq!(AlterOp::from_id(2), Ok(AlterOp::Append));
    assert_eq!(AlterOp::from_id(4), Err(err(INVALID_REQUEST, "Unknown operations type 4")));
    assert_eq!(AlterOp::Subtract.id(), 3);
}

#[test]
fn legacy_alter_replaces_everything() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let c = |n: &str, v: Option<&str>| (n.to_string(), v.map(str::to_string));
    assert_eq!(alter_topic(&[c("segment.ms", Some("1000"))], &b), Ok(map(&[("segment.ms", "1000")])));
    assert_eq!(alter_topic(&[], &b), Ok(BTreeMap::new()));
    assert_eq!(
        alter_topic(&[c("segment.ms", Some("1")), c("segment.ms", Some("2"))], &b),
        Err(err(INVALID_REQUEST, "Error due to duplicate config keys"))
    );
    assert_eq!(
        alter_topic(&[c("segment.ms", None)], &b),
        Err(err(INVALID_REQUEST, "Null value not supported for : segment.ms"))
    );
    assert_eq!(
        alter_topic(&[c("bogus", Some("1"))], &b),
        Err(err(INVALID_CONFIG, "Unknown topic config name: bogus"))
    );
}

#[test]
fn broker_alter_rules() {
    let op = AlterConfigOp::new;
    let none = BTreeMap::new();
    assert_eq!(
        incremental_alter_broker(&none, &[op("num.partitions", AlterOp::Set, Some("3"))]),
        Err(err(INVALID_REQUEST, "Cannot update these configs dynamically: Set(num.partitions)"))
    );
    assert_eq!(
        incremental_alter_broker(&none, &[op("log.retention.ms", AlterOp::Set, Some("abc"))]),
        Err(err(INVALID_REQUEST, "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"))
    );
    assert_eq!(
        incremental_alter_broker(&none, &[op("log.retention.bogus", AlterOp::Set, Some("1"))]),
        Err(err(INVALID_CONFIG, "Unknown broker config name: log.retention.bogus"))
    );
    assert_eq!(
        incremental_alter_broker(&none, &[op("message.max.bytes", AlterOp::Append, Some("1"))]),
        Err(err(INVALID_CONFIG, "Can't APPEND to key message.max.bytes because its type is not LIST."))
    );
    let new = incremental_alter_broker(
        &none,
        &[
            op("log.cleanup.policy", AlterOp::Append, Some("compact")),
            op("log.retention.ms", AlterOp::Set, Some("60000")),
            op("strata.flush.ms", AlterOp::Set, Some("20")),
        ],
    )
    .unwrap();
    assert_eq!(
        new,
        map(&[("log.cleanup.policy", "delete,compact"), ("log.retention.ms", "60000"), ("strata.flush.ms", "20")])
    );
    assert_eq!(
        alter_broker(&[("num.partitions".into(), Some("2".into())), ("log.roll.hours".into(), Some("1".into()))]),
        Err(err(INVALID_REQUEST, "Cannot update these configs dynamically: Set(log.roll.hours, num.partitions)"))
    );
    assert_eq!(alter_broker(&[("message.max.bytes".into(), Some("2000000".into()))]), Ok(map(&[("message.max.bytes", "2000000")])));

    // The new dynamic map takes effect through the view.
    let settings = BrokerSettings::new(1).with("log.retention.hours", "2").unwrap();
    let b = BrokerConfigView::new(&settings).with_dynamic(&new);
    assert_eq!(b.flush_ms(), 20);
    let t = b.topic_defaults();
    assert_eq!(t.retention_ms, 60_000);
    assert_eq!(t.cleanup_policy, CleanupPolicy { compact: true, delete: true });
    let d = describe_topic(&BTreeMap::new(), &b, Some(&["retention.ms".to_string()]), true, false);
    assert_eq!(d[0].source, ConfigSource::DynamicBrokerConfig);
    assert_eq!(
        d[0].synonyms,
        vec![
            syn("log.retention.ms", "60000", ConfigSource::DynamicBrokerConfig),
            syn("log.retention.hours", "2", ConfigSource::StaticBrokerConfig),
            syn("log.retention.hours", "168", ConfigSource::DefaultConfig),
        ]
    );
}

// ---------- describe broker ----------

#[test]
fn describe_broker_node_scope() {
    let settings = BrokerSettings::new(3)
        .with("log.retention.hours", "2")
        .unwrap()
        .with("num.partitions", "6")
        .unwrap();
    let dynamic = map(&[("message.max.bytes", "2000000")]);
    let b = BrokerConfigView::new(&settings).with_dynamic(&dynamic);
    let d = describe_broker(&b, BrokerScope::Node, None, true, true);
    assert_eq!(d.len(), BROKER_CONFIGS.len());
    assert!(d.windows(2).all(|w| w[0].name < w[1].name));

    let e = entry(&d, "num.partitions");
    assert_eq!(e.value.as_deref(), Some("6"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    assert!(e.read_only);
    assert_eq!(
        e.synonyms,
        vec![
            syn("num.partitions", "6", ConfigSource::StaticBrokerConfig),
            syn("num.partitions", "1", ConfigSource::DefaultConfig),
        ]
    );
    let e = entry(&d, "message.max.bytes");
    assert_eq!(e.value.as_deref(), Some("2000000"));
    assert_eq!(e.source, ConfigSource::DynamicBrokerConfig);
    assert!(!e.read_only);
    let e = entry(&d, "node.id");
    assert_eq!(e.value.as_deref(), Some("3"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    assert_eq!(entry(&d, "broker.id").value.as_deref(), Some("3"));
    // log.retention.ms is null, and (as in Kafka) the synonyms before its own
    // name are dropped: nothing sets log.retention.ms itself.
    let e = entry(&d, "log.retention.ms");
    assert_eq!(e.value, None);
    assert_eq!(e.source, ConfigSource::DefaultConfig);
    assert!(e.synonyms.is_empty());
    let e = entry(&d, "log.retention.hours");
    assert_eq!(e.value.as_deref(), Some("2"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    assert_eq!(e.documentation, Some(broker_config("log.retention.hours").unwrap().doc));
    assert_eq!(entry(&d, "log.cleaner.min.cleanable.ratio").value.as_deref(), Some("0.5"));
    assert_eq!(entry(&d, "strata.flush.bytes").value.as_deref(), Some("4194304"));
}

#[test]
fn describe_broker_cluster_default_scope() {
    let settings = BrokerSettings::new(1).with("log.segment.bytes", "536870912").unwrap();
    let cluster = map(&[("log.segment.bytes", "268435456")]);
    let b = BrokerConfigView::new(&settings).with_cluster_default(&cluster);
    let d = describe_broker(&b, BrokerScope::ClusterDefault, None, true, false);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].name, "log.segment.bytes");
    assert_eq!(d[0].value.as_deref(), Some("268435456"));
    assert_eq!(d[0].source, ConfigSource::DynamicDefaultBrokerConfig);
    assert_eq!(d[0].synonyms, vec![syn("log.segment.bytes", "268435456", ConfigSource::DynamicDefaultBrokerConfig)]);
    assert!(describe_broker(&BrokerConfigView::new(&settings), BrokerScope::ClusterDefault, None, true, false)
        .is_empty());
}

#[test]
fn broker_resource_names() {
    assert_eq!(check_broker_resource("", 1), Ok(BrokerScope::ClusterDefault));
    assert_eq!(check_broker_resource("1", 1), Ok(BrokerScope::Node));
    assert_eq!(
        check_broker_resource("x", 1),
        Err(err(INVALID_REQUEST, "Broker id must be an integer, but it is: x"))
    );
    assert_eq!(
        check_broker_resource("2", 1),
        Err(err(INVALID_REQUEST, "Unexpected broker id, expected 1 or empty string, but received 2"))
    );
}

// ---------- typed accessors ----------

#[test]
fn typed_accessors_follow_kafka_derivations() {
    let settings = BrokerSettings::new(1);
    let b = BrokerConfigView::new(&settings);
    let t = TopicConfig::resolve(
        &map(&[
            ("message.timestamp.difference.max.ms", "5000"),
            ("message.timestamp.after.max.ms", "100"),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.type", "zstd"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("local.retention.ms", "10"),
            ("max.message.bytes", "64"),
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("leader.replication.throttled.replicas", "0:1,1:1"),
            ("not.a.config", "x"),
        ]),
        &b,
    );
    assert_eq!(t.message_timestamp_before_max_ms, 5000, "falls back to difference.max.ms");
    assert_eq!(t.message_timestamp_after_max_ms, 100);
    assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(t.compression_type, CompressionType::Zstd);
    assert_eq!(t.retention_ms, -1);
    assert_eq!(t.local_retention_ms, 10);
    assert_eq!(t.local_retention_bytes, 1000, "-2 resolves to retention.bytes");
    assert_eq!(t.max_message_bytes, 64);
    assert!(t.is_compacted() && !t.deletes());
    assert_eq!(t.min_cleanable_dirty_ratio, 0.25);
    assert_eq!(t.leader_replication_throttled_replicas, vec!["0:1".to_string(), "1:1".to_string()]);
    assert_eq!(
        effective_value("message.timestamp.type", &BTreeMap::new(), &b),
        Some(ConfigValue::String("CreateTime".into()))
    );
}

// ---------- value helpers ----------

#[test]
fn java_string_forms() {
    assert_eq!(java_double_to_string(0.5), "0.5");
    assert_eq!(java_double_to_string(1.0), "1.0");
    assert_eq!(java_double_to_string(0.0), "0.0");
    assert_eq!(java_double_to_string(1e7), "1.0E7");
    assert_eq!(java_double_to_string(1.5e-4), "1.5E-4");
    assert_eq!(java_double_to_string(f64::NAN), "NaN");
    assert_eq!(
        parse_value("cleanup.policy", " compact ,  delete ", ConfigType::List).unwrap().to_kafka_string(),
        "compact,delete"
    );
    assert_eq!(parse_value("x", "", ConfigType::List).unwrap(), ConfigValue::List(vec![]));
    assert_eq!(parse_value("x", "+5", ConfigType::Long).unwrap(), ConfigValue::Long(5));
    assert!(parse_value("x", "5L", ConfigType::Long).is_err());
    assert!(parse_value("x", "9223372036854775808", ConfigType::Long).is_err());
    assert_eq!(parse_value("x", "1e-1", ConfigType::Double).unwrap(), ConfigValue::Double(0.1));
    assert!(parse_value("x", "inf", ConfigType::Double).is_err());
    assert_eq!(ConfigSource::from_id(4), Some(ConfigSource::StaticBrokerConfig));
    assert_eq!(ConfigSource::DynamicBrokerLoggerConfig.id(), 6);
    assert_eq!(ConfigType::Password.id(), 9);
}

#[test]
fn outputs_are_deterministic() {
    let settings = BrokerSettings::new(1).with("log.retention.minutes", "5").unwrap();
    let dynamic = map(&[("log.cleanup.policy", "compact"), ("compression.type", "lz4")]);
    let b = BrokerConfigView::new(&settings).with_dynamic(&dynamic);
    let overrides = map(&[("retention.bytes", "10"), ("segment.ms", "100")]);
    let a = describe_topic(&overrides, &b, None, true, true);
    let c = describe_topic(&overrides.clone(), &b, None, true, true);
    assert_eq!(a, c);
    assert_eq!(describe_broker(&b, BrokerScope::Node, None, true, true), describe_broker(&b, BrokerScope::Node, None, true, true));
}
