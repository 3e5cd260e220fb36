//! The filter AST of `where` (A6.3) and its parser.
//!
//! This is the seam for the query engine: today the parser accepts the equality subset that
//! `/api/data` needs — scalar (`$eq`), `null` (`IS NULL`), array shorthand (`$in`, or exact
//! equality on an array field), `{"$eq": v}`, object containment on `jsonb`, `$and` — and
//! answers every other `$` operator with `FILTER_UNSUPPORTED_OPERATOR`. The full grammar of
//! 31 operators replaces [`parse`] and extends [`Filter`] in this one module; the adapter
//! compiles whatever [`Filter`] holds.

use super::values;
use crate::ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::records::Column;
use crate::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// Nesting depth, node count and array size limits (A6.6).
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 1000;
const MAX_ARRAY: usize = 10_000;

/// A boolean condition over one model's columns. Values are coerced to the column type
/// (their canonical JSON form, see [`values::coerce`]) and always bound as parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every row.
    True,
    /// All of them.
    And(Vec<Filter>),
    /// `column = value` (on array columns: exact array equality).
    Eq { column: Column, value: Value },
    /// `column = ANY(values)`, or `column IS NULL` as well when `or_null`.
    In {
        column: Column,
        values: Vec<Value>,
        or_null: bool,
    },
    /// `column IS NULL`.
    IsNull { column: Column },
    /// `jsonb` containment: `column @> value`.
    Contains { column: Column, value: Value },
}

impl Filter {
    /// `a AND b`, flattening `True`.
    pub fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::True, f) | (f, Filter::True) => f,
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) => {
                a.push(f);
                Filter::And(a)
            }
            (f, Filter::And(mut b)) => {
                b.insert(0, f);
                Filter::And(b)
            }
            (a, b) => Filter::And(vec![a, b]),
        }
    }
}

/// Type of a system column (A1.7).
pub fn system_type(name: &str) -> Option<FieldType> {
    Some(match name {
        "id" => FieldType::Uuid,
        "created_at" | "updated_at" | "trashed_at" | "deleted_at" => FieldType::Timestamp,
        "access_read" | "access_edit" | "access_full" | "access_deny" => FieldType::UuidArray,
        _ => return None,
    })
}

/// A user or system column of the model.
pub fn column(model: &ModelDef, name: &str) -> Option<Column> {
    if let Some(ty) = system_type(name) {
        return Some(Column {
            name: ident::Ident::trusted(name),
            ty,
        });
    }
    model.field(name).map(|f| Column {
        name: ident::Ident::trusted(f.field_name.clone()),
        ty: f.field_type,
    })
}

/// Appends a key to an error path: `where.a`, `where["meta.size"]`.
fn key_path(path: &str, key: &str) -> String {
    if key.contains('.') || key.contains('[') {
        format!("{path}[{}]", json!(key))
    } else {
        format!("{path}.{key}")
    }
}

fn err(code: ErrorCode, path: &str, msg: String) -> Error {
    Error::msg(code, msg).with_data(json!({ "path": path }))
}

/// Parses a `where` object against `model`; `path` roots error paths (`"where"`).
pub fn parse(model: &ModelDef, value: &Value, path: &str) -> Result<Filter> {
    let mut nodes = 0usize;
    parse_object(model, value, path, 0, &mut nodes)
}

/// Parses the `where` query parameter (URL-decoded JSON text).
pub fn parse_param(model: &ModelDef, text: &str) -> Result<Filter> {
    let value: Value = serde_json::from_str(text).map_err(|_| {
        err(
            ErrorCode::FilterInvalid,
            "where",
            "where is not valid JSON".into(),
        )
    })?;
    parse(model, &value, "where")
}

fn parse_object(
    model: &ModelDef,
    value: &Value,
    path: &str,
    depth: usize,
    nodes: &mut usize,
) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(err(
            ErrorCode::FilterTooComplex,
            path,
            format!("Filter nesting deeper than {MAX_DEPTH}"),
        ));
    }
    let Some(obj) = value.as_object() else {
        return Err(err(
            ErrorCode::FilterInvalid,
            path,
            format!("{path} must be an object"),
        ));
    };
    let mut parts = Vec::new();
    for (k, v) in obj {
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(err(
                ErrorCode::FilterTooComplex,
                path,
                format!("Filter has more than {MAX_NODES} conditions"),
            ));
        }
        let p = key_path(path, k);
        if k.starts_with('$') {
            parts.push(parse_logical(model, k, v, &p, depth, nodes)?);
        } else {
            parts.push(parse_condition(model, k, v, &p)?);
        }
    }
    Ok(parts.into_iter().fold(Filter::True, Filter::and))
}

fn unsupported(op: &str, path: &str) -> Error {
    Error::msg(
        ErrorCode::FilterUnsupportedOperator,
        format!("Unsupported operator {}", ident::clip(op)),
    )
    .with_data(json!({ "path": path, "operator": ident::clip(op) }))
}

fn parse_logical(
    model: &ModelDef,
    op: &str,
    v: &Value,
    path: &str,
    depth: usize,
    nodes: &mut usize,
) -> Result<Filter> {
    if op != "$and" {
        return Err(unsupported(op, path));
    }
    let Some(items) = v.as_array() else {
        return Err(err(
            ErrorCode::FilterInvalid,
            path,
            "$and needs an array of conditions".into(),
        ));
    };
    if items.is_empty() {
        return Err(err(
            ErrorCode::FilterEmptyLogicalArray,
            path,
            "$and needs at least one condition".into(),
        ));
    }
    let mut out = Filter::True;
    for (i, item) in items.iter().enumerate() {
        let f = parse_object(model, item, &format!("{path}[{i}]"), depth + 1, nodes)?;
        out = out.and(f);
    }
    Ok(out)
}

fn invalid_value(path: &str, ty: FieldType) -> Error {
    let expected = values::expected(ty);
    Error::msg(
        ErrorCode::FilterInvalidValue,
        format!("Invalid value at {path}: expected {expected}"),
    )
    .with_data(json!({ "path": path, "expected": expected }))
}

fn scalar(column: &Column, v: &Value, path: &str) -> Result<Filter> {
    if v.is_null() {
        return Ok(Filter::IsNull {
            column: column.clone(),
        });
    }
    let value = values::coerce(column.ty, v).ok_or_else(|| invalid_value(path, column.ty))?;
    Ok(Filter::Eq {
        column: column.clone(),
        value,
    })
}

fn parse_condition(model: &ModelDef, key: &str, v: &Value, path: &str) -> Result<Filter> {
    if let Some((first, _)) = key.split_once('.') {
        let code = match model.field(first) {
            Some(f) if f.field_type == FieldType::Jsonb => ErrorCode::FilterUnsupportedOperator,
            _ => ErrorCode::FilterInvalidPath,
        };
        let msg = if code == ErrorCode::FilterInvalidPath {
            format!("Dotted path {} is not into a jsonb field", ident::clip(key))
        } else {
            "Dotted jsonb paths are not supported on this route yet; use /api/find".to_owned()
        };
        return Err(err(code, path, msg));
    }
    let Some(column) = column(model, key) else {
        return Err(err(
            ErrorCode::FilterUnknownField,
            path,
            format!("Unknown field in filter: {}", ident::clip(key)),
        ));
    };
    match v {
        Value::Object(o) => {
            let ops = o.keys().filter(|k| k.starts_with('$')).count();
            if ops == 0 {
                if column.ty != FieldType::Jsonb {
                    return Err(invalid_value(path, column.ty));
                }
                return Ok(Filter::Contains {
                    column,
                    value: v.clone(),
                });
            }
            if ops != o.len() {
                return Err(err(
                    ErrorCode::FilterInvalid,
                    path,
                    "Do not mix $ operators and plain keys in one object".into(),
                ));
            }
            let mut out = Filter::True;
            for (op, operand) in o {
                let p = format!("{path}.{op}");
                if op != "$eq" {
                    return Err(unsupported(op, &p));
                }
                out = out.and(scalar(&column, operand, &p)?);
            }
            Ok(out)
        }
        Value::Array(items) if !column.ty.is_array() && column.ty != FieldType::Jsonb => {
            if items.len() > MAX_ARRAY {
                return Err(err(
                    ErrorCode::FilterTooComplex,
                    path,
                    format!("Array operand longer than {MAX_ARRAY}"),
                ));
            }
            let mut vals = Vec::with_capacity(items.len());
            let mut or_null = false;
            for (i, item) in items.iter().enumerate() {
                if item.is_null() {
                    or_null = true;
                    continue;
                }
                let p = format!("{path}[{i}]");
                vals.push(
                    values::coerce(column.ty, item).ok_or_else(|| invalid_value(&p, column.ty))?,
                );
            }
            Ok(Filter::In {
                column,
                values: vals,
                or_null,
            })
        }
        other => scalar(&column, other, path),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{FieldDef, FieldIndexes};
    use crate::time::Ts;

    pub fn field(model: &str, name: &str, ty: FieldType) -> FieldDef {
        FieldDef {
            model_name: model.into(),
            field_name: name.into(),
            field_type: ty,
            required: false,
            default_value: None,
            description: None,
            minimum: None,
            maximum: None,
            pattern: None,
            enum_values: None,
            is_array: ty.is_array(),
            immutable: false,
            sudo: false,
            unique: false,
            index: false,
            searchable: false,
            tracked: false,
            transform: None,
            relationship_type: None,
            related_model: None,
            related_field: None,
            relationship_name: None,
            cascade_delete: false,
            created_at: Ts::now(),
            updated_at: Ts::now(),
            indexes: FieldIndexes::default(),
        }
    }

    pub fn model(fields: Vec<FieldDef>) -> ModelDef {
        ModelDef {
            model_name: "orders".into(),
            status: "active".into(),
            description: None,
            sudo: false,
            frozen: false,
            immutable: false,
            external: false,
            passthrough: false,
            created_at: Ts::now(),
            updated_at: Ts::now(),
            fields,
        }
    }

    fn orders() -> ModelDef {
        model(vec![
            field("orders", "state", FieldType::Text),
            field("orders", "total", FieldType::Decimal),
            field("orders", "meta", FieldType::Jsonb),
            field("orders", "tags", FieldType::TextArray),
        ])
    }

    #[test]
    fn equality_subset() {
        let m = orders();
        let f = parse(&m, &json!({"state": "new", "total": null}), "where").unwrap();
        match f {
            Filter::And(v) => {
                assert!(matches!(&v[0], Filter::Eq { value, .. } if value == &json!("new")));
                assert!(matches!(&v[1], Filter::IsNull { .. }));
            }
            other => panic!("{other:?}"),
        }
        let f = parse(&m, &json!({"state": ["a", null]}), "where").unwrap();
        assert!(matches!(f, Filter::In { or_null: true, .. }));
        let f = parse(&m, &json!({"tags": ["a"]}), "where").unwrap();
        assert!(matches!(f, Filter::Eq { .. }));
        let f = parse(&m, &json!({"meta": {"a": 1}}), "where").unwrap();
        assert!(matches!(f, Filter::Contains { .. }));
        let f = parse(
            &m,
            &json!({"$and": [{"state": "a"}, {"state": {"$eq": "b"}}]}),
            "where",
        )
        .unwrap();
        assert!(matches!(f, Filter::And(ref v) if v.len() == 2));
        assert_eq!(parse(&m, &json!({}), "where").unwrap(), Filter::True);
        assert!(parse(
            &m,
            &json!({"id": "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"}),
            "where"
        )
        .is_ok());
    }

    #[test]
    fn errors_carry_paths() {
        let m = orders();
        let e = parse(&m, &json!({"tags": {"$elemMatch": 1}}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterUnsupportedOperator);
        assert_eq!(e.data.unwrap()["path"], "where.tags.$elemMatch");
        let e = parse(&m, &json!({"$or": [{"state": "a"}]}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterUnsupportedOperator);
        let e = parse(&m, &json!({"nope": 1}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterUnknownField);
        let e = parse(&m, &json!({"total": "abc"}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalidValue);
        let e = parse(&m, &json!({"$and": []}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterEmptyLogicalArray);
        let e = parse(&m, &json!({"state": {"$eq": 1, "x": 2}}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalid);
        let e = parse(&m, &json!({"state.x": 1}), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalidPath);
        assert_eq!(e.data.unwrap()["path"], "where[\"state.x\"]");
        let e = parse(&m, &json!([1]), "where").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalid);
        let e = parse_param(&m, "{bad").unwrap_err();
        assert_eq!(e.code, ErrorCode::FilterInvalid);
    }
}
