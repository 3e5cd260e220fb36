//! `/auth/*` (A3.3, A3.10): register, login, refresh, tenants, dissolve. Public routes; a
//! bearer sent along is ignored except by refresh and dissolve.

use crate::extract::{bearer, ok, ClientIp, JsonBody};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "POST",
        path: "/auth/register",
        area: "auth",
        access: Access::Public,
        summary: "Create a tenant and its root owner (pending until the first login); no token",
        description: "Creates a `pending` tenant (its own PostgreSQL schema) whose owner has role `root`. `tenant`, `username`, `password` are required; `email` and `description` optional (`null` = absent). Then call `POST /auth/login` with `data.tenant`, `data.username` and the same password.",
        request: Some(r#"{"tenant":"acme","username":"alice","email":"alice@acme.io","password":"correct horse battery","description":"Acme prod"}"#),
        response: r#"{"success":true,"data":{"tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","tenant":"acme","username":"alice","status":"pending"}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "TENANT_NAME_INVALID", "AUTH_USERNAME_INVALID", "AUTH_EMAIL_INVALID", "AUTH_PASSWORD_INVALID", "TENANT_EXISTS", "RATE_LIMITED", "TENANT_PROVISION_FAILED", "SERVICE_UNAVAILABLE"],
        handler: || post(register),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/login",
        area: "auth",
        access: Access::Public,
        summary: "Log in with tenant (or tenant_id), username and password; returns a 7-day JWT",
        description: "`tenant` or `tenant_id` (if both are given they must name the same tenant). The first success moves a `pending` tenant to `active`. `format` is accepted and ignored. Failed logins never say whether the tenant or user exists.",
        request: Some(r#"{"tenant":"acme","tenant_id":null,"username":"alice","password":"correct horse battery","format":null}"#),
        response: r#"{"success":true,"data":{"token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig","expires_in":604800,"token_type":"Bearer","user":{"id":"4b1d3c9e-0000-4000-8000-000000000001","username":"alice","tenant":"acme","tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","access":"root"}}}"#,
        status: 200,
        errors: &["VALIDATION_FIELD_MISSING", "AUTH_LOGIN_FAILED", "TENANT_INACTIVE"],
        handler: || post(login),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/refresh",
        area: "auth",
        access: Access::Public,
        summary: "Exchange an unexpired password-login token for a fresh 7-day token",
        description: "The token is `{\"token\":\"<jwt>\"}` in the body, or the `Authorization: Bearer` token when the body has none (the body wins). Only `auth_type:\"username\"` tokens that are not impersonation tokens refresh; a sudo token refreshes into an ordinary token.",
        request: Some(r#"{"token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig"}"#),
        response: r#"{"success":true,"data":{"token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig2","expires_in":604800,"token_type":"Bearer","user":{"id":"4b1d3c9e-0000-4000-8000-000000000001","username":"alice","tenant":"acme","tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","access":"root"}}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED", "AUTH_USER_INACTIVE", "TENANT_INACTIVE", "AUTH_REFRESH_UNSUPPORTED"],
        handler: || post(refresh),
    },
    RouteDoc {
        method: "GET",
        path: "/auth/tenants",
        area: "auth",
        access: Access::Public,
        summary: "List tenants (disabled unless the operator enables it)",
        description: "Off by default (`403 AUTH_TENANT_LIST_DISABLED`); `ABBOTIK_AUTH_TENANT_LIST=true` enables it. `users` is always present and stays `[]` unless `ABBOTIK_AUTH_TENANT_LIST_USERS=true`, which lists the usernames of active users that can log in. Dissolved and suspended tenants are not listed.",
        request: None,
        response: r#"{"success":true,"data":[{"name":"acme","description":"Acme prod","users":[]}]}"#,
        status: 200,
        errors: &["AUTH_TENANT_LIST_DISABLED"],
        handler: || get(tenants),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/dissolve",
        area: "auth",
        access: Access::Public,
        summary: "Start tenant dissolution: returns a single-use confirmation token valid 300 s",
        description: "Body `{tenant, username, password}` of a `root` user, or an empty body with `Authorization: Bearer` of a `root` user (never an impersonation token). Confirm with `POST /auth/dissolve/confirm`.",
        request: Some(r#"{"tenant":"acme","username":"alice","password":"correct horse battery"}"#),
        response: r#"{"success":true,"data":{"confirmation_token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig","expires_in":300}}"#,
        status: 200,
        errors: &["VALIDATION_FIELD_MISSING", "AUTH_LOGIN_FAILED", "AUTH_DISSOLVE_FORBIDDEN", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED"],
        handler: || post(dissolve),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/dissolve/confirm",
        area: "auth",
        access: Access::Public,
        summary: "Confirm dissolution: the tenant becomes `deleted` and every credential stops working",
        description: "Single-use. The schema is dropped by the worker after `ABBOTIK_TENANT_DROP_AFTER_DAYS`; the name stays reserved until then. Later logins answer `401 AUTH_LOGIN_FAILED`.",
        request: Some(r#"{"confirmation_token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig"}"#),
        response: r#"{"success":true,"data":{"tenant":"acme","username":"alice","dissolved":true}}"#,
        status: 200,
        errors: &["VALIDATION_FIELD_MISSING", "AUTH_DISSOLVE_TOKEN_INVALID", "AUTH_DISSOLVE_TOKEN_EXPIRED", "TENANT_NOT_FOUND"],
        handler: || post(dissolve_confirm),
    },
];

async fn register(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.auth.register(body, &ip).await?,
        false,
    ))
}

async fn login(State(s): State<AppState>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.auth.login(body).await?, false))
}

async fn refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.auth.refresh(body, bearer(&headers)).await?,
        false,
    ))
}

async fn tenants(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.auth.list_tenants().await?, false))
}

async fn dissolve(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.auth.dissolve(body, bearer(&headers)).await?,
        false,
    ))
}

async fn dissolve_confirm(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.auth.dissolve_confirm(body).await?,
        false,
    ))
}
