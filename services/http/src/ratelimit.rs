//! The rate limits (B5), applied by the edge layer: `auth` per client address on `/auth/*`;
//! `tenant` and `key` on `/api/*` (the tenant and credential learnt from a signature check of
//! the bearer token, no database). A request with no or an invalid credential passes through
//! untouched: the authentication answers it. Every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` of the most constrained budget; a refusal is
//! `429 RATE_LIMITED` with `Retry-After`. `/health`, `/ready`, `/docs*`, `/llms.txt` and
//! `/openapi.json` are never limited (`/metrics` is on its own listener).

use crate::error::ApiError;
use crate::state::AppState;
use abbotik_domain::auth::Verified;
use abbotik_domain::ratelimit::{refusal, BudgetStatus, Verdict};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use uuid::Uuid;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The cost of a request: 1, plus ⌊operations/100⌋ for a bulk request (B5).
pub fn bulk_cost(operations: usize) -> u32 {
    u32::try_from(1 + operations / 100).unwrap_or(u32::MAX)
}

/// Charges the rest of a bulk request's cost once its body is parsed (the layer charged 1):
/// `None` when it passes (or no limiter applies), else the `429 RATE_LIMITED` answer.
pub async fn charge_bulk(
    s: &AppState,
    ctx: &abbotik_domain::TenantCtx,
    checked: bool,
    operations: usize,
) -> Option<Response> {
    let extra = bulk_cost(operations).saturating_sub(1);
    if !checked || extra == 0 {
        return None;
    }
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| Uuid::parse_str(s).ok());
    let credential = parse(&ctx.auth.api_key_id)
        .or_else(|| parse(&ctx.auth.key_id))
        .unwrap_or(ctx.user_id);
    match s
        .limits
        .check_request(ctx.tenant_id, credential, extra)
        .await
    {
        Ok(Some(v)) => v
            .refused()
            .map(|r| refuse(r, Some(ctx.tenant.as_str()), &v)),
        _ => None,
    }
}

/// Applies the limits of `req`'s route, then runs the rest (called by the edge layer,
/// [`crate::middleware::edge`]).
pub(crate) async fn limit(s: &AppState, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") {
        api(s, req, next).await
    } else if path.starts_with("/auth/") || path == "/auth" {
        auth(s, req, next).await
    } else {
        next.run(req).await
    }
}

/// The credential a request is counted for: the API key, the machine key, else the user.
pub fn credential(v: &Verified) -> Uuid {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| Uuid::parse_str(s).ok());
    parse(&v.claims.api_key_id)
        .or_else(|| parse(&v.claims.key_id))
        .unwrap_or(v.user_id)
}

async fn api(s: &AppState, mut req: Request, next: Next) -> Response {
    let v = match token(req.headers()) {
        Some(t) => s.auth.verify(t).await.ok(),
        None => None,
    };
    let Some(v) = v else {
        return next.run(req).await;
    };
    req.extensions_mut().insert(VerifiedToken(v.clone()));
    // The request's cost is 1 here; a bulk request charges its extra ⌊operations/100⌋ once
    // its body is parsed (see [`bulk_cost`]).
    let verdict = match s.limits.check_request(v.tenant_id, credential(&v), 1).await {
        Ok(Some(verdict)) => verdict,
        Ok(None) => return next.run(req).await,
        Err(e) => {
            // The stores fail open themselves; anything else must not cost the request.
            tracing::warn!(error = %e.internal.as_deref().unwrap_or(""), "rate limiter failed; request let through");
            return next.run(req).await;
        }
    };
    if let Some(r) = verdict.refused() {
        return refuse(r, Some(v.tenant.as_str()), &verdict);
    }
    req.extensions_mut().insert(verdict);
    let mut resp = next.run(req).await;
    set_headers(resp.headers_mut(), &verdict, false);
    resp
}

async fn auth(s: &AppState, req: Request, next: Next) -> Response {
    let Some(ip) = addr(req.extensions(), req.headers(), s) else {
        return next.run(req).await;
    };
    let verdict = match s.limits.check_auth(ip).await {
        Ok(Some(v)) => v,
        _ => return next.run(req).await,
    };
    if let Some(r) = verdict.refused() {
        return refuse(r, None, &verdict);
    }
    let mut resp = next.run(req).await;
    // A refusal of another budget inside the handler (tenant creation) keeps its own headers.
    set_headers(resp.headers_mut(), &verdict, false);
    resp
}

fn refuse(r: &BudgetStatus, tenant: Option<&str>, v: &Verdict) -> Response {
    let mut resp = ApiError(refusal(r, tenant)).into_response();
    set_headers(resp.headers_mut(), v, true);
    resp
}

/// `RateLimit-*` of the most constrained budget; `overwrite` = replace what is there.
fn set_headers(h: &mut HeaderMap, v: &Verdict, overwrite: bool) {
    let Some(m) = v.most_constrained() else {
        return;
    };
    for (name, value) in [
        (&LIMIT, u64::from(m.quota.burst)),
        (&REMAINING, u64::from(m.remaining)),
        (&RESET, m.reset_secs),
    ] {
        if overwrite || !h.contains_key(name) {
            h.insert(name.clone(), HeaderValue::from(value));
        }
    }
}

/// The bearer credential, borrowed (scheme case-insensitive).
fn token(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    let t = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !t.is_empty()).then_some(t)
}

/// The bearer token of the request, as this layer verified it (verifying once per request).
#[derive(Clone)]
struct VerifiedToken(Arc<Verified>);

/// The request's bearer token as the layer verified it; `None` when it did not (no or an
/// invalid token, or a route outside `/api/`).
pub fn verified(req: &Request) -> Option<Arc<Verified>> {
    req.extensions().get::<VerifiedToken>().map(|v| v.0.clone())
}

/// The budgets this request was checked against (`None` when no limiter applied).
pub struct RateStatus(pub Option<Verdict>);

impl<S: Send + Sync> FromRequestParts<S> for RateStatus {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(RateStatus(parts.extensions.get::<Verdict>().copied()))
    }
}

/// The client address of a request (see [`crate::client_ip`]); `None` without a peer.
pub fn client_addr(parts: &Parts, s: &AppState) -> Option<IpAddr> {
    addr(&parts.extensions, &parts.headers, s)
}

fn addr(ext: &Extensions, headers: &HeaderMap, s: &AppState) -> Option<IpAddr> {
    let peer = ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    crate::client_ip::resolve(peer, headers, &s.settings.trusted_proxies)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bulk_costs() {
        assert_eq!(super::bulk_cost(0), 1);
        assert_eq!(super::bulk_cost(99), 1);
        assert_eq!(super::bulk_cost(100), 2);
        assert_eq!(super::bulk_cost(1050), 11);
    }
}
