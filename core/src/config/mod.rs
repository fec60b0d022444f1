//! Topic and broker configuration, as Kafka models it.
//!
//! - [`topic`]: the table of Kafka's topic configs (names, types, defaults,
//!   validators, broker synonyms, from Kafka 3.7's `LogConfig` and
//!   `ServerTopicConfigSynonyms`) and [`TopicConfig`], a topic's effective
//!   values, typed.
//! - [`broker`]: the broker configs Strata reports, [`BrokerSettings`] (the
//!   static values the runtime gives) and [`BrokerConfigView`] (static plus
//!   the dynamic overrides set by AlterConfigs on the broker resource).
//! - [`alter`]: CreateTopics / AlterConfigs / IncrementalAlterConfigs
//!   semantics on an override map, with Kafka's validation and messages.
//! - [`describe`]: DescribeConfigs entries (value, source, synonyms,
//!   documentation, type).
//!
//! Pure data in, data out; every map is a `BTreeMap` and every list has a
//! fixed order, so outputs are deterministic.

pub mod alter;
pub mod broker;
pub mod describe;
pub mod topic;
pub mod value;

#[cfg(test)]
mod tests;

pub use alter::{
    alter_broker, alter_topic, create_topic_configs, incremental_alter_broker, incremental_alter_topic,
    validate_broker_overrides, validate_topic_overrides, AlterConfigOp, AlterOp,
};
pub use broker::{
    broker_config, broker_synonyms, check_broker_resource, BrokerConfigDef, BrokerConfigView, BrokerScope,
    BrokerSettings, BROKER_CONFIGS,
};
pub use describe::{describe_broker, describe_topic, ConfigSynonym, DescribedConfig};
pub use topic::{
    effective_value, topic_config, CleanupPolicy, CompressionType, Synonym, TimestampType, TopicConfig, TopicConfigDef, Unit,
    TOPIC_CONFIGS,
};
pub use value::{ConfigType, ConfigValue, Validator};

use crate::error_code;

/// Where a described value comes from: DescribeConfigs `config_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigSource {
    /// 0.
    Unknown,
    /// 1: set on the topic.
    TopicConfig,
    /// 2: set dynamically for this broker.
    DynamicBrokerConfig,
    /// 3: set dynamically as the cluster-wide broker default.
    DynamicDefaultBrokerConfig,
    /// 4: set in the broker's static configuration.
    StaticBrokerConfig,
    /// 5: Kafka's default.
    DefaultConfig,
    /// 6: a broker logger level.
    DynamicBrokerLoggerConfig,
}

impl ConfigSource {
    /// The wire value.
    pub fn id(self) -> i8 {
        match self {
            ConfigSource::Unknown => 0,
            ConfigSource::TopicConfig => 1,
            ConfigSource::DynamicBrokerConfig => 2,
            ConfigSource::DynamicDefaultBrokerConfig => 3,
            ConfigSource::StaticBrokerConfig => 4,
            ConfigSource::DefaultConfig => 5,
            ConfigSource::DynamicBrokerLoggerConfig => 6,
        }
    }

    /// From the wire value.
    pub fn from_id(id: i8) -> Option<ConfigSource> {
        Some(match id {
            0 => ConfigSource::Unknown,
            1 => ConfigSource::TopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            _ => return None,
        })
    }
}

/// A config request that failed: the Kafka error code to send and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error code {code})")]
pub struct ConfigError {
    /// Kafka error code (INVALID_CONFIG 40, INVALID_REQUEST 42, ...).
    pub code: i16,
    /// The error message, in Kafka's wording.
    pub message: String,
}

impl ConfigError {
    /// Any code and message.
    pub fn new(code: i16, message: impl Into<String>) -> ConfigError {
        ConfigError { code, message: message.into() }
    }

    /// INVALID_CONFIG (40).
    pub fn invalid_config(message: impl Into<String>) -> ConfigError {
        ConfigError::new(error_code::INVALID_CONFIG, message)
    }

    /// INVALID_REQUEST (42).
    pub fn invalid_request(message: impl Into<String>) -> ConfigError {
        ConfigError::new(error_code::INVALID_REQUEST, message)
    }

    /// POLICY_VIOLATION (44).
    pub fn policy_violation(message: impl Into<String>) -> ConfigError {
        ConfigError::new(error_code::POLICY_VIOLATION, message)
    }

    /// UNKNOWN_TOPIC_OR_PARTITION (3), with KRaft's message.
    pub fn unknown_topic(topic: &str) -> ConfigError {
        ConfigError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("The topic '{topic}' does not exist."))
    }

    /// INVALID_CONFIG `Unknown topic config name: {name}`.
    pub fn unknown_topic_config(name: &str) -> ConfigError {
        ConfigError::invalid_config(format!("Unknown topic config name: {name}"))
    }

    /// INVALID_CONFIG `Unknown broker config name: {name}` (Strata's; Kafka
    /// stores unknown broker keys silently).
    pub fn unknown_broker_config(name: &str) -> ConfigError {
        ConfigError::invalid_config(format!("Unknown broker config name: {name}"))
    }

    /// The same message with another code (Kafka reports broker config
    /// validation failures as INVALID_REQUEST, KAFKA-13609).
    pub fn with_code(mut self, code: i16) -> ConfigError {
        self.code = code;
        self
    }
}
