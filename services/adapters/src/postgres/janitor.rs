//! [`JanitorStore`] on PostgreSQL: one sweep across every tenant of the region, guarded by a
//! session advisory lock so only one process sweeps at a time. Each step is its own small
//! transaction; a failure in one tenant is logged and does not stop the others.

use super::{map_db_error, Db};
use abbotik_domain::ident::{self, Ident};
use abbotik_domain::ports::janitor::{JanitorStore, Retention, SweepReport};
use abbotik_domain::Result;
use async_trait::async_trait;
use tracing::{info, warn};

const LOCK_KEY: i64 = 0x0ABB_0717_0002;

pub struct PgJanitor {
    db: Db,
}

impl PgJanitor {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl JanitorStore for PgJanitor {
    async fn sweep(&self, r: Retention) -> Result<Option<SweepReport>> {
        let mut c = self.db.conn().await?;
        let led: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(map_db_error)?
            .get(0);
        if !led {
            return Ok(None);
        }
        let report = sweep_locked(&mut c, r).await;
        let _ = c
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
        report.map(Some)
    }
}

async fn sweep_locked(c: &mut tokio_postgres::Client, r: Retention) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let expired: Vec<String> = c
        .query(
            "SELECT name FROM abbotik_control.tenants
             WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1::float8)",
            &[&(r.pending_secs as f64)],
        )
        .await
        .map_err(map_db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for name in expired {
        if drop_tenant(c, &name, "pending").await? {
            info!(tenant = %name, "dropped a tenant never activated");
            report.expired_pending.push(name);
        }
    }
    let dissolved: Vec<String> = c
        .query(
            "SELECT name FROM abbotik_control.tenants
             WHERE status = 'deleted' AND deleted_at < now() - make_interval(days => $1::int4)",
            &[&(r.dissolved_days as i32)],
        )
        .await
        .map_err(map_db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for name in dissolved {
        if drop_tenant(c, &name, "deleted").await? {
            info!(tenant = %name, "dropped a dissolved tenant's schema");
            report.dropped_dissolved.push(name);
        }
    }
    let live: Vec<String> = c
        .query(
            "SELECT name FROM abbotik_control.tenants WHERE status <> 'deleted' ORDER BY name",
            &[],
        )
        .await
        .map_err(map_db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for name in live {
        match sweep_records(c, &name, r).await {
            Ok((purged, deleted)) => {
                report.purged_by_retention += purged;
                report.deleted_purged += deleted;
            }
            Err(e) => warn!(tenant = %name, error = %e, "record sweep failed"),
        }
    }
    c.execute(
        "DELETE FROM abbotik_control.used_tokens WHERE expires_at < now()",
        &[],
    )
    .await
    .map_err(map_db_error)?;
    Ok(report)
}

/// Drops the schema and registry row of `name` if it is still in `status` (re-checked under
/// a row lock, so a login that activated the tenant meanwhile wins).
async fn drop_tenant(c: &mut tokio_postgres::Client, name: &str, status: &str) -> Result<bool> {
    let tenant = ident::tenant_name(name)?;
    let schema = ident::tenant_schema(&tenant);
    let tx = c.transaction().await.map_err(map_db_error)?;
    let locked = tx
        .query_opt(
            "SELECT 1 FROM abbotik_control.tenants WHERE name = $1 AND status = $2 FOR UPDATE",
            &[&name, &status],
        )
        .await
        .map_err(map_db_error)?;
    if locked.is_none() {
        return Ok(false);
    }
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        schema.quoted()
    ))
    .await
    .map_err(map_db_error)?;
    tx.execute(
        "DELETE FROM abbotik_control.tenants WHERE name = $1",
        &[&name],
    )
    .await
    .map_err(map_db_error)?;
    tx.commit().await.map_err(map_db_error)?;
    Ok(true)
}

/// Trash retention (purge) and physical deletion of purged rows in every record table of one
/// tenant: its user models and saved filters.
async fn sweep_records(
    c: &mut tokio_postgres::Client,
    tenant: &str,
    r: Retention,
) -> Result<(u64, u64)> {
    let schema = ident::tenant_schema(&ident::tenant_name(tenant)?);
    let s = schema.quoted();
    let models: Vec<String> = c
        .query(
            &format!("SELECT model_name FROM {s}.\"models\" WHERE status <> 'system' OR model_name = 'filters'"),
            &[],
        )
        .await
        .map_err(map_db_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Challenges are single-use and live 300 s: past their expiry they only take space.
    c.execute(
        &format!("DELETE FROM {s}.\"auth_challenges\" WHERE expires_at < now()"),
        &[],
    )
    .await
    .map_err(map_db_error)?;
    let (mut purged, mut deleted) = (0, 0);
    for m in models {
        let Some(model) = ident::model_ref(&m) else {
            continue;
        };
        let table = format!("{s}.{}", Ident::quoted(&model));
        if r.trash_days > 0 {
            purged += c
                .execute(
                    &format!(
                        "UPDATE {table} SET deleted_at = now(), updated_at = now()
                         WHERE deleted_at IS NULL AND trashed_at < now() - make_interval(days => $1::int4)"
                    ),
                    &[&(r.trash_days as i32)],
                )
                .await
                .map_err(map_db_error)?;
        }
        deleted += c
            .execute(
                &format!(
                    "DELETE FROM {table} WHERE deleted_at < now() - make_interval(secs => $1::float8)"
                ),
                &[&(r.purged_secs as f64)],
            )
            .await
            .map_err(map_db_error)?;
    }
    Ok((purged, deleted))
}
