//! Extractors: the authenticated [`TenantCtx`], the JSON body (415/400/413 rules of A1.1),
//! the request id, and query parameters; plus the success-envelope responders.

use crate::error::ApiError;
use crate::state::AppState;
use abbotik_domain::{Error, ErrorCode, TenantCtx};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The effective request id (A1.9), put into extensions by the request-id middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string())))
    }
}

/// The bearer credential from `Authorization`, if any (scheme case-insensitive).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let t = rest.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The authenticated caller. Rejects with `401 AUTH_TOKEN_REQUIRED` etc.
pub struct Ctx(pub TenantCtx);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(ctx) = parts.extensions.get::<TenantCtx>() {
            return Ok(Ctx(ctx.clone()));
        }
        let token =
            bearer(&parts.headers).ok_or_else(|| ApiError::new(ErrorCode::AuthTokenRequired))?;
        let rid = RequestId::from_request_parts(parts, state).await?;
        let ctx = state.auth.authenticate(&token, rid.0).await?;
        record_caller(&ctx);
        parts.extensions.insert(ctx.clone());
        Ok(Ctx(ctx))
    }
}

/// Puts the caller on the request's log context (and so on its log lines).
pub fn record_caller(ctx: &TenantCtx) {
    crate::request_log::record_caller(ctx.tenant.as_str(), ctx.user_id);
}

/// Query parameters as a flat map (`?unwrap` without value maps to `""`).
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let map: HashMap<String, String> = serde_urlencoded_parse(q);
        Ok(Params(map))
    }
}

fn serde_urlencoded_parse(q: &str) -> HashMap<String, String> {
    if q.is_empty() {
        // Most requests have no query string: no URI to rebuild and parse.
        return HashMap::new();
    }
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(
        &format!("/?{q}").parse().unwrap_or_default(),
    )
    .map(|axum::extract::Query(m)| m)
    .unwrap_or_default()
}

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean flag: `true`/`1`/present-without-value → true; `false`/`0` → false.
    pub fn flag(&self, k: &str, default: bool) -> Result<bool, Error> {
        match self.get(k) {
            None => Ok(default),
            Some("" | "true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(Error::field_invalid(k, "true or false")),
        }
    }

    /// `?unwrap` (A1.5).
    pub fn unwrap(&self) -> bool {
        self.flag("unwrap", false).unwrap_or(false)
    }
}

/// A JSON request body; `None` when the body is empty (A1.1).
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let app: AppState = axum::extract::FromRef::from_ref(state);
        let limit = app.settings.body_limit_bytes;
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_ascii_lowercase());
        let bytes = read_limited(req.into_body(), limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        if let Some(ct) = ct {
            let mime = ct.split(';').next().unwrap_or("").trim();
            let json_like = mime == "application/json" || mime.ends_with("+json");
            if !json_like {
                return Err(ApiError(Error::msg(
                    ErrorCode::ValidationUnsupportedMediaType,
                    format!("Unsupported Content-Type: {mime}"),
                )));
            }
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError(
                Error::msg(ErrorCode::ValidationJsonParse, "Body is not valid JSON")
                    .with_data(json!({"line": e.line(), "column": e.column()})),
            )
        })?;
        Ok(JsonBody(Some(v)))
    }
}

/// Reads a body up to `limit` bytes, else `413 VALIDATION_BODY_TOO_LARGE`.
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError(
            Error::msg(ErrorCode::ValidationBodyTooLarge, "Request body too large")
                .with_data(json!({ "limit_bytes": limit })),
        )
    };
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError(
            Error::msg(
                ErrorCode::ValidationJsonParse,
                "Could not read the request body",
            )
            .with_internal(e),
        )),
    }
}

/// `{"success":true,"data":…}` (or the bare value with `?unwrap`).
pub fn ok(status: StatusCode, data: Value, unwrap: bool) -> Response {
    if unwrap {
        (status, axum::Json(data)).into_response()
    } else {
        (status, axum::Json(json!({"success": true, "data": data}))).into_response()
    }
}

/// Success with `data` already serialized as JSON text (records straight from PostgreSQL),
/// checked against the response cap (A1.10).
pub fn ok_raw(state: &AppState, status: StatusCode, raw: &str, unwrap: bool) -> Response {
    let cap = state.settings.response_max_bytes;
    if raw.len() + 32 > cap {
        return ApiError(
            Error::msg(
                ErrorCode::ValidationResponseTooLarge,
                "Response would exceed the response size cap",
            )
            .with_data(json!({ "limit_bytes": cap })),
        )
        .into_response();
    }
    let body = if unwrap {
        raw.to_owned()
    } else {
        let mut s = String::with_capacity(raw.len() + 28);
        s.push_str("{\"success\":true,\"data\":");
        s.push_str(raw);
        s.push('}');
        s
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The client's address for per-client budgets: the TCP peer, or behind a trusted proxy the
/// last untrusted `X-Forwarded-For` hop (decided in one place: [`crate::client_ip`]).
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientIp(
            crate::ratelimit::client_addr(parts, state)
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}
