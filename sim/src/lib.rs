//! The deterministic simulator of a Strata cluster: N brokers running the
//! real runtime (driver, applier, connections) compiled with `--cfg madsim`,
//! a simulated sequencer and object store reached over madsim's network,
//! real-protocol clients, seeded faults, a recorded history and invariant
//! checkers. One seed replays one whole history exactly.
//!
//! Build: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo build -p strata-sim`
//! (see ci/sim). In a normal build this crate is an empty shell.

#[cfg(madsim)]
pub mod check;
#[cfg(madsim)]
pub mod clients;
#[cfg(madsim)]
pub mod crash;
#[cfg(madsim)]
pub mod groups;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod leases;
#[cfg(madsim)]
pub mod rpc;
#[cfg(madsim)]
pub mod seq;
#[cfg(madsim)]
pub mod sim;
#[cfg(madsim)]
pub mod store;

/// A named fault profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    None,
    Network,
    Storage,
    Sequencer,
    /// Brokers killed at random moments and crashed at the crash points (mid-flush, mid-commit, mid-apply).
    Process,
    All,
}

impl Profile {
    pub const NAMES: [&'static str; 6] = ["none", "network", "storage", "sequencer", "process", "all"];

    pub fn parse(s: &str) -> Option<Profile> {
        Some(match s {
            "none" => Profile::None,
            "network" => Profile::Network,
            "storage" => Profile::Storage,
            "sequencer" => Profile::Sequencer,
            "process" => Profile::Process,
            "all" => Profile::All,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Network => "network",
            Profile::Storage => "storage",
            Profile::Sequencer => "sequencer",
            Profile::Process => "process",
            Profile::All => "all",
        }
    }

    pub fn network(self) -> bool {
        matches!(self, Profile::Network | Profile::All)
    }
    pub fn storage(self) -> bool {
        matches!(self, Profile::Storage | Profile::All)
    }
    pub fn sequencer(self) -> bool {
        matches!(self, Profile::Sequencer | Profile::All)
    }
    pub fn process(self) -> bool {
        matches!(self, Profile::Process | Profile::All)
    }
}

/// Probabilities of the per-request faults of the simulated services (all
/// off while [`set_faults_on`] says so: the healing phase before the checks).
#[derive(Debug)]
pub struct Faults {
    pub store_error: f64,
    pub store_lost_answer: f64,
    pub store_slow: f64,
    pub seq_fail: f64,
    pub seq_drop: f64,
    pub seq_lost_answer: f64,
    pub seq_break_watch: f64,
    /// A broker crashes at a crash point it passes (mid-flush, mid-commit, mid-apply).
    pub broker_crash: f64,
    /// A lease expires at a keep-alive, early: the broker registers again.
    pub seq_lease_expire: f64,
}

impl Faults {
    pub fn for_profile(p: Profile) -> Self {
        let s = if p.storage() { 1.0 } else { 0.0 };
        let q = if p.sequencer() { 1.0 } else { 0.0 };
        let c = if p.process() { 1.0 } else { 0.0 };
        Faults {
            store_error: 0.05 * s,
            store_lost_answer: 0.03 * s,
            store_slow: 0.1 * s,
            seq_fail: 0.03 * q,
            seq_drop: 0.03 * q,
            seq_lost_answer: 0.05 * q,
            seq_break_watch: 0.02 * q,
            broker_crash: 0.001 * c,
            seq_lease_expire: 0.03 * q,
        }
    }
}

thread_local! {
    static FAULTS_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// True with probability `p` (drawn from the simulation's seeded randomness).
#[cfg(madsim)]
pub fn chance(p: f64) -> bool {
    p > 0.0 && FAULTS_ON.with(|f| f.get()) && madsim::rand::random::<f64>() < p
}

/// Turns every probabilistic fault on or off (the simulation is one thread).
pub fn set_faults_on(on: bool) {
    FAULTS_ON.with(|f| f.set(on));
}
