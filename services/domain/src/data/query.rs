//! Query options of record reads (A1.5, A1.10, A5.1): `select`, `order`, `limit`, `offset`,
//! `include_trashed`, `stat`, `access` → a [`Projection`], sort keys and bounds.

use super::filter;
use crate::ident::{self, Ident};
use crate::model::ModelDef;
use crate::ports::records::{Column, OrderBy, Projection, ACCESS_COLUMNS, STAT_COLUMNS};
use crate::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// Record lists: default and maximum `limit` (A1.10).
pub const DEFAULT_LIMIT: i64 = 1000;
pub const MAX_LIMIT: i64 = 10_000;

/// Raw query options as the HTTP edge received them.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub r#where: Option<String>,
    pub order: Option<String>,
    pub select: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub include_trashed: bool,
    /// `stat=false` hides the timestamps.
    pub stat: bool,
    /// `access=false` hides the ACL lists.
    pub access: bool,
}

impl ReadOptions {
    /// Defaults: everything shown, live records only.
    pub fn new() -> Self {
        Self {
            stat: true,
            access: true,
            ..Self::default()
        }
    }
}

fn path_err(code: ErrorCode, path: &str, msg: String) -> Error {
    Error::msg(code, msg).with_data(json!({ "path": path }))
}

/// The projection for `select` (`a,b`; `*` or empty = all) and the `stat`/`access` flags.
pub fn projection(model: &ModelDef, opts: &ReadOptions) -> Result<Projection> {
    let all_system = || {
        STAT_COLUMNS
            .iter()
            .filter(|_| opts.stat)
            .chain(ACCESS_COLUMNS.iter().filter(|_| opts.access))
            .copied()
            .collect::<Vec<_>>()
    };
    let user_all = || {
        model
            .fields
            .iter()
            .map(|f| Column {
                name: Ident::trusted(f.field_name.clone()),
                ty: f.field_type,
            })
            .collect::<Vec<_>>()
    };
    let names: Vec<&str> = opts
        .select
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() || names == ["*"] {
        return Ok(Projection {
            user: user_all(),
            system: all_system(),
        });
    }
    for n in &names {
        if *n != "id" && filter::column(model, n).is_none() {
            return Err(path_err(
                ErrorCode::FilterInvalidSelect,
                "select",
                format!("Unknown field in select: {}", ident::clip(n)),
            ));
        }
    }
    let user = user_all()
        .into_iter()
        .filter(|c| names.contains(&c.name.as_str()))
        .collect();
    let system = all_system()
        .into_iter()
        .filter(|c| names.contains(c))
        .collect();
    Ok(Projection { user, system })
}

/// The full projection (GET with defaults), e.g. for stat sizes.
pub fn full_projection(model: &ModelDef) -> Projection {
    projection(model, &ReadOptions::new()).unwrap_or(Projection {
        user: Vec::new(),
        system: Vec::new(),
    })
}

fn parse_dir(s: &str, path: &str) -> Result<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "asc" | "ascending" => Ok(false),
        "desc" | "descending" => Ok(true),
        _ => Err(path_err(
            ErrorCode::FilterInvalidSort,
            path,
            format!("Invalid sort direction: {}", ident::clip(s)),
        )),
    }
}

fn sort_key(model: &ModelDef, field: &str, dir: &str, path: &str) -> Result<OrderBy> {
    let Some(col) = filter::column(model, field.trim()) else {
        return Err(path_err(
            ErrorCode::FilterInvalidSort,
            path,
            format!("Unknown field in order: {}", ident::clip(field)),
        ));
    };
    Ok(OrderBy {
        column: col.name,
        desc: parse_dir(dir.trim(), path)?,
    })
}

fn from_text(model: &ModelDef, s: &str, path: &str) -> Result<OrderBy> {
    let mut parts = s.split_whitespace();
    let field = parts.next().unwrap_or("");
    let dir = parts.next().unwrap_or("");
    if parts.next().is_some() || field.is_empty() {
        return Err(path_err(
            ErrorCode::FilterInvalidSort,
            path,
            format!("Invalid order entry: {}", ident::clip(s)),
        ));
    }
    sort_key(model, field, dir, path)
}

/// Parses an `order` value (A6.2 forms, as JSON) into sort keys.
pub fn order_value(model: &ModelDef, v: &Value, path: &str) -> Result<Vec<OrderBy>> {
    let bad = |p: &str| path_err(ErrorCode::FilterInvalidSort, p, "Invalid order".into());
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| from_text(model, p, path))
            .collect(),
        Value::Object(o) => {
            if o.len() != 1 {
                return Err(path_err(
                    ErrorCode::FilterInvalidSort,
                    path,
                    "An order object has exactly one key; use an array for several".into(),
                ));
            }
            let (k, d) = o.iter().next().ok_or_else(|| bad(path))?;
            sort_key(model, k, d.as_str().ok_or_else(|| bad(path))?, path).map(|o| vec![o])
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match item {
                    Value::String(s) => out.push(from_text(model, s, &p)?),
                    Value::Object(o) if o.contains_key("field") => {
                        let f = o["field"].as_str().ok_or_else(|| bad(&p))?;
                        let d = match o.get("sort") {
                            None | Some(Value::Null) => "",
                            Some(Value::String(s)) => s.as_str(),
                            Some(_) => return Err(bad(&p)),
                        };
                        out.push(sort_key(model, f, d, &p)?);
                    }
                    Value::Object(_) => out.extend(order_value(model, item, &p)?),
                    _ => return Err(bad(&p)),
                }
            }
            Ok(out)
        }
        _ => Err(bad(path)),
    }
}

/// `order` query parameter: JSON, or `"f desc,g"`. Adds the `id asc` tie-breaker; the default
/// is `created_at asc, id asc`.
pub fn order(model: &ModelDef, param: Option<&str>) -> Result<Vec<OrderBy>> {
    let mut keys = match param.map(str::trim) {
        None | Some("") => Vec::new(),
        Some(s) if s.starts_with(['[', '{', '"']) => {
            let v: Value = serde_json::from_str(s).map_err(|_| {
                path_err(
                    ErrorCode::FilterInvalidSort,
                    "order",
                    "order is not valid JSON".into(),
                )
            })?;
            order_value(model, &v, "order")?
        }
        Some(s) => order_value(model, &Value::String(s.to_owned()), "order")?,
    };
    Ok(finish_order(&mut keys))
}

/// Default order and tie-breaker.
pub fn finish_order(keys: &mut Vec<OrderBy>) -> Vec<OrderBy> {
    if keys.is_empty() {
        keys.push(OrderBy {
            column: Ident::trusted("created_at"),
            desc: false,
        });
    }
    if !keys.iter().any(|k| k.column.as_str() == "id") {
        keys.push(OrderBy {
            column: Ident::trusted("id"),
            desc: false,
        });
    }
    std::mem::take(keys)
}

fn non_negative(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok().filter(|n| *n >= 0)
}

/// `limit` (0..=10000, default 1000) and `offset` (≥ 0) of record reads.
pub fn bounds(limit: Option<&str>, offset: Option<&str>) -> Result<(i64, i64)> {
    bounds_within(limit, offset, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `limit` (0..=`max`, default `default`) and `offset` (≥ 0) of any offset list; errors name
/// the parameter in `data.path` (and the cap in `data.max`).
pub fn bounds_within(
    limit: Option<&str>,
    offset: Option<&str>,
    default: i64,
    max: i64,
) -> Result<(i64, i64)> {
    let limit = match limit {
        None | Some("") => default,
        Some(s) => non_negative(s).filter(|n| *n <= max).ok_or_else(|| {
            Error::msg(
                ErrorCode::FilterInvalidLimit,
                format!("limit must be an integer from 0 to {max}"),
            )
            .with_data(json!({"path": "limit", "max": max}))
        })?,
    };
    let offset = match offset {
        None | Some("") => 0,
        Some(s) => non_negative(s).ok_or_else(|| {
            path_err(
                ErrorCode::FilterInvalidOffset,
                "offset",
                "offset must be an integer >= 0".into(),
            )
        })?,
    };
    Ok((limit, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::filter::tests::{field, model};
    use crate::model::FieldType;

    fn m() -> ModelDef {
        model(vec![
            field("orders", "number", FieldType::Text),
            field("orders", "total", FieldType::Decimal),
        ])
    }

    fn names(o: &[OrderBy]) -> Vec<(String, bool)> {
        o.iter().map(|k| (k.column.to_string(), k.desc)).collect()
    }

    #[test]
    fn order_forms() {
        let m = m();
        assert_eq!(
            names(&order(&m, None).unwrap()),
            vec![("created_at".into(), false), ("id".into(), false)]
        );
        assert_eq!(
            names(&order(&m, Some("total desc,number")).unwrap()),
            vec![
                ("total".into(), true),
                ("number".into(), false),
                ("id".into(), false)
            ]
        );
        assert_eq!(
            names(&order(&m, Some(r#"{"total":"DESC"}"#)).unwrap())[0],
            ("total".into(), true)
        );
        assert_eq!(
            names(
                &order(
                    &m,
                    Some(r#"[{"field":"number","sort":"descending"}, "id"]"#)
                )
                .unwrap()
            ),
            vec![("number".into(), true), ("id".into(), false)]
        );
        for bad in ["nope", "total sideways", r#"{"a":"asc","b":"asc"}"#, "[1]"] {
            let e = order(&m, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::FilterInvalidSort, "{bad}");
        }
    }

    #[test]
    fn select_and_flags() {
        let m = m();
        let mut o = ReadOptions::new();
        o.select = Some("total,created_at".into());
        let p = projection(&m, &o).unwrap();
        assert_eq!(p.user.len(), 1);
        assert_eq!(p.system, vec!["created_at"]);
        o.select = None;
        o.stat = false;
        let p = projection(&m, &o).unwrap();
        assert_eq!(p.user.len(), 2);
        assert_eq!(p.system, ACCESS_COLUMNS.to_vec());
        o.select = Some("nope".into());
        assert_eq!(
            projection(&m, &o).unwrap_err().code,
            ErrorCode::FilterInvalidSelect
        );
    }

    #[test]
    fn limits() {
        assert_eq!(bounds(None, None).unwrap(), (1000, 0));
        assert_eq!(bounds(Some("0"), Some("5")).unwrap(), (0, 5));
        assert_eq!(
            bounds(Some("10001"), None).unwrap_err().code,
            ErrorCode::FilterInvalidLimit
        );
        assert_eq!(
            bounds(Some("-1"), None).unwrap_err().code,
            ErrorCode::FilterInvalidLimit
        );
        assert_eq!(
            bounds(None, Some("x")).unwrap_err().code,
            ErrorCode::FilterInvalidOffset
        );
    }
}
