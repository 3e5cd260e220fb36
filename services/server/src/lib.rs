//! The server library behind the `abbot-api` binary: configuration, wiring of concrete
//! adapters, and the run/migrate/tenant commands. Tests start the same server in-process.

pub mod admin;
pub mod admin_limits;
pub mod admin_secrets;
pub mod backing;
pub mod cli;
pub mod config;
pub mod kek;
pub mod logfmt;
pub mod logsink;
pub mod shutdown;
pub mod telemetry;
pub mod wiring;
