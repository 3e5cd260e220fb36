//! `/api/user/me` (A3.8). The rest of the user surface arrives with the identity issue.

use crate::extract::{ok, Ctx, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
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
}];

async fn me(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, s.auth.me(&ctx).await?, p.unwrap()))
}
