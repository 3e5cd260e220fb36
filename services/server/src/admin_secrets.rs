//! `abbot-api secrets rekey [--tenant <name>…]` (A3.8a, B10): re-seals, under the first key
//! of `ABBOTIK_SECRETS_KEK`, every user secret of every tenant (or of the named tenants) whose
//! `kek_id` is another key's. Idempotent: a second run finds nothing to do. Afterwards the
//! old key can be removed from the ring. Prints counts on stdout, never a value.

use crate::cli::SecretsAction;
use crate::config::Config;
use crate::wiring;
use abbotik_adapters::postgres::secret_store::PgSecretStore;
use abbotik_adapters::postgres::Db;
use abbotik_domain::secrets::{RekeyReport, SecretsService};
use std::sync::Arc;

/// Runs one `secrets` action; returns the exit code.
pub async fn run(cfg: Config, action: SecretsAction) -> anyhow::Result<i32> {
    let SecretsAction::Rekey { tenants } = action;
    let res = wiring::open_db_as(&cfg, false).await?;
    let only = (!tenants.is_empty()).then_some(tenants.as_slice());
    let result = rekey(&cfg, &res.db, only).await;
    wiring::close_resources(&res).await;
    let r = result?;
    println!(
        "rekeyed {} secret(s) in {} tenant(s) under key {}",
        r.rekeyed,
        r.tenants,
        crate::kek::ring(&cfg)?.current()
    );
    Ok(0)
}

/// Re-seals the stale rows with the configured ring (also used by tests).
pub async fn rekey(cfg: &Config, db: &Db, only: Option<&[String]>) -> anyhow::Result<RekeyReport> {
    let ring = Arc::new(crate::kek::ring(cfg)?);
    let svc = SecretsService::new(Arc::new(PgSecretStore::new(db.clone())), ring);
    svc.rekey(only)
        .await
        .map_err(|e| anyhow::anyhow!("rekey failed: {e}"))
}
