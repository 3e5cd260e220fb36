//! The record port (A5, A10, A12): reads and writes of records of one model table.
//!
//! The domain decides *what* happens (validated, normalised documents, a filter AST, the
//! projection, the cascade plan); the adapter renders it as SQL. Records come back as JSON
//! text rendered by the database (one object per row), so the hot paths never re-parse them.
//! Conditions a write discovers inside its transaction (missing id, trashed row, immutable
//! field, existing id, bad reference, unique index) are reported as [`Problem`]s and nothing
//! is written; the domain turns them into contract errors.

use crate::data::filter::Filter;
use crate::ident::Ident;
use crate::model::FieldType;
use crate::ports::auth::ResolvedIdentity;
use crate::{Result, TenantCtx};
use serde_json::Value;
use uuid::Uuid;

/// A column of a model table with its field type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    pub name: Ident,
    pub ty: FieldType,
}

/// `"<schema>"."<model>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Table {
    pub schema: Ident,
    pub name: Ident,
}

/// System columns in response order (A1.7). Names are fixed, never user text.
pub const STAT_COLUMNS: &[&str] = &["created_at", "updated_at", "trashed_at", "deleted_at"];
pub const ACCESS_COLUMNS: &[&str] = &["access_read", "access_edit", "access_full", "access_deny"];

/// Which columns a response shows: `id` always, then `user` fields in definition order, then
/// the listed system columns (a subset of [`STAT_COLUMNS`] and [`ACCESS_COLUMNS`], in order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Projection {
    pub user: Vec<Column>,
    pub system: Vec<&'static str>,
}

/// Trashed rows in a read (A5.1 `include_trashed`, A10 lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrashedScope {
    Exclude,
    Include,
    Only,
}

/// One sort key; `column` is a user or system column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderBy {
    pub column: Ident,
    pub desc: bool,
}

/// A read of records. Purged rows are never returned.
#[derive(Debug, Clone)]
pub struct Select {
    pub table: Table,
    pub projection: Projection,
    pub filter: Filter,
    pub trashed: TrashedScope,
    pub order: Vec<OrderBy>,
    pub limit: i64,
    pub offset: i64,
}

/// A relationship column whose value must name a live row of `parent` (A5.3).
#[derive(Debug, Clone)]
pub struct RefCheck {
    pub column: Ident,
    pub parent: Table,
}

/// Unique index name → field, to name the field of a unique violation (A4.5).
#[derive(Debug, Clone)]
pub struct UniqueIndex {
    pub index: String,
    pub field: String,
}

/// A normalised record document with its position in the request.
#[derive(Debug, Clone)]
pub struct Doc {
    pub ord: i64,
    pub id: Uuid,
    /// Object of user-field values, already coerced to their JSON form (A4.3).
    pub values: serde_json::Map<String, Value>,
}

/// Inserts of new records (ids chosen by the domain). Every writable column is written:
/// absent keys were filled with defaults by the domain, or are NULL.
#[derive(Debug, Clone)]
pub struct Insert {
    pub table: Table,
    pub columns: Vec<Column>,
    pub docs: Vec<Doc>,
}

/// Which rows an update or a life-cycle change touches.
#[derive(Debug, Clone)]
pub enum Target {
    /// Listed ids (with their request positions); each must exist within `scope`.
    Ids(Vec<(i64, Uuid)>),
    /// Every live row matching the filter (positions follow the default order).
    Filter(Filter),
}

/// A merge update: only keys present in a document change (A5.1).
#[derive(Debug, Clone)]
pub struct Update {
    pub table: Table,
    pub columns: Vec<Column>,
    /// For [`Target::Ids`] one document per id (same `ord`); for [`Target::Filter`] exactly
    /// one document applied to every matching row.
    pub docs: Vec<Doc>,
    pub target: Target,
    /// Extra restriction every target row must satisfy (e.g. the relationship key).
    pub scope: Filter,
    /// Immutable fields: a present key that would change a non-null value is a problem.
    pub immutable: Vec<Column>,
}

/// Trash, restore, purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifeOp {
    /// Live → trashed (`trashed_at = now()`); a trashed target is a problem.
    Trash,
    /// Trashed → live; a live target is "not in the trash".
    Restore,
    /// Trashed → purged (`deleted_at = now()`); a live target is "not in the trash".
    Purge,
    /// Live or trashed → trashed and purged in one step (`?permanent=true`).
    TrashPurge,
}

/// A child table reached by `cascade_delete` (A4.4). `parent` indexes an earlier step, or
/// `None` for the target table itself.
#[derive(Debug, Clone)]
pub struct CascadeStep {
    pub table: Table,
    pub fk: Ident,
    pub parent: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Life {
    pub table: Table,
    pub op: LifeOp,
    pub target: Target,
    pub scope: Filter,
    pub cascade: Vec<CascadeStep>,
    /// On restore: relationship columns whose parent must be live.
    pub restore_refs: Vec<RefCheck>,
}

/// One write step of a request; all steps of a request run in one transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Insert(Insert),
    Update(Update),
    Life(Life),
}

/// A write of one request.
#[derive(Debug, Clone)]
pub struct Write {
    pub ops: Vec<WriteOp>,
    /// Reference checks on the documents of every insert/update step.
    pub refs: Vec<RefCheck>,
    /// How the rows of the target table are rendered in the answer.
    pub projection: Projection,
    pub unique: Vec<UniqueIndex>,
}

/// Something the write found inside its transaction; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No live-or-trashed row with that id within the scope.
    NotFound { ord: i64, id: Uuid },
    /// The row is trashed (update, trash).
    Trashed { ord: i64, id: Uuid },
    /// Restore/purge of a row that is not in the trash.
    NotInTrash { ord: i64, id: Uuid },
    /// Create with an id that exists (live, trashed or purged).
    Exists { ord: i64, id: Uuid },
    /// An immutable field already has another value.
    Immutable { ord: i64, field: String },
    /// A relationship value that names no live parent.
    Reference { field: String, value: String },
    /// A unique index refused a value (`field` when the index is known).
    Unique {
        field: Option<String>,
        value: Option<String>,
    },
}

/// Result of a write: the rendered rows with their request positions, or the problems.
#[derive(Debug, Clone)]
pub enum Outcome {
    Rows(Vec<(i64, String)>),
    Problems(Vec<Problem>),
}

/// Rows of a streamed read (A5.4 export), rendered like [`RecordStore::select`] rows, in
/// order and in batches. An `Err` ends the stream; the producer stops (and releases its
/// connection) as soon as the receiver is dropped.
pub struct RowStream {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<String>>>,
}

impl RowStream {
    /// A stream fed by a producer task through a bounded channel (its backpressure).
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<Vec<String>>>) -> Self {
        Self { rx }
    }

    /// A stream of rows already in memory (stores without a cursor).
    pub fn from_rows(rows: Vec<String>) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        if !rows.is_empty() {
            // Capacity 1 and a fresh channel: this send cannot fail.
            let _ = tx.try_send(Ok(rows));
        }
        Self { rx }
    }

    /// The next batch; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Vec<String>>> {
        self.rx.recv().await
    }
}

/// Rows of several reads run in one snapshot (A8.2 bulk export), in read order and in
/// batches, each batch tagged with the index of its read. A read without rows sends nothing.
/// An `Err` ends the stream; the producer stops as soon as the receiver is dropped.
pub struct TaggedRowStream {
    rx: tokio::sync::mpsc::Receiver<Result<(usize, Vec<String>)>>,
}

impl TaggedRowStream {
    /// A stream fed by a producer task through a bounded channel (its backpressure).
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<(usize, Vec<String>)>>) -> Self {
        Self { rx }
    }

    /// The next batch with the index of its read; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<(usize, Vec<String>)>> {
        self.rx.recv().await
    }
}

/// A model with trashed rows for `GET /api/trashed`.
#[derive(Debug, Clone)]
pub struct TrashedModel {
    pub model: String,
    pub table: Table,
    pub projection: Projection,
}

/// What a guarded read saw: the identity (`None` when the tenant row is gone) and the row.
pub type Guarded = (Option<ResolvedIdentity>, Option<String>);

#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    /// Rendered rows of a read, in order.
    async fn select(&self, ctx: &TenantCtx, q: &Select) -> Result<Vec<String>>;
    /// A one-row read that resolves the caller's identity in the same statement (one round
    /// trip for the hottest route). `ctx` is provisional (from verified claims): it only
    /// addresses the tenant; the identity returned decides whether the row may be shown.
    /// `None` when the statement cannot run against that definition (table or schema gone):
    /// the caller takes the ordinary path.
    async fn select_one_guarded(&self, ctx: &TenantCtx, q: &Select) -> Result<Option<Guarded>>;
    /// The rows of a read as a stream (exports, A5.4): no row limit of its own and memory
    /// bounded by a few batches. The default buffers [`RecordStore::select`].
    async fn stream(&self, ctx: &TenantCtx, q: &Select) -> Result<RowStream> {
        Ok(RowStream::from_rows(self.select(ctx, q).await?))
    }
    /// The rows of several reads from one consistent snapshot (bulk export, A8.2), read after
    /// read, memory bounded by a few batches. The default buffers [`RecordStore::select`]
    /// (no common snapshot).
    async fn stream_snapshot(&self, ctx: &TenantCtx, qs: &[Select]) -> Result<TaggedRowStream> {
        let (tx, rx) = tokio::sync::mpsc::channel(qs.len().max(1));
        for (i, q) in qs.iter().enumerate() {
            let rows = self.select(ctx, q).await?;
            if !rows.is_empty() {
                // One message per read and capacity for all of them: cannot fail.
                let _ = tx.try_send(Ok((i, rows)));
            }
        }
        Ok(TaggedRowStream::new(rx))
    }
    /// Whether a row exists in `table` with that id (not purged) and the trash state allowed.
    async fn exists(
        &self,
        ctx: &TenantCtx,
        table: &Table,
        id: Uuid,
        trashed: TrashedScope,
    ) -> Result<bool>;
    /// Runs every step in one transaction (one statement when possible).
    async fn write(&self, ctx: &TenantCtx, w: &Write) -> Result<Outcome>;
    /// Up to `limit` trashed rows per model, as `(model, rendered row)`; one statement.
    async fn trashed_overview(
        &self,
        ctx: &TenantCtx,
        models: &[TrashedModel],
        limit: i64,
    ) -> Result<Vec<(String, String)>>;
}

/// Counts of reads (find `count`/`includeTotal`, A6.1): matches ignoring limit and offset.
#[async_trait::async_trait]
pub trait RecordCounter: Send + Sync {
    /// How many rows the read's table, trash scope and filter match.
    async fn count(&self, ctx: &TenantCtx, q: &Select) -> Result<i64>;
}
