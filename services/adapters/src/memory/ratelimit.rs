//! In-memory fixed-window rate limiter (embedded and single-node mode, unit tests).

use abbotik_domain::ports::ratelimit::{Decision, RateLimiter};
use abbotik_domain::Result;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Upper bound on tracked budgets; expired windows are swept when it is reached.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct MemoryRateLimiter {
    /// `(scope, key)` → `(window index, count)`.
    windows: Mutex<HashMap<(String, String), (u64, u32)>>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn hit_at(&self, now: u64, scope: &str, key: &str, limit: u32, window: u64) -> Decision {
        let window = window.max(1);
        let index = now / window;
        let mut map = self.windows.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, (w, _)| *w == index);
        }
        let entry = map
            .entry((scope.to_owned(), key.to_owned()))
            .or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        if entry.1 >= limit {
            return Decision::Limited {
                retry_after: (index + 1) * window - now,
            };
        }
        entry.1 += 1;
        Decision::Allowed
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(self.hit_at(now, scope, key, limit, window_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window() {
        let l = MemoryRateLimiter::new();
        assert_eq!(l.hit_at(3600, "s", "ip", 2, 3600), Decision::Allowed);
        assert_eq!(l.hit_at(3601, "s", "ip", 2, 3600), Decision::Allowed);
        assert_eq!(
            l.hit_at(3602, "s", "ip", 2, 3600),
            Decision::Limited { retry_after: 3598 }
        );
        assert_eq!(l.hit_at(3602, "s", "other", 2, 3600), Decision::Allowed);
        assert_eq!(l.hit_at(7200, "s", "ip", 2, 3600), Decision::Allowed);
    }
}
