//! `GET /openapi.json`: OpenAPI 3.1 of every registered route, built with serde_json from the
//! registry (a compile-time generator such as utoipa cannot see a runtime registry). Error
//! responses reference `components/schemas/Error` (the A1.3 envelope) with one example per code.
//! A response example that is a JSON *string* documents a text body (`text/markdown`).

use super::areas;
use super::markdown::{auth_label, code_of, example};
use crate::error::envelope;
use crate::error_table::row;
use crate::registry::{self, Access, RouteDoc};
use abbotik_domain::{Error, ErrorCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Axum path → OpenAPI path (`{*path}` → `{path}`).
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn params_of(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| s.starts_with('{') && s.ends_with('}'))
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}' || c == '*')
                .to_owned()
        })
        .collect()
}

fn operation_id(r: &RouteDoc, taken: &mut HashSet<String>) -> String {
    let mut base = r.method.to_ascii_lowercase();
    let segs: Vec<String> = r
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .trim_matches('_')
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if segs.is_empty() {
        base.push_str("_root");
    } else {
        for s in segs {
            base.push('_');
            base.push_str(&s);
        }
    }
    if r.path.ends_with('/') && r.path.len() > 1 {
        base.push_str("_slash");
    }
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

/// The content object of an example (JSON, or markdown text for string examples).
fn content(text: &str) -> Value {
    match example(text) {
        Value::String(s) => json!({"text/markdown": {"schema": {"type": "string"}, "example": s}}),
        v => json!({"application/json": {"example": v}}),
    }
}

/// Error responses of a route, grouped by status, each code an example of the envelope.
fn error_responses(r: &RouteDoc, responses: &mut Map<String, Value>) {
    let mut codes: Vec<ErrorCode> = r.errors.iter().filter_map(|c| code_of(c)).collect();
    if r.access != Access::Public {
        for c in [
            ErrorCode::AuthTokenRequired,
            ErrorCode::AuthTokenInvalid,
            ErrorCode::AuthTokenExpired,
        ] {
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
    }
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for c in codes {
        let s = row(c).status;
        if s != 0 {
            by_status.entry(s).or_default().push(c);
        }
    }
    for (status, codes) in by_status {
        let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        let mut examples = Map::new();
        for c in &codes {
            let (_, body) = envelope(&Error::new(*c));
            examples.insert(
                c.as_str().to_owned(),
                json!({"summary": row(*c).remediation, "value": body}),
            );
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": names.join(", "),
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "examples": examples,
                }},
            }),
        );
    }
}

fn operation(r: &RouteDoc, taken: &mut HashSet<String>) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(operation_id(r, taken)));
    op.insert("summary".into(), json!(r.summary));
    let mut desc = r.description.to_owned();
    if !desc.is_empty() {
        desc.push_str("\n\n");
    }
    desc.push_str(&format!(
        "Auth: {}. Docs: {}",
        auth_label(r.access),
        super::resolve::endpoint_path(r)
    ));
    op.insert("description".into(), json!(desc));
    op.insert("tags".into(), json!([r.area]));
    let security = if r.access == Access::Public {
        json!([])
    } else {
        json!([{"bearer": []}])
    };
    op.insert("security".into(), security);
    if r.access == Access::Sudo {
        op.insert("x-abbotik-sudo".into(), json!(true));
    }
    let params: Vec<Value> = params_of(r.path)
        .into_iter()
        .map(|p| {
            let wildcard = r.path.contains(&format!("{{*{p}}}"));
            let mut v =
                json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}});
            if wildcard {
                v["description"] = json!("The rest of the path; may contain `/`.");
            }
            v
        })
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some(req) = r.request {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"example": example(req)}}}),
        );
    }
    let mut responses = Map::new();
    responses.insert(
        r.status.to_string(),
        json!({"description": r.summary, "content": content(r.response)}),
    );
    error_responses(r, &mut responses);
    responses.insert(
        "default".into(),
        json!({"description": "Any other error, in the error envelope",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
    );
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

fn error_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "description": "The error envelope (every 4xx/5xx JSON response). Branch on `code`.",
        "required": ["success", "error", "error_code", "code", "message", "remediation", "docs"],
        "properties": {
            "success": {"const": false},
            "error": {"type": "string", "description": "Human sentence (same as message)"},
            "error_code": {"type": "string", "enum": codes},
            "code": {"type": "string", "enum": codes, "description": "Stable error code (same as error_code)"},
            "message": {"type": "string"},
            "remediation": {"type": "string", "description": "What to do next"},
            "docs": {"type": "string", "description": "Docs page of the surface"},
            "data": {"description": "Context (offending field, path, index, ids); present only when there is context"},
        },
    })
}

/// The whole document.
pub fn document(version: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut taken = HashSet::new();
    for r in registry::all() {
        let p = openapi_path(r.path);
        let entry = paths.entry(p).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = operation(r, &mut taken);
    }
    let tags: Vec<Value> = areas::available()
        .iter()
        .map(|a| json!({"name": a.path, "description": a.summary, "externalDocs": {"url": format!("/docs/{}", a.path)}}))
        .collect();
    // A relative server URL resolves against wherever the document was fetched, which stays
    // right behind proxies (the configured public URL may be a bind address).
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Abbotik API",
            "version": version,
            "description": "Multi-tenant, agent-first backend. Agents: start at /llms.txt; docs at /docs.",
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": {"Error": error_schema()},
            "securitySchemes": {"bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A JWT from /auth/login (or /auth/refresh), or a bearer API key (abk_…) where available.",
            }},
        },
    })
}
