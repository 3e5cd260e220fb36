//! `/api/trashed` (A10): list trashed records, restore them (with the children their
//! cascade trashed), purge them.

use super::data::{answer, json_only, read_opts, Res};
use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};

const READ_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "RECORD_NOT_FOUND",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_SORT",
    "FILTER_INVALID_LIMIT",
    "FILTER_INVALID_OFFSET",
];

const WRITE_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_NOT_FOUND",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_FROZEN",
    "MODEL_EXTERNAL",
    "MODEL_IMMUTABLE",
    "VALIDATION_BODY_NOT_ARRAY",
    "RECORD_NOT_FOUND",
    "RECORD_UNIQUE_VIOLATION",
    "RECORD_REFERENCE_INVALID",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/trashed",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Trashed records of every model, grouped by model",
        description: "Role ≥ `read`. Only models with trashed rows appear; `?limit` per model (default 100). `users` appear for sudo callers only; `tracked` never. Takes `stat`, `access`, `unwrap`.",
        request: None,
        response: r#"{"success":true,"data":{"orders":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:10:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "FILTER_INVALID_LIMIT"],
        handler: || get(all),
    },
    RouteDoc {
        method: "GET",
        path: "/api/trashed/{model}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Trashed records of one model",
        description: "Role ≥ `read`. Query `where`, `order`, `limit` (default 1000, max 10000), `offset`, `select`, `stat`, `access`, `unwrap`.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:10:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: READ_ERRORS,
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/trashed/{model}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Restore several trashed records",
        description: "Role ≥ `full`. Body `[\"id\",…]` or `[{\"id\":…},…]`. Every id must be in the trash (`404 RECORD_NOT_FOUND`, nothing restored). Children trashed by the same cascade (same `trashed_at`) come back too. A relationship value whose parent is still trashed → `409 RECORD_REFERENCE_INVALID`.",
        request: Some(r#"["0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"]"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:20:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || post(restore_many),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/trashed/{model}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Purge several trashed records",
        description: "Role ≥ `full`. Body `[\"id\",…]` or `[{\"id\":…},…]`; every id must be in the trash. Purged records are never visible again and free their `unique` values; their ids stay taken until the worker deletes them (24 h). Cascade children are purged too.",
        request: Some(r#"["0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"]"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","purged":true}]}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || delete(purge_many),
    },
    RouteDoc {
        method: "GET",
        path: "/api/trashed/{model}/{id}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "One trashed record",
        description: "Role ≥ `read`. A live or unknown id → `404 RECORD_NOT_FOUND`.",
        request: None,
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:10:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: READ_ERRORS,
        handler: || get(get_one),
    },
    RouteDoc {
        method: "POST",
        path: "/api/trashed/{model}/{id}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Restore one trashed record",
        description: "Role ≥ `full`. Clears `trashed_at` on the record and on the children its cascade trashed. Not in the trash → `404 RECORD_NOT_FOUND`.",
        request: None,
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:20:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || post(restore_one),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/trashed/{model}/{id}",
        area: "api/trashed",
        access: Access::Bearer,
        summary: "Purge one trashed record",
        description: "Role ≥ `full`. Sets `deleted_at` on the record and its cascade children; the record is never returned again. Not in the trash → `404 RECORD_NOT_FOUND`.",
        request: None,
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","purged":true}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || delete(purge_one),
    },
];

async fn all(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params, h: HeaderMap) -> Res {
    json_only(&p, &h)?;
    let raw = s.data.trashed_all(&ctx, &read_opts(&p)?).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    h: HeaderMap,
) -> Res {
    json_only(&p, &h)?;
    let raw = s.data.trashed_list(&ctx, &model, &read_opts(&p)?).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn get_one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
    h: HeaderMap,
) -> Res {
    json_only(&p, &h)?;
    let raw = s
        .data
        .trashed_get(&ctx, &model, &id, &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn restore_one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
) -> Res {
    let raw = s
        .data
        .restore_one(&ctx, &model, &id, &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn restore_many(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .restore_many(&ctx, &model, b.as_ref(), &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn purge_one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
) -> Res {
    let v = s.data.purge_one(&ctx, &model, &id).await?;
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}

async fn purge_many(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let v = s.data.purge_many(&ctx, &model, b.as_ref()).await?;
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}
