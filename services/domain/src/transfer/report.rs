//! The import report (A8.3) and line errors: one failing line becomes `400
//! VALIDATION_IMPORT_INVALID` (`data.line`, `data.reason`) — or `403 MODEL_SYSTEM_PROTECTED`
//! with the line — in a real import, and an entry of `errors` in a dry run.

use crate::{Error, ErrorCode};
use serde_json::{json, Map, Value};

/// Most line errors a dry run collects.
pub(super) const MAX_ERRORS: usize = 100;

/// One invalid line.
#[derive(Debug, Clone)]
pub(super) struct LineError {
    pub line: u64,
    /// The code of the underlying problem (`VALIDATION_ERROR`, `MODEL_SYSTEM_PROTECTED`, …).
    pub code: ErrorCode,
    /// Short machine-readable kind: `json`, `meta`, `order`, `describe`, `validation`, …
    pub reason: &'static str,
    pub message: String,
    /// Context of the underlying error (field errors, model name).
    pub data: Option<Value>,
}

impl LineError {
    pub fn new(line: u64, reason: &'static str, message: impl Into<String>) -> LineError {
        LineError {
            line,
            code: ErrorCode::ValidationImportInvalid,
            reason,
            message: message.into(),
            data: None,
        }
    }

    /// A domain error raised while handling a line.
    pub fn from_error(line: u64, reason: &'static str, e: Error) -> LineError {
        LineError {
            line,
            code: e.code,
            reason,
            message: e.message.unwrap_or_else(|| e.code.as_str().to_owned()),
            data: e.data,
        }
    }

    /// The error of a real import, which stops at this line.
    pub fn into_error(self) -> Error {
        if self.code == ErrorCode::ModelSystemProtected {
            let mut d = match self.data {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            d.insert("line".into(), json!(self.line));
            d.insert("reason".into(), json!(self.reason));
            return Error::msg(
                ErrorCode::ModelSystemProtected,
                format!("Import line {}: {}", self.line, self.message),
            )
            .with_data(Value::Object(d));
        }
        let mut d = Map::new();
        d.insert("line".into(), json!(self.line));
        d.insert("reason".into(), json!(self.reason));
        if self.code != ErrorCode::ValidationImportInvalid {
            d.insert("code".into(), json!(self.code.as_str()));
        }
        d.insert("message".into(), json!(self.message));
        if let Some(Value::Object(extra)) = self.data {
            for (k, v) in extra {
                d.entry(k).or_insert(v);
            }
        }
        Error::msg(
            ErrorCode::ValidationImportInvalid,
            format!(
                "Import line {} is invalid: {}; nothing was imported",
                self.line, self.message
            ),
        )
        .with_data(Value::Object(d))
    }

    /// The entry of a dry run's `errors`.
    pub fn entry(&self) -> Value {
        json!({"line": self.line, "code": self.code.as_str(), "message": self.message})
    }
}

/// What happened to one model.
#[derive(Debug, Default, Clone)]
pub(super) struct ModelReport {
    pub name: String,
    /// `create`, `update` (describe changed), `unchanged`.
    pub action: &'static str,
    pub fields_created: Vec<String>,
    pub fields_updated: Vec<String>,
    pub fields_dropped: Vec<String>,
    pub records_created: u64,
    pub records_updated: u64,
    pub records_deleted: u64,
    pub records_skipped: u64,
}

/// The whole report.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub models: Vec<ModelReport>,
    pub acl_entries_dropped: u64,
}

impl Report {
    /// The entry of `name`, created (`unchanged`) on first use.
    pub fn model(&mut self, name: &str) -> &mut ModelReport {
        let i = match self.models.iter().position(|m| m.name == name) {
            Some(i) => i,
            None => {
                self.models.push(ModelReport {
                    name: name.to_owned(),
                    action: "unchanged",
                    ..Default::default()
                });
                self.models.len() - 1
            }
        };
        &mut self.models[i]
    }

    pub fn to_json(
        &self,
        dry_run: bool,
        strategy: &str,
        meta: Value,
        errors: &[LineError],
    ) -> Value {
        let sum = |f: fn(&ModelReport) -> u64| self.models.iter().map(f).sum::<u64>();
        let stats = json!({
            "models_created": self.models.iter().filter(|m| m.action == "create").count(),
            "models_updated": self.models.iter().filter(|m| m.action == "update").count(),
            "fields_created": sum(|m| m.fields_created.len() as u64),
            "fields_updated": sum(|m| m.fields_updated.len() as u64),
            "fields_dropped": sum(|m| m.fields_dropped.len() as u64),
            "records_created": sum(|m| m.records_created),
            "records_updated": sum(|m| m.records_updated),
            "records_deleted": sum(|m| m.records_deleted),
            "records_skipped": sum(|m| m.records_skipped),
            "acl_entries_dropped": self.acl_entries_dropped,
        });
        let models: Vec<Value> = self
            .models
            .iter()
            .map(|m| {
                json!({"model_name": m.name, "action": m.action,
                    "fields_created": m.fields_created, "fields_updated": m.fields_updated,
                    "fields_dropped": m.fields_dropped, "records_created": m.records_created,
                    "records_updated": m.records_updated, "records_deleted": m.records_deleted,
                    "records_skipped": m.records_skipped})
            })
            .collect();
        json!({"dry_run": dry_run, "strategy": strategy, "meta": meta, "stats": stats,
            "models": models, "errors": errors.iter().map(LineError::entry).collect::<Vec<_>>()})
    }
}
