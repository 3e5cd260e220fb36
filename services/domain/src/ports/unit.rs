//! The unit-of-work port (A8.1): record reads and writes of one request in ONE database
//! transaction. [`UnitOfWork::begin`] opens the transaction; the [`RecordTx`] hands out the
//! record store, counter and aggregate runner bound to it, so the domain can run the very
//! same service methods the single routes run, only inside the transaction. Later reads see
//! earlier writes; nothing is visible to others until [`RecordTx::commit`].
//!
//! Inside a unit of work a [`RecordStore::write`] never opens or commits a transaction of its
//! own: a write of several steps runs under a savepoint, so it still writes all of its steps
//! or none. A write that failed with an error (not a [`Problem`](super::records::Problem))
//! may leave the transaction unusable: the caller then rolls back.

use super::aggregate::Aggregator;
use super::records::{RecordCounter, RecordStore};
use crate::{Result, TenantCtx};
use std::sync::Arc;

/// Opens units of work.
#[async_trait::async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Begins a transaction for the caller's tenant on one dedicated connection.
    async fn begin(&self, ctx: &TenantCtx) -> Result<Box<dyn RecordTx>>;
}

/// An open transaction. Dropping it without commit or rollback rolls it back (the connection
/// is then closed rather than returned to the pool).
#[async_trait::async_trait]
pub trait RecordTx: Send + Sync {
    /// Record reads and writes inside this transaction.
    fn records(&self) -> Arc<dyn RecordStore>;
    /// Find totals and the bulk `count` operation inside this transaction.
    fn counter(&self) -> Arc<dyn RecordCounter>;
    /// Aggregates inside this transaction.
    fn aggregator(&self) -> Arc<dyn Aggregator>;
    /// Commits everything; the stores handed out stop working.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Rolls everything back; the stores handed out stop working.
    async fn rollback(self: Box<Self>) -> Result<()>;
}
