//! Kafka's wire protocol, total and zero-copy: size-prefixed framing, request and
//! response headers, every request and response Strata speaks at every supported
//! version (generated from `schema/*.ks`), and record batches with their codecs.
//!
//! Every decoder of untrusted bytes returns a `Result`; none panics, and none
//! allocates more than the bytes it was given can justify.

#![deny(unsafe_code)]

pub mod codec;
pub mod messages;
pub mod records;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "sample")]
pub mod sample;

pub use codec::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
pub use codec::frame::{FrameDecoder, FrameError};
pub use codec::header::{RequestHeader, ResponseHeader};
pub use codec::wire::Uuid;
pub use messages::{ApiKey, Message, RequestBody, ResponseBody};
