//! The trash (A10) and stat (A12). Restore brings back the children a cascade trashed with
//! the record (same `trashed_at`); purge sets `deleted_at` on the record and its cascade.

use super::access::{self, Op};
use super::filter::Filter;
use super::query::{self, ReadOptions};
use super::records::{select_for, single};
use super::{id_list, join, parse_id, DataService, Raw};
use crate::ports::records::{LifeOp, Target, TrashedModel, TrashedScope};
use crate::{Result, TenantCtx};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `GET /api/trashed`: default rows per model.
pub const TRASHED_PER_MODEL: i64 = 100;

impl DataService {
    /// `GET /api/trashed` — `{model: [record…]}` for models with trashed rows.
    pub async fn trashed_all(&self, ctx: &TenantCtx, opts: &ReadOptions) -> Result<Raw> {
        let limit = match opts.limit.as_deref() {
            None | Some("") => TRASHED_PER_MODEL,
            some => query::bounds(some, None)?.0,
        };
        let mut models = Vec::new();
        for name in self.describe.list(ctx).await? {
            let m = self.model(ctx, &name).await?;
            if !access::can_list_trashed(ctx, &m) {
                continue;
            }
            models.push(TrashedModel {
                model: name,
                table: super::table(ctx, &m),
                projection: query::projection(&m, &{
                    let mut o = opts.clone();
                    o.select = None;
                    o
                })?,
            });
        }
        if limit == 0 || models.is_empty() {
            return Ok("{}".into());
        }
        let rows = self.store.trashed_overview(ctx, &models, limit).await?;
        let mut out = String::from("{");
        let mut first = true;
        for tm in &models {
            let recs: Vec<String> = rows
                .iter()
                .filter(|(m, _)| *m == tm.model)
                .map(|(_, r)| r.clone())
                .collect();
            if recs.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&json!(tm.model).to_string());
            out.push(':');
            out.push_str(&join(&recs));
        }
        out.push('}');
        Ok(out)
    }

    /// `GET /api/trashed/:model`.
    pub async fn trashed_list(
        &self,
        ctx: &TenantCtx,
        model: &str,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let sel = select_for(ctx, &m, opts, TrashedScope::Only, Filter::True)?;
        if sel.limit == 0 {
            return Ok("[]".into());
        }
        Ok(join(&self.store.select(ctx, &sel).await?))
    }

    /// `GET /api/trashed/:model/:id`.
    pub async fn trashed_get(
        &self,
        ctx: &TenantCtx,
        model: &str,
        id: &str,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        self.one(ctx, &m, id, opts, TrashedScope::Only, Filter::True)
            .await
    }

    /// `POST /api/trashed/:model/:id`.
    pub async fn restore_one(
        &self,
        ctx: &TenantCtx,
        model: &str,
        id: &str,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Restore)?;
        let uid = parse_id(&m.model_name, id)?;
        let rows = self
            .life(
                ctx,
                &m,
                LifeOp::Restore,
                Target::Ids(vec![(0, uid)]),
                Filter::True,
                opts,
            )
            .await?;
        single(rows, &m.model_name, id)
    }

    /// `POST /api/trashed/:model` — `["id",…]` or `[{"id":…},…]`.
    pub async fn restore_many(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Restore)?;
        let ids = id_list(&m.model_name, body.unwrap_or(&Value::Null))?;
        if ids.is_empty() {
            return Ok("[]".into());
        }
        let rows = self
            .life(
                ctx,
                &m,
                LifeOp::Restore,
                Target::Ids(ids),
                Filter::True,
                opts,
            )
            .await?;
        Ok(join(&rows))
    }

    async fn purge(
        &self,
        ctx: &TenantCtx,
        model: &str,
        ids: Vec<(i64, uuid::Uuid)>,
    ) -> Result<Vec<Value>> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Purge)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out: Vec<Value> = ids
            .iter()
            .map(|(_, id)| json!({"id": id.to_string(), "purged": true}))
            .collect();
        let mut opts = ReadOptions::new();
        opts.select = Some("id".into());
        self.life(
            ctx,
            &m,
            LifeOp::Purge,
            Target::Ids(ids),
            Filter::True,
            &opts,
        )
        .await?;
        Ok(out)
    }

    /// `DELETE /api/trashed/:model/:id` → `{"id","purged":true}`.
    pub async fn purge_one(&self, ctx: &TenantCtx, model: &str, id: &str) -> Result<Value> {
        let uid = match uuid::Uuid::parse_str(id) {
            Ok(u) => u,
            Err(_) => {
                let m = self.model(ctx, model).await?;
                access::check(ctx, &m, Op::Purge)?;
                return Err(super::record_not_found(&m.model_name, id));
            }
        };
        let mut v = self.purge(ctx, model, vec![(0, uid)]).await?;
        Ok(v.pop().unwrap_or(Value::Null))
    }

    /// `DELETE /api/trashed/:model` → `[{"id","purged":true}…]`.
    pub async fn purge_many(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Purge)?;
        let ids = id_list(&m.model_name, body.unwrap_or(&Value::Null))?;
        Ok(Value::Array(self.purge(ctx, model, ids).await?))
    }

    /// `GET /api/stat/:model/:id` — live or trashed.
    pub async fn stat(&self, ctx: &TenantCtx, model: &str, id: &str) -> Result<Value> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let raw = self
            .one(
                ctx,
                &m,
                id,
                &ReadOptions::new(),
                TrashedScope::Include,
                Filter::True,
            )
            .await?;
        let rec: Value = serde_json::from_str(&raw).map_err(crate::Error::internal)?;
        Ok(stat_of(&m.model_name, &rec))
    }
}

/// The stat object of a rendered record (A12).
pub fn stat_of(model: &str, rec: &Value) -> Value {
    let id = rec.get("id").and_then(Value::as_str).unwrap_or_default();
    let updated = rec
        .get("updated_at")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(updated.as_bytes());
    let digest = hex::encode(h.finalize());
    let size = serde_json::to_string(rec).map(|s| s.len()).unwrap_or(0);
    json!({
        "id": id,
        "model": model,
        "created_at": rec.get("created_at").cloned().unwrap_or(Value::Null),
        "updated_at": rec.get("updated_at").cloned().unwrap_or(Value::Null),
        "trashed_at": rec.get("trashed_at").cloned().unwrap_or(Value::Null),
        "deleted_at": Value::Null,
        "etag": format!("\"{}\"", &digest[..16]),
        "size": size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_and_size() {
        let rec = json!({"id":"a","updated_at":"2026-05-06T14:00:00.000000Z","meta":{"x": 1}});
        let s = stat_of("orders", &rec);
        let mut h = Sha256::new();
        h.update(b"a2026-05-06T14:00:00.000000Z");
        let want = format!("\"{}\"", &hex::encode(h.finalize())[..16]);
        assert_eq!(s["etag"], json!(want));
        assert_eq!(s["size"], json!(serde_json::to_string(&rec).unwrap().len()));
        assert_eq!(s["deleted_at"], Value::Null);
    }
}
