//! Control-plane migrations (files in `migrations/`) and the idempotent upgrade of every tenant
//! schema to the current tenant DDL version. Run by `abbot-api migrate`, and at start in
//! embedded mode only (B10). A session-level advisory lock makes concurrent runs safe.

use super::tenant_schema;
use super::Db;
use abbotik_domain::{ident, Error};
use tracing::info;

/// Ordered control-schema migrations: (version, name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "control",
        include_str!("../../../../migrations/0001_control.sql"),
    ),
    (
        2,
        "keys_limits",
        include_str!("../../../../migrations/0002_keys_limits.sql"),
    ),
];

/// The newest control-schema version this binary knows.
pub const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

const LOCK_KEY: i64 = 0x0ABB_0717_0001;

/// Applies every pending control migration, then upgrades every tenant schema.
pub async fn migrate(db: &Db) -> Result<(), Error> {
    let mut c = db.conn().await?;
    c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(Error::internal)?;
    let result = async {
        c.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS abbotik_control;
             CREATE TABLE IF NOT EXISTS abbotik_control.schema_migrations (
                 version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(Error::internal)?;
        let current = current_version(&c).await?;
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let tx = c.transaction().await.map_err(Error::internal)?;
            tx.batch_execute(sql).await.map_err(Error::internal)?;
            tx.execute(
                "INSERT INTO abbotik_control.schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(Error::internal)?;
            tx.commit().await.map_err(Error::internal)?;
            info!(version, name, "applied control migration");
        }
        let rows = c
            .query(
                "SELECT name, schema_version FROM abbotik_control.tenants
                 WHERE schema_version < $1 ORDER BY name",
                &[&tenant_schema::VERSION],
            )
            .await
            .map_err(Error::internal)?;
        for row in rows {
            let name: String = row.get(0);
            let from: i32 = row.get(1);
            let tenant = ident::tenant_name(&name)?;
            let schema = ident::tenant_schema(&tenant);
            let tx = c.transaction().await.map_err(Error::internal)?;
            for sql in tenant_schema::upgrade_steps(&schema, from) {
                tx.batch_execute(&sql).await.map_err(Error::internal)?;
            }
            tx.execute(
                "UPDATE abbotik_control.tenants SET schema_version = $1 WHERE name = $2",
                &[&tenant_schema::VERSION, &name],
            )
            .await
            .map_err(Error::internal)?;
            tx.commit().await.map_err(Error::internal)?;
            info!(tenant = %name, from, to = tenant_schema::VERSION, "upgraded tenant schema");
        }
        Ok::<_, Error>(())
    }
    .await;
    let _ = c
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

/// True when the database is behind this binary (`migrate --check`, readiness).
pub async fn is_behind(db: &Db) -> Result<bool, Error> {
    let c = db.conn().await?;
    Ok(current_version(&c).await? < LATEST)
}

async fn current_version(c: &tokio_postgres::Client) -> Result<i32, Error> {
    let exists: bool = c
        .query_one(
            "SELECT to_regclass('abbotik_control.schema_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(Error::internal)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = c
        .query_one(
            "SELECT max(version) FROM abbotik_control.schema_migrations",
            &[],
        )
        .await
        .map_err(Error::internal)?
        .get(0);
    Ok(v.unwrap_or(0))
}
