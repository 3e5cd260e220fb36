//! [`MachineStore`] on PostgreSQL: the tenant's internal `machine_keys` and `auth_challenges`
//! tables (A3.4, A3.6). Writes that guard a per-user invariant (key limit, last-key guard,
//! rotation) lock the user row first, so concurrent requests for one user run one at a time;
//! a challenge is consumed by one `UPDATE … WHERE used_at IS NULL` before anything is read.

use super::identity::role;
use super::{map_db_error, Db};
use abbotik_domain::ident::{self, Ident};
use abbotik_domain::ports::machine::{
    ConsumedChallenge, KeyContext, KeyListQuery, KeyOwner, KeyRef, KeyRefusal, KeyWrite,
    MachineKey, MachineStore, NewChallenge, NewMachineKey,
};
use abbotik_domain::time::Ts;
use abbotik_domain::{Result, TenantCtx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

pub struct PgMachineStore {
    db: Db,
}

impl PgMachineStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The key columns [`key_from_row`] reads (alias `k`).
const KEY_COLS: &str = "k.id, k.user_id, k.name, k.algorithm, k.fingerprint, k.created_at, \
                        k.last_used_at, k.expires_at, k.revoked_at";
const KEY_NCOLS: usize = 9;

/// Inserts a key: `$1` id, `$2` user, `$3` name, `$4` SPKI DER, `$5` fingerprint,
/// `$6` expires_at. A fingerprint seen before in the tenant inserts nothing (no row returned).
pub(super) fn insert_key_sql(s: &str) -> String {
    format!(
        "INSERT INTO {s}.\"machine_keys\" AS k (id, user_id, name, algorithm, public_key, fingerprint, expires_at)
         VALUES ($1, $2, $3, 'ed25519', $4, $5, $6)
         ON CONFLICT (fingerprint) DO NOTHING RETURNING {KEY_COLS}"
    )
}

/// Inserts a challenge: `$1` id, `$2` key, `$3` nonce, `$4` issued_at, `$5` expires_at.
pub(super) fn insert_challenge_sql(s: &str) -> String {
    format!(
        "INSERT INTO {s}.\"auth_challenges\" (id, key_id, nonce, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)"
    )
}

fn ts(r: &Row, i: usize) -> Ts {
    Ts(r.get::<_, DateTime<Utc>>(i))
}

fn opt_ts(r: &Row, i: usize) -> Option<Ts> {
    r.get::<_, Option<DateTime<Utc>>>(i).map(Ts)
}

/// Reads [`KEY_COLS`] starting at column `at`.
fn key_from_row(r: &Row, at: usize) -> MachineKey {
    MachineKey {
        id: r.get(at),
        user_id: r.get(at + 1),
        name: r.get(at + 2),
        algorithm: r.get(at + 3),
        fingerprint: r.get(at + 4),
        created_at: ts(r, at + 5),
        last_used_at: opt_ts(r, at + 6),
        expires_at: opt_ts(r, at + 7),
        revoked_at: opt_ts(r, at + 8),
    }
}

/// The owner columns [`owner_from_row`] reads (alias `u`, possibly from a LEFT JOIN).
fn owner_cols(s: &str) -> String {
    format!(
        "u.id, u.username, u.access, (u.trashed_at IS NULL AND u.deleted_at IS NULL), \
         EXISTS (SELECT 1 FROM {s}.\"credentials\" c WHERE c.user_id = u.id)"
    )
}

fn owner_from_row(r: &Row, at: usize) -> Option<KeyOwner> {
    let id: Option<Uuid> = r.get(at);
    id.map(|id| KeyOwner {
        id,
        username: r.get(at + 1),
        access: role(r.get(at + 2)),
        active: r.get(at + 3),
        has_password: r.get(at + 4),
    })
}

/// Tenant, key, SPKI DER and owner, as [`context_from_row`] reads them from column `at`.
fn context_cols(s: &str) -> String {
    format!(
        "t.id, t.name, t.status, {KEY_COLS}, k.public_key, {}",
        owner_cols(s)
    )
}

/// `None` when the LEFT JOINs found no tenant or no key.
fn context_from_row(r: &Row, at: usize) -> Option<KeyContext> {
    let tenant_id: Option<Uuid> = r.get(at);
    let key_id: Option<Uuid> = r.get(at + 3);
    let (tenant_id, _) = (tenant_id?, key_id?);
    let k = at + 3;
    Some(KeyContext {
        tenant_id,
        tenant_name: r.get(at + 1),
        tenant_status: r.get(at + 2),
        key: key_from_row(r, k),
        public_key: r.get(k + KEY_NCOLS),
        owner: owner_from_row(r, k + KEY_NCOLS + 1),
    })
}

/// A statement on a tenant schema that may be gone (dropped after dissolution) or never
/// existed: the caller treats that as "not found".
fn schema_missing(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE) || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME)
}

/// Locks the user row, so that key writes of one user are serialized.
async fn lock_user(tx: &tokio_postgres::Transaction<'_>, s: &str, user: Uuid) -> Result<()> {
    tx.query_opt(
        &format!("SELECT 1 FROM {s}.\"users\" WHERE id = $1 FOR NO KEY UPDATE"),
        &[&user],
    )
    .await
    .map_err(map_db_error)?;
    Ok(())
}

/// Keys of `user` active at `$2` (not revoked, not expired), other than `$3` when given.
async fn count_active(
    tx: &tokio_postgres::Transaction<'_>,
    s: &str,
    user: Uuid,
    now: Ts,
    except: Option<Uuid>,
) -> Result<i64> {
    let r = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM {s}.\"machine_keys\"
                 WHERE user_id = $1 AND (revoked_at IS NULL OR revoked_at > $2)
                   AND (expires_at IS NULL OR expires_at > $2)
                   AND ($3::uuid IS NULL OR id <> $3)"
            ),
            &[&user, &now.0, &except],
        )
        .await
        .map_err(map_db_error)?;
    Ok(r.get(0))
}

async fn insert_key(
    tx: &tokio_postgres::Transaction<'_>,
    s: &str,
    k: &NewMachineKey,
) -> Result<Option<MachineKey>> {
    let row = tx
        .query_opt(
            &insert_key_sql(s),
            &[
                &k.id,
                &k.user_id,
                &k.name,
                &k.public_key,
                &k.fingerprint,
                &k.expires_at.map(|t| t.0),
            ],
        )
        .await
        .map_err(map_db_error)?;
    Ok(row.map(|r| key_from_row(&r, 0)))
}

#[async_trait]
impl MachineStore for PgMachineStore {
    async fn key_context(&self, tenant: &Ident, key: &KeyRef) -> Result<Option<KeyContext>> {
        let s = ident::tenant_schema(tenant).quoted();
        let by = match key {
            KeyRef::Id(_) => "k.id = $2",
            KeyRef::Fingerprint(_) => "k.fingerprint = $2",
        };
        let sql = format!(
            "SELECT {} FROM abbotik_control.tenants t
             JOIN {s}.\"machine_keys\" k ON {by}
             LEFT JOIN {s}.\"users\" u ON u.id = k.user_id AND u.deleted_at IS NULL
             WHERE t.name = $1",
            context_cols(&s)
        );
        let c = self.db.conn().await?;
        let st = match c.prepare_cached(&sql).await {
            Ok(st) => st,
            Err(e) if schema_missing(&e) => return Ok(None),
            Err(e) => return Err(map_db_error(e)),
        };
        let row = match key {
            KeyRef::Id(id) => c.query_opt(&st, &[&tenant.as_str(), id]).await,
            KeyRef::Fingerprint(fp) => c.query_opt(&st, &[&tenant.as_str(), fp]).await,
        }
        .map_err(map_db_error)?;
        Ok(row.and_then(|r| context_from_row(&r, 0)))
    }

    async fn insert_challenge(&self, tenant: &Ident, ch: &NewChallenge) -> Result<()> {
        let s = ident::tenant_schema(tenant).quoted();
        let c = self.db.conn().await?;
        let st = c
            .prepare_cached(&insert_challenge_sql(&s))
            .await
            .map_err(map_db_error)?;
        c.execute(
            &st,
            &[
                &ch.id,
                &ch.key_id,
                &ch.nonce,
                &ch.issued_at.0,
                &ch.expires_at.0,
            ],
        )
        .await
        .map_err(map_db_error)?;
        Ok(())
    }

    async fn consume_challenge(
        &self,
        tenant: &Ident,
        id: Uuid,
        now: Ts,
    ) -> Result<Option<ConsumedChallenge>> {
        let s = ident::tenant_schema(tenant).quoted();
        // The UPDATE runs whatever the joins find: the challenge is spent by this attempt.
        let sql = format!(
            "WITH ch AS (
                UPDATE {s}.\"auth_challenges\" SET used_at = $2
                WHERE id = $1 AND used_at IS NULL
                RETURNING key_id, nonce, expires_at)
             SELECT ch.nonce, ch.expires_at, {}
             FROM ch
             LEFT JOIN abbotik_control.tenants t ON t.name = $3
             LEFT JOIN {s}.\"machine_keys\" k ON k.id = ch.key_id
             LEFT JOIN {s}.\"users\" u ON u.id = k.user_id AND u.deleted_at IS NULL",
            context_cols(&s)
        );
        let c = self.db.conn().await?;
        let st = match c.prepare_cached(&sql).await {
            Ok(st) => st,
            Err(e) if schema_missing(&e) => return Ok(None),
            Err(e) => return Err(map_db_error(e)),
        };
        let row = c
            .query_opt(&st, &[&id, &now.0, &tenant.as_str()])
            .await
            .map_err(map_db_error)?;
        Ok(row.map(|r| ConsumedChallenge {
            nonce: r.get(0),
            expires_at: ts(&r, 1),
            key: context_from_row(&r, 2),
        }))
    }

    async fn key_used(&self, tenant: &Ident, tenant_id: Uuid, key_id: Uuid, now: Ts) -> Result<()> {
        let s = ident::tenant_schema(tenant).quoted();
        let sql = format!(
            "WITH activated AS (
                UPDATE abbotik_control.tenants SET status = 'active', updated_at = now()
                WHERE id = $2 AND status = 'pending')
             UPDATE {s}.\"machine_keys\" SET last_used_at = $3 WHERE id = $1"
        );
        let c = self.db.conn().await?;
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        c.execute(&st, &[&key_id, &tenant_id, &now.0])
            .await
            .map_err(map_db_error)?;
        Ok(())
    }

    async fn owner(&self, ctx: &TenantCtx, user_id: Uuid) -> Result<Option<KeyOwner>> {
        let s = ctx.schema.quoted();
        let sql = format!(
            "SELECT {} FROM {s}.\"users\" u WHERE u.id = $1 AND u.deleted_at IS NULL",
            owner_cols(&s)
        );
        let c = self.db.conn().await?;
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        let row = c.query_opt(&st, &[&user_id]).await.map_err(map_db_error)?;
        Ok(row.and_then(|r| owner_from_row(&r, 0)))
    }

    async fn key(&self, ctx: &TenantCtx, key_id: Uuid) -> Result<Option<MachineKey>> {
        let s = ctx.schema.quoted();
        let sql = format!("SELECT {KEY_COLS} FROM {s}.\"machine_keys\" k WHERE k.id = $1");
        let c = self.db.conn().await?;
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        let row = c.query_opt(&st, &[&key_id]).await.map_err(map_db_error)?;
        Ok(row.map(|r| key_from_row(&r, 0)))
    }

    async fn list(&self, ctx: &TenantCtx, q: &KeyListQuery) -> Result<Vec<MachineKey>> {
        let s = ctx.schema.quoted();
        let sql = format!(
            "SELECT {KEY_COLS} FROM {s}.\"machine_keys\" k
             JOIN {s}.\"users\" u ON u.id = k.user_id AND u.deleted_at IS NULL
             WHERE k.user_id = $1 OR u.access = ANY($2::text[])
             ORDER BY k.created_at, k.id LIMIT $3 OFFSET $4"
        );
        let accesses: Vec<&str> = q.accesses.iter().flatten().map(|r| r.as_str()).collect();
        let c = self.db.conn().await?;
        let st = c.prepare_cached(&sql).await.map_err(map_db_error)?;
        let rows = c
            .query(&st, &[&q.user_id, &accesses, &q.limit, &q.offset])
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(|r| key_from_row(r, 0)).collect())
    }

    async fn add(
        &self,
        ctx: &TenantCtx,
        key: &NewMachineKey,
        now: Ts,
        max_active: i64,
    ) -> Result<KeyWrite<MachineKey>> {
        let s = ctx.schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        lock_user(&tx, &s, key.user_id).await?;
        if count_active(&tx, &s, key.user_id, now, None).await? >= max_active {
            return Ok(Err(KeyRefusal::LimitReached));
        }
        let Some(k) = insert_key(&tx, &s, key).await? else {
            return Ok(Err(KeyRefusal::Duplicate));
        };
        tx.commit().await.map_err(map_db_error)?;
        Ok(Ok(k))
    }

    async fn rotate(
        &self,
        ctx: &TenantCtx,
        old: Uuid,
        new: &NewMachineKey,
        revoke_at: Ts,
        now: Ts,
        max_active: i64,
    ) -> Result<KeyWrite<(MachineKey, Ts)>> {
        let s = ctx.schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        lock_user(&tx, &s, new.user_id).await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT revoked_at FROM {s}.\"machine_keys\" WHERE id = $1 AND user_id = $2 FOR UPDATE"
                ),
                &[&old, &new.user_id],
            )
            .await
            .map_err(map_db_error)?;
        let Some(row) = row else {
            return Ok(Err(KeyRefusal::NotFound));
        };
        if opt_ts(&row, 0).is_some_and(|t| t <= now) {
            return Ok(Err(KeyRefusal::AlreadyRevoked));
        }
        // The old key is on its way out: it does not count against the limit.
        if count_active(&tx, &s, new.user_id, now, Some(old)).await? >= max_active {
            return Ok(Err(KeyRefusal::LimitReached));
        }
        let Some(k) = insert_key(&tx, &s, new).await? else {
            return Ok(Err(KeyRefusal::Duplicate));
        };
        let r = tx
            .query_one(
                &format!(
                    "UPDATE {s}.\"machine_keys\" SET revoked_at = LEAST(revoked_at, $2)
                     WHERE id = $1 RETURNING revoked_at"
                ),
                &[&old, &revoke_at.0],
            )
            .await
            .map_err(map_db_error)?;
        let revokes_at = ts(&r, 0);
        tx.commit().await.map_err(map_db_error)?;
        Ok(Ok((k, revokes_at)))
    }

    async fn revoke(&self, ctx: &TenantCtx, key_id: Uuid, now: Ts) -> Result<KeyWrite<Ts>> {
        let s = ctx.schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let user: Option<Uuid> = tx
            .query_opt(
                &format!("SELECT user_id FROM {s}.\"machine_keys\" WHERE id = $1"),
                &[&key_id],
            )
            .await
            .map_err(map_db_error)?
            .map(|r| r.get(0));
        let Some(user) = user else {
            return Ok(Err(KeyRefusal::NotFound));
        };
        // User first, then key: the same lock order as add and rotate.
        lock_user(&tx, &s, user).await?;
        let r = tx
            .query_one(
                &format!(
                    "SELECT revoked_at, (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)),
                            EXISTS (SELECT 1 FROM {s}.\"credentials\" c WHERE c.user_id = $3)
                     FROM {s}.\"machine_keys\" WHERE id = $1 FOR UPDATE"
                ),
                &[&key_id, &now.0, &user],
            )
            .await
            .map_err(map_db_error)?;
        if opt_ts(&r, 0).is_some_and(|t| t <= now) {
            return Ok(Err(KeyRefusal::AlreadyRevoked));
        }
        let stays_active: bool = r.get(1);
        let has_password: bool = r.get(2);
        if stays_active && !has_password {
            // Keys that keep working: not revoked (nor scheduled to be), not expired.
            let others: i64 = tx
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {s}.\"machine_keys\"
                         WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL
                           AND (expires_at IS NULL OR expires_at > $3)"
                    ),
                    &[&user, &key_id, &now.0],
                )
                .await
                .map_err(map_db_error)?
                .get(0);
            if others == 0 {
                return Ok(Err(KeyRefusal::LastActive));
            }
        }
        let r = tx
            .query_one(
                &format!(
                    "UPDATE {s}.\"machine_keys\" SET revoked_at = $2 WHERE id = $1 RETURNING revoked_at"
                ),
                &[&key_id, &now.0],
            )
            .await
            .map_err(map_db_error)?;
        let at = ts(&r, 0);
        tx.commit().await.map_err(map_db_error)?;
        Ok(Ok(at))
    }
}
