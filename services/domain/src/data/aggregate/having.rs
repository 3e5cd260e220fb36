//! `having` of an aggregate (A7): the where grammar restricted to comparisons, membership,
//! `$null` and the logical operators, over the output keys (group keys and aliases). The
//! result is a [`Filter`] whose columns are the positional output columns `c<i>`.

use super::{err, key_path};
use crate::data::filter::{CmpOp, Filter};
use crate::data::values;
use crate::ports::records::Column;
use crate::{Error, ErrorCode, Result};
use serde_json::{json, Map, Value};

const MAX_DEPTH: usize = 32;

/// An output key that `having` and `order` may name.
pub(super) struct OutKey<'a> {
    pub key: &'a str,
    pub column: Column,
}

fn bad(path: &str, msg: String) -> Error {
    err(ErrorCode::FilterHavingInvalid, path, msg)
}

fn value_of(c: &Column, v: &Value, path: &str) -> Result<Value> {
    values::coerce(c.ty, v).ok_or_else(|| {
        let expected = values::expected(c.ty);
        Error::msg(
            ErrorCode::FilterInvalidValue,
            format!("Invalid value at {path}: expected {expected}"),
        )
        .with_data(json!({ "path": path, "expected": expected }))
    })
}

fn list(c: &Column, v: &Value, path: &str) -> Result<(Vec<Value>, bool)> {
    let Some(items) = v.as_array() else {
        return Err(Error::msg(
            ErrorCode::FilterInvalidValue,
            format!("Invalid value at {path}: expected an array"),
        )
        .with_data(json!({ "path": path, "expected": "array" })));
    };
    let mut out = Vec::with_capacity(items.len());
    let mut or_null = false;
    for (i, item) in items.iter().enumerate() {
        if item.is_null() {
            or_null = true;
        } else {
            out.push(value_of(c, item, &format!("{path}[{i}]"))?);
        }
    }
    Ok((out, or_null))
}

pub(super) struct Having<'a> {
    pub keys: &'a [OutKey<'a>],
}

impl Having<'_> {
    /// A where-object of `having` at `path`.
    pub fn object(&self, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        if depth > MAX_DEPTH {
            return Err(err(
                ErrorCode::FilterTooComplex,
                path,
                format!("having is nested deeper than {MAX_DEPTH}"),
            ));
        }
        let Some(obj) = v.as_object() else {
            return Err(bad(path, format!("{path} must be an object")));
        };
        let mut parts = Vec::with_capacity(obj.len());
        for (k, cond) in obj {
            let p = key_path(path, k);
            parts.push(if k.starts_with('$') {
                self.logical(k, cond, &p, depth)?
            } else {
                let Some(out) = self.keys.iter().find(|o| o.key == k) else {
                    return Err(bad(
                        &p,
                        format!(
                            "having names {}, which is neither an aggregate alias nor a group key",
                            crate::ident::clip(k)
                        ),
                    )
                    .with_data(json!({ "path": p, "key": crate::ident::clip(k) })));
                };
                self.condition(&out.column, cond, &p, depth)?
            });
        }
        Ok(match parts.len() {
            1 => parts.pop().unwrap_or(Filter::True),
            _ => Filter::And(parts),
        })
    }

    fn array(&self, v: &Value, path: &str, depth: usize) -> Result<Vec<Filter>> {
        let Some(items) = v.as_array() else {
            return Err(bad(path, format!("{path} must be an array of objects")));
        };
        if items.is_empty() {
            return Err(err(
                ErrorCode::FilterEmptyLogicalArray,
                path,
                format!("{path} needs at least one condition"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, x)| self.object(x, &format!("{path}[{i}]"), depth + 1))
            .collect()
    }

    fn logical(&self, op: &str, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        Ok(match op {
            "$and" => Filter::And(self.array(v, path, depth)?),
            "$or" => Filter::Or(self.array(v, path, depth)?),
            "$nand" => Filter::Not(Box::new(Filter::And(self.array(v, path, depth)?))),
            "$nor" => Filter::Not(Box::new(Filter::Or(self.array(v, path, depth)?))),
            "$not" if v.is_array() => {
                Filter::Not(Box::new(Filter::And(self.array(v, path, depth)?)))
            }
            "$not" => Filter::Not(Box::new(self.object(v, path, depth + 1)?)),
            other => return Err(unsupported(other, path)),
        })
    }

    fn condition(&self, c: &Column, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        match v {
            Value::Null => Ok(Filter::IsNull { column: c.clone() }),
            Value::Array(_) => {
                let (values, or_null) = list(c, v, path)?;
                Ok(in_filter(c, values, or_null))
            }
            Value::Object(ops) => self.operators(c, ops, path, depth),
            scalar => Ok(Filter::Eq {
                column: c.clone(),
                value: value_of(c, scalar, path)?,
            }),
        }
    }

    fn operators(
        &self,
        c: &Column,
        ops: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Filter> {
        if depth > MAX_DEPTH {
            return Err(err(
                ErrorCode::FilterTooComplex,
                path,
                format!("having is nested deeper than {MAX_DEPTH}"),
            ));
        }
        if ops.is_empty() {
            return Err(bad(path, format!("{path} has no operator")));
        }
        let mut parts = Vec::with_capacity(ops.len());
        for (op, operand) in ops {
            let p = key_path(path, op);
            let col = || c.clone();
            let cmp = |o: CmpOp| -> Result<Filter> {
                Ok(Filter::Cmp {
                    column: col(),
                    op: o,
                    value: value_of(c, operand, &p)?,
                })
            };
            parts.push(match op.as_str() {
                "$eq" if operand.is_null() => Filter::IsNull { column: col() },
                "$ne" | "$neq" if operand.is_null() => Filter::NotNull { column: col() },
                "$eq" => Filter::Eq {
                    column: col(),
                    value: value_of(c, operand, &p)?,
                },
                "$ne" | "$neq" => cmp(CmpOp::Ne)?,
                "$gt" => cmp(CmpOp::Gt)?,
                "$gte" => cmp(CmpOp::Gte)?,
                "$lt" => cmp(CmpOp::Lt)?,
                "$lte" => cmp(CmpOp::Lte)?,
                "$between" => match operand.as_array().map(Vec::as_slice) {
                    Some([lo, hi]) if !lo.is_null() && !hi.is_null() => Filter::Between {
                        column: col(),
                        low: value_of(c, lo, &format!("{p}[0]"))?,
                        high: value_of(c, hi, &format!("{p}[1]"))?,
                    },
                    _ => {
                        return Err(Error::msg(
                            ErrorCode::FilterInvalidValue,
                            format!("{p} needs [min, max], both non-null"),
                        )
                        .with_data(json!({ "path": p, "expected": "[min, max]" })))
                    }
                },
                "$in" => {
                    let (values, or_null) = list(c, operand, &p)?;
                    in_filter(c, values, or_null)
                }
                "$nin" => {
                    let (values, or_null) = list(c, operand, &p)?;
                    if values.is_empty() && !or_null {
                        Filter::True
                    } else {
                        Filter::NotIn {
                            column: col(),
                            values,
                            or_null,
                        }
                    }
                }
                "$null" => match operand.as_bool() {
                    Some(true) => Filter::IsNull { column: col() },
                    Some(false) => Filter::NotNull { column: col() },
                    None => {
                        return Err(Error::msg(
                            ErrorCode::FilterInvalidValue,
                            format!("{p} needs a boolean"),
                        )
                        .with_data(json!({ "path": p, "expected": "boolean" })))
                    }
                },
                "$not" => match operand {
                    Value::Object(inner) => {
                        Filter::Not(Box::new(self.operators(c, inner, &p, depth + 1)?))
                    }
                    _ => return Err(bad(&p, format!("{p} must be an object of operators"))),
                },
                other => return Err(unsupported(other, &p)),
            });
        }
        Ok(match parts.len() {
            1 => parts.pop().unwrap_or(Filter::True),
            _ => Filter::And(parts),
        })
    }
}

fn in_filter(c: &Column, values: Vec<Value>, or_null: bool) -> Filter {
    match (values.is_empty(), or_null) {
        (true, false) => Filter::False,
        (true, true) => Filter::IsNull { column: c.clone() },
        _ => Filter::In {
            column: c.clone(),
            values,
            or_null,
        },
    }
}

fn unsupported(op: &str, path: &str) -> Error {
    let op = crate::ident::clip(op);
    Error::msg(
        ErrorCode::FilterHavingInvalid,
        format!(
            "having does not support {op}; use $eq $ne $neq $gt $gte $lt $lte $between $in $nin $null $and $or $not $nand $nor"
        ),
    )
    .with_data(json!({ "path": path, "operator": op }))
}
