//! [`UserStore`] on PostgreSQL: the tenant's `users` rows with their `credentials`, and the
//! internal `invites` table (A3.5, A3.8). User objects are rendered by the database in the
//! statement that reads them. Changes that could leave a tenant without a `root` able to log
//! in lock the live `root` rows first and count again after the change, in one transaction.

use super::identity::role;
use super::{machine_store, map_db_error, Db};
use abbotik_domain::ident::{self, Ident};
use abbotik_domain::ports::machine::ProvisionKey;
use abbotik_domain::ports::users::{
    InviteCheck, InviteRow, InviteTenant, NewInvite, NewUser, UserChange, UserRow, UserStore,
};
use abbotik_domain::time::Ts;
use abbotik_domain::{Error, ErrorCode, Result, Role};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

pub struct PgUserStore {
    db: Db,
}

impl PgUserStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn ts_text(col: &str) -> String {
    super::records_sql::ts(&format!("u.{col}"))
}

/// The A3.8 user object of row `u` as JSON text (`s` = quoted schema).
pub(super) fn user_json(s: &str) -> String {
    format!(
        "json_build_object('id', u.id, 'name', u.name, 'username', u.username, 'auth', u.username,
            'email', u.email, 'access', u.access, 'access_read', u.access_read, 'access_edit', u.access_edit,
            'access_full', u.access_full,
            'has_password', EXISTS (SELECT 1 FROM {s}.\"credentials\" c WHERE c.user_id = u.id),
            'created_at', {}, 'updated_at', {}, 'trashed_at', {})::text",
        ts_text("created_at"),
        ts_text("updated_at"),
        ts_text("trashed_at")
    )
}

fn parse_json(text: String) -> Result<Value> {
    serde_json::from_str(&text).map_err(Error::internal)
}

fn username_taken(e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return Error::msg(
            ErrorCode::AuthUsernameExists,
            "That username is already used",
        )
        .with_data(json!({"field": "username"}));
    }
    map_db_error(e)
}

async fn object_in<C: GenericClient>(c: &C, schema: &Ident, id: Uuid) -> Result<Option<Value>> {
    let s = schema.quoted();
    let sql = format!(
        "SELECT {} FROM {s}.\"users\" u WHERE u.id = $1 AND u.deleted_at IS NULL",
        user_json(&s)
    );
    let row = c.query_opt(&sql, &[&id]).await.map_err(map_db_error)?;
    row.map(|r| parse_json(r.get(0))).transpose()
}

/// Live `root` users that can log in: a password, or a machine key neither revoked nor
/// expired (a rotated key stays active until its `revoked_at`).
async fn login_roots<C: GenericClient>(c: &C, s: &str) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM {s}.\"users\" u
          WHERE u.access = 'root' AND u.trashed_at IS NULL AND u.deleted_at IS NULL
            AND (EXISTS (SELECT 1 FROM {s}.\"credentials\" c WHERE c.user_id = u.id)
              OR EXISTS (SELECT 1 FROM {s}.\"machine_keys\" k WHERE k.user_id = u.id
                          AND (k.revoked_at IS NULL OR k.revoked_at > now())
                          AND (k.expires_at IS NULL OR k.expires_at > now())))"
    );
    let r = c.query_one(&sql, &[]).await.map_err(map_db_error)?;
    Ok(r.get(0))
}

/// Locks the live `root` rows (in id order, so two guarded changes never deadlock) and
/// answers how many of them can log in.
async fn lock_roots<C: GenericClient>(c: &C, s: &str) -> Result<i64> {
    let sql = format!(
        "SELECT id FROM {s}.\"users\" WHERE access = 'root' AND trashed_at IS NULL
            AND deleted_at IS NULL ORDER BY id FOR UPDATE"
    );
    c.query(&sql, &[]).await.map_err(map_db_error)?;
    login_roots(c, s).await
}

fn last_root() -> Error {
    Error::msg(
        ErrorCode::AuthLastRoot,
        "This is the tenant's last active root user that can log in",
    )
}

async fn insert_user<C: GenericClient>(c: &C, s: &str, id: Uuid, u: &NewUser) -> Result<()> {
    c.execute(
        &format!(
            "INSERT INTO {s}.\"users\" (id, name, username, email, access) VALUES ($1, $2, $3, $4, $5)"
        ),
        &[&id, &u.name, &u.username.as_str(), &u.email, &u.access.as_str()],
    )
    .await
    .map_err(username_taken)?;
    if let Some(hash) = &u.password_hash {
        c.execute(
            &format!("INSERT INTO {s}.\"credentials\" (user_id, password_hash) VALUES ($1, $2)"),
            &[&id, hash],
        )
        .await
        .map_err(map_db_error)?;
    }
    Ok(())
}

const INVITE_COLS: &str =
    "id, username, invite_type, access, created_at, expires_at, used_at, revoked_at";

fn invite_row(r: &tokio_postgres::Row) -> InviteRow {
    InviteRow {
        id: r.get(0),
        username: r.get(1),
        invite_type: r.get(2),
        access: role(r.get(3)),
        created_at: Ts(r.get(4)),
        expires_at: Ts(r.get(5)),
        used_at: r.get::<_, Option<DateTime<Utc>>>(6).map(Ts),
        revoked_at: r.get::<_, Option<DateTime<Utc>>>(7).map(Ts),
    }
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn list(
        &self,
        schema: &Ident,
        limit: i64,
        offset: i64,
        include_trashed: bool,
    ) -> Result<Vec<Value>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT {} FROM {s}.\"users\" u
              WHERE u.deleted_at IS NULL AND ($1 OR u.trashed_at IS NULL)
              ORDER BY u.created_at, u.id LIMIT $2 OFFSET $3",
            user_json(&s)
        );
        let rows = c
            .query(&sql, &[&include_trashed, &limit, &offset])
            .await
            .map_err(map_db_error)?;
        rows.into_iter().map(|r| parse_json(r.get(0))).collect()
    }

    async fn object(&self, schema: &Ident, id: Uuid) -> Result<Option<Value>> {
        let c = self.db.conn().await?;
        object_in(&c, schema, id).await
    }

    async fn row(&self, schema: &Ident, id: Uuid) -> Result<Option<UserRow>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT id, username, access, trashed_at IS NULL FROM {s}.\"users\"
              WHERE id = $1 AND deleted_at IS NULL"
        );
        let row = c.query_opt(&sql, &[&id]).await.map_err(map_db_error)?;
        Ok(row.map(|r| UserRow {
            id: r.get(0),
            username: r.get(1),
            access: role(r.get(2)),
            active: r.get(3),
        }))
    }

    async fn create(&self, schema: &Ident, user: NewUser) -> Result<Value> {
        let s = schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let id = Uuid::new_v4();
        insert_user(&tx, &s, id, &user).await?;
        let obj = object_in(&tx, schema, id)
            .await?
            .ok_or_else(|| Error::internal("created user not found"))?;
        tx.commit().await.map_err(map_db_error)?;
        Ok(obj)
    }

    async fn update(
        &self,
        schema: &Ident,
        id: Uuid,
        change: &UserChange,
        guard_last_root: bool,
    ) -> Result<Option<Value>> {
        let s = schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let before = if guard_last_root {
            lock_roots(&tx, &s).await?
        } else {
            0
        };
        let username = change.username.as_ref().map(|u| u.as_str().to_owned());
        let access = change.access.map(|a| a.as_str());
        let mut sets: Vec<String> = vec!["updated_at = now()".into()];
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
        if let Some(n) = &change.name {
            params.push(n);
            sets.push(format!("name = ${}", params.len()));
        }
        if let Some(e) = &change.email {
            params.push(e);
            sets.push(format!("email = ${}", params.len()));
        }
        if let Some(u) = &username {
            params.push(u);
            sets.push(format!("username = ${}", params.len()));
        }
        if let Some(a) = &access {
            params.push(a);
            sets.push(format!("access = ${}", params.len()));
        }
        let sql = format!(
            "UPDATE {s}.\"users\" SET {} WHERE id = $1 AND trashed_at IS NULL AND deleted_at IS NULL",
            sets.join(", ")
        );
        let n = tx.execute(&sql, &params).await.map_err(username_taken)?;
        if n == 0 {
            return Ok(None);
        }
        if guard_last_root && before > 0 && login_roots(&tx, &s).await? == 0 {
            return Err(last_root());
        }
        let obj = object_in(&tx, schema, id).await?;
        tx.commit().await.map_err(map_db_error)?;
        Ok(obj)
    }

    async fn password_hash(&self, schema: &Ident, id: Uuid) -> Result<Option<String>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!("SELECT password_hash FROM {s}.\"credentials\" WHERE user_id = $1");
        let row = c.query_opt(&sql, &[&id]).await.map_err(map_db_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_password(&self, schema: &Ident, id: Uuid, hash: &str) -> Result<Ts> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "INSERT INTO {s}.\"credentials\" (user_id, password_hash) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE
               SET password_hash = EXCLUDED.password_hash, password_changed_at = now()
             RETURNING password_changed_at"
        );
        let r = c
            .query_one(&sql, &[&id, &hash])
            .await
            .map_err(map_db_error)?;
        Ok(Ts(r.get(0)))
    }

    async fn deactivate(
        &self,
        schema: &Ident,
        id: Uuid,
        guard_last_root: bool,
    ) -> Result<Option<Ts>> {
        let s = schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let before = if guard_last_root {
            lock_roots(&tx, &s).await?
        } else {
            0
        };
        let sql = format!(
            "UPDATE {s}.\"users\" SET trashed_at = now(), updated_at = now()
              WHERE id = $1 AND trashed_at IS NULL AND deleted_at IS NULL RETURNING trashed_at"
        );
        let Some(r) = tx.query_opt(&sql, &[&id]).await.map_err(map_db_error)? else {
            return Ok(None);
        };
        if guard_last_root && before > 0 && login_roots(&tx, &s).await? == 0 {
            return Err(last_root());
        }
        tx.commit().await.map_err(map_db_error)?;
        Ok(Some(Ts(r.get(0))))
    }

    async fn create_invite(&self, schema: &Ident, i: NewInvite) -> Result<InviteRow> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "INSERT INTO {s}.\"invites\" (code_hash, username, invite_type, access, created_by, expires_at)
             SELECT $1, $2, $3, $4, $5, now() + $6::bigint * interval '1 second'
              WHERE NOT EXISTS (SELECT 1 FROM {s}.\"users\" WHERE username = $2)
             RETURNING {INVITE_COLS}"
        );
        let row = c
            .query_opt(
                &sql,
                &[
                    &i.code_hash,
                    &i.username.as_str(),
                    &i.invite_type,
                    &i.access.as_str(),
                    &i.created_by,
                    &i.expires_in,
                ],
            )
            .await
            .map_err(map_db_error)?;
        row.as_ref().map(invite_row).ok_or_else(|| {
            Error::msg(
                ErrorCode::AuthUsernameExists,
                format!("Username {} is already used", i.username),
            )
            .with_data(json!({"field": "username"}))
        })
    }

    async fn list_invites(
        &self,
        schema: &Ident,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<InviteRow>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT {INVITE_COLS} FROM {s}.\"invites\"
              ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        );
        let rows = c
            .query(&sql, &[&limit, &offset])
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(invite_row).collect())
    }

    async fn revoke_invite(&self, schema: &Ident, id: Uuid) -> Result<bool> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        // A used invite stays as it was (it can no longer be redeemed anyway).
        let sql = format!(
            "WITH hit AS (SELECT id FROM {s}.\"invites\" WHERE id = $1),
                  upd AS (UPDATE {s}.\"invites\" SET revoked_at = now()
                           WHERE id = $1 AND revoked_at IS NULL AND used_at IS NULL)
             SELECT count(*) FROM hit"
        );
        let r = c.query_one(&sql, &[&id]).await.map_err(map_db_error)?;
        Ok(r.get::<_, i64>(0) > 0)
    }

    async fn invite_tenant(&self, name: &str) -> Result<Option<InviteTenant>> {
        let c = self.db.conn().await?;
        let row = c
            .query_opt(
                "SELECT id, name, status FROM abbotik_control.tenants WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(map_db_error)?;
        Ok(row.and_then(|r| {
            let n: String = r.get(1);
            ident::tenant_name(&n).ok().map(|name| InviteTenant {
                id: r.get(0),
                name,
                status: r.get(2),
            })
        }))
    }

    async fn redeem_invite(
        &self,
        schema: &Ident,
        code_hash: &str,
        check: InviteCheck<'_>,
        mut user: NewUser,
        key: Option<ProvisionKey>,
    ) -> Result<(Uuid, Role)> {
        let s = schema.quoted();
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(map_db_error)?;
        let sql =
            format!("SELECT {INVITE_COLS} FROM {s}.\"invites\" WHERE code_hash = $1 FOR UPDATE");
        let invite = tx
            .query_opt(&sql, &[&code_hash])
            .await
            .map_err(map_db_error)?
            .as_ref()
            .map(invite_row)
            .ok_or_else(|| Error::new(ErrorCode::AuthInviteInvalid))?;
        check(&invite)?;
        user.access = invite.access;
        let id = Uuid::new_v4();
        insert_user(&tx, &s, id, &user).await?;
        if let Some(k) = &key {
            let no_expiry: Option<DateTime<Utc>> = None;
            let inserted = tx
                .query_opt(
                    &machine_store::insert_key_sql(&s),
                    &[
                        &k.key_id,
                        &id,
                        &k.name,
                        &k.public_key,
                        &k.fingerprint,
                        &no_expiry,
                    ],
                )
                .await
                .map_err(map_db_error)?;
            if inserted.is_none() {
                return Err(Error::msg(
                    ErrorCode::KeyDuplicate,
                    "This public key is already registered in the tenant",
                )
                .with_data(json!({"fingerprint": k.fingerprint})));
            }
            let c = &k.challenge;
            tx.execute(
                &machine_store::insert_challenge_sql(&s),
                &[&c.id, &k.key_id, &c.nonce, &c.issued_at.0, &c.expires_at.0],
            )
            .await
            .map_err(map_db_error)?;
        }
        tx.execute(
            &format!("UPDATE {s}.\"invites\" SET used_at = now() WHERE id = $1"),
            &[&invite.id],
        )
        .await
        .map_err(map_db_error)?;
        tx.commit().await.map_err(map_db_error)?;
        Ok((id, invite.access))
    }
}
