//! `strata-sim`: runs seeds of the deterministic simulation and checks them.
//!
//!   strata-sim --seed 42 [--trace]
//!   strata-sim --seeds 1..500 [--faults all] [--brokers 3] [--duration 20]
//!   strata-sim --seeds 1..5 --check-determinism
//!   strata-sim --bug skip-dedup --seeds 1..200      (build with --features sim-bugs)
//!
//! Build it with `--cfg madsim` (ci/sim does).

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "strata-sim runs only in the madsim build: \
         RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/madsim cargo run -p strata-sim -- --seed 1 (or ci/sim)"
    );
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(app::main());
}

#[cfg(madsim)]
mod app {
    use std::time::Instant;

    use strata_sim::history::CommitOutcome;
    use strata_sim::sim::{quiet_panics, run_seed, Opts, Outcome};
    use strata_sim::Profile;

    struct Args {
        seeds: Vec<u64>,
        opts: Vec<Opts>,
        trace: bool,
        determinism: bool,
        keep_going: bool,
        bug: Option<String>,
    }

    const USAGE: &str = "usage: strata-sim [--seed N | --seeds A..B] [--brokers N] [--duration SECS] \
        [--faults none|network|storage|sequencer|process|all|mix] [--trace] [--check-determinism] \
        [--keep-going] [--bug NAME]";

    fn parse() -> Result<Args, String> {
        let mut seeds = vec![1u64];
        let mut brokers = 3usize;
        let mut duration = 20u64;
        let mut faults = "all".to_string();
        let mut trace = false;
        let mut determinism = false;
        let mut keep_going = false;
        let mut bug = None;
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
            match a.as_str() {
                "--seed" => seeds = vec![val()?.parse().map_err(|e| format!("--seed: {e}"))?],
                "--seeds" => {
                    let v = val()?;
                    let (a, b) = v.split_once("..").ok_or("--seeds takes A..B (both included)")?;
                    let a: u64 = a.parse().map_err(|e| format!("--seeds: {e}"))?;
                    let b: u64 = b.trim_start_matches('=').parse().map_err(|e| format!("--seeds: {e}"))?;
                    seeds = (a..=b).collect();
                }
                "--brokers" => brokers = val()?.parse().map_err(|e| format!("--brokers: {e}"))?,
                "--duration" => {
                    duration = val()?.trim_end_matches('s').parse().map_err(|e| format!("--duration: {e}"))?
                }
                "--faults" => faults = val()?,
                "--trace" => trace = true,
                "--check-determinism" => determinism = true,
                "--keep-going" => keep_going = true,
                "--bug" => bug = Some(val()?),
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other}\n{USAGE}")),
            }
        }
        if brokers == 0 || brokers > 9 {
            return Err("--brokers takes 1..=9".into());
        }
        // `mix` cycles through every profile, seed by seed.
        let profiles: Vec<Profile> = if faults == "mix" {
            Profile::NAMES.iter().filter_map(|n| Profile::parse(n)).collect()
        } else {
            vec![Profile::parse(&faults).ok_or_else(|| format!("--faults: one of {:?} or mix", Profile::NAMES))?]
        };
        let opts = profiles.into_iter().map(|profile| Opts { brokers, partitions: 3, duration_s: duration, profile }).collect();
        Ok(Args { seeds, opts, trace, determinism, keep_going, bug })
    }

    fn select_bug(bug: &Option<String>) -> Result<(), String> {
        let Some(name) = bug else { return Ok(()) };
        #[cfg(feature = "sim-bugs")]
        {
            let b = strata_core::sim_bugs::by_name(name).ok_or_else(|| {
                let names: Vec<&str> = strata_core::sim_bugs::ALL.iter().map(|(n, _)| *n).collect();
                format!("no planted bug {name}; there are {names:?}")
            })?;
            strata_core::sim_bugs::set(Some(b));
            Ok(())
        }
        #[cfg(not(feature = "sim-bugs"))]
        Err(format!("--bug {name}: this build has no planted bugs; build with --features sim-bugs"))
    }

    /// What the group members did in one seed.
    #[derive(Default)]
    struct GroupFigures {
        generations: usize,
        syncs: usize,
        stalls: u64,
        leaves: u64,
        acked: usize,
        refused: usize,
        unknown: usize,
        stall_commits_refused: usize,
    }

    impl GroupFigures {
        fn of(o: &Outcome) -> Self {
            let h = o.history.0.lock().unwrap();
            let mut gens: Vec<i32> = h.group_syncs.iter().map(|s| s.generation).collect();
            gens.sort_unstable();
            gens.dedup();
            let count = |f: &dyn Fn(&CommitOutcome) -> bool| h.group_commits.iter().filter(|c| f(&c.outcome)).count();
            GroupFigures {
                generations: gens.len(),
                syncs: h.group_syncs.len(),
                stalls: h.group_counts.get("stalls").copied().unwrap_or(0),
                leaves: h.group_counts.get("leaves").copied().unwrap_or(0),
                acked: count(&|c| *c == CommitOutcome::Acked),
                refused: count(&|c| matches!(c, CommitOutcome::Refused(_))),
                unknown: count(&|c| matches!(c, CommitOutcome::Unknown(_) | CommitOutcome::Pending)),
                stall_commits_refused: h
                    .group_commits
                    .iter()
                    .filter(|c| c.after_stall && matches!(c.outcome, CommitOutcome::Refused(_)))
                    .count(),
            }
        }

        fn add(&mut self, o: &GroupFigures) {
            self.generations += o.generations;
            self.syncs += o.syncs;
            self.stalls += o.stalls;
            self.leaves += o.leaves;
            self.acked += o.acked;
            self.refused += o.refused;
            self.unknown += o.unknown;
            self.stall_commits_refused += o.stall_commits_refused;
        }

        fn show(&self) -> String {
            format!(
                "{} generations synced ({} syncs), {} stalls ({} of their commits refused), {} leaves, commits {} acked / {} refused / {} unknown",
                self.generations,
                self.syncs,
                self.stalls,
                self.stall_commits_refused,
                self.leaves,
                self.acked,
                self.refused,
                self.unknown
            )
        }
    }

    fn report(o: &Outcome, profile: Profile, print_trace: bool) {
        let inner = o.history.0.lock().unwrap();
        if print_trace {
            for e in &inner.events {
                println!("{:>8} ms  {:<10} {}", e.at_ms, e.who, e.what);
            }
        }
        for v in &o.violations {
            println!("VIOLATION seed {} (faults {}): invariant {}", o.seed, profile.name(), v.invariant);
            println!("  {}", v.detail);
            // The minimal trail: the events that mention what the violation is about.
            let trail: Vec<_> = inner
                .events
                .iter()
                .filter(|e| e.who == "faults" || v.keys.iter().any(|k| e.what.contains(k.as_str())))
                .collect();
            let skip = trail.len().saturating_sub(40);
            if !trail.is_empty() {
                println!("  trail ({} events, last {}):", trail.len(), trail.len() - skip);
            }
            for e in trail.into_iter().skip(skip) {
                println!("    {:>8} ms  {:<10} {}", e.at_ms, e.who, e.what);
            }
            println!("  replay: strata-sim --seed {} --faults {} --trace", o.seed, profile.name());
        }
    }

    pub fn main() -> i32 {
        let args = match parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        };
        if let Err(e) = select_bug(&args.bug) {
            eprintln!("{e}");
            return 2;
        }
        // madsim's own check: logs every random draw and stops at the first that differs.
        if std::env::var_os("STRATA_SIM_MADSIM_CHECK").is_some() {
            for &seed in &args.seeds {
                strata_sim::sim::madsim_determinism_check(&args.opts[0], seed);
                println!("seed {seed}: madsim determinism check passed");
            }
            return 0;
        }
        if let Ok(filter) = std::env::var("STRATA_SIM_LOG") {
            // The brokers' own logs (tracing), e.g. STRATA_SIM_LOG=warn.
            tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_ansi(false).init();
        }
        quiet_panics();
        let started = Instant::now();
        let mut sim_ms = 0u64;
        let mut failed = Vec::new();
        let mut runs = 0u64;
        let mut groups = GroupFigures::default();
        for (k, &seed) in args.seeds.iter().enumerate() {
            let opts = &args.opts[k % args.opts.len()];
            let o = run_seed(opts, seed);
            runs += 1;
            sim_ms += o.sim_ms;
            let single = args.seeds.len() == 1;
            if single || !o.violations.is_empty() || args.trace {
                report(&o, opts.profile, args.trace);
            }
            let g = GroupFigures::of(&o);
            groups.add(&g);
            println!(
                "seed {seed} faults {} : {} violations, {} acks, {} records consumed, {:.1} s simulated, digest {:016x}; groups: {}",
                opts.profile.name(),
                o.violations.len(),
                o.acks,
                o.seen,
                o.sim_ms as f64 / 1000.0,
                o.digest,
                g.show()
            );
            if args.determinism {
                let again = run_seed(opts, seed);
                runs += 1;
                sim_ms += again.sim_ms;
                if again.digest != o.digest {
                    println!("NONDETERMINISM seed {seed}: digest {:016x} then {:016x}", o.digest, again.digest);
                    let a = o.history.0.lock().unwrap();
                    let b = again.history.0.lock().unwrap();
                    if let Some(i) = (0..a.events.len().min(b.events.len()))
                        .find(|&i| a.events[i].at_ms != b.events[i].at_ms || a.events[i].what != b.events[i].what)
                    {
                        println!("  first difference at event {i}:\n    {:?}\n    {:?}", a.events[i], b.events[i]);
                    }
                    failed.push(seed);
                }
            }
            if !o.violations.is_empty() {
                failed.push(seed);
                if !args.keep_going {
                    break;
                }
            }
        }
        let wall = started.elapsed().as_secs_f64();
        println!("groups over all seeds: {}", groups.show());
        println!(
            "{runs} runs in {wall:.1} s: {:.1} seeds/min, {:.1} simulated s per wall s; {} failing seeds {:?}",
            runs as f64 * 60.0 / wall.max(1e-9),
            sim_ms as f64 / 1000.0 / wall.max(1e-9),
            failed.len(),
            failed
        );
        if failed.is_empty() {
            0
        } else {
            1
        }
    }
}
