//! Per-tenant rate-limit overrides (`abbotik_control.tenant_limits`, B5): read on the request
//! path through the limiter's short cache, written by `abbot-api tenant limits`.

use super::{map_db_error, Db};
use abbotik_domain::ports::ratelimit::{TenantLimits, TenantLimitsStore};
use abbotik_domain::{Error, Result};
use async_trait::async_trait;
use uuid::Uuid;

pub struct PgTenantLimits {
    db: Db,
}

impl PgTenantLimits {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn row(r: &tokio_postgres::Row) -> TenantLimits {
    TenantLimits {
        tenant_rps: r.get(0),
        tenant_burst: r.get(1),
        key_rps: r.get(2),
        key_burst: r.get(3),
        fs_quota_bytes: r.get(4),
        cron_max_jobs: r.get(5),
    }
}

const COLUMNS: &str = "tenant_rps, tenant_burst, key_rps, key_burst, fs_quota_bytes, cron_max_jobs";

/// The id of a tenant that is not dissolved, by name.
pub async fn tenant_id(db: &Db, name: &str) -> Result<Option<Uuid>> {
    let c = db.conn().await?;
    let r = c
        .query_opt(
            "SELECT id FROM abbotik_control.tenants WHERE name = $1 AND status <> 'deleted'",
            &[&name],
        )
        .await
        .map_err(map_db_error)?;
    Ok(r.map(|r| r.get(0)))
}

/// The overrides of a tenant (`None` when it has no row).
pub async fn get(db: &Db, tenant_id: Uuid) -> Result<Option<TenantLimits>> {
    let c = db.conn().await?;
    let r = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM abbotik_control.tenant_limits WHERE tenant_id = $1"),
            &[&tenant_id],
        )
        .await
        .map_err(map_db_error)?;
    Ok(r.as_ref().map(row))
}

/// The rate fields to change: `Some(None)` clears one back to the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateChange {
    pub tenant_rps: Option<Option<i32>>,
    pub tenant_burst: Option<Option<i32>>,
    pub key_rps: Option<Option<i32>>,
    pub key_burst: Option<Option<i32>>,
}

/// Applies `change` to the tenant's row (created when missing); returns the row after.
pub async fn set(db: &Db, tenant_id: Uuid, change: RateChange) -> Result<TenantLimits> {
    let c = db.conn().await?;
    let cur = get(db, tenant_id).await?.unwrap_or_default();
    let pick = |ch: Option<Option<i32>>, cur: Option<i32>| ch.unwrap_or(cur);
    let next = TenantLimits {
        tenant_rps: pick(change.tenant_rps, cur.tenant_rps),
        tenant_burst: pick(change.tenant_burst, cur.tenant_burst),
        key_rps: pick(change.key_rps, cur.key_rps),
        key_burst: pick(change.key_burst, cur.key_burst),
        ..cur
    };
    let r = c
        .query_one(
            &format!(
                "INSERT INTO abbotik_control.tenant_limits (tenant_id, tenant_rps, tenant_burst, key_rps, key_burst)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET tenant_rps = EXCLUDED.tenant_rps,
                     tenant_burst = EXCLUDED.tenant_burst, key_rps = EXCLUDED.key_rps,
                     key_burst = EXCLUDED.key_burst
                 RETURNING {COLUMNS}"
            ),
            &[
                &tenant_id,
                &next.tenant_rps,
                &next.tenant_burst,
                &next.key_rps,
                &next.key_burst,
            ],
        )
        .await
        .map_err(map_db_error)?;
    Ok(row(&r))
}

#[async_trait]
impl TenantLimitsStore for PgTenantLimits {
    async fn get(&self, tenant_id: Uuid) -> Result<Option<TenantLimits>> {
        get(&self.db, tenant_id)
            .await
            .map_err(|e: Error| e.with_message("Could not read the tenant's limits"))
    }
}
