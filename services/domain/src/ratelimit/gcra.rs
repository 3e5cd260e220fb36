//! The GCRA arithmetic of B5, shared by the in-process twin and (line for line) the Redis Lua
//! script, so both stores decide the same request the same way.
//!
//! State per budget: the theoretical arrival time `TAT` in milliseconds. With `T = period/rate`
//! (the emission interval) and `tau = T·burst`, a request of cost `c` is allowed when
//! `TAT − now ≤ tau − T·c`; then `TAT = max(TAT, now) + T·c`.

use std::net::IpAddr;
use uuid::Uuid;

/// Which limiter a budget belongs to (the `data.scope` of a refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Per client IP on `/auth/*` (in-process, per pod).
    Auth,
    /// Per client IP on tenant-creating routes.
    TenantCreate,
    /// Per tenant on `/api/*`.
    Tenant,
    /// Per credential (API key, machine key, or user for JWT logins).
    Key,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Auth => "auth",
            Scope::TenantCreate => "tenant_create",
            Scope::Tenant => "tenant",
            Scope::Key => "key",
        }
    }

    /// The Redis key prefix (`rl:t:<tenant_id>`, `rl:k:<credential_id>`, B5).
    pub const fn redis_prefix(self) -> &'static str {
        match self {
            Scope::Auth => "rl:a:",
            Scope::TenantCreate => "rl:c:",
            Scope::Tenant => "rl:t:",
            Scope::Key => "rl:k:",
        }
    }
}

/// Who a budget is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Id(Uuid),
    Ip(IpAddr),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Id(u) => u.fmt(f),
            Subject::Ip(ip) => ip.fmt(f),
        }
    }
}

/// A rate and a burst. `interval_ms` is `T`; `burst` is how many cost-1 requests pass at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub interval_ms: f64,
    pub burst: u32,
}

impl Quota {
    /// `rate` requests per `period_ms`, burst `burst`; `None` (no limit) when either is 0.
    pub fn new(rate: f64, period_ms: f64, burst: u32) -> Option<Quota> {
        (rate > 0.0 && rate.is_finite() && burst > 0).then(|| Quota {
            interval_ms: period_ms / rate,
            burst,
        })
    }

    pub fn per_second(rate: f64, burst: u32) -> Option<Quota> {
        Self::new(rate, 1000.0, burst)
    }

    pub fn per_minute(rate: f64, burst: u32) -> Option<Quota> {
        Self::new(rate, 60_000.0, burst)
    }

    pub fn per_hour(rate: f64, burst: u32) -> Option<Quota> {
        Self::new(rate, 3_600_000.0, burst)
    }

    /// `tau = T·burst`.
    pub fn tau_ms(&self) -> f64 {
        self.interval_ms * f64::from(self.burst)
    }

    /// `T·cost`, the cost capped at the burst so that every request can pass on a full budget
    /// (a bulk of 50,000 operations empties the budget instead of never passing).
    pub fn increment_ms(&self, cost: u32) -> f64 {
        self.interval_ms * f64::from(cost.clamp(1, self.burst))
    }

    /// Requests per second (for `GET /api/user/limits`).
    pub fn rps(&self) -> f64 {
        1000.0 / self.interval_ms
    }
}

/// One budget a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub scope: Scope,
    pub subject: Subject,
    pub quota: Quota,
}

/// Where a budget stands after a check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetStatus {
    pub scope: Scope,
    pub quota: Quota,
    /// Cost-1 requests that would pass right now.
    pub remaining: u32,
    /// Seconds until a cost-1 request passes (0 while `remaining > 0`).
    pub reset_secs: u64,
    /// Refused by this budget: seconds until this request (its cost) would pass (≥ 1).
    pub retry_after: Option<u64>,
}

/// The decision of one check: every budget allowed (and was charged), or none was charged.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Verdict {
    statuses: [Option<BudgetStatus>; 2],
    /// Decided by the in-process fallback because the shared store was unreachable.
    pub fallback: bool,
}

impl Verdict {
    pub fn push(&mut self, s: BudgetStatus) {
        if let Some(slot) = self.statuses.iter_mut().find(|s| s.is_none()) {
            *slot = Some(s);
        }
    }

    pub fn statuses(&self) -> impl Iterator<Item = &BudgetStatus> {
        self.statuses.iter().flatten()
    }

    pub fn status(&self, scope: Scope) -> Option<&BudgetStatus> {
        self.statuses().find(|s| s.scope == scope)
    }

    pub fn allowed(&self) -> bool {
        self.statuses().all(|s| s.retry_after.is_none())
    }

    /// The refusing budget that asks for the longest wait.
    pub fn refused(&self) -> Option<&BudgetStatus> {
        self.statuses()
            .filter(|s| s.retry_after.is_some())
            .max_by_key(|s| s.retry_after)
    }

    /// The budget the `RateLimit-*` headers describe: the refusing one, else the one with the
    /// fewest remaining requests.
    pub fn most_constrained(&self) -> Option<&BudgetStatus> {
        self.refused().or_else(|| {
            self.statuses().min_by(|a, b| {
                a.remaining
                    .cmp(&b.remaining)
                    .then(b.reset_secs.cmp(&a.reset_secs))
            })
        })
    }
}

/// Budgets a single check may cover (tenant + key).
pub const MAX_BUDGETS: usize = 2;

/// `TAT − now` of a budget whose stored TAT is `tat` (absent = `now`).
pub fn lead_ms(tat: Option<f64>, now: f64) -> f64 {
    tat.map_or(0.0, |t| (t - now).max(0.0))
}

/// Whether a request of `cost` passes a budget whose `TAT − now` is `lead`.
pub fn passes(quota: &Quota, lead: f64, cost: u32) -> bool {
    lead <= quota.tau_ms() - quota.increment_ms(cost)
}

/// The status of a budget given its `TAT − now` after the check (charged when allowed).
pub fn status(budget: &Budget, lead: f64, cost: u32, allowed_here: bool) -> BudgetStatus {
    let q = &budget.quota;
    let tau = q.tau_ms();
    let room = (tau - lead).max(0.0);
    // A hair of slack so that float residue (e.g. 199.99999 of 200) does not lose a request.
    let remaining = ((room + 1e-6) / q.interval_ms).floor() as u32;
    let remaining = remaining.min(q.burst);
    let reset_secs = if remaining > 0 {
        0
    } else {
        secs_ceil(lead - (tau - q.interval_ms))
    };
    let retry_after =
        (!allowed_here).then(|| secs_ceil(lead - (tau - q.increment_ms(cost))).max(1));
    BudgetStatus {
        scope: budget.scope,
        quota: *q,
        remaining,
        reset_secs,
        retry_after,
    }
}

fn secs_ceil(ms: f64) -> u64 {
    if ms <= 0.0 {
        0
    } else {
        (ms / 1000.0).ceil() as u64
    }
}

/// The whole check over in-memory state: `tats[i]` is budget `i`'s stored TAT (updated in
/// place when every budget allows). The Redis script does exactly this.
pub fn check(budgets: &[Budget], tats: &mut [Option<f64>], now: f64, cost: u32) -> Verdict {
    let mut leads = [0.0f64; MAX_BUDGETS];
    let mut all = true;
    for (i, b) in budgets.iter().enumerate().take(MAX_BUDGETS) {
        leads[i] = lead_ms(tats[i], now);
        all &= passes(&b.quota, leads[i], cost);
    }
    let mut v = Verdict::default();
    for (i, b) in budgets.iter().enumerate().take(MAX_BUDGETS) {
        let ok_here = passes(&b.quota, leads[i], cost);
        if all {
            let tat = now + leads[i] + b.quota.increment_ms(cost);
            tats[i] = Some(tat);
            leads[i] = tat - now;
        }
        v.push(status(b, leads[i], cost, ok_here));
    }
    v
}
