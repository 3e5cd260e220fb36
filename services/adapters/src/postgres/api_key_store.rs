//! [`ApiKeyStore`] on PostgreSQL: `abbotik_control.api_keys` (A3.7). A key is found by the
//! primary-key lookup of its hash; the per-user limit is checked under a row lock on the
//! owner's tenant row so two concurrent creations cannot both pass it.

use super::identity::role;
use super::{map_db_error, Db};
use abbotik_domain::ident;
use abbotik_domain::ports::api_keys::{ApiKeyLookup, ApiKeyRow, ApiKeyStore, NewApiKey, Revoked};
use abbotik_domain::time::Ts;
use abbotik_domain::{Ident, Result, Role};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

pub struct PgApiKeyStore {
    db: Db,
}

impl PgApiKeyStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const COLUMNS: &str =
    "id, user_id, name, prefix, access, created_at, last_used_at, expires_at, revoked_at";

fn ts(r: &Row, i: usize) -> Option<Ts> {
    r.get::<_, Option<DateTime<Utc>>>(i).map(Ts)
}

fn key_row(r: &Row) -> ApiKeyRow {
    ApiKeyRow {
        id: r.get(0),
        user_id: r.get(1),
        name: r.get(2),
        prefix: r.get(3),
        access: role(r.get(4)),
        created_at: Ts(r.get(5)),
        last_used_at: ts(r, 6),
        expires_at: ts(r, 7),
        revoked_at: ts(r, 8),
    }
}

#[async_trait]
impl ApiKeyStore for PgApiKeyStore {
    async fn create(&self, k: NewApiKey, max_active: i64) -> Result<Option<ApiKeyRow>> {
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        // Serializes creations per tenant, so the count below cannot be raced past.
        tx.execute(
            "SELECT 1 FROM abbotik_control.tenants WHERE id = $1 FOR UPDATE",
            &[&k.tenant_id],
        )
        .await
        .map_err(map_db_error)?;
        let active: i64 = tx
            .query_one(
                "SELECT count(*) FROM abbotik_control.api_keys
                 WHERE tenant_id = $1 AND user_id = $2
                   AND (revoked_at IS NULL OR revoked_at > now())
                   AND (expires_at IS NULL OR expires_at > now())",
                &[&k.tenant_id, &k.user_id],
            )
            .await
            .map_err(map_db_error)?
            .get(0);
        if active >= max_active {
            return Ok(None);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO abbotik_control.api_keys
                       (key_hash, id, tenant_id, user_id, name, prefix, access, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
                ),
                &[
                    &k.key_hash,
                    &Uuid::new_v4(),
                    &k.tenant_id,
                    &k.user_id,
                    &k.name,
                    &k.prefix,
                    &k.access.as_str(),
                    &k.expires_at.map(|t| t.0),
                ],
            )
            .await
            .map_err(map_db_error)?;
        tx.commit().await.map_err(map_db_error)?;
        Ok(Some(key_row(&row)))
    }

    async fn list(
        &self,
        tenant_id: Uuid,
        user_id: Option<Uuid>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ApiKeyRow>> {
        let c = self.db.conn().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM abbotik_control.api_keys
                     WHERE tenant_id = $1 AND ($2::uuid IS NULL OR user_id = $2)
                     ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
                ),
                &[&tenant_id, &user_id, &limit, &offset],
            )
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(key_row).collect())
    }

    async fn get(&self, tenant_id: Uuid, key_id: Uuid) -> Result<Option<ApiKeyRow>> {
        let c = self.db.conn().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM abbotik_control.api_keys
                     WHERE tenant_id = $1 AND id = $2"
                ),
                &[&tenant_id, &key_id],
            )
            .await
            .map_err(map_db_error)?;
        Ok(row.as_ref().map(key_row))
    }

    async fn revoke(&self, tenant_id: Uuid, key_id: Uuid) -> Result<Revoked> {
        let c = self.db.conn().await?;
        let row = c
            .query_opt(
                "WITH k AS (SELECT id, revoked_at IS NOT NULL AND revoked_at <= now() AS was
                            FROM abbotik_control.api_keys
                            WHERE tenant_id = $1 AND id = $2 FOR UPDATE),
                      u AS (UPDATE abbotik_control.api_keys a SET revoked_at = now()
                            FROM k WHERE a.id = k.id AND NOT k.was RETURNING a.revoked_at)
                 SELECT k.was, (SELECT revoked_at FROM u) FROM k",
                &[&tenant_id, &key_id],
            )
            .await
            .map_err(map_db_error)?;
        Ok(match row {
            None => Revoked::NotFound,
            Some(r) if r.get::<_, bool>(0) => Revoked::Already,
            Some(r) => Revoked::Now(Ts(r.get(1))),
        })
    }

    async fn revoke_all(&self, tenant_id: Uuid, user_id: Uuid) -> Result<u64> {
        let c = self.db.conn().await?;
        c.execute(
            "UPDATE abbotik_control.api_keys SET revoked_at = now()
             WHERE tenant_id = $1 AND user_id = $2
               AND (revoked_at IS NULL OR revoked_at > now())",
            &[&tenant_id, &user_id],
        )
        .await
        .map_err(map_db_error)
    }

    async fn lookup(&self, key_hash: &str) -> Result<Option<ApiKeyLookup>> {
        let c = self.db.conn().await?;
        let st = c
            .prepare_cached(
                "SELECT k.id, k.tenant_id, t.name, k.user_id, k.access, k.expires_at
                 FROM abbotik_control.api_keys k
                 JOIN abbotik_control.tenants t ON t.id = k.tenant_id
                 WHERE k.key_hash = $1",
            )
            .await
            .map_err(map_db_error)?;
        let row = c.query_opt(&st, &[&key_hash]).await.map_err(map_db_error)?;
        Ok(row.map(|r| ApiKeyLookup {
            id: r.get(0),
            tenant_id: r.get(1),
            tenant: r.get(2),
            user_id: r.get(3),
            access: role(r.get(4)),
            expires_at: ts(&r, 5),
        }))
    }

    async fn touch(&self, key_id: Uuid) -> Result<()> {
        let c = self.db.conn().await?;
        c.execute(
            "UPDATE abbotik_control.api_keys SET last_used_at = now() WHERE id = $1",
            &[&key_id],
        )
        .await
        .map_err(map_db_error)?;
        Ok(())
    }

    async fn user_access(&self, tenant: &Ident, user_id: Uuid) -> Result<Option<Role>> {
        let s = ident::tenant_schema(tenant).quoted();
        let c = self.db.conn().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT access FROM {s}.\"users\"
                     WHERE id = $1 AND deleted_at IS NULL"
                ),
                &[&user_id],
            )
            .await
            .map_err(map_db_error)?;
        Ok(row.map(|r| role(r.get(0))))
    }
}
