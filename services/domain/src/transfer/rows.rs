//! Record lines (A8.3) → validated rows: user fields go through the same validation and
//! coercion as `POST /api/data` ([`crate::data::validate`]); the system fields an import keeps
//! (`id`, timestamps, access lists) and `bigserial` values are checked here. Access-list
//! entries that are not users of the target tenant are dropped (rule 4).

use super::report::LineError;
use crate::data::validate::{self, Mode};
use crate::data::values;
use crate::ident::Ident;
use crate::model::{FieldType, ModelDef};
use crate::ports::import::{ColumnKind, ImportColumn, ImportRow, ImportTable};
use crate::ports::records::{Table, ACCESS_COLUMNS};
use crate::{Error, ErrorCode};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// A cheap hasher for column names (FxHash): the keys are short field names of the model,
/// looked up once per key per line.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// Column name → position in [`ImportTable::columns`].
pub(super) type ColumnIndex =
    std::collections::HashMap<String, usize, std::hash::BuildHasherDefault<KeyHasher>>;

/// The position of each column by name.
pub(super) fn index(t: &ImportTable) -> ColumnIndex {
    t.columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str().to_owned(), i))
        .collect()
}

/// The columns of an imported model, in cell order.
pub(super) fn layout(schema: &Ident, m: &ModelDef) -> ImportTable {
    let col = |name: &str, ty: FieldType, kind: ColumnKind| ImportColumn {
        name: Ident::trusted(name.to_owned()),
        ty,
        kind,
    };
    let mut columns = vec![col("id", FieldType::Uuid, ColumnKind::Id)];
    for f in &m.fields {
        columns.push(col(&f.field_name, f.field_type, ColumnKind::User));
    }
    // The order of export's record objects, so keys usually arrive in column order.
    columns.push(col(
        "created_at",
        FieldType::Timestamp,
        ColumnKind::CreatedAt,
    ));
    columns.push(col(
        "updated_at",
        FieldType::Timestamp,
        ColumnKind::UpdatedAt,
    ));
    columns.push(col(
        "trashed_at",
        FieldType::Timestamp,
        ColumnKind::TrashedAt,
    ));
    for a in ACCESS_COLUMNS {
        columns.push(col(a, FieldType::UuidArray, ColumnKind::Access));
    }
    ImportTable {
        table: Table {
            schema: schema.clone(),
            name: Ident::trusted(m.model_name.clone()),
        },
        columns,
    }
}

fn invalid(line: u64, field: &str, rule: &'static str, message: String) -> LineError {
    let e = Error::msg(ErrorCode::ValidationError, message.clone()).with_data(
        json!({"errors": [{"index": 0, "field": field, "rule": rule, "message": message}]}),
    );
    LineError::from_error(line, "validation", e)
}

/// Validates one record line's `data` against the model; also answers how many access-list
/// entries were dropped. `merge` validates present keys only
/// (absent keys keep the stored value of an existing record; a new one gets the defaults).
pub(super) fn row(
    model: &ModelDef,
    table: &ImportTable,
    index: &ColumnIndex,
    line: u64,
    data: Map<String, Value>,
    merge: bool,
    users: &HashSet<uuid::Uuid>,
) -> Result<(uuid::Uuid, ImportRow, u64), LineError> {
    let mut acl_dropped = 0;
    let mut errs = Vec::new();
    let mode = if merge { Mode::Update } else { Mode::Create };
    let mut prepared = validate::prepare(model, 0, &data, mode, &mut errs);
    if let Some(first) = errs.first() {
        let msg = first.message.clone();
        let e = validate::error(errs).with_message(msg);
        return Err(LineError::from_error(line, "validation", e));
    }
    let id = prepared.id.unwrap_or_else(uuid::Uuid::new_v4);
    // Each value is moved once into its column's slot (no per-column map lookups or copies).
    let n = table.columns.len();
    // Keys usually come in column order (export writes them so): the next column is tried
    // first, the index only when it is not the one.
    let slot = |next: &mut usize, k: &str| -> Option<usize> {
        let i = match table.columns.get(*next) {
            Some(c) if c.name.as_str() == k => Some(*next),
            _ => index.get(k).copied(),
        };
        if let Some(i) = i {
            *next = i + 1;
        }
        i
    };
    let mut given: Vec<Option<Value>> = vec![None; n];
    let mut next = 0;
    for (k, v) in data {
        if let Some(i) = slot(&mut next, &k) {
            given[i] = Some(v);
        }
    }
    let mut valid: Vec<Option<Value>> = vec![None; n];
    let mut next = 1;
    for (k, v) in std::mem::take(&mut prepared.values) {
        if let Some(i) = slot(&mut next, &k) {
            valid[i] = Some(v);
        }
    }
    let mut cells = Vec::with_capacity(table.columns.len());
    let mut needs_existing = false;
    for (i, c) in table.columns.iter().enumerate() {
        let name = c.name.as_str();
        let given = given[i].take();
        let cell = match c.kind {
            ColumnKind::Id => (Value::String(id.to_string()), true),
            ColumnKind::User if c.ty == FieldType::Bigserial => match given {
                None | Some(Value::Null) => (Value::Null, false),
                Some(v) => match values::coerce(FieldType::Bigserial, &v) {
                    Some(n) => (n, true),
                    None => {
                        return Err(invalid(
                            line,
                            name,
                            "type",
                            format!("{name} must be an integer"),
                        ))
                    }
                },
            },
            ColumnKind::User => match valid[i].take() {
                Some(v) => (v, given.is_some()),
                None => {
                    let f = model.field(name);
                    let default = f
                        .and_then(|f| f.default_value.as_ref())
                        .filter(|d| !d.is_null())
                        .map(|d| values::coerce(c.ty, d).unwrap_or_else(|| d.clone()));
                    if default.is_none() && f.is_some_and(|f| f.required) {
                        needs_existing = true;
                    }
                    (default.unwrap_or(Value::Null), false)
                }
            },
            ColumnKind::CreatedAt | ColumnKind::UpdatedAt | ColumnKind::TrashedAt => match given {
                None => (Value::Null, false),
                Some(Value::Null) => (Value::Null, c.kind == ColumnKind::TrashedAt),
                Some(Value::String(t)) if crate::time::is_canonical(&t) => (Value::String(t), true),
                Some(v) => match values::coerce(FieldType::Timestamp, &v) {
                    Some(t) => (t, true),
                    None => {
                        return Err(invalid(
                            line,
                            name,
                            "type",
                            format!("{name} must be an RFC 3339 timestamp"),
                        ))
                    }
                },
            },
            ColumnKind::Access => match given {
                None | Some(Value::Null) => (Value::Null, false),
                Some(Value::Array(items)) => {
                    let mut kept = Vec::with_capacity(items.len());
                    for it in items {
                        let u = it.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok());
                        match u {
                            Some(u) if users.contains(&u) => {
                                if !kept.contains(&u) {
                                    kept.push(u);
                                }
                            }
                            Some(_) => acl_dropped += 1,
                            None => {
                                return Err(invalid(
                                    line,
                                    name,
                                    "type",
                                    format!("{name} must be an array of user ids"),
                                ))
                            }
                        }
                    }
                    let arr = kept.into_iter().map(|u| Value::String(u.to_string()));
                    (Value::Array(arr.collect()), true)
                }
                Some(_) => {
                    return Err(invalid(
                        line,
                        name,
                        "type",
                        format!("{name} must be an array of user ids"),
                    ))
                }
            },
        };
        cells.push(cell);
    }
    Ok((
        id,
        ImportRow {
            line,
            cells,
            needs_existing: merge && needs_existing,
        },
        acl_dropped,
    ))
}
