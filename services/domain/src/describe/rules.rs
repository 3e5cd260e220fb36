//! Field rules of describe (A4.3, A4.4): building a [`FieldDef`] from a patch, checking that
//! its constraints fit its type, that its default satisfies its own rules, and that a
//! relationship is complete. Checks that need other models (target exists, name unique per
//! parent) run in the write transaction (`writes`).

use super::body::{constraint, relationship, FieldPatch};
use crate::ident::{self, Ident};
use crate::model::{FieldDef, FieldType, RelationshipType};
use crate::time;
use crate::{Error, ErrorCode, Result};
use base64::Engine;
use serde_json::{Number, Value};
use std::sync::LazyLock;

static DECIMAL_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$").expect("static regex"));

/// Upper bound on compiled pattern size, so a pattern cannot exhaust memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a field pattern (Rust `regex` dialect).
pub fn compile_pattern(p: &str) -> std::result::Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(p)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// A new field from a creation body; `type` is required.
pub fn new_field(model: &str, name: &Ident, p: &FieldPatch) -> Result<FieldDef> {
    let Some(ty) = p.field_type else {
        return Err(Error::field_missing("type"));
    };
    let f = merge(&FieldDef::blank(model, name.as_str(), ty), p);
    check(f)
}

/// Applies a patch to an existing field (names are never changed here).
pub fn merge(base: &FieldDef, p: &FieldPatch) -> FieldDef {
    let mut f = base.clone();
    if let Some(t) = p.field_type {
        f.field_type = t;
        f.is_array = t.is_array();
    }
    let set = |dst: &mut bool, v: Option<bool>| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(&mut f.required, p.required);
    set(&mut f.immutable, p.immutable);
    set(&mut f.sudo, p.sudo);
    set(&mut f.unique, p.unique);
    set(&mut f.index, p.index);
    set(&mut f.searchable, p.searchable);
    set(&mut f.tracked, p.tracked);
    set(&mut f.cascade_delete, p.cascade_delete);
    p.default_value.apply(&mut f.default_value);
    p.description.apply(&mut f.description);
    p.minimum.apply(&mut f.minimum);
    p.maximum.apply(&mut f.maximum);
    p.pattern.apply(&mut f.pattern);
    p.enum_values.apply(&mut f.enum_values);
    p.transform.apply(&mut f.transform);
    p.relationship_type.apply(&mut f.relationship_type);
    p.related_model.apply(&mut f.related_model);
    p.related_field.apply(&mut f.related_field);
    p.relationship_name.apply(&mut f.relationship_name);
    // Removing the relationship type removes the rest of the relationship set, unless the
    // body sets those too (then `check` reports the incomplete set).
    if matches!(p.relationship_type, super::body::Patch::Clear) {
        if p.related_model.is_keep() {
            f.related_model = None;
        }
        if p.related_field.is_keep() {
            f.related_field = None;
        }
        if p.relationship_name.is_keep() {
            f.relationship_name = None;
        }
        if p.cascade_delete.is_none() {
            f.cascade_delete = false;
        }
    }
    f
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn is_count(n: &Number) -> bool {
    n.as_u64().is_some()
}

/// Checks a complete field definition; returns it with its default normalised.
pub fn check(mut f: FieldDef) -> Result<FieldDef> {
    let ty = f.field_type;
    let el = ty.element();
    let texty = el == FieldType::Text;
    let bounded = ty.is_numeric() || ty == FieldType::Text || ty.is_array();
    for (prop, v) in [("minimum", &f.minimum), ("maximum", &f.maximum)] {
        if let Some(n) = v {
            if !bounded {
                return Err(constraint(
                    prop,
                    format!("{prop} does not apply to type {}", ty.as_str()),
                ));
            }
            if !ty.is_numeric() && !is_count(n) {
                return Err(constraint(
                    prop,
                    format!(
                        "{prop} of a {} field is a length: a non-negative integer",
                        ty.as_str()
                    ),
                ));
            }
            if !as_f64(n).is_finite() {
                return Err(constraint(prop, format!("{prop} is out of range")));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (&f.minimum, &f.maximum) {
        if as_f64(lo) > as_f64(hi) {
            return Err(constraint("minimum", "minimum is greater than maximum"));
        }
    }
    if let Some(p) = &f.pattern {
        if !texty {
            return Err(constraint(
                "pattern",
                format!("pattern does not apply to type {}", ty.as_str()),
            ));
        }
        compile_pattern(p)
            .map_err(|e| constraint("pattern", format!("pattern does not compile: {e}")))?;
    }
    if let Some(list) = &f.enum_values {
        if !texty {
            return Err(constraint(
                "enum_values",
                format!("enum_values does not apply to type {}", ty.as_str()),
            ));
        }
        if list.is_empty() {
            return Err(constraint(
                "enum_values",
                "enum_values needs at least one value",
            ));
        }
    }
    if f.transform.is_some() && !texty {
        return Err(constraint(
            "transform",
            format!("transform does not apply to type {}", ty.as_str()),
        ));
    }
    if let Some(d) = f.default_value.take() {
        f.default_value = Some(check_default(&f, &d)?);
    }
    check_relationship(&mut f)?;
    Ok(f)
}

fn check_relationship(f: &mut FieldDef) -> Result<()> {
    match f.relationship_type {
        None => {
            if f.related_model.is_some()
                || f.related_field.is_some()
                || f.relationship_name.is_some()
            {
                return Err(relationship(
                    "relationship_type",
                    "relationship_type (owned or referenced) is required with related_model, related_field or relationship_name",
                ));
            }
            if f.cascade_delete {
                return Err(relationship(
                    "cascade_delete",
                    "cascade_delete needs an owned relationship",
                ));
            }
        }
        Some(kind) => {
            if f.field_type != FieldType::Uuid {
                return Err(relationship(
                    "type",
                    "a relationship field must have type uuid",
                ));
            }
            let Some(target) = &f.related_model else {
                return Err(relationship(
                    "related_model",
                    "related_model is required for a relationship",
                ));
            };
            if ident::model_ref(target).is_none() {
                return Err(relationship(
                    "related_model",
                    format!("related_model {} does not exist", ident::clip(target)),
                ));
            }
            match f.related_field.as_deref() {
                None => f.related_field = Some("id".to_owned()),
                Some("id") => {}
                Some(_) => {
                    return Err(relationship(
                        "related_field",
                        "related_field must be id (the only supported key)",
                    ))
                }
            }
            match &f.relationship_name {
                Some(n) => {
                    ident::relationship_name(n).map_err(|_| {
                        relationship(
                            "relationship_name",
                            "relationship_name must match ^[a-z][a-z0-9_]{0,62}$",
                        )
                    })?;
                }
                None if kind == RelationshipType::Owned => {
                    return Err(relationship(
                        "relationship_name",
                        "relationship_name is required for an owned relationship",
                    ))
                }
                None => {}
            }
            if f.cascade_delete && kind != RelationshipType::Owned {
                return Err(relationship(
                    "cascade_delete",
                    "cascade_delete needs an owned relationship",
                ));
            }
        }
    }
    Ok(())
}

/// The default must be a value of the field's type and satisfy the field's own rules.
fn check_default(f: &FieldDef, d: &Value) -> Result<Value> {
    let bad = |why: String| constraint("default_value", why);
    if f.field_type == FieldType::Bigserial {
        return Err(bad(
            "a bigserial field cannot have a default (the server assigns it)".into(),
        ));
    }
    let v = typed_value(f.field_type, d).map_err(|e| {
        bad(format!(
            "default_value is not a valid {}: {e}",
            f.field_type.as_str()
        ))
    })?;
    // Bounds: numbers by value, text by characters, arrays by element count.
    let measure = match (&v, f.field_type) {
        (Value::Number(n), t) if t.is_numeric() => Some(as_f64(n)),
        (Value::String(s), FieldType::Text) => Some(s.chars().count() as f64),
        (Value::Array(a), _) => Some(a.len() as f64),
        _ => None,
    };
    if let Some(m) = measure {
        if let Some(lo) = &f.minimum {
            if m < as_f64(lo) {
                return Err(bad("default_value is below minimum".into()));
            }
        }
        if let Some(hi) = &f.maximum {
            if m > as_f64(hi) {
                return Err(bad("default_value is above maximum".into()));
            }
        }
    }
    let texts: Vec<&str> = match &v {
        Value::String(s) if f.field_type == FieldType::Text => vec![s.as_str()],
        Value::Array(a) if f.field_type == FieldType::TextArray => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => vec![],
    };
    if let Some(p) = &f.pattern {
        let re = compile_pattern(p)
            .map_err(|e| constraint("pattern", format!("pattern does not compile: {e}")))?;
        if texts.iter().any(|t| !re.is_match(t)) {
            return Err(bad("default_value does not match pattern".into()));
        }
    }
    if let Some(list) = &f.enum_values {
        if texts.iter().any(|t| !list.iter().any(|e| e == t)) {
            return Err(bad("default_value is not one of enum_values".into()));
        }
    }
    Ok(v)
}

/// A JSON value of `ty` (A4.3), normalised: decimals as numbers, timestamps in the one
/// format, UUIDs lowercase. The error says what was expected.
pub fn typed_value(ty: FieldType, v: &Value) -> std::result::Result<Value, String> {
    if ty.is_array() {
        let Value::Array(items) = v else {
            return Err("expected a JSON array".into());
        };
        let el = ty.element();
        return items
            .iter()
            .map(|x| match x {
                Value::Null => Err("array elements cannot be null".to_owned()),
                x => typed_value(el, x),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    match ty {
        FieldType::Text => match v {
            Value::String(s) if s.contains('\0') => {
                Err("text cannot contain NUL characters".into())
            }
            Value::String(_) => Ok(v.clone()),
            _ => Err("expected a string".into()),
        },
        FieldType::Integer | FieldType::Bigserial => match v.as_i64() {
            Some(i) if i32::try_from(i).is_ok() || ty == FieldType::Bigserial => Ok(Value::from(i)),
            _ => Err("expected an integer (int32)".into()),
        },
        FieldType::Decimal => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err("expected a number".into()),
            };
            if !DECIMAL_RE.is_match(&text) {
                return Err("expected a number in decimal notation".into());
            }
            serde_json::from_str::<Number>(&text)
                .map(Value::Number)
                .map_err(|_| "expected a number in decimal notation".to_owned())
        }
        FieldType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err("expected true or false".into()),
        },
        FieldType::Timestamp => match v.as_str().and_then(time::parse_rfc3339) {
            Some(t) => Ok(Value::String(t.to_rfc3339())),
            None => Err("expected an RFC 3339 timestamp".into()),
        },
        FieldType::Date => match v.as_str() {
            Some(s)
                if s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
            {
                Ok(v.clone())
            }
            _ => Err("expected a date YYYY-MM-DD".into()),
        },
        FieldType::Uuid => match v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
            Some(u) => Ok(Value::String(u.hyphenated().to_string())),
            None => Err("expected a UUID string".into()),
        },
        FieldType::Jsonb => Ok(v.clone()),
        FieldType::Binary => match v.as_str() {
            Some(s) if base64::engine::general_purpose::STANDARD.decode(s).is_ok() => Ok(v.clone()),
            _ => Err("expected a standard base64 string".into()),
        },
        _ => Err("unsupported type".into()),
    }
}

/// A type change the database cannot do in place (`bigserial` needs a sequence).
pub fn check_type_change(old: FieldType, new: FieldType) -> Result<()> {
    if new == FieldType::Bigserial && old != FieldType::Bigserial {
        return Err(Error::msg(
            ErrorCode::FieldTypeInvalid,
            "A field can become bigserial only when it is created",
        )
        .with_data(serde_json::json!({"type": "bigserial", "valid_types": FieldType::VALID})));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::body::parse_field;
    use super::*;
    use serde_json::json;

    fn field(v: Value) -> Result<FieldDef> {
        let p = parse_field(&v, "")?;
        new_field("orders", &ident::field_name("f").unwrap(), &p)
    }

    fn code(v: Value) -> (ErrorCode, Value) {
        let e = field(v).unwrap_err();
        (e.code, e.data.unwrap_or(Value::Null))
    }

    #[test]
    fn defaults_must_satisfy_rules() {
        assert!(field(json!({"type":"text","enum":["a","b"],"default":"a"})).is_ok());
        let (c, d) = code(json!({"type":"text","enum":["a","b"],"default":"c"}));
        assert_eq!(c, ErrorCode::FieldConstraintInvalid);
        assert_eq!(d["property"], "default_value");
        assert_eq!(
            code(json!({"type":"integer","minimum":0,"default":-1})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert_eq!(
            code(json!({"type":"integer","default":"x"})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert_eq!(
            code(json!({"type":"integer","default":3000000000u64})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert_eq!(
            code(json!({"type":"text","pattern":"^a","default":"b"})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert_eq!(
            code(json!({"type":"text","maximum":2,"default":"abc"})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert_eq!(
            code(json!({"type":"bigserial","default":1})).0,
            ErrorCode::FieldConstraintInvalid
        );
        let f = field(json!({"type":"decimal","default":"12.50"})).unwrap();
        assert_eq!(f.default_value.unwrap().to_string(), "12.50");
        let f = field(json!({"type":"timestamp","default":"2026-01-02T03:04:05+01:00"})).unwrap();
        assert_eq!(
            f.default_value.unwrap(),
            json!("2026-01-02T02:04:05.000000Z")
        );
        assert!(field(json!({"type":"text[]","enum":["x"],"default":["x","x"],"max":2})).is_ok());
        assert_eq!(
            code(json!({"type":"text[]","default":["x",null]})).0,
            ErrorCode::FieldConstraintInvalid
        );
        assert!(field(json!({"type":"binary","default":"AAEC"})).is_ok());
        assert!(field(json!({"type":"date","default":"2026-02-30"})).is_err());
        assert!(field(json!({"type":"jsonb","default":{"a":[1]}})).is_ok());
    }

    #[test]
    fn constraints_fit_type() {
        assert_eq!(
            code(json!({"type":"boolean","minimum":1})).1["property"],
            "minimum"
        );
        assert_eq!(
            code(json!({"type":"text","minimum":1.5})).1["property"],
            "minimum"
        );
        assert_eq!(
            code(json!({"type":"integer","min":5,"max":1})).1["property"],
            "minimum"
        );
        assert_eq!(
            code(json!({"type":"integer","pattern":"a"})).1["property"],
            "pattern"
        );
        assert_eq!(
            code(json!({"type":"text","pattern":"("})).1["property"],
            "pattern"
        );
        assert_eq!(
            code(json!({"type":"text","enum":[]})).1["property"],
            "enum_values"
        );
        assert_eq!(
            code(json!({"type":"uuid","transform":"trim"})).1["property"],
            "transform"
        );
        assert!(field(json!({"type":"decimal","minimum":-1.5,"maximum":2})).is_ok());
        assert_eq!(
            code(json!({"required":true})).0,
            ErrorCode::ValidationFieldMissing
        );
    }

    #[test]
    fn relationships() {
        let f = field(json!({"type":"uuid","relationship_type":"owned","related_model":"customers","relationship_name":"orders"})).unwrap();
        assert_eq!(f.related_field.as_deref(), Some("id"));
        for bad in [
            json!({"type":"text","relationship_type":"owned","related_model":"c","relationship_name":"o"}),
            json!({"type":"uuid","relationship_type":"owned","relationship_name":"o"}),
            json!({"type":"uuid","relationship_type":"owned","related_model":"c"}),
            json!({"type":"uuid","relationship_type":"owned","related_model":"c","relationship_name":"o","related_field":"name"}),
            json!({"type":"uuid","related_model":"c"}),
            json!({"type":"uuid","relationship_type":"referenced","related_model":"c","cascade_delete":true}),
            json!({"type":"uuid","relationship_type":"referenced","related_model":"credentials"}),
        ] {
            assert_eq!(
                code(bad.clone()).0,
                ErrorCode::FieldRelationshipInvalid,
                "{bad}"
            );
        }
        assert!(field(
            json!({"type":"uuid","relationship_type":"referenced","related_model":"users"})
        )
        .is_ok());
    }

    #[test]
    fn merge_clears_relationship_set() {
        let f = field(json!({"type":"uuid","relationship_type":"owned","related_model":"c","relationship_name":"o","cascade_delete":true})).unwrap();
        let p = parse_field(&json!({"relationship_type":null}), "").unwrap();
        let g = check(merge(&f, &p)).unwrap();
        assert!(g.related_model.is_none() && g.relationship_name.is_none() && !g.cascade_delete);
        let p = parse_field(&json!({"minimum":null,"type":"text"}), "").unwrap();
        let h = merge(&f, &p);
        assert_eq!(h.field_type, FieldType::Text);
        assert!(check(h).is_err());
    }
}
