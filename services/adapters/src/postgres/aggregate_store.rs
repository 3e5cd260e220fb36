//! [`Aggregator`] on PostgreSQL (A7): one statement per aggregate request.
//!
//! ```text
//! SELECT to_json(g.c0)::text, …
//! FROM (SELECT <group exprs> AS c0…, <functions> AS cN… FROM t WHERE life AND where GROUP BY 1…) g
//! WHERE <having over g.cI> ORDER BY … LIMIT … OFFSET …
//! ```
//! Output columns are positional (`c0`, `c1`, …), each rendered by PostgreSQL as JSON text;
//! the client's keys (aliases, group keys) never enter the statement — the row objects are
//! assembled here with JSON-escaped keys, in request order. Columns inside
//! come from validated model fields, quoted; time zones are bound. Timestamps render as A1.6
//! text, decimals and sums as exact JSON numbers, averages as `float8`.

use super::db::observe;
use super::records_sql::ts;
use super::records_sql::{self as q, Sql};
use super::{map_db_error, Db};
use abbotik_domain::model::FieldType;
use abbotik_domain::ports::aggregate::{AggFn, AggregateQuery, Aggregator, GroupExpr};
use abbotik_domain::ports::records::Column;
use abbotik_domain::{Result, TenantCtx};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

/// Most time zone names remembered as known (the IANA database has about 600).
const MAX_KNOWN_ZONES: usize = 2048;

/// Aggregates over tenant tables.
pub struct PgAggregator {
    db: Db,
    /// Zone names the database knows: `pg_timezone_names` reads the zone files (~30 ms), so a
    /// name is looked up once per process.
    known_zones: Mutex<HashSet<String>>,
}

impl PgAggregator {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            known_zones: Mutex::new(HashSet::new()),
        }
    }
}

/// How an output column of type `ty` renders into the JSON row.
fn render(expr: &str, ty: FieldType) -> String {
    match ty {
        FieldType::Timestamp => ts(expr),
        FieldType::Binary => format!("translate(encode({expr}, 'base64'), E'\\n', '')"),
        _ => expr.to_owned(),
    }
}

/// The statement of an aggregate query.
pub fn aggregate_sql(a: &AggregateQuery) -> Sql {
    let mut sql = Sql::default();
    let mut inner = Vec::new();
    // (output type) of each positional column, for rendering and ordering.
    let mut types = Vec::new();
    for g in &a.groups {
        match &g.expr {
            GroupExpr::Field(c) => {
                inner.push(q::col("t", &c.name));
                types.push(c.ty);
            }
            GroupExpr::DateTrunc {
                column,
                unit,
                timezone,
            } => {
                let tz = sql.text(timezone.clone());
                let c = q::col("t", &column.name);
                let at = if column.ty == FieldType::Date {
                    format!("({c}::timestamp AT TIME ZONE {tz})")
                } else {
                    c
                };
                // The unit is one of eight fixed names, never client text.
                inner.push(format!("date_trunc('{}', {at}, {tz})", unit.name()));
                types.push(FieldType::Timestamp);
            }
        }
    }
    for f in &a.aggregates {
        let arg = |c: &Option<Column>| {
            c.as_ref()
                .map(|c| q::col("t", &c.name))
                .unwrap_or_else(|| "NULL".into())
        };
        let ty = f.column.as_ref().map_or(FieldType::Integer, |c| c.ty);
        let (expr, out) = match f.func {
            AggFn::CountAll => ("count(*)".to_owned(), FieldType::Bigserial),
            AggFn::Count => (format!("count({})", arg(&f.column)), FieldType::Bigserial),
            AggFn::Distinct => (
                format!("count(DISTINCT {})", arg(&f.column)),
                FieldType::Bigserial,
            ),
            AggFn::Sum => (format!("sum({})", arg(&f.column)), FieldType::Decimal),
            AggFn::Avg => (
                format!("avg({})::float8", arg(&f.column)),
                FieldType::Decimal,
            ),
            AggFn::Min | AggFn::Max => {
                let name = if f.func == AggFn::Min { "min" } else { "max" };
                let c = arg(&f.column);
                if ty == FieldType::Text {
                    (format!("{name}({c} COLLATE \"C\")"), ty)
                } else {
                    (format!("{name}({c})"), ty)
                }
            }
        };
        inner.push(expr);
        types.push(out);
    }
    let inner_list: Vec<String> = inner
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS c{i}"))
        .collect();
    let where_f = q::filter(&mut sql, "t", &a.filter);
    let group_by = if a.groups.is_empty() {
        String::new()
    } else {
        let pos: Vec<String> = (1..=a.groups.len()).map(|i| i.to_string()).collect();
        format!(" GROUP BY {}", pos.join(", "))
    };
    let cells: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("to_json({})::text", render(&format!("g.c{i}"), *ty)))
        .collect();
    let having = q::filter(&mut sql, "g", &a.having);
    let order: Vec<String> = a
        .order
        .iter()
        .map(|o| {
            let collate = if types.get(o.position) == Some(&FieldType::Text) {
                " COLLATE \"C\""
            } else {
                ""
            };
            let dir = if o.desc { "DESC" } else { "ASC" };
            format!("g.c{}{collate} {dir}", o.position)
        })
        .collect();
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    let limit = sql.int(a.limit);
    let offset = sql.int(a.offset);
    sql.text = format!(
        "SELECT {cells} FROM (SELECT {inner} FROM {t} t WHERE {life} AND {where_f}{group_by}) g \
         WHERE {having}{order} LIMIT {limit} OFFSET {offset}",
        cells = cells.join(", "),
        inner = inner_list.join(", "),
        t = q::table(&a.table),
        life = q::life_predicate("t", a.trashed),
    );
    sql
}

/// The rows of an aggregate as the JSON text of an array of objects: the client's keys
/// (JSON-escaped here), each with the JSON text PostgreSQL rendered for its column.
pub(super) fn rows_json(a: &AggregateQuery, rows: &[tokio_postgres::Row]) -> String {
    let keys: Vec<String> = a
        .groups
        .iter()
        .map(|g| &g.key)
        .chain(a.aggregates.iter().map(|f| &f.key))
        .map(|k| serde_json::Value::String(k.clone()).to_string())
        .collect();
    let mut out = String::from("[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for (j, key) in keys.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push(':');
            out.push_str(r.get::<_, Option<&str>>(j).unwrap_or("null"));
        }
        out.push('}');
    }
    out.push(']');
    out
}

#[async_trait::async_trait]
impl Aggregator for PgAggregator {
    async fn aggregate(&self, _ctx: &TenantCtx, a: &AggregateQuery) -> Result<String> {
        let started = Instant::now();
        let c = self.db.conn().await?;
        let sql = aggregate_sql(a);
        let st = c.prepare(&sql.text).await.map_err(map_db_error)?;
        let rows = c.query(&st, &sql.refs()).await.map_err(map_db_error)?;
        observe("records.aggregate", started);
        Ok(rows_json(a, &rows))
    }

    async fn timezone_known(&self, _ctx: &TenantCtx, name: &str) -> Result<bool> {
        if self.known_zones.lock().is_ok_and(|z| z.contains(name)) {
            return Ok(true);
        }
        let c = self.db.conn().await?;
        let st = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .await
            .map_err(map_db_error)?;
        let row = c.query_one(&st, &[&name]).await.map_err(map_db_error)?;
        let known = row.get::<_, bool>(0);
        if known {
            if let Ok(mut z) = self.known_zones.lock() {
                if z.len() < MAX_KNOWN_ZONES {
                    z.insert(name.to_owned());
                }
            }
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::data::filter::{CmpOp, Filter};
    use abbotik_domain::ident::Ident;
    use abbotik_domain::ports::aggregate::{AggOrder, Aggregate, DateUnit, GroupKey};
    use abbotik_domain::ports::records::{Table, TrashedScope};
    use serde_json::json;

    #[test]
    fn keys_and_zones_never_enter_the_statement() {
        let col = |n: &str, ty| Column {
            name: Ident::trusted(n),
            ty,
        };
        let q = AggregateQuery {
            table: Table {
                schema: Ident::trusted("ns_tenant_acme"),
                name: Ident::trusted("orders"),
            },
            filter: Filter::True,
            trashed: TrashedScope::Exclude,
            groups: vec![
                GroupKey {
                    key: "state_key_x".into(),
                    expr: GroupExpr::Field(col("state", FieldType::Text)),
                },
                GroupKey {
                    key: "day_key_x".into(),
                    expr: GroupExpr::DateTrunc {
                        column: col("at", FieldType::Timestamp),
                        unit: DateUnit::Week,
                        timezone: "Europe/Paris".into(),
                    },
                },
            ],
            aggregates: vec![Aggregate {
                key: "revenue_key_x".into(),
                func: AggFn::Sum,
                column: Some(col("total", FieldType::Decimal)),
            }],
            having: Filter::Cmp {
                column: col("c2", FieldType::Decimal),
                op: CmpOp::Gt,
                value: json!(100),
            },
            order: vec![AggOrder {
                position: 2,
                desc: true,
            }],
            limit: 10,
            offset: 0,
        };
        let sql = aggregate_sql(&q);
        assert!(!sql.text.contains("_key_x"), "{}", sql.text);
        assert!(!sql.text.contains("Europe"), "{}", sql.text);
        assert!(sql.text.contains("date_trunc('week', t.\"at\", $1::text)"));
        assert!(sql.text.contains("GROUP BY 1, 2"));
        assert!(sql.text.contains("WHERE g.\"c2\" > $2::text::numeric"));
        assert!(sql.text.contains("ORDER BY g.c2 DESC"));
        assert!(sql.text.contains("FROM \"ns_tenant_acme\".\"orders\" t"));
        assert_eq!(sql.params.len(), 4);
    }
}
