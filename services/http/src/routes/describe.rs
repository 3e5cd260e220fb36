//! `/api/describe` (A4): models and fields. Reads need role ≥ read; every write needs sudo and
//! runs its DDL and metadata changes in one transaction.

use crate::extract::{ok, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde_json::{json, Value};

const AREA: &str = "api/describe";

const MODEL_EXAMPLE: &str = r#"{"success":true,"data":{"model_name":"orders","status":"active","description":"Customer orders","sudo":false,"frozen":false,"immutable":false,"external":false,"passthrough":false,"created_at":"2026-05-06T14:03:21.482913Z","updated_at":"2026-05-06T14:03:21.482913Z","fields":[{"model_name":"orders","field_name":"number","type":"text","required":true,"default_value":null,"description":null,"minimum":null,"maximum":null,"pattern":null,"enum_values":null,"is_array":false,"immutable":false,"sudo":false,"unique":true,"index":false,"searchable":false,"tracked":false,"transform":null,"relationship_type":null,"related_model":null,"related_field":null,"relationship_name":null,"cascade_delete":false,"created_at":"2026-05-06T14:03:21.482913Z","updated_at":"2026-05-06T14:03:21.482913Z"}]}}"#;

const FIELD_EXAMPLE: &str = r#"{"success":true,"data":{"model_name":"orders","field_name":"total","type":"decimal","required":false,"default_value":null,"description":null,"minimum":0,"maximum":null,"pattern":null,"enum_values":null,"is_array":false,"immutable":false,"sudo":false,"unique":false,"index":false,"searchable":false,"tracked":true,"transform":null,"relationship_type":null,"related_model":null,"related_field":null,"relationship_name":null,"cascade_delete":false,"created_at":"2026-05-06T14:03:21.482913Z","updated_at":"2026-05-06T14:03:21.482913Z"}}"#;

const FIELDS_EXAMPLE: &str = r#"{"success":true,"data":[{"model_name":"orders","field_name":"total","type":"decimal","required":false,"default_value":null,"description":null,"minimum":0,"maximum":null,"pattern":null,"enum_values":null,"is_array":false,"immutable":false,"sudo":false,"unique":false,"index":false,"searchable":false,"tracked":true,"transform":null,"relationship_type":null,"related_model":null,"related_field":null,"relationship_name":null,"cascade_delete":false,"created_at":"2026-05-06T14:03:21.482913Z","updated_at":"2026-05-06T14:03:21.482913Z"}]}"#;

const READ_ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_TOKEN_INVALID",
    "AUTH_TOKEN_EXPIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "MODEL_NOT_FOUND",
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/api/describe",
        area: AREA,
        access: Access::Bearer,
        summary: "List model names (system models included)",
        description: "Sorted names of every model of the tenant, including the system models `fields`, `filters`, `models`, `tracked`, `users`. Role ≥ `read`.",
        request: None,
        response: r#"{"success":true,"data":["fields","filters","models","orders","tracked","users"]}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED", "AUTH_ROLE_INSUFFICIENT"],
        handler: || get(list_models),
    },
    RouteDoc {
        method: "POST",
        path: "/api/describe/{model}",
        area: AREA,
        access: Access::Sudo,
        summary: "Create a model (and its table), optionally with inline fields",
        description: "Body: model properties (`status` active|pending, `description`, `sudo`, `frozen`, `immutable`, `external`, `passthrough`) and optional `fields`, either a map `{name:{type,…}}` or an array `[{field_name,type,…}]`. Creates the table `\"ns_tenant_<tenant>\".\"<model>\"` with the system columns, one column per field and the fields' indexes, all in one transaction. A body `model_name` must equal the URL unless `?force=true` (then the URL wins). Field properties accept the aliases `default`, `enum`, `min`, `max`.",
        request: Some(r#"{"status":"active","description":"Customer orders","fields":{"number":{"type":"text","required":true,"unique":true},"total":{"type":"decimal","minimum":0,"tracked":true},"state":{"type":"text","enum":["new","paid","shipped"],"default":"new","index":true},"customer_id":{"type":"uuid","relationship_type":"owned","related_model":"customers","relationship_name":"orders"}}}"#),
        response: MODEL_EXAMPLE,
        status: 201,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_OBJECT", "VALIDATION_FIELD_INVALID",
            "VALIDATION_FIELD_MISSING", "MODEL_NAME_INVALID", "MODEL_NAME_MISMATCH", "MODEL_EXISTS",
            "MODEL_SYSTEM_PROTECTED", "FIELD_NAME_INVALID", "FIELD_TYPE_INVALID", "FIELD_CONSTRAINT_INVALID",
            "FIELD_RELATIONSHIP_INVALID", "FIELD_EXISTS",
        ],
        handler: || post(create_model),
    },
    RouteDoc {
        method: "GET",
        path: "/api/describe/{model}",
        area: AREA,
        access: Access::Bearer,
        summary: "Get a model with its fields",
        description: "The model object with `fields` in definition order. System models are shown with `status:\"system\"`. Internal tables are not models (`404 MODEL_NOT_FOUND`). Role ≥ `read`.",
        request: None,
        response: MODEL_EXAMPLE,
        status: 200,
        errors: READ_ERRORS,
        handler: || get(get_model),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/describe/{model}",
        area: AREA,
        access: Access::Sudo,
        summary: "Change model properties",
        description: "Partial model properties; metadata only. `null` on `description` removes it; `null` on a boolean is ignored. `model_name` cannot be changed (`400 VALIDATION_FIELD_INVALID`). A body without any changeable property → `400 MODEL_NO_UPDATES`. System models → `403 MODEL_SYSTEM_PROTECTED`.",
        request: Some(r#"{"frozen":true,"description":"Read-only during the audit"}"#),
        response: r#"{"success":true,"data":{"model_name":"orders","status":"active","description":"Read-only during the audit","sudo":false,"frozen":true,"immutable":false,"external":false,"passthrough":false,"created_at":"2026-05-06T14:03:21.482913Z","updated_at":"2026-05-06T15:00:00.000000Z"}}"#,
        status: 200,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_OBJECT", "VALIDATION_FIELD_INVALID",
            "MODEL_NOT_FOUND", "MODEL_NO_UPDATES", "MODEL_SYSTEM_PROTECTED",
        ],
        handler: || put(update_model),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/describe/{model}",
        area: AREA,
        access: Access::Sudo,
        summary: "Delete a model: drop its table, fields, saved filters and tracked history",
        description: "Drops the table and removes the model's field rows, saved filters and tracked entries in one transaction. Refused with `409 MODEL_IN_USE` (`data.fields` = `model.field` list) while a field of another model has it as `related_model`.",
        request: None,
        response: r#"{"success":true,"data":{"model_name":"orders","dropped":true}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "MODEL_NOT_FOUND", "MODEL_IN_USE", "MODEL_SYSTEM_PROTECTED"],
        handler: || delete(delete_model),
    },
    RouteDoc {
        method: "GET",
        path: "/api/describe/{model}/fields",
        area: AREA,
        access: Access::Bearer,
        summary: "List a model's fields",
        description: "The field objects of the model in definition order. Role ≥ `read`.",
        request: None,
        response: FIELDS_EXAMPLE,
        status: 200,
        errors: READ_ERRORS,
        handler: || get(list_fields),
    },
    RouteDoc {
        method: "POST",
        path: "/api/describe/{model}/fields",
        area: AREA,
        access: Access::Sudo,
        summary: "Add several fields (columns) at once",
        description: "Body: an array `[{field_name,type,…}]`. Each adds `ALTER TABLE … ADD COLUMN` plus its indexes; all or nothing. A `required` field without `default_value` on a model that has records → `409 FIELD_CHANGE_CONFLICT` (`data.reason:\"table_not_empty\"`); duplicates for a new `unique` field → `reason:\"duplicates\"`.",
        request: Some(r#"[{"field_name":"total","type":"decimal","minimum":0,"tracked":true}]"#),
        response: FIELDS_EXAMPLE,
        status: 201,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_ARRAY", "VALIDATION_FIELD_MISSING",
            "VALIDATION_FIELD_INVALID", "MODEL_NOT_FOUND", "FIELD_SYSTEM_PROTECTED", "FIELD_NAME_INVALID",
            "FIELD_TYPE_INVALID", "FIELD_CONSTRAINT_INVALID", "FIELD_RELATIONSHIP_INVALID", "FIELD_EXISTS",
            "FIELD_CHANGE_CONFLICT",
        ],
        handler: || post(create_fields),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/describe/{model}/fields",
        area: AREA,
        access: Access::Sudo,
        summary: "Change several fields at once",
        description: "Body: an array `[{field_name,…changes}]`, applied in order in one transaction. Each change runs its DDL (type cast, NOT NULL, default, indexes); existing rows that prevent a change → `409 FIELD_CHANGE_CONFLICT` with `data.reason` (`cast_failed`, `duplicates`, `nulls`) and `data.sample_ids`, and nothing changes.",
        request: Some(r#"[{"field_name":"total","minimum":null,"index":true},{"field_name":"state","required":true}]"#),
        response: FIELDS_EXAMPLE,
        status: 200,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_ARRAY", "VALIDATION_FIELD_MISSING",
            "VALIDATION_FIELD_INVALID", "MODEL_NOT_FOUND", "FIELD_NOT_FOUND", "FIELD_SYSTEM_PROTECTED",
            "FIELD_TYPE_INVALID", "FIELD_CONSTRAINT_INVALID", "FIELD_RELATIONSHIP_INVALID", "FIELD_CHANGE_CONFLICT",
        ],
        handler: || put(update_fields),
    },
    RouteDoc {
        method: "GET",
        path: "/api/describe/{model}/fields/{field}",
        area: AREA,
        access: Access::Bearer,
        summary: "Get one field",
        description: "The field object. Role ≥ `read`.",
        request: None,
        response: FIELD_EXAMPLE,
        status: 200,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_ROLE_INSUFFICIENT", "MODEL_NOT_FOUND", "FIELD_NOT_FOUND",
        ],
        handler: || get(get_field),
    },
    RouteDoc {
        method: "POST",
        path: "/api/describe/{model}/fields/{field}",
        area: AREA,
        access: Access::Sudo,
        summary: "Add one field (column)",
        description: "Body: field properties with `type` (A4.3: text, integer, bigserial, decimal/numeric, boolean, timestamp, date, uuid, jsonb, binary, text[], integer[], decimal[], uuid[]). `ALTER TABLE … ADD COLUMN \"<field>\" <type> [DEFAULT …] [NOT NULL]` plus indexes: `unique` (partial unique index over non-purged rows), `index` (btree), `searchable` (GIN full text), relationship (btree, no database FK). `default_value` must satisfy the field's own rules.",
        request: Some(r#"{"type":"decimal","minimum":0,"tracked":true}"#),
        response: FIELD_EXAMPLE,
        status: 201,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_OBJECT", "VALIDATION_FIELD_MISSING",
            "VALIDATION_FIELD_INVALID", "MODEL_NOT_FOUND", "FIELD_SYSTEM_PROTECTED", "FIELD_NAME_INVALID",
            "FIELD_TYPE_INVALID", "FIELD_CONSTRAINT_INVALID", "FIELD_RELATIONSHIP_INVALID", "FIELD_EXISTS",
            "FIELD_CHANGE_CONFLICT",
        ],
        handler: || post(create_field),
    },
    RouteDoc {
        method: "PUT",
        path: "/api/describe/{model}/fields/{field}",
        area: AREA,
        access: Access::Sudo,
        summary: "Change one field",
        description: "Partial field properties. `null` on a nullable property removes it (`{\"minimum\":null}` drops the bound, `{\"default_value\":null}` drops the column default); `null` on a boolean is ignored. `type` changes run `ALTER COLUMN … TYPE … USING`; a value that does not convert → `409 FIELD_CHANGE_CONFLICT` (`reason:\"cast_failed\"`, `sample_ids`). `required:true` with nulls present and no default → `reason:\"nulls\"`. `field_name` cannot be changed.",
        request: Some(r#"{"minimum":null,"index":true}"#),
        response: FIELD_EXAMPLE,
        status: 200,
        errors: &[
            "AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "VALIDATION_BODY_NOT_OBJECT", "VALIDATION_FIELD_INVALID",
            "MODEL_NOT_FOUND", "FIELD_NOT_FOUND", "FIELD_SYSTEM_PROTECTED", "FIELD_TYPE_INVALID",
            "FIELD_CONSTRAINT_INVALID", "FIELD_RELATIONSHIP_INVALID", "FIELD_CHANGE_CONFLICT",
        ],
        handler: || put(update_field),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/describe/{model}/fields/{field}",
        area: AREA,
        access: Access::Sudo,
        summary: "Delete a field (drop its column)",
        description: "`ALTER TABLE … DROP COLUMN`; the column's indexes go with it; tracked entries are kept.",
        request: None,
        response: r#"{"success":true,"data":{"model_name":"orders","field_name":"note","dropped":true}}"#,
        status: 200,
        errors: &["AUTH_TOKEN_REQUIRED", "AUTH_SUDO_REQUIRED", "MODEL_NOT_FOUND", "FIELD_NOT_FOUND", "FIELD_SYSTEM_PROTECTED"],
        handler: || delete(delete_field),
    },
];

type Res = Result<Response, ApiError>;

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError(abbotik_domain::Error::internal(e)))
}

async fn list_models(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params) -> Res {
    Ok(ok(
        StatusCode::OK,
        json!(s.describe.list_models(&ctx).await?),
        p.unwrap(),
    ))
}

async fn create_model(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let force = p.flag("force", false)?;
    let m = s
        .describe
        .create_model(&ctx, &model, body.as_ref(), force)
        .await?;
    Ok(ok(StatusCode::CREATED, to_json(&m)?, p.unwrap()))
}

async fn get_model(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
) -> Res {
    let m = s.describe.get_model(&ctx, &model).await?;
    Ok(ok(StatusCode::OK, to_json(&*m)?, p.unwrap()))
}

async fn update_model(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let m = s.describe.update_model(&ctx, &model, body.as_ref()).await?;
    let mut v = to_json(&m)?;
    // PUT answers the model object without its fields (A4.1).
    if let Some(o) = v.as_object_mut() {
        o.remove("fields");
    }
    Ok(ok(StatusCode::OK, v, p.unwrap()))
}

async fn delete_model(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
) -> Res {
    Ok(ok(
        StatusCode::OK,
        s.describe.delete_model(&ctx, &model).await?,
        p.unwrap(),
    ))
}

async fn list_fields(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
) -> Res {
    let f = s.describe.list_fields(&ctx, &model).await?;
    Ok(ok(StatusCode::OK, to_json(&f)?, p.unwrap()))
}

async fn create_fields(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let f = s
        .describe
        .create_fields(&ctx, &model, body.as_ref())
        .await?;
    Ok(ok(StatusCode::CREATED, to_json(&f)?, p.unwrap()))
}

async fn update_fields(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(model): Path<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let f = s
        .describe
        .update_fields(&ctx, &model, body.as_ref())
        .await?;
    Ok(ok(StatusCode::OK, to_json(&f)?, p.unwrap()))
}

async fn get_field(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, field)): Path<(String, String)>,
    p: Params,
) -> Res {
    let f = s.describe.get_field(&ctx, &model, &field).await?;
    Ok(ok(StatusCode::OK, to_json(&f)?, p.unwrap()))
}

async fn create_field(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, field)): Path<(String, String)>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let f = s
        .describe
        .create_field(&ctx, &model, &field, body.as_ref())
        .await?;
    Ok(ok(StatusCode::CREATED, to_json(&f)?, p.unwrap()))
}

async fn update_field(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, field)): Path<(String, String)>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Res {
    let f = s
        .describe
        .update_field(&ctx, &model, &field, body.as_ref())
        .await?;
    Ok(ok(StatusCode::OK, to_json(&f)?, p.unwrap()))
}

async fn delete_field(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((model, field)): Path<(String, String)>,
    p: Params,
) -> Res {
    Ok(ok(
        StatusCode::OK,
        s.describe.delete_field(&ctx, &model, &field).await?,
        p.unwrap(),
    ))
}
