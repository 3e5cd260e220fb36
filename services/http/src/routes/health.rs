//! `GET /`, `/health`, `/ready` (A1.2, B6).

use crate::extract::{ok, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use abbotik_domain::{Error, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::atomic::Ordering;

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/",
        area: "operations",
        access: Access::Public,
        summary: "Service identity and entry points",
        description: "Names the service and its version, and links the docs, `/llms.txt`, `/mcp` and `/openapi.json`.",
        request: None,
        response: r#"{"success":true,"data":{"name":"abbotik-api","version":"1.0.0","docs":"/docs","llms":"/llms.txt","mcp":"/mcp","openapi":"/openapi.json"}}"#,
        status: 200,
        errors: &[],
        handler: || get(root),
    },
    RouteDoc {
        method: "GET",
        path: "/health",
        area: "operations",
        access: Access::Public,
        summary: "Liveness: the process answers (never touches dependencies)",
        description: "Always `200` while the process runs. Use `/ready` to check dependencies.",
        request: None,
        response: r#"{"success":true,"data":{"status":"healthy","timestamp":"2026-11-23T18:40:00.123456Z","uptime":8123.4,"version":"1.0.0","region":"local"}}"#,
        status: 200,
        errors: &[],
        handler: || get(health),
    },
    RouteDoc {
        method: "GET",
        path: "/ready",
        area: "operations",
        access: Access::Public,
        summary: "Readiness: every configured dependency checked in parallel (2 s timeout each)",
        description: "PostgreSQL is critical (`503 NOT_READY`). A failure of Redis, NATS or S3 answers `200` with `status:\"degraded\"`; `?strict=true` makes any failure a `503`. Answers `503` once shutdown has begun.",
        request: None,
        response: r#"{"success":true,"data":{"status":"ready","checks":{"postgres":{"ok":true,"latency_ms":2}}}}"#,
        status: 200,
        errors: &["NOT_READY"],
        handler: || get(ready),
    },
];

async fn root(State(s): State<AppState>) -> Response {
    ok(
        StatusCode::OK,
        json!({"name":"abbotik-api","version":s.settings.version,"docs":"/docs","llms":"/llms.txt","mcp":"/mcp","openapi":"/openapi.json"}),
        false,
    )
}

async fn health(State(s): State<AppState>) -> Response {
    ok(
        StatusCode::OK,
        json!({
            "status": "healthy",
            "timestamp": abbotik_domain::time::Ts::now(),
            "uptime": (s.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "version": s.settings.version,
            "region": s.settings.region,
        }),
        false,
    )
}

/// Readiness report; `detailed` adds the error strings (metrics listener only).
pub async fn readiness_response(s: &AppState, strict: bool, detailed: bool) -> Response {
    let checks = s.readiness.check().await;
    let mut failed: Vec<&str> = Vec::new();
    let mut map = serde_json::Map::new();
    let mut critical_failed = false;
    if s.shutting_down.load(Ordering::SeqCst) {
        failed.push("shutdown");
        critical_failed = true;
    }
    for c in &checks {
        let mut v = json!({"ok": c.ok, "latency_ms": c.latency_ms});
        if detailed {
            if let Some(e) = &c.error {
                v["error"] = json!(e);
            }
        }
        if !c.ok {
            if let Some(e) = &c.error {
                tracing::warn!(check = c.name, error = %e, "readiness check failed");
            }
            failed.push(c.name);
            critical_failed |= c.critical;
        }
        map.insert(c.name.to_owned(), v);
    }
    if critical_failed || (strict && !failed.is_empty()) {
        let err = Error::msg(
            ErrorCode::NotReady,
            format!("Not ready: {}", failed.join(", ")),
        )
        .with_data(json!({"status":"not_ready","failed":failed,"checks":map}));
        return ApiError(err).into_response();
    }
    let status = if failed.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    let mut data = json!({"status": status, "checks": map});
    if !failed.is_empty() {
        data["failed"] = json!(failed);
    }
    ok(StatusCode::OK, data, false)
}

async fn ready(State(s): State<AppState>, p: Params) -> Response {
    let strict = p.flag("strict", false).unwrap_or(false);
    readiness_response(&s, strict, false).await
}
