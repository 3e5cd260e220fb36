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
    Jsonb,
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
            Ty::Jsonb => "jsonb",
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
            key => match key.split_once('.') {
                Some((field, path)) => {
                    let doc = rec.get(field).unwrap_or(&Value::Null);
                    let segs: Vec<&str> = path.split('.').collect();
                    json_condition(at_path(doc, &segs), v)
                }
                None => {
                    let ty = m.ty(key);
                    let f = rec.get(key).unwrap_or(&Value::Null);
                    condition(ty, f, v)
                }
            },
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
    if ty == Ty::Jsonb {
        return jsonb_field(f, c);
    }
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
        Ty::TextArray | Ty::IntegerArray | Ty::Jsonb => None,
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

// ---- jsonb (A6.3 containment, A6.5 dotted paths) ------------------------------------------

/// The value at `segs` inside `doc` (an all-digit segment also indexes arrays); `None` when a
/// key is missing. A JSON `null` found there is returned as `Some(Null)`.
fn at_path<'a>(doc: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    let mut cur = doc;
    for s in segs {
        cur = match cur {
            Value::Object(o) => o.get(*s)?,
            Value::Array(a) if s.bytes().all(|b| b.is_ascii_digit()) => {
                a.get(s.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// JSON equality as jsonb compares: numbers numerically, everything else exactly.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// jsonb containment `a @> b`.
fn json_contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y
            .iter()
            .all(|(k, v)| x.get(k).is_some_and(|w| json_contains(w, v))),
        (Value::Array(x), Value::Array(y)) => {
            y.iter().all(|v| x.iter().any(|w| json_contains(w, v)))
        }
        (Value::Array(x), scalar) if !scalar.is_object() => x.iter().any(|w| json_eq(w, scalar)),
        _ => json_eq(a, b),
    }
}

/// `#>>` of a scalar found at a path (the generator compares text only on scalar paths).
fn json_text(x: &Value) -> Option<String> {
    match x {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A condition on a whole jsonb field: an object without `$` keys is containment.
fn jsonb_field(f: &Value, c: &Value) -> T {
    match c {
        Value::Null => Some(f.is_null()),
        Value::Object(o) if !o.keys().any(|k| k.starts_with('$')) => {
            if f.is_null() {
                None
            } else {
                Some(json_contains(f, c))
            }
        }
        Value::Object(ops) => ops.iter().fold(Some(true), |acc, (op, v)| {
            and(
                acc,
                match op.as_str() {
                    "$exists" => Some(f.is_null() != v.as_bool().unwrap()),
                    "$null" => Some(f.is_null() == v.as_bool().unwrap()),
                    other => panic!("the generator made {other} on a whole jsonb field"),
                },
            )
        }),
        other => panic!("the generator made {other} on a whole jsonb field"),
    }
}

/// A condition on a dotted path: `x` is what is there (`None`: the key is missing).
fn json_condition(x: Option<&Value>, c: &Value) -> T {
    match c {
        Value::Null => Some(x.is_none_or(Value::is_null)),
        Value::Array(list) => json_op(x, "$in", &Value::Array(list.clone())),
        Value::Object(ops) => ops
            .iter()
            .fold(Some(true), |acc, (op, v)| and(acc, json_op(x, op, v))),
        scalar => json_op(x, "$eq", scalar),
    }
}

fn json_op(x: Option<&Value>, op: &str, v: &Value) -> T {
    // A JSON null behaves as SQL NULL for every comparison.
    let val = x.filter(|x| !x.is_null());
    let text = || val.and_then(json_text);
    match op {
        "$eq" if v.is_null() => Some(val.is_none()),
        "$eq" => val.map(|x| json_eq(x, v)),
        "$ne" | "$neq" if v.is_null() => Some(val.is_some()),
        "$ne" | "$neq" => val.map(|x| !json_eq(x, v)),
        "$in" | "$nin" => {
            let list = v.as_array().unwrap();
            if list.is_empty() {
                return Some(op == "$nin");
            }
            let has_null = list.iter().any(Value::is_null);
            let found = val.map(|x| list.iter().any(|w| !w.is_null() && json_eq(x, w)));
            match (op, found) {
                ("$in", None) => has_null.then_some(true),
                ("$in", Some(f)) => Some(f),
                (_, None) => has_null.then_some(false),
                (_, Some(f)) => Some(!f),
            }
        }
        "$gt" | "$gte" | "$lt" | "$lte" | "$between" => {
            let (lo, hi) = match op {
                "$between" => (Some(&v[0]), Some(&v[1])),
                "$gt" | "$gte" => (Some(v), None),
                _ => (None, Some(v)),
            };
            let ord = |a: &Value, b: &Value| -> Option<Ordering> {
                if b.is_number() {
                    match a {
                        Value::Number(n) => n.as_f64()?.partial_cmp(&b.as_f64()?),
                        _ => None,
                    }
                } else {
                    let t = json_text(a)?;
                    Some(t.as_bytes().cmp(b.as_str()?.as_bytes()))
                }
            };
            let x = val?;
            let ok_lo = lo.map(|b| {
                ord(x, b).map(|o| {
                    if op == "$gt" {
                        o == Ordering::Greater
                    } else {
                        o != Ordering::Less
                    }
                })
            });
            let ok_hi = hi.map(|b| {
                ord(x, b).map(|o| {
                    if op == "$lt" {
                        o == Ordering::Less
                    } else {
                        o != Ordering::Greater
                    }
                })
            });
            and(ok_lo.unwrap_or(Some(true)), ok_hi.unwrap_or(Some(true)))
        }
        "$like" | "$nlike" => text().map(|t| like(&t, v.as_str().unwrap()) != (op == "$nlike")),
        "$ilike" | "$nilike" => {
            text().map(|t| like(&fold(&t), &fold(v.as_str().unwrap())) != (op == "$nilike"))
        }
        "$find" | "$text" => text().map(|t| fold(&t).contains(&fold(v.as_str().unwrap()))),
        "$exists" => Some(x.is_some() == v.as_bool().unwrap()),
        "$null" => Some(val.is_none() == v.as_bool().unwrap()),
        "$any" | "$all" | "$nany" | "$nall" => {
            let want = v.as_array().unwrap();
            if want.is_empty() {
                return Some(matches!(op, "$all" | "$nany"));
            }
            let have = val?.as_array()?;
            let has = |w: &Value| have.iter().any(|h| json_eq(h, w));
            Some(match op {
                "$any" => want.iter().any(has),
                "$all" => want.iter().all(has),
                "$nany" => !want.iter().any(has),
                _ => !want.iter().all(has),
            })
        }
        "$size" => {
            let n = Value::from(val?.as_array()?.len() as i64);
            size_cond_json(&n, v)
        }
        "$not" => not(json_condition(x, v)),
        other => panic!("the generator made {other} on a path"),
    }
}

fn size_cond_json(n: &Value, c: &Value) -> T {
    match c {
        Value::Object(ops) => ops.iter().fold(Some(true), |acc, (op, v)| {
            and(acc, operator(Ty::Integer, n, op, v))
        }),
        v => eq(Ty::Integer, n, v),
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
