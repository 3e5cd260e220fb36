//! The describe port: reading model metadata and applying describe writes (A4) in one
//! transaction. The Postgres adapter renders the DDL; the domain decides what changes.

use crate::ident::Ident;
use crate::model::{FieldDef, ModelDef};
use crate::{Result, TenantCtx};

/// Reads of a tenant's model metadata (autocommit), and the start of a describe write.
#[async_trait::async_trait]
pub trait DescribeStore: Send + Sync {
    /// Every model name of the tenant, system models included, sorted.
    async fn model_names(&self, ctx: &TenantCtx) -> Result<Vec<String>>;
    /// The model with its fields in definition order; `None` when there is no such model.
    async fn load_model(&self, ctx: &TenantCtx, model: &Ident) -> Result<Option<ModelDef>>;
    /// Fields of any model whose `related_model` is `parent`, as `(child model, field name)`.
    async fn fields_targeting(
        &self,
        ctx: &TenantCtx,
        parent: &Ident,
    ) -> Result<Vec<(String, String)>>;
    /// Opens one describe write transaction. Describe writes of a tenant are serialized
    /// (the tenant's control row is locked until commit or drop).
    async fn begin(&self, ctx: &TenantCtx) -> Result<Box<dyn DescribeTx>>;
}

/// One describe write. Dropping it without [`DescribeTx::commit`] rolls everything back.
#[async_trait::async_trait]
pub trait DescribeTx: Send {
    /// The model as seen inside this transaction.
    async fn load_model(&mut self, model: &Ident) -> Result<Option<ModelDef>>;
    /// Fields of any model whose `related_model` is `parent` (inside this transaction).
    async fn fields_targeting(&mut self, parent: &Ident) -> Result<Vec<FieldDef>>;
    /// Inserts the metadata rows and creates the table with one column per field and
    /// their indexes. `model.fields` are in definition order.
    async fn create_model(&mut self, model: &ModelDef) -> Result<()>;
    /// Updates the model row's properties (metadata only).
    async fn update_model(&mut self, model: &ModelDef) -> Result<()>;
    /// Drops the table and removes its field rows, saved filters and tracked entries.
    async fn drop_model(&mut self, model: &Ident) -> Result<()>;
    /// Adds a column (and its indexes) plus the field row, after the existing fields.
    async fn add_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()>;
    /// Applies the difference `old` → `new` to the column, indexes and field row.
    /// Existing rows that prevent it → `FIELD_CHANGE_CONFLICT` (`data.reason`, `data.sample_ids`).
    async fn alter_field(&mut self, model: &Ident, old: &FieldDef, new: &FieldDef) -> Result<()>;
    /// Drops the column (its indexes go with it) and the field row.
    async fn drop_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()>;
    /// Bumps the tenant's `meta_version` and commits; returns the new version.
    async fn commit(self: Box<Self>) -> Result<i64>;
}
