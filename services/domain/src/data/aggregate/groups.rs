//! `groupBy` of an aggregate (A7): field keys and `$dateTrunc` buckets; the output keys they
//! and the aliases make (positional columns `c<i>` for `having`); and `order` over those keys.

use super::having::OutKey;
use super::{alias_ok, err, key_path, timezone_ok, MAX_GROUPS};
use crate::data::filter;
use crate::ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::aggregate::{AggFn, AggOrder, Aggregate, DateUnit, GroupExpr, GroupKey};
use crate::ports::records::Column;
use crate::{Error, ErrorCode, Result};
use serde_json::{Map, Value};

/// One `{"$dateTrunc":{…},"as":…}` entry.
fn date_trunc(m: &ModelDef, o: &Map<String, Value>, path: &str) -> Result<GroupKey> {
    let bad = |p: &str, msg: String| err(ErrorCode::FilterGroupByInvalid, p, msg);
    if let Some(k) = o.keys().find(|k| *k != "$dateTrunc" && *k != "as") {
        let p = key_path(path, k);
        return Err(bad(&p, format!("Unknown key in a groupBy entry at {p}")));
    }
    let tp = key_path(path, "$dateTrunc");
    let Some(spec) = o.get("$dateTrunc").and_then(Value::as_object) else {
        return Err(bad(
            &tp,
            "A groupBy object needs {\"$dateTrunc\":{\"field\",\"unit\",\"timezone?\"}}".into(),
        ));
    };
    if let Some(k) = spec
        .keys()
        .find(|k| !matches!(k.as_str(), "field" | "unit" | "timezone"))
    {
        let p = key_path(&tp, k);
        return Err(bad(&p, format!("Unknown key in $dateTrunc at {p}")));
    }
    let fp = format!("{tp}.field");
    let field = spec.get("field").and_then(Value::as_str).unwrap_or("");
    let column = filter::column(m, field)
        .filter(|c| matches!(c.ty, FieldType::Timestamp | FieldType::Date))
        .ok_or_else(|| {
            bad(
                &fp,
                format!(
                    "$dateTrunc needs a timestamp or date field of {}",
                    m.model_name
                ),
            )
        })?;
    let up = format!("{tp}.unit");
    let unit_name = spec.get("unit").and_then(Value::as_str).unwrap_or("");
    let unit = DateUnit::ALL
        .iter()
        .find(|(n, _)| *n == unit_name)
        .map(|(_, u)| *u)
        .ok_or_else(|| {
            bad(
                &up,
                "unit must be one of second minute hour day week month quarter year".into(),
            )
        })?;
    let timezone = match spec.get("timezone") {
        None | Some(Value::Null) => "UTC".to_owned(),
        Some(Value::String(s)) if timezone_ok(s) => s.clone(),
        Some(_) => {
            return Err(bad(
                &format!("{tp}.timezone"),
                "timezone must be an IANA zone name such as Europe/Paris".into(),
            ))
        }
    };
    let key = match o.get("as") {
        None | Some(Value::Null) => format!("{field}_{}", unit.name()),
        Some(Value::String(s)) if alias_ok(s) => s.clone(),
        Some(_) => {
            return Err(bad(
                &key_path(path, "as"),
                "as must match ^[a-z_][a-z0-9_]{0,62}$".into(),
            ))
        }
    };
    Ok(GroupKey {
        key,
        expr: GroupExpr::DateTrunc {
            column,
            unit,
            timezone,
        },
    })
}

/// `groupBy` / `group_by`; `root` is the key the client used.
pub(super) fn groups(m: &ModelDef, v: Option<&Value>, root: &str) -> Result<Vec<GroupKey>> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(err(
                ErrorCode::FilterGroupByInvalid,
                root,
                format!("{root} is an array of field names and $dateTrunc buckets"),
            ))
        }
    };
    if items.len() > MAX_GROUPS {
        return Err(err(
            ErrorCode::FilterGroupByInvalid,
            root,
            format!("At most {MAX_GROUPS} group keys"),
        ));
    }
    let mut out: Vec<GroupKey> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{root}[{i}]");
        let g = match item {
            Value::String(f) => match filter::column(m, f) {
                Some(column) => GroupKey {
                    key: f.clone(),
                    expr: GroupExpr::Field(column),
                },
                None => {
                    return Err(err(
                        ErrorCode::FilterGroupByInvalid,
                        &p,
                        format!("{} is not a field of {}", ident::clip(f), m.model_name),
                    ))
                }
            },
            Value::Object(o) => date_trunc(m, o, &p)?,
            _ => {
                return Err(err(
                    ErrorCode::FilterGroupByInvalid,
                    &p,
                    format!("{p} must be a field name or a $dateTrunc object"),
                ))
            }
        };
        if out.iter().any(|x| x.key == g.key) {
            return Err(err(
                ErrorCode::FilterGroupByInvalid,
                &p,
                format!("Group key {} appears twice", g.key),
            ));
        }
        out.push(g);
    }
    Ok(out)
}

/// Type of an output column, for coercing `having` operands.
fn out_type(a: &Aggregate) -> FieldType {
    match (a.func, &a.column) {
        (AggFn::Min | AggFn::Max, Some(c)) => c.ty,
        _ => FieldType::Decimal,
    }
}

/// The output keys in position order: group keys, then aliases.
pub(super) fn out_keys<'a>(g: &'a [GroupKey], a: &'a [Aggregate]) -> Vec<OutKey<'a>> {
    let pos = |i: usize, ty| Column {
        name: ident::Ident::trusted(format!("c{i}")),
        ty,
    };
    let mut out = Vec::with_capacity(g.len() + a.len());
    for (i, k) in g.iter().enumerate() {
        let ty = match &k.expr {
            GroupExpr::Field(c) => c.ty,
            GroupExpr::DateTrunc { .. } => FieldType::Timestamp,
        };
        out.push(OutKey {
            key: &k.key,
            column: pos(i, ty),
        });
    }
    for (j, x) in a.iter().enumerate() {
        out.push(OutKey {
            key: &x.key,
            column: pos(g.len() + j, out_type(x)),
        });
    }
    out
}

/// `order` over output keys (A6 forms); group keys ascending fill in as tie-breakers.
pub(super) fn order(v: Option<&Value>, keys: &[OutKey], groups: usize) -> Result<Vec<AggOrder>> {
    let bad = |msg: String| err(ErrorCode::FilterInvalidSort, "order", msg);
    let one = |name: &str, dir: &str| -> Result<AggOrder> {
        let position = keys.iter().position(|k| k.key == name).ok_or_else(|| {
            bad(format!(
                "order names {}, which is neither an aggregate alias nor a group key",
                ident::clip(name)
            ))
        })?;
        let desc = match dir.to_ascii_lowercase().as_str() {
            "" | "asc" | "ascending" => false,
            "desc" | "descending" => true,
            _ => return Err(bad(format!("Bad sort direction {}", ident::clip(dir)))),
        };
        Ok(AggOrder { position, desc })
    };
    let text = |s: &str| -> Result<AggOrder> {
        let mut it = s.split_whitespace();
        let name = it.next().unwrap_or("");
        let dir = it.next().unwrap_or("");
        if it.next().is_some() {
            return Err(bad(format!("Bad order entry {}", ident::clip(s))));
        }
        one(name, dir)
    };
    let mut out = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![text(s)?],
        Some(Value::Object(o)) if o.len() == 1 => {
            let (k, d) = o.iter().next().ok_or_else(|| Error::internal("empty"))?;
            vec![one(
                k,
                d.as_str().ok_or_else(|| bad("Bad direction".into()))?,
            )?]
        }
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(match item {
                    Value::String(s) => text(s)?,
                    Value::Object(o) => {
                        let f = o.get("field").and_then(Value::as_str);
                        let d = match o.get("sort") {
                            None | Some(Value::Null) => Some(""),
                            Some(d) => d.as_str(),
                        };
                        match (f, d, o.len() <= 2) {
                            (Some(f), Some(d), true) => one(f, d)?,
                            _ => return Err(bad("order entries are {\"field\",\"sort\"}".into())),
                        }
                    }
                    _ => return Err(bad("Bad order entry".into())),
                });
            }
            out
        }
        Some(_) => return Err(bad("Bad order".into())),
    };
    for position in 0..groups {
        if !out.iter().any(|o| o.position == position) {
            out.push(AggOrder {
                position,
                desc: false,
            });
        }
    }
    Ok(out)
}
