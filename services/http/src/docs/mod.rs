//! Documentation surfaces (B4): `/llms.txt`, `/docs`, `/docs/<path>` and `/openapi.json`, all
//! rendered at request time from [`crate::registry::all`] and the error table, so they can
//! never drift from the router. Docs answer markdown whatever `Accept` says; `?format=json`
//! gives `{"success":true,"data":{"path","markdown","routes"}}`. A bearer token is ignored.

pub mod areas;
pub mod llms;
pub mod markdown;
pub mod openapi;
pub mod resolve;

use crate::extract::{ok, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use abbotik_domain::{Error, ErrorCode};
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use resolve::{Miss, Page};
use serde_json::{json, Value};

const FORMAT_ERRORS: &[&str] = &["VALIDATION_FORMAT_UNSUPPORTED"];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/llms.txt",
        area: "docs",
        access: Access::Public,
        summary: "Agent entrypoint: what the product is, how to get a token, where the docs are",
        description: "Markdown (`text/markdown; charset=utf-8`) whatever the `Accept` header says: bootstrap steps quoting the real request examples, one line per docs area, the envelope and error shape, and the conventions agents rely on (null rules, timestamps, pagination, `?unwrap`, `?stat=false`, `?access=false`). `?format=json` wraps it as `{\"path\",\"markdown\",\"routes\"}`.",
        request: None,
        response: r##""# Abbotik API\n\n> A multi-tenant, agent-first backend (version 1.0.0). …""##,
        status: 200,
        errors: FORMAT_ERRORS,
        handler: || get(llms_txt),
    },
    RouteDoc {
        method: "GET",
        path: "/docs",
        area: "docs",
        access: Access::Public,
        summary: "Docs index: every area with a one-line summary and its routes",
        description: "Markdown whatever the `Accept` header says; `?format=json` returns `{\"success\":true,\"data\":{\"path\":\"/docs\",\"markdown\":\"…\",\"routes\":[…]}}` with every route.",
        request: None,
        response: r##""# Abbotik API docs\n\nAbbotik is a multi-tenant, agent-first backend …""##,
        status: 200,
        errors: FORMAT_ERRORS,
        handler: || get(docs_index),
    },
    RouteDoc {
        method: "GET",
        path: "/docs/{*path}",
        area: "docs",
        access: Access::Public,
        summary: "One docs page: an area, an endpoint, or an error code",
        description: "Areas: `/docs/auth`, `/docs/api/data`, … (short forms resolve: `/docs/data` = `/docs/api/data`). One endpoint: the path with literal placeholder names plus the method, e.g. `/docs/api/data/model/id/GET`. The error table: `/docs/errors`; one code: `/docs/errors/<CODE>`. Unknown paths answer `404 DOCS_NOT_FOUND` with `data.suggestions` (up to 5 nearest pages).",
        request: None,
        response: r##""# Operations\n\nService identity, liveness and readiness.\n\n## Concepts\n…""##,
        status: 200,
        errors: &["DOCS_NOT_FOUND", "DOCS_PATH_MISSING", "VALIDATION_FORMAT_UNSUPPORTED"],
        handler: || get(docs_page),
    },
    RouteDoc {
        method: "GET",
        path: "/docs/",
        area: "docs",
        access: Access::Public,
        summary: "Empty docs path: always 400 DOCS_PATH_MISSING",
        description: "Registered so that `/docs/` answers the docs error rather than an unknown route. Use `/docs` for the index or `/docs/<area>`.",
        request: None,
        response: r#"{"success":false,"error":"Empty docs path","error_code":"DOCS_PATH_MISSING","code":"DOCS_PATH_MISSING","message":"Empty docs path","remediation":"use /docs/<area>","docs":"/docs"}"#,
        status: 400,
        errors: &["DOCS_PATH_MISSING"],
        handler: || get(docs_empty),
    },
    RouteDoc {
        method: "GET",
        path: "/openapi.json",
        area: "docs",
        access: Access::Public,
        summary: "OpenAPI 3.1 of every route of this binary",
        description: "The bare OpenAPI document (no envelope). `info.version` is the binary version; error responses reference `components/schemas/Error` (the envelope) with one example per code; protected routes carry `security: [{bearer: []}]`.",
        request: None,
        response: r#"{"openapi":"3.1.0","info":{"title":"Abbotik API","version":"1.0.0"},"paths":{"/health":{"get":{"operationId":"get_health","summary":"Liveness: the process answers (never touches dependencies)"}}},"components":{"schemas":{"Error":{"type":"object"}},"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"}}}}"#,
        status: 200,
        errors: &[],
        handler: || get(openapi_json),
    },
];

/// `?format`: markdown (default) or json; `None` for anything else (a 406).
fn wants_json(p: &Params) -> Option<bool> {
    match p.get("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "markdown" | "md" | "text") => Some(false),
        Some("json") => Some(true),
        Some(_) => None,
    }
}

fn format_unsupported(p: &Params) -> Response {
    let asked = truncate(p.get("format").unwrap_or(""), 40);
    ApiError(
        Error::msg(
            ErrorCode::ValidationFormatUnsupported,
            format!("Docs are offered as markdown or json, not {asked}"),
        )
        .with_data(json!({"field": "format", "expected": "markdown or json"})),
    )
    .into_response()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A rendered page: markdown, or the JSON form.
fn page(p: &Params, path: &str, md: String, routes: Value) -> Response {
    match wants_json(p) {
        None => format_unsupported(p),
        Some(true) => ok(
            StatusCode::OK,
            json!({"path": path, "markdown": md, "routes": routes}),
            p.unwrap(),
        ),
        Some(false) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            md,
        )
            .into_response(),
    }
}

async fn llms_txt(State(s): State<AppState>, p: Params) -> Response {
    page(&p, "/llms.txt", llms::render(s.settings.version), json!([]))
}

async fn docs_index(p: Params) -> Response {
    let all = crate::registry::all();
    page(&p, "/docs", markdown::index(), markdown::page_routes(&all))
}

async fn docs_empty() -> ApiError {
    ApiError(Error::new(ErrorCode::DocsPathMissing))
}

async fn docs_page(uri: Uri, p: Params) -> Response {
    let raw = uri.path().strip_prefix("/docs").unwrap_or("");
    match resolve::resolve(raw) {
        Ok(Page::Area(a)) => {
            let routes = if a.path == "errors" {
                json!([])
            } else {
                markdown::page_routes(&areas::routes_of(a.path))
            };
            page(
                &p,
                &format!("/docs/{}", a.path),
                markdown::area_page(&a),
                routes,
            )
        }
        Ok(Page::Endpoint(r)) => page(
            &p,
            &resolve::endpoint_path(r),
            markdown::endpoint_page(r),
            markdown::page_routes(&[r]),
        ),
        Ok(Page::RoutePath(key, routes)) => page(
            &p,
            &format!("/docs/{key}"),
            markdown::route_path_page(&key, &routes),
            markdown::page_routes(&routes),
        ),
        Ok(Page::Errors) => page(&p, "/docs/errors", markdown::errors_page(), json!([])),
        Ok(Page::ErrorCode(c)) => page(
            &p,
            &format!("/docs/errors/{}", c.as_str()),
            markdown::error_code_page(c),
            json!([]),
        ),
        Err(Miss::Empty) => ApiError(Error::new(ErrorCode::DocsPathMissing)).into_response(),
        Err(Miss::Unknown {
            planned,
            suggestions,
        }) => {
            let shown = format!("/docs/{}", truncate(raw.trim_matches('/'), 200));
            let (msg, data) = match planned {
                Some(area) => (
                    format!("Docs area /docs/{area} is not available in this version"),
                    json!({"path": shown, "planned": true, "suggestions": suggestions}),
                ),
                None => (
                    format!("No docs at {shown}"),
                    json!({"path": shown, "suggestions": suggestions}),
                ),
            };
            ApiError(Error::msg(ErrorCode::DocsNotFound, msg).with_data(data)).into_response()
        }
    }
}

async fn openapi_json(State(s): State<AppState>) -> Response {
    axum::Json(openapi::document(s.settings.version)).into_response()
}
