//! Record lines of an import (A8.3): per model, the load mode (straight into an empty table,
//! or staged per strategy), bounded batches handed to the store, the line reported when a
//! batch fails, and the reference check against the final state (rule 1).

use super::lines::RecordData;
use super::plan::Fault;
use super::report::{LineError, MAX_ERRORS};
use super::rows::Given;
use super::{rows, Halt, Run, Strategy};
use crate::ident::{self, Ident, SYSTEM_MODELS};
use crate::model::{FieldType, ModelDef};
use crate::ports::import::{ImportRow, ImportTable, LoadMode};
use crate::ports::records::Table;
use serde_json::Value;

/// Rows handed to the store at once: bounds memory while keeping statements few.
const BATCH_ROWS: usize = 4000;
/// Rows per send of a direct load: there is no statement per batch, and a small batch keeps
/// the allocator reusing the same warm memory instead of returning and refaulting pages.
const DIRECT_BATCH_ROWS: usize = 256;

/// Record ids are random: a cheap hash (FxHash) does, no SipHash per line.
type IdSet = rustc_hash::FxHashSet<uuid::Uuid>;
type IdLines = rustc_hash::FxHashMap<uuid::Uuid, u64>;

/// Per imported model: its definition, layout, load mode and the open batch.
pub(super) struct ModelState {
    def: ModelDef,
    table: ImportTable,
    index: rows::ColumnIndex,
    mode: LoadMode,
    batch: Vec<ImportRow>,
    batch_ids: IdSet,
    /// id → line, kept only for models with relationship fields (rule 1 reports lines).
    lines: Option<IdLines>,
    /// First line streamed by a direct load (the line reported when the stream fails).
    direct_first: Option<u64>,
}

/// A record line's `data`, read into columns or (not yet) as an object.
enum Read {
    Columns(Given),
    Object(serde_json::Map<String, Value>),
}

impl Run<'_> {
    pub(super) async fn record_line(
        &mut self,
        no: u64,
        model: Option<Value>,
        data: RecordData,
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
        // A model already under way reads an NDJSON line straight into its columns; other
        // lines (a model's first, the JSON document form) are parsed as an object.
        let read = match (self.states.get(name), data) {
            (Some(st), RecordData::Raw(raw)) => match Given::from_raw(&raw, &st.table, &st.index) {
                Ok(g) => Read::Columns(g),
                Err(msg) => return self.line_fault(LineError::new(no, "record", msg)),
            },
            (_, data) => {
                let data = match data {
                    RecordData::Raw(raw) => serde_json::from_str(raw.get()).ok(),
                    RecordData::Value(v) => Some(v),
                    RecordData::Absent => None,
                };
                let Some(Value::Object(data)) = data else {
                    return self.line_fault(LineError::new(no, "record", rows::NOT_AN_OBJECT));
                };
                Read::Object(data)
            }
        };
        // Rule 5: purged records are never imported.
        let purged = match &read {
            Read::Columns(g) => g.deleted,
            Read::Object(o) => o.get("deleted_at").is_some_and(|d| !d.is_null()),
        };
        if purged {
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
        let given = match read {
            Read::Columns(g) => g,
            Read::Object(o) => Given::from_map(o, &st.table, &st.index),
        };
        let res = rows::row(&st.def, &st.table, no, given, merge, &self.users);
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
    pub(super) async fn close_current(&mut self) -> std::result::Result<(), Halt> {
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

    /// Rule 1: every relationship value of an imported record names an existing record,
    /// checked once against the final state (so line order does not matter).
    pub(super) async fn check_references(&mut self) -> std::result::Result<(), Halt> {
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

    /// Rule 6: every `bigserial` sequence of an imported model moves past the column's maximum.
    pub(super) async fn sync_sequences(&mut self) -> std::result::Result<(), Halt> {
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
}
