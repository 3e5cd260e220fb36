//! Import (A8.3): an export (NDJSON stream or JSON document) applied to a tenant in ONE
//! transaction — describe changes (DDL) and records — under the tenant's import lock.
//!
//! The service reads lines in order (meta, model lines, record lines, optional end), applies
//! the model lines once the first non-model line arrives, validates each record line like a
//! create and hands bounded batches to the [`ImportTx`] (memory stays flat whatever the
//! import size; the body is read only as fast as batches are written). References are
//! checked once at the end against the final state; then sequences are synced and the
//! transaction commits (or, for a dry run, rolls back with up to 100 collected line errors).
//! No tracked entries or change events are written per record; the product has no event
//! outbox yet, so no per-model `import` event is emitted either.

mod lines;
mod options;
mod plan;
mod records;
mod report;
mod rows;

pub use lines::{ImportInput, LineSource};
pub use options::{ImportOptions, Strategy};

use crate::ident::{self, Ident, SYSTEM_MODELS};
use crate::ports::import::{ImportStore, ImportTx};
use crate::ports::records::Table;
use crate::{Error, ErrorCode, Result, TenantCtx};
use lines::{Parsed, Reader};
use plan::{Fault, PendingModel};
use records::ModelState;
use report::{LineError, Report, MAX_ERRORS};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Imports exports into the caller's tenant.
pub struct ImportService {
    store: Arc<dyn ImportStore>,
}

impl ImportService {
    pub fn new(store: Arc<dyn ImportStore>) -> Self {
        Self { store }
    }

    /// Sudo and the confirmation rule (8), checked before the body is read.
    pub fn check(&self, ctx: &TenantCtx, opts: &ImportOptions) -> Result<()> {
        if !ctx.is_sudo() {
            return Err(Error::msg(ErrorCode::AuthSudoRequired, "Import needs sudo"));
        }
        if opts.strategy == Strategy::Replace && !opts.dry_run && !opts.confirm {
            return Err(Error::msg(
                ErrorCode::ValidationConfirmationRequired,
                "strategy=replace purges records and drops fields: add confirm=true (or dry_run=true)",
            )
            .with_data(json!({"strategy": "replace", "param": "confirm"})));
        }
        Ok(())
    }

    /// Runs the import; returns the report (A8.3).
    pub async fn import(
        &self,
        ctx: &TenantCtx,
        opts: &ImportOptions,
        input: ImportInput,
    ) -> Result<Value> {
        self.check(ctx, opts)?;
        let tx = self.store.begin(ctx).await?;
        let mut run = Run::new(opts, ctx.schema.clone(), tx);
        let mut reader = Reader::new(input);
        let outcome = run.go(&mut reader).await;
        let Run {
            tx,
            report,
            mut errors,
            meta,
            describe_changed,
            ..
        } = run;
        match outcome {
            Err(Halt::Fatal(e)) => {
                // Rolled back now, so the lock is free for the caller's next attempt (a
                // dropped connection would release it only once the server notices).
                let _ = tx.rollback().await;
                Err(e)
            }
            Ok(()) | Err(Halt::Full) => {
                // Batch and reference errors are found after later lines: report in line order.
                errors.sort_by_key(|e| e.line);
                if opts.dry_run {
                    tx.rollback().await?;
                } else {
                    tx.commit(describe_changed).await?;
                }
                Ok(report.to_json(opts.dry_run, opts.strategy.as_str(), meta, &errors))
            }
        }
    }
}

/// Why reading stopped early.
enum Halt {
    /// A real import's first invalid line, or an infrastructure failure.
    Fatal(Error),
    /// A dry run collected the most errors it reports.
    Full,
}

#[derive(PartialEq, Eq)]
enum Phase {
    Start,
    Models,
    Records,
    Ended,
}

struct Run<'a> {
    opts: &'a ImportOptions,
    schema: Ident,
    tx: Box<dyn ImportTx>,
    phase: Phase,
    meta: Value,
    meta_models: Vec<String>,
    pending: Vec<PendingModel>,
    applied: bool,
    describe_changed: bool,
    model_lines: u64,
    record_lines: u64,
    users: HashSet<uuid::Uuid>,
    states: HashMap<String, ModelState>,
    /// Model whose batch is open (record lines usually come model by model).
    current: Option<String>,
    fresh: HashSet<String>,
    report: Report,
    errors: Vec<LineError>,
}

impl<'a> Run<'a> {
    fn new(opts: &'a ImportOptions, schema: Ident, tx: Box<dyn ImportTx>) -> Self {
        Run {
            opts,
            schema,
            tx,
            phase: Phase::Start,
            meta: Value::Null,
            meta_models: Vec::new(),
            pending: Vec::new(),
            applied: false,
            describe_changed: false,
            model_lines: 0,
            record_lines: 0,
            users: HashSet::new(),
            states: HashMap::new(),
            current: None,
            fresh: HashSet::new(),
            report: Report::default(),
            errors: Vec::new(),
        }
    }

    fn selected(&self, name: &str) -> bool {
        self.opts
            .models
            .as_ref()
            .is_none_or(|l| l.iter().any(|m| m == name))
    }

    /// A fault: a real import stops; a dry run collects it (up to [`MAX_ERRORS`]).
    fn fault(&mut self, f: Fault) -> std::result::Result<(), Halt> {
        match f {
            Fault::Fatal(e) => Err(Halt::Fatal(e)),
            Fault::Line(le) if !self.opts.dry_run => Err(Halt::Fatal(le.into_error())),
            Fault::Line(le) => {
                self.errors.push(le);
                if self.errors.len() >= MAX_ERRORS {
                    Err(Halt::Full)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn line_fault(&mut self, le: LineError) -> std::result::Result<(), Halt> {
        self.fault(Fault::Line(le))
    }

    async fn go(&mut self, reader: &mut Reader) -> std::result::Result<(), Halt> {
        while let Some(line) = reader.next().await.map_err(Halt::Fatal)? {
            let no = line.no;
            match line.value {
                Ok(Parsed::Other(v)) => self.line(no, v).await?,
                Ok(Parsed::Record { model, data }) => self.record(no, model, data).await?,
                Err(msg) => self.line_fault(LineError::new(no, "json", msg))?,
            }
        }
        self.finish().await
    }

    /// Where a line may not appear: before the meta line, or after the end line.
    fn misplaced(&mut self, no: u64, v: Option<&Value>) -> Option<std::result::Result<(), Halt>> {
        if self.phase == Phase::Start {
            self.phase = Phase::Models;
            let null = Value::Null;
            return Some(self.meta_line(no, v.unwrap_or(&null)));
        }
        if self.phase == Phase::Ended {
            return Some(self.line_fault(LineError::new(
                no,
                "order",
                "no line may follow the end line",
            )));
        }
        None
    }

    async fn record(
        &mut self,
        no: u64,
        model: Option<Value>,
        data: lines::RecordData,
    ) -> std::result::Result<(), Halt> {
        if let Some(r) = self.misplaced(no, None) {
            return r;
        }
        self.record_lines += 1;
        self.apply_models().await?;
        self.phase = Phase::Records;
        self.record_line(no, model, data).await
    }

    async fn line(&mut self, no: u64, v: Value) -> std::result::Result<(), Halt> {
        if let Some(r) = self.misplaced(no, Some(&v)) {
            return r;
        }
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "model" => self.model_line(no, &v),
            "end" => {
                self.apply_models().await?;
                self.phase = Phase::Ended;
                let m = v.get("models").and_then(Value::as_u64);
                let r = v.get("records").and_then(Value::as_u64);
                if m != Some(self.model_lines) || r != Some(self.record_lines) {
                    return self.line_fault(LineError::new(
                        no,
                        "end_count",
                        format!(
                            "the end line counts do not match the stream ({} model lines, {} record lines)",
                            self.model_lines, self.record_lines
                        ),
                    ));
                }
                Ok(())
            }
            "meta" => self.line_fault(LineError::new(no, "order", "meta must be line 1 only")),
            _ => self.line_fault(LineError::new(
                no,
                "type",
                "a line's type must be meta, model, record or end",
            )),
        }
    }

    fn meta_line(&mut self, no: u64, v: &Value) -> std::result::Result<(), Halt> {
        let ok = v.get("type").and_then(Value::as_str) == Some("meta")
            && v.get("format").and_then(Value::as_str) == Some("abbotik-export")
            && v.get("version").and_then(Value::as_u64) == Some(1);
        let pick = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        self.meta = json!({"format": pick("format"), "version": pick("version"),
            "tenant": pick("tenant"), "exported_at": pick("exported_at")});
        if let Some(Value::Array(ms)) = v.get("models") {
            self.meta_models = ms
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if ok {
            Ok(())
        } else {
            self.line_fault(LineError::new(
                no,
                "meta",
                "line 1 must be {\"type\":\"meta\",\"format\":\"abbotik-export\",\"version\":1,…}",
            ))
        }
    }

    fn system_fault(no: u64, name: &str) -> Fault {
        Fault::Line(LineError::from_error(
            no,
            "system_model",
            Error::msg(
                ErrorCode::ModelSystemProtected,
                format!("System model {} cannot be imported", ident::clip(name)),
            )
            .with_data(json!({ "model": ident::clip(name) })),
        ))
    }

    fn model_line(&mut self, no: u64, v: &Value) -> std::result::Result<(), Halt> {
        if self.phase == Phase::Records {
            return self.line_fault(LineError::new(
                no,
                "order",
                "model lines must come before record lines",
            ));
        }
        self.model_lines += 1;
        let model = v.get("model");
        let name = model
            .and_then(|m| m.get("model_name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !self.opts.describe || !self.selected(name) || name == "filters" {
            return Ok(());
        }
        if SYSTEM_MODELS.contains(&name) {
            return self.fault(Self::system_fault(no, name));
        }
        match plan::parse(no, model) {
            Ok(p) => {
                self.pending.push(p);
                Ok(())
            }
            Err(le) => self.line_fault(le),
        }
    }

    /// Once, before the first record (or at the end): purges for `replace`, then the
    /// describe part, then the relationship targets.
    async fn apply_models(&mut self) -> std::result::Result<(), Halt> {
        if self.applied {
            return Ok(());
        }
        self.applied = true;
        self.users = self.tx.user_ids().await.map_err(Halt::Fatal)?;
        if self.opts.strategy == Strategy::Replace && self.opts.data {
            let mut names: Vec<String> = self
                .pending
                .iter()
                .map(|p| p.name.as_str().to_owned())
                .collect();
            names.extend(self.meta_models.iter().cloned());
            let mut seen = HashSet::new();
            for n in names {
                if !seen.insert(n.clone()) || !self.selected(&n) {
                    continue;
                }
                let Some(id) = ident::model_ref(&n) else {
                    continue;
                };
                if SYSTEM_MODELS.contains(&n.as_str()) && n != "filters" {
                    continue;
                }
                if self
                    .tx
                    .load_model(&id)
                    .await
                    .map_err(Halt::Fatal)?
                    .is_none()
                {
                    continue;
                }
                let t = Table {
                    schema: self.schema.clone(),
                    name: id,
                };
                let gone = self.tx.purge(&t).await.map_err(Halt::Fatal)?;
                self.report.model(&n).records_deleted = gone;
                self.fresh.insert(n);
            }
        }
        let pending = std::mem::take(&mut self.pending);
        let mut applied = Vec::with_capacity(pending.len());
        for p in pending {
            let guard = self.opts.dry_run;
            if guard {
                self.tx.savepoint().await.map_err(Halt::Fatal)?;
            }
            let r = plan::apply(self.tx.as_mut(), self.opts.strategy, &p, &mut self.report).await;
            match r {
                Ok(changed) => {
                    if guard {
                        self.tx.release(true).await.map_err(Halt::Fatal)?;
                    }
                    self.describe_changed |= changed;
                    if self.report.model(p.name.as_str()).action == "create" {
                        self.fresh.insert(p.name.as_str().to_owned());
                    }
                    applied.push(p);
                }
                Err(f) => {
                    if guard {
                        self.tx.release(false).await.map_err(Halt::Fatal)?;
                    }
                    self.fault(f)?;
                }
            }
        }
        if let Err(f) = plan::check_targets(self.tx.as_mut(), &applied).await {
            self.fault(f)?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> std::result::Result<(), Halt> {
        if self.phase == Phase::Start {
            return self.line_fault(LineError::new(
                1,
                "meta",
                "the import is empty: line 1 must be the meta line",
            ));
        }
        self.apply_models().await?;
        self.close_current().await?;
        self.check_references().await?;
        self.sync_sequences().await?;
        Ok(())
    }
}
