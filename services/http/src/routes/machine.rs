//! Machine identity (A3.4): `/auth/provision`, `/auth/challenge`, `/auth/verify` (public), and
//! machine-key management `/api/user/machine-keys` (A3.6). Thin: parse, call
//! [`abbotik_domain::auth::machine::MachineService`], answer.

use crate::extract::{ok, ClientIp, Ctx, JsonBody, Params};
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
        path: "/auth/provision",
        area: "auth",
        access: Access::Public,
        summary: "Create a tenant whose root owner is a machine with an Ed25519 key; returns the first challenge",
        description: "One transaction: a `pending` tenant, its `root` owner `username`, the owner's Ed25519 key and a first challenge. `public_key` is an SPKI PEM (`-----BEGIN PUBLIC KEY-----`, any line breaks) or base64/base64url (padded or not) of the 44-byte SPKI DER. `algorithm` (default and only value `ed25519`) and `key_name` are optional (`null` = absent). Sign `challenge.nonce` — the UTF-8 bytes of the 43-character string, not its decoded bytes — with the private key and call `POST /auth/verify`:\n\n```\nprintf %s \"$NONCE\" | openssl pkeyutl -sign -inkey key.pem -rawin | basenc --base64url | tr -d '=\\n'\n```\n\nOpenSSL 3.0 and 3.1 cannot read `-rawin` input from a pipe (\"unable to determine file size for oneshot operation\"); sign the same bytes from a file there: `printf %s \"$NONCE\" > nonce.txt && openssl pkeyutl -sign -inkey key.pem -rawin -in nonce.txt | basenc --base64url | tr -d '=\\n'`.\n\nTenant-creation limits as for `/auth/register`. The fingerprint is `fp_` + the first 32 hex chars of SHA-256(SPKI DER).",
        request: Some(concat!(
            r#"{"tenant":"acme_agent","username":"root_agent","public_key":""#,
            "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\\n-----END PUBLIC KEY-----\\n",
            r#"","algorithm":"ed25519","key_name":"builder-1"}"#
        )),
        response: r#"{"success":true,"data":{"tenant":"acme_agent","tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","status":"pending","user":{"id":"a1b2c3d4-0000-4000-8000-000000000002","username":"root_agent","access":"root"},"key":{"id":"9d7e5f40-0000-4000-8000-000000000003","name":"builder-1","algorithm":"ed25519","fingerprint":"fp_3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6"},"challenge":{"challenge_id":"c1d2e3f4-0000-4000-8000-000000000004","nonce":"q9ZxT0v3mB2cY7kLr8sW1aE5uH6jN4pQdFgXoVtRiKw","issued_at":"2026-05-06T14:00:00.000000Z","expires_in":300,"algorithm":"ed25519"}}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "TENANT_NAME_INVALID", "AUTH_USERNAME_INVALID", "KEY_PUBLIC_KEY_INVALID", "KEY_ALGORITHM_UNSUPPORTED", "TENANT_EXISTS", "RATE_LIMITED", "SERVICE_UNAVAILABLE", "TENANT_PROVISION_FAILED"],
        handler: || post(provision),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/challenge",
        area: "auth",
        access: Access::Public,
        summary: "Get a fresh 300-second challenge for a machine key (by key_id, else fingerprint)",
        description: "`tenant` (the name) and `key_id` or `fingerprint` are required; the key is looked up by `key_id` when it is non-null, otherwise by `fingerprint`. An unknown tenant and an unknown key give the same `401 AUTH_KEY_NOT_FOUND`. Works on `pending` and `active` tenants. Sign `nonce` (its UTF-8 bytes) and call `POST /auth/verify` within 300 s.",
        request: Some(r#"{"tenant":"acme_agent","key_id":"9d7e5f40-0000-4000-8000-000000000003","fingerprint":null}"#),
        response: r#"{"success":true,"data":{"challenge_id":"c9a8b7c6-0000-4000-8000-000000000005","nonce":"Yk2fQ8rT1wZ5xC3vB7nM9aS4dG6hJ0kLpOiUyEtRqWs","issued_at":"2026-05-06T15:00:00.000000Z","expires_in":300,"algorithm":"ed25519","key_id":"9d7e5f40-0000-4000-8000-000000000003"}}"#,
        status: 200,
        errors: &["VALIDATION_FIELD_MISSING", "AUTH_KEY_NOT_FOUND", "TENANT_INACTIVE", "AUTH_KEY_REVOKED", "AUTH_KEY_EXPIRED", "AUTH_USER_INACTIVE"],
        handler: || post(challenge),
    },
    RouteDoc {
        method: "POST",
        path: "/auth/verify",
        area: "auth",
        access: Access::Public,
        summary: "Exchange a signed challenge for a 1-hour machine token",
        description: "`tenant`, `challenge_id` and `signature` are required. `signature` is the 64-byte pure Ed25519 signature (RFC 8032) of the nonce string's UTF-8 bytes, base64url without padding (padded and standard base64 are accepted too). The challenge is consumed before the signature is checked: one attempt per challenge, success or not. The first success moves a `pending` tenant to `active`. The token has `auth_type:\"public_key\"`, `key_id` and `key_fingerprint`; it is never refreshed — challenge again before `exp`.",
        request: Some(r#"{"tenant":"acme_agent","challenge_id":"c1d2e3f4-0000-4000-8000-000000000004","signature":"pX0b1c2d3e4f5g6h7i8j9k0l1m2n3o4p5q6r7s8t9u0v1w2x3y4z5A6B7C8D9E0F1G2H3I4J5K6L7M8N9O0P1Q2R3S"}"#),
        response: r#"{"success":true,"data":{"token":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig","expires_in":3600,"token_type":"Bearer","tenant":"acme_agent","tenant_id":"6f0c2a9e-6a55-4a63-a1c5-9a0b2d6b1f00","key_id":"9d7e5f40-0000-4000-8000-000000000003","user":{"id":"a1b2c3d4-0000-4000-8000-000000000002","username":"root_agent","access":"root"}}}"#,
        status: 200,
        errors: &["VALIDATION_FIELD_MISSING", "AUTH_CHALLENGE_INVALID", "AUTH_CHALLENGE_EXPIRED", "AUTH_SIGNATURE_INVALID", "AUTH_KEY_REVOKED", "AUTH_KEY_EXPIRED", "AUTH_USER_INACTIVE", "TENANT_INACTIVE"],
        handler: || post(verify),
    },
    RouteDoc {
        method: "GET",
        path: "/api/user/machine-keys",
        area: "api/user",
        access: Access::Bearer,
        summary: "List machine keys: your own; a full/root caller also those of users at or below its role",
        description: "Query: `user_id` (one user's keys; another user's need role ≥ `full` and that user's `access` ≤ yours), `limit` (default 100, max 1000), `offset`. Ordered by `created_at`. Never returns key material. `revoked_at` in the future is a rotation overlap: the key works until then.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"9d7e5f40-0000-4000-8000-000000000003","user_id":"a1b2c3d4-0000-4000-8000-000000000002","name":"builder-1","algorithm":"ed25519","fingerprint":"fp_3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6","created_at":"2026-05-06T14:00:00.000000Z","last_used_at":"2026-05-06T14:00:02.000000Z","expires_at":null,"revoked_at":null}]}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_USER_NOT_FOUND", "VALIDATION_FIELD_INVALID", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET"],
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user/machine-keys",
        area: "api/user",
        access: Access::Bearer,
        summary: "Add an Ed25519 machine key (to yourself, or to a user at or below your role when you are full/root)",
        description: "`public_key` required (SPKI PEM or base64 SPKI DER); `algorithm` (`ed25519`), `name`, `expires_at` (future RFC 3339) and `user_id` (default: yourself) optional. Keys of a `root` user: `root` only. At most 100 active keys per user. Not with an impersonation token.",
        request: Some(concat!(
            r#"{"public_key":""#,
            "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\\n-----END PUBLIC KEY-----\\n",
            r#"","algorithm":"ed25519","name":"laptop","expires_at":"2099-01-01T00:00:00Z"}"#
        )),
        response: r#"{"success":true,"data":{"id":"1f2e3d4c-0000-4000-8000-000000000006","user_id":"a1b2c3d4-0000-4000-8000-000000000002","name":"laptop","algorithm":"ed25519","fingerprint":"fp_7b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e","created_at":"2026-05-06T14:01:00.000000Z","expires_at":"2099-01-01T00:00:00.000000Z"}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "KEY_PUBLIC_KEY_INVALID", "KEY_ALGORITHM_UNSUPPORTED", "KEY_EXPIRES_AT_INVALID", "AUTH_USER_NOT_FOUND", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED", "KEY_DUPLICATE", "KEY_LIMIT_REACHED"],
        handler: || post(add),
    },
    RouteDoc {
        method: "POST",
        path: "/api/user/machine-keys/rotate",
        area: "api/user",
        access: Access::Bearer,
        summary: "Replace a machine key: the new key works at once, the old one until revokes_at",
        description: "`key_id` and `new_public_key` required; `algorithm`, `new_name` (default: the old key's name), `expires_at` (for the new key) and `revoke_old_after_seconds` (0–86400, default 300) optional. The new key belongs to the old key's user; both keys work during the overlap. An expired key can be rotated; a revoked one cannot.",
        request: Some(concat!(
            r#"{"key_id":"9d7e5f40-0000-4000-8000-000000000003","new_public_key":""#,
            "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\\n-----END PUBLIC KEY-----\\n",
            r#"","algorithm":"ed25519","new_name":"builder-2","revoke_old_after_seconds":300}"#
        )),
        response: r#"{"success":true,"data":{"old_key_id":"9d7e5f40-0000-4000-8000-000000000003","new_key_id":"1f2e3d4c-0000-4000-8000-000000000007","fingerprint":"fp_5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b","revokes_at":"2026-05-06T14:05:00.000000Z"}}"#,
        status: 201,
        errors: &["VALIDATION_FIELD_MISSING", "VALIDATION_FIELD_INVALID", "KEY_PUBLIC_KEY_INVALID", "KEY_ALGORITHM_UNSUPPORTED", "KEY_EXPIRES_AT_INVALID", "KEY_NOT_FOUND", "AUTH_USER_NOT_FOUND", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED", "KEY_DUPLICATE", "KEY_ALREADY_REVOKED", "KEY_LIMIT_REACHED"],
        handler: || post(rotate),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/user/machine-keys/{key_id}",
        area: "api/user",
        access: Access::Bearer,
        summary: "Revoke a machine key now",
        description: "Tokens issued for the key stop working on their next request. Revoking the last active key of a user without a password is refused (`409 KEY_LAST_ACTIVE`): add or rotate to a new key first. A key in its rotation overlap can be revoked at once.",
        request: None,
        response: r#"{"success":true,"data":{"id":"9d7e5f40-0000-4000-8000-000000000003","revoked":true,"revoked_at":"2026-05-06T14:00:00.000000Z"}}"#,
        status: 200,
        errors: &["KEY_NOT_FOUND", "AUTH_ROLE_INSUFFICIENT", "AUTH_IMPERSONATION_RESTRICTED", "KEY_ALREADY_REVOKED", "KEY_LAST_ACTIVE"],
        handler: || delete(revoke),
    },
];

async fn provision(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.machine.provision(body, &ip).await?,
        false,
    ))
}

async fn challenge(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.machine.challenge(body).await?, false))
}

async fn verify(State(s): State<AppState>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.machine.verify(body).await?, false))
}

async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    let data = s
        .machine
        .list_keys(&ctx, p.get("user_id"), p.get("limit"), p.get("offset"))
        .await?;
    Ok(ok(StatusCode::OK, data, p.unwrap()))
}

async fn add(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.machine.add_key(&ctx, body).await?,
        p.unwrap(),
    ))
}

async fn rotate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::CREATED,
        s.machine.rotate_key(&ctx, body).await?,
        p.unwrap(),
    ))
}

async fn revoke(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(key_id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        s.machine.revoke_key(&ctx, &key_id).await?,
        p.unwrap(),
    ))
}
