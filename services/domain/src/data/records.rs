//! `/api/data/:model` and `/api/data/:model/:id` (A5.1): list, get, create/upsert, merge
//! updates (by id, bulk, `?where`), soft delete and `?permanent=true`.

use super::access::{self, Op};
use super::filter::{self, Filter};
use super::query::{self, ReadOptions};
use super::validate::{self, Mode, Prepared};
use super::{
    id_list, immutable_columns, join, not_object, parse_id, record_not_found, ref_checks, rows,
    table, unique_indexes, writable_columns, DataService, Raw,
};
use crate::ident::Ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::records::{
    Column, Doc, Insert, Life, LifeOp, Select, Target, TrashedScope, Update, Write, WriteOp,
};
use crate::{Error, Result, TenantCtx};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use uuid::Uuid;

/// A read of the model per the query options, with an extra condition.
pub(crate) fn select_for(
    ctx: &TenantCtx,
    m: &ModelDef,
    opts: &ReadOptions,
    trashed: TrashedScope,
    extra: Filter,
) -> Result<Select> {
    let projection = query::projection(m, opts)?;
    let filter = match opts.r#where.as_deref().map(str::trim) {
        None | Some("") => Filter::True,
        Some(w) => filter::parse_param(m, w)?,
    };
    let order = query::order(m, opts.order.as_deref())?;
    let (limit, offset) = query::bounds(opts.limit.as_deref(), opts.offset.as_deref())?;
    Ok(Select {
        table: table(ctx, m),
        projection,
        filter: extra.and(filter),
        trashed,
        order,
        limit,
        offset,
    })
}

/// `id = value`.
/// The read of one record by id: the options' projection, no list options, limit 1.
pub(crate) fn select_by_id(
    ctx: &TenantCtx,
    m: &ModelDef,
    id: &str,
    opts: &ReadOptions,
    trashed: TrashedScope,
    extra: Filter,
) -> Result<Select> {
    let uid = parse_id(&m.model_name, id)?;
    let mut o = opts.clone();
    o.r#where = None;
    o.order = None;
    o.limit = None;
    o.offset = None;
    let mut sel = select_for(ctx, m, &o, trashed, id_eq(uid).and(extra))?;
    sel.limit = 1;
    Ok(sel)
}

pub(crate) fn id_eq(id: Uuid) -> Filter {
    Filter::Eq {
        column: Column {
            name: Ident::trusted("id"),
            ty: FieldType::Uuid,
        },
        value: Value::String(id.to_string()),
    }
}

pub(crate) fn scope_of(opts: &ReadOptions) -> TrashedScope {
    if opts.include_trashed {
        TrashedScope::Include
    } else {
        TrashedScope::Exclude
    }
}

/// Validated documents of a create/update, or the one `VALIDATION_ERROR`.
pub(crate) struct Batch {
    pub docs: Vec<Doc>,
    pub sudo_fields: Vec<String>,
}

/// Validates body items; `modes[i]` picks create or update per item; `need_id` requires an
/// `id` key (bulk PUT); `force` sets keys before validation (relationship key).
pub(crate) fn prepare_batch(
    m: &ModelDef,
    items: &[&Map<String, Value>],
    modes: &[Mode],
    need_id: bool,
) -> Result<Batch> {
    let mut errors = Vec::new();
    let mut docs = Vec::with_capacity(items.len());
    let mut sudo_fields = Vec::new();
    let mut seen = HashSet::new();
    for (i, (item, mode)) in items.iter().zip(modes).enumerate() {
        let Prepared {
            values,
            id,
            sudo_fields: sf,
        } = validate::prepare(m, i, item, *mode, &mut errors);
        sudo_fields.extend(sf);
        if need_id && id.is_none() && !item.contains_key("id") {
            errors.push(validate::FieldError {
                index: i,
                field: "id".into(),
                rule: "required",
                message: "id is required".into(),
            });
        }
        let id = id.unwrap_or_else(Uuid::new_v4);
        if (need_id || item.contains_key("id")) && !seen.insert(id) {
            return Err(
                Error::field_invalid("id", "distinct ids within one request")
                    .with_data(json!({"field": "id", "index": i, "id": id})),
            );
        }
        docs.push(Doc {
            ord: i as i64,
            id,
            values,
        });
    }
    if !errors.is_empty() {
        return Err(validate::error(errors));
    }
    Ok(Batch { docs, sudo_fields })
}

/// Body items as objects: `(items, was_array)`.
pub(crate) fn items(body: &Value) -> Result<(Vec<&Map<String, Value>>, bool)> {
    match body {
        Value::Object(o) => Ok((vec![o], false)),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, v) in a.iter().enumerate() {
                out.push(v.as_object().ok_or_else(|| not_object(Some(i)))?);
            }
            Ok((out, true))
        }
        _ => Err(not_object(None)),
    }
}

impl DataService {
    /// `GET /api/data/:model`.
    pub async fn list(&self, ctx: &TenantCtx, model: &str, opts: &ReadOptions) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let sel = select_for(ctx, &m, opts, scope_of(opts), Filter::True)?;
        if sel.limit == 0 {
            return Ok("[]".into());
        }
        let _slot = self.query_slot(ctx).await?;
        let rows = self.store.select(ctx, &sel).await;
        let rows = rows.map_err(|e| filter::locate_regex_param(e, opts.r#where.as_deref()))?;
        Ok(join(&rows))
    }

    /// One record by id within the trash scope, or `404 RECORD_NOT_FOUND`.
    pub(crate) async fn one(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        id: &str,
        opts: &ReadOptions,
        trashed: TrashedScope,
        extra: Filter,
    ) -> Result<Raw> {
        let sel = select_by_id(ctx, m, id, opts, trashed, extra)?;
        self.store
            .select(ctx, &sel)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| record_not_found(&m.model_name, id))
    }

    /// `GET /api/data/:model/:id`.
    pub async fn get(
        &self,
        ctx: &TenantCtx,
        model: &str,
        id: &str,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        self.one(ctx, &m, id, opts, scope_of(opts), Filter::True)
            .await
    }

    /// Runs a write and renders its rows in request order.
    pub(crate) async fn run(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        w: Write,
        docs: &[Doc],
    ) -> Result<Vec<String>> {
        let out = self.store.write(ctx, &w).await?;
        rows(&m.model_name, docs, out)
    }

    /// The write of inserts (and, for upsert, merge updates of existing ids).
    pub(crate) fn insert_write(
        ctx: &TenantCtx,
        m: &ModelDef,
        inserts: Vec<Doc>,
        updates: Vec<Doc>,
        opts: &ReadOptions,
    ) -> Result<Write> {
        let mut ops = Vec::new();
        if !inserts.is_empty() {
            ops.push(WriteOp::Insert(Insert {
                table: table(ctx, m),
                columns: writable_columns(m),
                docs: inserts,
            }));
        }
        if !updates.is_empty() {
            let target = Target::Ids(updates.iter().map(|d| (d.ord, d.id)).collect());
            ops.push(WriteOp::Update(Update {
                table: table(ctx, m),
                columns: writable_columns(m),
                docs: updates,
                target,
                scope: Filter::True,
                immutable: immutable_columns(m),
            }));
        }
        Ok(Write {
            ops,
            refs: ref_checks(ctx, m),
            projection: query::projection(m, opts)?,
            unique: unique_indexes(m),
        })
    }

    /// `POST /api/data/:model` (object or array; `?upsert=true`). Returns the answer and
    /// whether it is an array.
    pub async fn create(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
        upsert: bool,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Create)?;
        let empty = Value::Object(Map::new());
        let (items, array) = items(body.unwrap_or(&empty))?;
        if items.is_empty() {
            return Ok("[]".into());
        }
        let existing = if upsert {
            self.existing_ids(ctx, &m, &items).await?
        } else {
            HashSet::new()
        };
        let modes: Vec<Mode> = items
            .iter()
            .map(|o| {
                let id = o
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok());
                if id.is_some_and(|id| existing.contains(&id)) {
                    Mode::Update
                } else {
                    Mode::Create
                }
            })
            .collect();
        if modes.contains(&Mode::Update) {
            access::check(ctx, &m, Op::Update)?;
        }
        let batch = prepare_batch(&m, &items, &modes, false)?;
        access::check_sudo_fields(ctx, &m, &batch.sudo_fields)?;
        let (updates, inserts): (Vec<Doc>, Vec<Doc>) = batch
            .docs
            .iter()
            .cloned()
            .zip(&modes)
            .partition(|(_, mode)| **mode == Mode::Update)
            .into_iter_pair();
        let w = Self::insert_write(ctx, &m, inserts, updates, opts)?;
        let rows = self.run(ctx, &m, w, &batch.docs).await?;
        Ok(shape(rows, array))
    }

    /// Ids among the items that exist (live or trashed) — upsert updates those.
    async fn existing_ids(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        items: &[&Map<String, Value>],
    ) -> Result<HashSet<Uuid>> {
        let ids: Vec<Value> = items
            .iter()
            .filter_map(|o| o.get("id")?.as_str())
            .filter_map(|s| Uuid::parse_str(s).ok())
            .map(|u| Value::String(u.to_string()))
            .collect();
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let n = ids.len() as i64;
        let sel = Select {
            table: table(ctx, m),
            projection: crate::ports::records::Projection {
                user: Vec::new(),
                system: Vec::new(),
            },
            filter: Filter::In {
                column: Column {
                    name: Ident::trusted("id"),
                    ty: FieldType::Uuid,
                },
                values: ids,
                or_null: false,
            },
            trashed: TrashedScope::Include,
            order: query::finish_order(&mut Vec::new()),
            limit: n,
            offset: 0,
        };
        let rows = self.store.select(ctx, &sel).await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(r).ok())
            .filter_map(|v| v.get("id")?.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect())
    }

    /// A merge update of listed ids (documents carry their ids) within `scope`.
    pub(crate) async fn update_ids(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        docs: Vec<Doc>,
        scope: Filter,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let target = Target::Ids(docs.iter().map(|d| (d.ord, d.id)).collect());
        let w = Write {
            ops: vec![WriteOp::Update(Update {
                table: table(ctx, m),
                columns: writable_columns(m),
                docs: docs.clone(),
                target,
                scope,
                immutable: immutable_columns(m),
            })],
            refs: ref_checks(ctx, m),
            projection: query::projection(m, opts)?,
            unique: unique_indexes(m),
        };
        self.run(ctx, m, w, &docs).await
    }

    /// A merge update of every live row matching `filter`.
    pub(crate) async fn update_filter(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        doc: Doc,
        filter: Filter,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let docs = vec![doc];
        let w = Write {
            ops: vec![WriteOp::Update(Update {
                table: table(ctx, m),
                columns: writable_columns(m),
                docs: docs.clone(),
                target: Target::Filter(filter),
                scope: Filter::True,
                immutable: immutable_columns(m),
            })],
            refs: ref_checks(ctx, m),
            projection: query::projection(m, opts)?,
            unique: unique_indexes(m),
        };
        self.run(ctx, m, w, &docs).await
    }

    /// `PUT /api/data/:model` — `[{id,…changes}]`.
    pub async fn update_many(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Update)?;
        let body = body.cloned().unwrap_or(Value::Array(Vec::new()));
        if !body.is_array() {
            return Err(Error::msg(
                crate::ErrorCode::ValidationBodyNotArray,
                "Body must be an array of {id, …changes} objects",
            ));
        }
        let (items, _) = items(&body)?;
        if items.is_empty() {
            return Ok("[]".into());
        }
        let modes = vec![Mode::Update; items.len()];
        let batch = prepare_batch(&m, &items, &modes, true)?;
        access::check_sudo_fields(ctx, &m, &batch.sudo_fields)?;
        Ok(join(
            &self
                .update_ids(ctx, &m, batch.docs, Filter::True, opts)
                .await?,
        ))
    }

    /// `PUT`/`PATCH /api/data/:model/:id`.
    pub async fn update_one(
        &self,
        ctx: &TenantCtx,
        model: &str,
        id: &str,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Update)?;
        let uid = parse_id(&m.model_name, id)?;
        let mut obj = object_body(body)?;
        obj.remove("id");
        let batch = prepare_batch(&m, &[&obj], &[Mode::Update], false)?;
        access::check_sudo_fields(ctx, &m, &batch.sudo_fields)?;
        let docs = with_id(batch.docs, uid);
        let rows = self.update_ids(ctx, &m, docs, Filter::True, opts).await?;
        single(rows, &m.model_name, id)
    }

    /// `PATCH /api/data/:model?where=…`.
    pub async fn patch_where(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Update)?;
        let Some(w) = opts.r#where.as_deref().filter(|w| !w.trim().is_empty()) else {
            return Err(Error::field_missing("where"));
        };
        let f = filter::parse_param(&m, w)?;
        let rows = self.patch_filter(ctx, &m, f, body, opts).await;
        Ok(join(
            &rows.map_err(|e| filter::locate_regex_param(e, Some(w)))?,
        ))
    }

    /// Bulk `update-any` (A8.1): [`DataService::patch_where`] with a parsed `where` object.
    pub(super) async fn patch_where_value(
        &self,
        ctx: &TenantCtx,
        model: &str,
        r#where: &Value,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Update)?;
        let f = filter::parse(&m, r#where, "where")?;
        let rows = self.patch_filter(ctx, &m, f, body, opts).await;
        rows.map_err(|e| filter::locate_regex_error(e, r#where, "where"))
    }

    /// The merge of one body into every live row matching `f` (role already checked).
    async fn patch_filter(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        f: Filter,
        body: Option<&Value>,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let mut obj = object_body(body)?;
        obj.remove("id");
        let batch = prepare_batch(m, &[&obj], &[Mode::Update], false)?;
        access::check_sudo_fields(ctx, m, &batch.sudo_fields)?;
        let doc = batch
            .docs
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no doc"))?;
        self.update_filter(ctx, m, doc, f, opts).await
    }

    /// Bulk `delete-any` (A8.1): [`DataService::delete_many`] by a parsed `where` object.
    pub(super) async fn delete_where_value(
        &self,
        ctx: &TenantCtx,
        model: &str,
        r#where: &Value,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let m = self.model(ctx, model).await?;
        let (op, lop) = delete_ops(false);
        access::check(ctx, &m, op)?;
        let f = filter::parse(&m, r#where, "where")?;
        let rows = self
            .life(ctx, &m, lop, Target::Filter(f), Filter::True, opts)
            .await;
        rows.map_err(|e| filter::locate_regex_error(e, r#where, "where"))
    }

    /// Trash (or trash and purge) rows; `Life` with the model's cascade.
    pub(crate) async fn life(
        &self,
        ctx: &TenantCtx,
        m: &ModelDef,
        op: LifeOp,
        target: Target,
        scope: Filter,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let cascade = self.cascade_plan(ctx, m).await?;
        let w = Write {
            ops: vec![WriteOp::Life(Life {
                table: table(ctx, m),
                op,
                target,
                scope,
                cascade,
                restore_refs: ref_checks(ctx, m),
            })],
            refs: Vec::new(),
            projection: query::projection(m, opts)?,
            unique: unique_indexes(m),
        };
        self.run(ctx, m, w, &[]).await
    }

    /// `DELETE /api/data/:model` — ids in the body, or `?where` without a body.
    pub async fn delete_many(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
        permanent: bool,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        let (op, lop) = delete_ops(permanent);
        access::check(ctx, &m, op)?;
        let target = match (
            body,
            opts.r#where.as_deref().filter(|w| !w.trim().is_empty()),
        ) {
            (Some(b), _) if !is_empty_object(b) => Target::Ids(id_list(&m.model_name, b)?),
            (_, Some(w)) => Target::Filter(filter::parse_param(&m, w)?),
            _ => return Err(Error::field_missing("where")),
        };
        if matches!(&target, Target::Ids(ids) if ids.is_empty()) {
            return Ok("[]".into());
        }
        let rows = self.life(ctx, &m, lop, target, Filter::True, opts).await;
        Ok(join(&rows.map_err(|e| {
            filter::locate_regex_param(e, opts.r#where.as_deref())
        })?))
    }

    /// `DELETE /api/data/:model/:id` (`?permanent=true` purges).
    pub async fn delete_one(
        &self,
        ctx: &TenantCtx,
        model: &str,
        id: &str,
        permanent: bool,
        opts: &ReadOptions,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        let (op, lop) = delete_ops(permanent);
        access::check(ctx, &m, op)?;
        let uid = parse_id(&m.model_name, id)?;
        let rows = self
            .life(
                ctx,
                &m,
                lop,
                Target::Ids(vec![(0, uid)]),
                Filter::True,
                opts,
            )
            .await?;
        single(rows, &m.model_name, id)
    }
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

pub(crate) fn delete_ops(permanent: bool) -> (Op, LifeOp) {
    if permanent {
        (Op::Purge, LifeOp::TrashPurge)
    } else {
        (Op::Trash, LifeOp::Trash)
    }
}

/// The body as an object (`{}` when empty).
pub(crate) fn object_body(body: Option<&Value>) -> Result<Map<String, Value>> {
    match body {
        None => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(not_object(None)),
    }
}

pub(crate) fn with_id(mut docs: Vec<Doc>, id: Uuid) -> Vec<Doc> {
    for d in &mut docs {
        d.id = id;
    }
    docs
}

/// The one row of a single-record write.
pub(crate) fn single(rows: Vec<String>, model: &str, id: &str) -> Result<Raw> {
    rows.into_iter()
        .next()
        .ok_or_else(|| record_not_found(model, id))
}

/// One object for an object body, an array for an array body.
pub(crate) fn shape(rows: Vec<String>, array: bool) -> Raw {
    if array {
        join(&rows)
    } else {
        rows.into_iter().next().unwrap_or_else(|| "null".into())
    }
}

/// `partition` on pairs, keeping only the documents.
trait PairsExt {
    fn into_iter_pair(self) -> (Vec<Doc>, Vec<Doc>);
}

impl PairsExt for (Vec<(Doc, &Mode)>, Vec<(Doc, &Mode)>) {
    fn into_iter_pair(self) -> (Vec<Doc>, Vec<Doc>) {
        (
            self.0.into_iter().map(|(d, _)| d).collect(),
            self.1.into_iter().map(|(d, _)| d).collect(),
        )
    }
}
