//! The operations of a `POST /api/bulk` body (A8.1), parsed and checked before anything runs:
//! a malformed or unknown operation (missing key, a key the operation does not take such as
//! `filter` on `*-all`, `data` of the wrong shape, a filter option the operation cannot honour)
//! is `400 VALIDATION_OPERATION_INVALID` with `data.operation_index` and `data.reason`; an
//! `access*` operation is `501 NOT_IMPLEMENTED` (record ACLs come later). Whether the model,
//! fields and values are right is left to the service methods the operations call, exactly
//! as on the single routes.

use super::super::find::{self, FindRequest, OPTION_KEYS};
use crate::ident;
use crate::{Error, ErrorCode, Result};
use serde_json::{json, Map, Value};

/// Most operations of one request.
pub(crate) const MAX_OPERATIONS: usize = 1000;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Select,
    SelectOne,
    Select404,
    Count,
    Aggregate,
    Create,
    CreateAll,
    Update,
    Update404,
    UpdateAll,
    UpdateAny,
    Delete,
    Delete404,
    DeleteAll,
    DeleteAny,
    Upsert,
    UpsertAll,
    /// `access`, `access-one`, `access-404`, `access-all`, `access-any` (A11, not yet).
    Access,
}

/// Operation names (A8.1 table) → kind.
const NAMES: &[(&str, Kind)] = &[
    ("select", Kind::Select),
    ("select-all", Kind::Select),
    ("select-one", Kind::SelectOne),
    ("select-404", Kind::Select404),
    ("count", Kind::Count),
    ("aggregate", Kind::Aggregate),
    ("create", Kind::Create),
    ("create-one", Kind::Create),
    ("create-all", Kind::CreateAll),
    ("update", Kind::Update),
    ("update-one", Kind::Update),
    ("update-404", Kind::Update404),
    ("update-all", Kind::UpdateAll),
    ("update-any", Kind::UpdateAny),
    ("delete", Kind::Delete),
    ("delete-one", Kind::Delete),
    ("delete-404", Kind::Delete404),
    ("delete-all", Kind::DeleteAll),
    ("delete-any", Kind::DeleteAny),
    ("upsert", Kind::Upsert),
    ("upsert-one", Kind::Upsert),
    ("upsert-all", Kind::UpsertAll),
    ("access", Kind::Access),
    ("access-one", Kind::Access),
    ("access-404", Kind::Access),
    ("access-all", Kind::Access),
    ("access-any", Kind::Access),
];

/// Keys that mean something in some operation. One of them on an operation that does not
/// take it is refused (a misplaced `where` or `filter` must not be silently ignored); other
/// keys are echoed back untouched.
const KNOWN_KEYS: &[&str] = &[
    "id",
    "filter",
    "data",
    "aggregate",
    "where",
    "groupBy",
    "group_by",
    "having",
    "order",
    "limit",
    "offset",
    "trashed",
    "select",
];

/// The shape `data` must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataShape {
    Object,
    /// Array of objects (`create-all`, `update-all`, `upsert-all`).
    Objects,
    /// Array of `{id}` objects or id strings (`delete-all`).
    Ids,
}

/// How an operation takes its keys.
struct Rule {
    /// Required keys besides `operation` and `model`.
    required: &'static [&'static str],
    /// Optional keys.
    optional: &'static [&'static str],
    data: Option<DataShape>,
    /// Filter options (A6.2 keys other than `where`) the operation honours.
    filter_options: &'static [&'static str],
}

const SELECT_OPTIONS: &[&str] = &["select", "order", "limit", "offset", "trashed"];
const AGG_KEYS: &[&str] = &[
    "where", "filter", "groupBy", "group_by", "having", "order", "limit", "offset", "trashed",
];

fn rule(kind: Kind) -> Rule {
    let r = |required, optional, data, filter_options| Rule {
        required,
        optional,
        data,
        filter_options,
    };
    match kind {
        Kind::Select => r(&[], &["filter"], None, SELECT_OPTIONS),
        // `id` or `filter`, checked apart.
        Kind::SelectOne | Kind::Select404 => r(&[], &["id", "filter"], None, SELECT_OPTIONS),
        Kind::Count => r(&[], &["filter"], None, &["trashed"]),
        Kind::Aggregate => r(&["aggregate"], AGG_KEYS, None, &["trashed"]),
        Kind::Create | Kind::Upsert => r(&["data"], &[], Some(DataShape::Object), &[]),
        Kind::CreateAll | Kind::UpsertAll | Kind::UpdateAll => {
            r(&["data"], &[], Some(DataShape::Objects), &[])
        }
        Kind::Update | Kind::Update404 => r(&["id", "data"], &[], Some(DataShape::Object), &[]),
        Kind::UpdateAny => r(&["filter", "data"], &[], Some(DataShape::Object), &[]),
        Kind::Delete | Kind::Delete404 => r(&["id"], &[], None, &[]),
        Kind::DeleteAll => r(&["data"], &[], Some(DataShape::Ids), &[]),
        Kind::DeleteAny => r(&["filter"], &[], None, &[]),
        Kind::Access => r(&[], &[], None, &[]),
    }
}

/// One checked operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub kind: Kind,
    pub model: String,
    pub id: Option<String>,
    /// The parsed `filter` (A6.2 body; for `aggregate` only its `where` and `trashed`).
    pub filter: Option<FindRequest>,
    pub data: Option<Value>,
    /// `aggregate`: the A7 body assembled from the operation's keys.
    pub aggregate: Option<Value>,
    /// The operation as sent (`null` keys included, `result` left out), as JSON text.
    pub echo: String,
}

/// `400 VALIDATION_OPERATION_INVALID` for operation `index`.
pub(crate) fn invalid(index: usize, reason: &str, msg: &str) -> Error {
    Error::msg(
        ErrorCode::ValidationOperationInvalid,
        format!("Operation {index}: {msg}"),
    )
    .with_data(json!({ "operation_index": index, "reason": reason }))
}

fn invalid_key(index: usize, reason: &str, key: &str, msg: &str) -> Error {
    let mut e = invalid(index, reason, msg);
    if let Some(Value::Object(d)) = e.data.as_mut() {
        d.insert("key".into(), json!(ident::clip(key)));
    }
    e
}

/// Parses the body: `{"operations":[…]}` with 1–1000 operations.
pub(crate) fn parse(body: Option<&Value>) -> Result<Vec<Operation>> {
    let obj = match body {
        None | Some(Value::Null) => return Err(Error::field_missing("operations")),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(Error::msg(
                ErrorCode::ValidationBodyNotObject,
                "The bulk body must be an object: {\"operations\":[…]}",
            ))
        }
    };
    let list = match obj.get("operations") {
        None | Some(Value::Null) => return Err(Error::field_missing("operations")),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::field_invalid(
                "operations",
                "an array of 1 to 1000 operations",
            ))
        }
    };
    if list.is_empty() || list.len() > MAX_OPERATIONS {
        return Err(Error::msg(
            ErrorCode::ValidationFieldInvalid,
            format!(
                "operations must hold 1 to {MAX_OPERATIONS} operations, not {}",
                list.len()
            ),
        )
        .with_data(json!({
            "field": "operations",
            "expected": "an array of 1 to 1000 operations",
            "count": list.len(),
        })));
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| operation(i, op))
        .collect()
}

/// A key's value; `null` is absent (A1.1: options of bulk bodies).
fn get<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn operation(i: usize, v: &Value) -> Result<Operation> {
    let Some(o) = v.as_object() else {
        return Err(invalid(i, "not_an_object", "an operation is a JSON object"));
    };
    let name = match get(o, "operation") {
        None => {
            return Err(invalid_key(
                i,
                "missing_key",
                "operation",
                "operation is required",
            ))
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(invalid_key(
                i,
                "invalid_key",
                "operation",
                "operation must be a string",
            ))
        }
    };
    let Some(kind) = NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k) else {
        let mut e = invalid(
            i,
            "unknown_operation",
            &format!("unknown operation {}", ident::clip(name)),
        );
        if let Some(Value::Object(d)) = e.data.as_mut() {
            d.insert("operation".into(), json!(ident::clip(name)));
        }
        return Err(e);
    };
    if kind == Kind::Access {
        return Err(Error::msg(
            ErrorCode::NotImplemented,
            format!("Operation {i}: {name} is not available yet (record ACLs come later)"),
        )
        .with_data(json!({ "operation_index": i, "operation": name })));
    }
    let model = match get(o, "model") {
        None => return Err(invalid_key(i, "missing_key", "model", "model is required")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(invalid_key(
                i,
                "invalid_key",
                "model",
                "model must be a string",
            ))
        }
    };
    let r = rule(kind);
    for k in KNOWN_KEYS {
        let allowed = r.required.contains(k) || r.optional.contains(k);
        if get(o, k).is_some() && !allowed {
            return Err(invalid_key(
                i,
                "unexpected_key",
                k,
                &format!("{name} does not take {k}"),
            ));
        }
    }
    for k in r.required {
        if get(o, k).is_none() {
            return Err(invalid_key(
                i,
                "missing_key",
                k,
                &format!("{name} needs {k}"),
            ));
        }
    }
    let id = match get(o, "id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid_key(i, "invalid_key", "id", "id must be a string")),
    };
    if matches!(kind, Kind::SelectOne | Kind::Select404) {
        match (id.is_some(), get(o, "filter").is_some()) {
            (true, true) => {
                return Err(invalid(
                    i,
                    "id_and_filter",
                    &format!("{name} takes id or filter, not both"),
                ))
            }
            (false, false) => {
                return Err(invalid_key(
                    i,
                    "missing_key",
                    "id",
                    &format!("{name} needs id or filter"),
                ))
            }
            _ => {}
        }
    }
    let data = match (r.data, get(o, "data")) {
        (Some(shape), Some(d)) => {
            check_data(i, name, shape, d)?;
            Some(d.clone())
        }
        _ => None,
    };
    let filter = match get(o, "filter") {
        None => None,
        Some(f) => Some(filter(i, name, f, r.filter_options)?),
    };
    let aggregate = (kind == Kind::Aggregate)
        .then(|| aggregate_body(i, o, filter.as_ref()))
        .transpose()?;
    let mut echo = o.clone();
    echo.remove("result");
    Ok(Operation {
        kind,
        model,
        id,
        filter,
        data,
        aggregate,
        echo: Value::Object(echo).to_string(),
    })
}

fn check_data(i: usize, name: &str, shape: DataShape, d: &Value) -> Result<()> {
    let items = match (shape, d) {
        (DataShape::Object, Value::Object(_)) => return Ok(()),
        (DataShape::Object, _) => {
            return Err(invalid_key(
                i,
                "data_not_object",
                "data",
                &format!("{name} takes data as one object"),
            ))
        }
        (_, Value::Array(items)) => items,
        (_, _) => {
            return Err(invalid_key(
                i,
                "data_not_array",
                "data",
                &format!("{name} takes data as an array"),
            ))
        }
    };
    for (j, item) in items.iter().enumerate() {
        let ok = match shape {
            DataShape::Ids => item.is_string() || item.get("id").is_some_and(Value::is_string),
            _ => item.is_object(),
        };
        if !ok {
            let expected = if shape == DataShape::Ids {
                "an id string or an {\"id\":…} object"
            } else {
                "an object"
            };
            let mut e = invalid_key(
                i,
                "data_item_invalid",
                "data",
                &format!("data[{j}] must be {expected}"),
            );
            if let Some(Value::Object(m)) = e.data.as_mut() {
                m.insert("item".into(), json!(j));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// A `filter` (A6.2 body, bare where form included) with only the options `name` honours.
fn filter(i: usize, name: &str, f: &Value, options: &[&str]) -> Result<FindRequest> {
    let Some(obj) = f.as_object() else {
        return Err(invalid_key(
            i,
            "filter_not_object",
            "filter",
            "filter must be an object (a find body)",
        ));
    };
    let refused = OPTION_KEYS.iter().find(|k| {
        let honoured = options.contains(k);
        obj.get(**k)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
            && !honoured
    });
    if let Some(k) = refused {
        return Err(invalid_key(
            i,
            "filter_option_unsupported",
            k,
            &format!("{name} does not take filter.{k}"),
        ));
    }
    find::request(Some(f)).map_err(|e| add_index(e, i))
}

/// The A7 body of an `aggregate` operation: `where` from the operation or its filter.
fn aggregate_body(i: usize, o: &Map<String, Value>, f: Option<&FindRequest>) -> Result<Value> {
    let mut body = Map::new();
    for k in [
        "aggregate",
        "groupBy",
        "group_by",
        "having",
        "order",
        "limit",
        "offset",
    ] {
        if let Some(v) = get(o, k) {
            body.insert(k.into(), v.clone());
        }
    }
    if let Some(w) = get(o, "where") {
        if f.is_some() {
            return Err(invalid(
                i,
                "where_and_filter",
                "aggregate takes where or filter.where, not both",
            ));
        }
        body.insert("where".into(), w.clone());
    } else if let Some(f) = f {
        body.insert("where".into(), f.r#where.clone());
    }
    let trashed = get(o, "trashed").cloned().or_else(|| {
        f.filter(|f| f.trashed != crate::ports::records::TrashedScope::Exclude)
            .and_then(|_| o.get("filter")?.get("trashed").cloned())
    });
    if let Some(t) = trashed {
        body.insert("trashed".into(), t);
    }
    Ok(Value::Object(body))
}

/// Adds `data.operation_index` to an error (kept beside whatever context it has).
pub(crate) fn add_index(mut e: Error, i: usize) -> Error {
    match e.data.as_mut() {
        Some(Value::Object(d)) => {
            d.insert("operation_index".into(), json!(i));
        }
        Some(other) => {
            e.data = Some(json!({ "operation_index": i, "detail": other.take() }));
        }
        None => e.data = Some(json!({ "operation_index": i })),
    }
    e
}

#[cfg(test)]
mod tests;
