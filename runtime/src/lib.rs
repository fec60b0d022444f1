//! Strata's runtime: the tokio driver of `strata-core` (listener, object store,
//! sequencer, CLI). The broker itself arrives with issue 3.
