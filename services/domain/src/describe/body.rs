//! Parsing describe bodies (A4.1, A4.2, A4.4) into patches. `null` rules (A1.1): on a nullable
//! property `null` removes it ([`Patch::Clear`]); on a boolean it is absent. Input aliases
//! (`default`, `enum`, `min`, `max`) are accepted; read-only keys of the describe objects
//! (`created_at`, `updated_at`, `is_array`) are ignored so a GET result can be sent back;
//! any other unknown key is refused, so a typo never passes silently.

use crate::model::{FieldType, RelationshipType, Transform};
use crate::{Error, ErrorCode};
use serde_json::{json, Map, Number, Value};

/// A change to one nullable property.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Patch<T> {
    pub fn apply(&self, current: &mut Option<T>) {
        match self {
            Patch::Keep => {}
            Patch::Clear => *current = None,
            Patch::Set(v) => *current = Some(v.clone()),
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}

/// Model properties of a POST/PUT body (A4.2).
#[derive(Debug, Default)]
pub struct ModelPatch {
    pub model_name: Option<String>,
    pub status: Option<String>,
    pub description: Patch<String>,
    pub sudo: Option<bool>,
    pub frozen: Option<bool>,
    pub immutable: Option<bool>,
    pub external: Option<bool>,
    pub passthrough: Option<bool>,
    /// Inline fields (POST only), in body order.
    pub fields: Option<Vec<FieldPatch>>,
}

impl ModelPatch {
    /// True when at least one changeable model property is present.
    pub fn has_changes(&self) -> bool {
        self.status.is_some()
            || !self.description.is_keep()
            || self.sudo.is_some()
            || self.frozen.is_some()
            || self.immutable.is_some()
            || self.external.is_some()
            || self.passthrough.is_some()
    }
}

/// Field properties of a POST/PUT body (A4.4).
#[derive(Debug, Default, Clone)]
pub struct FieldPatch {
    pub model_name: Option<String>,
    pub field_name: Option<String>,
    pub field_type: Option<FieldType>,
    pub required: Option<bool>,
    pub default_value: Patch<Value>,
    pub description: Patch<String>,
    pub minimum: Patch<Number>,
    pub maximum: Patch<Number>,
    pub pattern: Patch<String>,
    pub enum_values: Patch<Vec<String>>,
    pub immutable: Option<bool>,
    pub sudo: Option<bool>,
    pub unique: Option<bool>,
    pub index: Option<bool>,
    pub searchable: Option<bool>,
    pub tracked: Option<bool>,
    pub transform: Patch<Transform>,
    pub relationship_type: Patch<RelationshipType>,
    pub related_model: Patch<String>,
    pub related_field: Patch<String>,
    pub relationship_name: Patch<String>,
    pub cascade_delete: Option<bool>,
}

impl FieldPatch {
    /// True when at least one changeable field property is present.
    pub fn has_changes(&self) -> bool {
        self.field_type.is_some()
            || self.required.is_some()
            || !self.default_value.is_keep()
            || !self.description.is_keep()
            || !self.minimum.is_keep()
            || !self.maximum.is_keep()
            || !self.pattern.is_keep()
            || !self.enum_values.is_keep()
            || self.immutable.is_some()
            || self.sudo.is_some()
            || self.unique.is_some()
            || self.index.is_some()
            || self.searchable.is_some()
            || self.tracked.is_some()
            || !self.transform.is_keep()
            || !self.relationship_type.is_keep()
            || !self.related_model.is_keep()
            || !self.related_field.is_keep()
            || !self.relationship_name.is_keep()
            || self.cascade_delete.is_some()
    }
}

/// Keys every describe object shows but no body can set.
const READ_ONLY: &[&str] = &["created_at", "updated_at", "is_array"];

/// `FIELD_CONSTRAINT_INVALID` naming the property (A2).
pub fn constraint(property: &str, why: impl Into<String>) -> Error {
    Error::msg(ErrorCode::FieldConstraintInvalid, why.into())
        .with_data(json!({ "property": property }))
}

/// `FIELD_RELATIONSHIP_INVALID` naming the property.
pub fn relationship(property: &str, why: impl Into<String>) -> Error {
    Error::msg(ErrorCode::FieldRelationshipInvalid, why.into())
        .with_data(json!({ "property": property }))
}

/// `FIELD_TYPE_INVALID` with `data.valid_types`.
pub fn type_invalid(got: &Value) -> Error {
    let shown = match got {
        Value::String(s) => crate::ident::clip(s),
        other => crate::ident::clip(&other.to_string()),
    };
    Error::msg(
        ErrorCode::FieldTypeInvalid,
        format!("Unknown field type: {shown}"),
    )
    .with_data(json!({ "type": shown, "valid_types": FieldType::VALID }))
}

fn at(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn boolean(prefix: &str, key: &str, v: &Value) -> Result<Option<bool>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(Error::field_invalid(&at(prefix, key), "a boolean")),
    }
}

fn text(prefix: &str, key: &str, v: &Value) -> Result<Patch<String>, Error> {
    match v {
        Value::Null => Ok(Patch::Clear),
        Value::String(s) => Ok(Patch::Set(s.clone())),
        _ => Err(Error::field_invalid(&at(prefix, key), "a string or null")),
    }
}

fn name(prefix: &str, key: &str, v: &Value) -> Result<Option<String>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(Error::field_invalid(&at(prefix, key), "a string")),
    }
}

/// Resolves an input alias: both spellings present → `VALIDATION_FIELD_INVALID`.
fn canonical<'a>(
    obj: &'a Map<String, Value>,
    prefix: &str,
) -> Result<Vec<(&'static str, &'a Value)>, Error> {
    const ALIASES: &[(&str, &str)] = &[
        ("default", "default_value"),
        ("enum", "enum_values"),
        ("min", "minimum"),
        ("max", "maximum"),
    ];
    let mut out: Vec<(&'static str, &Value)> = Vec::new();
    for (k, v) in obj {
        let key: &'static str = match ALIASES.iter().find(|(a, _)| a == k) {
            Some((_, c)) => {
                if obj.contains_key(*c) {
                    return Err(Error::field_invalid(
                        &at(prefix, k),
                        &format!("either {k} or {c}, not both"),
                    ));
                }
                c
            }
            None => match FIELD_KEYS.iter().find(|f| *f == k) {
                Some(f) => f,
                None if READ_ONLY.contains(&k.as_str()) => continue,
                None => {
                    return Err(Error::field_invalid(
                        &at(prefix, k),
                        "a known field property",
                    ))
                }
            },
        };
        out.push((key, v));
    }
    Ok(out)
}

const FIELD_KEYS: &[&str] = &[
    "model_name",
    "field_name",
    "type",
    "required",
    "default_value",
    "description",
    "minimum",
    "maximum",
    "pattern",
    "enum_values",
    "immutable",
    "sudo",
    "unique",
    "index",
    "searchable",
    "tracked",
    "transform",
    "relationship_type",
    "related_model",
    "related_field",
    "relationship_name",
    "cascade_delete",
];

fn number(key: &str, v: &Value) -> Result<Patch<Number>, Error> {
    match v {
        Value::Null => Ok(Patch::Clear),
        Value::Number(n) => Ok(Patch::Set(n.clone())),
        _ => Err(constraint(key, format!("{key} must be a number or null"))),
    }
}

/// Parses one field body. `prefix` locates it in error data (`fields.total`, `[2]`, or empty).
pub fn parse_field(v: &Value, prefix: &str) -> Result<FieldPatch, Error> {
    let Value::Object(obj) = v else {
        return Err(if prefix.is_empty() {
            Error::msg(
                ErrorCode::ValidationBodyNotObject,
                "Field definition must be a JSON object",
            )
        } else {
            Error::field_invalid(prefix, "a field definition object")
        });
    };
    let mut p = FieldPatch::default();
    for (key, v) in canonical(obj, prefix)? {
        match key {
            "model_name" => p.model_name = name(prefix, key, v)?,
            "field_name" => p.field_name = name(prefix, key, v)?,
            "type" => {
                p.field_type = match v {
                    Value::Null => None,
                    Value::String(s) => Some(FieldType::parse(s).ok_or_else(|| type_invalid(v))?),
                    _ => return Err(type_invalid(v)),
                }
            }
            "required" => p.required = boolean(prefix, key, v)?,
            "default_value" => {
                p.default_value = match v {
                    Value::Null => Patch::Clear,
                    other => Patch::Set(other.clone()),
                }
            }
            "description" => p.description = text(prefix, key, v)?,
            "minimum" => p.minimum = number(key, v)?,
            "maximum" => p.maximum = number(key, v)?,
            "pattern" => {
                p.pattern = match v {
                    Value::Null => Patch::Clear,
                    Value::String(s) => Patch::Set(s.clone()),
                    _ => return Err(constraint(key, "pattern must be a string or null")),
                }
            }
            "enum_values" => {
                p.enum_values = match v {
                    Value::Null => Patch::Clear,
                    Value::Array(a) => {
                        let vals: Option<Vec<String>> =
                            a.iter().map(|x| x.as_str().map(str::to_owned)).collect();
                        Patch::Set(vals.ok_or_else(|| {
                            constraint(key, "enum_values must be an array of strings")
                        })?)
                    }
                    _ => return Err(constraint(key, "enum_values must be an array of strings or null")),
                }
            }
            "immutable" => p.immutable = boolean(prefix, key, v)?,
            "sudo" => p.sudo = boolean(prefix, key, v)?,
            "unique" => p.unique = boolean(prefix, key, v)?,
            "index" => p.index = boolean(prefix, key, v)?,
            "searchable" => p.searchable = boolean(prefix, key, v)?,
            "tracked" => p.tracked = boolean(prefix, key, v)?,
            "transform" => {
                p.transform = match v {
                    Value::Null => Patch::Clear,
                    Value::String(s) => Patch::Set(Transform::parse(s).ok_or_else(|| {
                        constraint(
                            key,
                            "transform must be one of lowercase, uppercase, trim, normalize_email, normalize_phone",
                        )
                    })?),
                    _ => return Err(constraint(key, "transform must be a string or null")),
                }
            }
            "relationship_type" => {
                p.relationship_type = match v {
                    Value::Null => Patch::Clear,
                    Value::String(s) => Patch::Set(RelationshipType::parse(s).ok_or_else(|| {
                        relationship(key, "relationship_type must be owned or referenced")
                    })?),
                    _ => return Err(relationship(key, "relationship_type must be a string or null")),
                }
            }
            "related_model" | "related_field" | "relationship_name" => {
                let patch = match v {
                    Value::Null => Patch::Clear,
                    Value::String(s) => Patch::Set(s.clone()),
                    _ => return Err(relationship(key, format!("{key} must be a string or null"))),
                };
                match key {
                    "related_model" => p.related_model = patch,
                    "related_field" => p.related_field = patch,
                    _ => p.relationship_name = patch,
                }
            }
            "cascade_delete" => p.cascade_delete = boolean(prefix, key, v)?,
            _ => {}
        }
    }
    Ok(p)
}

/// Parses a model body (POST with optional inline `fields`, or PUT).
pub fn parse_model(v: Option<&Value>, allow_fields: bool) -> Result<ModelPatch, Error> {
    let obj = crate::body::object_or_empty(v, "Model definition must be a JSON object")?;
    let mut p = ModelPatch::default();
    for (k, v) in obj {
        match k.as_str() {
            "model_name" => p.model_name = name("", k, v)?,
            "status" => {
                p.status = match v {
                    Value::Null => None,
                    Value::String(s) if s == "active" || s == "pending" => Some(s.clone()),
                    _ => return Err(Error::field_invalid("status", "\"active\" or \"pending\"")),
                }
            }
            "description" => p.description = text("", k, v)?,
            "sudo" => p.sudo = boolean("", k, v)?,
            "frozen" => p.frozen = boolean("", k, v)?,
            "immutable" => p.immutable = boolean("", k, v)?,
            "external" => p.external = boolean("", k, v)?,
            "passthrough" => p.passthrough = boolean("", k, v)?,
            "fields" if allow_fields => p.fields = parse_inline_fields(v)?,
            "fields" => {
                return Err(Error::field_invalid(
                    "fields",
                    "no fields here: change fields with /api/describe/:model/fields",
                ))
            }
            k if READ_ONLY.contains(&k) => {}
            _ => return Err(Error::field_invalid(k, "a known model property")),
        }
    }
    Ok(p)
}

/// Inline fields: a map `{name:{…}}` or an array `[{field_name,…}]`.
fn parse_inline_fields(v: &Value) -> Result<Option<Vec<FieldPatch>>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (name, def) in map {
                let prefix = format!("fields.{}", crate::ident::clip(name));
                let mut f = parse_field(def, &prefix)?;
                match &f.field_name {
                    Some(n) if n != name => {
                        return Err(Error::field_invalid(
                            &format!("{prefix}.field_name"),
                            "the same name as the key",
                        ))
                    }
                    _ => f.field_name = Some(name.clone()),
                }
                out.push(f);
            }
            Ok(Some(out))
        }
        Value::Array(items) => parse_field_array(items, "fields").map(Some),
        _ => Err(Error::field_invalid(
            "fields",
            "an object {name:{…}} or an array [{field_name,…}]",
        )),
    }
}

/// An array of field bodies, each with `field_name`.
pub fn parse_field_array(items: &[Value], prefix: &str) -> Result<Vec<FieldPatch>, Error> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{prefix}[{i}]");
        let f = parse_field(item, &at)?;
        if f.field_name.is_none() {
            return Err(Error::field_missing(&format!("{at}.field_name")));
        }
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_nulls() {
        let p = parse_field(
            &json!({"type":"numeric","min":0,"max":null,"default":5,"enum":null,"required":null,"created_at":"x"}),
            "",
        )
        .unwrap();
        assert_eq!(p.field_type, Some(FieldType::Decimal));
        assert_eq!(p.minimum, Patch::Set(Number::from(0)));
        assert_eq!(p.maximum, Patch::Clear);
        assert_eq!(p.default_value, Patch::Set(json!(5)));
        assert_eq!(p.enum_values, Patch::Clear);
        assert_eq!(p.required, None);
        assert!(p.has_changes());
    }

    #[test]
    fn errors() {
        let e = parse_field(&json!({"type":"money"}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::FieldTypeInvalid);
        assert!(e.data.unwrap()["valid_types"].is_array());
        let e = parse_field(&json!({"min":1,"minimum":2}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
        let e = parse_field(&json!({"requried":true}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
        let e = parse_field(&json!({"minimum":"5"}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::FieldConstraintInvalid);
        assert_eq!(e.data.unwrap()["property"], "minimum");
        let e = parse_field(&json!({"transform":"reverse"}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::FieldConstraintInvalid);
        let e = parse_field(&json!({"relationship_type":"parent"}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::FieldRelationshipInvalid);
        let e = parse_field(&json!({"unique":"yes"}), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
    }

    #[test]
    fn inline_fields_map_and_array() {
        let m = parse_model(
            Some(&json!({"description":"d","fields":{"a":{"type":"text"},"b":{"type":"integer"}}})),
            true,
        )
        .unwrap();
        let f = m.fields.unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].field_name.as_deref(), Some("a"));
        let m = parse_model(
            Some(&json!({"fields":[{"field_name":"x","type":"uuid"}]})),
            true,
        )
        .unwrap();
        assert_eq!(m.fields.unwrap()[0].field_type, Some(FieldType::Uuid));
        let e = parse_model(Some(&json!({"fields":[{"type":"uuid"}]})), true).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldMissing);
        let e = parse_model(
            Some(&json!({"fields":{"a":{"field_name":"b","type":"text"}}})),
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
        let e = parse_model(Some(&json!({"status":"system"})), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
        let e = parse_model(Some(&json!({"fields":{}})), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFieldInvalid);
        assert!(!parse_model(None, false).unwrap().has_changes());
        assert!(
            !parse_model(Some(&json!({"model_name":"x","created_at":"t"})), false)
                .unwrap()
                .has_changes()
        );
        assert!(parse_model(Some(&json!({"description":null})), false)
            .unwrap()
            .has_changes());
    }
}
