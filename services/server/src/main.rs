//! `abbot-api`: the composition root. Parses the command line, loads configuration once,
//! and hands off to [`wiring`], the only place that chooses concrete adapters.

use abbot_api::cli::{Cli, Command, Workers};
use abbot_api::{config, telemetry, wiring};
use clap::Parser;

/// mimalloc returns freed memory to the OS promptly (glibc's arenas keep the peak of a large
/// bulk request resident) and is faster on the many small allocations of request handling.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let cfg = match config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("abbot-api: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init_logging(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        let command = cli.command.unwrap_or(Command::Run {
            workers: Workers::Auto,
        });
        let result = match command {
            Command::Run { workers } => wiring::run(cfg, workers).await,
            Command::Worker => wiring::worker(cfg).await,
            Command::Migrate { check } => wiring::migrate(cfg, check).await,
            Command::Tenant { action } => wiring::tenant(cfg, action).await,
            Command::Version => {
                println!("abbot-api {}", env!("CARGO_PKG_VERSION"));
                Ok(0)
            }
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "fatal");
                eprintln!("abbot-api: {e:#}");
                1
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}
