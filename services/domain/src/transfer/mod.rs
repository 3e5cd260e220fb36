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
mod plan;
mod report;
mod rows;

pub use lines::{ImportInput, LineSource};

use crate::ident::{self, Ident, SYSTEM_MODELS};
use crate::model::{FieldType, ModelDef};
use crate::ports::import::{ImportStore, ImportTable, ImportTx, LoadMode};
use crate::ports::records::Table;
use crate::{Error, ErrorCode, Result, TenantCtx};
use lines::{Parsed, Reader};
use plan::{Fault, PendingModel};
use report::{LineError, Report, MAX_ERRORS};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Rows handed to the store at once: bounds memory while keeping statements few.
const BATCH_ROWS: usize = 4000;
/// Rows per send of a direct load: there is no statement per batch, and a small batch keeps
/// the allocator reusing the same warm memory instead of returning and refaulting pages.
const DIRECT_BATCH_ROWS: usize = 256;

/// Record ids are random: their low bytes are a good hash already (no SipHash per line).
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
}

type IdSet = HashSet<uuid::Uuid, std::hash::BuildHasherDefault<IdHasher>>;
type IdLines = HashMap<uuid::Uuid, u64, std::hash::BuildHasherDefault<IdHasher>>;

/// The strategies of A8.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Upsert,
    Merge,
    Replace,
    Skip,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "upsert" => Strategy::Upsert,
            "merge" => Strategy::Merge,
            "replace" => Strategy::Replace,
            "skip" => Strategy::Skip,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Upsert => "upsert",
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::Skip => "skip",
        }
    }
}

/// Query options of `POST /api/bulk/import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub strategy: Strategy,
    pub dry_run: bool,
    /// Import only these models (`models=a,b`); `None` = all.
    pub models: Option<Vec<String>>,
    pub describe: bool,
    pub data: bool,
    pub confirm: bool,
}

fn flag(get: &dyn Fn(&str) -> Option<String>, k: &str) -> Result<bool> {
    match get(k).as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("" | "true" | "1") => Ok(true),
        Some(_) => Err(Error::field_invalid(k, "true or false")),
    }
}

fn list(v: Option<String>) -> Option<Vec<String>> {
    let v = v?;
    let items: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

impl ImportOptions {
    /// From the query parameters (`get` returns a parameter's value).
    pub fn from_query(get: &dyn Fn(&str) -> Option<String>) -> Result<ImportOptions> {
        let strategy = match get("strategy").as_deref() {
            None | Some("") => Strategy::Upsert,
            Some(s) => Strategy::parse(s).ok_or_else(|| {
                Error::field_invalid("strategy", "one of upsert, merge, replace, skip")
            })?,
        };
        let (describe, data) = match list(get("include")) {
            None => (true, true),
            Some(items) => {
                let mut d = (false, false);
                for i in &items {
                    match i.as_str() {
                        "describe" => d.0 = true,
                        "data" => d.1 = true,
                        _ => return Err(Error::field_invalid("include", "describe and/or data")),
                    }
                }
                d
            }
        };
        Ok(ImportOptions {
            strategy,
            dry_run: flag(get, "dry_run")?,
            models: list(get("models")),
            describe,
            data,
            confirm: flag(get, "confirm")?,
        })
    }
}

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

/// Per imported model: its definition, layout, load mode and the open batch.
struct ModelState {
    def: ModelDef,
    table: ImportTable,
    index: rows::ColumnIndex,
    mode: LoadMode,
    batch: Vec<crate::ports::import::ImportRow>,
    batch_ids: IdSet,
    /// id → line, kept only for models with relationship fields (rule 1 reports lines).
    lines: Option<IdLines>,
    /// First line streamed by a direct load (the line reported when the stream fails).
    direct_first: Option<u64>,
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
        data: Option<Value>,
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

    async fn record_line(
        &mut self,
        no: u64,
        model: Option<Value>,
        data: Option<Value>,
    ) -> std::result::Result<(), Halt> {
        let Some(Value::String(name)) = model else {
            return self.line_fault(LineError::new(no, "record", "record line without model"));
        };
        let name = name.as_str();
        if !self.opts.data || !self.selected(name) {
            return Ok(());
        }
        if SYSTEM_MODELS.contains(&name) && name != "filters" {
            return self.fault(Self::system_fault(no, name));
        }
        let Some(Value::Object(data)) = data else {
            return self.line_fault(LineError::new(
                no,
                "record",
                "record line without a data object",
            ));
        };
        // Rule 5: purged records are never imported.
        if data.get("deleted_at").is_some_and(|d| !d.is_null()) {
            return Ok(());
        }
        let name = name.to_owned();
        if self.current.as_deref() != Some(name.as_str()) {
            self.close_current().await?;
        }
        if !self.states.contains_key(&name) {
            match self.init_state(no, &name).await? {
                Some(st) => {
                    self.states.insert(name.clone(), st);
                }
                None => return Ok(()),
            }
        }
        self.current = Some(name.clone());
        let merge = self.opts.strategy == Strategy::Merge;
        let Some(st) = self.states.get(&name) else {
            return Ok(());
        };
        let res = rows::row(&st.def, &st.table, &st.index, no, data, merge, &self.users);
        let (id, row) = match res {
            Ok((id, row, dropped)) => {
                self.report.acl_entries_dropped += dropped;
                (id, row)
            }
            Err(le) => {
                // Lines before this one are still unwritten: their batch goes first, so a
                // real import reports the earliest invalid line.
                if !self.opts.dry_run {
                    self.close_current().await?;
                }
                return self.line_fault(le);
            }
        };
        if row.needs_existing && st.mode == LoadMode::Direct {
            return self.line_fault(LineError::new(
                no,
                "validation",
                "a required field is missing and there is no record to merge into",
            ));
        }
        if st.batch_ids.contains(&id) {
            self.write_batch(&name).await?;
        }
        let Some(st) = self.states.get_mut(&name) else {
            return Ok(());
        };
        if let Some(l) = st.lines.as_mut() {
            l.insert(id, no);
        }
        if st.mode == LoadMode::Direct && st.direct_first.is_none() {
            st.direct_first = Some(no);
        }
        st.batch_ids.insert(id);
        st.batch.push(row);
        let full = match st.mode {
            LoadMode::Direct => DIRECT_BATCH_ROWS,
            _ => BATCH_ROWS,
        };
        if st.batch.len() >= full {
            self.write_batch(&name).await?;
        }
        Ok(())
    }

    async fn init_state(
        &mut self,
        no: u64,
        name: &str,
    ) -> std::result::Result<Option<ModelState>, Halt> {
        let def = match ident::model_ref(name) {
            Some(id) => self.tx.load_model(&id).await.map_err(Halt::Fatal)?,
            None => None,
        };
        let Some(def) = def else {
            self.fault(Fault::Line(LineError::from_error(
                no,
                "model",
                crate::describe::model_not_found(name),
            )))?;
            return Ok(None);
        };
        let table = rows::layout(&self.schema, &def);
        let index = rows::index(&table);
        let has_serial = def
            .fields
            .iter()
            .any(|f| f.field_type == FieldType::Bigserial);
        let empty = self.fresh.contains(name)
            || self.tx.is_empty(&table.table).await.map_err(Halt::Fatal)?;
        let mode = match self.opts.strategy {
            _ if empty && !has_serial => LoadMode::Direct,
            Strategy::Upsert | Strategy::Replace => LoadMode::Upsert,
            Strategy::Merge => LoadMode::Merge,
            Strategy::Skip => LoadMode::Skip,
        };
        let has_rel = def.fields.iter().any(|f| f.related_model.is_some());
        self.report.model(name);
        Ok(Some(ModelState {
            def,
            table,
            index,
            mode,
            batch: Vec::new(),
            batch_ids: IdSet::default(),
            lines: has_rel.then(IdLines::default),
            direct_first: None,
        }))
    }

    /// Writes the open batch of `name`.
    async fn write_batch(&mut self, name: &str) -> std::result::Result<(), Halt> {
        let Some(st) = self.states.get_mut(name) else {
            return Ok(());
        };
        if st.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut st.batch);
        st.batch_ids.clear();
        let res = self.tx.load(&st.table, st.mode, &rows).await;
        match res {
            Ok(a) => {
                let r = self.report.model(name);
                r.records_created += a.created;
                r.records_updated += a.updated;
                r.records_skipped += a.skipped;
                Ok(())
            }
            Err(be) => {
                let line = be.line.unwrap_or(rows[0].line);
                self.fault(Fault::at(line, be.reason, be.error))
            }
        }
    }

    /// Writes the open batch of the current model and ends its direct stream.
    async fn close_current(&mut self) -> std::result::Result<(), Halt> {
        let Some(name) = self.current.take() else {
            return Ok(());
        };
        self.write_batch(&name).await?;
        if let Err(be) = self.tx.flush().await {
            let first = self
                .states
                .get(&name)
                .and_then(|s| s.direct_first)
                .unwrap_or(1);
            self.fault(Fault::at(be.line.unwrap_or(first), be.reason, be.error))?;
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
        let names: Vec<String> = self.states.keys().cloned().collect();
        for n in names {
            let Some(st) = self.states.get(&n) else {
                continue;
            };
            let serials: Vec<Ident> = st
                .def
                .fields
                .iter()
                .filter(|f| f.field_type == FieldType::Bigserial)
                .map(|f| Ident::trusted(f.field_name.clone()))
                .collect();
            if !serials.is_empty() {
                let t = st.table.table.clone();
                self.tx
                    .sync_sequences(&t, &serials)
                    .await
                    .map_err(Halt::Fatal)?;
            }
        }
        Ok(())
    }

    /// Rule 1: every relationship value of an imported record names an existing record,
    /// checked once against the final state (so line order does not matter).
    async fn check_references(&mut self) -> std::result::Result<(), Halt> {
        let mut found: Vec<LineError> = Vec::new();
        let mut names: Vec<&String> = self.states.keys().collect();
        names.sort();
        let mut checks = Vec::new();
        for n in names {
            let st = &self.states[n];
            for f in &st.def.fields {
                let Some(parent) = f.related_model.as_deref().and_then(ident::model_ref) else {
                    continue;
                };
                checks.push((
                    n.clone(),
                    st.table.table.clone(),
                    Ident::trusted(f.field_name.clone()),
                    parent,
                ));
            }
        }
        for (n, table, field, parent) in checks {
            let pt = Table {
                schema: self.schema.clone(),
                name: parent.clone(),
            };
            let ids = self
                .tx
                .dangling(&table, &field, &pt, MAX_ERRORS as i64)
                .await
                .map_err(Halt::Fatal)?;
            let Some(lines) = self.states.get(&n).and_then(|s| s.lines.as_ref()) else {
                continue;
            };
            for id in ids {
                if let Some(line) = lines.get(&id) {
                    found.push(LineError::new(
                        *line,
                        "reference",
                        format!(
                            "{n}.{field} of record {id} names no existing {parent} record",
                            field = field.as_str(),
                            parent = parent.as_str()
                        ),
                    ));
                }
            }
        }
        found.sort_by_key(|e| e.line);
        for le in found {
            self.line_fault(le)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(q: &[(&str, &str)]) -> Result<ImportOptions> {
        let m: HashMap<String, String> = q
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ImportOptions::from_query(&|k: &str| m.get(k).cloned())
    }

    #[test]
    fn query_options() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.strategy, Strategy::Upsert);
        assert!(o.describe && o.data && !o.dry_run && !o.confirm && o.models.is_none());
        let o = opts(&[
            ("strategy", "replace"),
            ("dry_run", ""),
            ("include", "data"),
            ("models", "a, b,,"),
            ("confirm", "1"),
        ])
        .unwrap();
        assert_eq!(o.strategy, Strategy::Replace);
        assert!(o.dry_run && o.confirm && o.data && !o.describe);
        assert_eq!(o.models, Some(vec!["a".to_owned(), "b".to_owned()]));
        for bad in [
            ("strategy", "overwrite"),
            ("include", "data,acl"),
            ("dry_run", "yes"),
        ] {
            assert_eq!(
                opts(&[bad]).unwrap_err().code,
                ErrorCode::ValidationFieldInvalid,
                "{bad:?}"
            );
        }
    }
}
