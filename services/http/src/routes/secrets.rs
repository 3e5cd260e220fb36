//! The caller's own secrets (A3.8a): metadata in every answer, the value only from reveal.

use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};

const META: &str = r#"{"success":true,"data":{"name":"github_token","kind":"api_key","description":"CI token","metadata":{"provider":"github"},"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","last_used_at":null}}"#;

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/user/secrets",
        area: "api/user/secrets",
        access: Access::Bearer,
        summary: "Your secrets' metadata (never the values)",
        description: "Every user keeps their own secrets (third-party tokens an agent needs at run time), encrypted at rest with AES-256-GCM. Listed by name; values are only returned by `POST /api/user/secrets/:name/reveal`.",
        request: None,
        response: r#"{"success":true,"data":[{"name":"github_token","kind":"api_key","description":"CI token","metadata":{"provider":"github"},"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","last_used_at":null}]}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED"],
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user/secrets",
        area: "api/user/secrets",
        access: Access::Bearer,
        summary: "Store a new secret",
        description: "`name` (field name rule: `^[a-z][a-z0-9_]{0,62}$`, not a reserved word) and `value` (a string of at most 64 KiB) are required; `kind`, `description` (strings) and `metadata` (a JSON object, default `{}`) optional. A name you already use → `409 SECRET_EXISTS` (replace it with PUT). Answers the metadata only.",
        request: Some(r#"{"name":"github_token","value":"ghp_exampleexampleexample","kind":"api_key","description":"CI token","metadata":{"provider":"github"}}"#),
        response: META,
        status: 201,
        errors: &["AUTH_TOKEN_REQUIRED", "VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "VALIDATION_BODY_NOT_OBJECT", "SECRET_NAME_INVALID", "SECRET_TOO_LARGE", "SECRET_EXISTS"],
        handler: || post(create),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/user/secrets/{name}",
        area: "api/user/secrets",
        access: Access::Bearer,
        summary: "Create or update a secret",
        description: "Any of `value`, `kind`, `description`, `metadata`: keys sent replace the stored ones, keys omitted (or `null`) are kept. `value` is required when the secret does not exist yet. A new value is encrypted with a fresh nonce.",
        request: Some(r#"{"value":"ghp_rotatedrotatedrotated","description":"CI token (rotated)"}"#),
        response: r#"{"success":true,"data":{"name":"github_token","kind":"api_key","description":"CI token (rotated)","metadata":{"provider":"github"},"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:30:00.000000Z","last_used_at":null}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "VALIDATION_BODY_NOT_OBJECT", "SECRET_NAME_INVALID", "SECRET_TOO_LARGE"],
        handler: || put(upsert),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user/secrets/{name}/reveal",
        area: "api/user/secrets",
        access: Access::Bearer,
        summary: "Read a secret's value",
        description: "Only with the owner's own token: an impersonation token → `403 SECRET_FORBIDDEN`. Sets `last_used_at`; every reveal is written to the audit log (never the value).",
        request: Some("{}"),
        response: r#"{"success":true,"data":{"name":"github_token","value":"ghp_rotatedrotatedrotated"}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "SECRET_FORBIDDEN", "SECRET_NAME_INVALID", "SECRET_NOT_FOUND"],
        handler: || post(reveal),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/user/secrets/{name}",
        area: "api/user/secrets",
        access: Access::Bearer,
        summary: "Delete a secret",
        description: "Removes the secret for good and answers its metadata.",
        request: None,
        response: r#"{"success":true,"data":{"name":"github_token","kind":"api_key","description":"CI token (rotated)","metadata":{"provider":"github"},"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:30:00.000000Z","last_used_at":"2026-05-06T14:31:00.000000Z"}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "SECRET_NAME_INVALID", "SECRET_NOT_FOUND"],
        handler: || delete(remove),
    },
];

async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.secrets.list(&ctx).await?, p.unwrap()))
}

async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.secrets.create(&ctx, body).await?,
        p.unwrap(),
    ))
}

async fn upsert(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.secrets.put(&ctx, &name, body).await?,
        p.unwrap(),
    ))
}

async fn reveal(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.secrets.reveal(&ctx, &name).await?,
        p.unwrap(),
    ))
}

async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.secrets.delete(&ctx, &name).await?,
        p.unwrap(),
    ))
}
