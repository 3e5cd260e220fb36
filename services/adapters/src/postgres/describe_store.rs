//! The describe store: reads of a tenant's `models`/`fields` metadata and the describe write
//! transaction (A4). DDL text comes from [`super::ddl`]; metadata values are always bound.

use super::ddl;
use super::ddl::map_db_error;
use super::Db;
use abbotik_domain::ident::Ident;
use abbotik_domain::model::{
    FieldDef, FieldIndexes, FieldType, ModelDef, RelationshipType, Transform,
};
use abbotik_domain::ports::describe::{DescribeStore, DescribeTx};
use abbotik_domain::time::Ts;
use abbotik_domain::{Error, Result, TenantCtx};
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use serde_json::Value;
use tokio_postgres::Client;
use uuid::Uuid;

/// Describe metadata over PostgreSQL.
pub struct PgDescribeStore {
    db: Db,
}

impl PgDescribeStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const MODEL_COLS: &str = "model_name, status, description, sudo, frozen, immutable, external, \
     passthrough, created_at, updated_at";

const FIELD_COLS: &str = "model_name, field_name, type, required, default_value, description, \
     minimum::text, maximum::text, pattern, enum_values, is_array, immutable, sudo, \"unique\", \
     \"index\", searchable, tracked, transform, relationship_type, related_model, related_field, \
     relationship_name, cascade_delete, created_at, updated_at, unique_index, btree_index, \
     search_index, relationship_index";

fn ts(d: DateTime<Utc>) -> Ts {
    Ts(d)
}

fn number(s: Option<String>) -> Option<serde_json::Number> {
    s.and_then(|s| serde_json::from_str::<serde_json::Number>(&s).ok())
}

fn field_from_row(r: &tokio_postgres::Row) -> Result<FieldDef> {
    let ty: String = r.get(2);
    let field_type = FieldType::parse(&ty)
        .ok_or_else(|| Error::internal(format!("unknown stored type {ty}")))?;
    let enum_values: Option<Value> = r.get(9);
    let enum_values = enum_values.and_then(|v| match v {
        Value::Array(a) => Some(
            a.into_iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    });
    let transform: Option<String> = r.get(17);
    let rel: Option<String> = r.get(18);
    Ok(FieldDef {
        model_name: r.get(0),
        field_name: r.get(1),
        field_type,
        required: r.get(3),
        default_value: r.get(4),
        description: r.get(5),
        minimum: number(r.get(6)),
        maximum: number(r.get(7)),
        pattern: r.get(8),
        enum_values,
        is_array: field_type.is_array(),
        immutable: r.get(11),
        sudo: r.get(12),
        unique: r.get(13),
        index: r.get(14),
        searchable: r.get(15),
        tracked: r.get(16),
        transform: transform.as_deref().and_then(Transform::parse),
        relationship_type: rel.as_deref().and_then(RelationshipType::parse),
        related_model: r.get(19),
        related_field: r.get(20),
        relationship_name: r.get(21),
        cascade_delete: r.get(22),
        created_at: ts(r.get(23)),
        updated_at: ts(r.get(24)),
        indexes: FieldIndexes {
            unique: r.get(25),
            index: r.get(26),
            search: r.get(27),
            relationship: r.get(28),
        },
    })
}

/// Loads one model with its fields (definition order) through any client or transaction.
pub(super) async fn load_model(
    c: &Client,
    schema: &Ident,
    model: &Ident,
) -> Result<Option<ModelDef>> {
    let s = schema.quoted();
    let row = c
        .query_opt(
            &format!("SELECT {MODEL_COLS} FROM {s}.\"models\" WHERE model_name = $1 AND deleted_at IS NULL"),
            &[&model.as_str()],
        )
        .await
        .map_err(map_db_error)?;
    let Some(row) = row else { return Ok(None) };
    let rows = c
        .query(
            &format!(
                "SELECT {FIELD_COLS} FROM {s}.\"fields\" WHERE model_name = $1 AND deleted_at IS NULL \
                 ORDER BY ordinal, created_at, field_name"
            ),
            &[&model.as_str()],
        )
        .await
        .map_err(map_db_error)?;
    let fields = rows
        .iter()
        .map(field_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ModelDef {
        model_name: row.get(0),
        status: row.get(1),
        description: row.get(2),
        sudo: row.get(3),
        frozen: row.get(4),
        immutable: row.get(5),
        external: row.get(6),
        passthrough: row.get(7),
        created_at: ts(row.get(8)),
        updated_at: ts(row.get(9)),
        fields,
    }))
}

async fn targeting(c: &Client, schema: &Ident, parent: &Ident) -> Result<Vec<FieldDef>> {
    let s = schema.quoted();
    let rows = c
        .query(
            &format!(
                "SELECT {FIELD_COLS} FROM {s}.\"fields\" WHERE related_model = $1 AND deleted_at IS NULL \
                 ORDER BY model_name, ordinal"
            ),
            &[&parent.as_str()],
        )
        .await
        .map_err(map_db_error)?;
    rows.iter().map(field_from_row).collect()
}

#[async_trait::async_trait]
impl DescribeStore for PgDescribeStore {
    async fn model_names(&self, ctx: &TenantCtx) -> Result<Vec<String>> {
        let c = self.db.conn().await?;
        let s = ctx.schema.quoted();
        let rows = c
            .query(
                &format!("SELECT model_name FROM {s}.\"models\" WHERE deleted_at IS NULL ORDER BY model_name COLLATE \"C\""),
                &[],
            )
            .await
            .map_err(map_db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn load_model(&self, ctx: &TenantCtx, model: &Ident) -> Result<Option<ModelDef>> {
        let c = self.db.conn().await?;
        load_model(&c, &ctx.schema, model).await
    }

    async fn fields_targeting(
        &self,
        ctx: &TenantCtx,
        parent: &Ident,
    ) -> Result<Vec<(String, String)>> {
        let c = self.db.conn().await?;
        Ok(targeting(&c, &ctx.schema, parent)
            .await?
            .into_iter()
            .map(|f| (f.model_name, f.field_name))
            .collect())
    }

    async fn begin(&self, ctx: &TenantCtx) -> Result<Box<dyn DescribeTx>> {
        let c = self.db.conn().await?;
        // DDL on a large table (a unique index, a type change) may outlast the request
        // statement timeout; a describe write gets a longer bound of its own.
        c.batch_execute("BEGIN; SET LOCAL statement_timeout = '300s'")
            .await
            .map_err(map_db_error)?;
        let mut tx = PgDescribeTx {
            conn: Some(c),
            schema: ctx.schema.clone(),
            tenant_id: ctx.tenant_id,
        };
        lock_describe(tx.client()?, ctx.tenant_id).await?;
        Ok(Box::new(tx))
    }
}

/// Locks the tenant's control row until the transaction ends: describe writes (and imports,
/// which change models too) of one tenant are serialized; readers of the row are not blocked.
pub(super) async fn lock_describe(c: &Object, tenant_id: Uuid) -> Result<()> {
    c.query_opt(
        "SELECT 1 FROM abbotik_control.tenants WHERE id = $1 FOR UPDATE",
        &[&tenant_id],
    )
    .await
    .map_err(map_db_error)?;
    Ok(())
}

/// An open describe transaction on a dedicated pooled connection (`BEGIN` issued manually, so
/// the connection can be owned). If dropped before commit, the connection is detached from
/// the pool and closed, which rolls the transaction back server-side.
pub struct PgDescribeTx {
    conn: Option<Object>,
    schema: Ident,
    tenant_id: Uuid,
}

impl Drop for PgDescribeTx {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // Never return a connection with an open transaction to the pool.
            drop(Object::take(c));
        }
    }
}

impl PgDescribeTx {
    fn client(&mut self) -> Result<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("describe transaction already finished"))
    }
}

#[async_trait::async_trait]
impl DescribeTx for PgDescribeTx {
    async fn load_model(&mut self, model: &Ident) -> Result<Option<ModelDef>> {
        let schema = self.schema.clone();
        let c = self.client()?;
        load_model(c, &schema, model).await
    }

    async fn fields_targeting(&mut self, parent: &Ident) -> Result<Vec<FieldDef>> {
        let schema = self.schema.clone();
        let c = self.client()?;
        targeting(c, &schema, parent).await
    }

    async fn create_model(&mut self, model: &ModelDef) -> Result<()> {
        let schema = self.schema.clone();
        ddl::create_model(self.client()?, &schema, model).await
    }

    async fn update_model(&mut self, model: &ModelDef) -> Result<()> {
        let schema = self.schema.clone();
        ddl::update_model(self.client()?, &schema, model).await
    }

    async fn drop_model(&mut self, model: &Ident) -> Result<()> {
        let schema = self.schema.clone();
        ddl::drop_model(self.client()?, &schema, model).await
    }

    async fn add_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()> {
        let schema = self.schema.clone();
        ddl::add_field(self.client()?, &schema, model, field).await
    }

    async fn alter_field(&mut self, model: &Ident, old: &FieldDef, new: &FieldDef) -> Result<()> {
        let schema = self.schema.clone();
        super::ddl_alter::alter_field(self.client()?, &schema, model, old, new).await
    }

    async fn drop_field(&mut self, model: &Ident, field: &FieldDef) -> Result<()> {
        let schema = self.schema.clone();
        ddl::drop_field(self.client()?, &schema, model, field).await
    }

    async fn commit(mut self: Box<Self>) -> Result<i64> {
        let tenant_id = self.tenant_id;
        let c = self.client()?;
        let row = c
            .query_one(
                "UPDATE abbotik_control.tenants SET meta_version = meta_version + 1 WHERE id = $1 \
                 RETURNING meta_version",
                &[&tenant_id],
            )
            .await
            .map_err(map_db_error)?;
        c.batch_execute("COMMIT").await.map_err(map_db_error)?;
        // Committed: the connection is clean and may go back to the pool.
        drop(self.conn.take());
        Ok(row.get(0))
    }
}
