//! One table of GCRA cases that every budget store (the in-process twin and the Redis script)
//! is tested against, so their semantics cannot drift apart. Times are offsets in ms from a
//! base the runner chooses (the Redis runner passes `now` explicitly instead of Redis `TIME`).

use super::gcra::{Budget, Quota, Scope, Subject, Verdict};

/// One request of a case and what must come of it.
#[derive(Debug, Clone)]
pub struct Step {
    pub at_ms: f64,
    pub cost: u32,
    pub allowed: bool,
    /// Remaining of each budget, in the case's budget order.
    pub remaining: Vec<u32>,
    /// `Retry-After` of the refusal.
    pub retry_after: Option<u64>,
    /// `RateLimit-Reset` of the most constrained budget.
    pub reset: u64,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub quotas: Vec<Quota>,
    pub steps: Vec<Step>,
}

impl Case {
    /// The case's budgets for fresh subjects (tenant first, then key).
    pub fn budgets(&self, subjects: &[uuid::Uuid]) -> Vec<Budget> {
        self.quotas
            .iter()
            .zip(subjects)
            .enumerate()
            .map(|(i, (q, s))| Budget {
                scope: if i == 0 { Scope::Tenant } else { Scope::Key },
                subject: Subject::Id(*s),
                quota: *q,
            })
            .collect()
    }

    /// Panics with the case and step when `v` is not what `step` expects.
    pub fn assert_step(&self, i: usize, step: &Step, v: &Verdict) {
        let ctx = format!("case {:?} step {i} ({step:?}): got {v:?}", self.name);
        assert_eq!(v.allowed(), step.allowed, "allowed: {ctx}");
        let rem: Vec<u32> = v.statuses().map(|s| s.remaining).collect();
        assert_eq!(rem, step.remaining, "remaining: {ctx}");
        assert_eq!(
            v.refused().and_then(|s| s.retry_after),
            step.retry_after,
            "retry_after: {ctx}"
        );
        assert_eq!(
            v.most_constrained().map(|s| s.reset_secs),
            Some(step.reset),
            "reset: {ctx}"
        );
    }
}

fn q(rate_per_sec: f64, burst: u32) -> Quota {
    Quota::per_second(rate_per_sec, burst).expect("test quota")
}

fn s(
    at_ms: f64,
    cost: u32,
    allowed: bool,
    remaining: &[u32],
    retry: Option<u64>,
    reset: u64,
) -> Step {
    Step {
        at_ms,
        cost,
        allowed,
        remaining: remaining.to_vec(),
        retry_after: retry,
        reset,
    }
}

/// The table.
pub fn table() -> Vec<Case> {
    vec![
        Case {
            name: "burst, refusal, refill",
            quotas: vec![q(2.0, 3)],
            steps: vec![
                s(0.0, 1, true, &[2], None, 0),
                s(0.0, 1, true, &[1], None, 0),
                s(0.0, 1, true, &[0], None, 1),
                s(0.0, 1, false, &[0], Some(1), 1),
                s(500.0, 1, true, &[0], None, 1),
                s(1000.0, 1, true, &[0], None, 1),
                s(1001.0, 1, false, &[0], Some(1), 1),
                s(5000.0, 1, true, &[2], None, 0),
            ],
        },
        Case {
            name: "cost above one",
            quotas: vec![q(10.0, 5)],
            steps: vec![
                s(0.0, 3, true, &[2], None, 0),
                s(0.0, 3, false, &[2], Some(1), 0),
                s(0.0, 2, true, &[0], None, 1),
                s(250.0, 1, true, &[1], None, 0),
            ],
        },
        Case {
            name: "cost capped at the burst",
            quotas: vec![q(10.0, 5)],
            steps: vec![
                s(0.0, 100, true, &[0], None, 1),
                s(0.0, 1, false, &[0], Some(1), 1),
                s(100.0, 1, true, &[0], None, 1),
            ],
        },
        Case {
            name: "both must allow, else neither is charged",
            quotas: vec![q(10.0, 2), q(1.0, 5)],
            steps: vec![
                s(0.0, 1, true, &[1, 4], None, 0),
                s(0.0, 1, true, &[0, 3], None, 1),
                s(0.0, 1, false, &[0, 3], Some(1), 1),
                s(0.0, 1, false, &[0, 3], Some(1), 1),
                s(200.0, 1, true, &[1, 2], None, 0),
            ],
        },
        Case {
            name: "hourly budget (tenant creation)",
            quotas: vec![Quota::per_hour(10.0, 2).expect("quota")],
            steps: vec![
                s(0.0, 1, true, &[1], None, 0),
                s(0.0, 1, true, &[0], None, 360),
                s(1000.0, 1, false, &[0], Some(359), 359),
                s(360_000.0, 1, true, &[0], None, 360),
            ],
        },
    ]
}
