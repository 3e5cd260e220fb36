//! `/api/keys` (A3.7): bearer API keys — create (secret shown once), list, revoke, revoke all.

use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/keys",
        area: "api/keys",
        access: Access::Bearer,
        summary: "List API keys (your own; another user's with sudo)",
        description: "Your keys, newest first, revoked ones included; never the secret. `user_id` lists another user's keys: sudo, and only users whose `access` is at most your effective role (`root` users: `root` only). `limit` (default 100, at most 1000) and `offset`.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"7a1c2e3d-0000-4000-8000-00000000000a","user_id":"4b1d3c9e-0000-4000-8000-000000000001","name":"ci-runner","prefix":"abk_Zx81Qa0b","access":"edit","created_at":"2026-05-06T14:00:00.000000Z","last_used_at":null,"expires_at":"2026-12-31T00:00:00.000000Z","revoked_at":null}]}"#,
        status: 200,
        errors: &["AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_USER_NOT_FOUND", "AUTH_IMPERSONATION_RESTRICTED", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET"],
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/keys",
        area: "api/keys",
        access: Access::Bearer,
        summary: "Create an API key for yourself; the key is shown once",
        description: "Every key is optional: `name`, `expires_at` (RFC 3339, in the future), `access` (default: your effective role; never above it — with an API-key credential, never above that key's). Use it as `Authorization: Bearer abk_…`; the request runs as you with role min(your role, the key's `access`). Only a SHA-256 of the key is stored. At most 100 active keys per user.",
        request: Some(r#"{"name":"ci-runner","expires_at":"2026-12-31T00:00:00Z","access":"edit"}"#),
        response: r#"{"success":true,"data":{"id":"7a1c2e3d-0000-4000-8000-00000000000a","name":"ci-runner","key":"abk_Zx81Qa0bT3xkq0Hn2m9vJd4yP7sLw5cRf8gTb1eUo6i","prefix":"abk_Zx81Qa0b","access":"edit","created_at":"2026-05-06T14:00:00.000000Z","expires_at":"2026-12-31T00:00:00.000000Z","warning":"Store this key now; it cannot be shown again."}}"#,
        status: 201,
        errors: &["KEY_EXPIRES_AT_INVALID", "KEY_ACCESS_INVALID", "AUTH_ROLE_INSUFFICIENT", "KEY_LIMIT_REACHED", "AUTH_IMPERSONATION_RESTRICTED", "VALIDATION_FIELD_INVALID"],
        handler: || post(create),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/keys/{key_id}",
        area: "api/keys",
        access: Access::Bearer,
        summary: "Revoke an API key (yours; another user's with sudo)",
        description: "Takes effect on the very next request on every pod: the key is re-checked with the identity on each request.",
        request: None,
        response: r#"{"success":true,"data":{"id":"7a1c2e3d-0000-4000-8000-00000000000a","revoked":true,"revoked_at":"2026-05-06T14:00:00.000000Z"}}"#,
        status: 200,
        errors: &["KEY_NOT_FOUND", "KEY_ALREADY_REVOKED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED"],
        handler: || delete(revoke),
    },
    RouteDoc {
        method: "POST",
        path: "/api/keys/revoke-all",
        area: "api/keys",
        access: Access::Bearer,
        summary: "Revoke every active API key of yours",
        description: "Returns how many keys were revoked.",
        request: Some("{}"),
        response: r#"{"success":true,"data":{"revoked":3}}"#,
        status: 200,
        errors: &["AUTH_IMPERSONATION_RESTRICTED"],
        handler: || post(revoke_all),
    },
];

async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    let data = s
        .auth
        .list_api_keys(&ctx, p.get("user_id"), p.get("limit"), p.get("offset"))
        .await?;
    Ok(ok(StatusCode::OK, data, p.unwrap()))
}

async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let data = s.auth.create_api_key(&ctx, body).await?;
    Ok(ok(StatusCode::CREATED, data, p.unwrap()))
}

async fn revoke(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(key_id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let data = s.auth.revoke_api_key(&ctx, &key_id).await?;
    Ok(ok(StatusCode::OK, data, p.unwrap()))
}

async fn revoke_all(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
) -> Result<Response, ApiError> {
    let data = s.auth.revoke_all_api_keys(&ctx).await?;
    Ok(ok(StatusCode::OK, data, p.unwrap()))
}
