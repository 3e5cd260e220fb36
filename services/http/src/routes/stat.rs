//! `GET /api/stat/:model/:id` (A12): timestamps, etag and size of a live or trashed record.

use super::data::{json_only, Res};
use crate::extract::{ok, Ctx, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
    method: "GET",
    path: "/api/stat/{model}/{id}",
    area: "api/stat",
    access: Access::Bearer,
    summary: "Record metadata: timestamps, etag, size",
    description: "Role ≥ `read`; live and trashed records. `etag` = quoted first 16 hex chars of SHA-256(`id` ‖ `updated_at` as responses show it); it changes on every write. `size` = bytes of the record's compact JSON as `GET /api/data/:model/:id` returns it with defaults.",
    request: None,
    response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","model":"orders","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"etag":"\"9b2c41d07e5f3a18\"","size":214}}"#,
    status: 200,
    errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_SUDO_REQUIRED", "MODEL_SYSTEM_PROTECTED", "MODEL_NOT_FOUND", "RECORD_NOT_FOUND"],
    handler: || get(stat),
}];

async fn stat(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
    h: HeaderMap,
) -> Res {
    json_only(&p, &h)?;
    let v = s.data.stat(&ctx, &model, &id).await?;
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}
