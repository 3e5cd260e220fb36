//! The route registry is complete and consistent (B4): every entry the router is built from has a
//! summary, a response example that parses as JSON, known error codes (at least one for protected
//! routes), a docs area with a summary, and its own endpoint docs page. No server needed.

use abbotik_domain::ErrorCode;
use abbotik_http::docs::{areas, markdown, openapi, resolve};
use abbotik_http::registry::{self, Access};
use std::collections::HashSet;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

fn id(r: &registry::RouteDoc) -> String {
    format!("{} {}", r.method, r.path)
}

#[test]
fn every_entry_is_documented() {
    let mut problems: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for r in registry::all() {
        let me = id(r);
        if !seen.insert(me.clone()) {
            problems.push(format!("{me}: registered twice"));
        }
        if !METHODS.contains(&r.method) {
            problems.push(format!("{me}: unknown method"));
        }
        if !r.path.starts_with('/') {
            problems.push(format!("{me}: path must start with /"));
        }
        if r.path.contains("/:") {
            problems.push(format!("{me}: use axum {{param}} syntax, not :param"));
        }
        if r.summary.trim().is_empty() {
            problems.push(format!("{me}: empty summary"));
        }
        if !(100..600).contains(&r.status) {
            problems.push(format!("{me}: status {} out of range", r.status));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(r.response) {
            problems.push(format!("{me}: response example is not JSON: {e}"));
        }
        if let Some(req) = r.request {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(req) {
                problems.push(format!("{me}: request example is not JSON: {e}"));
            }
        }
        if r.access != Access::Public && r.errors.is_empty() {
            problems.push(format!("{me}: protected route lists no error codes"));
        }
        for c in r.errors {
            if !ErrorCode::ALL.iter().any(|k| k.as_str() == *c) {
                problems.push(format!("{me}: error code {c} is not in ErrorCode::ALL"));
            }
        }
        match areas::find(r.area) {
            Some(a) if !a.summary.is_empty() => {}
            _ => problems.push(format!(
                "{me}: area {:?} has no entry in docs::areas::AREAS",
                r.area
            )),
        }
        let page = resolve::endpoint_path(r);
        match resolve::resolve(page.strip_prefix("/docs").unwrap_or(&page)) {
            Ok(resolve::Page::Endpoint(got)) if got.method == r.method && got.path == r.path => {}
            // `/docs/` is documented on the page of `/docs/{*path}` (its empty case).
            Ok(resolve::Page::Endpoint(got))
                if r.path.ends_with('/')
                    && got.method == r.method
                    && got.path.starts_with(r.path) => {}
            _ => problems.push(format!("{me}: its docs page {page} does not resolve to it")),
        }
    }
    assert!(
        problems.is_empty(),
        "registry problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn public_routes_of_the_contract_are_registered() {
    let all: HashSet<String> = registry::all().into_iter().map(id).collect();
    for want in [
        "GET /",
        "GET /health",
        "GET /ready",
        "GET /llms.txt",
        "GET /docs",
        "GET /docs/{*path}",
        "GET /openapi.json",
    ] {
        assert!(all.contains(want), "{want} missing from the registry");
    }
}

#[test]
fn docs_render_offline() {
    let md = markdown::index();
    assert!(md.starts_with("# Abbotik API docs"));
    for a in areas::available() {
        assert!(
            md.contains(&format!("(/docs/{})", a.path)),
            "index lacks {}",
            a.path
        );
        let page = markdown::area_page(&a);
        assert!(page.starts_with("# "), "{}", a.path);
        for r in areas::routes_of(a.path) {
            assert!(
                page.contains(&r.contract_path()),
                "{} lacks {}",
                a.path,
                id(r)
            );
        }
    }
    let errors = markdown::errors_page();
    for c in ErrorCode::ALL {
        assert!(errors.contains(&format!("`{}`", c.as_str())), "{c:?}");
    }
    let doc = openapi::document("9.9.9");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], "9.9.9");
    let mut op_ids = HashSet::new();
    for r in registry::all() {
        let op = &doc["paths"][openapi::openapi_path(r.path)][r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} missing from openapi", id(r));
        assert!(
            op_ids.insert(op["operationId"].as_str().unwrap_or("").to_owned()),
            "duplicate operationId for {}",
            id(r)
        );
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, r.access != Access::Public, "{}", id(r));
    }
    assert!(doc["components"]["schemas"]["Error"].is_object());
}
