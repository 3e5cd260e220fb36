//! Coercion of JSON input values to a field type (A4.3), shared by record validation and
//! filters. The result is the value's canonical JSON form, which the adapter casts in SQL
//! (`(doc->>'f')::numeric`, `$1::text::timestamptz`, …): decimals keep their exact text,
//! timestamps are normalised to UTC, uuids to lowercase.

use crate::model::FieldType;
use crate::time;
use base64::Engine;
use serde_json::Value;
use std::sync::LazyLock;

static DECIMAL_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$").expect("static regex"));

/// Largest decimal exponent accepted, so PostgreSQL never overflows `numeric`.
const MAX_EXPONENT: i64 = 1000;

/// What a type expects, for messages and `data.expected`.
pub fn expected(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text => "a string",
        FieldType::Integer => "an integer (int32)",
        FieldType::Bigserial => "an integer",
        FieldType::Decimal => "a number or a decimal string",
        FieldType::Boolean => "a boolean",
        FieldType::Timestamp => "an RFC 3339 timestamp",
        FieldType::Date => "a date YYYY-MM-DD",
        FieldType::Uuid => "a UUID",
        FieldType::Jsonb => "any JSON value",
        FieldType::Binary => "a standard base64 string",
        FieldType::TextArray => "an array of strings",
        FieldType::IntegerArray => "an array of integers",
        FieldType::DecimalArray => "an array of numbers",
        FieldType::UuidArray => "an array of UUIDs",
    }
}

fn decimal_ok(text: &str) -> bool {
    if !DECIMAL_RE.is_match(text) {
        return false;
    }
    match text.find(['e', 'E']) {
        Some(i) => text[i + 1..]
            .parse::<i64>()
            .is_ok_and(|e| e.abs() <= MAX_EXPONENT),
        None => text.len() <= 1000,
    }
}

/// Coerces a non-null value to `ty`; `None` when it does not fit.
pub fn coerce(ty: FieldType, v: &Value) -> Option<Value> {
    if ty.is_array() {
        let items = v.as_array()?;
        let el = ty.element();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.is_null() {
                return None;
            }
            out.push(coerce(el, item)?);
        }
        return Some(Value::Array(out));
    }
    match ty {
        FieldType::Text => v.is_string().then(|| v.clone()),
        FieldType::Integer => {
            let n = v.as_number()?.as_i64()?;
            i32::try_from(n).ok().map(|_| v.clone())
        }
        FieldType::Bigserial => v.as_number()?.as_i64().map(|_| v.clone()),
        FieldType::Decimal => match v {
            Value::Number(n) => decimal_ok(&n.to_string()).then(|| v.clone()),
            Value::String(s) => decimal_ok(s).then(|| v.clone()),
            _ => None,
        },
        FieldType::Boolean => v.is_boolean().then(|| v.clone()),
        FieldType::Timestamp => {
            if v.as_str().is_some_and(time::is_canonical) {
                return Some(v.clone());
            }
            let t = time::parse_rfc3339(v.as_str()?)?;
            Some(Value::String(t.to_rfc3339()))
        }
        FieldType::Date => {
            let s = v.as_str()?;
            let ok = s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
            ok.then(|| v.clone())
        }
        FieldType::Uuid => {
            let u = uuid::Uuid::parse_str(v.as_str()?).ok()?;
            Some(Value::String(u.hyphenated().to_string()))
        }
        FieldType::Jsonb => Some(v.clone()),
        FieldType::Binary => {
            let s = v.as_str()?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .map(|_| v.clone())
        }
        FieldType::TextArray
        | FieldType::IntegerArray
        | FieldType::DecimalArray
        | FieldType::UuidArray => None,
    }
}

/// The text a coerced scalar is bound as (`$n::text::<type>`).
pub fn sql_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number's value as `f64` for bounds checks (decimals may be strings).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        assert!(coerce(FieldType::Integer, &json!(5)).is_some());
        assert!(coerce(FieldType::Integer, &json!(2147483648i64)).is_none());
        assert!(coerce(FieldType::Integer, &json!(1.5)).is_none());
        assert!(coerce(FieldType::Integer, &json!("5")).is_none());
        assert!(coerce(FieldType::Decimal, &json!("12.50")).is_some());
        assert!(coerce(FieldType::Decimal, &json!("1e5")).is_some());
        assert!(coerce(FieldType::Decimal, &json!("0x10")).is_none());
        assert!(coerce(FieldType::Decimal, &json!("NaN")).is_none());
        assert!(coerce(FieldType::Decimal, &json!("Infinity")).is_none());
        assert!(coerce(FieldType::Decimal, &json!("1e100000")).is_none());
        assert_eq!(
            coerce(FieldType::Timestamp, &json!("2026-05-06T16:03:21+02:00")),
            Some(json!("2026-05-06T14:03:21.000000Z"))
        );
        assert!(coerce(FieldType::Timestamp, &json!("yesterday")).is_none());
        assert!(coerce(FieldType::Date, &json!("2026-02-30")).is_none());
        assert!(coerce(FieldType::Date, &json!("2026-02-28")).is_some());
        assert_eq!(
            coerce(
                FieldType::Uuid,
                &json!("0C3E5B5E-8A4F-4A53-9D2C-1F6F3C1A2B10")
            ),
            Some(json!("0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"))
        );
        assert!(coerce(FieldType::Binary, &json!("aGVsbG8=")).is_some());
        assert!(coerce(FieldType::Binary, &json!("aGVsbG8")).is_none());
        assert!(coerce(FieldType::Boolean, &json!("true")).is_none());
        assert!(coerce(FieldType::Jsonb, &json!({"a": [1]})).is_some());
    }

    #[test]
    fn arrays() {
        assert!(coerce(FieldType::IntegerArray, &json!([1, 2])).is_some());
        assert!(coerce(FieldType::IntegerArray, &json!([1, "2"])).is_none());
        assert!(coerce(FieldType::TextArray, &json!(["a", null])).is_none());
        assert!(coerce(FieldType::TextArray, &json!("a")).is_none());
    }

    #[test]
    fn exact_decimal_text() {
        let v: Value = serde_json::from_str("12345678901234567890.123456789").unwrap();
        assert_eq!(
            sql_text(&coerce(FieldType::Decimal, &v).unwrap()),
            "12345678901234567890.123456789"
        );
    }
}
