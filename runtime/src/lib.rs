//! Strata's runtime: the tokio driver of `strata-core` — listener and
//! connections, object store, sequencer, CLI — and the `strata bench` load tool.

pub mod bench;
pub mod cli;
pub mod sequencer;
pub mod server;
pub mod store;
