//! Rendering of import rows for `COPY … FROM STDIN` (text format) and the statements that
//! move a staged batch into its table per strategy (A8.3). Values arrive validated and
//! normalised by the domain; here they only become PostgreSQL text input. Identifiers are
//! validated `Ident`s, quoted; the staging table lives in the session's `pg_temp`.

use abbotik_domain::model::FieldType;
use abbotik_domain::ports::import::{ColumnKind, ImportColumn, ImportRow, ImportTable, LoadMode};
use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde_json::Value;

/// Appends `s` escaped for COPY text format.
fn escape(out: &mut BytesMut, s: &str) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.put_slice(&b[start..i]);
        out.put_slice(rep);
        start = i + 1;
    }
    out.put_slice(&b[start..]);
}

fn scalar_text(ty: FieldType, v: &Value) -> String {
    match (ty, v) {
        (FieldType::Boolean, Value::Bool(b)) => (if *b { "t" } else { "f" }).to_owned(),
        (FieldType::Jsonb, v) => v.to_string(),
        (FieldType::Binary, Value::String(s)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_default();
            format!("\\x{}", hex::encode(bytes))
        }
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// A PostgreSQL array literal of the element type.
fn array_text(el: FieldType, items: &[Value]) -> String {
    let mut s = String::from("{");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let t = scalar_text(el, it);
        if el == FieldType::Text {
            s.push('"');
            for ch in t.chars() {
                if ch == '"' || ch == '\\' {
                    s.push('\\');
                }
                s.push(ch);
            }
            s.push('"');
        } else {
            s.push_str(&t);
        }
    }
    s.push('}');
    s
}

/// One cell's COPY text; `direct` fills absent system columns with their defaults (there
/// is no `INSERT … SELECT` to do it).
fn cell(out: &mut BytesMut, c: &ImportColumn, v: &Value, present: bool, direct: bool) {
    if direct && !present {
        match c.kind {
            ColumnKind::CreatedAt | ColumnKind::UpdatedAt => return out.put_slice(b"now"),
            ColumnKind::Access => return out.put_slice(b"{}"),
            _ => {}
        }
    }
    match v {
        Value::Null => out.put_slice(b"\\N"),
        Value::Array(items) if c.ty.is_array() => escape(out, &array_text(c.ty.element(), items)),
        // The common cases are written straight from the value, without a text copy.
        Value::String(s) if c.ty != FieldType::Binary && c.ty != FieldType::Jsonb => escape(out, s),
        Value::Number(n) if c.ty != FieldType::Jsonb => out.put_slice(n.as_str().as_bytes()),
        Value::Bool(b) if c.ty == FieldType::Boolean => out.put_u8(if *b { b't' } else { b'f' }),
        v => escape(out, &scalar_text(c.ty, v)),
    }
}

/// Rows as COPY text. Staged rows lead with `_line`, `_m` (which keys the line carried) and
/// `_req` (a required field is absent).
pub(super) fn render(out: &mut BytesMut, t: &ImportTable, rows: &[ImportRow], staged: bool) {
    for r in rows {
        if staged {
            out.put_slice(r.line.to_string().as_bytes());
            out.put_slice(b"\t{");
            for (i, (_, p)) in r.cells.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                out.put_u8(if *p { b't' } else { b'f' });
            }
            out.put_slice(if r.needs_existing {
                b"}\tt\t"
            } else {
                b"}\tf\t"
            });
        }
        for (i, (c, (v, p))) in t.columns.iter().zip(r.cells.iter()).enumerate() {
            if i > 0 {
                out.put_u8(b'\t');
            }
            cell(out, c, v, *p, !staged);
        }
        out.put_u8(b'\n');
    }
}

pub(super) fn target(t: &ImportTable) -> String {
    format!("{}.{}", t.table.schema.quoted(), t.table.name.quoted())
}

pub(super) fn column_list(t: &ImportTable) -> String {
    t.columns
        .iter()
        .map(|c| c.name.quoted())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `COPY` straight into the (empty) target.
pub(super) fn copy_direct(t: &ImportTable) -> String {
    format!("COPY {} ({}) FROM STDIN", target(t), column_list(t))
}

/// The staging table of one model: the target's column types, no constraints.
pub(super) fn create_staging(t: &ImportTable, stage: &str) -> String {
    format!(
        "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {tgt} WITH NO DATA; \
         ALTER TABLE {stage} ADD COLUMN _line int8, ADD COLUMN _m bool[], ADD COLUMN _req bool",
        cols = column_list(t),
        tgt = target(t),
    )
}

pub(super) fn copy_staged(t: &ImportTable, stage: &str) -> String {
    format!(
        "COPY {stage} (_line, _m, _req, {}) FROM STDIN",
        column_list(t)
    )
}

/// The value inserted for column `c` of staged row `s`.
fn insert_expr(c: &ImportColumn, serial_seq: &str) -> String {
    let s = format!("s.{}", c.name.quoted());
    match c.kind {
        ColumnKind::User if c.ty == FieldType::Bigserial => format!(
            "COALESCE({s}, nextval(pg_get_serial_sequence({serial_seq}, '{}')))",
            c.name.as_str()
        ),
        ColumnKind::CreatedAt | ColumnKind::UpdatedAt => format!("COALESCE({s}, now())"),
        ColumnKind::Access => format!("COALESCE({s}, '{{}}')"),
        _ => s,
    }
}

/// The value an update writes into column `c` (upsert: every column; merge: present keys).
fn update_expr(c: &ImportColumn, i: usize, merge: bool) -> String {
    let s = format!("s.{}", c.name.quoted());
    let t = format!("t.{}", c.name.quoted());
    let v = match c.kind {
        ColumnKind::User if c.ty == FieldType::Bigserial => format!("COALESCE({s}, {t})"),
        ColumnKind::CreatedAt => format!("COALESCE({s}, {t})"),
        ColumnKind::UpdatedAt => format!("COALESCE({s}, now())"),
        ColumnKind::Access => format!("COALESCE({s}, '{{}}')"),
        _ => s,
    };
    if merge {
        format!("CASE WHEN s._m[{}] THEN {v} ELSE {t} END", i + 1)
    } else {
        v
    }
}

/// `UPDATE` of existing live rows from the stage, answering one row per updated record.
pub(super) fn update_sql(t: &ImportTable, stage: &str, mode: LoadMode) -> String {
    let merge = mode == LoadMode::Merge;
    let sets: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind != ColumnKind::Id)
        .map(|(i, c)| format!("{} = {}", c.name.quoted(), update_expr(c, i, merge)))
        .collect();
    format!(
        "UPDATE {tgt} t SET {sets} FROM {stage} s WHERE t.id = s.id AND t.deleted_at IS NULL",
        tgt = target(t),
        sets = sets.join(", "),
    )
}

/// The first staged line that needs an existing record and has none (merge).
pub(super) fn missing_required_sql(t: &ImportTable, stage: &str) -> String {
    format!(
        "SELECT min(s._line) FROM {stage} s WHERE s._req AND NOT EXISTS \
         (SELECT 1 FROM {tgt} x WHERE x.id = s.id)",
        tgt = target(t)
    )
}

/// `INSERT` of the staged rows whose id is not in the table (purged rows included, so a
/// purged id is skipped, never revived).
pub(super) fn insert_sql(t: &ImportTable, stage: &str, serial_seq: &str) -> String {
    let vals: Vec<String> = t
        .columns
        .iter()
        .map(|c| insert_expr(c, serial_seq))
        .collect();
    format!(
        "INSERT INTO {tgt} ({cols}) SELECT {vals} FROM {stage} s WHERE NOT EXISTS \
         (SELECT 1 FROM {tgt} x WHERE x.id = s.id)",
        tgt = target(t),
        cols = column_list(t),
        vals = vals.join(", "),
    )
}

/// The first staged line whose value of `col` collides with another live record.
pub(super) fn unique_line_sql(t: &ImportTable, stage: &str, col: &str) -> String {
    let c = format!("\"{col}\"");
    format!(
        "SELECT min(l) FROM (\
           SELECT min(s._line) AS l FROM {stage} s JOIN {tgt} x ON x.{c} = s.{c} \
             AND x.id <> s.id AND x.deleted_at IS NULL \
           UNION ALL SELECT max(a._line) FROM {stage} a JOIN {stage} b ON a.{c} = b.{c} AND a.id <> b.id\
         ) q",
        tgt = target(t)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::ident::Ident;
    use abbotik_domain::ports::records::Table;
    use serde_json::json;

    fn col(n: &str, ty: FieldType, kind: ColumnKind) -> ImportColumn {
        ImportColumn {
            name: Ident::trusted(n),
            ty,
            kind,
        }
    }

    #[test]
    fn renders_copy_text() {
        let t = ImportTable {
            table: Table {
                schema: Ident::trusted("ns_tenant_a"),
                name: Ident::trusted("m"),
            },
            columns: vec![
                col("id", FieldType::Uuid, ColumnKind::Id),
                col("t", FieldType::Text, ColumnKind::User),
                col("j", FieldType::Jsonb, ColumnKind::User),
                col("a", FieldType::TextArray, ColumnKind::User),
                col("b", FieldType::Binary, ColumnKind::User),
                col("created_at", FieldType::Timestamp, ColumnKind::CreatedAt),
                col("access_read", FieldType::UuidArray, ColumnKind::Access),
            ],
        };
        let row = ImportRow {
            line: 7,
            cells: vec![
                (json!("0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"), true),
                (json!("tab\there\\ \"q\""), true),
                (json!({"k": "a\\b\n"}), true),
                (json!(["x,y", "q\"", "b\\s"]), true),
                (json!("AAE="), true),
                (Value::Null, false),
                (Value::Null, false),
            ],
            needs_existing: false,
        };
        let mut d = BytesMut::new();
        render(&mut d, &t, std::slice::from_ref(&row), false);
        let s = String::from_utf8(d.to_vec()).unwrap();
        assert_eq!(
            s,
            "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10\ttab\\there\\\\ \"q\"\t{\"k\":\"a\\\\\\\\b\\\\n\"}\t\
             {\"x,y\",\"q\\\\\"\",\"b\\\\\\\\s\"}\t\\\\x0001\tnow\t{}\n"
        );
        let mut d = BytesMut::new();
        render(&mut d, &t, &[row], true);
        assert!(String::from_utf8(d.to_vec())
            .unwrap()
            .starts_with("7\t{t,t,t,t,t,f,f}\tf\t"));
    }
}
