//! [`UnitOfWork`] on PostgreSQL (A8.1): one transaction on one dedicated pooled connection
//! (`BEGIN` issued by hand, so the connection can be owned), shared by a record store, a
//! counter and an aggregate runner that run the same SQL as their autocommit twins
//! ([`PgRecordStore`](super::record_store::PgRecordStore), `PgRecordCounter`, `PgAggregator`).
//!
//! A write never opens or commits a transaction of its own here: a write of several steps
//! runs under a savepoint, so it still writes all of its steps or none. Commit and rollback
//! hand the connection back to the pool; a transaction dropped unfinished (a cancelled
//! request) detaches its connection, which closes it and so rolls back server-side.

use super::aggregate_store::{aggregate_sql, rows_json};
use super::db::observe;
use super::find_store::count_sql;
use super::record_store::{exists_sql, query, run_steps, select_sql};
use super::{map_db_error, Db};
use abbotik_domain::ports::aggregate::{AggregateQuery, Aggregator};
use abbotik_domain::ports::records::{
    Guarded, Outcome, RecordCounter, RecordStore, Select, Table, TrashedModel, TrashedScope, Write,
};
use abbotik_domain::ports::unit::{RecordTx, UnitOfWork};
use abbotik_domain::{Error, Result, TenantCtx};
use deadpool_postgres::Object;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Opens bulk transactions.
pub struct PgUnitOfWork {
    db: Db,
}

impl PgUnitOfWork {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl UnitOfWork for PgUnitOfWork {
    async fn begin(&self, _ctx: &TenantCtx) -> Result<Box<dyn RecordTx>> {
        let c = self.db.conn().await?;
        // A transaction left open by a stalled pod is ended by the server after a minute
        // without a statement; each operation's statements keep it alive.
        c.batch_execute("BEGIN; SET LOCAL idle_in_transaction_session_timeout = '60s'")
            .await
            .map_err(map_db_error)?;
        Ok(Box::new(PgRecordTx {
            conn: Arc::new(Mutex::new(Slot(Some(c)))),
        }))
    }
}

/// The transaction's connection; empty once committed or rolled back.
struct Slot(Option<Object>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Never return a connection with an open transaction to the pool.
            drop(Object::take(c));
        }
    }
}

type Shared = Arc<Mutex<Slot>>;

fn finished() -> Error {
    Error::internal("the bulk transaction is already finished")
}

/// An open transaction and the stores bound to it.
pub struct PgRecordTx {
    conn: Shared,
}

impl PgRecordTx {
    /// Runs `COMMIT` or `ROLLBACK`, then gives the connection back to the pool.
    async fn finish(&self, statement: &str) -> Result<()> {
        let mut slot = self.conn.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        // On failure the slot keeps the connection and detaches it when dropped.
        c.batch_execute(statement).await.map_err(map_db_error)?;
        drop(slot.0.take());
        Ok(())
    }
}

#[async_trait::async_trait]
impl RecordTx for PgRecordTx {
    fn records(&self) -> Arc<dyn RecordStore> {
        Arc::new(TxRecords(self.conn.clone()))
    }

    fn counter(&self) -> Arc<dyn RecordCounter> {
        Arc::new(TxCounter(self.conn.clone()))
    }

    fn aggregator(&self) -> Arc<dyn Aggregator> {
        Arc::new(TxAggregator(self.conn.clone()))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        // `COMMIT` of an aborted transaction "succeeds" as a rollback; the statement before it
        // fails there instead, so an aborted transaction is never reported committed.
        self.finish("SELECT 1; COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.finish("ROLLBACK").await
    }
}

/// Records inside the transaction.
struct TxRecords(Shared);

#[async_trait::async_trait]
impl RecordStore for TxRecords {
    async fn select(&self, _ctx: &TenantCtx, s: &Select) -> Result<Vec<String>> {
        let started = Instant::now();
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let rows = query(c, &select_sql(s)).await.map_err(map_db_error)?;
        observe("bulk.select", started);
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// No guarded fast path inside a transaction: the caller takes the ordinary one.
    async fn select_one_guarded(&self, _ctx: &TenantCtx, _s: &Select) -> Result<Option<Guarded>> {
        Ok(None)
    }

    async fn exists(
        &self,
        _ctx: &TenantCtx,
        table: &Table,
        id: Uuid,
        trashed: TrashedScope,
    ) -> Result<bool> {
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let rows = query(c, &exists_sql(table, id, trashed))
            .await
            .map_err(map_db_error)?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    async fn write(&self, _ctx: &TenantCtx, w: &Write) -> Result<Outcome> {
        let started = Instant::now();
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let out = if w.ops.len() <= 1 {
            // One statement writes all of its rows or none.
            run_steps(c, w).await?
        } else {
            c.batch_execute("SAVEPOINT abbotik_write")
                .await
                .map_err(map_db_error)?;
            let out = run_steps(c, w).await;
            let end = match &out {
                Ok(Outcome::Rows(_)) => "RELEASE SAVEPOINT abbotik_write",
                _ => "ROLLBACK TO SAVEPOINT abbotik_write",
            };
            // After an error the transaction may be unusable; the caller rolls it back.
            let ended = c.batch_execute(end).await.map_err(map_db_error);
            let out = out?;
            ended?;
            out
        };
        observe("bulk.write", started);
        Ok(out)
    }

    async fn trashed_overview(
        &self,
        _ctx: &TenantCtx,
        _models: &[TrashedModel],
        _limit: i64,
    ) -> Result<Vec<(String, String)>> {
        Err(Error::internal(
            "the trash overview is not read inside a bulk transaction",
        ))
    }
}

/// Counts inside the transaction.
struct TxCounter(Shared);

#[async_trait::async_trait]
impl RecordCounter for TxCounter {
    async fn count(&self, _ctx: &TenantCtx, s: &Select) -> Result<i64> {
        let started = Instant::now();
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let rows = query(c, &count_sql(s)).await.map_err(map_db_error)?;
        observe("bulk.count", started);
        rows.first()
            .map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| Error::internal("count returned no row"))
    }
}

/// Aggregates inside the transaction.
struct TxAggregator(Shared);

#[async_trait::async_trait]
impl Aggregator for TxAggregator {
    async fn aggregate(&self, _ctx: &TenantCtx, a: &AggregateQuery) -> Result<String> {
        let started = Instant::now();
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let sql = aggregate_sql(a);
        // Not cached: the text varies with the request's functions and groups.
        let st = c.prepare(&sql.text).await.map_err(map_db_error)?;
        let rows = c.query(&st, &sql.refs()).await.map_err(map_db_error)?;
        observe("bulk.aggregate", started);
        Ok(rows_json(a, &rows))
    }

    async fn timezone_known(&self, _ctx: &TenantCtx, name: &str) -> Result<bool> {
        let slot = self.0.lock().await;
        let c = slot.0.as_ref().ok_or_else(finished)?;
        let st = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .await
            .map_err(map_db_error)?;
        let row = c.query_one(&st, &[&name]).await.map_err(map_db_error)?;
        Ok(row.get::<_, bool>(0))
    }
}
