//! Aggregate (A7): `POST /api/aggregate/:model` (aggregate functions under aliases, `groupBy`
//! with fields and `$dateTrunc` buckets, `having`, `order`, bounds, trash scope) and the GET
//! form (`count`, `sum=f`, `avg=f`, `min=f`, `max=f`, `where=`). Parsing and validation end in
//! a plain [`AggregateQuery`]; the SQL is the adapter's.

mod groups;
mod having;
#[cfg(test)]
mod tests;

use super::access::{self, Op};
use super::filter;
use super::find::{limit_of, offset_of, trashed_of};
use super::query::DEFAULT_LIMIT;
use super::{table, DataService, Raw};
use crate::ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::aggregate::{AggFn, Aggregate, AggregateQuery, GroupExpr};
use crate::ports::records::TrashedScope;
use crate::{Error, ErrorCode, Result, TenantCtx};
use groups::{groups, order, out_keys};
use having::Having;
use serde_json::{json, Map, Value};

/// Most aggregate functions / group keys of one request.
const MAX_AGGREGATES: usize = 32;
const MAX_GROUPS: usize = 16;

// Error paths are written like the filter's: `aggregate.total`, `having["a.b"]`.
use filter::{err, key_path};

/// `^[a-z_][a-z0-9_]{0,62}$`.
fn alias_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// An IANA zone name in shape (`Europe/Paris`, `America/Argentina/Buenos_Aires`, `UTC`); the
/// adapter checks it exists.
fn timezone_ok(s: &str) -> bool {
    s.len() <= 64
        && s.split('/').count() <= 4
        && s.split('/').enumerate().all(|(i, part)| {
            let b = part.as_bytes();
            !b.is_empty()
                && (i > 0 || b[0].is_ascii_alphabetic())
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+'))
        })
}

fn is_numeric(ty: FieldType) -> bool {
    matches!(
        ty,
        FieldType::Integer | FieldType::Bigserial | FieldType::Decimal
    )
}

/// One function on one operand; `path` locates errors (`aggregate.total.$sum`, `sum`).
fn function(m: &ModelDef, key: &str, name: &str, operand: &Value, path: &str) -> Result<Aggregate> {
    let bad = |msg: String| err(ErrorCode::FilterAggregateInvalid, path, msg);
    let func = match name {
        "$count" => AggFn::Count,
        "$sum" => AggFn::Sum,
        "$avg" => AggFn::Avg,
        "$min" => AggFn::Min,
        "$max" => AggFn::Max,
        "$distinct" => AggFn::Distinct,
        other => {
            return Err(bad(format!(
                "Unknown aggregate function {}; use $count $sum $avg $min $max $distinct",
                ident::clip(other)
            ))
            .with_data(json!({ "path": path, "function": ident::clip(other) })))
        }
    };
    let Some(field) = operand.as_str() else {
        return Err(bad(format!("{name} takes a field name")));
    };
    if func == AggFn::Count && field == "*" {
        return Ok(Aggregate {
            key: key.to_owned(),
            func: AggFn::CountAll,
            column: None,
        });
    }
    let Some(column) = filter::column(m, field) else {
        return Err(bad(format!(
            "{name} names {}, which is not a field of {}",
            ident::clip(field),
            m.model_name
        ))
        .with_data(json!({ "path": path, "field": ident::clip(field) })));
    };
    let fits = match func {
        AggFn::Sum | AggFn::Avg => is_numeric(column.ty),
        AggFn::Min | AggFn::Max => {
            is_numeric(column.ty)
                || matches!(
                    column.ty,
                    FieldType::Text | FieldType::Date | FieldType::Timestamp
                )
        }
        _ => true,
    };
    if !fits {
        let need = if matches!(func, AggFn::Sum | AggFn::Avg) {
            "a numeric field"
        } else {
            "a numeric, text, date or timestamp field"
        };
        return Err(bad(format!(
            "{name} needs {need}; {field} is {}",
            column.ty.pg_type()
        ))
        .with_data(json!({ "path": path, "field": field, "expected": need })));
    }
    Ok(Aggregate {
        key: key.to_owned(),
        func,
        column: Some(column),
    })
}

/// `aggregate` of a POST body.
fn aggregates(m: &ModelDef, v: Option<&Value>) -> Result<Vec<Aggregate>> {
    let missing = || {
        err(
            ErrorCode::FilterAggregateMissing,
            "aggregate",
            "No aggregation requested: add aggregate, e.g. {\"n\":{\"$count\":\"*\"}}".into(),
        )
    };
    let obj = match v {
        None | Some(Value::Null) => return Err(missing()),
        Some(Value::Object(o)) if o.is_empty() => return Err(missing()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(err(
                ErrorCode::FilterAggregateInvalid,
                "aggregate",
                "aggregate is an object of alias → {\"$fn\": field}".into(),
            ))
        }
    };
    if obj.len() > MAX_AGGREGATES {
        return Err(err(
            ErrorCode::FilterAggregateInvalid,
            "aggregate",
            format!("At most {MAX_AGGREGATES} aggregate functions"),
        ));
    }
    let mut out = Vec::with_capacity(obj.len());
    for (alias, spec) in obj {
        let p = key_path("aggregate", alias);
        if !alias_ok(alias) {
            return Err(err(
                ErrorCode::FilterAggregateInvalid,
                &p,
                format!(
                    "Alias {} must match ^[a-z_][a-z0-9_]{{0,62}}$",
                    ident::clip(alias)
                ),
            ));
        }
        match spec.as_object() {
            Some(f) if f.len() == 1 => {
                let (name, operand) = f.iter().next().ok_or_else(|| Error::internal("empty"))?;
                out.push(function(m, alias, name, operand, &key_path(&p, name))?);
            }
            _ => {
                return Err(err(
                    ErrorCode::FilterAggregateInvalid,
                    &p,
                    format!("{p} must be one function: {{\"$sum\":\"field\"}}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Parses a POST body into a query (without the table).
fn request(m: &ModelDef, body: Option<&Value>) -> Result<(AggregateQuery, Value)> {
    let obj = crate::body::object_or_empty(body, "The aggregate body must be a JSON object")?;
    if let Some(k) = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "where"
                | "aggregate"
                | "groupBy"
                | "group_by"
                | "having"
                | "order"
                | "limit"
                | "offset"
                | "trashed"
        )
    }) {
        return Err(err(
            ErrorCode::FilterInvalid,
            key_path("", k).trim_start_matches('.'),
            format!("Unknown key in the aggregate body: {}", ident::clip(k)),
        ));
    }
    let aggregates = aggregates(m, obj.get("aggregate"))?;
    let groups = match (obj.get("groupBy"), obj.get("group_by")) {
        (Some(_), Some(_)) => {
            return Err(err(
                ErrorCode::FilterGroupByInvalid,
                "groupBy",
                "Send groupBy or group_by, not both".into(),
            ))
        }
        (Some(g), None) => groups(m, Some(g), "groupBy")?,
        (None, g) => groups(m, g, "group_by")?,
    };
    if let Some(a) = aggregates
        .iter()
        .find(|a| groups.iter().any(|g| g.key == a.key))
    {
        return Err(err(
            ErrorCode::FilterAggregateInvalid,
            &key_path("aggregate", &a.key),
            format!("Alias {} is also a group key", a.key),
        ));
    }
    let keys = out_keys(&groups, &aggregates);
    let having = match obj.get("having") {
        None | Some(Value::Null) => filter::Filter::True,
        Some(h) => Having { keys: &keys }.object(h, "having", 0)?,
    };
    let order = order(obj.get("order"), &keys, groups.len())?;
    let r#where = match obj.get("where") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(w) => w.clone(),
    };
    let filter = filter::parse(m, &r#where, "where")?;
    let q = AggregateQuery {
        table: crate::ports::records::Table {
            schema: ident::Ident::trusted("abbotik_control"),
            name: ident::Ident::trusted(m.model_name.clone()),
        },
        filter,
        trashed: match obj.get("trashed") {
            None | Some(Value::Null) => TrashedScope::Exclude,
            Some(t) => trashed_of(t)?,
        },
        groups,
        aggregates,
        having,
        order,
        limit: match obj.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => limit_of(v)?,
        },
        offset: match obj.get("offset") {
            None | Some(Value::Null) => 0,
            Some(v) => offset_of(v)?,
        },
    };
    Ok((q, r#where))
}

/// Parses and validates a POST body without running it (the fuzz target's entry point).
pub fn parse_body(m: &ModelDef, body: &Value) -> Result<()> {
    request(m, Some(body)).map(|_| ())
}

/// The GET form: `count`, `sum`, `avg`, `min`, `max` (query text values; `None` = absent).
pub struct AggregateParams<'a> {
    pub count: Option<&'a str>,
    pub sum: Option<&'a str>,
    pub avg: Option<&'a str>,
    pub min: Option<&'a str>,
    pub max: Option<&'a str>,
    pub r#where: Option<&'a str>,
}

fn get_request(m: &ModelDef, p: &AggregateParams) -> Result<AggregateQuery> {
    let mut aggregates = Vec::new();
    match p.count {
        None | Some("false") | Some("0") => {}
        Some("" | "true" | "1") => aggregates.push(Aggregate {
            key: "count".into(),
            func: AggFn::CountAll,
            column: None,
        }),
        Some(_) => {
            return Err(err(
                ErrorCode::FilterAggregateInvalid,
                "count",
                "count takes no value (or true)".into(),
            ))
        }
    }
    for (key, name, v) in [
        ("sum", "$sum", p.sum),
        ("avg", "$avg", p.avg),
        ("min", "$min", p.min),
        ("max", "$max", p.max),
    ] {
        if let Some(f) = v {
            aggregates.push(function(m, key, name, &Value::String(f.to_owned()), key)?);
        }
    }
    if aggregates.is_empty() {
        return Err(err(
            ErrorCode::FilterAggregateMissing,
            "aggregate",
            "No aggregation requested: add count, sum=f, avg=f, min=f or max=f".into(),
        ));
    }
    let filter = match p.r#where {
        None | Some("") => filter::Filter::True,
        Some(w) => filter::parse_param(m, w)?,
    };
    Ok(AggregateQuery {
        table: crate::ports::records::Table {
            schema: ident::Ident::trusted("abbotik_control"),
            name: ident::Ident::trusted(m.model_name.clone()),
        },
        filter,
        trashed: TrashedScope::Exclude,
        groups: Vec::new(),
        aggregates,
        having: filter::Filter::True,
        order: Vec::new(),
        limit: DEFAULT_LIMIT,
        offset: 0,
    })
}

impl DataService {
    /// `POST /api/aggregate/:model`: the result rows as a JSON array.
    pub async fn aggregate(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let (mut q, r#where) = request(&m, body)?;
        q.table = table(ctx, &m);
        let root = if body.and_then(|b| b.get("groupBy")).is_some() {
            "groupBy"
        } else {
            "group_by"
        };
        self.run_aggregate(ctx, &q, root)
            .await
            .map_err(|e| filter::locate_regex_error(e, &r#where, "where"))
    }

    /// `GET /api/aggregate/:model?count&sum=f…`.
    pub async fn aggregate_get(
        &self,
        ctx: &TenantCtx,
        model: &str,
        p: &AggregateParams<'_>,
    ) -> Result<Raw> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let mut q = get_request(&m, p)?;
        q.table = table(ctx, &m);
        self.run_aggregate(ctx, &q, "groupBy")
            .await
            .map_err(|e| filter::locate_regex_param(e, p.r#where))
    }

    async fn run_aggregate(&self, ctx: &TenantCtx, q: &AggregateQuery, root: &str) -> Result<Raw> {
        let Some(agg) = &self.aggregator else {
            return Err(Error::unavailable("aggregates are not configured"));
        };
        for (i, g) in q.groups.iter().enumerate() {
            if let GroupExpr::DateTrunc { timezone, .. } = &g.expr {
                if timezone != "UTC" && !agg.timezone_known(ctx, timezone).await? {
                    return Err(err(
                        ErrorCode::FilterGroupByInvalid,
                        &format!("{root}[{i}].$dateTrunc.timezone"),
                        format!("Unknown time zone {}", ident::clip(timezone)),
                    ));
                }
            }
        }
        let _slot = self.query_slot(ctx).await?;
        agg.aggregate(ctx, q).await
    }
}
