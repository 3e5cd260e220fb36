//! The janitor port (A10 retention, A13 pending expiry, A3.10 dissolution): periodic cleanup
//! across all tenants of a region, run by one process at a time.

use crate::Result;
use async_trait::async_trait;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Tenants still `pending` 24 h after creation: schema and registry row dropped.
    pub expired_pending: Vec<String>,
    /// Trashed records purged by retention.
    pub purged_by_retention: u64,
    /// Purged rows physically deleted (24 h after the purge).
    pub deleted_purged: u64,
    /// Dissolved tenants whose schema was dropped (the name is free again).
    pub dropped_dissolved: Vec<String>,
}

/// Retention settings of one sweep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// `ABBOTIK_TRASH_RETENTION_DAYS`; `0` keeps trashed records forever.
    pub trash_days: u32,
    /// `ABBOTIK_TENANT_DROP_AFTER_DAYS`.
    pub dissolved_days: u32,
    /// Pending tenants older than this are dropped (24 h).
    pub pending_secs: i64,
    /// Purged rows older than this are deleted (24 h).
    pub purged_secs: i64,
}

#[async_trait]
pub trait JanitorStore: Send + Sync {
    /// Runs one sweep if no other process is sweeping (`None` when another one is).
    async fn sweep(&self, r: Retention) -> Result<Option<SweepReport>>;
}
