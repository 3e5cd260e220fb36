//! `GET /api/user/limits` (B5, listed in A3.8): the caller's effective rate limits and what
//! is left of them.

use crate::extract::{ok, Ctx, Params};
use crate::ratelimit::RateStatus;
use crate::registry::{Access, RouteDoc};
use crate::state::AppState;
use crate::ApiError;
use abbotik_domain::ratelimit::{Quota, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{json, Value};

pub const ROUTES: &[RouteDoc] = &[RouteDoc {
    method: "GET",
    path: "/api/user/limits",
    area: "limits",
    access: Access::Bearer,
    summary: "The caller's rate limits and what is left of them",
    description: "Any role. `tenant` is the budget every credential of the tenant shares; `key` the budget of this credential (API key, machine key, or the user for a login token). `rps` and `burst` are the effective values (the tenant's overrides, set with `abbot-api tenant limits`, over the `ABBOTIK_RATE_*` defaults; an override takes effect within 5 seconds because there are no change events yet); `remaining` counts the requests that would pass right now, after this one. A disabled limiter shows `null` for all three. `fs` is the file-storage quota: the filesystem (`/fs`) is not available yet, so `quota_bytes` is `null` and `used_bytes` 0. When Redis is unreachable the numbers are those of this server's in-process fallback budget, and `/ready` reports `ratelimit` as degraded (200, not 503); see `/docs/limits`.",
    request: None,
    response: r#"{"success":true,"data":{"tenant":{"rps":100,"burst":200,"remaining":187},"key":{"rps":50,"burst":100,"remaining":99},"fs":{"quota_bytes":null,"used_bytes":0}}}"#,
    status: 200,
    errors: &["AUTH_TOKEN_REQUIRED", "AUTH_TOKEN_INVALID", "AUTH_TOKEN_EXPIRED", "AUTH_USER_INACTIVE", "TENANT_INACTIVE", "RATE_LIMITED"],
    handler: || get(limits),
}];

/// A number as the contract writes it: integral rates without a fraction.
fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn budget(q: Option<Quota>, remaining: Option<u32>) -> Value {
    match q {
        Some(q) => json!({
            "rps": num(q.rps()),
            "burst": q.burst,
            // Not checked on this request (should not happen): the whole burst is the bound.
            "remaining": remaining.unwrap_or(q.burst),
        }),
        None => json!({"rps": null, "burst": null, "remaining": null}),
    }
}

async fn limits(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    RateStatus(v): RateStatus,
    p: Params,
) -> Result<Response, ApiError> {
    let q = s.limits.quotas(ctx.tenant_id).await;
    let rem = |scope| {
        v.as_ref()
            .and_then(|v| v.status(scope))
            .map(|st| st.remaining)
    };
    Ok(ok(
        StatusCode::OK,
        json!({
            "tenant": budget(q.tenant, rem(Scope::Tenant)),
            "key": budget(q.key, rem(Scope::Key)),
            "fs": {"quota_bytes": null, "used_bytes": 0},
        }),
        p.unwrap(),
    ))
}
