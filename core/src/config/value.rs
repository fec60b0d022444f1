//! Config types, parsed values, validators, and the string rules Kafka's
//! `ConfigDef` applies (`parseType`, `convertToString`, the `Range`,
//! `ValidString`, `ValidList` validators and their messages).

use std::fmt;

use super::ConfigError;

/// A config's type, as Kafka's `ConfigDef.Type` names it. `id()` is the value
/// DescribeConfigs v3+ sends in `config_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigType {
    /// `true` / `false`, any case.
    Boolean,
    /// A string (trimmed).
    String,
    /// A 32-bit signed integer.
    Int,
    /// A 16-bit signed integer.
    Short,
    /// A 64-bit signed integer.
    Long,
    /// A double.
    Double,
    /// A comma-separated list.
    List,
    /// A class name.
    Class,
    /// A secret string, never shown.
    Password,
}

impl ConfigType {
    /// DescribeConfigs v3+ `config_type`: BOOLEAN 1, STRING 2, INT 3, SHORT 4,
    /// LONG 5, DOUBLE 6, LIST 7, CLASS 8, PASSWORD 9 (0 is UNKNOWN).
    pub fn id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }

    /// Kafka's upper-case name (`LONG`), as used in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

impl fmt::Display for ConfigType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed config value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// BOOLEAN.
    Boolean(bool),
    /// STRING.
    String(String),
    /// INT.
    Int(i32),
    /// SHORT.
    Short(i16),
    /// LONG.
    Long(i64),
    /// DOUBLE.
    Double(f64),
    /// LIST.
    List(Vec<String>),
    /// CLASS (the name; nothing is loaded).
    Class(String),
    /// PASSWORD.
    Password(String),
}

impl ConfigValue {
    /// Kafka's `ConfigDef.convertToString`: the canonical string form
    /// (`true`, `1000`, `0.5`, `1.0`, `compact,delete`).
    pub fn to_kafka_string(&self) -> String {
        match self {
            ConfigValue::Boolean(b) => b.to_string(),
            ConfigValue::String(s) | ConfigValue::Class(s) | ConfigValue::Password(s) => s.clone(),
            ConfigValue::Int(v) => v.to_string(),
            ConfigValue::Short(v) => v.to_string(),
            ConfigValue::Long(v) => v.to_string(),
            ConfigValue::Double(v) => java_double_to_string(*v),
            ConfigValue::List(l) => l.join(","),
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ConfigValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Any integer type widened to i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ConfigValue::Int(v) => Some(i64::from(*v)),
            ConfigValue::Short(v) => Some(i64::from(*v)),
            ConfigValue::Long(v) => Some(*v),
            _ => None,
        }
    }

    /// An INT or SHORT as i32, or a LONG that fits.
    pub fn as_i32(&self) -> Option<i32> {
        self.as_i64().and_then(|v| i32::try_from(v).ok())
    }

    /// A DOUBLE (or an integer converted).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ConfigValue::Double(v) => Some(*v),
            other => other.as_i64().map(|v| v as f64),
        }
    }

    /// A STRING, CLASS or PASSWORD.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ConfigValue::String(s) | ConfigValue::Class(s) | ConfigValue::Password(s) => Some(s),
            _ => None,
        }
    }

    /// A LIST.
    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            ConfigValue::List(l) => Some(l),
            _ => None,
        }
    }

    /// How Kafka prints the value object in `ConfigException` messages
    /// (`List.toString()` is `[a, b]`).
    fn java_display(&self) -> String {
        match self {
            ConfigValue::List(l) => format!("[{}]", l.join(", ")),
            other => other.to_kafka_string(),
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kafka_string())
    }
}

/// A value check, after parsing. Each mirrors one of Kafka's validators and
/// produces its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// No check.
    None,
    /// `Range.atLeast(min)`.
    AtLeast(i64),
    /// `Range.between(min, max)`, inclusive.
    Between(i64, i64),
    /// `ValidString.in(...)`: case-sensitive.
    OneOf(&'static [&'static str]),
    /// `ValidList.in(...)`: every element case-sensitively in the set.
    ListOf(&'static [&'static str]),
    /// `ThrottledReplicaListValidator`: `*` or `partition:broker,...`.
    ThrottledReplicas,
    /// `MetadataVersionValidator` (Kafka 3.7's versions).
    MetadataVersion,
}

impl Validator {
    /// Kafka's `toString()` of the validator (the "Valid Values" column).
    pub fn describe(&self) -> String {
        match self {
            Validator::None => String::new(),
            Validator::AtLeast(min) => format!("[{min},...]"),
            Validator::Between(min, max) => format!("[{min},...,{max}]"),
            Validator::OneOf(v) | Validator::ListOf(v) => format!("[{}]", v.join(", ")),
            Validator::ThrottledReplicas => {
                "[partitionId]:[brokerId],[partitionId]:[brokerId],...".to_string()
            }
            Validator::MetadataVersion => format!("[{}]", IBP_VERSIONS.join(", ")),
        }
    }

    /// Checks a parsed value; the error is INVALID_CONFIG with Kafka's message.
    pub fn check(&self, name: &str, value: &ConfigValue) -> Result<(), ConfigError> {
        match *self {
            Validator::None => Ok(()),
            Validator::AtLeast(min) => check_range(name, value, Some(min), None),
            Validator::Between(min, max) => check_range(name, value, Some(min), Some(max)),
            Validator::OneOf(valid) => {
                let s = value.as_str().unwrap_or_default();
                if valid.contains(&s) {
                    Ok(())
                } else {
                    Err(invalid_value(name, s, &format!("String must be one of: {}", valid.join(", "))))
                }
            }
            Validator::ListOf(valid) => {
                for s in value.as_list().unwrap_or_default() {
                    if !valid.contains(&s.as_str()) {
                        return Err(invalid_value(
                            name,
                            s,
                            &format!("String must be one of: {}", valid.join(", ")),
                        ));
                    }
                }
                Ok(())
            }
            Validator::ThrottledReplicas => {
                let items: Vec<&str> =
                    value.as_list().unwrap_or_default().iter().map(|s| java_trim(s)).collect();
                let all_pairs = items.iter().all(|s| is_replica_pair_or_empty(s));
                if all_pairs || items.concat() == "*" {
                    Ok(())
                } else {
                    Err(invalid_value(
                        name,
                        &value.java_display(),
                        &format!(
                            "{name} must be the literal '*' or a list of replicas in the following format: \
                             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                        ),
                    ))
                }
            }
            Validator::MetadataVersion => {
                let s = value.as_str().unwrap_or_default();
                if is_valid_metadata_version(s) {
                    Ok(())
                } else {
                    Err(invalid_value(name, s, &format!("Version {s} is not a valid version")))
                }
            }
        }
    }
}

fn check_range(name: &str, value: &ConfigValue, min: Option<i64>, max: Option<i64>) -> Result<(), ConfigError> {
    // Kafka compares `doubleValue()`s; integers compare exactly here, which
    // gives the same verdicts for every bound used.
    let (below, above) = match value {
        ConfigValue::Double(d) => (
            min.is_some_and(|m| *d < m as f64),
            max.is_some_and(|m| *d > m as f64),
        ),
        other => match other.as_i64() {
            Some(v) => (min.is_some_and(|m| v < m), max.is_some_and(|m| v > m)),
            None => (false, false),
        },
    };
    let shown = value.java_display();
    if below {
        return Err(invalid_value(name, &shown, &format!("Value must be at least {}", min.unwrap_or_default())));
    }
    if above {
        return Err(invalid_value(name, &shown, &format!("Value must be no more than {}", max.unwrap_or_default())));
    }
    Ok(())
}

fn is_replica_pair_or_empty(s: &str) -> bool {
    // Kafka 3.7: `s.matches("([0-9]+:[0-9]+)?")`.
    if s.is_empty() {
        return true;
    }
    match s.split_once(':') {
        Some((p, b)) => {
            !p.is_empty() && !b.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Every `MetadataVersion` string Kafka 3.7 knows (`IBP_0_8_0` .. `IBP_3_8_IV0`).
pub const IBP_VERSIONS: &[&str] = &[
    "0.8.0", "0.8.1", "0.8.2", "0.9.0", "0.10.0-IV0", "0.10.0-IV1", "0.10.1-IV0", "0.10.1-IV1",
    "0.10.1-IV2", "0.10.2-IV0", "0.11.0-IV0", "0.11.0-IV1", "0.11.0-IV2", "1.0-IV0", "1.1-IV0",
    "2.0-IV0", "2.0-IV1", "2.1-IV0", "2.1-IV1", "2.1-IV2", "2.2-IV0", "2.2-IV1", "2.3-IV0",
    "2.3-IV1", "2.4-IV0", "2.4-IV1", "2.5-IV0", "2.6-IV0", "2.7-IV0", "2.7-IV1", "2.7-IV2",
    "2.8-IV0", "2.8-IV1", "3.0-IV0", "3.0-IV1", "3.1-IV0", "3.2-IV0", "3.3-IV0", "3.3-IV1",
    "3.3-IV2", "3.3-IV3", "3.4-IV0", "3.5-IV0", "3.5-IV1", "3.5-IV2", "3.6-IV0", "3.6-IV1",
    "3.6-IV2", "3.7-IV0", "3.7-IV1", "3.7-IV2", "3.7-IV3", "3.7-IV4", "3.8-IV0",
];

/// Release short names that map to their latest production version (up to 3.7).
const IBP_RELEASES: &[&str] = &[
    "0.10.0", "0.10.1", "0.10.2", "0.11.0", "1.0", "1.1", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5",
    "2.6", "2.7", "2.8", "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7",
];

/// `MetadataVersion.fromVersionString` succeeds: `0.10.0`, `0.10.0-IV1`,
/// `3.7`, `3.7-IV4`, or a longer version whose first two (three for `0.x`)
/// segments are one of those (`2.8.1` → `2.8`).
pub fn is_valid_metadata_version(s: &str) -> bool {
    let segments: Vec<&str> = s.split('.').collect();
    let wanted = if s.starts_with("0.") { 3 } else { 2 };
    let key = if wanted >= segments.len() { s.to_string() } else { segments[..wanted].join(".") };
    IBP_VERSIONS.contains(&key.as_str()) || IBP_RELEASES.contains(&key.as_str())
}

/// `new ConfigException(name, value, message)`:
/// `Invalid value {value} for configuration {name}: {message}`.
pub fn invalid_value(name: &str, value: &str, message: &str) -> ConfigError {
    ConfigError::invalid_config(format!("Invalid value {value} for configuration {name}: {message}"))
}

/// Java's `String.trim()`: strips chars `<= ' '` from both ends.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Java regex `\s`: `[ \t\n\x0B\f\r]`.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// Kafka's `ConfigDef.parseType` for a string value; errors carry Kafka's
/// message (`Invalid value abc for configuration retention.ms: Not a number of type LONG`).
pub fn parse_value(name: &str, raw: &str, ty: ConfigType) -> Result<ConfigValue, ConfigError> {
    let trimmed = java_trim(raw);
    let nan = || invalid_value(name, raw, &format!("Not a number of type {ty}"));
    match ty {
        ConfigType::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                Ok(ConfigValue::Boolean(true))
            } else if trimmed.eq_ignore_ascii_case("false") {
                Ok(ConfigValue::Boolean(false))
            } else {
                Err(invalid_value(name, raw, "Expected value to be either true or false"))
            }
        }
        ConfigType::String => Ok(ConfigValue::String(trimmed.to_string())),
        ConfigType::Password => Ok(ConfigValue::Password(trimmed.to_string())),
        ConfigType::Class => {
            // Nothing to load in Strata: accept a syntactically plausible name.
            if trimmed.is_empty() {
                Err(invalid_value(name, raw, &format!("Class {raw} could not be found.")))
            } else {
                Ok(ConfigValue::Class(trimmed.to_string()))
            }
        }
        ConfigType::Int => java_int(trimmed).map(ConfigValue::Int).ok_or_else(nan),
        ConfigType::Short => java_int(trimmed)
            .and_then(|v| i16::try_from(v).ok())
            .map(ConfigValue::Short)
            .ok_or_else(nan),
        ConfigType::Long => java_long(trimmed).map(ConfigValue::Long).ok_or_else(nan),
        ConfigType::Double => java_parse_double(trimmed).map(ConfigValue::Double).ok_or_else(nan),
        ConfigType::List => {
            if trimmed.is_empty() {
                Ok(ConfigValue::List(Vec::new()))
            } else {
                // `trimmed.split("\\s*,\\s*", -1)`
                Ok(ConfigValue::List(
                    trimmed.split(',').map(|p| p.trim_matches(is_java_space).to_string()).collect(),
                ))
            }
        }
    }
}

fn plain_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

fn java_int(s: &str) -> Option<i32> {
    if plain_integer(s) {
        s.parse().ok()
    } else {
        None
    }
}

fn java_long(s: &str) -> Option<i64> {
    if plain_integer(s) {
        s.parse().ok()
    } else {
        None
    }
}

/// `Double.parseDouble` on an already-trimmed string (decimal forms, `NaN`,
/// `Infinity`, an optional `d`/`f` suffix).
pub fn java_parse_double(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    match unsigned {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY }),
        _ => {}
    }
    let body = s.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(s);
    let ok = !body.is_empty()
        && body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.bytes().any(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    body.parse::<f64>().ok()
}

/// Java's `Double.toString`: `0.5`, `1.0`, `1.0E7`, `1.5E-4`, `NaN`, `Infinity`.
pub fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".to_string() } else { "-Infinity".to_string() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0".to_string() } else { "0.0".to_string() };
    }
    let a = d.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exp}")
    }
}

/// Java's `s.split(",")` (limit 0): trailing empty strings dropped, but an
/// input without a comma gives itself (so `""` gives `[""]`).
pub fn java_split_comma(s: &str) -> Vec<String> {
    let mut parts: Vec<String> = s.split(',').map(str::to_string).collect();
    if parts.len() > 1 {
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
    }
    parts
}

/// Parses `raw` as `ty` and runs `validator`: the full check Kafka applies to
/// one value.
pub fn parse_and_validate(
    name: &str,
    raw: &str,
    ty: ConfigType,
    validator: Validator,
) -> Result<ConfigValue, ConfigError> {
    let v = parse_value(name, raw, ty)?;
    validator.check(name, &v)?;
    Ok(v)
}
