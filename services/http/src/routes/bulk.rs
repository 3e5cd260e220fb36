//! `POST /api/bulk` (A8.1): operations run in order in one transaction. The handler charges
//! the rest of the request's rate-limit cost (B5: 1 + ⌊operations/100⌋), calls
//! [`abbotik_domain::data::DataService::bulk`] and answers the JSON text it built (records
//! spliced as PostgreSQL rendered them), checked against the response cap.

use crate::extract::{Ctx, JsonBody, Params};
use crate::ratelimit::{charge_bulk, RateStatus};
use crate::registry::{Access, RouteDoc};
use crate::routes::data::{answer, json_only, read_opts, Res};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

const ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "VALIDATION_JSON_PARSE",
    "VALIDATION_UNSUPPORTED_MEDIA_TYPE",
    "VALIDATION_BODY_TOO_LARGE",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_BODY_NOT_ARRAY",
    "VALIDATION_FIELD_MISSING",
    "VALIDATION_FIELD_INVALID",
    "VALIDATION_OPERATION_INVALID",
    "VALIDATION_ERROR",
    "VALIDATION_FORMAT_UNSUPPORTED",
    "VALIDATION_RESPONSE_TOO_LARGE",
    "MODEL_NOT_FOUND",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_FROZEN",
    "MODEL_IMMUTABLE",
    "MODEL_EXTERNAL",
    "FIELD_IMMUTABLE",
    "RECORD_NOT_FOUND",
    "RECORD_EXISTS",
    "RECORD_UNIQUE_VIOLATION",
    "RECORD_TRASHED",
    "RECORD_REFERENCE_INVALID",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_EMPTY_LOGICAL_ARRAY",
    "FILTER_TOO_COMPLEX",
    "FILTER_INVALID_SELECT",
    "FILTER_INVALID_SORT",
    "FILTER_INVALID_LIMIT",
    "FILTER_INVALID_OFFSET",
    "FILTER_QUERY_TIMEOUT",
    "FILTER_AGGREGATE_MISSING",
    "FILTER_AGGREGATE_INVALID",
    "FILTER_GROUP_BY_INVALID",
    "FILTER_HAVING_INVALID",
    "RATE_LIMITED",
    "NOT_IMPLEMENTED",
    "SERVICE_UNAVAILABLE",
];

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
    method: "POST",
    path: "/api/bulk",
    area: "api/bulk",
    access: Access::Bearer,
    summary: "Run up to 1000 record operations in order in one transaction",
    description: "Body `{\"operations\":[…]}`, 1–1000 operations (body ≤ 10 MiB). They run in order in **one transaction**: later operations see earlier writes, and the first failure rolls everything back and answers that error with `data.operation_index` (0-based) added. Each operation is checked exactly like its single route (roles, model flags, validation, unique and reference checks, same error codes).\n\n\
| Operation | Keys | `result` |\n|---|---|---|\n\
| `select`, `select-all` | `model`, optional `filter` (a find body, A6.2: `where` or the bare form, `select`, `order`, `limit`, `offset`, `trashed`) | `[record…]` |\n\
| `select-one` | `model`, `id` or `filter` | record or `null` |\n\
| `select-404` | `model`, `id` or `filter` | record; none → `404 RECORD_NOT_FOUND` |\n\
| `count` | `model`, optional `filter` (`where`, `trashed`) | integer |\n\
| `aggregate` | `model`, `aggregate`, optional `where` or `filter.where`, `groupBy`, `having`, `order`, `limit`, `offset`, `trashed` (A7) | rows |\n\
| `create`, `create-one` / `create-all` | `model`, `data` object / array | record / `[record…]` |\n\
| `update`, `update-one` / `update-404` | `model`, `id`, `data` | record; missing → `null` / `404` |\n\
| `update-all` | `model`, `data` array of `{id,…changes}` | `[record…]`; a missing id → `404` (all rolled back) |\n\
| `update-any` | `model`, `filter`, `data` | `[record…]` (every live match) |\n\
| `delete`, `delete-one` / `delete-404` | `model`, `id` | trashed record; missing → `null` / `404` |\n\
| `delete-all` | `model`, `data` array of `{id}` | `[record…]`; a missing id → `404` |\n\
| `delete-any` | `model`, `filter` | `[record…]` |\n\
| `upsert`, `upsert-one` / `upsert-all` | `model`, `data` object / array (with or without `id`) | record / `[record…]` |\n\
| `access`, `access-one`, `access-404`, `access-all`, `access-any` | — | `501 NOT_IMPLEMENTED` until record ACLs (A11) |\n\n\
Every operation is checked before any runs: a malformed or unknown one (missing key, a key it does not take such as `filter` on `*-all` or a top-level `where` on `select`, `data` of the wrong shape, a filter option it cannot honour such as `limit` on `delete-any`) → `400 VALIDATION_OPERATION_INVALID` with `data.operation_index` and `data.reason` (`not_an_object`, `unknown_operation`, `missing_key`, `invalid_key`, `unexpected_key`, `id_and_filter`, `data_not_object`, `data_not_array`, `data_item_invalid`, `filter_not_object`, `filter_option_unsupported`, `where_and_filter`). `null` keys are absent. The rows of all `select*` operations total at most 10000 (else `too_many_rows`, rolled back), and an answer over the response cap is `413 VALIDATION_RESPONSE_TOO_LARGE`, also rolled back. Answers `200` (also when it creates records): the operations echoed in order, each with `result` added; `?stat=false` / `?access=false` apply to every record. Costs 1 + ⌊operations/100⌋ of the rate-limit budgets.",
    request: Some(
        r#"{"operations":[{"operation":"create-all","model":"orders","data":[{"number":"B-1","total":3},{"number":"B-2","total":4}]},{"operation":"update-any","model":"orders","filter":{"where":{"number":"B-2"}},"data":{"state":"paid"}},{"operation":"count","model":"orders","filter":{"where":{"state":"new"}}}]}"#,
    ),
    response: r#"{"success":true,"data":[{"operation":"create-all","model":"orders","data":[{"number":"B-1","total":3},{"number":"B-2","total":4}],"result":[{"id":"a94c1f0e-6b7d-4e2a-9c3b-1d2e3f4a5b6c","number":"B-1","total":3,"state":"new","customer_id":null,"created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]},{"operation":"update-any","model":"orders","filter":{"where":{"number":"B-2"}},"data":{"state":"paid"},"result":[{"id":"b1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f","number":"B-2","total":4,"state":"paid"}]},{"operation":"count","model":"orders","filter":{"where":{"state":"new"}},"result":17}]}"#,
    status: 200,
    errors: ERRORS,
    handler: || post(bulk),
}];

async fn bulk(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    headers: HeaderMap,
    RateStatus(rate): RateStatus,
    JsonBody(b): JsonBody,
) -> Res {
    json_only(&p, &headers)?;
    let opts = read_opts(&p)?;
    let operations = b
        .as_ref()
        .and_then(|b| b.get("operations"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if let Some(refused) = charge_bulk(&s, &ctx, rate.is_some(), operations).await {
        return Ok(refused);
    }
    let raw = s
        .data
        .bulk(&ctx, b.as_ref(), &opts, s.settings.response_max_bytes)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}
