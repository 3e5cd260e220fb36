//! Data (A5, A10, A12): records of a model — list, get, create (object or array, upsert),
//! merge updates, soft delete and purge, owned relationships, the trash and stat.
//!
//! The service checks permissions ([`access`]), parses query options ([`query`]) and `where`
//! ([`filter`]), validates bodies ([`validate`]) and hands one [`Write`] per request to the
//! [`RecordStore`], which runs it in one transaction and renders records as JSON text.
//! Record ACLs (A11) and tracked history (A9) come later: access follows the role alone.

pub mod access;
mod aggregate;
mod bulk;
pub use aggregate::parse_body as parse_aggregate_body;
pub mod bulk_export;
pub mod export;
mod fast_read;
pub mod filter;
mod find;
pub mod gate;
pub mod query;
mod records;
mod relations;
mod trash;
pub mod validate;
pub mod values;

use crate::describe::DescribeService;
use crate::ident::{self, Ident};
use crate::model::{FieldType, ModelDef};
use crate::ports::records::{
    CascadeStep, Column, Doc, Outcome, Problem, RecordCounter, RecordStore, RefCheck, Table,
    UniqueIndex,
};
use crate::{Error, ErrorCode, Result, TenantCtx};
use serde_json::{json, Value};
use std::sync::Arc;

pub use aggregate::AggregateParams;
pub use fast_read::Bearer;
pub use query::ReadOptions;
pub use relations::RelPath;

/// Most cascade steps followed from one model (guards self-referencing trees).
const MAX_CASCADE_STEPS: usize = 32;
const MAX_CASCADE_DEPTH: usize = 8;

/// Record reads and writes.
pub struct DataService {
    store: Arc<dyn RecordStore>,
    describe: Arc<DescribeService>,
    /// Totals of find (A6.1); without one, `count` answers 503.
    counter: Option<Arc<dyn RecordCounter>>,
    /// Per-tenant concurrency of find and list queries (A6.6); none = unbounded.
    gate: Option<Arc<gate::QueryGate>>,
    /// Aggregates (A7); without one, `/api/aggregate` answers 503.
    aggregator: Option<Arc<dyn crate::ports::aggregate::Aggregator>>,
    /// Transactions of `POST /api/bulk` (A8.1); without one, bulk answers 503.
    unit: Option<Arc<dyn crate::ports::unit::UnitOfWork>>,
}

/// A rendered answer: JSON text of `data` (records straight from the database).
pub type Raw = String;

impl DataService {
    pub fn new(store: Arc<dyn RecordStore>, describe: Arc<DescribeService>) -> Self {
        Self {
            store,
            describe,
            counter: None,
            gate: None,
            aggregator: None,
            unit: None,
        }
    }

    /// With units of work (one transaction per bulk request, A8.1).
    pub fn with_unit_of_work(mut self, u: Arc<dyn crate::ports::unit::UnitOfWork>) -> Self {
        self.unit = Some(u);
        self
    }

    /// The same service over the stores of one open transaction: every method then reads
    /// and writes inside it, with the same rules. No query gate (the caller holds a slot)
    /// and no nested units of work.
    pub(crate) fn within(&self, tx: &dyn crate::ports::unit::RecordTx) -> DataService {
        DataService {
            store: tx.records(),
            describe: self.describe.clone(),
            counter: Some(tx.counter()),
            gate: None,
            aggregator: Some(tx.aggregator()),
            unit: None,
        }
    }

    /// With the aggregate runner (A7).
    pub fn with_aggregator(mut self, a: Arc<dyn crate::ports::aggregate::Aggregator>) -> Self {
        self.aggregator = Some(a);
        self
    }

    /// With the per-tenant query gate (A6.6).
    pub fn with_query_gate(mut self, gate: gate::QueryGate) -> Self {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// A query slot of the caller's tenant (held while the permit lives).
    pub(crate) async fn query_slot(
        &self,
        ctx: &TenantCtx,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
        match &self.gate {
            Some(g) => g.enter(ctx.tenant_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// With the counter of find totals.
    pub fn with_counter(mut self, counter: Arc<dyn RecordCounter>) -> Self {
        self.counter = Some(counter);
        self
    }

    async fn model(&self, ctx: &TenantCtx, name: &str) -> Result<Arc<ModelDef>> {
        self.describe.model(ctx, name).await
    }

    /// `cascade_delete` children of `model`, breadth first (A4.4).
    async fn cascade_plan(&self, ctx: &TenantCtx, model: &ModelDef) -> Result<Vec<CascadeStep>> {
        let mut steps: Vec<CascadeStep> = Vec::new();
        let mut frontier: Vec<(Option<usize>, String)> = vec![(None, model.model_name.clone())];
        for _ in 0..MAX_CASCADE_DEPTH {
            let mut next = Vec::new();
            for (parent, name) in frontier {
                for (child, fk) in self.describe.cascade_children(ctx, &name).await?.iter() {
                    if steps.len() >= MAX_CASCADE_STEPS {
                        return Ok(steps);
                    }
                    steps.push(CascadeStep {
                        table: table(ctx, child),
                        fk: Ident::trusted(fk.field_name.clone()),
                        parent,
                    });
                    next.push((Some(steps.len() - 1), child.model_name.clone()));
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(steps)
    }
}

/// The table of a model.
pub(crate) fn table(ctx: &TenantCtx, model: &ModelDef) -> Table {
    Table {
        schema: ctx.schema.clone(),
        name: Ident::trusted(model.model_name.clone()),
    }
}

/// User columns that take input (every field but `bigserial`).
pub(crate) fn writable_columns(model: &ModelDef) -> Vec<Column> {
    model
        .fields
        .iter()
        .filter(|f| f.field_type != FieldType::Bigserial)
        .map(|f| Column {
            name: Ident::trusted(f.field_name.clone()),
            ty: f.field_type,
        })
        .collect()
}

pub(crate) fn immutable_columns(model: &ModelDef) -> Vec<Column> {
    model
        .fields
        .iter()
        .filter(|f| f.immutable && f.field_type != FieldType::Bigserial)
        .map(|f| Column {
            name: Ident::trusted(f.field_name.clone()),
            ty: f.field_type,
        })
        .collect()
}

/// Relationship fields and the parent tables they must reference.
pub(crate) fn ref_checks(ctx: &TenantCtx, model: &ModelDef) -> Vec<RefCheck> {
    model
        .fields
        .iter()
        .filter(|f| f.relationship_type.is_some())
        .filter_map(|f| {
            let parent = ident::model_ref(f.related_model.as_deref()?)?;
            Some(RefCheck {
                column: Ident::trusted(f.field_name.clone()),
                parent: Table {
                    schema: ctx.schema.clone(),
                    name: parent,
                },
            })
        })
        .collect()
}

/// Unique index names of the model's fields (A4.5).
pub(crate) fn unique_indexes(model: &ModelDef) -> Vec<UniqueIndex> {
    let mut out: Vec<UniqueIndex> = model
        .fields
        .iter()
        .filter_map(|f| {
            Some(UniqueIndex {
                index: f.indexes.unique.clone()?,
                field: f.field_name.clone(),
            })
        })
        .collect();
    if model.model_name == "filters" {
        out.push(UniqueIndex {
            index: "filters_name_uq".into(),
            field: "name".into(),
        });
    }
    out
}

/// `[row,row]` from rendered rows.
pub(crate) fn join(rows: &[String]) -> String {
    let len = rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2;
    let mut s = String::with_capacity(len);
    s.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(r);
    }
    s.push(']');
    s
}

/// `404 RECORD_NOT_FOUND` naming the model and id.
pub(crate) fn record_not_found(model: &str, id: &str) -> Error {
    Error::msg(
        ErrorCode::RecordNotFound,
        format!("Record not found: {model}/{}", ident::clip(id)),
    )
    .with_data(json!({ "model": model, "id": ident::clip(id) }))
}

/// Parses a record id from a path or body; a malformed id names no record.
pub(crate) fn parse_id(model: &str, s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|_| record_not_found(model, s))
}

/// The request position of the document holding `value` in `field` (for unique violations):
/// with several, the second (the first is the one that collided with it).
fn doc_index(docs: &[Doc], field: &str, value: Option<&str>) -> Option<i64> {
    let value = value?;
    let hits: Vec<i64> = docs
        .iter()
        .filter(|d| {
            d.values
                .get(field)
                .is_some_and(|v| values::sql_text(v) == value)
        })
        .map(|d| d.ord)
        .collect();
    match hits.as_slice() {
        [] => None,
        [one] => Some(*one),
        [_, second, ..] => Some(*second),
    }
}

/// The contract error for the problems of a write (the most specific first).
pub(crate) fn problems_error(model: &str, docs: &[Doc], problems: &[Problem]) -> Error {
    let rank = |p: &Problem| match p {
        Problem::NotFound { .. } | Problem::NotInTrash { .. } => 0,
        Problem::Trashed { .. } => 1,
        Problem::Exists { .. } => 2,
        Problem::Immutable { .. } => 3,
        Problem::Reference { .. } => 4,
        Problem::Unique { .. } => 5,
    };
    let Some(p) = problems.iter().min_by_key(|p| rank(p)) else {
        return Error::internal("write reported no rows and no problem");
    };
    match p {
        Problem::NotFound { id, .. } => record_not_found(model, &id.to_string()),
        Problem::NotInTrash { id, .. } => Error::msg(
            ErrorCode::RecordNotFound,
            format!("Record not in the trash: {model}/{id}"),
        )
        .with_data(json!({ "model": model, "id": id })),
        Problem::Trashed { id, .. } => Error::msg(
            ErrorCode::RecordTrashed,
            format!("Record is in the trash: {model}/{id}"),
        )
        .with_data(json!({ "model": model, "id": id })),
        Problem::Exists { ord, id } => Error::msg(
            ErrorCode::RecordExists,
            format!("Record already exists: {model}/{id}"),
        )
        .with_data(json!({ "model": model, "id": id, "index": ord })),
        Problem::Immutable { ord, field } => Error::msg(
            ErrorCode::FieldImmutable,
            format!("Field {field} is immutable and already has a value"),
        )
        .with_data(json!({ "model": model, "field": field, "index": ord })),
        Problem::Reference { field, value } => Error::msg(
            ErrorCode::RecordReferenceInvalid,
            format!("{field} references no live record: {value}"),
        )
        .with_data(json!({ "model": model, "field": field, "value": value })),
        Problem::Unique { field, value } => {
            let mut data = json!({ "model": model });
            if let Some(f) = field {
                data["field"] = json!(f);
                if let Some(i) = doc_index(docs, f, value.as_deref()) {
                    data["index"] = json!(i);
                }
            }
            let msg = match field {
                Some(f) => format!("Value of {f} is already used by another record"),
                None => "A value is already used by another record".to_owned(),
            };
            Error::msg(ErrorCode::RecordUniqueViolation, msg).with_data(data)
        }
    }
}

/// Rows of an outcome in request order, or the problems as an error.
pub(crate) fn rows(model: &str, docs: &[Doc], out: Outcome) -> Result<Vec<String>> {
    match out {
        Outcome::Rows(mut r) => {
            r.sort_by_key(|(ord, _)| *ord);
            Ok(r.into_iter().map(|(_, s)| s).collect())
        }
        Outcome::Problems(p) => Err(problems_error(model, docs, &p)),
    }
}

/// `VALIDATION_BODY_NOT_OBJECT` for an array item (`data.index`) or the whole body.
pub(crate) fn not_object(index: Option<usize>) -> Error {
    let e = Error::msg(
        ErrorCode::ValidationBodyNotObject,
        "Each record must be a JSON object",
    );
    match index {
        Some(i) => e.with_data(json!({ "index": i })),
        None => e,
    }
}

/// Ids of a `["id",…]` or `[{"id":…},…]` body (DELETE, trash restore/purge).
pub(crate) fn id_list(model: &str, body: &Value) -> Result<Vec<(i64, uuid::Uuid)>> {
    let Some(items) = body.as_array() else {
        return Err(Error::msg(
            ErrorCode::ValidationBodyNotArray,
            "Body must be an array of ids or of {\"id\":…} objects",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = match item {
            Value::String(s) => s.as_str(),
            Value::Object(o) => match o.get("id") {
                Some(Value::String(s)) => s.as_str(),
                _ => {
                    return Err(
                        Error::field_missing("id").with_data(json!({ "field": "id", "index": i }))
                    )
                }
            },
            _ => {
                return Err(Error::field_invalid("id", "a UUID string or {\"id\":…}")
                    .with_data(json!({ "field": "id", "index": i })))
            }
        };
        out.push((i as i64, parse_id(model, s)?));
    }
    Ok(out)
}
