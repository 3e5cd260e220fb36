//! An in-memory evaluator of the `where` language, written from CONTRACT.md A6.3–A6.4 alone
//! (it shares no code with the SQL compiler): which records a filter selects. SQL's three-valued
//! logic is modelled with `Option<bool>` (`None` = NULL/unknown); a row is selected only when
//! the whole filter is `Some(true)`.

#![allow(dead_code)]
// `None` is SQL's NULL here, not a failure: folding must go on past it (no `try_fold`).
#![allow(clippy::manual_try_fold)]

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Field types the differential test generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Integer,
    Decimal,
    Boolean,
    Timestamp,
    TextArray,
    IntegerArray,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Integer => "integer",
            Ty::Decimal => "decimal",
            Ty::Boolean => "boolean",
            Ty::Timestamp => "timestamp",
            Ty::TextArray => "text[]",
            Ty::IntegerArray => "integer[]",
        }
    }
    pub fn is_array(self) -> bool {
        matches!(self, Ty::TextArray | Ty::IntegerArray)
    }
}

/// A generated model: field name → type.
pub struct Model {
    pub fields: Vec<(String, Ty)>,
}

impl Model {
    fn ty(&self, name: &str) -> Ty {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .expect("filters name fields of the model")
    }
}

type T = Option<bool>;

fn and(a: T, b: T) -> T {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: T, b: T) -> T {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn not(a: T) -> T {
    a.map(|x| !x)
}

/// True when `rec` is selected by `filter` (a where-object).
pub fn selects(m: &Model, rec: &Map<String, Value>, filter: &Value) -> bool {
    object(m, rec, filter) == Some(true)
}

fn object(m: &Model, rec: &Map<String, Value>, w: &Value) -> T {
    let Value::Object(o) = w else {
        panic!("where-object expected: {w}")
    };
    let mut acc = Some(true);
    for (k, v) in o {
        let t = match k.as_str() {
            "$and" => all(m, rec, v),
            "$or" => any(m, rec, v),
            "$not" => match v {
                Value::Array(_) => not(all(m, rec, v)),
                _ => not(object(m, rec, v)),
            },
            "$nand" => not(all(m, rec, v)),
            "$nor" => not(any(m, rec, v)),
            field => {
                let ty = m.ty(field);
                let f = rec.get(field).unwrap_or(&Value::Null);
                condition(ty, f, v)
            }
        };
        acc = and(acc, t);
    }
    acc
}

fn all(m: &Model, rec: &Map<String, Value>, v: &Value) -> T {
    let items = v.as_array().expect("array of where-objects");
    items
        .iter()
        .fold(Some(true), |a, w| and(a, object(m, rec, w)))
}

fn any(m: &Model, rec: &Map<String, Value>, v: &Value) -> T {
    let items = v.as_array().expect("array of where-objects");
    items
        .iter()
        .fold(Some(false), |a, w| or(a, object(m, rec, w)))
}

/// One field's condition: scalar → `$eq`, null → IS NULL, array → `$in` (exact equality on
/// an array field), object of operators → all of them.
fn condition(ty: Ty, f: &Value, c: &Value) -> T {
    match c {
        Value::Null => Some(f.is_null()),
        Value::Array(a) if ty.is_array() => eq(ty, f, &Value::Array(a.clone())),
        Value::Array(a) => op_in(ty, f, a),
        Value::Object(ops) => ops
            .iter()
            .fold(Some(true), |acc, (op, v)| and(acc, operator(ty, f, op, v))),
        scalar => eq(ty, f, scalar),
    }
}

fn cmp(ty: Ty, a: &Value, b: &Value) -> Option<Ordering> {
    match ty {
        Ty::Integer | Ty::Decimal => a.as_f64()?.partial_cmp(&b.as_f64()?),
        Ty::Boolean => Some(a.as_bool()?.cmp(&b.as_bool()?)),
        // Generated timestamps share one format, so text order is time order; text compares
        // by bytes (COLLATE "C").
        Ty::Text | Ty::Timestamp => Some(a.as_str()?.as_bytes().cmp(b.as_str()?.as_bytes())),
        Ty::TextArray | Ty::IntegerArray => None,
    }
}

fn same(ty: Ty, a: &Value, b: &Value) -> bool {
    match ty {
        Ty::TextArray | Ty::IntegerArray => {
            let (x, y) = (a.as_array().unwrap(), b.as_array().unwrap());
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    let et = if ty == Ty::TextArray {
                        Ty::Text
                    } else {
                        Ty::Integer
                    };
                    cmp(et, p, q) == Some(Ordering::Equal)
                })
        }
        _ => cmp(ty, a, b) == Some(Ordering::Equal),
    }
}

fn eq(ty: Ty, f: &Value, v: &Value) -> T {
    if v.is_null() {
        return Some(f.is_null());
    }
    if f.is_null() {
        return None;
    }
    Some(same(ty, f, v))
}

fn op_in(ty: Ty, f: &Value, list: &[Value]) -> T {
    if list.is_empty() {
        return Some(false);
    }
    let has_null = list.iter().any(Value::is_null);
    if f.is_null() {
        return if has_null { Some(true) } else { None };
    }
    Some(list.iter().any(|v| !v.is_null() && same(ty, f, v)))
}

fn op_nin(ty: Ty, f: &Value, list: &[Value]) -> T {
    if list.is_empty() {
        return Some(true);
    }
    let has_null = list.iter().any(Value::is_null);
    if f.is_null() {
        return if has_null { Some(false) } else { None };
    }
    Some(!list.iter().any(|v| !v.is_null() && same(ty, f, v)))
}

fn ordered(ty: Ty, f: &Value, v: &Value, ok: fn(Ordering) -> bool) -> T {
    if f.is_null() {
        return None;
    }
    cmp(ty, f, v).map(ok)
}

/// `f::text` of a scalar the way PostgreSQL prints it, for the pattern operators (the
/// generator only uses them on text fields, where it is the value itself).
fn text_of(f: &Value) -> Option<String> {
    match f {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// LIKE: `%` any run, `_` one character, `\` escapes the next one.
pub fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&t, &p)
}

/// Case folding as a C-locale database does it: ASCII letters only.
fn fold(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn pattern_op(f: &Value, test: impl Fn(&str) -> bool, negate: bool) -> T {
    let t = text_of(f)?;
    Some(test(&t) != negate)
}

/// The words of a text for `$search` (the generator draws from a vocabulary of words that are
/// their own stems and are not stop words).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
        .collect()
}

fn array_of(f: &Value) -> Option<&Vec<Value>> {
    f.as_array()
}

fn elem_ty(ty: Ty) -> Ty {
    if ty == Ty::TextArray {
        Ty::Text
    } else {
        Ty::Integer
    }
}

fn contains(ty: Ty, hay: &[Value], needle: &Value) -> bool {
    hay.iter().any(|h| same(elem_ty(ty), h, needle))
}

fn size_cond(n: usize, c: &Value) -> T {
    let n = Value::from(n as i64);
    match c {
        Value::Object(ops) => ops.iter().fold(Some(true), |acc, (op, v)| {
            and(acc, operator(Ty::Integer, &n, op, v))
        }),
        v => eq(Ty::Integer, &n, v),
    }
}

fn operator(ty: Ty, f: &Value, op: &str, v: &Value) -> T {
    match op {
        "$eq" => eq(ty, f, v),
        "$ne" | "$neq" => {
            if v.is_null() {
                Some(!f.is_null())
            } else {
                not(eq(ty, f, v))
            }
        }
        "$gt" => ordered(ty, f, v, |o| o == Ordering::Greater),
        "$gte" => ordered(ty, f, v, |o| o != Ordering::Less),
        "$lt" => ordered(ty, f, v, |o| o == Ordering::Less),
        "$lte" => ordered(ty, f, v, |o| o != Ordering::Greater),
        "$between" => {
            let r = v.as_array().expect("[min, max]");
            and(
                ordered(ty, f, &r[0], |o| o != Ordering::Less),
                ordered(ty, f, &r[1], |o| o != Ordering::Greater),
            )
        }
        "$in" => op_in(ty, f, v.as_array().expect("array")),
        "$nin" => op_nin(ty, f, v.as_array().expect("array")),
        "$like" => pattern_op(f, |t| like(t, v.as_str().unwrap()), false),
        "$nlike" => pattern_op(f, |t| like(t, v.as_str().unwrap()), true),
        "$ilike" => pattern_op(f, |t| like(&fold(t), &fold(v.as_str().unwrap())), false),
        "$nilike" => pattern_op(f, |t| like(&fold(t), &fold(v.as_str().unwrap())), true),
        "$regex" | "$nregex" => {
            let re = regex::Regex::new(v.as_str().unwrap()).expect("generated regex");
            pattern_op(f, |t| re.is_match(t), op == "$nregex")
        }
        "$find" | "$text" => pattern_op(f, |t| fold(t).contains(&fold(v.as_str().unwrap())), false),
        "$search" => pattern_op(
            f,
            |t| {
                let have = words(t);
                words(v.as_str().unwrap()).iter().all(|w| have.contains(w))
            },
            false,
        ),
        "$exists" => Some(f.is_null() != v.as_bool().unwrap()),
        "$null" => Some(f.is_null() == v.as_bool().unwrap()),
        "$any" | "$all" | "$nany" | "$nall" => {
            let want = v.as_array().expect("array");
            if want.is_empty() {
                // "matches everything" includes NULL rows; "matches nothing" is FALSE.
                return Some(matches!(op, "$all" | "$nany"));
            }
            let have = array_of(f)?;
            let overlap = want.iter().any(|w| contains(ty, have, w));
            let superset = want.iter().all(|w| contains(ty, have, w));
            Some(match op {
                "$any" => overlap,
                "$all" => superset,
                "$nany" => !overlap,
                _ => !superset,
            })
        }
        "$size" => {
            let have = array_of(f)?;
            size_cond(have.len(), v)
        }
        "$not" => not(condition(ty, f, v)),
        other => panic!("the generator made an unknown operator {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "_b_"));
        assert!(!like("abc", "b%"));
        assert!(like("a%c", "a\\%c"));
        assert!(!like("abc", "a\\%c"));
        assert!(like("", "%"));
    }
}
