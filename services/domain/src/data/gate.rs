//! The per-tenant query gate (A6.6): at most N expensive reads (find, list) of one tenant run
//! at once on this pod; a further one waits up to 5 s for a slot, then `429 RATE_LIMITED`
//! with `data.scope:"query"`. One semaphore per tenant, created on first use.

use crate::{Error, ErrorCode, Result};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// How long a query waits for a slot.
const WAIT: Duration = Duration::from_secs(5);
/// Idle semaphores are dropped when the map grows past this many tenants.
const PRUNE_AT: usize = 10_000;

/// Concurrency slots per tenant.
pub struct QueryGate {
    per_tenant: usize,
    wait: Duration,
    slots: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

impl QueryGate {
    /// `per_tenant` slots (at least one).
    pub fn new(per_tenant: usize) -> Self {
        Self::with_wait(per_tenant, WAIT)
    }

    /// With a custom wait (tests).
    pub fn with_wait(per_tenant: usize, wait: Duration) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            wait,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, tenant: Uuid) -> Arc<Semaphore> {
        let mut map = self.slots.lock();
        if map.len() >= PRUNE_AT {
            let full = self.per_tenant;
            map.retain(|_, s| s.available_permits() < full);
        }
        map.entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }

    /// A slot for one query of `tenant`, held until the permit drops.
    pub async fn enter(&self, tenant: Uuid) -> Result<OwnedSemaphorePermit> {
        let sem = self.semaphore(tenant);
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        match tokio::time::timeout(self.wait, sem.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Error::msg(
                ErrorCode::RateLimited,
                "Too many queries of this tenant are running at once",
            )
            .with_data(json!({
                "scope": "query",
                "limit": self.per_tenant,
                "retry_after": 1,
            }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_per_tenant() {
        let g = QueryGate::with_wait(1, Duration::from_millis(20));
        let a = Uuid::new_v4();
        let p = g.enter(a).await.unwrap();
        let e = g.enter(a).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.data.unwrap()["scope"], "query");
        assert!(g.enter(Uuid::new_v4()).await.is_ok());
        drop(p);
        assert!(g.enter(a).await.is_ok());
    }
}
