//! [`AuthStore`] on PostgreSQL: tenant registry, provisioning (A13, one transaction), login
//! lookups and the per-request identity query (tenant status + user in one round trip).

use super::identity::{identity_from_row, identity_select, role, Joins, Placeholders};
use super::{machine_store, map_db_error, tenant_schema, Db};
use abbotik_domain::ident::{self, Ident};
use abbotik_domain::ports::auth::{
    AuthStore, IdentityRef, LoginUser, NewTenant, ProvisionedTenant, ResolvedIdentity, TenantRecord,
};
use abbotik_domain::{Error, ErrorCode, Result};
use async_trait::async_trait;
use serde_json::Value;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// The credential-less `root` user every tenant has (A13 step 4).
pub const ROOT_USER_ID: Uuid = Uuid::nil();

pub struct PgAuthStore {
    db: Db,
}

impl PgAuthStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn tenant_row(r: &tokio_postgres::Row) -> TenantRecord {
    TenantRecord {
        id: r.get("id"),
        name: r.get("name"),
        status: r.get("status"),
        description: r.get("description"),
    }
}

/// Runs the provisioning steps inside `tx` (A13 steps 1–5).
async fn provision_in(
    tx: &tokio_postgres::Transaction<'_>,
    t: &NewTenant,
) -> Result<ProvisionedTenant> {
    let tenant_id = Uuid::new_v4();
    let schema = ident::tenant_schema(&t.tenant);
    let inserted = tx
        .execute(
            "INSERT INTO abbotik_control.tenants (id, name, schema, status, description, region, schema_version)
             VALUES ($1, $2, $3, 'pending', $4, $5, $6) ON CONFLICT (name) DO NOTHING",
            &[&tenant_id, &t.tenant.as_str(), &schema.as_str(), &t.description, &t.region, &tenant_schema::VERSION],
        )
        .await
        .map_err(map_db_error)?;
    if inserted == 0 {
        return Err(Error::msg(
            ErrorCode::TenantExists,
            format!("Tenant {} already exists", t.tenant),
        ));
    }
    for sql in tenant_schema::upgrade_steps(&schema, 0) {
        tx.batch_execute(&sql).await.map_err(provision_failed)?;
    }
    let s = schema.quoted();
    tx.execute(
        &format!("INSERT INTO {s}.\"users\" (id, name, username, access) VALUES ($1, 'root', 'root', 'root')"),
        &[&ROOT_USER_ID],
    )
    .await
    .map_err(provision_failed)?;
    let owner_id = if t.owner_username.as_str() == "root" {
        ROOT_USER_ID
    } else {
        let id = Uuid::new_v4();
        tx.execute(
            &format!("INSERT INTO {s}.\"users\" (id, name, username, email, access) VALUES ($1, $2, $2, $3, 'root')"),
            &[&id, &t.owner_username.as_str(), &t.owner_email],
        )
        .await
        .map_err(provision_failed)?;
        id
    };
    if let Some(hash) = &t.password_hash {
        tx.execute(
            &format!("INSERT INTO {s}.\"credentials\" (user_id, password_hash) VALUES ($1, $2)"),
            &[&owner_id, hash],
        )
        .await
        .map_err(provision_failed)?;
    }
    if let Some(k) = &t.machine_key {
        let no_expiry: Option<chrono::DateTime<chrono::Utc>> = None;
        tx.query_one(
            &machine_store::insert_key_sql(&s),
            &[
                &k.key_id,
                &owner_id,
                &k.name,
                &k.public_key,
                &k.fingerprint,
                &no_expiry,
            ],
        )
        .await
        .map_err(provision_failed)?;
        let c = &k.challenge;
        tx.execute(
            &machine_store::insert_challenge_sql(&s),
            &[&c.id, &k.key_id, &c.nonce, &c.issued_at.0, &c.expires_at.0],
        )
        .await
        .map_err(provision_failed)?;
    }
    tx.execute(
        "UPDATE abbotik_control.tenants SET owner_id = $2 WHERE id = $1",
        &[&tenant_id, &owner_id],
    )
    .await
    .map_err(provision_failed)?;
    Ok(ProvisionedTenant {
        tenant_id,
        owner_id,
    })
}

fn provision_failed(e: tokio_postgres::Error) -> Error {
    let cause = map_db_error(e);
    Error::new(ErrorCode::TenantProvisionFailed).with_internal(cause)
}

#[async_trait]
impl AuthStore for PgAuthStore {
    async fn provision(&self, t: NewTenant) -> Result<ProvisionedTenant> {
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let created = provision_in(&tx, &t).await?;
        tx.commit().await.map_err(provision_failed)?;
        Ok(created)
    }

    async fn count_pending(&self) -> Result<i64> {
        let c = self.db.conn().await?;
        let r = c
            .query_one(
                "SELECT count(*) FROM abbotik_control.tenants WHERE status = 'pending'",
                &[],
            )
            .await
            .map_err(map_db_error)?;
        Ok(r.get(0))
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>> {
        let c = self.db.conn().await?;
        let st = c
            .prepare_cached(
                "SELECT id, name, status, description FROM abbotik_control.tenants WHERE name = $1",
            )
            .await
            .map_err(map_db_error)?;
        Ok(c.query_opt(&st, &[&name])
            .await
            .map_err(map_db_error)?
            .map(|r| tenant_row(&r)))
    }

    async fn tenant_by_id(&self, id: Uuid) -> Result<Option<TenantRecord>> {
        let c = self.db.conn().await?;
        let st = c
            .prepare_cached(
                "SELECT id, name, status, description FROM abbotik_control.tenants WHERE id = $1",
            )
            .await
            .map_err(map_db_error)?;
        Ok(c.query_opt(&st, &[&id])
            .await
            .map_err(map_db_error)?
            .map(|r| tenant_row(&r)))
    }

    async fn login_user(&self, tenant: &Ident, username: &str) -> Result<Option<LoginUser>> {
        let s = ident::tenant_schema(tenant).quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT u.id, u.username, u.access, (u.trashed_at IS NULL AND u.deleted_at IS NULL) AS active,
                    c.password_hash
             FROM {s}.\"users\" u LEFT JOIN {s}.\"credentials\" c ON c.user_id = u.id
             WHERE u.username = $1"
        );
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        let row = c.query_opt(&st, &[&username]).await.map_err(map_db_error)?;
        Ok(row.map(|r| LoginUser {
            id: r.get(0),
            username: r.get(1),
            access: role(r.get(2)),
            active: r.get(3),
            password_hash: r.get(4),
        }))
    }

    async fn activate(&self, tenant_id: Uuid) -> Result<()> {
        let c = self.db.conn().await?;
        c.execute(
            "UPDATE abbotik_control.tenants SET status = 'active', updated_at = now()
             WHERE id = $1 AND status = 'pending'",
            &[&tenant_id],
        )
        .await
        .map_err(map_db_error)?;
        Ok(())
    }

    async fn resolve(&self, tenant: &Ident, id: &IdentityRef) -> Result<Option<ResolvedIdentity>> {
        let s = ident::tenant_schema(tenant).quoted();
        // Values in placeholder order: tenant, user, then each credential row named.
        let mut values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&id.tenant_id, &id.user_id];
        let mut names: [Option<String>; 3] = Default::default();
        for (name, v) in names
            .iter_mut()
            .zip([&id.machine_key, &id.api_key, &id.impersonator])
        {
            if let Some(u) = v {
                values.push(u);
                *name = Some(format!("${}", values.len()));
            }
        }
        let [mk, ak, f] = names;
        let sql = identity_select(
            &s,
            &Placeholders {
                tenant: "$1",
                user: "$2",
                machine_key: mk.as_deref(),
                api_key: ak.as_deref(),
                impersonator: f.as_deref(),
            },
        );
        let rows = match self.db.read(&sql, &values).await? {
            Ok(rows) => rows,
            // The schema was dropped (a dissolved tenant): the credential is dead.
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                    || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(map_db_error(e)),
        };
        Ok(rows.first().map(|r| identity_from_row(r, Joins::of(id))))
    }

    async fn user_object(&self, tenant: &Ident, user_id: Uuid) -> Result<Option<Value>> {
        let s = ident::tenant_schema(tenant).quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT {} FROM {s}.\"users\" u WHERE u.id = $1 AND u.deleted_at IS NULL",
            super::user_store::user_json(&s)
        );
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        let row = c.query_opt(&st, &[&user_id]).await.map_err(map_db_error)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let text: String = r.get(0);
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(Error::internal)
            }
        }
    }

    async fn consume_jti(&self, jti: Uuid, expires_at: i64) -> Result<bool> {
        let c = self.db.conn().await?;
        let n = c
            .execute(
                "INSERT INTO abbotik_control.used_tokens (jti, expires_at)
                 VALUES ($1, to_timestamp($2::bigint)) ON CONFLICT (jti) DO NOTHING",
                &[&jti, &expires_at],
            )
            .await
            .map_err(map_db_error)?;
        Ok(n == 1)
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        let c = self.db.conn().await?;
        let rows = c
            .query(
                "SELECT id, name, status, description FROM abbotik_control.tenants
                 WHERE status IN ('pending', 'active') ORDER BY name",
                &[],
            )
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(tenant_row).collect())
    }

    async fn login_usernames(&self, tenant: &Ident) -> Result<Vec<String>> {
        let s = ident::tenant_schema(tenant).quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT u.username FROM {s}.\"users\" u JOIN {s}.\"credentials\" c ON c.user_id = u.id
             WHERE u.trashed_at IS NULL AND u.deleted_at IS NULL AND u.access <> 'deny'
             ORDER BY u.username"
        );
        let rows = c.query(&sql, &[]).await.map_err(map_db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn dissolve(&self, tenant_id: Uuid) -> Result<bool> {
        let c = self.db.conn().await?;
        let n = c
            .execute(
                "UPDATE abbotik_control.tenants SET status = 'deleted', deleted_at = now(), updated_at = now()
                 WHERE id = $1 AND status <> 'deleted'",
                &[&tenant_id],
            )
            .await
            .map_err(map_db_error)?;
        Ok(n == 1)
    }
}
