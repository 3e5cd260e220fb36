//! Background loops. For now the janitor (A10 trash retention and purged-row deletion, A13
//! expiry of never-activated tenants, A3.10 dropping dissolved schemas); cron and the outbox
//! relay arrive with their issues. Loops stop at the shutdown signal after the current sweep.

use abbotik_domain::ports::janitor::{JanitorStore, Retention};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often and with which retention the janitor sweeps.
#[derive(Debug, Clone, Copy)]
pub struct JanitorSettings {
    pub interval: Duration,
    pub retention: Retention,
}

/// Sweeps every `interval` until `stop` resolves. Only one process of the region sweeps at a
/// time (the store takes a lock); the others skip that round.
pub async fn run_janitor(
    store: Arc<dyn JanitorStore>,
    settings: JanitorSettings,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        match store.sweep(settings.retention).await {
            Ok(Some(report)) => tracing::debug!(?report, "janitor sweep"),
            Ok(None) => tracing::debug!("janitor: another process is sweeping"),
            Err(e) => tracing::warn!(error = %e, "janitor sweep failed"),
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}
