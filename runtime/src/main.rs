//! The `strata` command. Until the broker lands (issue 3) it says what `serve`
//! will do and exits non-zero, so no script mistakes it for a running broker.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            eprintln!(
                "strata serve: not built yet. It will listen for Kafka clients on 127.0.0.1:9092, \
                 keep objects in ./strata-data/objects and its ordered log in ./strata-data/log \
                 (embedded sequencer). Today this tree holds the wire codec (strata-proto) only."
            );
            ExitCode::from(2)
        }
        Some("--version") | Some("-V") => {
            println!("strata {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: strata serve    (the broker arrives with issue 3)\n       strata --version");
            ExitCode::from(2)
        }
    }
}
