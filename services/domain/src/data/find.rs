//! Find (A6.1, A6.2): `POST /api/find/:model` with its body grammar (including the bare where
//! form) and `GET /api/find/:model/:target`, the saved filters of the `filters` system table.
//! The `where` language itself is [`filter`]; select and order reuse [`query`].

use super::access::{self, Op};
use super::filter::{self, Filter};
use super::query::{self, ReadOptions, MAX_LIMIT};
use super::{join, table, DataService, Raw};
use crate::ident;
use crate::model::ModelDef;
use crate::ports::records::{Select, TrashedScope};
use crate::{Error, ErrorCode, Result, TenantCtx};
use serde_json::{json, Map, Value};

/// A parsed find request (also the `filter` of bulk operations, A8.1).
#[derive(Debug, Clone)]
pub(super) struct FindRequest {
    pub(super) r#where: Value,
    pub(super) select: Option<Value>,
    pub(super) order: Option<Value>,
    pub(super) limit: i64,
    pub(super) offset: i64,
    pub(super) trashed: TrashedScope,
    pub(super) total: bool,
}

/// The option keys of a find body (A6.2); every other key of a bare body is a condition.
pub(super) const OPTION_KEYS: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "trashed",
    "count",
    "includeTotal",
    "include_total",
];

fn path_err(code: ErrorCode, path: &str, msg: String) -> Error {
    Error::msg(code, msg).with_data(json!({ "path": path }))
}

pub(super) fn limit_of(v: &Value) -> Result<i64> {
    v.as_i64()
        .filter(|n| (0..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            Error::msg(
                ErrorCode::FilterInvalidLimit,
                format!("limit must be an integer from 0 to {MAX_LIMIT}"),
            )
            .with_data(json!({"path": "limit", "max": MAX_LIMIT}))
        })
}

pub(super) fn offset_of(v: &Value) -> Result<i64> {
    v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
        path_err(
            ErrorCode::FilterInvalidOffset,
            "offset",
            "offset must be an integer >= 0".into(),
        )
    })
}

pub(super) fn trashed_of(v: &Value) -> Result<TrashedScope> {
    match v.as_str() {
        Some("exclude") => Ok(TrashedScope::Exclude),
        Some("include") => Ok(TrashedScope::Include),
        Some("only") => Ok(TrashedScope::Only),
        _ => Err(Error::field_invalid(
            "trashed",
            "one of exclude, include, only",
        )),
    }
}

fn flag(v: &Value, key: &str) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| Error::field_invalid(key, "a boolean"))
}

/// Parses a find body (`None` = empty body).
pub(super) fn request(body: Option<&Value>) -> Result<FindRequest> {
    let obj = crate::body::object_or_empty(body, "The find body must be a JSON object")?;
    let bare = !obj.contains_key("where");
    let mut req = FindRequest {
        r#where: Value::Object(Map::new()),
        select: None,
        order: None,
        limit: query::DEFAULT_LIMIT,
        offset: 0,
        trashed: TrashedScope::Exclude,
        total: false,
    };
    let mut conditions = Map::new();
    for (k, v) in obj {
        // `null` options are absent (A1.1); a `null` condition stays a condition.
        if v.is_null() && OPTION_KEYS.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "where" => req.r#where = v.clone(),
            "select" => req.select = Some(v.clone()),
            "order" => req.order = Some(v.clone()),
            "limit" => req.limit = limit_of(v)?,
            "offset" => req.offset = offset_of(v)?,
            "trashed" => req.trashed = trashed_of(v)?,
            "count" | "includeTotal" | "include_total" => req.total |= flag(v, k)?,
            _ if bare => {
                conditions.insert(k.clone(), v.clone());
            }
            other => {
                return Err(path_err(
                    ErrorCode::FilterInvalid,
                    other,
                    format!(
                        "Unknown key in the find body: {} (conditions go inside where)",
                        ident::clip(other)
                    ),
                ))
            }
        }
    }
    if bare {
        req.r#where = Value::Object(conditions);
    } else if req.r#where.is_null() {
        req.r#where = Value::Object(Map::new());
    }
    Ok(req)
}

/// `select` of a find body as the `a,b` list of [`query::projection`].
fn select_list(v: Option<&Value>) -> Result<Option<String>> {
    let bad = |msg: String| path_err(ErrorCode::FilterInvalidSelect, "select", msg);
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "*" => Ok(None),
        Some(Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if !s.contains(',') && !s.trim().is_empty() => names.push(s.trim()),
                    _ => return Err(bad("select lists field names".into())),
                }
            }
            Ok(Some(names.join(",")))
        }
        Some(_) => Err(bad("select is an array of field names, \"*\" or []".into())),
    }
}

impl DataService {
    /// `POST /api/find/:model`: `[record…]`, or `{"data":[…],"total":N}` with a total.
    pub async fn find(&self, ctx: &TenantCtx, model: &str, body: Option<&Value>) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let req = request(body)?;
        self.run_find(ctx, &m, &req).await
    }

    /// `GET /api/find/:model/:target`: the saved filter by UUID or name; `limit`/`offset`
    /// (query text) override the saved values.
    pub async fn find_saved(
        &self,
        ctx: &TenantCtx,
        model: &str,
        target: &str,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let saved = self.saved_filter(ctx, &m, target).await?;
        let mut req = FindRequest {
            r#where: match saved.get("where") {
                Some(Value::Null) | None => Value::Object(Map::new()),
                Some(w) => w.clone(),
            },
            select: saved.get("select").cloned(),
            order: saved.get("order").cloned(),
            limit: match saved.get("limit") {
                Some(Value::Null) | None => query::DEFAULT_LIMIT,
                Some(v) => limit_of(v)?,
            },
            offset: match saved.get("offset") {
                Some(Value::Null) | None => 0,
                Some(v) => offset_of(v)?,
            },
            trashed: TrashedScope::Exclude,
            total: false,
        };
        let (l, o) = query::bounds(limit, offset)?;
        if limit.is_some_and(|s| !s.is_empty()) {
            req.limit = l;
        }
        if offset.is_some_and(|s| !s.is_empty()) {
            req.offset = o;
        }
        self.run_find(ctx, &m, &req).await
    }

    /// The saved filter row (as JSON) of `model` named or identified by `target`.
    async fn saved_filter(&self, ctx: &TenantCtx, m: &ModelDef, target: &str) -> Result<Value> {
        let fm = self.model(ctx, "filters").await?;
        let col = |n: &str| {
            filter::column(&fm, n).ok_or_else(|| Error::internal("filters model lacks a field"))
        };
        let key = match uuid::Uuid::parse_str(target) {
            Ok(u) => Filter::Eq {
                column: col("id")?,
                value: Value::String(u.hyphenated().to_string()),
            },
            Err(_) => Filter::Eq {
                column: col("name")?,
                value: Value::String(target.to_owned()),
            },
        };
        let sel = Select {
            table: table(ctx, &fm),
            projection: query::full_projection(&fm),
            filter: Filter::Eq {
                column: col("model_name")?,
                value: Value::String(m.model_name.clone()),
            }
            .and(key),
            trashed: TrashedScope::Exclude,
            order: query::finish_order(&mut Vec::new()),
            limit: 1,
            offset: 0,
        };
        let rows = self.store.select(ctx, &sel).await?;
        let Some(row) = rows.first() else {
            return Err(Error::msg(
                ErrorCode::FilterNotFound,
                format!("Saved filter not found: {}", ident::clip(target)),
            )
            .with_data(json!({
                "path": "target",
                "model": m.model_name,
                "target": ident::clip(target),
            })));
        };
        serde_json::from_str(row).map_err(Error::internal)
    }

    async fn run_find(&self, ctx: &TenantCtx, m: &ModelDef, req: &FindRequest) -> Result<Raw> {
        let sel = find_select(ctx, m, req, &ReadOptions::new())?;
        let locate = |e| filter::locate_regex_error(e, &req.r#where, "where");
        let _slot = self.query_slot(ctx).await?;
        let rows = if sel.limit == 0 {
            "[]".to_owned()
        } else {
            join(&self.store.select(ctx, &sel).await.map_err(locate)?)
        };
        if !req.total {
            return Ok(rows);
        }
        let Some(counter) = &self.counter else {
            return Err(Error::unavailable("find totals are not configured"));
        };
        let total = counter.count(ctx, &sel).await.map_err(locate)?;
        Ok(format!("{{\"data\":{rows},\"total\":{total}}}"))
    }

    /// Rows of a parsed find on `model` (bulk `select*`, A8.1): the checks of
    /// [`DataService::find`]; `opts` adds the `stat`/`access` flags of the request.
    pub(super) async fn find_rows(
        &self,
        ctx: &TenantCtx,
        model: &str,
        req: &FindRequest,
        opts: &ReadOptions,
    ) -> Result<Vec<String>> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let sel = find_select(ctx, &m, req, opts)?;
        if sel.limit == 0 {
            return Ok(Vec::new());
        }
        let _slot = self.query_slot(ctx).await?;
        self.store
            .select(ctx, &sel)
            .await
            .map_err(|e| filter::locate_regex_error(e, &req.r#where, "where"))
    }

    /// How many records a parsed find matches, ignoring its bounds (bulk `count`, A8.1).
    pub(super) async fn find_count(
        &self,
        ctx: &TenantCtx,
        model: &str,
        req: &FindRequest,
    ) -> Result<i64> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let sel = find_select(ctx, &m, req, &ReadOptions::new())?;
        let Some(counter) = &self.counter else {
            return Err(Error::unavailable("record counts are not configured"));
        };
        let _slot = self.query_slot(ctx).await?;
        counter
            .count(ctx, &sel)
            .await
            .map_err(|e| filter::locate_regex_error(e, &req.r#where, "where"))
    }
}

/// The read of a find request: its projection (with the `stat`/`access` flags of `base`),
/// order, `where`, trash scope and bounds.
fn find_select(
    ctx: &TenantCtx,
    m: &ModelDef,
    req: &FindRequest,
    base: &ReadOptions,
) -> Result<Select> {
    let opts = ReadOptions {
        select: select_list(req.select.as_ref())?,
        stat: base.stat,
        access: base.access,
        ..ReadOptions::new()
    };
    let projection = query::projection(m, &opts)?;
    let mut order = match &req.order {
        None => Vec::new(),
        Some(v) => query::order_value(m, v, "order")?,
    };
    let order = query::finish_order(&mut order);
    let f = filter::parse(m, &req.r#where, "where")?;
    Ok(Select {
        table: table(ctx, m),
        projection,
        filter: f,
        trashed: req.trashed,
        order,
        limit: req.limit,
        offset: req.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_forms() {
        let r = request(None).unwrap();
        assert_eq!(r.r#where, json!({}));
        assert_eq!(r.limit, 1000);
        let r = request(Some(&json!({"state":"new","limit":10,"count":true}))).unwrap();
        assert_eq!(r.r#where, json!({"state":"new"}));
        assert!(r.total && r.limit == 10);
        let r = request(Some(&json!({"where":{"count":1},"include_total":true}))).unwrap();
        assert_eq!(r.r#where, json!({"count":1}));
        assert!(r.total);
        let e = request(Some(&json!({"where":{},"state":"x"}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalid);
        let e = request(Some(&json!([1]))).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationBodyNotObject);
        for (b, code) in [
            (json!({"limit": 10001}), ErrorCode::FilterInvalidLimit),
            (json!({"limit": "5"}), ErrorCode::FilterInvalidLimit),
            (json!({"offset": -1}), ErrorCode::FilterInvalidOffset),
            (json!({"trashed": "all"}), ErrorCode::ValidationFieldInvalid),
            (json!({"count": "yes"}), ErrorCode::ValidationFieldInvalid),
        ] {
            assert_eq!(request(Some(&b)).unwrap_err().code, code, "{b}");
        }
        let r = request(Some(&json!({"trashed":"only","limit":0}))).unwrap();
        assert_eq!(r.trashed, TrashedScope::Only);
        assert_eq!(r.limit, 0);
    }

    #[test]
    fn select_forms() {
        assert_eq!(select_list(Some(&json!("*"))).unwrap(), None);
        assert_eq!(select_list(Some(&json!([]))).unwrap(), Some(String::new()));
        assert_eq!(
            select_list(Some(&json!(["a", "b"]))).unwrap(),
            Some("a,b".into())
        );
        assert!(select_list(Some(&json!(["a,b"]))).is_err());
        assert!(select_list(Some(&json!([1]))).is_err());
        assert!(select_list(Some(&json!("a"))).is_err());
    }
}
