//! The body of `POST /api/bulk/export` (A8.2): `{"models":[…],"include":[…],
//! "include_trashed":false}`, every key optional and `null` = absent (A1.1).
//!
//! Choices where the contract is silent: an empty list (`"models":[]`, `"include":[]`) means
//! the default, like an absent key; a comma-separated string (`"customers,orders"`,
//! `"describe,data"`, the query syntax of import) is accepted as a list; names may repeat
//! (the first one counts); an unknown key is refused (`VALIDATION_FIELD_INVALID`), so a typo
//! such as `model` never silently exports everything.

use crate::{ident, Error, ErrorCode, Result};
use serde_json::{json, Value};

const KEYS: &[&str] = &["models", "include", "include_trashed"];
const PARTS: &[&str] = &["describe", "data"];

/// A parsed export request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// Named models in request order (deduplicated); `None` = every non-system model.
    pub models: Option<Vec<String>>,
    pub describe: bool,
    pub data: bool,
    pub include_trashed: bool,
}

impl Default for ExportRequest {
    fn default() -> Self {
        Self {
            models: None,
            describe: true,
            data: true,
            include_trashed: false,
        }
    }
}

fn invalid(field: &str, msg: String, expected: &str) -> Error {
    Error::msg(ErrorCode::ValidationFieldInvalid, msg)
        .with_data(json!({ "field": field, "expected": expected }))
}

/// The strings of a list option: an array of strings or one comma-separated string.
fn names(field: &str, v: &Value, expected: &str) -> Result<Vec<String>> {
    let bad = || {
        invalid(
            field,
            format!("{field} must be an array of strings, e.g. {expected}"),
            expected,
        )
    };
    let raw: Vec<&str> = match v {
        Value::String(s) => s.split(',').collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(bad))
            .collect::<Result<_>>()?,
        _ => return Err(bad()),
    };
    let mut out: Vec<String> = Vec::new();
    for n in raw.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

impl ExportRequest {
    /// Parses a body (`None` = empty body = `{}`).
    pub fn parse(body: Option<&Value>) -> Result<ExportRequest> {
        let obj = crate::body::object_or_empty(
            body,
            "Body must be a JSON object: {\"models\":[…],\"include\":[…],\"include_trashed\":false}",
        )?;
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(Error::msg(
                ErrorCode::ValidationFieldInvalid,
                format!(
                    "Unknown key in the export body: {}; accepted keys are models, include, include_trashed",
                    ident::clip(k)
                ),
            )
            .with_data(json!({ "field": ident::clip(k), "accepted": KEYS })));
        }
        let mut req = ExportRequest::default();
        if let Some(v) = obj.get("models").filter(|v| !v.is_null()) {
            let list = names("models", v, "[\"customers\",\"orders\"]")?;
            if !list.is_empty() {
                req.models = Some(list);
            }
        }
        if let Some(v) = obj.get("include").filter(|v| !v.is_null()) {
            let list = names("include", v, "[\"describe\",\"data\"]")?;
            if let Some(bad) = list.iter().find(|p| !PARTS.contains(&p.as_str())) {
                return Err(invalid(
                    "include",
                    format!(
                        "Unknown include part {}; use describe and/or data",
                        ident::clip(bad)
                    ),
                    "[\"describe\",\"data\"]",
                ));
            }
            if !list.is_empty() {
                req.describe = list.iter().any(|p| p == "describe");
                req.data = list.iter().any(|p| p == "data");
            }
        }
        match obj.get("include_trashed") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => req.include_trashed = *b,
            Some(_) => {
                return Err(invalid(
                    "include_trashed",
                    "include_trashed must be true or false".into(),
                    "boolean",
                ))
            }
        }
        Ok(req)
    }

    /// `meta.include`: the parts in their fixed order.
    pub fn include_names(&self) -> Vec<&'static str> {
        let mut v = Vec::with_capacity(2);
        if self.describe {
            v.push("describe");
        }
        if self.data {
            v.push("data");
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ExportRequest> {
        ExportRequest::parse(Some(&v))
    }

    #[test]
    fn defaults_and_nulls() {
        assert_eq!(
            ExportRequest::parse(None).unwrap(),
            ExportRequest::default()
        );
        let r = parse(json!({"models": null, "include": null, "include_trashed": null})).unwrap();
        assert_eq!(r, ExportRequest::default());
        let r = parse(json!({"models": [], "include": []})).unwrap();
        assert_eq!(r, ExportRequest::default());
        assert_eq!(r.include_names(), ["describe", "data"]);
    }

    #[test]
    fn lists() {
        let r =
            parse(json!({"models": ["b", "a", "b"], "include": ["data"], "include_trashed": true}))
                .unwrap();
        assert_eq!(
            r.models.as_deref(),
            Some(&["b".to_owned(), "a".to_owned()][..])
        );
        assert!(!r.describe && r.data && r.include_trashed);
        assert_eq!(r.include_names(), ["data"]);
        let r = parse(json!({"models": "a, b", "include": "describe"})).unwrap();
        assert_eq!(r.models.unwrap(), ["a", "b"]);
        assert!(r.describe && !r.data);
    }

    #[test]
    fn refusals() {
        for (body, code) in [
            (json!([1]), ErrorCode::ValidationBodyNotObject),
            (json!({"model": ["a"]}), ErrorCode::ValidationFieldInvalid),
            (json!({"models": [1]}), ErrorCode::ValidationFieldInvalid),
            (json!({"models": 5}), ErrorCode::ValidationFieldInvalid),
            (
                json!({"include": ["acl"]}),
                ErrorCode::ValidationFieldInvalid,
            ),
            (
                json!({"include_trashed": "yes"}),
                ErrorCode::ValidationFieldInvalid,
            ),
        ] {
            assert_eq!(parse(body.clone()).unwrap_err().code, code, "{body}");
        }
    }
}
