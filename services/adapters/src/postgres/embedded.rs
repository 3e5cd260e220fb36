//! The embedded PostgreSQL cluster (B10 embedded mode): initdb into `<data_dir>/pg` on first
//! start, started on a Unix socket in `<data_dir>/run` with `listen_addresses=''`, stopped on
//! shutdown; run as an unprivileged user when the server runs as root; orphaned or stale
//! clusters (after a crash) detected from `postmaster.pid` and reused or restarted.

use std::path::PathBuf;

/// How to find and run the PostgreSQL binaries.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub data_dir: PathBuf,
    /// `ABBOTIK_PG_BIN`; else `PATH`; else the newest `/usr/lib/postgresql/*/bin`.
    pub pg_bin: Option<PathBuf>,
    /// `ABBOTIK_PG_USER` (used only when running as root).
    pub pg_user: String,
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPg {
    pub socket_dir: PathBuf,
    pub port: u16,
    pub user: String,
    pub dbname: String,
}

impl EmbeddedPg {
    pub async fn start(_opts: EmbeddedOptions) -> anyhow::Result<EmbeddedPg> {
        anyhow::bail!("embedded PostgreSQL not implemented yet")
    }

    pub async fn stop(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
