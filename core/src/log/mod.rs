//! The replicated log: commits, the applied state, and the apply that links them.

pub mod apply;
pub mod commit;
pub mod group;
pub mod snapshot;
pub mod state;
