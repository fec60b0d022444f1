//! Strata's sans-IO core: the deterministic state machines (replicated log, groups,
//! transactions, request handling) that the runtime and the simulator drive.
//! Nothing here touches a socket, a file, a clock or a thread.

pub mod config;
pub mod error_code;
pub(crate) mod group;
pub mod io;
pub mod log;
pub mod object;
#[cfg(feature = "sim-bugs")]
pub mod sim_bugs;
pub mod broker;
pub mod topic_name;
