//! Export of a tenant (A8.2, `POST /api/bulk/export`): which models, in which order, the
//! `meta`/`model`/`record`/`end` lines of the `abbotik-export` format, and the one snapshot
//! read of every exported model's records.
//!
//! Records are read exactly like a list read of each model (same permission check, same
//! projection with every system field, default order `created_at, id`), without a row limit,
//! from one consistent snapshot ([`RecordStore::stream_snapshot`]). Rows arrive as the JSON
//! text PostgreSQL renders for the JSON API and are wrapped into lines without re-parsing.
//!
//! Model lines carry the describe model object with `fields`, without the metadata
//! timestamps (`created_at`/`updated_at` of models and fields): they are not imported, and an
//! export of an imported tenant is then identical to the original one (A8.2's example shows
//! the model line without them).
//!
//! [`RecordStore::stream_snapshot`]: crate::ports::records::RecordStore::stream_snapshot

mod order;
mod request;

pub use order::parents_first;
pub use request::ExportRequest;

use super::access::{self, Op};
use super::filter::Filter;
use super::query::ReadOptions;
use super::records::select_for;
use super::DataService;
use crate::model::ModelDef;
use crate::ports::records::{Select, TaggedRowStream, TrashedScope};
use crate::time::Ts;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `meta.format` of every export.
pub const FORMAT: &str = "abbotik-export";
/// `meta.version` of this line format.
pub const VERSION: u32 = 1;
/// The one system model an export may name (and an import accept, A8.3 rule 2).
pub const FILTERS: &str = "filters";

/// A started export: what goes before the records, and the records still to come.
pub struct BulkExport {
    /// The `meta` object (without `type`).
    pub meta: Map<String, Value>,
    /// Exported models in export order (parents first).
    pub models: Vec<String>,
    /// Model objects in export order; empty without `describe`.
    pub describe: Vec<Value>,
    /// Records of `models[i]` tagged `i`; `None` without `data`.
    pub rows: Option<TaggedRowStream>,
    /// The tenant's query slot (A6.6), held until the export is dropped: an export is a
    /// long list read, and holding its slot keeps one tenant's exports from taking every
    /// pooled connection of the pod.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl BulkExport {
    /// The `meta` line.
    pub fn meta_line(&self) -> String {
        let mut m = Map::with_capacity(self.meta.len() + 1);
        m.insert("type".into(), json!("meta"));
        m.extend(self.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        line(&Value::Object(m))
    }

    /// Every `model` line, in order.
    pub fn model_lines(&self) -> String {
        self.describe
            .iter()
            .map(|m| line(&json!({"type": "model", "model": m})))
            .collect()
    }
}

fn line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Appends the `record` line of a rendered row of `model` (a validated model name, so it
/// needs no escaping; the row is compact JSON whose strings have newlines escaped).
pub fn push_record_line(out: &mut Vec<u8>, model: &str, row: &str) {
    out.extend_from_slice(b"{\"type\":\"record\",\"model\":\"");
    out.extend_from_slice(model.as_bytes());
    out.extend_from_slice(b"\",\"data\":");
    out.extend_from_slice(row.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// The `end` line: how many `model` and `record` lines came before it.
pub fn end_line(models: usize, records: u64) -> String {
    line(&json!({"type": "end", "models": models, "records": records}))
}

/// The describe model object of a line: the `GET /api/describe/:model` object without the
/// metadata timestamps.
pub fn model_object(m: &ModelDef) -> Result<Value> {
    let mut v = serde_json::to_value(m).map_err(Error::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("created_at");
        o.remove("updated_at");
        if let Some(Value::Array(fields)) = o.get_mut("fields") {
            for f in fields.iter_mut().filter_map(Value::as_object_mut) {
                f.remove("created_at");
                f.remove("updated_at");
            }
        }
    }
    Ok(v)
}

fn protected(name: &str) -> Error {
    Error::msg(
        ErrorCode::ModelSystemProtected,
        format!("System model {name} cannot be exported (only {FILTERS} may be named)"),
    )
    .with_data(json!({ "model": name }))
}

impl DataService {
    /// The models of an export: the named ones (checked like a list read; system models
    /// other than `filters` → `403 MODEL_SYSTEM_PROTECTED`), or every non-system model the
    /// caller may read; parents first.
    async fn export_models(
        &self,
        ctx: &TenantCtx,
        req: &ExportRequest,
    ) -> Result<Vec<Arc<ModelDef>>> {
        let mut models: Vec<Arc<ModelDef>> = Vec::new();
        match &req.models {
            Some(names) => {
                for name in names {
                    let m = self.model(ctx, name).await?;
                    if m.is_system() && m.model_name != FILTERS {
                        return Err(protected(&m.model_name));
                    }
                    access::check(ctx, &m, Op::Read)?;
                    models.push(m);
                }
            }
            None => {
                for name in self.describe.list(ctx).await? {
                    let m = self.model(ctx, &name).await?;
                    if m.is_system() {
                        continue;
                    }
                    access::check(ctx, &m, Op::Read)?;
                    models.push(m);
                }
            }
        }
        // User models in dependency order, then `filters` (which references models by name
        // only) last.
        let (system, user): (Vec<_>, Vec<_>) = models.into_iter().partition(|m| m.is_system());
        let refs: Vec<&ModelDef> = user.iter().map(|m| m.as_ref()).collect();
        let mut out: Vec<Arc<ModelDef>> = parents_first(&refs)
            .into_iter()
            .map(|i| user[i].clone())
            .collect();
        out.extend(system);
        Ok(out)
    }

    /// Starts an export: checks the request and every model, then (with `data`) starts the
    /// snapshot read of every model's records. Errors of the read itself arrive through the
    /// stream.
    pub async fn bulk_export(&self, ctx: &TenantCtx, req: &ExportRequest) -> Result<BulkExport> {
        // Checked before anything else, so a `deny` caller learns nothing about models.
        if ctx.role < Role::Read {
            return Err(access::role_insufficient(Role::Read, ctx.role));
        }
        let models = self.export_models(ctx, req).await?;
        let names: Vec<String> = models.iter().map(|m| m.model_name.clone()).collect();
        let mut meta = Map::new();
        meta.insert("format".into(), json!(FORMAT));
        meta.insert("version".into(), json!(VERSION));
        meta.insert("tenant".into(), json!(ctx.tenant.as_str()));
        meta.insert("exported_at".into(), json!(Ts::now()));
        meta.insert("models".into(), json!(names));
        meta.insert("include".into(), json!(req.include_names()));
        let describe = if req.describe {
            models
                .iter()
                .map(|m| model_object(m))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let (rows, slot) = if req.data {
            let sels = models
                .iter()
                .map(|m| self.export_select(ctx, m, req.include_trashed))
                .collect::<Result<Vec<_>>>()?;
            let slot = self.query_slot(ctx).await?;
            (Some(self.store.stream_snapshot(ctx, &sels).await?), slot)
        } else {
            (None, None)
        };
        Ok(BulkExport {
            meta,
            models: names,
            describe,
            rows,
            slot,
        })
    }

    /// The list read of every record of `m` with all system fields, no row limit.
    fn export_select(&self, ctx: &TenantCtx, m: &ModelDef, trashed: bool) -> Result<Select> {
        let opts = ReadOptions {
            include_trashed: trashed,
            ..ReadOptions::new()
        };
        let scope = if trashed {
            TrashedScope::Include
        } else {
            TrashedScope::Exclude
        };
        let mut sel = select_for(ctx, m, &opts, scope, Filter::True)?;
        sel.limit = i64::MAX;
        Ok(sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FieldDef, FieldType};

    #[test]
    fn lines() {
        let mut out = Vec::new();
        push_record_line(&mut out, "orders", r#"{"id":"a","n":1}"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"record\",\"model\":\"orders\",\"data\":{\"id\":\"a\",\"n\":1}}\n"
        );
        assert_eq!(
            end_line(2, 1500),
            "{\"type\":\"end\",\"models\":2,\"records\":1500}\n"
        );
        let ex = BulkExport {
            meta: Map::from_iter([("format".to_owned(), json!(FORMAT))]),
            models: vec![],
            describe: vec![json!({"model_name": "a"})],
            rows: None,
            slot: None,
        };
        assert_eq!(
            ex.meta_line(),
            "{\"type\":\"meta\",\"format\":\"abbotik-export\"}\n"
        );
        assert_eq!(
            ex.model_lines(),
            "{\"type\":\"model\",\"model\":{\"model_name\":\"a\"}}\n"
        );
    }

    #[test]
    fn model_objects_drop_metadata_timestamps() {
        let m = ModelDef::active(
            "orders",
            vec![FieldDef::blank("orders", "n", FieldType::Integer)],
        );
        let v = model_object(&m).unwrap();
        assert!(v.get("created_at").is_none());
        assert!(v["fields"][0].get("updated_at").is_none());
        assert_eq!(v["fields"][0]["type"], "integer");
        assert_eq!(v["model_name"], "orders");
        assert_eq!(v["passthrough"], false);
    }
}
