//! Kafka's topic name rules.

/// The longest topic name Kafka accepts.
pub const MAX_NAME_LEN: usize = 249;

/// Why a topic name is refused (Kafka's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTopicName {
    #[error("Topic name is illegal, it can't be empty")]
    Empty,
    #[error("Topic name cannot be \".\" or \"..\"")]
    Dots,
    #[error("Topic name is illegal, it can't be longer than 249 characters, topic name: {0}")]
    TooLong(String),
    #[error("Topic name \"{0}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'")]
    BadChar(String),
}

/// Checks a topic name as Kafka does.
pub fn validate(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() {
        return Err(InvalidTopicName::Empty);
    }
    if name == "." || name == ".." {
        return Err(InvalidTopicName::Dots);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InvalidTopicName::TooLong(name.to_string()));
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
        return Err(InvalidTopicName::BadChar(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_rules() {
        assert!(validate("orders.v1_x-2").is_ok());
        assert_eq!(validate(""), Err(InvalidTopicName::Empty));
        assert_eq!(validate(".."), Err(InvalidTopicName::Dots));
        assert!(matches!(validate(&"a".repeat(250)), Err(InvalidTopicName::TooLong(_))));
        assert!(validate(&"a".repeat(249)).is_ok());
        assert!(matches!(validate("a b"), Err(InvalidTopicName::BadChar(_))));
        assert!(matches!(validate("é"), Err(InvalidTopicName::BadChar(_))));
    }
}
