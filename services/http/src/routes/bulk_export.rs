//! `POST /api/bulk/export` (A8.2): a tenant's models and records as the `abbotik-export`
//! NDJSON stream, or as one JSON document under the response cap.
//!
//! NDJSON: the first batch of records is awaited before the status line, so errors the
//! snapshot read raises up front (database unavailable, timeout) still answer with the JSON
//! envelope. After the first byte a failure cannot change the status: the body stops
//! WITHOUT the `end` line and hyper drops the connection without the terminating chunk, so
//! a client sees a truncated transfer and an importer (A8.3) sees a stream with no `end` —
//! both tell it apart from a complete export. Memory is bounded by the store's batches.
//!
//! JSON: the document is built while the same stream is read and abandoned (the snapshot
//! read stops) as soon as it passes `ABBOTIK_RESPONSE_MAX_BYTES` → `413
//! VALIDATION_RESPONSE_TOO_LARGE`, so an oversized request never holds more than the cap.

use crate::error::ApiError;
use crate::extract::{ok_raw, Ctx, JsonBody, Params};
use crate::registry::{Access, RouteDoc};
use crate::routes::data::export::{negotiate, Format};
use crate::routes::data::Res;
use crate::state::AppState;
use abbotik_domain::data::bulk_export::{self, BulkExport, ExportRequest};
use abbotik_domain::ports::records::TaggedRowStream;
use abbotik_domain::{Error, ErrorCode};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use serde_json::{json, Value};

const ERRORS: &[&str] = &[
    "AUTH_TOKEN_REQUIRED",
    "AUTH_ROLE_INSUFFICIENT",
    "MODEL_SYSTEM_PROTECTED",
    "MODEL_NOT_FOUND",
    "VALIDATION_JSON_PARSE",
    "VALIDATION_BODY_NOT_OBJECT",
    "VALIDATION_FIELD_INVALID",
    "VALIDATION_UNSUPPORTED_MEDIA_TYPE",
    "VALIDATION_BODY_TOO_LARGE",
    "VALIDATION_FORMAT_UNSUPPORTED",
    "VALIDATION_RESPONSE_TOO_LARGE",
    "FILTER_QUERY_TIMEOUT",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
];

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
    method: "POST",
    path: "/api/bulk/export",
    area: "api/bulk",
    access: Access::Bearer,
    summary: "Export models and records of the tenant (NDJSON stream or JSON document)",
    description: "Role ≥ `read`; records are those a list read shows the caller, with every system field (`created_at`, `updated_at`, `trashed_at`, `deleted_at`, `access_*`). Body (all optional, `null` = absent): `models` (names; default and `[]` = every non-system model; `filters` is the one system model that may be named, for saved filters — any other → `403 MODEL_SYSTEM_PROTECTED`; unknown → `404 MODEL_NOT_FOUND`), `include` (`describe` and/or `data`; default both), `include_trashed` (default false; purged records never). Unknown keys → `400 VALIDATION_FIELD_INVALID`. An export with `data` holds one of the tenant's query slots (A6.6) until its last byte; none free within 5 s → `429 RATE_LIMITED`.\n\n`?format=ndjson` or `Accept: application/x-ndjson` → `200 application/x-ndjson`, streamed from one `REPEATABLE READ` snapshot of the whole tenant (no row limit, memory flat): a `meta` line (`format` `abbotik-export`, `version` 1, `tenant`, `exported_at`, `models`, `include`), the `model` lines (the describe model object with `fields`, without metadata timestamps), the `record` lines (`{\"type\":\"record\",\"model\":…,\"data\":{…}}`) model by model, then `{\"type\":\"end\",\"models\":<model lines>,\"records\":<record lines>}`. Models are ordered parents before children by their relationship fields (alphabetical among equals; self-references ignored; a cycle is broken at the alphabetically first model; `filters` last). A failure after the first byte ends the stream without the `end` line and without the terminating chunk: treat a stream without `end` as incomplete (import refuses it).\n\nOtherwise the JSON document `{meta, models, records}` (`records` keyed by model, `[]` for a model without records; `{}` without `data`), within the response cap → else `413 VALIDATION_RESPONSE_TOO_LARGE`: use NDJSON. The output is what `POST /api/bulk/import` reads.",
    request: Some(r#"{"models":["customers","orders"],"include":["describe","data"],"include_trashed":false}"#),
    response: r#"{"success":true,"data":{"meta":{"format":"abbotik-export","version":1,"tenant":"acme","exported_at":"2026-05-06T14:00:00.000000Z","models":["customers","orders"],"include":["describe","data"]},"models":[{"model_name":"customers","status":"active","description":null,"sudo":false,"frozen":false,"immutable":false,"external":false,"passthrough":false,"fields":[{"model_name":"customers","field_name":"name","type":"text","required":true,"default_value":null,"description":null,"minimum":null,"maximum":null,"pattern":null,"enum_values":null,"is_array":false,"immutable":false,"sudo":false,"unique":false,"index":false,"searchable":false,"tracked":false,"transform":null,"relationship_type":null,"related_model":null,"related_field":null,"relationship_name":null,"cascade_delete":false}]}],"records":{"customers":[{"id":"5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d","name":"Ada","created_at":"2026-05-06T14:00:00.000000Z","updated_at":"2026-05-06T14:00:00.000000Z","trashed_at":null,"deleted_at":null,"access_read":[],"access_edit":[],"access_full":[],"access_deny":[]}],"orders":[]}}}"#,
    status: 200,
    errors: ERRORS,
    handler: || post(export),
}];

async fn export(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    p: Params,
    h: HeaderMap,
    JsonBody(b): JsonBody,
) -> Res {
    let format = negotiate(&p, &h, &[Format::Json, Format::Ndjson])?;
    let req = ExportRequest::parse(b.as_ref())?;
    let ex = s.data.bulk_export(&ctx, &req).await?;
    match format {
        Format::Ndjson => ndjson(ex).await,
        _ => document(&s, ex, &p).await,
    }
}

/// Where an NDJSON body is after its first chunk.
struct Rest {
    names: Vec<String>,
    rows: Option<TaggedRowStream>,
    model_lines: usize,
    records: u64,
    /// The query slot, released when the body ends or is dropped.
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Rest {
    fn push(&mut self, out: &mut Vec<u8>, i: usize, batch: &[String]) {
        let name = self.names.get(i).map_or("", String::as_str);
        for row in batch {
            bulk_export::push_record_line(out, name, row);
        }
        self.records += batch.len() as u64;
    }

    fn end(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(bulk_export::end_line(self.model_lines, self.records).as_bytes());
    }
}

/// Ends a started body: logged once here, then hyper drops the connection.
fn abort(e: &Error) -> std::io::Error {
    tracing::warn!(code = e.code.as_str(), internal = ?e.internal, "bulk export aborted after the first byte");
    std::io::Error::other("bulk export aborted")
}

async fn ndjson(mut ex: BulkExport) -> Res {
    let mut rows = ex.rows.take();
    let first = match rows.as_mut() {
        Some(r) => match r.next().await {
            Some(Err(e)) => return Err(ApiError(e)),
            Some(Ok(b)) => Some(b),
            None => {
                rows = None;
                None
            }
        },
        None => None,
    };
    let mut head = ex.meta_line().into_bytes();
    head.extend_from_slice(ex.model_lines().as_bytes());
    let mut rest = Rest {
        names: std::mem::take(&mut ex.models),
        rows,
        model_lines: ex.describe.len(),
        records: 0,
        _slot: ex.slot.take(),
    };
    if let Some((i, batch)) = &first {
        rest.push(&mut head, *i, batch);
    }
    if rest.rows.is_none() {
        rest.end(&mut head);
    }
    let tail = futures::stream::unfold(Some(rest), |state| async move {
        let mut st = state?;
        let rows = st.rows.as_mut()?;
        let mut out = Vec::new();
        match rows.next().await {
            Some(Ok((i, batch))) => {
                st.push(&mut out, i, &batch);
                Some((Ok(Bytes::from(out)), Some(st)))
            }
            Some(Err(e)) => Some((Err(abort(&e)), None)),
            None => {
                st.end(&mut out);
                Some((Ok(Bytes::from(out)), None))
            }
        }
    });
    let head = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head))]);
    let body = Body::from_stream(futures::StreamExt::chain(head, tail));
    let tenant = ex
        .meta
        .get("tenant")
        .and_then(Value::as_str)
        .unwrap_or("tenant");
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{tenant}.ndjson\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn too_large(cap: usize) -> ApiError {
    ApiError(
        Error::msg(
            ErrorCode::ValidationResponseTooLarge,
            "The export would exceed the response size cap; ask for ?format=ndjson",
        )
        .with_data(json!({ "limit_bytes": cap })),
    )
}

/// The `records` object of the JSON document, written model by model as batches arrive.
struct Records<'a> {
    out: String,
    names: &'a [String],
    /// The model whose array is open.
    open: Option<usize>,
    first_row: bool,
}

impl Records<'_> {
    /// Closes the open array and writes the keys of the following models up to `upto`
    /// (exclusive) with empty arrays; then opens `upto`'s array when it names a model.
    fn advance(&mut self, upto: usize) {
        let start = match self.open.take() {
            Some(i) => {
                self.out.push(']');
                i + 1
            }
            None => 0,
        };
        for j in start..self.names.len().min(upto + 1) {
            if j > 0 {
                self.out.push(',');
            }
            self.out.push('"');
            self.out.push_str(&self.names[j]);
            self.out.push_str("\":[");
            if j < upto {
                self.out.push(']');
            } else {
                self.open = Some(j);
                self.first_row = true;
            }
        }
    }

    fn rows(&mut self, i: usize, batch: &[String]) {
        if self.open != Some(i) {
            self.advance(i);
        }
        for r in batch {
            if !self.first_row {
                self.out.push(',');
            }
            self.first_row = false;
            self.out.push_str(r);
        }
    }
}

async fn document(s: &AppState, mut ex: BulkExport, p: &Params) -> Res {
    let cap = s.settings.response_max_bytes;
    let mut head = String::from("{\"meta\":");
    head.push_str(&Value::Object(std::mem::take(&mut ex.meta)).to_string());
    head.push_str(",\"models\":");
    head.push_str(&Value::Array(std::mem::take(&mut ex.describe)).to_string());
    head.push_str(",\"records\":{");
    let mut rec = Records {
        out: head,
        names: &ex.models,
        open: None,
        first_row: true,
    };
    if let Some(rows) = ex.rows.as_mut() {
        while let Some(item) = rows.next().await {
            let (i, batch) = item?;
            rec.rows(i, &batch);
            if rec.out.len() + 32 > cap {
                // Dropping the stream stops the snapshot read.
                return Err(too_large(cap));
            }
        }
        rec.advance(ex.models.len());
    }
    let mut out = rec.out;
    out.push_str("}}");
    Ok(ok_raw(s, StatusCode::OK, &out, p.unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    fn records(names: &[String], batches: &[(usize, &[&str])]) -> String {
        let mut r = Records {
            out: String::from("{"),
            names,
            open: None,
            first_row: true,
        };
        for (i, b) in batches {
            let b: Vec<String> = b.iter().map(|s| (*s).to_owned()).collect();
            r.rows(*i, &b);
        }
        r.advance(names.len());
        r.out.push('}');
        r.out
    }

    fn export(items: Vec<abbotik_domain::Result<(usize, Vec<String>)>>, data: bool) -> BulkExport {
        let (tx, rx) = tokio::sync::mpsc::channel(items.len().max(1));
        for i in items {
            tx.try_send(i).unwrap();
        }
        BulkExport {
            meta: serde_json::Map::from_iter([("format".to_owned(), json!("abbotik-export"))]),
            models: names(&["a", "b"]),
            describe: vec![json!({"model_name": "a"}), json!({"model_name": "b"})],
            rows: data.then(|| TaggedRowStream::new(rx)),
            slot: None,
        }
    }

    async fn body(r: Response) -> Result<String, String> {
        let out = crate::routes::data::export::tests::body(r).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn ndjson_lines_end_and_failures() {
        let batch = |i: usize, r: &[&str]| Ok((i, r.iter().map(|s| (*s).to_owned()).collect()));
        let r = ndjson(export(
            vec![
                batch(0, &["{\"id\":1}"]),
                batch(1, &["{\"id\":2}", "{\"id\":3}"]),
            ],
            true,
        ))
        .await
        .unwrap();
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        let text = body(r).await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"type":"meta","format":"abbotik-export"}"#);
        assert_eq!(lines[1], r#"{"type":"model","model":{"model_name":"a"}}"#);
        assert_eq!(lines[3], r#"{"type":"record","model":"a","data":{"id":1}}"#);
        assert_eq!(lines[5], r#"{"type":"record","model":"b","data":{"id":3}}"#);
        assert_eq!(lines[6], r#"{"type":"end","models":2,"records":3}"#);
        assert_eq!(lines.len(), 7);

        // Without data, or with no rows at all: the end line follows the model lines.
        let text = body(ndjson(export(vec![], false)).await.unwrap())
            .await
            .unwrap();
        assert!(text.ends_with("{\"type\":\"end\",\"models\":2,\"records\":0}\n"));
        let text = body(ndjson(export(vec![], true)).await.unwrap())
            .await
            .unwrap();
        assert_eq!(text.lines().count(), 4);

        // An error before the first byte is an envelope.
        let e = ndjson(export(
            vec![Err(Error::new(ErrorCode::ServiceUnavailable))],
            true,
        ))
        .await
        .unwrap_err();
        assert_eq!(e.0.code, ErrorCode::ServiceUnavailable);

        // After it, the body ends with an error and without the end line.
        let r = ndjson(export(
            vec![
                batch(0, &["{}"]),
                Err(Error::new(ErrorCode::ServiceUnavailable)),
                batch(1, &["{}"]),
            ],
            true,
        ))
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let partial = body(r).await.unwrap_err();
        assert!(partial.ends_with("\"data\":{}}\n"));
        assert!(!partial.contains("\"end\""));
    }

    #[test]
    fn records_object_has_every_model_in_order() {
        let n = names(&["a", "b", "c", "d"]);
        assert_eq!(
            records(&n, &[(1, &["1", "2"]), (1, &["3"]), (3, &["4"])]),
            r#"{"a":[],"b":[1,2,3],"c":[],"d":[4]}"#
        );
        assert_eq!(records(&n, &[]), r#"{"a":[],"b":[],"c":[],"d":[]}"#);
        assert_eq!(
            records(&n, &[(0, &["1"])]),
            r#"{"a":[1],"b":[],"c":[],"d":[]}"#
        );
        assert_eq!(records(&names(&[]), &[]), "{}");
        let v: Value = serde_json::from_str(&records(&n, &[(2, &["{\"x\":1}"])])).unwrap();
        assert_eq!(v["c"][0]["x"], 1);
    }
}
