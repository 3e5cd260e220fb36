//! `abbot-api`: the composition root. Parses the command line, loads configuration once,
//! and hands off to [`wiring`], the only place that chooses concrete adapters.

use abbot_api::cli::{Cli, Command, Workers};
use abbot_api::{config, telemetry, wiring};
use clap::Parser;

/// mimalloc: measurably faster than glibc on the many small allocations of request handling
/// (GET by id +15–20 % in `scripts/bench` on this machine).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas lazily instead of up front (on Linux it commits eagerly by
/// default) and returns freed pages to the OS at once instead of after a second — which only
/// happens when the freeing thread allocates again, so an idle worker kept them. In
/// `scripts/bench`: RSS at start 25 → 14 MB, idle after seeding 10,000 records 54 → 20 MB,
/// throughput unchanged. The options are read when mimalloc initialises, in its own
/// constructor (priority 101) before `main`, so they are set from one that runs just before.
// The one unsafe item of the workspace: an FFI call and a constructor entry, both trivial.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod allocator_options {
    use std::os::raw::{c_int, c_long};

    /// Indices in mimalloc.h's `mi_option_e` (v2 and v3 alike); checked by
    /// `MIMALLOC_VERBOSE=1 abbot-api version`, which prints the options in effect.
    const ARENA_EAGER_COMMIT: c_int = 4;
    const PURGE_DELAY: c_int = 15;

    extern "C" {
        fn mi_option_set(option: c_int, value: c_long);
    }

    extern "C" fn set_options() {
        // SAFETY: sets plain option values; mimalloc allows it before initialisation.
        unsafe {
            mi_option_set(ARENA_EAGER_COMMIT, 0);
            mi_option_set(PURGE_DELAY, 0);
        }
    }

    #[used]
    #[link_section = ".init_array.00100"]
    static SET_OPTIONS: extern "C" fn() = set_options;
}

fn main() {
    let cli = Cli::parse();
    let cfg = match config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("abbot-api: {e}");
            std::process::exit(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Run {
        workers: Workers::Auto,
    });
    // Services log to stdout (B6); one-shot commands keep stdout for their result
    // (`tenant list --json` is parsed by scripts) and log to stderr.
    let service = matches!(command, Command::Run { .. } | Command::Worker);
    let log_guard = telemetry::init_logging(&cfg, service);
    #[cfg(feature = "bench-fixed-identity")]
    tracing::warn!(
        "BENCH BUILD (bench-fixed-identity): GET /api/data/:model/:id serves every request as its first caller; never deploy this binary"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Password hashing (argon2id, 19 MiB each) runs on blocking threads; letting idle ones
        // exit soon hands their memory back instead of keeping the peak resident.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        let result = match command {
            Command::Run { workers } => wiring::run(cfg, workers).await,
            Command::Worker => wiring::worker(cfg).await,
            Command::Migrate { check } => wiring::migrate(cfg, check).await,
            Command::Tenant { action } => wiring::tenant(cfg, action).await,
            Command::Secrets { action } => abbot_api::admin_secrets::run(cfg, action).await,
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
    drop(log_guard);
    std::process::exit(code);
}
