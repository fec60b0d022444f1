//! Typed decode and encode errors that say what was wrong and where.

use std::fmt;

/// What went wrong while decoding untrusted bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("truncated: needed {needed} bytes, {remaining} remain")]
    Truncated { needed: u64, remaining: usize },
    #[error("negative length {0}")]
    NegativeLength(i64),
    #[error("null value where the field is not nullable")]
    UnexpectedNull,
    #[error("declared count {count} is larger than the {remaining} bytes that remain")]
    CountTooLarge { count: u64, remaining: usize },
    #[error("varint longer than its type allows")]
    VarintTooLong,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid nullable-struct marker {0}")]
    InvalidStructMarker(i8),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
}

/// A decode failure: the kind, the message and version being decoded, and the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The message being decoded (e.g. `ProduceRequest`), when known.
    pub message: Option<&'static str>,
    /// The message version, when known.
    pub version: Option<i16>,
    /// Field names from the outermost to the innermost.
    path: Vec<&'static str>,
}

impl DecodeError {
    /// A bare error of this kind; context is added as it bubbles up.
    pub fn new(kind: DecodeErrorKind) -> Self {
        DecodeError { kind, message: None, version: None, path: Vec::new() }
    }

    /// Prepends a field name to the path (called on the way out of each field).
    #[cold]
    pub fn at(mut self, field: &'static str) -> Self {
        self.path.insert(0, field);
        self
    }

    /// Records the message and version (set by the outermost decoder).
    #[cold]
    pub fn in_message(mut self, message: &'static str, version: i16) -> Self {
        if self.message.is_none() {
            self.message = Some(message);
            self.version = Some(version);
        }
        self
    }

    /// The field path, outermost first, joined with dots.
    pub fn path(&self) -> String {
        self.path.join(".")
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decode")?;
        if let Some(m) = self.message {
            write!(f, " {m}")?;
        }
        if let Some(v) = self.version {
            write!(f, " v{v}")?;
        }
        if !self.path.is_empty() {
            write!(f, " at {}", self.path())?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        DecodeError::new(kind)
    }
}

/// Why a value could not be encoded at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeErrorKind {
    #[error("null value where the field is not nullable in this version")]
    NullNotAllowed,
    #[error("length {0} does not fit the wire type")]
    TooLong(usize),
    #[error("version {version} is outside {message}'s valid versions")]
    UnsupportedVersion { message: &'static str, version: i16 },
}

/// An encode failure with the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// What went wrong.
    pub kind: EncodeErrorKind,
    path: Vec<&'static str>,
}

impl EncodeError {
    /// A bare error of this kind.
    pub fn new(kind: EncodeErrorKind) -> Self {
        EncodeError { kind, path: Vec::new() }
    }

    /// Prepends a field name to the path.
    #[cold]
    pub fn at(mut self, field: &'static str) -> Self {
        self.path.insert(0, field);
        self
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("encode")?;
        if !self.path.is_empty() {
            write!(f, " at {}", self.path.join("."))?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for EncodeError {}

impl From<EncodeErrorKind> for EncodeError {
    fn from(kind: EncodeErrorKind) -> Self {
        EncodeError::new(kind)
    }
}
