//! `/api/find` (A6): records of a model by the `where` language, with select, order, bounds,
//! trash scope and totals; and saved filters of the `filters` system table. Handlers call
//! [`abbotik_domain::data::DataService::find`] and answer the JSON text PostgreSQL rendered.

use crate::extract::{Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::routes::data::{answer, Res};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

const FIND_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_FIELD_INVALID",
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
    "VALIDATION_RESPONSE_TOO_LARGE",
    "SERVICE_UNAVAILABLE",
];

const SAVED_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "FILTER_NOT_FOUND",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_INVALID_SELECT",
    "FILTER_INVALID_SORT",
    "FILTER_INVALID_LIMIT",
    "FILTER_INVALID_OFFSET",
    "FILTER_QUERY_TIMEOUT",
    "SERVICE_UNAVAILABLE",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "POST",
        path: "/api/find/{model}",
        area: "api/find",
        access: Access::Bearer,
        summary: "Find records of a model with the where language",
        description: "Role ≥ `read`. Body (A6.2): `where` (A6.3: 31 operators `$eq $ne $neq $gt $gte $lt $lte $between $in $nin $like $nlike $ilike $nilike $regex $nregex $any $all $nany $nall $size $exists $null $find $text $search $and $or $not $nand $nor`; dotted paths into `jsonb` fields; SQL three-valued logic: a NULL never matches a comparison), `select` (field names, `\"*\"`, `[]`; `id` always), `order` (`\"f dir\"`, array of those, `{\"f\":\"dir\"}` or `[{\"field\",\"sort\"}]`; `id asc` is appended as tie-breaker; default `created_at asc`), `limit` (0–10000, default 1000), `offset`, `trashed` (`exclude`|`include`|`only`), `count`/`includeTotal`/`include_total` (answer `{\"data\":[…],\"total\":N}`, the total ignoring limit/offset). Bare where form: a body without a `where` key keeps the option keys and treats every other key as a condition. Empty body or `{}` → all live records. Every `FILTER_*` error carries `data.path` (`where.$or[1].age.$between`, `where[\"meta.size\"].$gt`).",
        request: Some(r#"{"where":{"state":{"$in":["new","paid"]},"total":{"$gte":5}},"select":["number","total"],"order":["total desc"],"limit":10,"includeTotal":true}"#),
        response: r#"{"success":true,"data":{"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99}],"total":1}}"#,
        status: 200,
        errors: FIND_ERRORS,
        handler: || post(find),
    },
    RouteDoc {
        method: "GET",
        path: "/api/find/{model}/{target}",
        area: "api/find",
        access: Access::Bearer,
        summary: "Run a saved filter (by UUID or name) of the filters table",
        description: "Role ≥ `read`. `target` is the `id` or the `name` of a live row of the `filters` system model whose `model_name` is `:model`; its `where`, `select`, `order`, `limit` and `offset` run as a find. Query `limit` and `offset` override the saved values. Unknown → `404 FILTER_NOT_FOUND`.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99,"state":"new"}]}"#,
        status: 200,
        errors: SAVED_ERRORS,
        handler: || get(find_saved),
    },
];

async fn find(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s.data.find(&ctx, &model, b.as_ref()).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn find_saved(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, target)): Path<(String, String)>,
    p: Params,
) -> Res {
    let raw = s
        .data
        .find_saved(&ctx, &model, &target, p.get("limit"), p.get("offset"))
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}
