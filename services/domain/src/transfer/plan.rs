//! The describe part of an import (A8.3 strategy table): model lines become model and field
//! changes with the same rules as describe writes ([`crate::describe::rules`]), applied inside
//! the import transaction. Relationship targets are checked after every model line is
//! applied, so models may reference each other in any order.

use super::report::{LineError, Report};
use super::Strategy;
use crate::describe::body::{self, ModelPatch};
use crate::describe::rules;
use crate::ident::{self, Ident};
use crate::model::{FieldDef, ModelDef};
use crate::ports::import::ImportTx;
use crate::time::Ts;
use crate::{Error, ErrorCode};
use serde_json::Value;

/// A parsed model line waiting to be applied.
pub(super) struct PendingModel {
    pub line: u64,
    pub name: Ident,
    pub patch: ModelPatch,
}

/// Parses the `model` object of a model line (name rules, then the describe body rules).
pub(super) fn parse(line: u64, model: Option<&Value>) -> Result<PendingModel, LineError> {
    let name = model
        .and_then(|m| m.get("model_name"))
        .and_then(Value::as_str)
        .ok_or_else(|| LineError::new(line, "describe", "model line without model.model_name"))?;
    let id = ident::model_name(name).map_err(|e| LineError::from_error(line, "describe", e))?;
    let patch =
        body::parse_model(model, true).map_err(|e| LineError::from_error(line, "describe", e))?;
    Ok(PendingModel {
        line,
        name: id,
        patch,
    })
}

/// Whether two definitions differ in a property describe shows (timestamps ignored).
fn differs(a: &FieldDef, b: &FieldDef) -> bool {
    let strip = |f: &FieldDef| {
        let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("created_at");
            o.remove("updated_at");
        }
        v
    };
    strip(a) != strip(b)
}

fn model_props_differ(m: &ModelDef, p: &ModelPatch) -> ModelDef {
    let mut n = m.clone();
    if let Some(s) = &p.status {
        n.status = s.clone();
    }
    p.description.apply(&mut n.description);
    for (dst, v) in [
        (&mut n.sudo, p.sudo),
        (&mut n.frozen, p.frozen),
        (&mut n.immutable, p.immutable),
        (&mut n.external, p.external),
        (&mut n.passthrough, p.passthrough),
    ] {
        if let Some(v) = v {
            *dst = v;
        }
    }
    n
}

fn same_props(a: &ModelDef, b: &ModelDef) -> bool {
    a.status == b.status
        && a.description == b.description
        && a.sudo == b.sudo
        && a.frozen == b.frozen
        && a.immutable == b.immutable
        && a.external == b.external
        && a.passthrough == b.passthrough
}

/// Applies one model line. Errors are infrastructure errors (`Err(Ok(e))`) or the line's
/// fault (`Err(Err(line error))`).
pub(super) async fn apply(
    tx: &mut dyn ImportTx,
    strategy: Strategy,
    p: &PendingModel,
    report: &mut Report,
) -> Result<bool, Fault> {
    let line = p.line;
    let bad = |e: Error| Fault::at(line, "describe", e);
    let name = p.name.as_str();
    let mut fields: Vec<FieldDef> = Vec::new();
    for fp in p.patch.fields.iter().flatten() {
        let fname = fp.field_name.as_deref().unwrap_or_default();
        let fid = ident::field_name(fname).map_err(bad)?;
        if fields.iter().any(|f| f.field_name == fname) {
            return Err(bad(Error::msg(
                ErrorCode::FieldExists,
                format!("Field {fname} appears twice in model {name}"),
            )));
        }
        fields.push(rules::new_field(name, &fid, fp).map_err(bad)?);
    }
    let existing = tx.load_model(&p.name).await.map_err(Fault::Fatal)?;
    let Some(old) = existing else {
        let now = Ts::now();
        let mut m = ModelDef::active(name, fields);
        m = model_props_differ(&m, &p.patch);
        m.created_at = now;
        m.updated_at = now;
        tx.create_model(&m).await.map_err(bad)?;
        let r = report.model(name);
        r.action = "create";
        r.fields_created = m.fields.iter().map(|f| f.field_name.clone()).collect();
        return Ok(true);
    };
    if old.is_system() {
        return Err(Fault::Line(LineError::from_error(
            line,
            "system_model",
            Error::msg(
                ErrorCode::ModelSystemProtected,
                format!("System model {name} cannot be imported"),
            )
            .with_data(serde_json::json!({ "model": name })),
        )));
    }
    let mut changed = false;
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut dropped = Vec::new();
    let overwrite = matches!(strategy, Strategy::Upsert | Strategy::Replace);
    if overwrite {
        let n = model_props_differ(&old, &p.patch);
        if !same_props(&n, &old) {
            tx.update_model(&n).await.map_err(bad)?;
            changed = true;
        }
    }
    for (f, fp) in fields.iter().zip(p.patch.fields.iter().flatten()) {
        match old.field(&f.field_name) {
            None => {
                tx.add_field(&p.name, f).await.map_err(bad)?;
                created.push(f.field_name.clone());
            }
            Some(cur) if overwrite => {
                if let Some(t) = fp.field_type {
                    rules::check_type_change(cur.field_type, t).map_err(bad)?;
                }
                let new = rules::check(rules::merge(cur, fp)).map_err(bad)?;
                if differs(cur, &new) {
                    tx.alter_field(&p.name, cur, &new).await.map_err(bad)?;
                    updated.push(f.field_name.clone());
                }
            }
            Some(_) => {}
        }
    }
    if strategy == Strategy::Replace {
        for cur in &old.fields {
            if !fields.iter().any(|f| f.field_name == cur.field_name) {
                tx.drop_field(&p.name, cur).await.map_err(bad)?;
                dropped.push(cur.field_name.clone());
            }
        }
    }
    changed |= !created.is_empty() || !updated.is_empty() || !dropped.is_empty();
    let r = report.model(name);
    if changed {
        r.action = "update";
    }
    r.fields_created = created;
    r.fields_updated = updated;
    r.fields_dropped = dropped;
    Ok(changed)
}

/// Every relationship field of the applied models must target an existing model.
pub(super) async fn check_targets(
    tx: &mut dyn ImportTx,
    applied: &[PendingModel],
) -> Result<(), Fault> {
    for p in applied {
        let Some(m) = tx.load_model(&p.name).await.map_err(Fault::Fatal)? else {
            continue;
        };
        for f in &m.fields {
            let Some(target) = &f.related_model else {
                continue;
            };
            let exists = match ident::model_ref(target) {
                Some(t) => tx.load_model(&t).await.map_err(Fault::Fatal)?.is_some(),
                None => false,
            };
            if !exists {
                return Err(Fault::Line(LineError::from_error(
                    p.line,
                    "describe",
                    body::relationship(
                        "related_model",
                        format!(
                            "related_model {} of {}.{} does not exist",
                            ident::clip(target),
                            m.model_name,
                            f.field_name
                        ),
                    ),
                )));
            }
        }
    }
    Ok(())
}

/// Why a step stopped: the line's fault, or the infrastructure's.
pub(super) enum Fault {
    Line(LineError),
    Fatal(Error),
}

impl Fault {
    /// An error met while handling `line`: unexpected failures stay fatal (500/503).
    pub fn at(line: u64, reason: &'static str, e: Error) -> Fault {
        match e.code {
            ErrorCode::Internal | ErrorCode::ServiceUnavailable => Fault::Fatal(e),
            _ => Fault::Line(LineError::from_error(line, reason, e)),
        }
    }
}
