//! The rate-limit port (B5): fixed-window budgets keyed by scope and subject. The in-memory
//! twin serves embedded and single-node mode; a shared (Redis) adapter makes the budget
//! hold across pods.

use crate::Result;
use async_trait::async_trait;

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
    /// Spends one unit of `scope`/`key`'s budget of `limit` per `window_secs`.
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision>;
}
