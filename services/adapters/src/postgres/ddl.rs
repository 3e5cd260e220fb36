//! Describe DDL (A4.5): table, column and index statements built from validated metadata.
//! Identifiers are validated `Ident`s, quoted and schema-qualified. DDL cannot bind values, so
//! DEFAULT literals are rendered from the validated typed value through one quoting helper
//! ([`quote_literal`]); metadata rows are written with bound parameters.

use super::tenant_schema::SYSTEM_COLUMNS;
use abbotik_domain::ident::Ident;
use abbotik_domain::model::{FieldDef, FieldType, ModelDef};
use abbotik_domain::{Error, ErrorCode, Result};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Maps a driver error of a describe write: waiting too long for the table lock or running
/// past the describe statement timeout is a retryable `SERVICE_UNAVAILABLE`, not a filter
/// timeout; everything else goes through the shared mapping.
pub(super) fn map_db_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error().map(|d| d.code()) {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED => {
            Error::msg(
                ErrorCode::ServiceUnavailable,
                "The model is busy (a long query or another schema change holds it); retry shortly",
            )
            .with_internal(e)
        }
        _ => super::map_db_error(e),
    }
}

/// Index kinds (A4.5).
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Unique,
    Btree,
    Search,
    Rel,
}

/// `<kind>_` + first 20 hex chars of SHA-256(`<model>.<field>`): fits 63 bytes for any name.
pub(super) fn index_name(kind: Kind, model: &str, field: &str) -> String {
    let k = match kind {
        Kind::Unique => "uq",
        Kind::Btree => "idx",
        Kind::Search => "fts",
        Kind::Rel => "rel",
    };
    let h = Sha256::digest(format!("{model}.{field}").as_bytes());
    format!("{k}_{}", &hex::encode(h)[..20])
}

/// A SQL string literal that is safe whatever `standard_conforming_strings` says: `E'…'` with
/// backslashes and single quotes doubled. NUL cannot be represented and is refused.
pub(super) fn quote_literal(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::internal("NUL in a DDL literal"));
    }
    Ok(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

fn bad_default(f: &FieldDef) -> Error {
    Error::msg(
        ErrorCode::FieldConstraintInvalid,
        format!("default_value is not a valid {}", f.field_type.as_str()),
    )
    .with_data(json!({"property": "default_value"}))
}

/// The scalar literal of an already validated value of type `ty`.
fn scalar_literal(ty: FieldType, v: &Value) -> Option<String> {
    Some(match (ty, v) {
        (FieldType::Text, Value::String(s)) => format!("{}::text", quote_literal(s).ok()?),
        (FieldType::Integer, Value::Number(n)) => {
            let i = i32::try_from(n.as_i64()?).ok()?;
            format!("({i})::integer")
        }
        (FieldType::Decimal, Value::Number(n)) => {
            let t = n.to_string();
            // Only digits, sign, dot and exponent can reach here; re-check before rendering.
            if !t
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            {
                return None;
            }
            format!("'{t}'::numeric")
        }
        (FieldType::Boolean, Value::Bool(b)) => b.to_string(),
        (FieldType::Timestamp, Value::String(s)) => {
            let t = abbotik_domain::time::parse_rfc3339(s)?;
            format!("'{}'::timestamptz", t.to_rfc3339())
        }
        (FieldType::Date, Value::String(s)) => {
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            format!("'{}'::date", d.format("%Y-%m-%d"))
        }
        (FieldType::Uuid, Value::String(s)) => {
            format!("'{}'::uuid", uuid::Uuid::parse_str(s).ok()?.hyphenated())
        }
        (FieldType::Jsonb, v) => format!("{}::jsonb", quote_literal(&v.to_string()).ok()?),
        (FieldType::Binary, Value::String(s)) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            format!(
                "{}::bytea",
                quote_literal(&format!("\\x{}", hex::encode(bytes))).ok()?
            )
        }
        _ => return None,
    })
}

/// The DEFAULT expression of a field's validated default value.
pub(super) fn default_literal(f: &FieldDef) -> Result<Option<String>> {
    let Some(v) = &f.default_value else {
        return Ok(None);
    };
    let ty = f.field_type;
    if ty.is_array() {
        let Value::Array(items) = v else {
            return Err(bad_default(f));
        };
        let parts = items
            .iter()
            .map(|x| scalar_literal(ty.element(), x).ok_or_else(|| bad_default(f)))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Some(if parts.is_empty() {
            format!("'{{}}'::{}", ty.pg_type())
        } else {
            format!("ARRAY[{}]::{}", parts.join(", "), ty.pg_type())
        }));
    }
    scalar_literal(ty, v)
        .map(Some)
        .ok_or_else(|| bad_default(f))
}

fn table(s: &Ident, m: &Ident) -> String {
    format!("{}.{}", s.quoted(), m.quoted())
}

fn col(f: &FieldDef) -> String {
    format!("\"{}\"", f.field_name)
}

/// `"<f>" <type> [DEFAULT …] [NOT NULL]`.
pub(super) fn column_def(f: &FieldDef) -> Result<String> {
    let mut s = format!("{} {}", col(f), f.field_type.pg_type());
    if let Some(d) = default_literal(f)? {
        s.push_str(" DEFAULT ");
        s.push_str(&d);
    }
    if f.required {
        s.push_str(" NOT NULL");
    }
    Ok(s)
}

/// The `CREATE INDEX` statement of one kind for a field.
pub(super) fn create_index_sql(kind: Kind, s: &Ident, m: &Ident, f: &FieldDef) -> String {
    let name = index_name(kind, m.as_str(), &f.field_name);
    let t = table(s, m);
    let c = col(f);
    match kind {
        Kind::Unique => {
            format!("CREATE UNIQUE INDEX \"{name}\" ON {t} ({c}) WHERE deleted_at IS NULL")
        }
        Kind::Btree | Kind::Rel => format!("CREATE INDEX \"{name}\" ON {t} ({c})"),
        Kind::Search => {
            format!("CREATE INDEX \"{name}\" ON {t} USING gin (to_tsvector('english', {c}::text))")
        }
    }
}

/// The index kinds a field definition asks for.
fn wanted(f: &FieldDef) -> [(Kind, bool); 4] {
    [
        (Kind::Unique, f.unique),
        (Kind::Btree, f.index),
        (Kind::Search, f.searchable),
        (Kind::Rel, f.relationship_type.is_some()),
    ]
}

/// The `ALTER COLUMN … TYPE` cast as (source expression, target type): a direct cast where
/// PostgreSQL has one, else through text (every type has text input and output).
pub(super) fn cast_parts(c: &str, from: FieldType, to: FieldType) -> (String, &'static str) {
    use FieldType::*;
    let direct = |a: FieldType, b: FieldType| {
        a == b
            || b == Text
            || a == Text
            || (a.is_numeric() && b.is_numeric())
            || matches!((a, b), (Integer, Boolean) | (Boolean, Integer))
            || matches!((a, b), (Jsonb, Integer | Decimal | Boolean))
            || matches!((a, b), (Timestamp, Date) | (Date, Timestamp))
    };
    let to_pg = match to {
        Bigserial => "bigint",
        t => t.pg_type(),
    };
    let ok = if from.is_array() && to.is_array() {
        direct(from.element(), to.element())
    } else if from.is_array() || to.is_array() {
        // Arrays convert to and from text only (array literal syntax).
        from == Text || to == Text
    } else {
        direct(from, to)
    };
    if ok {
        (c.to_owned(), to_pg)
    } else {
        (format!("{c}::text"), to_pg)
    }
}

/// `FIELD_CHANGE_CONFLICT` with its reason and sample ids.
pub(super) fn conflict(field: &str, reason: &str, message: &str, ids: Vec<uuid::Uuid>) -> Error {
    Error::msg(ErrorCode::FieldChangeConflict, message.to_owned()).with_data(json!({
        "field": field,
        "reason": reason,
        "sample_ids": ids.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
    }))
}

/// Up to 10 ids of a query `SELECT id FROM … LIMIT 10`.
async fn sample(c: &Client, sql: &str) -> Result<Vec<uuid::Uuid>> {
    let rows = c.query(sql, &[]).await.map_err(map_db_error)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Runs one statement under a savepoint; on failure the savepoint is rolled back (the outer
/// transaction stays usable) and the database error is returned for the caller to classify.
pub(super) async fn try_exec(
    c: &Client,
    sql: &str,
) -> Result<std::result::Result<(), tokio_postgres::Error>> {
    c.batch_execute("SAVEPOINT abbotik_ddl")
        .await
        .map_err(map_db_error)?;
    match c.batch_execute(sql).await {
        Ok(()) => {
            c.batch_execute("RELEASE SAVEPOINT abbotik_ddl")
                .await
                .map_err(map_db_error)?;
            Ok(Ok(()))
        }
        Err(e) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT abbotik_ddl")
                .await
                .map_err(map_db_error)?;
            Ok(Err(e))
        }
    }
}

fn sqlstate(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.as_db_error().map(|d| d.code())
}

/// Ids of live rows sharing a value of the field with another live row.
async fn duplicate_ids(c: &Client, t: &str, cl: &str) -> Result<Vec<uuid::Uuid>> {
    sample(
        c,
        &format!(
            "SELECT id FROM {t} WHERE deleted_at IS NULL AND {cl} IS NOT NULL AND {cl} IN \
             (SELECT {cl} FROM {t} WHERE deleted_at IS NULL AND {cl} IS NOT NULL GROUP BY {cl} HAVING count(*) > 1) \
             ORDER BY {cl}, id LIMIT 10"
        ),
    )
    .await
}

/// Creates one index; duplicates (unique) and oversized values become `FIELD_CHANGE_CONFLICT`.
pub(super) async fn create_index(
    c: &Client,
    kind: Kind,
    s: &Ident,
    m: &Ident,
    f: &FieldDef,
) -> Result<String> {
    let name = index_name(kind, m.as_str(), &f.field_name);
    let t = table(s, m);
    match try_exec(c, &create_index_sql(kind, s, m, f)).await? {
        Ok(()) => Ok(name),
        Err(e) if sqlstate(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {
            let ids = duplicate_ids(c, &t, &col(f)).await?;
            Err(conflict(
                &f.field_name,
                "duplicates",
                "Existing records have duplicate values for this field",
                ids,
            ))
        }
        Err(e) if sqlstate(&e) == Some(&SqlState::PROGRAM_LIMIT_EXCEEDED) => Err(conflict(
            &f.field_name,
            "value_too_large_for_index",
            "Existing values are too large to index",
            vec![],
        )),
        Err(e) => Err(map_db_error(e)),
    }
}

async fn insert_field_row(
    c: &Client,
    s: &Ident,
    f: &FieldDef,
    idx: &[Option<String>; 4],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {s}.\"fields\" (model_name, field_name, type, required, default_value, description, \
         minimum, maximum, pattern, enum_values, is_array, immutable, sudo, \"unique\", \"index\", searchable, \
         tracked, transform, relationship_type, related_model, related_field, relationship_name, cascade_delete, \
         unique_index, btree_index, search_index, relationship_index, ordinal) \
         VALUES ($1,$2,$3,$4,$5,$6,$7::text::numeric,$8::text::numeric,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27, \
         (SELECT coalesce(max(ordinal) + 1, 0) FROM {s}.\"fields\" WHERE model_name = $1))",
        s = s.quoted()
    );
    let p = Params::of(f);
    c.execute(
        &sql,
        &[
            &f.model_name,
            &f.field_name,
            &p.ty,
            &f.required,
            &f.default_value,
            &f.description,
            &p.min,
            &p.max,
            &f.pattern,
            &p.enums,
            &f.is_array,
            &f.immutable,
            &f.sudo,
            &f.unique,
            &f.index,
            &f.searchable,
            &f.tracked,
            &p.transform,
            &p.rel,
            &f.related_model,
            &f.related_field,
            &f.relationship_name,
            &f.cascade_delete,
            &idx[0],
            &idx[1],
            &idx[2],
            &idx[3],
        ],
    )
    .await
    .map_err(map_db_error)?;
    Ok(())
}

/// Bindable forms of the field properties that are not plain columns.
struct Params {
    ty: &'static str,
    min: Option<String>,
    max: Option<String>,
    enums: Option<Value>,
    transform: Option<&'static str>,
    rel: Option<&'static str>,
}

impl Params {
    fn of(f: &FieldDef) -> Self {
        Params {
            ty: f.field_type.as_str(),
            min: f.minimum.as_ref().map(|n| n.to_string()),
            max: f.maximum.as_ref().map(|n| n.to_string()),
            enums: f.enum_values.as_ref().map(|e| json!(e)),
            transform: f.transform.map(|t| t.as_str()),
            rel: f.relationship_type.map(|r| r.as_str()),
        }
    }
}

/// Creates the indexes a new field asks for; returns the recorded names.
async fn create_indexes(
    c: &Client,
    s: &Ident,
    m: &Ident,
    f: &FieldDef,
) -> Result<[Option<String>; 4]> {
    let mut out: [Option<String>; 4] = Default::default();
    for (i, (kind, on)) in wanted(f).into_iter().enumerate() {
        if on {
            out[i] = Some(create_index(c, kind, s, m, f).await?);
        }
    }
    Ok(out)
}

pub(super) async fn create_model(c: &Client, s: &Ident, m: &ModelDef) -> Result<()> {
    let name = Ident::trusted(m.model_name.clone());
    c.execute(
        &format!(
            "INSERT INTO {}.\"models\" (model_name, status, description, sudo, frozen, immutable, external, passthrough) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            s.quoted()
        ),
        &[&m.model_name, &m.status, &m.description, &m.sudo, &m.frozen, &m.immutable, &m.external, &m.passthrough],
    )
    .await
    .map_err(map_db_error)?;
    let mut cols = vec![SYSTEM_COLUMNS.to_owned()];
    for f in &m.fields {
        cols.push(column_def(f)?);
    }
    c.batch_execute(&format!(
        "CREATE TABLE {} (\n    {}\n)",
        table(s, &name),
        cols.join(",\n    ")
    ))
    .await
    .map_err(map_db_error)?;
    for f in &m.fields {
        let idx = create_indexes(c, s, &name, f).await?;
        insert_field_row(c, s, f, &idx).await?;
    }
    Ok(())
}

pub(super) async fn update_model(c: &Client, s: &Ident, m: &ModelDef) -> Result<()> {
    c.execute(
        &format!(
            "UPDATE {}.\"models\" SET status = $2, description = $3, sudo = $4, frozen = $5, immutable = $6, \
             external = $7, passthrough = $8, updated_at = now() WHERE model_name = $1",
            s.quoted()
        ),
        &[&m.model_name, &m.status, &m.description, &m.sudo, &m.frozen, &m.immutable, &m.external, &m.passthrough],
    )
    .await
    .map_err(map_db_error)?;
    Ok(())
}

pub(super) async fn drop_model(c: &Client, s: &Ident, m: &Ident) -> Result<()> {
    let q = s.quoted();
    c.batch_execute(&format!("DROP TABLE IF EXISTS {}", table(s, m)))
        .await
        .map_err(map_db_error)?;
    for t in ["fields", "filters", "tracked", "models"] {
        c.execute(
            &format!("DELETE FROM {q}.\"{t}\" WHERE model_name = $1"),
            &[&m.as_str()],
        )
        .await
        .map_err(map_db_error)?;
    }
    Ok(())
}

pub(super) async fn add_field(c: &Client, s: &Ident, m: &Ident, f: &FieldDef) -> Result<()> {
    let t = table(s, m);
    if f.required && f.default_value.is_none() && f.field_type != FieldType::Bigserial {
        let ids = sample(c, &format!("SELECT id FROM {t} ORDER BY id LIMIT 10")).await?;
        if !ids.is_empty() {
            return Err(conflict(
                &f.field_name,
                "table_not_empty",
                "A required field without default_value cannot be added to a model that has records",
                ids,
            ));
        }
    }
    c.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN {}", column_def(f)?))
        .await
        .map_err(map_db_error)?;
    let idx = create_indexes(c, s, m, f).await?;
    insert_field_row(c, s, f, &idx).await
}

pub(super) async fn drop_field(c: &Client, s: &Ident, m: &Ident, f: &FieldDef) -> Result<()> {
    c.batch_execute(&format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
        table(s, m),
        col(f)
    ))
    .await
    .map_err(map_db_error)?;
    c.execute(
        &format!(
            "DELETE FROM {}.\"fields\" WHERE model_name = $1 AND field_name = $2",
            s.quoted()
        ),
        &[&m.as_str(), &f.field_name],
    )
    .await
    .map_err(map_db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::describe::{body::parse_field, rules::new_field};
    use abbotik_domain::ident::field_name;

    fn field(v: Value) -> FieldDef {
        new_field(
            "orders",
            &field_name("f").unwrap(),
            &parse_field(&v, "").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn index_names_are_short_and_stable() {
        let n = index_name(Kind::Unique, "orders", "number");
        assert!(n.starts_with("uq_") && n.len() == 23, "{n}");
        let h = hex::encode(Sha256::digest(b"orders.number"));
        assert_eq!(&n[3..], &h[..20]);
        let long = "a".repeat(63);
        assert!(index_name(Kind::Search, &long, &long).len() <= 63);
        assert_ne!(
            index_name(Kind::Btree, "a_b", "c"),
            index_name(Kind::Btree, "a", "b_c")
        );
    }

    #[test]
    fn literals_cannot_escape() {
        assert_eq!(quote_literal("it's").unwrap(), "E'it''s'");
        assert_eq!(
            quote_literal(r"a\'; DROP TABLE x; --").unwrap(),
            r"E'a\\''; DROP TABLE x; --'"
        );
        assert!(quote_literal("a\0b").is_err());
    }

    #[test]
    fn column_definitions() {
        let f = field(serde_json::json!({"type":"text","default":"o'k","required":true}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" text DEFAULT E'o''k'::text NOT NULL"
        );
        let f = field(serde_json::json!({"type":"integer","default":-3}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" integer DEFAULT (-3)::integer"
        );
        let f = field(serde_json::json!({"type":"decimal","default":"1.50"}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" numeric DEFAULT '1.50'::numeric"
        );
        let f = field(
            serde_json::json!({"type":"uuid[]","default":["0C3E5B5E-8A4F-4A53-9D2C-1F6F3C1A2B10"]}),
        );
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" uuid[] DEFAULT ARRAY['0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10'::uuid]::uuid[]"
        );
        let f = field(serde_json::json!({"type":"integer[]","default":[]}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" integer[] DEFAULT '{}'::integer[]"
        );
        let f = field(serde_json::json!({"type":"binary","default":"AAE="}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" bytea DEFAULT E'\\\\x0001'::bytea"
        );
        let f = field(serde_json::json!({"type":"jsonb","default":{"k":"'"}}));
        assert_eq!(
            column_def(&f).unwrap(),
            "\"f\" jsonb DEFAULT E'{\"k\":\"''\"}'::jsonb"
        );
        let f = field(serde_json::json!({"type":"bigserial"}));
        assert_eq!(column_def(&f).unwrap(), "\"f\" bigserial");
    }

    #[test]
    fn casts() {
        use FieldType::*;
        assert_eq!(
            cast_parts("\"f\"", Text, Integer),
            ("\"f\"".into(), "integer")
        );
        assert_eq!(
            cast_parts("\"f\"", Decimal, Integer),
            ("\"f\"".into(), "integer")
        );
        assert_eq!(
            cast_parts("\"f\"", Boolean, Uuid),
            ("\"f\"::text".into(), "uuid")
        );
        assert_eq!(
            cast_parts("\"f\"", Bigserial, Text),
            ("\"f\"".into(), "text")
        );
        assert_eq!(
            cast_parts("\"f\"", TextArray, IntegerArray),
            ("\"f\"".into(), "integer[]")
        );
        assert_eq!(
            cast_parts("\"f\"", Uuid, TextArray),
            ("\"f\"::text".into(), "text[]")
        );
    }

    #[test]
    fn index_sql() {
        let s = Ident::trusted("ns_tenant_acme");
        let m = Ident::trusted("orders");
        let f = field(serde_json::json!({"type":"text"}));
        let sql = create_index_sql(Kind::Unique, &s, &m, &f);
        assert!(sql.starts_with("CREATE UNIQUE INDEX \"uq_"));
        assert!(
            sql.ends_with("ON \"ns_tenant_acme\".\"orders\" (\"f\") WHERE deleted_at IS NULL"),
            "{sql}"
        );
        let sql = create_index_sql(Kind::Search, &s, &m, &f);
        assert!(
            sql.ends_with("USING gin (to_tsvector('english', \"f\"::text))"),
            "{sql}"
        );
    }
}
