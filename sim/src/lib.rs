//! The deterministic simulator of a Strata cluster (brokers, object store, sequencer,
//! clients, faults, invariant checkers). Built with `--cfg madsim`; arrives with issue 4.
