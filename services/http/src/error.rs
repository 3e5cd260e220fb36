//! Maps domain errors to the response envelope (A1.3): status, `error`/`message`,
//! `error_code`/`code`, `remediation`, `docs`, `data`. The only place that knows HTTP statuses.

use crate::error_table::row;
use abbotik_domain::{Error, ErrorCode};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError(Error::new(code))
    }
}

/// The HTTP status of a code (codes that never travel over HTTP map to 500).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(row(code).status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The docs page of the surface a code belongs to.
pub fn docs_of(code: ErrorCode) -> &'static str {
    let c = code.as_str();
    let prefixes: &[(&str, &str)] = &[
        ("AUTH_", "/docs/auth"),
        ("TENANT_", "/docs/auth"),
        ("MODEL_", "/docs/api/describe"),
        ("FIELD_", "/docs/api/describe"),
        ("RECORD_", "/docs/api/data"),
        ("FILTER_", "/docs/api/find"),
        ("ACL_", "/docs/api/acls"),
        ("KEY_", "/docs/api/keys"),
        ("SECRET_", "/docs/api/user/secrets"),
        ("CRON_", "/docs/api/cron"),
        ("DOCS_", "/docs"),
        ("NOT_READY", "/docs/operations"),
        ("RATE_LIMITED", "/docs/limits"),
        ("VALIDATION_ERROR", "/docs/api/data"),
        ("VALIDATION_OPERATION", "/docs/api/bulk"),
        ("VALIDATION_IMPORT", "/docs/api/bulk"),
    ];
    prefixes
        .iter()
        .find(|(p, _)| c.starts_with(p))
        .map(|(_, d)| *d)
        .unwrap_or("/docs/errors")
}

/// Builds the envelope body for an error.
pub fn envelope(e: &Error) -> (StatusCode, Value) {
    let r = row(e.code);
    let status = status_of(e.code);
    let message: String = match &e.message {
        Some(m) => m.clone(),
        None => sentence(r.meaning),
    };
    let mut body = json!({
        "success": false,
        "error": message,
        "error_code": e.code.as_str(),
        "code": e.code.as_str(),
        "message": message,
        "remediation": r.remediation,
        "docs": docs_of(e.code),
    });
    if let Some(d) = &e.data {
        body["data"] = d.clone();
    }
    (status, body)
}

/// Table meanings read as sentences: first letter upper-cased, no parenthesised field notes.
fn sentence(meaning: &str) -> String {
    let base = match meaning.find(" (") {
        Some(i) => &meaning[..i],
        None => meaning,
    };
    let mut c = base.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let (status, body) = envelope(&e);
        if status.is_server_error() {
            tracing::error!(
                code = e.code.as_str(),
                cause = e.internal.as_deref().unwrap_or(""),
                "request failed"
            );
        } else if let Some(i) = &e.internal {
            tracing::debug!(code = e.code.as_str(), cause = %i, "client error");
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if e.code == ErrorCode::RateLimited {
            let secs = e
                .data
                .as_ref()
                .and_then(|d| d.get("retry_after"))
                .and_then(|v| v.as_u64())
                .unwrap_or(1);
            let h = resp.headers_mut();
            h.insert("retry-after", HeaderValue::from(secs));
            // B5: a refusal also names its budget (the rate-limit layer refines these).
            if let Some(limit) = e
                .data
                .as_ref()
                .and_then(|d| d.get("limit"))
                .and_then(|v| v.as_u64())
            {
                h.insert("ratelimit-limit", HeaderValue::from(limit));
                h.insert("ratelimit-remaining", HeaderValue::from(0u64));
                h.insert("ratelimit-reset", HeaderValue::from(secs));
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_real_row() {
        for code in ErrorCode::ALL {
            let r = row(*code);
            assert!(!r.meaning.is_empty(), "{code:?}");
            assert!(r.status == 0 || (400..600).contains(&r.status), "{code:?}");
        }
    }

    #[test]
    fn envelope_shape() {
        let e = Error::new(ErrorCode::RecordNotFound).with_data(json!({"model":"orders","id":"x"}));
        let (status, body) = envelope(&e);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "RECORD_NOT_FOUND");
        assert_eq!(body["error_code"], "RECORD_NOT_FOUND");
        assert_eq!(body["error"], body["message"]);
        assert_eq!(body["docs"], "/docs/api/data");
        assert!(body["remediation"]
            .as_str()
            .unwrap()
            .starts_with("Check the id"));
    }
}
