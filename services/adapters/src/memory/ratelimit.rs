//! The in-process GCRA budget store: embedded and single-node mode, the per-pod `auth`
//! limiter, and the fallback while Redis is unreachable (B5). Same arithmetic as the Redis
//! script ([`abbotik_domain::ratelimit::gcra`]), on a monotonic clock.

use abbotik_domain::ports::ratelimit::{BudgetStore, Decision, RateLimiter};
use abbotik_domain::ratelimit::{gcra, Budget, Scope, Subject, Verdict};
use abbotik_domain::Result;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;

/// Past this many budgets, those already back to full (TAT in the past) are dropped.
const MAX_KEYS: usize = 100_000;

pub struct MemoryRateLimiter {
    /// `(scope, subject)` → TAT in ms since `base`.
    tats: Mutex<HashMap<(Scope, Subject), f64>>,
    base: Instant,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self {
            tats: Mutex::new(HashMap::new()),
            // Start the clock far from zero so a first TAT is never "before the epoch".
            base: Instant::now(),
        }
    }

    fn now_ms(&self) -> f64 {
        1.0e9 + self.base.elapsed().as_secs_f64() * 1000.0
    }

    /// The check at an explicit time (ms), for the shared case table.
    pub fn check_at(&self, budgets: &[Budget], cost: u32, now: f64) -> Verdict {
        let n = budgets.len().min(gcra::MAX_BUDGETS);
        let budgets = &budgets[..n];
        let mut map = self.tats.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, tat| *tat > now);
        }
        let mut tats = [None; gcra::MAX_BUDGETS];
        for (i, b) in budgets.iter().enumerate() {
            tats[i] = map.get(&(b.scope, b.subject)).copied();
        }
        let before = tats;
        let v = gcra::check(budgets, &mut tats[..n], now, cost);
        for (i, b) in budgets.iter().enumerate() {
            if tats[i] != before[i] {
                if let Some(t) = tats[i] {
                    map.insert((b.scope, b.subject), t);
                }
            }
        }
        v
    }
}

#[async_trait]
impl BudgetStore for MemoryRateLimiter {
    async fn check(&self, budgets: &[Budget], cost: u32) -> Result<Verdict> {
        Ok(self.check_at(budgets, cost, self.now_ms()))
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision> {
        abbotik_domain::ratelimit::hit(self, scope, key, limit, window_secs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::ratelimit::cases;

    #[test]
    fn the_shared_table() {
        let l = MemoryRateLimiter::new();
        for case in cases::table() {
            let ids: Vec<uuid::Uuid> = (0..case.quotas.len())
                .map(|_| uuid::Uuid::new_v4())
                .collect();
            let budgets = case.budgets(&ids);
            for (i, step) in case.steps.iter().enumerate() {
                let v = l.check_at(&budgets, step.cost, 5.0e9 + step.at_ms);
                case.assert_step(i, step, &v);
            }
        }
    }

    #[tokio::test]
    async fn tenant_creation_view() {
        let l = MemoryRateLimiter::new();
        assert_eq!(
            l.hit("tenant_create", "::1", 1, 3600).await.unwrap(),
            Decision::Allowed
        );
        assert!(matches!(
            l.hit("tenant_create", "::1", 1, 3600).await.unwrap(),
            Decision::Limited { retry_after } if retry_after > 3500
        ));
    }
}
