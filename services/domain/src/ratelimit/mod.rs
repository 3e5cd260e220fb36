//! Rate limits (B5): the limiters `auth` (per client IP, in-process), `tenant_create` (per
//! client IP), `tenant` (per tenant) and `key` (per credential), their configuration with
//! per-tenant overrides, and the `RATE_LIMITED` refusal.
//!
//! The GCRA arithmetic is in [`gcra`]; stores implement
//! [`BudgetStore`](crate::ports::ratelimit::BudgetStore).

pub mod cases;
pub mod gcra;

pub use gcra::{Budget, BudgetStatus, Quota, Scope, Subject, Verdict};

use crate::ports::ratelimit::{
    BudgetStore, Decision, RateLimiter, TenantLimits, TenantLimitsStore,
};
use crate::{Error, ErrorCode, Result};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Global defaults (`ABBOTIK_RATE_*`); a rate or burst of 0 disables that limiter.
#[derive(Debug, Clone)]
pub struct RateSettings {
    pub auth_per_min: f64,
    pub auth_burst: u32,
    pub tenant_rps: f64,
    pub tenant_burst: u32,
    pub key_rps: f64,
    pub key_burst: u32,
    /// How long a tenant's overrides are reused before they are read again. There are no
    /// change events yet, so a `tenant limits` change takes effect within this time.
    pub overrides_ttl: Duration,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            auth_per_min: 30.0,
            auth_burst: 10,
            tenant_rps: 100.0,
            tenant_burst: 200,
            key_rps: 50.0,
            key_burst: 100,
            overrides_ttl: Duration::from_secs(5),
        }
    }
}

/// The effective `tenant` and `key` quotas of one tenant (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    pub tenant: Option<Quota>,
    pub key: Option<Quota>,
}

/// Past this many cached tenants the override cache starts over.
const MAX_CACHED: usize = 50_000;

/// The limiters of one process.
pub struct RateLimitService {
    settings: RateSettings,
    /// In-process budgets (`auth`, per pod by contract).
    local: Arc<dyn BudgetStore>,
    /// Shared budgets (`tenant`, `key`): Redis in cluster mode, else in-process.
    shared: Arc<dyn BudgetStore>,
    overrides: Arc<dyn TenantLimitsStore>,
    cache: Mutex<HashMap<Uuid, (Instant, Quotas)>>,
}

impl RateLimitService {
    pub fn new(
        settings: RateSettings,
        local: Arc<dyn BudgetStore>,
        shared: Arc<dyn BudgetStore>,
        overrides: Arc<dyn TenantLimitsStore>,
    ) -> Self {
        Self {
            settings,
            local,
            shared,
            overrides,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The `auth` limiter for a client address; `None` when disabled.
    pub async fn check_auth(&self, ip: IpAddr) -> Result<Option<Verdict>> {
        let Some(quota) = Quota::per_minute(self.settings.auth_per_min, self.settings.auth_burst)
        else {
            return Ok(None);
        };
        let b = Budget {
            scope: Scope::Auth,
            subject: Subject::Ip(ip),
            quota,
        };
        self.local.check(&[b], 1).await.map(Some)
    }

    /// The `tenant` and `key` limiters for one request of `cost`; `None` when both are
    /// disabled for this tenant.
    pub async fn check_request(
        &self,
        tenant_id: Uuid,
        credential: Uuid,
        cost: u32,
    ) -> Result<Option<Verdict>> {
        let q = self.quotas(tenant_id).await;
        let mut budgets = [None, None];
        if let Some(quota) = q.tenant {
            budgets[0] = Some(Budget {
                scope: Scope::Tenant,
                subject: Subject::Id(tenant_id),
                quota,
            });
        }
        if let Some(quota) = q.key {
            budgets[1] = Some(Budget {
                scope: Scope::Key,
                subject: Subject::Id(credential),
                quota,
            });
        }
        let list: &[Budget] = match budgets {
            [Some(a), Some(b)] => &[a, b],
            [Some(a), None] | [None, Some(a)] => &[a],
            [None, None] => return Ok(None),
        };
        self.shared.check(list, cost).await.map(Some)
    }

    /// The effective quotas of a tenant: its overrides (cached for `overrides_ttl`) over the
    /// global defaults. A failed read of the overrides uses the defaults (and is retried on
    /// the next request).
    pub async fn quotas(&self, tenant_id: Uuid) -> Quotas {
        let now = Instant::now();
        if let Some((at, q)) = self.cache.lock().get(&tenant_id) {
            if now.duration_since(*at) < self.settings.overrides_ttl {
                return *q;
            }
        }
        let q = match self.overrides.get(tenant_id).await {
            Ok(o) => self.effective(&o.unwrap_or_default()),
            Err(e) => {
                tracing::warn!(error = %e.internal.as_deref().unwrap_or(""), "reading tenant limits; using the defaults");
                return self.effective(&TenantLimits::default());
            }
        };
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(tenant_id, (now, q));
        q
    }

    fn effective(&self, o: &TenantLimits) -> Quotas {
        let s = &self.settings;
        let pick = |o: Option<i32>, d: f64| o.map_or(d, |v| f64::from(v.max(0)));
        let pickb = |o: Option<i32>, d: u32| o.map_or(d, |v| v.max(0) as u32);
        Quotas {
            tenant: Quota::per_second(
                pick(o.tenant_rps, s.tenant_rps),
                pickb(o.tenant_burst, s.tenant_burst),
            ),
            key: Quota::per_second(pick(o.key_rps, s.key_rps), pickb(o.key_burst, s.key_burst)),
        }
    }

    /// The shared store is down and the in-process fallback decides (B5, B6 `degraded`).
    pub fn degraded(&self) -> bool {
        self.shared.degraded()
    }
}

/// The `429 RATE_LIMITED` refusal of the budget `s` (B5 envelope: `data.scope`, `data.limit`
/// = the burst, `data.retry_after` in seconds). `tenant` names the tenant for its message.
pub fn refusal(s: &BudgetStatus, tenant: Option<&str>) -> Error {
    metrics::counter!("abbotik_ratelimit_rejected_total", "scope" => s.scope.as_str()).increment(1);
    let message = match (s.scope, tenant) {
        (Scope::Tenant, Some(t)) => format!("Rate limit exceeded for tenant {t}"),
        (Scope::Tenant, None) => "Rate limit exceeded for this tenant".to_owned(),
        (Scope::Key, _) => "Rate limit exceeded for this credential".to_owned(),
        (Scope::Auth, _) => "Too many authentication requests from this address".to_owned(),
        (Scope::TenantCreate, _) => "Too many new tenants from this address".to_owned(),
    };
    let retry_after = s.retry_after.unwrap_or(1);
    Error::msg(ErrorCode::RateLimited, message).with_data(json!({
        "scope": s.scope.as_str(),
        "limit": s.quota.burst,
        "retry_after": retry_after,
    }))
}

/// The tenant-creation budget as the [`RateLimiter`] view `AuthService` spends from: `limit`
/// per `window_secs`, burst `limit`, per client address, on the shared store.
pub struct TenantCreateLimiter(pub Arc<dyn BudgetStore>);

#[async_trait]
impl RateLimiter for TenantCreateLimiter {
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision> {
        hit(self.0.as_ref(), scope, key, limit, window_secs).await
    }
}

/// [`RateLimiter::hit`] on a [`BudgetStore`]: `key` is a client address.
pub async fn hit(
    store: &dyn BudgetStore,
    scope: &str,
    key: &str,
    limit: u32,
    window_secs: u64,
) -> Result<Decision> {
    let Some(quota) = Quota::new(f64::from(limit), window_secs.max(1) as f64 * 1000.0, limit)
    else {
        return Ok(Decision::Allowed);
    };
    let scope = match scope {
        "auth" => Scope::Auth,
        _ => Scope::TenantCreate,
    };
    let ip: IpAddr = key
        .parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let b = Budget {
        scope,
        subject: Subject::Ip(ip),
        quota,
    };
    let v = store.check(&[b], 1).await?;
    Ok(match v.refused() {
        Some(s) => Decision::Limited {
            retry_after: s.retry_after.unwrap_or(1),
        },
        None => Decision::Allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that follows the GCRA table in memory with a fixed clock.
    struct Fixed(Mutex<HashMap<(Scope, Subject), f64>>);

    #[async_trait]
    impl BudgetStore for Fixed {
        async fn check(&self, budgets: &[Budget], cost: u32) -> Result<Verdict> {
            let mut m = self.0.lock();
            let mut tats: Vec<Option<f64>> = budgets
                .iter()
                .map(|b| m.get(&(b.scope, b.subject)).copied())
                .collect();
            let v = gcra::check(budgets, &mut tats, 0.0, cost);
            for (b, t) in budgets.iter().zip(tats) {
                if let Some(t) = t {
                    m.insert((b.scope, b.subject), t);
                }
            }
            Ok(v)
        }
    }

    struct Overrides(Option<TenantLimits>);

    #[async_trait]
    impl TenantLimitsStore for Overrides {
        async fn get(&self, _: Uuid) -> Result<Option<TenantLimits>> {
            Ok(self.0)
        }
    }

    fn service(settings: RateSettings, o: Option<TenantLimits>) -> RateLimitService {
        let store: Arc<dyn BudgetStore> = Arc::new(Fixed(Mutex::new(HashMap::new())));
        RateLimitService::new(settings, store.clone(), store, Arc::new(Overrides(o)))
    }

    #[test]
    fn the_table_holds_for_the_pure_arithmetic() {
        for case in cases::table() {
            let ids: Vec<Uuid> = (0..case.quotas.len()).map(|_| Uuid::new_v4()).collect();
            let budgets = case.budgets(&ids);
            let mut tats = vec![None; budgets.len()];
            for (i, step) in case.steps.iter().enumerate() {
                let v = gcra::check(&budgets, &mut tats, 1.0e12 + step.at_ms, step.cost);
                case.assert_step(i, step, &v);
            }
        }
    }

    #[tokio::test]
    async fn zero_disables_and_overrides_win() {
        let s = RateSettings {
            tenant_rps: 0.0,
            key_rps: 1.0,
            key_burst: 1,
            ..RateSettings::default()
        };
        let svc = service(s.clone(), None);
        let (t, k) = (Uuid::new_v4(), Uuid::new_v4());
        let v = svc.check_request(t, k, 1).await.unwrap().unwrap();
        assert!(v.allowed() && v.status(Scope::Tenant).is_none());
        let v = svc.check_request(t, k, 1).await.unwrap().unwrap();
        assert_eq!(v.refused().unwrap().scope, Scope::Key);
        let e = refusal(v.refused().unwrap(), Some("acme"));
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.data.as_ref().unwrap()["scope"], "key");
        assert_eq!(e.data.as_ref().unwrap()["limit"], 1);

        let o = TenantLimits {
            key_rps: Some(0),
            tenant_rps: Some(5),
            tenant_burst: Some(7),
            ..TenantLimits::default()
        };
        let svc = service(s, Some(o));
        let q = svc.quotas(t).await;
        assert!(q.key.is_none());
        assert_eq!(q.tenant.unwrap().burst, 7);
        assert!((q.tenant.unwrap().rps() - 5.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn tenant_create_view() {
        let store: Arc<dyn BudgetStore> = Arc::new(Fixed(Mutex::new(HashMap::new())));
        let l = TenantCreateLimiter(store);
        assert_eq!(
            l.hit("tenant_create", "10.0.0.1", 2, 3600).await.unwrap(),
            Decision::Allowed
        );
        assert_eq!(
            l.hit("tenant_create", "10.0.0.1", 2, 3600).await.unwrap(),
            Decision::Allowed
        );
        assert_eq!(
            l.hit("tenant_create", "10.0.0.1", 2, 3600).await.unwrap(),
            Decision::Limited { retry_after: 1800 }
        );
        assert_eq!(
            l.hit("tenant_create", "10.0.0.2", 2, 3600).await.unwrap(),
            Decision::Allowed
        );
        assert_eq!(
            l.hit("tenant_create", "10.0.0.1", 0, 3600).await.unwrap(),
            Decision::Allowed
        );
    }
}
