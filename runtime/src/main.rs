//! The `strata` command: `strata serve` runs a broker, `strata bench` loads
//! one, `strata admin` asks a running one (status, flush, drain).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use strata_runtime::cli::{Cli, Command, ServeArgs};
use strata_runtime::server::Server;
use tracing_subscriber::EnvFilter;

#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("strata").build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Admin(args) => match runtime.block_on(strata_runtime::admin_cli::run(&args)) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(args) => {
            let json = args.json;
            match runtime.block_on(strata_runtime::bench::run(*args)) {
                Ok(report) => {
                    println!("{}", report.render(json));
                    if report.has_check_failures() {
                        ExitCode::from(3)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let server = match Server::open(&args).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (replayed, took) = server.replayed();
    println!(
        "strata {} listening on {} (advertised {}), internal gRPC on {} (advertised {}), data in {}, objects in {}, sequencer: {} (replayed to revision {} in {} ms)",
        env!("CARGO_PKG_VERSION"),
        server.local_addr(),
        server.advertised(),
        server.internal_addr().map_or_else(|| "-".to_owned(), |a| a.to_string()),
        server.internal_advertised().unwrap_or("-"),
        args.data_dir.display(),
        server.objects(),
        args.sequencer,
        replayed,
        took.as_millis()
    );
    let signal = tokio::select! {
        signal = wait_for_signal() => signal,
        () = server.exit_requested() => "strata admin drain --exit",
    };
    tracing::info!(
        "{signal}: shutting down (stopping new requests, answering those in flight, at most {} ms; \
         send it again to exit at once)",
        args.shutdown_timeout_ms
    );
    let shutdown = server.shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        second = wait_for_signal() => {
            tracing::warn!("{second} again: exiting without waiting");
            ExitCode::from(130)
        }
        () = tokio::time::sleep(Duration::from_millis(args.shutdown_timeout_ms) + Duration::from_secs(5)) => {
            tracing::warn!("shutdown did not finish in time; exiting");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGINT or SIGTERM; returns its name.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    }
}
