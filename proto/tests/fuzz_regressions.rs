//! Replays every input in `tests/fuzz_regressions/<target>/` through the same
//! check as the fuzz target `<target>` (`strata_proto::fuzzing`), so that a
//! crash found by fuzzing stays fixed. No libFuzzer needed.
//!
//! `ci/fuzz` copies new crashes here. To replay another folder (a whole fuzz
//! corpus, say): `STRATA_FUZZ_REPLAY=request_body:fuzz/corpus/request_body
//! cargo test -p strata-proto --test fuzz_regressions -- --nocapture`.

use std::path::{Path, PathBuf};

use strata_proto::fuzzing::{self, CheckedAlloc, TARGETS};

#[global_allocator]
static ALLOC: CheckedAlloc = CheckedAlloc;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs `check` on every file of `dir`; returns the failures (file and panic message).
fn replay(check: fuzzing::Check, dir: &Path) -> (usize, Vec<String>) {
    let files = files(dir);
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            failures.push(format!("{}: {msg}", path.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut failures = Vec::new();
    let mut total = 0;
    for &(name, check) in TARGETS {
        let (n, f) = replay(check, &root.join(name));
        total += n;
        failures.extend(f);
    }
    // Folders named after no target are a mistake (a typo would silently skip its inputs).
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && fuzzing::check_for(&name).is_none() {
            failures.push(format!("tests/fuzz_regressions/{name}: no fuzz target of that name"));
        }
    }
    assert!(failures.is_empty(), "{} of {total} fuzz regression inputs fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_counting_allocator_is_installed() {
    let (v, peak) = fuzzing::measure(|| vec![0u8; 10_000]);
    assert_eq!(v.len(), 10_000);
    assert!(fuzzing::allocator_installed());
    assert!(peak >= 10_000, "peak {peak}");
}

/// `STRATA_FUZZ_REPLAY=target:dir[,target:dir...]` replays other folders (off by default).
#[test]
fn replay_folders_named_in_the_environment() {
    let Ok(spec) = std::env::var("STRATA_FUZZ_REPLAY") else { return };
    let mut failures = Vec::new();
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let (name, dir) = item.split_once(':').unwrap_or_else(|| panic!("{item}: want target:dir"));
        let check = fuzzing::check_for(name).unwrap_or_else(|| panic!("{name}: no such fuzz target"));
        let (n, f) = replay(check, Path::new(dir));
        println!("{name}: replayed {n} inputs from {dir}, {} failed", f.len());
        failures.extend(f);
    }
    assert!(failures.is_empty(), "{} inputs fail:\n{}", failures.len(), failures.join("\n"));
}
