//! Rate-limit ports (B5).
//!
//! - [`BudgetStore`]: GCRA budgets checked and charged atomically (all allow, else none is
//!   charged). The in-process twin serves embedded mode, the `auth` limiter and the fallback; the
//!   Redis store shares budgets across pods.
//! - [`TenantLimitsStore`]: per-tenant overrides (`abbotik_control.tenant_limits`).
//! - [`RateLimiter`]: the narrow "spend one unit" view `AuthService` uses for the
//!   tenant-creation budget; [`crate::ratelimit::TenantCreateLimiter`] puts it on a
//!   [`BudgetStore`].

use crate::ratelimit::{Budget, Verdict};
use crate::Result;
use async_trait::async_trait;
use uuid::Uuid;

/// The outcome of spending one unit of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over budget; retry after this many seconds.
    Limited {
        retry_after: u64,
    },
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Spends one unit of `scope`/`key`'s budget: `limit` per `window_secs`, burst `limit`
    /// (GCRA); `limit == 0` never limits.
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision>;
}

#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Checks `budgets` (at most two) for a request of `cost` and charges every one of them
    /// only when all allow.
    async fn check(&self, budgets: &[Budget], cost: u32) -> Result<Verdict>;

    /// The shared store is unreachable and decisions come from the in-process fallback.
    fn degraded(&self) -> bool {
        false
    }
}

/// A tenant's overrides; `None` = the global default (B5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantLimits {
    pub tenant_rps: Option<i32>,
    pub tenant_burst: Option<i32>,
    pub key_rps: Option<i32>,
    pub key_burst: Option<i32>,
    pub fs_quota_bytes: Option<i64>,
    pub cron_max_jobs: Option<i32>,
}

#[async_trait]
pub trait TenantLimitsStore: Send + Sync {
    async fn get(&self, tenant_id: Uuid) -> Result<Option<TenantLimits>>;
}
