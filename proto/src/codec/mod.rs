//! The wire-level building blocks: primitive types, errors, framing and headers.

pub mod error;
pub mod frame;
pub mod header;
pub mod wire;
