//! `/api/data` (A5.1, A5.3): records of a model and its owned relationships. Handlers parse
//! the query options, call [`abbotik_domain::data::DataService`] and answer with the JSON
//! text PostgreSQL rendered (`ok_raw`), never re-parsing records.

use crate::error::ApiError;
use crate::extract::{bearer, ok_raw, Ctx, JsonBody, Params, RequestId};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use abbotik_domain::data::{Bearer, ReadOptions};
use abbotik_domain::ErrorCode;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};

pub(crate) mod export;
mod rel;

use export::Format;

pub(crate) type Res = Result<Response, ApiError>;

/// Query options of record reads and write answers (A1.5, A5.1).
pub fn read_opts(p: &Params) -> Result<ReadOptions, ApiError> {
    let s = |k: &str| p.get(k).map(str::to_owned);
    Ok(ReadOptions {
        r#where: s("where"),
        order: s("order"),
        select: s("select"),
        limit: s("limit"),
        offset: s("offset"),
        include_trashed: p.flag("include_trashed", false)?,
        stat: p.flag("stat", true)?,
        access: p.flag("access", true)?,
    })
}

/// Only JSON is served here: `?format=csv|ndjson` (or the `Accept` equivalents) →
/// `406 VALIDATION_FORMAT_UNSUPPORTED` (A1.5); exports are offered by the list route only.
pub fn json_only(p: &Params, headers: &HeaderMap) -> Result<(), ApiError> {
    export::negotiate(p, headers, &[Format::Json]).map(|_| ())
}

pub(crate) fn answer(s: &AppState, status: StatusCode, raw: &str, p: &Params) -> Res {
    Ok(ok_raw(s, status, raw, p.unwrap()))
}

const READ_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
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
    "VALIDATION_FIELD_INVALID",
    "VALIDATION_FORMAT_UNSUPPORTED",
    "VALIDATION_RESPONSE_TOO_LARGE",
    "SERVICE_UNAVAILABLE",
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
    "VALIDATION_ERROR",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_BODY_NOT_ARRAY",
    "VALIDATION_FIELD_INVALID",
    "VALIDATION_JSON_PARSE",
    "FIELD_IMMUTABLE",
    "RECORD_NOT_FOUND",
    "RECORD_EXISTS",
    "RECORD_TRASHED",
    "RECORD_UNIQUE_VIOLATION",
    "RECORD_REFERENCE_INVALID",
];

/// The bulk PATCH: write errors plus the `where` language (A6.6).
const PATCH_WHERE_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_NOT_FOUND",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_FROZEN",
    "MODEL_EXTERNAL",
    "MODEL_IMMUTABLE",
    "VALIDATION_ERROR",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_FIELD_MISSING",
    "VALIDATION_JSON_PARSE",
    "FIELD_IMMUTABLE",
    "RECORD_UNIQUE_VIOLATION",
    "RECORD_REFERENCE_INVALID",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_EMPTY_LOGICAL_ARRAY",
    "FILTER_TOO_COMPLEX",
    "FILTER_QUERY_TIMEOUT",
];

const DELETE_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "AUTH_SUDO_REQUIRED",
    "MODEL_NOT_FOUND",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_FROZEN",
    "MODEL_EXTERNAL",
    "MODEL_IMMUTABLE",
    "VALIDATION_BODY_NOT_ARRAY",
    "VALIDATION_FIELD_MISSING",
    "RECORD_NOT_FOUND",
    "RECORD_TRASHED",
    "FILTER_INVALID",
    "FILTER_UNSUPPORTED_OPERATOR",
    "FILTER_UNKNOWN_FIELD",
    "FILTER_INVALID_VALUE",
    "FILTER_INVALID_PATH",
    "FILTER_INVALID_REGEX",
    "FILTER_EMPTY_LOGICAL_ARRAY",
    "FILTER_TOO_COMPLEX",
    "FILTER_QUERY_TIMEOUT",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/data/{model}",
        area: "api/data",
        access: Access::Bearer,
        summary: "List live records of a model",
        description: "Role ≥ `read`. Query: `where` (JSON; the whole find grammar of A6.3: 31 operators, logical nesting, dotted `jsonb` paths), `order` (JSON or `\"f desc,g\"`; default `created_at asc, id asc`), `select` (`a,b`; `id` always), `limit` (default 1000, max 10000), `offset`, `include_trashed=true`, `include_deleted` (no effect), `stat=false`, `access=false`, `unwrap`. Export (A5.4): `format=csv` or `Accept: text/csv` streams `text/csv; charset=utf-8` (RFC 4180, CRLF, `Content-Disposition: attachment; filename=\"<model>.csv\"`; header row of column names: `id`, user fields in definition order, then the system fields left by `stat`/`access`/`select`; cells: null → empty, booleans `true`/`false`, numbers exact, arrays and every `jsonb` value → compact JSON, binary → base64, timestamps as in JSON; `csv_safe=true` prefixes text cells starting with `=`, `+`, `-`, `@`, tab or CR with `'`). `format=ndjson` or `Accept: application/x-ndjson` streams `application/x-ndjson`: one record per line, exactly as the JSON list renders it. Exports honor `where`, `order`, `select`, `offset`, `include_trashed` and `limit` (any non-negative integer), have no default limit and no response size cap. `?format` wins over `Accept`; other formats → `406 VALIDATION_FORMAT_UNSUPPORTED`. Errors before the first byte use the JSON envelope; a failure after streaming began drops the connection without the terminating chunk.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: READ_ERRORS,
        handler: || get(list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/data/{model}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Create one record (object body) or several (array body)",
        description: "Role ≥ `edit`. One transaction: if any record fails, nothing is written. A supplied `id` that exists (even purged) → `409 RECORD_EXISTS`. `?upsert=true` merges items whose `id` exists and creates the rest. Validation failures of every record are collected into one `400 VALIDATION_ERROR` with `data.errors[] = {index, field, rule, message}`. System fields are ignored, `bigserial` fields too. Answers an object for an object body, an array for an array body.",
        request: Some(r#"[{"number":"A-1","total":9.99,"customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d"}]"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 201,
        errors: WRITE_ERRORS,
        handler: || post(create),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/data/{model}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Merge-update several records by id",
        description: "Role ≥ `edit`. Body `[{\"id\":…, …changes}]`: only keys present change, `null` clears, `jsonb` values are replaced whole. Every id must name a live record (`404 RECORD_NOT_FOUND`; trashed → `409 RECORD_TRASHED`). All or nothing.",
        request: Some(r#"[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","state":"paid"}]"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99,"state":"paid","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || put(update_many),
    },
    RouteDoc {
        method: "PATCH",
        path: "/api/data/{model}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Apply one object of changes to every live record matching ?where",
        description: "Role ≥ `edit`. `where` is required (`400 VALIDATION_FIELD_MISSING`). Answers the updated records in `created_at, id` order; `[]` when nothing matched.",
        request: Some(r#"{"state":"paid"}"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","state":"paid","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: PATCH_WHERE_ERRORS,
        handler: || patch(patch_where),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/data/{model}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Trash several records (ids in the body, or ?where)",
        description: "Role ≥ `full`. Body `[{\"id\":…}]` or `[\"id\",…]`, or `?where={…}` without a body. Soft delete: sets `trashed_at` (children with `cascade_delete` get the same `trashed_at`). `?permanent=true` trashes and purges in one step. Trashed ids → `409 RECORD_TRASHED`.",
        request: Some(r#"[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"}]"#),
        response: r#"{"success":true,"data":[{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:10:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: DELETE_ERRORS,
        handler: || delete(delete_many),
    },
    RouteDoc {
        method: "GET",
        path: "/api/data/{model}/{id}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Get one live record",
        description: "Role ≥ `read`. Trashed records answer `404 RECORD_NOT_FOUND` unless `include_trashed=true`. Takes `select`, `stat`, `access`, `unwrap`.",
        request: None,
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":9.99,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "AUTH_SUDO_REQUIRED", "MODEL_SYSTEM_PROTECTED", "MODEL_NOT_FOUND", "RECORD_NOT_FOUND", "FILTER_INVALID_SELECT"],
        handler: || get(get_one),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/data/{model}/{id}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Merge-update one record",
        description: "Role ≥ `edit`. Only keys present change; `null` clears a field; an `immutable` field that has a value → `400 FIELD_IMMUTABLE`; a trashed record → `409 RECORD_TRASHED`. PUT and PATCH are the same merge.",
        request: Some(r#"{"state":"paid","total":12.5}"#),
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","total":12.5,"state":"paid","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || put(update_one),
    },
    RouteDoc {
        method: "PATCH",
        path: "/api/data/{model}/{id}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Merge-update one record (same as PUT)",
        description: "Role ≥ `edit`. Identical to `PUT /api/data/:model/:id`: only keys present change.",
        request: Some(r#"{"state":"paid"}"#),
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","state":"paid","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || patch(update_one),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/data/{model}/{id}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Trash one record (?permanent=true purges)",
        description: "Role ≥ `full`. Sets `trashed_at` (and on `cascade_delete` children); restore with `POST /api/trashed/:model/:id`. Already trashed → `409 RECORD_TRASHED` (with `?permanent=true` a trashed record is purged).",
        request: None,
        response: r#"{"success":true,"data":{"id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","number":"A-1","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:10:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: DELETE_ERRORS,
        handler: || delete(delete_one),
    },
    RouteDoc {
        method: "GET",
        path: "/api/data/{model}/{id}/{relationship}",
        area: "api/data",
        access: Access::Bearer,
        summary: "List the live children of a record",
        description: "Role ≥ `read`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). Takes `where`, `order`, `limit`, `offset`, `select`, `stat`, `access`, `include_trashed`, `unwrap`.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":5,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "MODEL_NOT_FOUND", "MODEL_RELATIONSHIP_NOT_FOUND", "RECORD_NOT_FOUND", "FILTER_INVALID", "FILTER_UNSUPPORTED_OPERATOR", "FILTER_UNKNOWN_FIELD", "FILTER_INVALID_SELECT", "FILTER_INVALID_SORT", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET"],
        handler: || get(rel::list),
    },
    RouteDoc {
        method: "POST",
        path: "/api/data/{model}/{id}/{relationship}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Create children of a record (object or array)",
        description: "Role ≥ `edit`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). The relationship field is set to `:id` (a different value in the body is overwritten). Same validation as `POST /api/data/:model`.",
        request: Some(r#"{"number":"A-3","total":5}"#),
        response: r#"{"success":true,"data":{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":5,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 201,
        errors: WRITE_ERRORS,
        handler: || post(rel::create),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/data/{model}/{id}/{relationship}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Update children: [{id,…}] of this parent, or one object for every live child",
        description: "Role ≥ `edit`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). Each listed `id` must be a child of `:id` (`404 RECORD_NOT_FOUND`). The relationship field cannot be moved here (`400 VALIDATION_FIELD_INVALID`).",
        request: Some(r#"[{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","total":6}]"#),
        response: r#"{"success":true,"data":[{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":6,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || put(rel::update),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/data/{model}/{id}/{relationship}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Trash every live child of a record",
        description: "Role ≥ `full`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). `?permanent=true` purges.",
        request: None,
        response: r#"{"success":true,"data":[{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":5,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}]}"#,
        status: 200,
        errors: DELETE_ERRORS,
        handler: || delete(rel::remove),
    },
    RouteDoc {
        method: "GET",
        path: "/api/data/{model}/{id}/{relationship}/{child}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Get one child of a record",
        description: "Role ≥ `read`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). A record that is not a child of `:id` → `404 RECORD_NOT_FOUND`.",
        request: None,
        response: r#"{"success":true,"data":{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":5,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_ROLE_INSUFFICIENT", "MODEL_NOT_FOUND", "MODEL_RELATIONSHIP_NOT_FOUND", "RECORD_NOT_FOUND", "FILTER_INVALID", "FILTER_UNSUPPORTED_OPERATOR", "FILTER_UNKNOWN_FIELD", "FILTER_INVALID_SELECT", "FILTER_INVALID_SORT", "FILTER_INVALID_LIMIT", "FILTER_INVALID_OFFSET"],
        handler: || get(rel::get_child),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/data/{model}/{id}/{relationship}/{child}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Merge-update one child",
        description: "Role ≥ `edit`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). The relationship field cannot be moved here.",
        request: Some(r#"{"total":6}"#),
        response: r#"{"success":true,"data":{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":6,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || put(rel::update_child),
    },
    RouteDoc {
        method: "PATCH",
        path: "/api/data/{model}/{id}/{relationship}/{child}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Merge-update one child (same as PUT)",
        description: "Role ≥ `edit`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`).",
        request: Some(r#"{"total":6}"#),
        response: r#"{"success":true,"data":{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":6,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:05:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: WRITE_ERRORS,
        handler: || patch(rel::update_child),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/data/{model}/{id}/{relationship}/{child}",
        area: "api/data",
        access: Access::Bearer,
        summary: "Trash one child",
        description: "Role ≥ `full`. The parent `:id` must be a live record (`404 RECORD_NOT_FOUND`); `:relationship` is the `relationship_name` of a child field whose `related_model` is `:model` (`404 MODEL_RELATIONSHIP_NOT_FOUND`). `?permanent=true` purges.",
        request: None,
        response: r#"{"success":true,"data":{"id":"91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d","number":"A-3","total":5,"state":"new","customer_id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":"2026-05-06T14:10:00.000000Z","deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}}"#,
        status: 200,
        errors: DELETE_ERRORS,
        handler: || delete(rel::remove_child),
    },
];

async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    h: HeaderMap,
) -> Res {
    let format = export::negotiate(&p, &h, &[Format::Json, Format::Csv, Format::Ndjson])?;
    if format != Format::Json {
        let csv_safe = export::csv_safe(&p)?;
        let ex = s.data.export(&ctx, &model, &read_opts(&p)?).await?;
        return export::respond(ex, format, csv_safe).await;
    }
    let raw = s.data.list(&ctx, &model, &read_opts(&p)?).await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let upsert = p.flag("upsert", false)?;
    let raw = s
        .data
        .create(&ctx, &model, b.as_ref(), upsert, &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::CREATED, &raw, &p)
}

async fn update_many(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .update_many(&ctx, &model, b.as_ref(), &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn patch_where(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .patch_where(&ctx, &model, b.as_ref(), &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn delete_many(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let permanent = p.flag("permanent", false)?;
    let raw = s
        .data
        .delete_many(&ctx, &model, b.as_ref(), permanent, &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

/// The hottest route: authenticated and read in one database round trip
/// (`DataService::get_with_token`), so it takes the bearer itself instead of [`Ctx`] — and
/// the token the rate-limit layer verified for this request, if it did. It borrows the
/// headers from the request instead of cloning them.
async fn get_one(
    State(s): State<AppState>,
    rid: RequestId,
    Path((model, id)): Path<(String, String)>,
    p: Params,
    req: Request,
) -> Res {
    let h = req.headers();
    let token = bearer(h).ok_or_else(|| ApiError::new(ErrorCode::AuthTokenRequired))?;
    let opts = json_only(&p, h)
        .map_err(|e| e.0)
        .and_then(|()| read_opts(&p).map_err(|e| e.0));
    let bearer = Bearer {
        token: &token,
        verified: crate::ratelimit::verified(&req),
    };
    let (ctx, raw) = s
        .data
        .get_with_token(&s.auth, bearer, rid.0, &model, &id, &opts)
        .await?;
    crate::extract::record_caller(&ctx);
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn update_one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .update_one(&ctx, &model, &id, b.as_ref(), &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

async fn delete_one(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, id)): Path<(String, String)>,
    p: Params,
) -> Res {
    let permanent = p.flag("permanent", false)?;
    let raw = s
        .data
        .delete_one(&ctx, &model, &id, permanent, &read_opts(&p)?)
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}
