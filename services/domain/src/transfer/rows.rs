//! Record lines (A8.3) → validated rows: user fields go through the same validation and
//! coercion as `POST /api/data` ([`crate::data::validate`]); the system fields an import keeps
//! (`id`, timestamps, access lists) and `bigserial` values are checked here. Access-list
//! entries that are not users of the target tenant are dropped (rule 4).

use super::report::LineError;
use crate::data::validate;
use crate::data::values;
use crate::ident::{Ident, SYSTEM_FIELDS};
use crate::model::{FieldType, ModelDef};
use crate::ports::import::{ColumnKind, ImportColumn, ImportRow, ImportTable};
use crate::ports::records::{Table, ACCESS_COLUMNS};
use crate::{Error, ErrorCode};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// Column name → position in [`ImportTable::columns`].
/// Short field names looked up once per key per line: a cheap hash (FxHash) does.
pub(super) type ColumnIndex = rustc_hash::FxHashMap<String, usize>;

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

/// The `data` object of a record line spread over the columns of its table: each value moved
/// once into its column's slot, without building an object of it first (nearly all of an
/// import's server time is spent reading record lines).
pub(super) struct Given {
    slots: Vec<Option<Value>>,
    /// Keys that name no column and no system field, in line order.
    unknown: Vec<String>,
    /// `deleted_at` is set: the record was purged (rule 5).
    pub deleted: bool,
}

/// Where a record line says "not an object".
pub(super) const NOT_AN_OBJECT: &str = "record line without a data object";

impl Given {
    fn new(table: &ImportTable) -> Self {
        Self {
            slots: vec![None; table.columns.len()],
            unknown: Vec::new(),
            deleted: false,
        }
    }

    /// The column of `key`: keys usually come in column order (export writes them so), so
    /// the column after the last one found is tried before the index.
    fn slot(
        table: &ImportTable,
        index: &ColumnIndex,
        next: &mut usize,
        key: &str,
    ) -> Option<usize> {
        let i = match table.columns.get(*next) {
            Some(c) if c.name.as_str() == key => Some(*next),
            _ => index.get(key).copied(),
        };
        if let Some(i) = i {
            *next = i + 1;
        }
        i
    }

    fn put(
        &mut self,
        table: &ImportTable,
        index: &ColumnIndex,
        next: &mut usize,
        key: &str,
        v: Value,
    ) {
        if let Some(i) = Self::slot(table, index, next, key) {
            self.slots[i] = Some(v);
        } else if key == "deleted_at" {
            self.deleted = !v.is_null();
        } else if !SYSTEM_FIELDS.contains(&key) {
            self.unknown.push(key.to_owned());
        }
    }

    /// From an object already parsed (the JSON document form, or the first line of a model).
    pub fn from_map(data: Map<String, Value>, table: &ImportTable, index: &ColumnIndex) -> Self {
        let mut g = Self::new(table);
        let mut next = 0;
        for (k, v) in data {
            g.put(table, index, &mut next, &k, v);
        }
        g
    }

    /// Straight from the line's text. `Err` when `data` is not an object.
    pub fn from_raw(
        raw: &serde_json::value::RawValue,
        table: &ImportTable,
        index: &ColumnIndex,
    ) -> Result<Self, &'static str> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        GivenSeed { table, index }
            .deserialize(&mut de)
            .map_err(|_| NOT_AN_OBJECT)
    }
}

/// Reads a `data` object into a [`Given`].
struct GivenSeed<'a> {
    table: &'a ImportTable,
    index: &'a ColumnIndex,
}

/// An object key, borrowed from the line unless it has escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for GivenSeed<'_> {
    type Value = Given;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Given, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for GivenSeed<'_> {
    type Value = Given;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Given, A::Error> {
        let mut g = Given::new(self.table);
        let mut next = 0;
        while let Some(Key(k)) = map.next_key()? {
            let v: Value = map.next_value()?;
            g.put(self.table, self.index, &mut next, &k, v);
        }
        Ok(g)
    }
}

fn invalid(line: u64, field: &str, rule: &'static str, message: String) -> LineError {
    let e = Error::msg(ErrorCode::ValidationError, message.clone()).with_data(
        json!({"errors": [{"index": 0, "field": field, "rule": rule, "message": message}]}),
    );
    LineError::from_error(line, "validation", e)
}

/// Validates one record line's `data` against the model with the field rules of
/// `POST /api/data` ([`validate::field_value`]); also answers how many access-list entries
/// were dropped. `merge` validates present keys only (absent keys keep the stored value of
/// an existing record; a new one gets the defaults).
pub(super) fn row(
    model: &ModelDef,
    table: &ImportTable,
    line: u64,
    given: Given,
    merge: bool,
    users: &HashSet<uuid::Uuid>,
) -> Result<(uuid::Uuid, ImportRow, u64), LineError> {
    let mut acl_dropped = 0;
    let mut errs = Vec::new();
    let Given {
        slots: mut given,
        unknown,
        ..
    } = given;
    let id = match given[0].take() {
        None | Some(Value::Null) => Some(uuid::Uuid::new_v4()),
        Some(v) => values::coerce(FieldType::Uuid, &v)
            .and_then(|v| v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok())),
    };
    let Some(id) = id else {
        return Err(invalid(line, "id", "type", "id must be a UUID".into()));
    };
    // User fields are columns 1..=fields, in definition order (see [`layout`]).
    let mut valid: Vec<Option<Value>> = vec![None; table.columns.len()];
    for (i, f) in model.fields.iter().enumerate() {
        let i = i + 1;
        if f.field_type == FieldType::Bigserial {
            continue; // its value is checked below, as given
        }
        match &given[i] {
            Some(raw) => valid[i] = validate::field_value(f, raw, 0, &mut errs),
            None if merge => {}
            None => valid[i] = validate::absent_field(f, 0, &mut errs),
        }
    }
    for k in &unknown {
        validate::unknown_field(&mut errs, 0, k);
    }
    if let Some(first) = errs.first() {
        let msg = first.message.clone();
        let e = validate::error(errs).with_message(msg);
        return Err(LineError::from_error(line, "validation", e));
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
