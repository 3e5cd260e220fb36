//! The tenant's users (A3.8): list, create, read, update, password change, deactivation,
//! and `whoami`. `:id` is a UUID or `me`. The literal words after `/api/user/` (`me`,
//! `introspect`, `sudo`, `fake`, `invite`, `secrets`, …) are routes of their own elsewhere.

use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

/// The user example (A3.8 shape), alone and in a list.
const USER_ONE: &str = r#"{"success":true,"data":{"id":"8c2d4e6f-0000-4000-8000-000000000002","name":"Carol","username":"carol","auth":"carol","email":"c@acme.io","access":"edit","access_read":[],"access_edit":[],"access_full":[],"has_password":true,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null}}"#;
const USER_LIST: &str = r#"{"success":true,"data":[{"id":"8c2d4e6f-0000-4000-8000-000000000002","name":"Carol","username":"carol","auth":"carol","email":"c@acme.io","access":"edit","access_read":[],"access_edit":[],"access_full":[],"has_password":true,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null}]}"#;

const AUTH_ERRORS: [&str; 5] = [
    "AUTH_TOKEN_REQUIRED",
    "AUTH_TOKEN_INVALID",
    "AUTH_TOKEN_EXPIRED",
    "AUTH_USER_INACTIVE",
    "TENANT_INACTIVE",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/user/whoami",
        area: "api/user",
        access: Access::Bearer,
        summary: "Redirects to /api/user/me",
        description: "`301` with `Location: /api/user/me` (kept for compatible clients).",
        request: None,
        response: r#"{"success":true,"data":{"location":"/api/user/me"}}"#,
        status: 301,
        errors: &AUTH_ERRORS,
        handler: || get(whoami),
    },
    RouteDoc {
        method: "GET",
        path: "/api/user",
        area: "api/user",
        access: Access::Sudo,
        summary: "List the tenant's users",
        description: "Sudo. `limit` (default 100, max 1000), `offset`, `include_trashed=true` to add deactivated users. Order: `created_at`, `id`.",
        request: None,
        response: USER_LIST,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET", "VALIDATION_FIELD_INVALID"],
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user",
        area: "api/user",
        access: Access::Sudo,
        summary: "Create a user",
        description: "Sudo; `access` (default `read`) must be ≤ your effective role. `username` is required (`auth` is accepted as an alias); `name` defaults to the username; `email` optional; `password` optional (8–1024 characters, stored as argon2id) — without one the user joins by machine key or is given a password later.",
        request: Some(r#"{"username":"carol","name":"Carol","email":"c@acme.io","access":"edit","password":"carol's long password"}"#),
        response: USER_ONE,
        status: 201,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "VALIDATION_BODY_NOT_OBJECT", "AUTH_USERNAME_INVALID", "AUTH_EMAIL_INVALID", "AUTH_PASSWORD_INVALID", "AUTH_USERNAME_EXISTS"],
        handler: || post(create),
    },
    RouteDoc {
        method: "GET",
        path: "/api/user/{id}",
        area: "api/user",
        access: Access::Bearer,
        summary: "One user (yourself, or anyone with sudo)",
        description: "`:id` is a user UUID or `me`; anything else → `404 AUTH_USER_NOT_FOUND`. Sudo callers also see deactivated users (`trashed_at` set).",
        request: None,
        response: USER_ONE,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_USER_NOT_FOUND"],
        handler: || get(one),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/user/{id}",
        area: "api/user",
        access: Access::Bearer,
        summary: "Change a user's profile (name, email; with sudo also username and access)",
        description: "Yourself: `name`, `email`. Sudo: also `username` and `access`, on users whose `access` ≤ your effective role, granting at most your role (a `root` user: `root` callers only). `\"email\":null` clears the email; `null` on `name`, `username` or `access` is invalid. Without sudo, sending `access` or `username` → `403 AUTH_SUDO_REQUIRED` (`data.fields`). Demoting the last active `root` that can log in → `409 AUTH_LAST_ROOT`.",
        request: Some(r#"{"name":"Carol B.","email":null,"access":"full"}"#),
        response: r#"{"success":true,"data":{"id":"8c2d4e6f-0000-4000-8000-000000000002","name":"Carol B.","username":"carol","auth":"carol","email":null,"access":"full","access_read":[],"access_edit":[],"access_full":[],"has_password":true,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_USER_NOT_FOUND", "VALIDATION_FIELD_INVALID", "VALIDATION_BODY_NOT_OBJECT", "AUTH_USERNAME_INVALID", "AUTH_EMAIL_INVALID", "AUTH_USERNAME_EXISTS", "AUTH_LAST_ROOT"],
        handler: || put(update),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user/{id}/password",
        area: "api/user",
        access: Access::Bearer,
        summary: "Set a user's password",
        description: "Yourself with `current_password`, or with sudo on a user whose `access` ≤ your effective role (no `current_password` needed). `new_password`: 8–1024 characters. Never with an impersonation token.",
        request: Some(r#"{"current_password":null,"new_password":"a brand new passphrase"}"#),
        response: r#"{"success":true,"data":{"id":"8c2d4e6f-0000-4000-8000-000000000002","password_changed_at":"2026-05-06T14:10:00.000000Z"}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "VALIDATION_FIELD_MISSING", "AUTH_PASSWORD_INVALID", "AUTH_PASSWORD_MISMATCH", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED", "AUTH_USER_NOT_FOUND"],
        handler: || post(password),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/user/{id}",
        area: "api/user",
        access: Access::Bearer,
        summary: "Deactivate a user (yourself, or with sudo)",
        description: "Needs `\"confirm\":true` (else `400 VALIDATION_CONFIRMATION_REQUIRED`). Trashes the user row: every token and API key of the user fails at once with `401 AUTH_USER_INACTIVE`. Restore with `POST /api/trashed/users/:id` (sudo). The last active `root` that can log in, and the built-in `root` user, cannot be deactivated (`409 AUTH_LAST_ROOT`).",
        request: Some(r#"{"confirm":true,"reason":"left team"}"#),
        response: r#"{"success":true,"data":{"id":"8c2d4e6f-0000-4000-8000-000000000002","deactivated_at":"2026-05-06T14:20:00.000000Z","reason":"left team"}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "VALIDATION_CONFIRMATION_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_USER_NOT_FOUND", "AUTH_LAST_ROOT"],
        handler: || delete(deactivate),
    },
    // `:id` may be `me` everywhere (A3.8); the literal route `/api/user/me` (GET) would
    // otherwise answer 405 to these methods.
    RouteDoc {
        method: "PUT",
        path: "/api/user/me",
        area: "api/user",
        access: Access::Bearer,
        summary: "Change your own profile (PUT /api/user/:id with :id = me)",
        description: "Exactly `PUT /api/user/:id` for yourself: `name`, `email` (`null` clears it); with sudo also `username` and `access` (≤ your effective role).",
        request: Some(r#"{"name":"Alice B.","email":"alice@acme.io"}"#),
        response: r#"{"success":true,"data":{"id":"4b1d3c9e-0000-4000-8000-000000000001","name":"Alice B.","username":"alice","auth":"alice","email":"alice@acme.io","access":"root","access_read":[],"access_edit":[],"access_full":[],"has_password":true,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "VALIDATION_FIELD_INVALID", "VALIDATION_BODY_NOT_OBJECT", "AUTH_USERNAME_INVALID", "AUTH_EMAIL_INVALID", "AUTH_USERNAME_EXISTS", "AUTH_LAST_ROOT"],
        handler: || put(update_me),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/user/me",
        area: "api/user",
        access: Access::Bearer,
        summary: "Deactivate yourself (DELETE /api/user/:id with :id = me)",
        description: "Exactly `DELETE /api/user/:id` for yourself: needs `\"confirm\":true`; every credential of yours stops working at once. The last active `root` that can log in cannot (`409 AUTH_LAST_ROOT`).",
        request: Some(r#"{"confirm":true,"reason":"leaving"}"#),
        response: r#"{"success":true,"data":{"id":"8c2d4e6f-0000-4000-8000-000000000002","deactivated_at":"2026-05-06T14:20:00.000000Z","reason":"leaving"}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "VALIDATION_CONFIRMATION_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_LAST_ROOT"],
        handler: || delete(deactivate_me),
    },
];

async fn whoami(Ctx(_ctx): Ctx) -> Response {
    let mut r = (
        StatusCode::MOVED_PERMANENTLY,
        axum::Json(serde_json::json!({"success": true, "data": {"location": "/api/user/me"}})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/api/user/me"));
    r
}

async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    let trashed = p.flag("include_trashed", false)?;
    let v = s
        .users
        .list(&ctx, p.get("limit"), p.get("offset"), trashed)
        .await?;
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}

async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.users.create(&ctx, body).await?,
        p.unwrap(),
    ))
}

async fn one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.get(&ctx, &id).await?,
        p.unwrap(),
    ))
}

async fn update(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.update(&ctx, &id, body).await?,
        p.unwrap(),
    ))
}

async fn password(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.change_password(&ctx, &id, body).await?,
        p.unwrap(),
    ))
}

async fn deactivate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.deactivate(&ctx, &id, body).await?,
        p.unwrap(),
    ))
}

async fn update_me(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.update(&ctx, "me", body).await?,
        p.unwrap(),
    ))
}

async fn deactivate_me(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.deactivate(&ctx, "me", body).await?,
        p.unwrap(),
    ))
}
