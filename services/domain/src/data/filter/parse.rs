//! The `where` parser (A6.3–A6.6): JSON → [`Filter`], with the limits and the error paths of
//! A6.6 (`where.$or[1].age.$between`, `where["meta.size"].$gt`).

use super::{column, values, ArrayOp, CmpOp, Filter, JsonTest, TextOp};
use crate::ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::records::Column;
use crate::{Error, ErrorCode, Result};
use serde_json::{json, Map, Value};

/// Nesting depth, node count, array size and pattern length limits (A6.6).
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 1000;
const MAX_ARRAY: usize = 10_000;
const MAX_PATTERN: usize = 1000;
/// Segments after the field of a dotted jsonb path (A6.5).
const MAX_SEGMENTS: usize = 8;

/// Appends a key to an error path: `where.a`, `where["meta.size"]`.
pub(crate) fn key_path(path: &str, key: &str) -> String {
    if key.contains('.') || key.contains('[') || key.contains('"') || key.is_empty() {
        format!("{path}[{}]", json!(key))
    } else {
        format!("{path}.{key}")
    }
}

/// An error that names the offending node (`data.path`).
pub(crate) fn err(code: ErrorCode, path: &str, msg: String) -> Error {
    Error::msg(code, msg).with_data(json!({ "path": path }))
}

fn invalid(path: &str, msg: &str) -> Error {
    err(
        ErrorCode::FilterInvalidValue,
        path,
        format!("{msg} at {path}"),
    )
}

fn invalid_value(path: &str, ty: FieldType) -> Error {
    let expected = values::expected(ty);
    Error::msg(
        ErrorCode::FilterInvalidValue,
        format!("Invalid value at {path}: expected {expected}"),
    )
    .with_data(json!({ "path": path, "expected": expected }))
}

fn unsupported(op: &str, path: &str) -> Error {
    Error::msg(
        ErrorCode::FilterUnsupportedOperator,
        format!("Unsupported operator {}", ident::clip(op)),
    )
    .with_data(json!({ "path": path, "operator": ident::clip(op) }))
}

/// Parses a `where` object against `model`; `path` roots error paths (`"where"`).
pub fn parse(model: &ModelDef, value: &Value, path: &str) -> Result<Filter> {
    let mut p = Parser { model, nodes: 0 };
    p.object(value, path, 0)
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

/// What a field key addresses.
enum Target {
    Col(Column),
    Path(Column, Vec<String>),
}

struct Parser<'a> {
    model: &'a ModelDef,
    nodes: usize,
}

fn all(parts: Vec<Filter>) -> Filter {
    parts.into_iter().fold(Filter::True, Filter::and)
}

fn comparable(ty: FieldType) -> bool {
    !ty.is_array() && ty != FieldType::Jsonb
}

fn text_op(op: &str) -> Option<TextOp> {
    Some(match op {
        "$like" => TextOp::Like,
        "$nlike" => TextOp::NotLike,
        "$ilike" => TextOp::ILike,
        "$nilike" => TextOp::NotILike,
        "$regex" => TextOp::Regex,
        "$nregex" => TextOp::NotRegex,
        "$find" | "$text" => TextOp::Find,
        "$search" => TextOp::Search,
        _ => return None,
    })
}

fn cmp_op(op: &str) -> Option<CmpOp> {
    Some(match op {
        "$eq" => CmpOp::Eq,
        "$ne" | "$neq" => CmpOp::Ne,
        "$gt" => CmpOp::Gt,
        "$gte" => CmpOp::Gte,
        "$lt" => CmpOp::Lt,
        "$lte" => CmpOp::Lte,
        _ => return None,
    })
}

fn array_op(op: &str) -> Option<ArrayOp> {
    Some(match op {
        "$any" => ArrayOp::Any,
        "$all" => ArrayOp::All,
        "$nany" => ArrayOp::NAny,
        "$nall" => ArrayOp::NAll,
        _ => return None,
    })
}

/// An array operand within the size limit.
fn array<'v>(v: &'v Value, path: &str, what: &str) -> Result<&'v Vec<Value>> {
    let Some(items) = v.as_array() else {
        return Err(invalid(path, &format!("{what} needs an array")));
    };
    if items.len() > MAX_ARRAY {
        return Err(err(
            ErrorCode::FilterTooComplex,
            path,
            format!("Array operand longer than {MAX_ARRAY} at {path}"),
        ));
    }
    Ok(items)
}

/// A JSON value compared at a jsonb path: anything but `null`.
fn json_scalar(v: &Value, path: &str) -> Result<Value> {
    if v.is_null() {
        return Err(invalid(path, "null is not allowed here"));
    }
    Ok(v.clone())
}

/// An ordering operand at a jsonb path: a number or a string.
fn json_ordered(v: &Value, path: &str) -> Result<Value> {
    if v.is_number() || v.is_string() {
        Ok(v.clone())
    } else {
        Err(invalid(path, "Expected a number or a string"))
    }
}

impl Parser<'_> {
    fn count(&mut self, path: &str) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(err(
                ErrorCode::FilterTooComplex,
                path,
                format!("Filter has more than {MAX_NODES} conditions"),
            ));
        }
        Ok(())
    }

    fn depth(depth: usize, path: &str) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(err(
                ErrorCode::FilterTooComplex,
                path,
                format!("Filter nesting deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(())
    }

    /// A where-object: its keys ANDed.
    fn object(&mut self, value: &Value, path: &str, depth: usize) -> Result<Filter> {
        Self::depth(depth, path)?;
        let Some(obj) = value.as_object() else {
            return Err(err(
                ErrorCode::FilterInvalid,
                path,
                format!("{path} must be an object"),
            ));
        };
        let mut parts = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            let p = key_path(path, k);
            self.count(&p)?;
            if k.starts_with('$') {
                parts.push(self.logical(k, v, &p, depth)?);
            } else {
                let t = self.target(k, &p)?;
                parts.push(self.condition(&t, v, &p, depth)?);
            }
        }
        Ok(all(parts))
    }

    fn logical(&mut self, op: &str, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        if !matches!(op, "$and" | "$or" | "$not" | "$nand" | "$nor") {
            return Err(unsupported(op, path));
        }
        if op == "$not" && v.is_object() {
            return Ok(Filter::Not(Box::new(self.object(v, path, depth + 1)?)));
        }
        let Some(items) = v.as_array() else {
            return Err(err(
                ErrorCode::FilterInvalid,
                path,
                format!("{op} needs an array of conditions"),
            ));
        };
        if items.is_empty() {
            return Err(err(
                ErrorCode::FilterEmptyLogicalArray,
                path,
                format!("{op} needs at least one condition"),
            ));
        }
        let mut parts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            parts.push(self.object(item, &format!("{path}[{i}]"), depth + 1)?);
        }
        Ok(match op {
            "$and" => all(parts),
            "$or" => Filter::Or(parts),
            "$nor" => Filter::Not(Box::new(Filter::Or(parts))),
            _ => Filter::Not(Box::new(all(parts))),
        })
    }

    /// Resolves a field key or a dotted jsonb path.
    fn target(&self, key: &str, path: &str) -> Result<Target> {
        let Some((first, rest)) = key.split_once('.') else {
            return column(self.model, key).map(Target::Col).ok_or_else(|| {
                err(
                    ErrorCode::FilterUnknownField,
                    path,
                    format!("Unknown field in filter: {}", ident::clip(key)),
                )
            });
        };
        let bad = |msg: String| err(ErrorCode::FilterInvalidPath, path, msg);
        let col = match column(self.model, first) {
            Some(c) if c.ty == FieldType::Jsonb => c,
            _ => {
                return Err(bad(format!(
                    "Dotted path {} is not into a jsonb field",
                    ident::clip(key)
                )))
            }
        };
        let segs: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if segs.len() > MAX_SEGMENTS {
            return Err(bad(format!(
                "Path {} has more than {MAX_SEGMENTS} segments after the field",
                ident::clip(key)
            )));
        }
        let seg_ok = |s: &String| {
            (1..=63).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !segs.iter().all(seg_ok) {
            return Err(bad(format!(
                "Invalid segment in path {}: use [A-Za-z0-9_-]{{1,63}}",
                ident::clip(key)
            )));
        }
        Ok(Target::Path(col, segs))
    }

    /// The value of a field key: shorthand forms or an object of operators.
    fn condition(&mut self, t: &Target, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        // PostgreSQL stores no NUL in text or jsonb: such an operand can match nothing and
        // must not reach the database as an error of its own.
        if has_nul(v) {
            return Err(invalid(
                path,
                "NUL (\\u0000) is not allowed in a filter value",
            ));
        }
        match v {
            Value::Object(o) => {
                let ops = o.keys().filter(|k| k.starts_with('$')).count();
                if ops == 0 {
                    return self.containment(t, v, path);
                }
                if ops != o.len() {
                    return Err(err(
                        ErrorCode::FilterInvalid,
                        path,
                        "Do not mix $ operators and plain keys in one object".into(),
                    ));
                }
                self.operators(t, o, path, depth)
            }
            Value::Array(_) => match t {
                Target::Col(c) if c.ty.is_array() || c.ty == FieldType::Jsonb => {
                    self.eq(t, v, path)
                }
                _ => self.in_(t, v, path, false),
            },
            other => self.eq(t, other, path),
        }
    }

    fn containment(&self, t: &Target, v: &Value, path: &str) -> Result<Filter> {
        Ok(match t {
            Target::Col(c) if c.ty == FieldType::Jsonb => Filter::Contains {
                column: c.clone(),
                value: v.clone(),
            },
            Target::Col(c) => return Err(invalid_value(path, c.ty)),
            Target::Path(c, p) => json(c, p, JsonTest::Contains(v.clone())),
        })
    }

    fn operators(
        &mut self,
        t: &Target,
        o: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Filter> {
        Self::depth(depth + 1, path)?;
        let mut parts = Vec::with_capacity(o.len());
        for (op, operand) in o {
            let p = format!("{path}.{op}");
            self.count(&p)?;
            parts.push(self.operator(t, op, operand, &p, depth + 1)?);
        }
        Ok(all(parts))
    }

    fn operator(
        &mut self,
        t: &Target,
        op: &str,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Filter> {
        if op == "$not" {
            let inner = self.condition(t, v, path, depth)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if let Some(c) = cmp_op(op) {
            return match c {
                CmpOp::Eq => self.eq(t, v, path),
                CmpOp::Ne => self.ne(t, v, path),
                _ => self.ordered(t, c, v, path),
            };
        }
        if let Some(x) = text_op(op) {
            return self.text(t, x, v, path);
        }
        if let Some(a) = array_op(op) {
            return self.array_op(t, a, v, path);
        }
        match op {
            "$between" => self.between(t, v, path),
            "$in" => self.in_(t, v, path, false),
            "$nin" => self.in_(t, v, path, true),
            "$size" => self.size(t, v, path),
            "$exists" | "$null" => {
                let Some(b) = v.as_bool() else {
                    return Err(invalid(path, &format!("{op} needs true or false")));
                };
                // `$exists: true` and `$null: false` ask for a present value.
                let present = (op == "$exists") == b;
                Ok(match t {
                    Target::Col(c) if present => Filter::NotNull { column: c.clone() },
                    Target::Col(c) => Filter::IsNull { column: c.clone() },
                    Target::Path(c, p) if op == "$exists" => json(c, p, JsonTest::Exists(b)),
                    Target::Path(c, p) if present => json(c, p, JsonTest::NotNull),
                    Target::Path(c, p) => json(c, p, JsonTest::Null),
                })
            }
            other => Err(unsupported(other, path)),
        }
    }

    fn coerce(c: &Column, v: &Value, path: &str) -> Result<Value> {
        values::coerce(c.ty, v).ok_or_else(|| invalid_value(path, c.ty))
    }

    fn eq(&self, t: &Target, v: &Value, path: &str) -> Result<Filter> {
        Ok(match (t, v.is_null()) {
            (Target::Col(c), true) => Filter::IsNull { column: c.clone() },
            (Target::Col(c), false) => Filter::Eq {
                column: c.clone(),
                value: Self::coerce(c, v, path)?,
            },
            (Target::Path(c, p), true) => json(c, p, JsonTest::Null),
            (Target::Path(c, p), false) => json(c, p, JsonTest::Eq(v.clone())),
        })
    }

    fn ne(&self, t: &Target, v: &Value, path: &str) -> Result<Filter> {
        Ok(match (t, v.is_null()) {
            (Target::Col(c), true) => Filter::NotNull { column: c.clone() },
            (Target::Col(c), false) => Filter::Cmp {
                column: c.clone(),
                op: CmpOp::Ne,
                value: Self::coerce(c, v, path)?,
            },
            (Target::Path(c, p), true) => json(c, p, JsonTest::NotNull),
            (Target::Path(c, p), false) => json(c, p, JsonTest::Ne(v.clone())),
        })
    }

    fn ordered(&self, t: &Target, op: CmpOp, v: &Value, path: &str) -> Result<Filter> {
        match t {
            Target::Col(c) => {
                if !comparable(c.ty) {
                    return Err(invalid(path, "This field type cannot be ordered"));
                }
                if v.is_null() {
                    return Err(invalid(path, "null cannot be compared"));
                }
                Ok(Filter::Cmp {
                    column: c.clone(),
                    op,
                    value: Self::coerce(c, v, path)?,
                })
            }
            Target::Path(c, p) => Ok(json(
                c,
                p,
                JsonTest::Cmp {
                    op,
                    value: json_ordered(v, path)?,
                },
            )),
        }
    }

    fn between(&self, t: &Target, v: &Value, path: &str) -> Result<Filter> {
        let pair = match v.as_array() {
            Some(a) if a.len() == 2 && !a[0].is_null() && !a[1].is_null() => a,
            _ => return Err(invalid(path, "$between needs [min, max], both non-null")),
        };
        match t {
            Target::Col(c) => {
                if !comparable(c.ty) {
                    return Err(invalid(path, "This field type cannot be ordered"));
                }
                Ok(Filter::Between {
                    column: c.clone(),
                    low: Self::coerce(c, &pair[0], &format!("{path}[0]"))?,
                    high: Self::coerce(c, &pair[1], &format!("{path}[1]"))?,
                })
            }
            Target::Path(c, p) => {
                let low = json_ordered(&pair[0], &format!("{path}[0]"))?;
                let high = json_ordered(&pair[1], &format!("{path}[1]"))?;
                if low.is_number() != high.is_number() {
                    return Err(invalid(
                        path,
                        "$between bounds must be both numbers or both strings",
                    ));
                }
                Ok(json(c, p, JsonTest::Between { low, high }))
            }
        }
    }

    /// `$in` / `$nin` (and the array shorthand on scalar fields).
    fn in_(&self, t: &Target, v: &Value, path: &str, negate: bool) -> Result<Filter> {
        let items = array(v, path, if negate { "$nin" } else { "$in" })?;
        let mut vals = Vec::with_capacity(items.len());
        let mut or_null = false;
        for (i, item) in items.iter().enumerate() {
            if item.is_null() {
                or_null = true;
                continue;
            }
            let p = format!("{path}[{i}]");
            vals.push(match t {
                Target::Col(c) => Self::coerce(c, item, &p)?,
                Target::Path(..) => item.clone(),
            });
        }
        if vals.is_empty() && !or_null {
            return Ok(if negate { Filter::True } else { Filter::False });
        }
        Ok(match (t, negate) {
            (Target::Col(c), false) => Filter::In {
                column: c.clone(),
                values: vals,
                or_null,
            },
            (Target::Col(c), true) => Filter::NotIn {
                column: c.clone(),
                values: vals,
                or_null,
            },
            (Target::Path(c, p), false) => json(
                c,
                p,
                JsonTest::In {
                    values: vals,
                    or_null,
                },
            ),
            (Target::Path(c, p), true) => json(
                c,
                p,
                JsonTest::NotIn {
                    values: vals,
                    or_null,
                },
            ),
        })
    }

    fn text(&self, t: &Target, op: TextOp, v: &Value, path: &str) -> Result<Filter> {
        let Some(s) = v.as_str() else {
            return Err(invalid(path, "Expected a string"));
        };
        if s.chars().count() > MAX_PATTERN {
            return Err(invalid(
                path,
                &format!("Pattern longer than {MAX_PATTERN} characters"),
            ));
        }
        if s.contains('\0') {
            return Err(invalid(path, "NUL is not allowed in a pattern"));
        }
        if op == TextOp::Search && s.trim().is_empty() {
            return Err(invalid(path, "$search needs a non-empty string"));
        }
        let pattern = s.to_owned();
        Ok(match t {
            Target::Col(c) => {
                if op == TextOp::Search && c.ty != FieldType::Text {
                    return Err(invalid(path, "$search needs a text field"));
                }
                Filter::Text {
                    column: c.clone(),
                    op,
                    pattern,
                }
            }
            Target::Path(c, p) => json(c, p, JsonTest::Text { op, pattern }),
        })
    }

    fn array_op(&self, t: &Target, op: ArrayOp, v: &Value, path: &str) -> Result<Filter> {
        if let Target::Col(c) = t {
            if !c.ty.is_array() {
                return Err(invalid(path, "This operator needs an array field"));
            }
        }
        let items = array(v, path, "This operator")?;
        if items.is_empty() {
            // A6.4: `$all`/`$nany` [] match everything, `$any`/`$nall` [] nothing.
            return Ok(match op {
                ArrayOp::All | ArrayOp::NAny => Filter::True,
                ArrayOp::Any | ArrayOp::NAll => Filter::False,
            });
        }
        let mut vals = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            vals.push(match t {
                Target::Col(c) => values::coerce(c.ty.element(), item)
                    .filter(|_| !item.is_null())
                    .ok_or_else(|| invalid_value(&p, c.ty.element()))?,
                Target::Path(..) => json_scalar(item, &p)?,
            });
        }
        Ok(match t {
            Target::Col(c) => Filter::Array {
                column: c.clone(),
                op,
                values: vals,
            },
            Target::Path(c, p) => json(c, p, JsonTest::Array { op, values: vals }),
        })
    }

    fn size(&self, t: &Target, v: &Value, path: &str) -> Result<Filter> {
        if let Target::Col(c) = t {
            if !c.ty.is_array() {
                return Err(invalid(path, "$size needs an array field"));
            }
        }
        let one = |op: CmpOp, n: &Value, p: &str| -> Result<Filter> {
            let Some(value) = n.as_i64() else {
                return Err(invalid(p, "$size needs an integer"));
            };
            Ok(match t {
                Target::Col(c) => Filter::Size {
                    column: c.clone(),
                    op,
                    value,
                },
                Target::Path(c, pp) => json(c, pp, JsonTest::Size { op, value }),
            })
        };
        let Some(o) = v.as_object() else {
            return one(CmpOp::Eq, v, path);
        };
        let mut parts = Vec::with_capacity(o.len());
        for (op, operand) in o {
            let p = format!("{path}.{op}");
            if let Some(c) = cmp_op(op) {
                parts.push(one(c, operand, &p)?);
                continue;
            }
            match op.as_str() {
                "$between" => {
                    let pair = match operand.as_array() {
                        Some(a) if a.len() == 2 => a,
                        _ => return Err(invalid(&p, "$between needs [min, max]")),
                    };
                    parts.push(one(CmpOp::Gte, &pair[0], &format!("{p}[0]"))?);
                    parts.push(one(CmpOp::Lte, &pair[1], &format!("{p}[1]"))?);
                }
                "$in" | "$nin" => {
                    let items = array(operand, &p, op)?;
                    let mut alts = Vec::with_capacity(items.len());
                    for (i, n) in items.iter().enumerate() {
                        alts.push(one(CmpOp::Eq, n, &format!("{p}[{i}]"))?);
                    }
                    parts.push(match (op.as_str(), alts.is_empty()) {
                        ("$in", true) => Filter::False,
                        (_, true) => Filter::True,
                        ("$in", false) => Filter::Or(alts),
                        _ => Filter::Not(Box::new(Filter::Or(alts))),
                    });
                }
                other => return Err(unsupported(other, &p)),
            }
        }
        Ok(all(parts))
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
        _ => false,
    }
}

fn json(c: &Column, p: &[String], test: JsonTest) -> Filter {
    Filter::Json {
        column: c.clone(),
        path: p.to_vec(),
        test,
    }
}

/// The path of the first `$regex`/`$nregex` operand in a where value, depth-first in key
/// order: where PostgreSQL's regex compiler (the dialect that counts) rejected a pattern.
pub fn first_regex_path(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if k.starts_with('$') {
                format!("{path}.{k}")
            } else {
                key_path(path, k)
            };
            if (k == "$regex" || k == "$nregex") && x.is_string() {
                Some(p)
            } else {
                first_regex_path(x, &p)
            }
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| first_regex_path(x, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Points a `FILTER_INVALID_REGEX` from the database at the pattern in `where`.
pub fn locate_regex_error(e: Error, r#where: &Value, root: &str) -> Error {
    if e.code != ErrorCode::FilterInvalidRegex {
        return e;
    }
    let path = first_regex_path(r#where, root).unwrap_or_else(|| root.to_owned());
    e.with_data(json!({ "path": path }))
}

/// [`locate_regex_error`] for the `where` query parameter (JSON text) of `/api/data`.
pub fn locate_regex_param(e: Error, r#where: Option<&str>) -> Error {
    match r#where.and_then(|w| serde_json::from_str::<Value>(w).ok()) {
        Some(v) => locate_regex_error(e, &v, "where"),
        None => e,
    }
}
