//! Cross-cutting middleware, as one layer ([`edge`]): request ids (A1.9), the request's log
//! context, per-route metrics, the rate limits ([`crate::ratelimit`]), panics caught as
//! `500 INTERNAL`, and the envelope for responses axum produces itself (404 fallback, 405 with
//! `Allow`).

use crate::error::{envelope, ApiError};
use crate::extract::RequestId;
use crate::request_log::{self, RequestLog};
use crate::{ratelimit, AppState};
use abbotik_domain::{Error, ErrorCode};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use metrics::{Counter, Gauge, Histogram};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

static RID_RE: LazyLock<regex_lite::Regex> =
    LazyLock::new(|| regex_lite::Regex::new(r"^[A-Za-z0-9._:-]{1,128}$").expect("static regex"));

/// The per-route series of the request metrics, registered once per (method, route, status):
/// building label sets and looking them up in the recorder on every request costs more than
/// the increment itself.
#[derive(Default)]
struct RouteSeries {
    counters: FxHashMap<(Method, Arc<str>, u16), Counter>,
    histograms: FxHashMap<(Method, Arc<str>), Histogram>,
}

static SERIES: LazyLock<RwLock<RouteSeries>> = LazyLock::new(Default::default);
/// Distinct series kept (routes are a fixed set; this only bounds odd methods and statuses).
const SERIES_MAX: usize = 4096;

/// Requests being handled. The handle is looked up once: the recorder is installed before the
/// server accepts its first request.
static IN_FLIGHT: LazyLock<Gauge> =
    LazyLock::new(|| metrics::gauge!("abbotik_http_requests_in_flight"));

fn record_request(method: &Method, route: &Arc<str>, status: u16, secs: f64) {
    let ckey = (method.clone(), route.clone(), status);
    let hkey = (method.clone(), route.clone());
    {
        let series = SERIES.read();
        if let (Some(c), Some(h)) = (series.counters.get(&ckey), series.histograms.get(&hkey)) {
            c.increment(1);
            h.record(secs);
            return;
        }
    }
    let c = metrics::counter!("abbotik_http_requests_total", "method" => method.to_string(), "route" => route.to_string(), "status" => status.to_string());
    let h = metrics::histogram!("abbotik_http_request_duration_seconds", "method" => method.to_string(), "route" => route.to_string());
    c.increment(1);
    h.record(secs);
    let mut series = SERIES.write();
    if series.counters.len() < SERIES_MAX {
        series.counters.insert(ckey, c);
        series.histograms.insert(hkey, h);
    }
}

/// Assigns the request id, opens the request's log context ([`request_log`]), applies the rate
/// limits, turns a panic below into `500 INTERNAL`, records metrics, writes the access log
/// line, and wraps the bodies axum produces itself (405) in the envelope — one layer, since
/// every layer costs a boxed service per route and a move of the request on every call.
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| RID_RE.is_match(s))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(rid.clone()));
    let route: Arc<str> = match req.extensions().get::<MatchedPath>() {
        Some(m) => Arc::from(m.as_str()),
        None => Arc::from("unmatched"),
    };
    let method = req.method().clone();
    let log = RequestLog::new(rid.clone(), method.clone(), route.clone());
    request_log::scope(log, async move {
        IN_FLIGHT.increment(1.0);
        // Boxed on its own: inlined, the limits and the handler made this future one
        // multi-kilobyte state machine, moved on every request (measured: 5–8% slower).
        let below = Box::pin(ratelimit::limit(&state, req, next));
        let mut resp = envelope_fallbacks(caught(below).await);
        IN_FLIGHT.decrement(1.0);
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        record_request(&method, &route, status, elapsed.as_secs_f64());
        request_log::access(status, elapsed.as_millis() as u64);
        if let Ok(v) = HeaderValue::from_str(&rid) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    })
    .await
}

/// Wraps bodies axum generated itself (405) in the error envelope.
fn envelope_fallbacks(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && !is_json {
        let allow = resp.headers().get("allow").cloned();
        let mut out = ApiError(Error::new(ErrorCode::MethodNotAllowed)).into_response();
        if let Some(a) = allow {
            out.headers_mut().insert("allow", a);
        }
        return out;
    }
    resp
}

/// Unknown route → `404 NOT_FOUND` in the envelope.
pub async fn not_found() -> ApiError {
    ApiError(Error::msg(ErrorCode::NotFound, "No route matches the path"))
}

/// The response of `handling`, or `500 INTERNAL` with no detail if it panics (logged, inside
/// the request's log context).
async fn caught(handling: impl Future<Output = Response>) -> Response {
    match AssertUnwindSafe(handling).catch_unwind().await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!("handler panicked");
            let (status, body) = envelope(&Error::new(ErrorCode::Internal));
            (status, axum::Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_below_the_edge_is_an_internal_error_without_detail() {
        let resp = caught(async { panic!("secret detail") }).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["error_code"], "INTERNAL");
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }

    #[tokio::test]
    async fn an_answer_passes_the_edge_unchanged() {
        let resp = caught(async { StatusCode::IM_A_TEAPOT.into_response() }).await;
        assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
    }
}
