//! Writes seed inputs for the fuzz targets (used by `ci/fuzz`):
//!
//! ```text
//! cargo run -p strata-proto --features fuzzing --example fuzz_seeds -- CORPUS_ROOT [GOLDEN_DIR]
//! ```
//!
//! Into `CORPUS_ROOT/<target>/`: random valid requests and responses of every
//! api at every version (`strata_proto::fuzzing::sampled_seeds`), and, when
//! `GOLDEN_DIR` is given, every `*.bin` request frame found under it turned
//! into seeds for each target (`seeds_from_request_frame`). Files are named by
//! a hash of their content, so re-running adds nothing twice.

use std::path::{Path, PathBuf};

use strata_proto::fuzzing::{sampled_seeds, seeds_from_request_frame};

fn bins(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            bins(&p, out);
        } else if p.extension().is_some_and(|x| x == "bin") {
            out.push(p);
        }
    }
}

/// 64-bit FNV-1a, hex: a stable content name.
fn name(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("seed-{h:016x}")
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds CORPUS_ROOT [GOLDEN_DIR]");
        std::process::exit(2);
    };
    let mut seeds = sampled_seeds(2);
    if let Some(golden) = args.get(1) {
        let mut files = Vec::new();
        bins(Path::new(golden), &mut files);
        files.sort();
        for f in &files {
            seeds.extend(seeds_from_request_frame(&std::fs::read(f)?));
        }
        eprintln!("fuzz_seeds: {} golden frames under {golden}", files.len());
    }
    let mut written = std::collections::BTreeMap::<&str, usize>::new();
    for (target, data) in &seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name(data));
        if !path.exists() {
            std::fs::write(&path, data)?;
            *written.entry(target).or_default() += 1;
        }
    }
    for (target, n) in written {
        eprintln!("fuzz_seeds: {n} new seeds in {}", root.join(target).display());
    }
    Ok(())
}
