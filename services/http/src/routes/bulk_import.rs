//! `POST /api/bulk/import` (A8.3). The NDJSON body is read as a stream: lines are cut from
//! body chunks only when the import asks for the next one, so a slow database slows the
//! upload (backpressure) and memory holds one chunk plus one line. Limits: a line over
//! 1 MiB, or a body over `ABBOTIK_IMPORT_MAX_BYTES` → `413 VALIDATION_BODY_TOO_LARGE`.
//! The JSON document form is read whole under the normal body limit.

use crate::error::ApiError;
use crate::extract::{ok, read_limited, Ctx, Params};
use crate::registry::{Access, RouteDoc};
use crate::routes::data::Res;
use crate::state::AppState;
use abbotik_domain::transfer::{ImportInput, ImportOptions, LineSource};
use abbotik_domain::{Error, ErrorCode};
use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::routing::post;
use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use serde_json::json;

/// Longest NDJSON line accepted (A8.3).
pub const MAX_LINE_BYTES: usize = 1 << 20;

const ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_SUDO_REQUIRED",
    "VALIDATION_FIELD_INVALID",
    "VALIDATION_CONFIRMATION_REQUIRED",
    "VALIDATION_IMPORT_INVALID",
    "VALIDATION_JSON_PARSE",
    "VALIDATION_BODY_TOO_LARGE",
    "VALIDATION_UNSUPPORTED_MEDIA_TYPE",
    "MODEL_SYSTEM_PROTECTED",
    "TENANT_IMPORT_IN_PROGRESS",
    "SERVICE_UNAVAILABLE",
];

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
    method: "POST",
    path: "/api/bulk/import",
    area: "api/bulk",
    access: Access::Sudo,
    summary: "Import an export (NDJSON stream or JSON document) in one transaction",
    description: "Sudo. Query: `strategy=upsert|merge|replace|skip` (default `upsert`), `dry_run=true`, `models=a,b`, `include=describe,data`, `confirm=true` (required by `replace` unless `dry_run`, else `400 VALIDATION_CONFIRMATION_REQUIRED`). Body: `Content-Type: application/x-ndjson` — the export line format read as a stream (line 1 `meta`, then `model` lines, then `record` lines, optional `end` whose counts must match; a line ≤ 1 MiB, the stream ≤ `ABBOTIK_IMPORT_MAX_BYTES`, else `413 VALIDATION_BODY_TOO_LARGE`), or `application/json` — the JSON export document with or without the success envelope (≤ the body limit). Strategies: `upsert` creates missing models/fields, updates field properties and overwrites existing records (absent keys → default/null); `merge` creates missing models/fields and writes only the keys a line carries; `replace` makes each imported model identical to the import (fields dropped) and purges its records first (`include=data` alone: records only); `skip` creates missing models/fields and leaves existing records untouched (`records_skipped`). Everything — DDL and records — is one transaction: the first invalid line → `400 VALIDATION_IMPORT_INVALID` (`data.line`, `data.reason`: `json`, `meta`, `order`, `type`, `describe`, `model`, `record`, `validation`, `unique`, `duplicate_id`, `reference`, `end_count`) and nothing is applied; `models`/`fields`/`users`/`tracked` lines → `403 MODEL_SYSTEM_PROTECTED` with `data.line` (`filters` records may be imported). `dry_run=true` does the same work, rolls it back and reports up to 100 line errors. References are checked once at the end against the final state (any order, self-references, cycles). Access-list entries that are not users of this tenant are dropped (`stats.acl_entries_dropped`); lines with `deleted_at` set are skipped; timestamps, access lists and `bigserial` values are kept (sequences are moved past the maximum). No tracked entries are written. One import per tenant at a time (dry runs included): `409 TENANT_IMPORT_IN_PROGRESS`.",
    request: Some(
        r#"{"meta":{"format":"abbotik-export","version":1,"tenant":"acme","exported_at":"2026-05-06T14:00:00.000000Z","models":["suppliers"],"include":["describe","data"]},"models":[{"model_name":"suppliers","status":"active","description":null,"sudo":false,"frozen":false,"immutable":false,"external":false,"passthrough":false,"fields":[{"field_name":"name","type":"text","required":true}]}],"records":{"suppliers":[{"id":"7a1c2e3d-4b5f-4a6e-8d7c-9b0a1f2e3d4c","name":"Ada"}]}}"#,
    ),
    response: r#"{"success":true,"data":{"dry_run":false,"strategy":"upsert","meta":{"format":"abbotik-export","version":1,"tenant":"acme","exported_at":"2026-05-06T14:00:00.000000Z"},"stats":{"models_created":1,"models_updated":0,"fields_created":1,"fields_updated":0,"fields_dropped":0,"records_created":1,"records_updated":0,"records_deleted":0,"records_skipped":0,"acl_entries_dropped":0},"models":[{"model_name":"suppliers","action":"create","fields_created":["name"],"fields_updated":[],"fields_dropped":[],"records_created":1,"records_updated":0,"records_deleted":0,"records_skipped":0}],"errors":[]}}"#,
    status: 200,
    errors: ERRORS,
    handler: || post(import),
}];

/// NDJSON lines cut from the body stream, under the line and stream limits. A line is lent
/// from the buffer; it is dropped from it on the next call.
struct BodyLines {
    stream: BodyDataStream,
    buf: BytesMut,
    /// Bytes of the line lent last (and its terminator), dropped on the next call.
    lent: usize,
    total: u64,
    max_total: u64,
    done: bool,
}

fn too_large(limit: u64, what: &str) -> Error {
    Error::msg(
        ErrorCode::ValidationBodyTooLarge,
        format!("Import {what} too large"),
    )
    .with_data(json!({ "limit_bytes": limit }))
}

impl BodyLines {
    /// Reads until the buffer holds a whole line; its length and terminator length.
    async fn fill(&mut self) -> abbotik_domain::Result<Option<(usize, usize)>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                let end = scanned + i;
                if end > MAX_LINE_BYTES {
                    return Err(too_large(MAX_LINE_BYTES as u64, "line"));
                }
                return Ok(Some((end, 1)));
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE_BYTES {
                return Err(too_large(MAX_LINE_BYTES as u64, "line"));
            }
            if self.done {
                return Ok((!self.buf.is_empty()).then_some((self.buf.len(), 0)));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.total += chunk.len() as u64;
                    if self.total > self.max_total {
                        return Err(too_large(self.max_total, "stream"));
                    }
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    return Err(Error::msg(
                        ErrorCode::ValidationImportInvalid,
                        "Could not read the request body",
                    )
                    .with_internal(e))
                }
                None => self.done = true,
            }
        }
    }
}

#[async_trait::async_trait]
impl LineSource for BodyLines {
    async fn next_line(&mut self) -> abbotik_domain::Result<Option<&[u8]>> {
        self.buf.advance(self.lent);
        self.lent = 0;
        let Some((len, term)) = self.fill().await? else {
            return Ok(None);
        };
        self.lent = len + term;
        Ok(Some(&self.buf[..len]))
    }
}

async fn import(State(s): State<AppState>, Ctx(ctx): Ctx, p: Params, req: Request) -> Res {
    let get = |k: &str| p.get(k).map(str::to_owned);
    let opts = ImportOptions::from_query(&get)?;
    s.import.check(&ctx, &opts)?;
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let input = match mime.as_deref() {
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
            ImportInput::Stream(Box::new(BodyLines {
                stream: req.into_body().into_data_stream(),
                buf: BytesMut::new(),
                lent: 0,
                total: 0,
                max_total: s.settings.import_max_bytes,
                done: false,
            }))
        }
        None | Some("application/json") => document(&s, req.into_body()).await?,
        Some(m) if m.ends_with("+json") => document(&s, req.into_body()).await?,
        Some(m) => {
            return Err(ApiError(Error::msg(
                ErrorCode::ValidationUnsupportedMediaType,
                format!(
                    "Unsupported Content-Type: {m}; send application/x-ndjson or application/json"
                ),
            )))
        }
    };
    let report = s.import.import(&ctx, &opts, input).await?;
    Ok(ok(StatusCode::OK, report, p.unwrap()))
}

/// The JSON export document, parsed whole under the body limit.
async fn document(s: &AppState, body: Body) -> Result<ImportInput, ApiError> {
    let bytes: Bytes = read_limited(body, s.settings.body_limit_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ImportInput::Document(serde_json::Value::Null));
    }
    let v = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError(
            Error::msg(ErrorCode::ValidationJsonParse, "Body is not valid JSON")
                .with_data(json!({"line": e.line(), "column": e.column()})),
        )
    })?;
    Ok(ImportInput::Document(v))
}
