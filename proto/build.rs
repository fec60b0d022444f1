//! Generates the message codec from our schema files (proto/schema/*.ks).
//! The schema language is described in proto/schema/README.md.

#[path = "codegen/emit.rs"]
mod emit;
#[path = "codegen/schema.rs"]
mod schema;

use std::path::Path;

fn main() {
    let dir = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    println!("cargo:rerun-if-changed=codegen");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("proto/schema is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ks"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
        let text = std::fs::read_to_string(p).expect("schema file is readable");
        match schema::parse(&p.display().to_string(), &text) {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    let code = if errors.is_empty() { emit::emit(&files).map_err(|e| vec![e]) } else { Err(errors) };
    match code {
        Ok(code) => {
            let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("messages.rs");
            std::fs::write(out, code).expect("OUT_DIR is writable");
        }
        Err(errors) => {
            for e in &errors {
                println!("cargo:warning=schema error: {e}");
            }
            panic!("schema errors:\n{}", errors.join("\n"));
        }
    }
}
