//! Strata's runtime: the tokio driver of `strata-core` — listener and
//! connections, object store, sequencer, CLI — and the `strata bench` load tool.

// Under madsim (the simulator) blocking tasks are refused at run time; the
// paths that use them (the embedded sequencer, shutdown) are not simulated.
#![cfg_attr(madsim, allow(deprecated))]

pub mod bench;
pub mod cli;
pub mod compat;
pub mod sequencer;
pub mod server;
pub mod store;
