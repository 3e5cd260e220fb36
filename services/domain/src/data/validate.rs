//! Write-time validation of record bodies (A4.4): transform → system/unknown field → type →
//! required → min/max → pattern → enum, every failure of a request collected into one
//! `400 VALIDATION_ERROR` with `data.errors[] = {index, field, rule, message}`.
//! Immutable fields are checked by the store against the stored value (inside the write);
//! sudo fields are reported to the caller, which checks them after validation.

use super::values;
use crate::ident::SYSTEM_FIELDS;
use crate::model::{FieldDef, FieldType, ModelDef};
use crate::{Error, ErrorCode};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// One failure of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub index: usize,
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

/// Create fills defaults and requires required fields; update checks only present keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// A validated record body.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Normalised user-field values (absent keys absent, `null` = clear).
    pub values: Map<String, Value>,
    /// The `id` key of the body (already a valid UUID; create/upsert and bulk PUT).
    pub id: Option<uuid::Uuid>,
    /// Present keys of fields marked `sudo`.
    pub sudo_fields: Vec<String>,
}

/// Compiled `pattern`s, shared by all requests (patterns come from field metadata).
static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Arc<regex::Regex>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn pattern(p: &str) -> Option<Arc<regex::Regex>> {
    let mut m = PATTERNS.lock();
    if let Some(r) = m.get(p) {
        return r.clone();
    }
    if m.len() > 10_000 {
        m.clear();
    }
    let r = regex::Regex::new(p).ok().map(Arc::new);
    m.insert(p.to_owned(), r.clone());
    r
}

fn push(
    errors: &mut Vec<FieldError>,
    index: usize,
    field: &str,
    rule: &'static str,
    message: String,
) {
    errors.push(FieldError {
        index,
        field: field.to_owned(),
        rule,
        message,
    });
}

fn apply_transform(f: &FieldDef, v: Value) -> Value {
    let Some(t) = f.transform else { return v };
    match v {
        Value::String(s) => Value::String(t.apply(&s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Value::String(t.apply(&s)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn fmt_bound(n: &serde_json::Number) -> String {
    n.to_string()
}

/// min/max → pattern → enum on a coerced, non-null value.
fn check_constraints(f: &FieldDef, v: &Value, index: usize, errors: &mut Vec<FieldError>) {
    let name = &f.field_name;
    let (measure, unit): (Option<f64>, &str) = if f.field_type.is_array() {
        (v.as_array().map(|a| a.len() as f64), " elements")
    } else if f.field_type.is_numeric() {
        (values::as_f64(v), "")
    } else if f.field_type == FieldType::Text {
        (v.as_str().map(|s| s.chars().count() as f64), " characters")
    } else {
        (None, "")
    };
    if let Some(m) = measure {
        if let Some(min) = &f.minimum {
            if min.to_string().parse::<f64>().is_ok_and(|b| m < b) {
                let msg = if unit.is_empty() {
                    format!("{name} must be >= {}", fmt_bound(min))
                } else {
                    format!("{name} must have at least {}{unit}", fmt_bound(min))
                };
                push(errors, index, name, "minimum", msg);
            }
        }
        if let Some(max) = &f.maximum {
            if max.to_string().parse::<f64>().is_ok_and(|b| m > b) {
                let msg = if unit.is_empty() {
                    format!("{name} must be <= {}", fmt_bound(max))
                } else {
                    format!("{name} must have at most {}{unit}", fmt_bound(max))
                };
                push(errors, index, name, "maximum", msg);
            }
        }
    }
    let texts: Vec<&str> = match v {
        Value::String(s) if matches!(f.field_type, FieldType::Text) => vec![s.as_str()],
        Value::Array(items) if f.field_type == FieldType::TextArray => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => Vec::new(),
    };
    if let Some(p) = &f.pattern {
        if let Some(re) = pattern(p) {
            if texts.iter().any(|t| !re.is_match(t)) {
                push(
                    errors,
                    index,
                    name,
                    "pattern",
                    format!("{name} must match the pattern {p}"),
                );
            }
        }
    }
    if let Some(allowed) = &f.enum_values {
        if texts.iter().any(|t| !allowed.iter().any(|a| a == t)) {
            push(
                errors,
                index,
                name,
                "enum",
                format!("{name} must be one of: {}", allowed.join(", ")),
            );
        }
    }
}

/// A key of a body that names no field of the model (and no system field).
pub fn unknown_field(errors: &mut Vec<FieldError>, index: usize, key: &str) {
    push(
        errors,
        index,
        key,
        "unknown_field",
        format!("Unknown field: {}", crate::ident::clip(key)),
    );
}

/// One field's value in a body: transformed, coerced to its type and checked against the
/// field's constraints (errors appended). `None` when it is not of the field's type; `null`
/// stays `null` (a `required` field then gets an error).
pub fn field_value(
    f: &FieldDef,
    raw: &Value,
    index: usize,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let key = f.field_name.as_str();
    let v = apply_transform(f, raw.clone());
    if v.is_null() {
        if f.required {
            push(errors, index, key, "required", format!("{key} is required"));
        }
        return Some(Value::Null);
    }
    match values::coerce(f.field_type, &v) {
        Some(c) => {
            check_constraints(f, &c, index, errors);
            Some(c)
        }
        None => {
            push(
                errors,
                index,
                key,
                "type",
                format!("{key} must be {}", values::expected(f.field_type)),
            );
            None
        }
    }
}

/// A field absent from a create body: its default (coerced to the field's type), or an
/// error when it is required and has none.
pub fn absent_field(f: &FieldDef, index: usize, errors: &mut Vec<FieldError>) -> Option<Value> {
    match &f.default_value {
        Some(d) if !d.is_null() => {
            Some(values::coerce(f.field_type, d).unwrap_or_else(|| d.clone()))
        }
        _ => {
            if f.required {
                let name = &f.field_name;
                push(
                    errors,
                    index,
                    name,
                    "required",
                    format!("{name} is required"),
                );
            }
            None
        }
    }
}

/// Validates one record body (`index` = its position in the request). Errors are appended;
/// the returned value is meaningful only when no error was added for this record.
pub fn prepare(
    model: &ModelDef,
    index: usize,
    body: &Map<String, Value>,
    mode: Mode,
    errors: &mut Vec<FieldError>,
) -> Prepared {
    let mut out = Prepared::default();
    for (key, raw) in body {
        if key == "id" {
            if raw.is_null() {
                continue;
            }
            match values::coerce(FieldType::Uuid, raw)
                .and_then(|v| v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()))
            {
                Some(id) => out.id = Some(id),
                None => push(errors, index, "id", "type", "id must be a UUID".into()),
            }
            continue;
        }
        // System fields are ignored in bodies (A1.7).
        if SYSTEM_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let Some(f) = model.field(key) else {
            unknown_field(errors, index, key);
            continue;
        };
        if f.field_type == FieldType::Bigserial {
            continue; // server-assigned; ignored on input (A4.3)
        }
        if let Some(v) = field_value(f, raw, index, errors) {
            out.values.insert(key.clone(), v);
        }
        if f.sudo {
            out.sudo_fields.push(key.clone());
        }
    }
    if mode == Mode::Create {
        for f in &model.fields {
            if f.field_type == FieldType::Bigserial || body.contains_key(&f.field_name) {
                continue;
            }
            if let Some(d) = absent_field(f, index, errors) {
                out.values.insert(f.field_name.clone(), d);
            }
        }
    }
    out
}

/// The one `400 VALIDATION_ERROR` for a request.
pub fn error(errors: Vec<FieldError>) -> Error {
    let records: std::collections::BTreeSet<usize> = errors.iter().map(|e| e.index).collect();
    let n = records.len();
    let msg = format!(
        "Validation failed for {n} record{}",
        if n == 1 { "" } else { "s" }
    );
    let list: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({"index": e.index, "field": e.field, "rule": e.rule, "message": e.message}))
        .collect();
    Error::msg(ErrorCode::ValidationError, msg).with_data(json!({ "errors": list }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::filter::tests::{field, model};
    use crate::model::Transform;

    fn orders() -> ModelDef {
        let mut number = field("orders", "number", FieldType::Text);
        number.required = true;
        number.pattern = Some("^A-".into());
        number.transform = Some(Transform::Uppercase);
        let mut total = field("orders", "total", FieldType::Decimal);
        total.minimum = Some(0.into());
        let mut state = field("orders", "state", FieldType::Text);
        state.enum_values = Some(vec!["new".into(), "paid".into()]);
        state.default_value = Some(json!("new"));
        let mut secret = field("orders", "secret", FieldType::Text);
        secret.sudo = true;
        let seq = field("orders", "seq", FieldType::Bigserial);
        model(vec![number, total, state, secret, seq])
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn create_fills_defaults_and_transforms() {
        let m = orders();
        let mut errs = Vec::new();
        let p = prepare(
            &m,
            0,
            &obj(json!({"number":"a-1","total":"9.50","seq":5,"created_at":"x","secret":"s"})),
            Mode::Create,
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.values["number"], json!("A-1"));
        assert_eq!(p.values["state"], json!("new"));
        assert!(!p.values.contains_key("seq"));
        assert!(!p.values.contains_key("created_at"));
        assert_eq!(p.sudo_fields, vec!["secret".to_owned()]);
    }

    #[test]
    fn collects_every_rule() {
        let m = orders();
        let mut errs = Vec::new();
        prepare(
            &m,
            0,
            &obj(json!({"total": -1, "state": "x", "bogus": 1})),
            Mode::Create,
            &mut errs,
        );
        prepare(
            &m,
            1,
            &obj(json!({"number": "B-1", "total": "abc"})),
            Mode::Create,
            &mut errs,
        );
        let rules: Vec<(usize, &str, &str)> = errs
            .iter()
            .map(|e| (e.index, e.field.as_str(), e.rule))
            .collect();
        assert!(rules.contains(&(0, "total", "minimum")));
        assert!(rules.contains(&(0, "state", "enum")));
        assert!(rules.contains(&(0, "bogus", "unknown_field")));
        assert!(rules.contains(&(0, "number", "required")));
        assert!(rules.contains(&(1, "number", "pattern")));
        assert!(rules.contains(&(1, "total", "type")));
        let e = error(errs);
        assert_eq!(e.code, ErrorCode::ValidationError);
        assert_eq!(
            e.message.as_deref(),
            Some("Validation failed for 2 records")
        );
        assert_eq!(
            e.data.unwrap()["errors"][0]["message"],
            "total must be >= 0"
        );
    }

    #[test]
    fn update_checks_present_keys_only() {
        let m = orders();
        let mut errs = Vec::new();
        prepare(&m, 0, &obj(json!({"total": 3})), Mode::Update, &mut errs);
        assert!(errs.is_empty());
        prepare(
            &m,
            0,
            &obj(json!({"number": null})),
            Mode::Update,
            &mut errs,
        );
        assert_eq!(errs[0].rule, "required");
        let mut errs = Vec::new();
        let p = prepare(&m, 0, &obj(json!({"id": "nope"})), Mode::Create, &mut errs);
        assert!(p.id.is_none());
        assert_eq!(errs[0].field, "id");
    }
}
