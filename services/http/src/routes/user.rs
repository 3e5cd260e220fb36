//! The calling credential's own routes: `/api/user/me` and `/api/user/introspect` (A3.8),
//! sudo and impersonation tokens (A3.9).

use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use abbotik_domain::auth::AuthService;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

pub const ROUTES: &[RouteDoc] = &[
RouteDoc {
    method: "GET",
    path: "/api/user/me",
    area: "api/user",
    access: Access::Bearer,
    summary: "The calling user",
    description: "The user behind the credential, re-read from the database on every request. `auth` repeats `username` for compatible clients.",
    request: None,
    response: r#"{"success":true,"data":{"id":"4b1d3c9e-0000-4000-8000-000000000001","name":"alice","username":"alice","auth":"alice","email":"alice@acme.io","access":"root","access_read":[],"access_edit":[],"access_full":[],"has_password":true,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null}}"#,
    status: 200,
    errors: &["AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED", "AUTH_USER_INACTIVE", "TENANT_INACTIVE"],
    handler: || get(me),
},
RouteDoc {
    method: "GET",
    path: "/api/user/introspect",
    area: "api/user",
    access: Access::Bearer,
    summary: "What the server made of your credential",
    description: "Tenant, user with the effective role (resolved from the database on this request), and the credential: `auth_type`, key ids, whether it is a sudo (`is_sudo`) or impersonation (`is_fake`, `faked_by`) token, `issued_at`/`expires_at` (null for an API key without expiry).",
    request: None,
    response: r#"{"success":true,"data":{"tenant":{"id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","name":"acme","status":"active"},"user":{"id":"4b1d3c9e-0000-4000-8000-000000000001","username":"alice","access":"root"},"auth":{"auth_type":"username","key_id":null,"key_fingerprint":null,"api_key_id":null,"is_sudo":false,"is_fake":false,"faked_by":null,"issued_at":"2026-05-06T14:00:00.000000Z","expires_at":"2026-05-13T14:00:00.000000Z"},"request_id":"0196a1b2-0000-7000-8000-000000000001"}}"#,
    status: 200,
    errors: &["AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED", "AUTH_USER_INACTIVE", "TENANT_INACTIVE"],
    handler: || get(introspect),
},
RouteDoc {
    method: "POST",
    path: "/api/user/sudo",
    area: "api/user",
    access: Access::Bearer,
    summary: "A 15-minute sudo token (role full or root)",
    description: "Sudo lets a `full` user change the schema, manage users and invites and bypass record ACLs. The token keeps your credential's `auth_type` and key ids, so it dies with its source key; it is not refreshable. `reason` is optional and logged.",
    request: Some(r#"{"reason":"schema change"}"#),
    response: r#"{"success":true,"data":{"sudo_token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig","expires_in":900,"token_type":"Bearer","access_level":"root","is_sudo":true,"reason":"schema change","warning":"Elevated token: valid 15 minutes; every use is audited."}}"#,
    status: 200,
    errors: &["AUTH_SUDO_FORBIDDEN", "AUTH_IMPERSONATION_RESTRICTED", "VALIDATION_FIELD_INVALID"],
    handler: || post(sudo),
},
RouteDoc {
    method: "POST",
    path: "/api/user/fake",
    area: "api/user",
    access: Access::Bearer,
    summary: "Impersonate another user for 15 minutes (root only)",
    description: "`user_id` or `username` (both given: `user_id` wins). The token acts with the target's role, is never sudo, and cannot refresh, sudo, impersonate, dissolve, or manage keys, invites or passwords.",
    request: Some(r#"{"user_id":null,"username":"bob"}"#),
    response: r#"{"success":true,"data":{"fake_token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig","expires_in":900,"token_type":"Bearer","target_user":{"id":"8c2d4e6f-0000-4000-8000-000000000002","name":"bob","username":"bob","access":"edit"},"faked_by":{"id":"4b1d3c9e-0000-4000-8000-000000000001","username":"alice"},"warning":"Impersonation token: actions are recorded with faked_by."}}"#,
    status: 200,
    errors: &["AUTH_FAKE_FORBIDDEN", "AUTH_FAKE_SELF", "VALIDATION_FIELD_MISSING", "AUTH_USER_NOT_FOUND", "AUTH_IMPERSONATION_RESTRICTED"],
    handler: || post(fake),
},
];

async fn me(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.auth.me(&ctx).await?, p.unwrap()))
}

async fn introspect(Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        AuthService::introspect(&ctx),
        p.unwrap(),
    ))
}

async fn sudo(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.auth.sudo(&ctx, body)?, p.unwrap()))
}

async fn fake(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.auth.fake(&ctx, body).await?,
        p.unwrap(),
    ))
}
