//! The import port (A8.3): one transaction on one connection that holds the tenant's import
//! lock, applies describe changes (DDL + metadata, as [`super::describe::DescribeTx`] does)
//! and loads records in batches. The domain decides what to write; the adapter renders and
//! executes it. Dropping an [`ImportTx`] without [`ImportTx::commit`] rolls everything back.

use crate::ident::Ident;
use crate::model::{FieldDef, FieldType, ModelDef};
use crate::ports::records::Table;
use crate::{Result, TenantCtx};
use serde_json::Value;
use std::collections::HashSet;

/// Opens import transactions.
#[async_trait::async_trait]
pub trait ImportStore: Send + Sync {
    /// Begins the transaction and takes the tenant's import lock (held until commit or
    /// rollback, across pods); another import holding it → `409 TENANT_IMPORT_IN_PROGRESS`.
    async fn begin(&self, ctx: &TenantCtx) -> Result<Box<dyn ImportTx>>;
}

/// What a column of an imported record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Id,
    /// A user field (a `bigserial` one gets the next sequence value when absent).
    User,
    CreatedAt,
    UpdatedAt,
    TrashedAt,
    /// `access_read` … `access_deny`.
    Access,
}

/// One column of the load, in the order of [`ImportRow::cells`].
#[derive(Debug, Clone)]
pub struct ImportColumn {
    pub name: Ident,
    pub ty: FieldType,
    pub kind: ColumnKind,
}

/// Where the imported records of one model go.
#[derive(Debug, Clone)]
pub struct ImportTable {
    pub table: Table,
    pub columns: Vec<ImportColumn>,
}

/// One validated record line. `cells[i].1` is false when the line did not carry the key
/// (then the value is the default to insert, or null; system columns get their SQL default).
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub cells: Vec<(Value, bool)>,
    /// A required field is absent: valid only as a merge into an existing record.
    pub needs_existing: bool,
}

/// How a batch is written (A8.3 strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// The table is known empty and has no `bigserial` column: rows are streamed straight
    /// into it (one `COPY` per model, kept open across batches).
    Direct,
    /// Existing records: every column overwritten (absent system columns: defaults).
    Upsert,
    /// Existing records: only present keys written.
    Merge,
    /// Existing records left untouched.
    Skip,
}

/// Counts of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

/// A batch that could not be written: the first line at fault when it is known.
#[derive(Debug)]
pub struct BatchError {
    pub line: Option<u64>,
    pub reason: &'static str,
    pub error: crate::Error,
}

/// One import transaction.
#[async_trait::async_trait]
pub trait ImportTx: Send {
    /// The model as seen inside this transaction.
    async fn load_model(&mut self, model: &Ident) -> Result<Option<ModelDef>>;
    async fn create_model(&mut self, model: &ModelDef) -> Result<()>;
    async fn update_model(&mut self, model: &ModelDef) -> Result<()>;
    async fn add_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()>;
    async fn alter_field(&mut self, model: &Ident, old: &FieldDef, new: &FieldDef) -> Result<()>;
    async fn drop_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()>;
    /// Ids of the tenant's users (purged ones excluded).
    async fn user_ids(&mut self) -> Result<HashSet<uuid::Uuid>>;
    /// Physically deletes every row of the table; returns how many were not purged.
    async fn purge(&mut self, table: &Table) -> Result<u64>;
    /// Whether the table has no row at all (purged rows included).
    async fn is_empty(&mut self, table: &Table) -> Result<bool>;
    /// Writes one batch (rows in line order, ids unique within the batch).
    async fn load(
        &mut self,
        table: &ImportTable,
        mode: LoadMode,
        rows: &[ImportRow],
    ) -> std::result::Result<Applied, BatchError>;
    /// Ends a running direct load (errors of streamed rows surface here).
    async fn flush(&mut self) -> std::result::Result<(), BatchError>;
    /// Up to `limit` ids of non-purged rows of `table` whose `field` is set and names no
    /// non-purged row of `parent`.
    async fn dangling(
        &mut self,
        table: &Table,
        field: &Ident,
        parent: &Table,
        limit: i64,
    ) -> Result<Vec<uuid::Uuid>>;
    /// Sets each `bigserial` column's sequence to the column's maximum.
    async fn sync_sequences(&mut self, table: &Table, columns: &[Ident]) -> Result<()>;
    /// Marks a point to return to (dry runs keep going after a failed model line).
    async fn savepoint(&mut self) -> Result<()>;
    /// Forgets the mark (`keep`) or undoes everything since it.
    async fn release(&mut self, keep: bool) -> Result<()>;
    /// Commits; with `bump_meta` the tenant's `meta_version` is bumped in the same
    /// transaction (describe caches of every pod reload).
    async fn commit(self: Box<Self>, bump_meta: bool) -> Result<()>;
    /// Rolls back (dry runs).
    async fn rollback(self: Box<Self>) -> Result<()>;
}
