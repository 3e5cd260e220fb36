//! Owned relationships (A5.3): `/api/data/:model/:id/:relationship[/:child]`. The child field
//! (`related_model` = `:model`, `relationship_name` = `:relationship`) is the key; the parent
//! must be a readable live record; the key is set from the URL and cannot be moved.

use super::access::{self, Op};
use super::filter::Filter;
use super::query::ReadOptions;
use super::records::{
    delete_ops, items, object_body, prepare_batch, select_for, shape, single, with_id,
};
use super::validate::Mode;
use super::{join, parse_id, record_not_found, table, DataService, Raw};
use crate::ident::Ident;
use crate::model::{FieldDef, ModelDef};
use crate::ports::records::{Column, Target, TrashedScope};
use crate::{Error, Result, TenantCtx};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// `/api/data/:model/:id/:relationship` of a request.
#[derive(Debug, Clone, Copy)]
pub struct RelPath<'a> {
    pub model: &'a str,
    pub id: &'a str,
    pub relationship: &'a str,
}

/// A resolved relationship: the child model, its key field and the parent id.
struct Rel {
    child: Arc<ModelDef>,
    fk: FieldDef,
    parent: Uuid,
}

impl Rel {
    /// `fk = parent`.
    fn scope(&self) -> Filter {
        Filter::Eq {
            column: Column {
                name: Ident::trusted(self.fk.field_name.clone()),
                ty: self.fk.field_type,
            },
            value: Value::String(self.parent.to_string()),
        }
    }

    /// Drops a key equal to the parent; a different key cannot move the child here.
    fn strip_fk(&self, obj: &mut Map<String, Value>, index: usize) -> Result<()> {
        let name = &self.fk.field_name;
        match obj.get(name) {
            None => Ok(()),
            Some(Value::String(s)) if Uuid::parse_str(s).ok() == Some(self.parent) => {
                obj.remove(name);
                Ok(())
            }
            Some(_) => Err(Error::field_invalid(
                name,
                "the parent id (a child cannot be moved through its relationship routes)",
            )
            .with_data(json!({"field": name, "index": index}))),
        }
    }
}

impl DataService {
    async fn rel(&self, ctx: &TenantCtx, path: &RelPath<'_>, op: Op) -> Result<Rel> {
        let (model, id, rel) = (path.model, path.id, path.relationship);
        let parent = self.model(ctx, model).await?;
        access::check(ctx, &parent, Op::Read)?;
        let (child, fk) = self
            .describe
            .relationship(ctx, &parent.model_name, rel)
            .await?;
        access::check(ctx, &child, op)?;
        let pid = parse_id(&parent.model_name, id)?;
        if !self
            .store
            .exists(ctx, &table(ctx, &parent), pid, TrashedScope::Exclude)
            .await?
        {
            return Err(record_not_found(&parent.model_name, id));
        }
        Ok(Rel {
            child,
            fk,
            parent: pid,
        })
    }

    /// `GET /api/data/:model/:id/:relationship`.
    pub async fn rel_list(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let r = self.rel(ctx, path, Op::Read).await?;
        let trashed = if opts.include_trashed {
            TrashedScope::Include
        } else {
            TrashedScope::Exclude
        };
        let sel = select_for(ctx, &r.child, opts, trashed, r.scope())?;
        if sel.limit == 0 {
            return Ok("[]".into());
        }
        Ok(join(&self.store.select(ctx, &sel).await?))
    }

    /// `POST /api/data/:model/:id/:relationship` — the key is set to `:id`.
    pub async fn rel_create(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let r = self.rel(ctx, path, Op::Create).await?;
        let empty = Value::Object(Map::new());
        let (list, array) = items(body.unwrap_or(&empty))?;
        let mut owned: Vec<Map<String, Value>> = list.into_iter().cloned().collect();
        for o in &mut owned {
            o.insert(r.fk.field_name.clone(), json!(r.parent.to_string()));
        }
        if owned.is_empty() {
            return Ok("[]".into());
        }
        let refs: Vec<&Map<String, Value>> = owned.iter().collect();
        let modes = vec![Mode::Create; refs.len()];
        let batch = prepare_batch(&r.child, &refs, &modes, false)?;
        access::check_sudo_fields(ctx, &r.child, &batch.sudo_fields)?;
        let w = Self::insert_write(ctx, &r.child, batch.docs.clone(), Vec::new(), opts)?;
        let rows = self.run(ctx, &r.child, w, &batch.docs).await?;
        Ok(shape(rows, array))
    }

    /// `PUT /api/data/:model/:id/:relationship` — `[{id,…}]` of children, or one object of
    /// changes for every live child.
    pub async fn rel_update(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let r = self.rel(ctx, path, Op::Update).await?;
        let empty = Value::Object(Map::new());
        let body = body.unwrap_or(&empty);
        let (list, array) = items(body)?;
        let mut owned: Vec<Map<String, Value>> = list.into_iter().cloned().collect();
        for (i, o) in owned.iter_mut().enumerate() {
            r.strip_fk(o, i)?;
            if !array {
                o.remove("id");
            }
        }
        let refs: Vec<&Map<String, Value>> = owned.iter().collect();
        let modes = vec![Mode::Update; refs.len()];
        let batch = prepare_batch(&r.child, &refs, &modes, array)?;
        access::check_sudo_fields(ctx, &r.child, &batch.sudo_fields)?;
        let rows = if array {
            if batch.docs.is_empty() {
                return Ok("[]".into());
            }
            self.update_ids(ctx, &r.child, batch.docs, r.scope(), opts)
                .await?
        } else {
            let doc = batch
                .docs
                .into_iter()
                .next()
                .ok_or_else(|| Error::internal("no doc"))?;
            self.update_filter(ctx, &r.child, doc, r.scope(), opts)
                .await?
        };
        Ok(join(&rows))
    }

    /// `DELETE /api/data/:model/:id/:relationship` — trashes every live child.
    pub async fn rel_delete(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        permanent: bool,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let (op, lop) = delete_ops(permanent);
        let r = self.rel(ctx, path, op).await?;
        let rows = self
            .life(
                ctx,
                &r.child,
                lop,
                Target::Filter(r.scope()),
                Filter::True,
                opts,
            )
            .await?;
        Ok(join(&rows))
    }

    /// `GET /api/data/:model/:id/:relationship/:child`.
    pub async fn rel_get(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        child: &str,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let r = self.rel(ctx, path, Op::Read).await?;
        let trashed = if opts.include_trashed {
            TrashedScope::Include
        } else {
            TrashedScope::Exclude
        };
        self.one(ctx, &r.child, child, opts, trashed, r.scope())
            .await
    }

    /// `PUT`/`PATCH /api/data/:model/:id/:relationship/:child`.
    pub async fn rel_update_one(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        child: &str,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let r = self.rel(ctx, path, Op::Update).await?;
        let cid = parse_id(&r.child.model_name, child)?;
        let mut obj = object_body(body)?;
        obj.remove("id");
        r.strip_fk(&mut obj, 0)?;
        let batch = prepare_batch(&r.child, &[&obj], &[Mode::Update], false)?;
        access::check_sudo_fields(ctx, &r.child, &batch.sudo_fields)?;
        let docs = with_id(batch.docs, cid);
        let rows = self
            .update_ids(ctx, &r.child, docs, r.scope(), opts)
            .await?;
        single(rows, &r.child.model_name, child)
    }

    /// `DELETE /api/data/:model/:id/:relationship/:child`.
    pub async fn rel_delete_one(
        &self,
        ctx: &TenantCtx,
        path: &RelPath<'_>,
        child: &str,
        permanent: bool,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let (op, lop) = delete_ops(permanent);
        let r = self.rel(ctx, path, op).await?;
        let cid = parse_id(&r.child.model_name, child)?;
        let rows = self
            .life(
                ctx,
                &r.child,
                lop,
                Target::Ids(vec![(0, cid)]),
                r.scope(),
                opts,
            )
            .await?;
        single(rows, &r.child.model_name, child)
    }
}
