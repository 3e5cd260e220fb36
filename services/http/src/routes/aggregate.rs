//! `/api/aggregate` (A7): aggregate functions over a model's rows, grouped by fields and date
//! buckets, with `having`, `order` and bounds (POST), or the short query form (GET). Handlers
//! call [`abbotik_domain::data::DataService::aggregate`] and answer the JSON PostgreSQL rendered.

use crate::extract::{Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::routes::data::{answer, Res};
use crate::state::AppState;
use abbotik_domain::data::AggregateParams;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

const POST_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_FIELD_INVALID",
    "FILTER_AGGREGATE_MISSING",
    "FILTER_AGGREGATE_INVALID",
    "FILTER_GROUP_BY_INVALID",
    "FILTER_HAVING_INVALID",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_EMPTY_LOGICAL_ARRAY",
    "FILTER_TOO_COMPLEX",
    "FILTER_INVALID_SORT",
    "FILTER_INVALID_LIMIT",
    "FILTER_INVALID_OFFSET",
    "FILTER_QUERY_TIMEOUT",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
];

const GET_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "FILTER_AGGREGATE_MISSING",
    "FILTER_AGGREGATE_INVALID",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_EMPTY_LOGICAL_ARRAY",
    "FILTER_TOO_COMPLEX",
    "FILTER_QUERY_TIMEOUT",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/aggregate/{model}",
        area: "api/aggregate",
        access: Access::Bearer,
        summary: "Count, sum, average, minimum or maximum of a model's rows (query form)",
        description: "Role ≥ `read`; trashed rows excluded. Query: `count` (present without a value, `count=` or `count=true`), `sum=f`, `avg=f` (numeric fields), `min=f`, `max=f` (numeric, text, date, timestamp), `where={…}` (URL-encoded JSON, A6.3). Answers exactly one row whose keys are the function names: `count` 0 and the others `null` when nothing matches. No function → `400 FILTER_AGGREGATE_MISSING`; a bad field → `FILTER_AGGREGATE_INVALID` with `data.path` = the parameter name.",
        request: None,
        response: r#"{"success":true,"data":[{"count":2,"sum":14.99}]}"#,
        status: 200,
        errors: GET_ERRORS,
        handler: || get(aggregate_get),
    },
    RouteDoc {
        method: "POST",
        path: "/api/aggregate/{model}",
        area: "api/aggregate",
        access: Access::Bearer,
        summary: "Aggregate a model's rows with groupBy, date buckets, having and order",
        description: "Role ≥ `read`. Body (A7): `aggregate` (required: alias `^[a-z_][a-z0-9_]{0,62}$` → one of `{\"$count\":\"*\"|f}` (non-null count), `{\"$sum\":f}`, `{\"$avg\":f}` (numeric), `{\"$min\":f}`, `{\"$max\":f}` (numeric, text in byte order, date, timestamp), `{\"$distinct\":f}` (count of distinct values)), `where` (A6.3), `groupBy`/`group_by` (field names and `{\"$dateTrunc\":{\"field\",\"unit\",\"timezone\"},\"as\"}` buckets on timestamp/date fields; units `second minute hour day week` (ISO, Monday) `month quarter year`; IANA `timezone` sets the boundaries, default UTC; key = `as` or `<field>_<unit>`; value = bucket start in RFC 3339 UTC), `having` (over aliases and group keys; `$eq $ne $neq $gt $gte $lt $lte $between $in $nin $null $and $or $not $nand $nor`), `order` (A6 forms over aliases and group keys; group keys ascending are appended), `limit` (0–10000, default 1000), `offset`, `trashed`. Each row holds the group keys, then the aliases, in request order. `$count`/`$distinct` are integers, `$sum` of integers an integer, sums of decimals exact, `$avg` a number. Without `groupBy` exactly one row (count 0, others null on no rows).",
        request: Some(r#"{"where":{"state":{"$ne":"new"}},"aggregate":{"orders":{"$count":"*"},"revenue":{"$sum":"total"},"avg_total":{"$avg":"total"}},"groupBy":["state",{"$dateTrunc":{"field":"created_at","unit":"day","timezone":"UTC"},"as":"day"}],"having":{"revenue":{"$gt":1}},"order":["revenue desc"],"limit":100}"#),
        response: r#"{"success":true,"data":[{"state":"paid","day":"2026-05-06T00:00:00.000000Z","orders":1,"revenue":9.99,"avg_total":9.99}]}"#,
        status: 200,
        errors: POST_ERRORS,
        handler: || post(aggregate_post),
    },
];

async fn aggregate_get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
) -> Res {
    let q = AggregateParams {
        count: p.get("count"),
        sum: p.get("sum"),
        avg: p.get("avg"),
        min: p.get("min"),
        max: p.get("max"),
        r#where: p.get("where"),
    };
    let raw = s.data.aggregate_get(&ctx, &model, &q).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn aggregate_post(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s.data.aggregate(&ctx, &model, b.as_ref()).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}
