//! The import store (A8.3): one transaction on one owned pooled connection (manual `BEGIN`,
//! as the describe transaction) holding the tenant's import lock — a transaction-scoped
//! advisory lock, so it is released by commit, rollback or a dropped connection, and holds
//! across pods. Describe changes reuse the describe DDL ([`super::ddl`]); records are loaded
//! with `COPY` (straight into an empty table, else into a temporary staging table followed
//! by one `UPDATE` and one `INSERT … SELECT` per batch). Each staged batch runs under a
//! savepoint, so a failed batch is undone alone and its first faulty line can be found.

use super::ddl::{self, map_db_error};
use super::describe_store::load_model;
use super::import_copy as q;
use super::Db;
use abbotik_domain::ident::Ident;
use abbotik_domain::model::{FieldDef, ModelDef};
use abbotik_domain::ports::import::{
    Applied, BatchError, ImportRow, ImportStore, ImportTable, ImportTx, LoadMode,
};
use abbotik_domain::ports::records::Table;
use abbotik_domain::{Error, ErrorCode, Result, TenantCtx};
use bytes::BytesMut;
use deadpool_postgres::Object;
use futures::SinkExt;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use tokio_postgres::error::SqlState;
use tokio_postgres::CopyInSink;
use uuid::Uuid;

/// Imports over PostgreSQL.
pub struct PgImportStore {
    db: Db,
}

impl PgImportStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl ImportStore for PgImportStore {
    async fn begin(&self, ctx: &TenantCtx) -> Result<Box<dyn ImportTx>> {
        let c = self.db.conn().await?;
        // A large import runs far past the request statement timeout; a client (or pod) that
        // stalls mid-stream for five minutes loses the transaction and with it the lock.
        c.batch_execute(
            "BEGIN; SET LOCAL statement_timeout = '3600s'; \
             SET LOCAL idle_in_transaction_session_timeout = '300s'",
        )
        .await
        .map_err(map_db_error)?;
        let tx = PgImportTx {
            conn: Some(c),
            schema: ctx.schema.clone(),
            tenant_id: ctx.tenant_id,
            copy: None,
            stages: HashMap::new(),
            savepoints: 0,
            buf: BytesMut::new(),
        };
        let got: bool = tx
            .client()?
            .query_one(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('abbotik-import:' || $1::uuid::text, 0))",
                &[&ctx.tenant_id],
            )
            .await
            .map_err(map_db_error)?
            .get(0);
        if !got {
            return Err(Error::msg(
                ErrorCode::TenantImportInProgress,
                "Another import is running for this tenant",
            )
            .with_data(json!({"tenant": ctx.tenant.as_str()})));
        }
        // Serializes with describe writes of the tenant.
        super::describe_store::lock_describe(tx.client()?, ctx.tenant_id).await?;
        Ok(Box::new(tx))
    }
}

/// A direct `COPY` kept open across batches of one model.
struct OpenCopy {
    table: String,
    sink: Pin<Box<CopyInSink<bytes::Bytes>>>,
}

/// An open import transaction. Dropped before commit: the connection is detached from the
/// pool and closed, which rolls everything back server-side.
pub struct PgImportTx {
    conn: Option<Object>,
    schema: Ident,
    tenant_id: Uuid,
    copy: Option<OpenCopy>,
    /// Staging table per target (`pg_temp."_imp_<n>"`).
    stages: HashMap<String, String>,
    savepoints: u32,
    /// COPY text of the batch being sent; its allocation is reused once the driver has
    /// written the previous batch (no fresh large buffer per batch).
    buf: BytesMut,
}

impl Drop for PgImportTx {
    fn drop(&mut self) {
        self.copy.take();
        if let Some(c) = self.conn.take() {
            drop(Object::take(c));
        }
    }
}

/// A failed batch: constraint problems are the lines' fault; anything else is not.
fn batch_error(e: tokio_postgres::Error) -> BatchError {
    let Some(db) = e.as_db_error() else {
        return BatchError {
            line: None,
            reason: "internal",
            error: map_db_error(e),
        };
    };
    let code = db.code().clone();
    let (reason, error) = if code == SqlState::UNIQUE_VIOLATION {
        let detail = db.detail().unwrap_or_default();
        if db.constraint().unwrap_or_default().ends_with("_pkey") {
            (
                "duplicate_id",
                Error::msg(
                    ErrorCode::RecordExists,
                    "A record id appears twice in the import",
                ),
            )
        } else {
            let shown = detail
                .strip_prefix("Key ")
                .and_then(|d| d.strip_suffix(" already exists."))
                .unwrap_or("a unique field value");
            (
                "unique",
                Error::msg(
                    ErrorCode::RecordUniqueViolation,
                    format!("{shown} is already used by another record"),
                ),
            )
        }
    } else if code == SqlState::NOT_NULL_VIOLATION {
        let col = db.column().unwrap_or("a required field");
        (
            "validation",
            Error::msg(ErrorCode::ValidationError, format!("{col} is required")),
        )
    } else if code.code().starts_with("22") || code == SqlState::CHECK_VIOLATION {
        (
            "validation",
            Error::msg(
                ErrorCode::ValidationError,
                format!("a value was refused by the database: {}", db.message()),
            ),
        )
    } else {
        return BatchError {
            line: None,
            reason: "internal",
            error: map_db_error(e),
        };
    };
    BatchError {
        line: None,
        reason,
        error,
    }
}

fn fatal(e: Error) -> BatchError {
    BatchError {
        line: None,
        reason: "internal",
        error: e,
    }
}

/// The unique column named in a violation's detail (`Key (col)=(…) already exists.`).
fn detail_column(e: &tokio_postgres::Error) -> Option<String> {
    let d = e.as_db_error()?.detail()?;
    let rest = d.strip_prefix("Key (")?;
    let col = &rest[..rest.find(')')?];
    abbotik_domain::ident::column_ref(col).map(|i| i.as_str().to_owned())
}

impl PgImportTx {
    fn client(&self) -> Result<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("import transaction already finished"))
    }

    async fn exec(&self, sql: &str) -> Result<()> {
        self.client()?
            .batch_execute(sql)
            .await
            .map_err(map_db_error)
    }

    /// Ends a direct `COPY`: released on success, rolled back to its savepoint on failure.
    async fn end_copy(&mut self) -> std::result::Result<(), BatchError> {
        let Some(mut open) = self.copy.take() else {
            return Ok(());
        };
        match open.sink.as_mut().finish().await {
            Ok(_) => {
                self.exec("RELEASE SAVEPOINT imp_direct")
                    .await
                    .map_err(fatal)?;
                Ok(())
            }
            Err(e) => {
                self.exec("ROLLBACK TO SAVEPOINT imp_direct; RELEASE SAVEPOINT imp_direct")
                    .await
                    .map_err(fatal)?;
                Err(batch_error(e))
            }
        }
    }

    async fn direct(
        &mut self,
        t: &ImportTable,
        rows: &[ImportRow],
    ) -> std::result::Result<Applied, BatchError> {
        let key = q::target(t);
        if self.copy.as_ref().is_some_and(|c| c.table != key) {
            self.end_copy().await?;
        }
        if self.copy.is_none() {
            self.exec("SAVEPOINT imp_direct").await.map_err(fatal)?;
            let sink = self
                .client()
                .map_err(fatal)?
                .copy_in::<_, bytes::Bytes>(&q::copy_direct(t))
                .await
                .map_err(batch_error)?;
            self.copy = Some(OpenCopy {
                table: key,
                sink: Box::pin(sink),
            });
        }
        q::render(&mut self.buf, t, rows, false);
        let data = self.buf.split().freeze();
        let sent = match self.copy.as_mut() {
            Some(open) => open.sink.as_mut().send(data).await,
            None => return Err(fatal(Error::internal("copy not open"))),
        };
        if let Err(e) = sent {
            // The stream failed: end it to learn why and undo its rows.
            self.copy.take();
            self.exec("ROLLBACK TO SAVEPOINT imp_direct; RELEASE SAVEPOINT imp_direct")
                .await
                .map_err(fatal)?;
            return Err(batch_error(e));
        }
        Ok(Applied {
            created: rows.len() as u64,
            ..Applied::default()
        })
    }

    async fn staged(
        &mut self,
        t: &ImportTable,
        mode: LoadMode,
        rows: &[ImportRow],
    ) -> std::result::Result<Applied, BatchError> {
        self.end_copy().await?;
        let key = q::target(t);
        let stage = match self.stages.get(&key) {
            Some(s) => {
                let s = s.clone();
                self.exec(&format!("TRUNCATE {s}")).await.map_err(fatal)?;
                s
            }
            None => {
                let s = format!("pg_temp.\"_imp_{}\"", self.stages.len());
                self.exec(&q::create_staging(t, &s)).await.map_err(fatal)?;
                self.stages.insert(key.clone(), s.clone());
                s
            }
        };
        let c = self.client().map_err(fatal)?;
        let sink = c
            .copy_in::<_, bytes::Bytes>(&q::copy_staged(t, &stage))
            .await
            .map_err(batch_error)?;
        let mut sink = Box::pin(sink);
        q::render(&mut self.buf, t, rows, true);
        let data = self.buf.split().freeze();
        sink.as_mut().send(data).await.map_err(batch_error)?;
        sink.as_mut().finish().await.map_err(batch_error)?;
        self.exec("SAVEPOINT imp_batch").await.map_err(fatal)?;
        let res = self.apply_stage(t, &stage, mode, rows.len() as u64).await;
        match res {
            Ok(a) => {
                self.exec("RELEASE SAVEPOINT imp_batch")
                    .await
                    .map_err(fatal)?;
                Ok(a)
            }
            Err((mut be, col)) => {
                self.exec("ROLLBACK TO SAVEPOINT imp_batch; RELEASE SAVEPOINT imp_batch")
                    .await
                    .map_err(fatal)?;
                if be.line.is_none() {
                    if let Some(col) = col {
                        let row = self
                            .client()
                            .map_err(fatal)?
                            .query_one(&q::unique_line_sql(t, &stage, &col), &[])
                            .await
                            .map_err(|e| fatal(map_db_error(e)))?;
                        be.line = row.get::<_, Option<i64>>(0).map(|l| l as u64);
                    }
                }
                Err(be)
            }
        }
    }

    async fn apply_stage(
        &self,
        t: &ImportTable,
        stage: &str,
        mode: LoadMode,
        n: u64,
    ) -> std::result::Result<Applied, (BatchError, Option<String>)> {
        let c = self.client().map_err(|e| (fatal(e), None))?;
        let fail = |e: tokio_postgres::Error| {
            let col = detail_column(&e);
            (batch_error(e), col)
        };
        let mut a = Applied::default();
        if mode != LoadMode::Skip {
            a.updated = c
                .execute(&q::update_sql(t, stage, mode), &[])
                .await
                .map_err(fail)?;
        }
        if mode == LoadMode::Merge {
            let row = c
                .query_one(&q::missing_required_sql(t, stage), &[])
                .await
                .map_err(fail)?;
            if let Some(line) = row.get::<_, Option<i64>>(0) {
                return Err((
                    BatchError {
                        line: Some(line as u64),
                        reason: "validation",
                        error: Error::msg(
                            ErrorCode::ValidationError,
                            "a required field is missing and there is no record to merge into",
                        ),
                    },
                    None,
                ));
            }
        }
        let seq = ddl::quote_literal(&q::target(t)).map_err(|e| (fatal(e), None))?;
        a.created = c
            .execute(&q::insert_sql(t, stage, &seq), &[])
            .await
            .map_err(fail)?;
        a.skipped = n.saturating_sub(a.created + a.updated);
        Ok(a)
    }
}

#[async_trait::async_trait]
impl ImportTx for PgImportTx {
    async fn load_model(&mut self, model: &Ident) -> Result<Option<ModelDef>> {
        load_model(self.client()?, &self.schema, model).await
    }

    async fn create_model(&mut self, model: &ModelDef) -> Result<()> {
        ddl::create_model(self.client()?, &self.schema, model).await
    }

    async fn update_model(&mut self, model: &ModelDef) -> Result<()> {
        ddl::update_model(self.client()?, &self.schema, model).await
    }

    async fn add_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()> {
        ddl::add_field(self.client()?, &self.schema, model, field).await
    }

    async fn alter_field(&mut self, model: &Ident, old: &FieldDef, new: &FieldDef) -> Result<()> {
        super::ddl_alter::alter_field(self.client()?, &self.schema, model, old, new).await
    }

    async fn drop_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()> {
        ddl::drop_field(self.client()?, &self.schema, model, field).await
    }

    async fn user_ids(&mut self) -> Result<HashSet<Uuid>> {
        let sql = format!(
            "SELECT id FROM {}.\"users\" WHERE deleted_at IS NULL",
            self.schema.quoted()
        );
        let rows = self
            .client()?
            .query(&sql, &[])
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn purge(&mut self, table: &Table) -> Result<u64> {
        let t = format!("{}.{}", table.schema.quoted(), table.name.quoted());
        let row = self
            .client()?
            .query_one(
                &format!(
                    "WITH d AS (DELETE FROM {t} RETURNING deleted_at) \
                     SELECT count(*) FILTER (WHERE deleted_at IS NULL) FROM d"
                ),
                &[],
            )
            .await
            .map_err(map_db_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn is_empty(&mut self, table: &Table) -> Result<bool> {
        let t = format!("{}.{}", table.schema.quoted(), table.name.quoted());
        let row = self
            .client()?
            .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {t})"), &[])
            .await
            .map_err(map_db_error)?;
        Ok(row.get(0))
    }

    async fn load(
        &mut self,
        table: &ImportTable,
        mode: LoadMode,
        rows: &[ImportRow],
    ) -> std::result::Result<Applied, BatchError> {
        if rows.is_empty() {
            return Ok(Applied::default());
        }
        match mode {
            LoadMode::Direct => self.direct(table, rows).await,
            _ => self.staged(table, mode, rows).await,
        }
    }

    async fn flush(&mut self) -> std::result::Result<(), BatchError> {
        self.end_copy().await
    }

    async fn dangling(
        &mut self,
        table: &Table,
        field: &Ident,
        parent: &Table,
        limit: i64,
    ) -> Result<Vec<Uuid>> {
        self.end_copy().await.map_err(|b| b.error)?;
        let t = format!("{}.{}", table.schema.quoted(), table.name.quoted());
        let p = format!("{}.{}", parent.schema.quoted(), parent.name.quoted());
        let f = field.quoted();
        let rows = self
            .client()?
            .query(
                &format!(
                    "SELECT c.id FROM {t} c WHERE c.{f} IS NOT NULL AND c.deleted_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM {p} x WHERE x.id = c.{f} AND x.deleted_at IS NULL) \
                     LIMIT $1"
                ),
                &[&limit],
            )
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn sync_sequences(&mut self, table: &Table, columns: &[Ident]) -> Result<()> {
        let t = format!("{}.{}", table.schema.quoted(), table.name.quoted());
        let lit = ddl::quote_literal(&t)?;
        for c in columns {
            let col = c.quoted();
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence({lit}, '{name}'), \
                 GREATEST(COALESCE(max({col}), 0), 1), max({col}) IS NOT NULL) FROM {t}",
                name = c.as_str()
            );
            self.client()?
                .query_one(&sql, &[])
                .await
                .map_err(map_db_error)?;
        }
        Ok(())
    }

    async fn savepoint(&mut self) -> Result<()> {
        self.end_copy().await.map_err(|b| b.error)?;
        self.savepoints += 1;
        self.exec("SAVEPOINT imp_user").await
    }

    async fn release(&mut self, keep: bool) -> Result<()> {
        self.savepoints = self.savepoints.saturating_sub(1);
        if keep {
            self.exec("RELEASE SAVEPOINT imp_user").await
        } else {
            self.exec("ROLLBACK TO SAVEPOINT imp_user; RELEASE SAVEPOINT imp_user")
                .await
        }
    }

    async fn commit(mut self: Box<Self>, bump_meta: bool) -> Result<()> {
        self.end_copy().await.map_err(|b| b.error)?;
        if bump_meta {
            let id = self.tenant_id;
            self.client()?
                .execute(
                    "UPDATE abbotik_control.tenants SET meta_version = meta_version + 1 WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(map_db_error)?;
        }
        self.exec("COMMIT").await?;
        // Committed: the connection is clean and may go back to the pool.
        drop(self.conn.take());
        Ok(())
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        let _ = self.end_copy().await;
        if self.exec("ROLLBACK").await.is_ok() {
            drop(self.conn.take());
        }
        Ok(())
    }
}
