//! GCRA budgets in Redis, shared by every pod (B5), with the in-process fallback.
//!
//! One Lua script, loaded at start and called with `EVALSHA` (reloaded on `NOSCRIPT`), checks
//! and charges up to two keys (`rl:t:<tenant_id>`, `rl:k:<credential_id>`) atomically: all
//! allow, else none is charged. Time is Redis `TIME`, so pod clocks do not matter. The
//! arithmetic is [`abbotik_domain::ratelimit::gcra`] line for line.
//!
//! Redis unreachable (error or no answer within [`CALL_TIMEOUT`]) → fail open to the
//! in-process twin with the same limits: one `warn` per 30 s, `abbotik_ratelimit_fallback_total`
//! per decision taken there, and a background retry after 1 s, doubling up to 30 s. While
//! degraded no request waits for Redis.

use crate::memory::ratelimit::MemoryRateLimiter;
use crate::redis::{redis_err, Redis};
use abbotik_domain::ports::ratelimit::{BudgetStore, Decision, RateLimiter};
use abbotik_domain::ratelimit::{gcra, Budget, Verdict};
use abbotik_domain::Result;
use async_trait::async_trait;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The GCRA script. KEYS: the budgets. ARGV[1]: `now` in ms, or `''` for Redis `TIME`; then per
/// key `tau` and `T·cost` (ms). Returns `{all_allowed, ok_1, lead_us_1, ok_2, lead_us_2}` where
/// `lead` is `TAT − now` after the charge (before it when refused).
pub const SCRIPT: &str = r#"
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local n = #KEYS
local leads, oks = {}, {}
local all = true
for i = 1, n do
  local tau = tonumber(ARGV[2 * i])
  local inc = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  leads[i] = tat - now
  oks[i] = leads[i] <= tau - inc
  if not oks[i] then all = false end
end
local out = {all and 1 or 0}
for i = 1, n do
  local tau = tonumber(ARGV[2 * i])
  local inc = tonumber(ARGV[2 * i + 1])
  if all then
    local tat = now + leads[i] + inc
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tau)))
    leads[i] = tat - now
  end
  out[#out + 1] = oks[i] and 1 or 0
  out[#out + 1] = math.floor(leads[i] * 1000)
end
return out
"#;

/// Longest a request waits for Redis before the fallback decides.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);
const WARN_EVERY_MS: u64 = 30_000;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    /// SHA1 of [`SCRIPT`] (computed once).
    sha: String,
    local: MemoryRateLimiter,
    degraded: AtomicBool,
    base: Instant,
    /// ms since `base` of the last fallback warning (`u64::MAX` = never).
    last_warn: AtomicU64,
}

impl RedisRateLimiter {
    /// Builds the store and loads the script in the background (a failure there already
    /// switches to the fallback and starts the retries).
    pub fn start(redis: Redis) -> Arc<RedisRateLimiter> {
        let sha = redis::Script::new(SCRIPT).get_hash().to_owned();
        let inner = Arc::new(Inner {
            redis,
            sha,
            local: MemoryRateLimiter::new(),
            degraded: AtomicBool::new(false),
            base: Instant::now(),
            last_warn: AtomicU64::new(u64::MAX),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            let weak = Arc::downgrade(&inner);
            tokio::spawn(async move {
                let Some(inner) = weak.upgrade() else { return };
                let r = tokio::time::timeout(CALL_TIMEOUT * 2, inner.load()).await;
                if let Err(e) = flatten(r) {
                    inner.fail(&e);
                }
            });
        }
        Arc::new(RedisRateLimiter { inner })
    }

    /// One check at an explicit `now` (ms) instead of Redis `TIME`, for the shared case
    /// table. No fallback: errors are returned.
    pub async fn check_at(&self, budgets: &[Budget], cost: u32, now: f64) -> Result<Verdict> {
        self.inner.eval(budgets, cost, Some(now)).await
    }
}

fn flatten(r: std::result::Result<Result<()>, tokio::time::error::Elapsed>) -> Result<()> {
    r.unwrap_or_else(|_| Err(abbotik_domain::Error::unavailable("redis: timed out")))
}

impl Inner {
    async fn load(&self) -> Result<()> {
        let mut conn = self.redis.conn().await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        debug_assert_eq!(sha, self.sha);
        Ok(())
    }

    async fn eval(&self, budgets: &[Budget], cost: u32, now: Option<f64>) -> Result<Verdict> {
        let budgets = &budgets[..budgets.len().min(gcra::MAX_BUDGETS)];
        let mut conn = self.redis.conn().await?;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(budgets.len());
        let mut key = String::with_capacity(48);
        for b in budgets {
            key.clear();
            key.push_str(b.scope.redis_prefix());
            let _ = write!(key, "{}", b.subject);
            cmd.arg(key.as_str());
        }
        match now {
            Some(t) => cmd.arg(t),
            None => cmd.arg(""),
        };
        for b in budgets {
            cmd.arg(b.quota.tau_ms()).arg(b.quota.increment_ms(cost));
        }
        let out: Vec<i64> = match cmd.query_async(&mut conn).await {
            Ok(v) => v,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.load().await?;
                cmd.query_async(&mut conn).await.map_err(redis_err)?
            }
            Err(e) => return Err(redis_err(e)),
        };
        if out.len() != 1 + 2 * budgets.len() {
            return Err(abbotik_domain::Error::unavailable(format!(
                "redis: the rate-limit script answered {} values",
                out.len()
            )));
        }
        let mut v = Verdict::default();
        for (i, b) in budgets.iter().enumerate() {
            let ok_here = out[1 + 2 * i] == 1;
            let lead = out[2 + 2 * i] as f64 / 1000.0;
            v.push(gcra::status(b, lead, cost, ok_here));
        }
        Ok(v)
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Switches to the fallback (once) and starts the background retries.
    fn fail(self: &Arc<Self>, e: &abbotik_domain::Error) {
        if self.degraded.swap(true, Ordering::SeqCst) {
            return;
        }
        self.last_warn.store(self.now_ms(), Ordering::Relaxed);
        tracing::warn!(
            error = %e.internal.as_deref().unwrap_or("unavailable"),
            "rate limiter: Redis unreachable, using the in-process budgets of this pod"
        );
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = BACKOFF_START;
            loop {
                tokio::time::sleep(backoff).await;
                let Some(inner) = weak.upgrade() else { return };
                let r = tokio::time::timeout(CALL_TIMEOUT * 2, inner.load()).await;
                if flatten(r).is_ok() {
                    inner.degraded.store(false, Ordering::SeqCst);
                    tracing::info!("rate limiter: Redis reachable again, budgets shared again");
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
    }

    fn fallback(&self, budgets: &[Budget], cost: u32) -> Verdict {
        metrics::counter!("abbotik_ratelimit_fallback_total").increment(1);
        let now = self.now_ms();
        let last = self.last_warn.load(Ordering::Relaxed);
        if (last == u64::MAX || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "rate limiter: Redis still unreachable, using the in-process budgets of this pod"
            );
        }
        let mut v = self.local.check_at(budgets, cost, 1.0e9 + now as f64);
        v.fallback = true;
        v
    }
}

#[async_trait]
impl BudgetStore for RedisRateLimiter {
    async fn check(&self, budgets: &[Budget], cost: u32) -> Result<Verdict> {
        let inner = &self.inner;
        if inner.degraded.load(Ordering::Relaxed) {
            return Ok(inner.fallback(budgets, cost));
        }
        let r = tokio::time::timeout(CALL_TIMEOUT, inner.eval(budgets, cost, None)).await;
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                inner.fail(&e);
                Ok(inner.fallback(budgets, cost))
            }
            Err(_) => {
                inner.fail(&abbotik_domain::Error::unavailable("redis: timed out"));
                Ok(inner.fallback(budgets, cost))
            }
        }
    }

    fn degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, scope: &str, key: &str, limit: u32, window_secs: u64) -> Result<Decision> {
        abbotik_domain::ratelimit::hit(self, scope, key, limit, window_secs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::ratelimit::cases;

    /// The shared case table against the real script (needs `ABBOTIK_TEST_REDIS_URL`; skipped
    /// with a note otherwise, as in every crate-level test of a backing service).
    #[tokio::test]
    async fn the_shared_table_in_redis() {
        let Ok(url) = std::env::var("ABBOTIK_TEST_REDIS_URL") else {
            eprintln!("ABBOTIK_TEST_REDIS_URL unset: Redis script test skipped");
            return;
        };
        let l = RedisRateLimiter::start(Redis::open(&url).unwrap());
        // Each case on fresh keys, at a base far from the real time (keys expire by wall time
        // after tau; every case's tau is ≥ 200 ms and the case runs in a few ms).
        for case in cases::table() {
            let ids: Vec<uuid::Uuid> = (0..case.quotas.len())
                .map(|_| uuid::Uuid::new_v4())
                .collect();
            let budgets = case.budgets(&ids);
            for (i, step) in case.steps.iter().enumerate() {
                let v = l
                    .check_at(&budgets, step.cost, 1.0e12 + step.at_ms)
                    .await
                    .unwrap();
                case.assert_step(i, step, &v);
            }
        }
        // And the real clock: a burst of 2, then a refusal.
        let b = cases::table()[0].budgets(&[uuid::Uuid::new_v4()]);
        for _ in 0..3 {
            assert!(l.check(&b, 1).await.unwrap().allowed());
        }
        let v = l.check(&b, 1).await.unwrap();
        assert!(!v.allowed() && !v.fallback);
        // NOSCRIPT is answered by loading the script again.
        let mut conn = l.inner.redis.conn().await.unwrap();
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await
            .unwrap();
        let b = cases::table()[0].budgets(&[uuid::Uuid::new_v4()]);
        assert!(l.check(&b, 1).await.unwrap().allowed());
        assert!(!l.degraded());
    }

    #[tokio::test]
    async fn unreachable_redis_falls_back_to_the_local_budget() {
        let l = RedisRateLimiter::start(Redis::open("redis://127.0.0.1:1/").unwrap());
        let b = cases::table()[0].budgets(&[uuid::Uuid::new_v4()]);
        let mut allowed = 0;
        for _ in 0..5 {
            let v = l.check(&b, 1).await.unwrap();
            assert!(v.fallback);
            allowed += usize::from(v.allowed());
        }
        // Same limits locally: a burst of 3.
        assert_eq!(allowed, 3);
        assert!(l.degraded());
    }
}
