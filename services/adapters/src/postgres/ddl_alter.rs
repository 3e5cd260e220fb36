//! Changing a field (A4.5): drop indexes no longer wanted, change the type (cast failures and
//! new duplicates → `FIELD_CHANGE_CONFLICT` with sample ids), default, NOT NULL (nulls filled
//! from a new default, else a conflict), new indexes, then the field row. All inside the
//! caller's describe transaction; failing statements run under a savepoint so the conflict
//! samples can still be read before the whole transaction is rolled back.

use super::ddl::map_db_error;
use super::ddl::{self, Kind};
use abbotik_domain::ident::Ident;
use abbotik_domain::model::{FieldDef, FieldType};
use abbotik_domain::Result;
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

const KINDS: [Kind; 4] = [Kind::Unique, Kind::Btree, Kind::Search, Kind::Rel];

fn on(f: &FieldDef, k: Kind) -> bool {
    match k {
        Kind::Unique => f.unique,
        Kind::Btree => f.index,
        Kind::Search => f.searchable,
        Kind::Rel => f.relationship_type.is_some(),
    }
}

fn recorded(f: &FieldDef) -> [Option<String>; 4] {
    [
        f.indexes.unique.clone(),
        f.indexes.index.clone(),
        f.indexes.search.clone(),
        f.indexes.relationship.clone(),
    ]
}

/// Runs a sampling query under a savepoint; any failure yields no samples (they are a hint).
async fn sample_safe(c: &Client, sql: &str) -> Result<Vec<uuid::Uuid>> {
    c.batch_execute("SAVEPOINT abbotik_sample")
        .await
        .map_err(map_db_error)?;
    match c.query(sql, &[]).await {
        Ok(rows) => {
            c.batch_execute("RELEASE SAVEPOINT abbotik_sample")
                .await
                .map_err(map_db_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        }
        Err(_) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT abbotik_sample")
                .await
                .map_err(map_db_error)?;
            Ok(vec![])
        }
    }
}

/// Ids of rows whose value does not convert: a per-row test of the same cast, each in its own
/// subtransaction (temporary function, gone with the transaction).
async fn cast_failures(c: &Client, t: &str, src: &str, to_pg: &str) -> Result<Vec<uuid::Uuid>> {
    let f = "CREATE OR REPLACE FUNCTION pg_temp.abbotik_cast_fails(v anyelement, t text) RETURNS boolean \
             LANGUAGE plpgsql AS $f$ BEGIN EXECUTE format('SELECT $1::%s', t) USING v; RETURN false; \
             EXCEPTION WHEN others THEN RETURN true; END $f$";
    if c.batch_execute(f).await.is_err() {
        return Ok(vec![]);
    }
    sample_safe(
        c,
        &format!(
            "SELECT id FROM {t} WHERE {src} IS NOT NULL AND pg_temp.abbotik_cast_fails({src}, '{to_pg}') \
             ORDER BY id LIMIT 10"
        ),
    )
    .await
}

fn is_cast_error(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        let code = d.code().code();
        code.starts_with("22") || code == "42846" || code == "42804" || code == "42883"
    })
}

pub(crate) async fn alter_field(
    c: &Client,
    s: &Ident,
    m: &Ident,
    old: &FieldDef,
    new: &FieldDef,
) -> Result<()> {
    let t = format!("{}.{}", s.quoted(), m.quoted());
    let cl = format!("\"{}\"", new.field_name);
    let mut idx = recorded(old);
    // 1. Indexes no longer wanted (dropped by their recorded names).
    for (i, k) in KINDS.into_iter().enumerate() {
        if !on(new, k) {
            if let Some(name) = idx[i].take() {
                c.batch_execute(&format!("DROP INDEX IF EXISTS {}.\"{name}\"", s.quoted()))
                    .await
                    .map_err(map_db_error)?;
            }
        }
    }
    // 2. Type.
    let type_changed = old.field_type != new.field_type;
    if type_changed {
        if old.default_value.is_some() || old.field_type == FieldType::Bigserial {
            c.batch_execute(&format!("ALTER TABLE {t} ALTER COLUMN {cl} DROP DEFAULT"))
                .await
                .map_err(map_db_error)?;
        }
        let (src, to_pg) = ddl::cast_parts(&cl, old.field_type, new.field_type);
        let sql = format!("ALTER TABLE {t} ALTER COLUMN {cl} TYPE {to_pg} USING {src}::{to_pg}");
        if let Err(e) = ddl::try_exec(c, &sql).await? {
            if e.as_db_error().map(|d| d.code()) == Some(&SqlState::UNIQUE_VIOLATION) {
                let ids = sample_safe(
                    c,
                    &format!(
                        "SELECT id FROM {t} WHERE deleted_at IS NULL AND ({src})::{to_pg} IN \
                         (SELECT ({src})::{to_pg} FROM {t} WHERE deleted_at IS NULL GROUP BY 1 HAVING count(*) > 1) \
                         ORDER BY id LIMIT 10"
                    ),
                )
                .await?;
                return Err(ddl::conflict(
                    &new.field_name,
                    "duplicates",
                    "Converted values would break the field's unique index",
                    ids,
                ));
            }
            if is_cast_error(&e) {
                let ids = cast_failures(c, &t, &src, to_pg).await?;
                return Err(ddl::conflict(
                    &new.field_name,
                    "cast_failed",
                    &format!(
                        "Existing values cannot be converted from {} to {}",
                        old.field_type.as_str(),
                        new.field_type.as_str()
                    ),
                    ids,
                ));
            }
            return Err(map_db_error(e));
        }
    }
    // 3. Default.
    if type_changed || old.default_value != new.default_value {
        match ddl::default_literal(new)? {
            Some(d) => c
                .batch_execute(&format!(
                    "ALTER TABLE {t} ALTER COLUMN {cl} SET DEFAULT {d}"
                ))
                .await
                .map_err(map_db_error)?,
            None if !type_changed && old.default_value.is_some() => c
                .batch_execute(&format!("ALTER TABLE {t} ALTER COLUMN {cl} DROP DEFAULT"))
                .await
                .map_err(map_db_error)?,
            None => {}
        }
    }
    // 4. NOT NULL: nulls are filled from the default when there is one.
    if new.required && !old.required {
        if let Some(d) = ddl::default_literal(new)? {
            c.batch_execute(&format!("UPDATE {t} SET {cl} = {d} WHERE {cl} IS NULL"))
                .await
                .map_err(map_db_error)?;
        }
        let ids = sample_safe(
            c,
            &format!("SELECT id FROM {t} WHERE {cl} IS NULL ORDER BY id LIMIT 10"),
        )
        .await?;
        if !ids.is_empty() {
            return Err(ddl::conflict(
                &new.field_name,
                "nulls",
                "Existing records have no value for this field; add a default_value or fill them first",
                ids,
            ));
        }
        c.batch_execute(&format!("ALTER TABLE {t} ALTER COLUMN {cl} SET NOT NULL"))
            .await
            .map_err(map_db_error)?;
    } else if !new.required && old.required {
        c.batch_execute(&format!("ALTER TABLE {t} ALTER COLUMN {cl} DROP NOT NULL"))
            .await
            .map_err(map_db_error)?;
    }
    // 5. New indexes.
    for (i, k) in KINDS.into_iter().enumerate() {
        if on(new, k) && idx[i].is_none() {
            idx[i] = Some(ddl::create_index(c, k, s, m, new).await?);
        }
    }
    // 6. The field row.
    update_field_row(c, s, new, &idx).await
}

async fn update_field_row(
    c: &Client,
    s: &Ident,
    f: &FieldDef,
    idx: &[Option<String>; 4],
) -> Result<()> {
    let sql = format!(
        "UPDATE {}.\"fields\" SET type = $3, required = $4, default_value = $5, description = $6, \
         minimum = $7::text::numeric, maximum = $8::text::numeric, pattern = $9, enum_values = $10, is_array = $11, \
         immutable = $12, sudo = $13, \"unique\" = $14, \"index\" = $15, searchable = $16, tracked = $17, \
         transform = $18, relationship_type = $19, related_model = $20, related_field = $21, \
         relationship_name = $22, cascade_delete = $23, unique_index = $24, btree_index = $25, \
         search_index = $26, relationship_index = $27, updated_at = now() \
         WHERE model_name = $1 AND field_name = $2",
        s.quoted()
    );
    let min = f.minimum.as_ref().map(|n| n.to_string());
    let max = f.maximum.as_ref().map(|n| n.to_string());
    let enums = f.enum_values.as_ref().map(|e| json!(e));
    let transform = f.transform.map(|t| t.as_str());
    let rel = f.relationship_type.map(|r| r.as_str());
    c.execute(
        &sql,
        &[
            &f.model_name,
            &f.field_name,
            &f.field_type.as_str(),
            &f.required,
            &f.default_value,
            &f.description,
            &min,
            &max,
            &f.pattern,
            &enums,
            &f.is_array,
            &f.immutable,
            &f.sudo,
            &f.unique,
            &f.index,
            &f.searchable,
            &f.tracked,
            &transform,
            &rel,
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
