//! SQL text of the record store: projections rendered by PostgreSQL as JSON (A1.6 timestamps,
//! base64 bytea, exact numerics), and the statements of reads and writes. The filter compiler
//! is `filter_sql` (re-exported here as [`filter`]).
//!
//! Identifiers come only from validated [`Ident`]s (model, field and schema names) and the
//! fixed system column names, always quoted and schema-qualified. Every value is a bound
//! parameter: scalars as `$n::text::<type>`, record documents as one `jsonb` array.

pub use super::filter_sql::filter;
use abbotik_domain::data::values;
use abbotik_domain::ident::Ident;
use abbotik_domain::model::FieldType;
use abbotik_domain::ports::records::{Column, OrderBy, Projection, Table, TrashedScope};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock};
use tokio_postgres::types::ToSql;

/// A bound parameter.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// Rendered statement texts by shape (everything that decides a text, no bound value): the
/// hot statements bind their values into a ready text instead of formatting it on every
/// request. Bounded; starts over when full.
pub struct TextCache<K> {
    map: LazyLock<Mutex<FxHashMap<K, Arc<str>>>>,
}

/// Shapes kept per cache.
const TEXT_CACHE_MAX: usize = 10_000;

impl<K: Hash + Eq> TextCache<K> {
    pub const fn new() -> Self {
        TextCache {
            map: LazyLock::new(Default::default),
        }
    }

    /// The text of `key`, rendered by `render` the first time.
    pub fn get_or_render(&self, key: K, render: impl FnOnce() -> String) -> String {
        if let Some(text) = self.map.lock().get(&key) {
            return text.to_string();
        }
        let text = render();
        let mut map = self.map.lock();
        if map.len() >= TEXT_CACHE_MAX {
            map.clear();
        }
        map.insert(key, Arc::from(text.as_str()));
        text
    }
}

/// Statement text with its parameters.
#[derive(Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    /// Binds a text value; returns `$n::text`.
    pub fn text(&mut self, v: String) -> String {
        self.params.push(Box::new(v));
        format!("${}::text", self.params.len())
    }

    /// Binds a text array; returns `$n::text[]`.
    pub fn texts(&mut self, v: Vec<String>) -> String {
        self.params.push(Box::new(v));
        format!("${}::text[]", self.params.len())
    }

    /// Binds a uuid (binary, no cast in the statement); returns `$n::uuid`.
    pub fn uuid(&mut self, v: uuid::Uuid) -> String {
        self.params.push(Box::new(v));
        format!("${}::uuid", self.params.len())
    }

    /// Binds a uuid array; returns `$n::uuid[]`.
    pub fn uuids(&mut self, v: Vec<uuid::Uuid>) -> String {
        self.params.push(Box::new(v));
        format!("${}::uuid[]", self.params.len())
    }

    /// Binds an `int8` array; returns `$n::int8[]`.
    pub fn ints(&mut self, v: Vec<i64>) -> String {
        self.params.push(Box::new(v));
        format!("${}::int8[]", self.params.len())
    }

    /// Binds an `int8`; returns `$n::int8`.
    pub fn int(&mut self, v: i64) -> String {
        self.params.push(Box::new(v));
        format!("${}::int8", self.params.len())
    }

    /// Borrowed parameters for the driver.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// `"schema"."table"`.
pub fn table(t: &Table) -> String {
    format!("{}.{}", t.schema.quoted(), t.name.quoted())
}

/// `alias."column"`.
pub fn col(alias: &str, c: &Ident) -> String {
    format!("{alias}.{}", c.quoted())
}

/// A timestamp as A1.6 text (UTC, 6 fraction digits, `Z`).
pub(super) fn ts(expr: &str) -> String {
    format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

fn render(alias: &str, c: &Column) -> String {
    let e = col(alias, &c.name);
    match c.ty {
        FieldType::Timestamp => format!("{} AS {}", ts(&e), c.name.quoted()),
        FieldType::Binary => format!(
            "translate(encode({e}, 'base64'), E'\\n', '') AS {}",
            c.name.quoted()
        ),
        _ => e,
    }
}

/// The select list of a rendered record: id, user fields, system fields (A1.7 order).
pub fn projection(alias: &str, p: &Projection) -> String {
    let mut out = vec![format!("{alias}.id")];
    out.extend(p.user.iter().map(|c| render(alias, c)));
    for s in &p.system {
        out.push(match *s {
            // Purged rows are never returned, so `deleted_at` is always null (A1.7).
            "deleted_at" => "NULL::text AS deleted_at".to_owned(),
            "created_at" | "updated_at" | "trashed_at" => {
                format!("{} AS {s}", ts(&format!("{alias}.{s}")))
            }
            other => format!("{alias}.{other}"),
        });
    }
    out.join(", ")
}

/// `row_to_json(p)::text` of a row aliased `alias`, via a LATERAL projection named `p`.
pub fn lateral(alias: &str, p: &Projection) -> String {
    format!("LATERAL (SELECT {}) p", projection(alias, p))
}

/// A bound scalar converted to the column type.
pub(super) fn bound(sql: &mut Sql, ty: FieldType, v: &serde_json::Value) -> String {
    if ty.is_array() || ty == FieldType::Jsonb {
        let p = sql.text(v.to_string());
        return if ty == FieldType::Jsonb {
            format!("{p}::jsonb")
        } else {
            format!(
                "ARRAY(SELECT jsonb_array_elements_text({p}::jsonb))::{}",
                ty.pg_type()
            )
        };
    }
    let p = sql.text(values::sql_text(v));
    match ty {
        FieldType::Text => p,
        FieldType::Binary => format!("decode({p}, 'base64')"),
        other => format!("{p}::{}", other.pg_type()),
    }
}

/// Trash and purge predicates of a read.
pub fn life_predicate(alias: &str, trashed: TrashedScope) -> String {
    match trashed {
        TrashedScope::Exclude => {
            format!("{alias}.deleted_at IS NULL AND {alias}.trashed_at IS NULL")
        }
        TrashedScope::Include => format!("{alias}.deleted_at IS NULL"),
        TrashedScope::Only => {
            format!("{alias}.deleted_at IS NULL AND {alias}.trashed_at IS NOT NULL")
        }
    }
}

/// `ORDER BY` keys.
pub fn order(alias: &str, keys: &[OrderBy]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{} {}",
                col(alias, &k.column),
                if k.desc { "DESC" } else { "ASC" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of column `c` in the document `d` (jsonb), cast to the column type.
/// A JSON `null` (or an absent key) gives SQL NULL.
pub fn doc_value(d: &str, c: &Column) -> String {
    // Field names are validated identifiers ([a-z0-9_]), safe inside a string literal.
    let k = format!("'{}'", c.name.as_str());
    match c.ty {
        FieldType::Text => format!("({d}->>{k})"),
        FieldType::Jsonb => format!("nullif({d}->{k}, 'null'::jsonb)"),
        FieldType::Binary => format!("decode({d}->>{k}, 'base64')"),
        t if t.is_array() => format!(
            "(CASE WHEN jsonb_typeof({d}->{k}) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text({d}->{k}))::{} END)",
            t.pg_type()
        ),
        t => format!("({d}->>{k})::{}", t.pg_type()),
    }
}

/// `d ? 'name'` — whether the document carries the key.
pub fn doc_has(d: &str, c: &Column) -> String {
    format!("{d} ? '{}'", c.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::data::filter::Filter;
    use serde_json::json;

    fn c(name: &str, ty: FieldType) -> Column {
        Column {
            name: Ident::trusted(name),
            ty,
        }
    }

    #[test]
    fn projection_renders_system_fields() {
        let p = Projection {
            user: vec![
                c("total", FieldType::Decimal),
                c("at", FieldType::Timestamp),
            ],
            system: vec!["created_at", "deleted_at", "access_read"],
        };
        let s = projection("t", &p);
        assert!(s.starts_with("t.id, t.\"total\", to_char(t.\"at\""));
        assert!(s.contains("NULL::text AS deleted_at"));
        assert!(s.ends_with("t.access_read"));
    }

    #[test]
    fn filters_bind_values() {
        let mut sql = Sql::default();
        let f = Filter::And(vec![
            Filter::Eq {
                column: c("total", FieldType::Decimal),
                value: json!("1.5"),
            },
            Filter::In {
                column: c("state", FieldType::Text),
                values: vec![json!("a'b")],
                or_null: true,
            },
            Filter::IsNull {
                column: c("x", FieldType::Text),
            },
        ]);
        let s = filter(&mut sql, "t", &f);
        assert_eq!(
            s,
            "(t.\"total\" = $1::text::numeric AND (t.\"state\" = ANY($2::text[]) OR t.\"state\" IS NULL) AND t.\"x\" IS NULL)"
        );
        assert_eq!(sql.params.len(), 2);
        assert!(!s.contains("a'b"));
    }

    #[test]
    fn doc_values_cast() {
        assert_eq!(
            doc_value("x.d", &c("n", FieldType::Integer)),
            "(x.d->>'n')::integer"
        );
        assert!(doc_value("x.d", &c("tags", FieldType::TextArray)).contains("::text[]"));
    }
}
