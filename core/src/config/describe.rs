//! DescribeConfigs: the entries for a topic or a broker resource, as Kafka's
//! `ConfigHelper` builds them.

use std::collections::BTreeMap;

use super::broker::{broker_synonyms, BrokerConfigView, BrokerScope, BROKER_CONFIGS};
use super::topic::{resolve, TOPIC_CONFIGS};
use super::value::{parse_value, ConfigType};
use super::ConfigSource;

/// One DescribeConfigs synonym (v1+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The config (topic or broker) name.
    pub name: &'static str,
    /// Its value there: the topic value in canonical form, a broker value as
    /// set; None when sensitive.
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One DescribeConfigs entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Config name.
    pub name: &'static str,
    /// Effective value (canonical form); None when sensitive or null.
    pub value: Option<String>,
    /// Where the effective value comes from (v1+ `config_source`).
    pub source: ConfigSource,
    /// v0 `is_default`: `source == DEFAULT_CONFIG`.
    pub is_default: bool,
    /// Whether AlterConfigs may change it.
    pub read_only: bool,
    /// Whether the value is a secret.
    pub sensitive: bool,
    /// Synonyms, highest precedence first; empty unless asked for (v1+ `include_synonyms`).
    pub synonyms: Vec<ConfigSynonym>,
    /// Type (v3+ `config_type`).
    pub config_type: ConfigType,
    /// Documentation, if asked for (v3+ `include_documentation`).
    pub documentation: Option<&'static str>,
}

impl DescribedConfig {
    /// v3+ `config_type` wire value.
    pub fn config_type_id(&self) -> i8 {
        self.config_type.id()
    }

    /// v1+ `config_source` wire value.
    pub fn source_id(&self) -> i8 {
        self.source.id()
    }
}

fn wanted(keys: Option<&[String]>, name: &str) -> bool {
    match keys {
        None | Some([]) => true,
        Some(k) => k.iter().any(|n| n == name),
    }
}

/// The entries of a topic with explicit `overrides`, sorted by name. `keys`
/// restricts to the named configs (None or empty: all; unknown names are
/// skipped, as Kafka does).
pub fn describe_topic(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfigView<'_>,
    keys: Option<&[String]>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .filter(|def| wanted(keys, def.name))
        .map(|def| {
            let r = resolve(def, overrides, broker);
            let sensitive = def.ty == ConfigType::Password;
            let mut synonyms = if include_synonyms { r.synonyms } else { Vec::new() };
            if sensitive {
                synonyms.iter_mut().for_each(|s| s.value = None);
            }
            DescribedConfig {
                name: def.name,
                value: if sensitive { None } else { Some(r.value.to_kafka_string()) },
                source: r.source,
                is_default: r.source == ConfigSource::DefaultConfig,
                read_only: false,
                sensitive,
                synonyms,
                config_type: def.ty,
                documentation: include_documentation.then_some(def.doc),
            }
        })
        .collect()
}

/// The entries of a broker resource, sorted by name. For
/// [`BrokerScope::Node`], every broker config with its own value (dynamic for
/// this broker, then cluster default, then static, then default). For
/// [`BrokerScope::ClusterDefault`], only the configs set on the default
/// resource, with synonyms from that level only (Kafka's behaviour).
pub fn describe_broker(
    broker: &BrokerConfigView<'_>,
    scope: BrokerScope,
    keys: Option<&[String]>,
    include_synonyms: bool,
    include_documentation: bool,
) -> Vec<DescribedConfig> {
    let cluster_default = broker.dynamic_default();
    BROKER_CONFIGS
        .iter()
        .filter(|def| wanted(keys, def.name))
        .filter(|def| match scope {
            BrokerScope::Node => true,
            BrokerScope::ClusterDefault => {
                def.dynamic && cluster_default.is_some_and(|m| m.contains_key(def.name))
            }
        })
        .map(|def| {
            let sensitive = def.sensitive();
            // Kafka's `configSynonyms`: per level, each synonym set there;
            // then drop everything before the first entry for this name.
            let mut all = Vec::new();
            for level in BrokerConfigView::LEVELS {
                for &syn in broker_synonyms(def.name) {
                    if let Some(raw) = broker.raw_at(level, syn) {
                        all.push(ConfigSynonym { name: syn, value: (!sensitive).then_some(raw), source: level });
                    }
                }
            }
            let start = all.iter().position(|s| s.name == def.name).unwrap_or(all.len());
            let mut all: Vec<ConfigSynonym> = all.split_off(start);
            if scope == BrokerScope::ClusterDefault {
                all.retain(|s| s.source == ConfigSource::DynamicDefaultBrokerConfig);
            }
            let source = all.first().map_or(ConfigSource::DefaultConfig, |s| s.source);
            let raw = match scope {
                BrokerScope::Node => broker.lookup(def.name).map(|(v, _)| v),
                BrokerScope::ClusterDefault => cluster_default.and_then(|m| m.get(def.name).cloned()),
            };
            let value = raw.map(|r| match parse_value(def.name, &r, def.ty) {
                Ok(v) => v.to_kafka_string(),
                Err(_) => r,
            });
            DescribedConfig {
                name: def.name,
                value: if sensitive { None } else { value },
                source,
                is_default: source == ConfigSource::DefaultConfig,
                read_only: def.read_only(),
                sensitive,
                synonyms: if include_synonyms { all } else { Vec::new() },
                config_type: def.ty,
                documentation: include_documentation.then_some(def.doc),
            }
        })
        .collect()
}
