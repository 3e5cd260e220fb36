//! The filter AST of `where` (A6.3–A6.5): a plain data structure, so the SQL compiler in the
//! adapters and any independent evaluator read the same thing. [`parse`] builds it from JSON
//! (in `parse.rs`); empty-array operands are already resolved here to [`Filter::True`] /
//! [`Filter::False`], `null` operands to the `IS [NOT] NULL` forms, and every operand value is
//! coerced to the column type (its canonical JSON form, see [`values::coerce`]).
//!
//! Semantics are SQL's three-valued logic: a comparison on a NULL column (or a missing /
//! JSON-null key of a jsonb path) is unknown, so neither it nor its `NOT` matches.

mod parse;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use parse::{err, key_path};
pub use parse::{first_regex_path, locate_regex_error, locate_regex_param, parse, parse_param};

use super::values;
use crate::ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::records::Column;
use serde_json::Value;

/// Comparison operators (`$eq` … `$lte`, also under `$size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }
}

/// Pattern and text-search operators, applied to the value as text (`f::text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// `LIKE` (`%`, `_`, `\` escape).
    Like,
    NotLike,
    ILike,
    NotILike,
    /// POSIX regular expression (PostgreSQL dialect).
    Regex,
    NotRegex,
    /// Literal substring, case-insensitive (`$find`, `$text`).
    Find,
    /// Full-text search: `to_tsvector('english', f) @@ plainto_tsquery('english', q)`.
    Search,
}

/// Array operators (`$any` overlap, `$all` containment and their negations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayOp {
    Any,
    All,
    NAny,
    NAll,
}

/// A test on the value at a dotted path into a `jsonb` field (A6.5). "Null" there means a
/// missing key or a JSON `null`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTest {
    /// JSON equality with a non-null value (numbers numerically, strings exactly).
    Eq(Value),
    /// JSON inequality; a null value never matches.
    Ne(Value),
    /// Equal to one of `values` (non-null), or null when `or_null`.
    In { values: Vec<Value>, or_null: bool },
    /// Equal to none of `values` and — with `or_null` — not null; a null value never matches
    /// unless `values` is empty and `or_null` is false (that case parses to `True`).
    NotIn { values: Vec<Value>, or_null: bool },
    /// Missing key or JSON null.
    Null,
    /// Present and not JSON null.
    NotNull,
    /// `$exists`: the key is present (even if JSON null) when true; absent when false.
    Exists(bool),
    /// Ordering: numbers only against JSON numbers, strings by byte order (`COLLATE "C"`).
    Cmp { op: CmpOp, value: Value },
    /// Inclusive range; both bounds numbers or both strings.
    Between { low: Value, high: Value },
    /// On the value as text (`f #>> p`).
    Text { op: TextOp, pattern: String },
    /// On the JSON array at the path (non-empty `values`); a non-array never matches.
    Array { op: ArrayOp, values: Vec<Value> },
    /// `jsonb_array_length` of the array at the path; a non-array never matches.
    Size { op: CmpOp, value: i64 },
    /// JSON containment `@>`.
    Contains(Value),
}

/// A boolean condition over one model's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every row.
    True,
    /// Matches no row.
    False,
    /// All of them (empty = `True`).
    And(Vec<Filter>),
    /// Any of them (empty = `False`).
    Or(Vec<Filter>),
    /// SQL `NOT` (unknown stays unknown).
    Not(Box<Filter>),
    /// `column = value` (on array columns: exact array equality; on jsonb: JSON equality).
    Eq { column: Column, value: Value },
    /// `column = ANY(values)`, or `column IS NULL` as well when `or_null`.
    In {
        column: Column,
        values: Vec<Value>,
        or_null: bool,
    },
    /// `NOT (column = ANY(values))`, and `column IS NOT NULL` as well when `or_null`.
    NotIn {
        column: Column,
        values: Vec<Value>,
        or_null: bool,
    },
    /// `column IS NULL`.
    IsNull { column: Column },
    /// `column IS NOT NULL`.
    NotNull { column: Column },
    /// `column <op> value` (text ordering in byte order, `COLLATE "C"`).
    Cmp {
        column: Column,
        op: CmpOp,
        value: Value,
    },
    /// `column BETWEEN low AND high`.
    Between {
        column: Column,
        low: Value,
        high: Value,
    },
    /// A pattern / text-search operator on `column::text`.
    Text {
        column: Column,
        op: TextOp,
        pattern: String,
    },
    /// An array operator on an array column; `values` are non-empty elements of its type.
    Array {
        column: Column,
        op: ArrayOp,
        values: Vec<Value>,
    },
    /// `cardinality(column) <op> value`.
    Size {
        column: Column,
        op: CmpOp,
        value: i64,
    },
    /// `jsonb` containment: `column @> value`.
    Contains { column: Column, value: Value },
    /// A test at a dotted path (segments after the field) into a `jsonb` column.
    Json {
        column: Column,
        path: Vec<String>,
        test: JsonTest,
    },
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
