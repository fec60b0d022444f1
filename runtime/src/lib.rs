//! Strata's runtime: the tokio driver of `strata-core` — listener and
//! connections, object store, sequencer, internal gRPC, CLI — and the
//! `strata bench` load tool and `strata admin`.

// Under madsim (the simulator) blocking tasks are refused at run time; the
// paths that use them (the embedded sequencer, shutdown) are not simulated.
#![cfg_attr(madsim, allow(deprecated))]

#[cfg(not(madsim))]
pub mod admin_cli;
pub mod bench;
pub mod cli;
pub mod compat;
pub mod frame_write;
#[cfg(not(madsim))]
pub mod grpc;
pub mod sequencer;
pub mod server;
pub mod store;
