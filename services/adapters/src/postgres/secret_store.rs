//! [`SecretStore`] on PostgreSQL: the tenant's internal `user_secrets` table (A3.8a). Rows
//! hold only the sealed value (`kek_id`, `nonce`, `ciphertext`); every statement is addressed
//! by (`user_id`, `name`), so one user's request never reaches another user's rows.

use super::{map_db_error, Db};
use abbotik_domain::ident::{self, Ident};
use abbotik_domain::ports::secrets::{
    NewSecret, SealedSecret, SecretMeta, SecretPatch, SecretStore, SecretTenant,
};
use abbotik_domain::secrets::Sealed;
use abbotik_domain::time::Ts;
use abbotik_domain::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

pub struct PgSecretStore {
    db: Db,
}

impl PgSecretStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const META_COLS: &str = "name, kind, description, metadata, created_at, updated_at, last_used_at";

fn meta(r: &tokio_postgres::Row) -> Result<SecretMeta> {
    let metadata = match r.get::<_, Value>(3) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok(SecretMeta {
        name: r.get(0),
        kind: r.get(1),
        description: r.get(2),
        metadata,
        created_at: Ts(r.get(4)),
        updated_at: Ts(r.get(5)),
        last_used_at: r.get::<_, Option<DateTime<Utc>>>(6).map(Ts),
    })
}

fn sealed(r: &tokio_postgres::Row) -> SealedSecret {
    SealedSecret {
        user_id: r.get(0),
        name: r.get(1),
        sealed: Sealed {
            kek_id: r.get(2),
            nonce: r.get(3),
            ciphertext: r.get(4),
        },
    }
}

#[async_trait]
impl SecretStore for PgSecretStore {
    async fn list(&self, schema: &Ident, user_id: Uuid) -> Result<Vec<SecretMeta>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT {META_COLS} FROM {s}.\"user_secrets\" WHERE user_id = $1 ORDER BY name"
        );
        let rows = c.query(&sql, &[&user_id]).await.map_err(map_db_error)?;
        rows.iter().map(meta).collect()
    }

    async fn insert(
        &self,
        schema: &Ident,
        user_id: Uuid,
        n: NewSecret,
    ) -> Result<Option<SecretMeta>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "INSERT INTO {s}.\"user_secrets\"
                (user_id, name, kind, description, metadata, kek_id, nonce, ciphertext)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (user_id, name) DO NOTHING RETURNING {META_COLS}"
        );
        let md = Value::Object(n.metadata);
        let row = c
            .query_opt(
                &sql,
                &[
                    &user_id,
                    &n.name,
                    &n.kind,
                    &n.description,
                    &md,
                    &n.sealed.kek_id,
                    &n.sealed.nonce,
                    &n.sealed.ciphertext,
                ],
            )
            .await
            .map_err(map_db_error)?;
        row.as_ref().map(meta).transpose()
    }

    async fn update(
        &self,
        schema: &Ident,
        user_id: Uuid,
        name: &str,
        p: &SecretPatch,
    ) -> Result<Option<SecretMeta>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        // NULL parameters keep the stored value (every column set here is NOT NULL or is
        // only ever replaced by a value).
        let sql = format!(
            "UPDATE {s}.\"user_secrets\" SET
                kind = COALESCE($3, kind),
                description = COALESCE($4, description),
                metadata = COALESCE($5, metadata),
                kek_id = COALESCE($6, kek_id),
                nonce = COALESCE($7, nonce),
                ciphertext = COALESCE($8, ciphertext),
                updated_at = now()
              WHERE user_id = $1 AND name = $2 RETURNING {META_COLS}"
        );
        let md = p.metadata.clone().map(Value::Object);
        let (kek, nonce, ct) = match &p.sealed {
            Some(x) => (
                Some(x.kek_id.as_str()),
                Some(x.nonce.as_slice()),
                Some(x.ciphertext.as_slice()),
            ),
            None => (None, None, None),
        };
        let row = c
            .query_opt(
                &sql,
                &[
                    &user_id,
                    &name,
                    &p.kind,
                    &p.description,
                    &md,
                    &kek,
                    &nonce,
                    &ct,
                ],
            )
            .await
            .map_err(map_db_error)?;
        row.as_ref().map(meta).transpose()
    }

    async fn delete(
        &self,
        schema: &Ident,
        user_id: Uuid,
        name: &str,
    ) -> Result<Option<SecretMeta>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "DELETE FROM {s}.\"user_secrets\" WHERE user_id = $1 AND name = $2 RETURNING {META_COLS}"
        );
        let row = c
            .query_opt(&sql, &[&user_id, &name])
            .await
            .map_err(map_db_error)?;
        row.as_ref().map(meta).transpose()
    }

    async fn get(&self, schema: &Ident, user_id: Uuid, name: &str) -> Result<Option<SealedSecret>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT user_id, name, kek_id, nonce, ciphertext FROM {s}.\"user_secrets\"
              WHERE user_id = $1 AND name = $2"
        );
        let row = c
            .query_opt(&sql, &[&user_id, &name])
            .await
            .map_err(map_db_error)?;
        Ok(row.as_ref().map(sealed))
    }

    async fn touch(&self, schema: &Ident, user_id: Uuid, name: &str) -> Result<()> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "UPDATE {s}.\"user_secrets\" SET last_used_at = now() WHERE user_id = $1 AND name = $2"
        );
        c.execute(&sql, &[&user_id, &name])
            .await
            .map_err(map_db_error)?;
        Ok(())
    }

    async fn tenants(&self) -> Result<Vec<SecretTenant>> {
        let c = self.db.conn().await?;
        let rows = c
            .query(
                "SELECT id, name FROM abbotik_control.tenants t
                  WHERE to_regclass(quote_ident(t.schema) || '.user_secrets') IS NOT NULL
                  ORDER BY name",
                &[],
            )
            .await
            .map_err(map_db_error)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let n: String = r.get(1);
                ident::tenant_name(&n)
                    .ok()
                    .map(|name| SecretTenant { id: r.get(0), name })
            })
            .collect())
    }

    async fn stale(&self, schema: &Ident, kek_id: &str) -> Result<Vec<SealedSecret>> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "SELECT user_id, name, kek_id, nonce, ciphertext FROM {s}.\"user_secrets\"
              WHERE kek_id <> $1 ORDER BY user_id, name"
        );
        let rows = c.query(&sql, &[&kek_id]).await.map_err(map_db_error)?;
        Ok(rows.iter().map(sealed).collect())
    }

    async fn reseal(
        &self,
        schema: &Ident,
        user_id: Uuid,
        name: &str,
        old: &Sealed,
        new: &Sealed,
    ) -> Result<bool> {
        let s = schema.quoted();
        let c = self.db.conn().await?;
        let sql = format!(
            "UPDATE {s}.\"user_secrets\" SET kek_id = $5, nonce = $6, ciphertext = $7
              WHERE user_id = $1 AND name = $2 AND kek_id = $3 AND nonce = $4"
        );
        let n = c
            .execute(
                &sql,
                &[
                    &user_id,
                    &name,
                    &old.kek_id,
                    &old.nonce,
                    &new.kek_id,
                    &new.nonce,
                    &new.ciphertext,
                ],
            )
            .await
            .map_err(map_db_error)?;
        if n > 1 {
            return Err(Error::internal("reseal touched more than one row"));
        }
        Ok(n == 1)
    }
}
