//! Invites (A3.5): create, list and revoke under `/api/user/invite`, and the public
//! `/auth/register/user` that redeems a code into a user with a password.

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
        method: "POST",
        path: "/api/user/invite",
        area: "api/user/invite",
        access: Access::Sudo,
        summary: "Invite a username to the tenant (the code is shown once)",
        description: "Sudo; never with an impersonation token. `username` required; `invite_type` `human` | `machine` | `either` (default `either`); `access` (default `read`) must be ≤ your effective role; `expires_in` seconds (default 604800, max 2592000). `access_read`/`access_edit`/`access_full` are accepted and grant nothing. The code (`inv_` + 43 base64url characters) is single-use; only its SHA-256 is stored. The invitee calls `POST /auth/register/user` (human) or `POST /auth/provision/user` (machine).",
        request: Some(r#"{"username":"bob","invite_type":"human","access":"edit","access_read":[],"access_edit":[],"access_full":[],"expires_in":604800}"#),
        response: r#"{"success":true,"data":{"invite_id":"e5a1c2d3-0000-4000-8000-000000000003","username":"bob","invite_type":"human","access":"edit","code":"inv_Qm9iIGlzIGludml0ZWQgdG8gYWNtZSBmb3IgYSB3ZWVr","expires_at":"2026-05-13T14:00:00.000000Z"}}"#,
        status: 201,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED", "VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "AUTH_USERNAME_INVALID", "AUTH_USERNAME_EXISTS"],
        handler: || post(create),
    },
    RouteDoc {
        method: "GET",
        path: "/api/user/invite",
        area: "api/user/invite",
        access: Access::Bearer,
        summary: "List invites, newest first (codes are never shown)",
        description: "Role ≥ `full`. `limit` (default 100, max 1000), `offset`. `used_at` is set once redeemed, `revoked_at` once revoked.",
        request: None,
        response: r#"{"success":true,"data":[{"invite_id":"e5a1c2d3-0000-4000-8000-000000000003","username":"bob","invite_type":"human","access":"edit","created_at":"2026-05-06T14:00:00.000000Z","expires_at":"2026-05-13T14:00:00.000000Z","used_at":null,"revoked_at":null}]}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET"],
        handler: || get(list),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/user/invite/{invite_id}",
        area: "api/user/invite",
        access: Access::Sudo,
        summary: "Revoke an invite (its code stops working at once)",
        description: "Sudo; never with an impersonation token. Revoking a used or already revoked invite answers the same `200`.",
        request: None,
        response: r#"{"success":true,"data":{"invite_id":"e5a1c2d3-0000-4000-8000-000000000003","revoked":true}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "AUTH_IMPERSONATION_RESTRICTED", "AUTH_INVITE_NOT_FOUND"],
        handler: || delete(revoke),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/register/user",
        area: "auth",
        access: Access::Public,
        summary: "Join a tenant with an invite code and a password",
        description: "Redeems a `human` or `either` invite for exactly this `username`: the user (with the invite's `access`) and its password are created and the invite is used up, in one transaction. `email` optional. `status` is the tenant's status. Then call `POST /auth/login`. An unknown tenant or code, a used or revoked code, another username or the wrong invite type all answer `401 AUTH_INVITE_INVALID`.",
        request: Some(r#"{"tenant":"acme","username":"bob","invite_code":"inv_Qm9iIGlzIGludml0ZWQgdG8gYWNtZSBmb3IgYSB3ZWVr","email":"bob@acme.io","password":"bob's long password"}"#),
        response: r#"{"success":true,"data":{"tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","tenant":"acme","username":"bob","status":"active"}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "AUTH_USERNAME_INVALID", "AUTH_EMAIL_INVALID", "AUTH_PASSWORD_INVALID", "AUTH_INVITE_INVALID", "AUTH_INVITE_EXPIRED", "TENANT_INACTIVE", "AUTH_USERNAME_EXISTS"],
        handler: || post(register_user),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/provision/user",
        area: "auth",
        access: Access::Public,
        summary: "Join a tenant with an invite code and an Ed25519 public key",
        description: "Redeems a `machine` or `either` invite for exactly this `username`: the user (with the invite's `access`), its key and a first challenge are created and the invite is used up, in one transaction. `public_key` is SPKI PEM or base64 SPKI DER; `algorithm` (default and only `ed25519`) and `key_name` optional. Sign `challenge.nonce` and call `POST /auth/verify` (A3.4). An unknown tenant or code, a used or revoked code, another username or the wrong invite type all answer `401 AUTH_INVITE_INVALID`.",
        request: Some(r#"{"tenant":"acme","username":"ci_bot","invite_code":"inv_Qm9iIGlzIGludml0ZWQgdG8gYWNtZSBmb3IgYSB3ZWVr","public_key":"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n","algorithm":"ed25519","key_name":"ci"}"#),
        response: r#"{"success":true,"data":{"tenant":"acme","tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","status":"active","user":{"id":"a1b2c3d4-0000-4000-8000-000000000004","username":"ci_bot","access":"edit"},"key":{"id":"9d7e8f00-0000-4000-8000-000000000005","name":"ci","algorithm":"ed25519","fingerprint":"fp_3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6"},"challenge":{"challenge_id":"c1d2e3f4-0000-4000-8000-000000000006","nonce":"q9ZxT0v3bM2kR8sL1pY6wA4nE7cH5jU0iO3gF2dD9zX","issued_at":"2026-05-06T14:00:00.000000Z","expires_in":300,"algorithm":"ed25519"}}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "AUTH_USERNAME_INVALID", "KEY_PUBLIC_KEY_INVALID", "KEY_ALGORITHM_UNSUPPORTED", "AUTH_INVITE_INVALID", "AUTH_INVITE_EXPIRED", "TENANT_INACTIVE", "AUTH_USERNAME_EXISTS", "KEY_DUPLICATE"],
        handler: || post(provision_user),
    },
];

async fn provision_user(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.users.provision_user(body).await?,
        false,
    ))
}

async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.users.create_invite(&ctx, body).await?,
        p.unwrap(),
    ))
}

async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    let v = s
        .users
        .list_invites(&ctx, p.get("limit"), p.get("offset"))
        .await?;
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}

async fn revoke(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.users.revoke_invite(&ctx, &id).await?,
        p.unwrap(),
    ))
}

async fn register_user(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.users.register_user(body).await?,
        false,
    ))
}
