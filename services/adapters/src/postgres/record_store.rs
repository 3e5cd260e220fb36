//! [`RecordStore`] on PostgreSQL. Reads are one prepared statement; a write is one statement
//! in autocommit when it has a single step and no reference check, else one transaction
//! (reference check, then each step). By-id reads and single-record creates may share their
//! statement with concurrent ones of the same shape ([`super::by_id_read`],
//! [`super::group_commit`]). Problems found by a statement (missing ids, trash state,
//! immutable fields, references) or raised by PostgreSQL (id or unique conflicts) come back
//! as [`Problem`]s and nothing is written.

use super::by_id_read::ByIdReads;
use super::db::{observe, query_prepared};
use super::group_commit::GroupCommit;
use super::records_sql::{self as q, Sql};
use super::records_write::{
    self as qw, KIND_IMMUTABLE, KIND_MISSING, KIND_REFERENCE, KIND_ROW, KIND_STATE,
};
use super::{map_db_error, Db};
use abbotik_domain::data::filter::Filter;
use abbotik_domain::ports::records::{
    Doc, Guarded, LifeOp, Outcome, Problem, RecordStore, RowStream, Select, Table, TaggedRowStream,
    TrashedModel, TrashedScope, UniqueIndex, Write, WriteOp,
};
use abbotik_domain::{Result, TenantCtx};
use deadpool_postgres::GenericClient;
use std::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

/// Records over PostgreSQL.
pub struct PgRecordStore {
    db: Db,
    creates: GroupCommit,
    by_id: ByIdReads,
}

impl PgRecordStore {
    pub fn new(db: Db) -> Self {
        Self {
            creates: GroupCommit::new(db.clone()),
            by_id: ByIdReads::new(db.clone()),
            db,
        }
    }
}

pub(super) async fn query<C: GenericClient>(
    c: &C,
    sql: &Sql,
) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
    query_prepared(c, &sql.text, &sql.refs()).await
}

/// The id of a read whose filter is exactly `id = <value>` with limit 1, offset 0.
pub(super) fn by_id(s: &Select) -> Option<String> {
    match &s.filter {
        Filter::Eq {
            column,
            value: serde_json::Value::String(id),
        } if column.name.as_str() == "id" && s.limit == 1 && s.offset == 0 => Some(id.clone()),
        _ => None,
    }
}

/// `SELECT row_to_json(p)::text …` of a by-id read: at most one row by the primary key, so
/// no order, limit or offset for the executor to set up.
pub(super) fn select_by_id_sql(s: &Select) -> Sql {
    let mut sql = Sql::default();
    let f = q::filter(&mut sql, "t", &s.filter);
    sql.text = format!(
        "SELECT row_to_json(p)::text FROM {t} t, {lat} WHERE {life} AND {f}",
        t = q::table(&s.table),
        lat = q::lateral("t", &s.projection),
        life = q::life_predicate("t", s.trashed),
    );
    sql
}

/// `SELECT EXISTS (…)`: a row with that id that is not purged, in the trash state allowed.
pub(super) fn exists_sql(table: &Table, id: Uuid, trashed: TrashedScope) -> Sql {
    let mut sql = Sql::default();
    let p = sql.text(id.to_string());
    sql.text = format!(
        "SELECT EXISTS (SELECT 1 FROM {t} t WHERE t.id = {p}::uuid AND {life})",
        t = q::table(table),
        life = q::life_predicate("t", trashed),
    );
    sql
}

/// `SELECT row_to_json(p)::text …` of a read.
pub fn select_sql(s: &Select) -> Sql {
    let mut sql = Sql::default();
    let f = q::filter(&mut sql, "t", &s.filter);
    let limit = sql.int(s.limit);
    let offset = sql.int(s.offset);
    sql.text = format!(
        "SELECT row_to_json(p)::text FROM {t} t, {lat} WHERE {life} AND {f} \
         ORDER BY {ord} LIMIT {limit} OFFSET {offset}",
        t = q::table(&s.table),
        lat = q::lateral("t", &s.projection),
        life = q::life_predicate("t", s.trashed),
        ord = q::order("t", &s.order),
    );
    sql
}

/// The value in `Key (col)=(value) already exists.`.
fn detail_value(detail: Option<&str>) -> Option<String> {
    let d = detail?;
    let start = d.find(")=(")? + 3;
    let end = d.rfind(") already exists")?;
    (end >= start).then(|| d[start..end].to_owned())
}

/// A unique violation as a problem: the primary key → the id exists; an index of a field →
/// that field; anything else → an unnamed unique violation.
fn unique_problem(
    e: &tokio_postgres::Error,
    docs: &[&Doc],
    unique: &[UniqueIndex],
) -> Option<Problem> {
    let db = e.as_db_error()?;
    if *db.code() != SqlState::UNIQUE_VIOLATION {
        return None;
    }
    let value = detail_value(db.detail());
    let constraint = db.constraint().unwrap_or_default();
    if constraint.ends_with("_pkey") {
        let id = value.as_deref().and_then(|v| Uuid::parse_str(v).ok())?;
        let ord = docs.iter().find(|d| d.id == id).map_or(0, |d| d.ord);
        return Some(Problem::Exists { ord, id });
    }
    let field = unique
        .iter()
        .find(|u| u.index == constraint)
        .map(|u| u.field.clone());
    Some(Problem::Unique { field, value })
}

/// Splits a write statement's answer into rendered rows and problems.
fn collect(rows: &[Row], op: Option<LifeOp>, out: &mut Vec<(i64, String)>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for r in rows {
        let kind: i32 = r.get(0);
        let ord: i64 = r.get(1);
        let text: String = r.get(2);
        let id = || Uuid::parse_str(&text).unwrap_or_default();
        match kind {
            KIND_ROW => out.push((ord, text)),
            KIND_MISSING => problems.push(match op {
                Some(LifeOp::Restore | LifeOp::Purge) => Problem::NotInTrash { ord, id: id() },
                _ => Problem::NotFound { ord, id: id() },
            }),
            KIND_STATE => problems.push(match op {
                Some(LifeOp::Restore | LifeOp::Purge) => Problem::NotInTrash { ord, id: id() },
                _ => Problem::Trashed { ord, id: id() },
            }),
            KIND_IMMUTABLE => problems.push(Problem::Immutable { ord, field: text }),
            KIND_REFERENCE => {
                let (field, value) = text.split_once(':').unwrap_or((text.as_str(), ""));
                problems.push(Problem::Reference {
                    field: field.to_owned(),
                    value: value.to_owned(),
                });
            }
            _ => {}
        }
    }
    problems
}

/// Every document of the insert and update steps (for reference checks and conflicts).
fn all_docs(w: &Write) -> Vec<&Doc> {
    w.ops
        .iter()
        .flat_map(|op| match op {
            WriteOp::Insert(i) => i.docs.iter().collect::<Vec<_>>(),
            WriteOp::Update(u) => u.docs.iter().collect(),
            WriteOp::Life(_) => Vec::new(),
        })
        .collect()
}

/// Runs the steps of a write on one client (a transaction when there are several).
pub(super) async fn run_steps<C: GenericClient>(c: &C, w: &Write) -> Result<Outcome> {
    let docs = all_docs(w);
    if let Some(check) = qw::reference_check(&w.refs, &docs) {
        let rows = query(c, &check).await.map_err(map_db_error)?;
        if let Some(r) = rows.first() {
            return Ok(Outcome::Problems(vec![Problem::Reference {
                field: r.get(0),
                value: r.get(1),
            }]));
        }
    }
    let mut out = Vec::new();
    for op in &w.ops {
        let (sql, life) = match op {
            WriteOp::Insert(i) => (qw::insert(i, &w.projection), None),
            WriteOp::Update(u) => (qw::update(u, &w.projection), None),
            WriteOp::Life(l) => (qw::life(l, &w.projection), Some(l.op)),
        };
        let rows = match query(c, &sql).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(p) = unique_problem(&e, &docs, &w.unique) {
                    return Ok(Outcome::Problems(vec![p]));
                }
                return Err(map_db_error(e));
            }
        };
        let problems = collect(&rows, life, &mut out);
        if !problems.is_empty() {
            return Ok(Outcome::Problems(problems));
        }
    }
    Ok(Outcome::Rows(out))
}

#[async_trait::async_trait]
impl RecordStore for PgRecordStore {
    async fn select(&self, _ctx: &TenantCtx, s: &Select) -> Result<Vec<String>> {
        let started = Instant::now();
        if let Some(out) = self.by_id.plain(s).await {
            observe("records.select", started);
            return Ok(out?.into_iter().collect());
        }
        let rows = if by_id(s).is_some() {
            // At most one row by the primary key: short enough for a read lane.
            let sql = select_by_id_sql(s);
            self.db.read(&sql.text, &sql.refs()).await?
        } else {
            let c = self.db.conn().await?;
            query(&c, &select_sql(s)).await
        }
        .map_err(map_db_error)?;
        observe("records.select", started);
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    async fn stream(&self, _ctx: &TenantCtx, s: &Select) -> Result<RowStream> {
        Ok(super::records_stream::spawn(self.db.clone(), s.clone()))
    }

    async fn stream_snapshot(&self, _ctx: &TenantCtx, qs: &[Select]) -> Result<TaggedRowStream> {
        Ok(super::records_stream::spawn_snapshot(
            self.db.clone(),
            qs.to_vec(),
        ))
    }

    async fn select_one_guarded(&self, ctx: &TenantCtx, s: &Select) -> Result<Option<Guarded>> {
        let started = Instant::now();
        let out = self.by_id.guarded(ctx, s).await;
        observe("records.select_guarded", started);
        out
    }

    async fn exists(
        &self,
        _ctx: &TenantCtx,
        table: &Table,
        id: Uuid,
        trashed: TrashedScope,
    ) -> Result<bool> {
        let sql = exists_sql(table, id, trashed);
        let rows = self
            .db
            .read(&sql.text, &sql.refs())
            .await?
            .map_err(map_db_error)?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    async fn write(&self, _ctx: &TenantCtx, w: &Write) -> Result<Outcome> {
        let started = Instant::now();
        if let Some(out) = self.creates.write(w).await {
            observe("records.write", started);
            return out;
        }
        let mut c = self.db.conn().await?;
        let single = w.ops.len() == 1 && qw::reference_check(&w.refs, &all_docs(w)).is_none();
        let out = if single {
            // One statement is one transaction: all of it commits, or none.
            run_steps(&c, w).await?
        } else {
            let tx = c.transaction().await.map_err(map_db_error)?;
            let out = run_steps(&tx, w).await?;
            if matches!(out, Outcome::Rows(_)) {
                tx.commit().await.map_err(map_db_error)?;
            }
            out
        };
        observe("records.write", started);
        Ok(out)
    }

    async fn trashed_overview(
        &self,
        _ctx: &TenantCtx,
        models: &[TrashedModel],
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        let c = self.db.conn().await?;
        let mut sql = Sql::default();
        let lim = sql.int(limit);
        let parts: Vec<String> = models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "(SELECT {i} AS mi, t.created_at AS c, t.id AS i, row_to_json(p)::text AS j \
                     FROM {t} t, {lat} WHERE {life} ORDER BY t.created_at, t.id LIMIT {lim})",
                    t = q::table(&m.table),
                    lat = q::lateral("t", &m.projection),
                    life = q::life_predicate("t", TrashedScope::Only),
                )
            })
            .collect();
        sql.text = format!(
            "SELECT u.mi, u.j FROM ({}) u ORDER BY u.mi, u.c, u.i",
            parts.join(" UNION ALL ")
        );
        let rows = query(&c, &sql).await.map_err(map_db_error)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let i: i32 = r.get(0);
                let m = models.get(usize::try_from(i).ok()?)?;
                Some((m.model.clone(), r.get::<_, String>(1)))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conflict_detail() {
        assert_eq!(
            detail_value(Some("Key (number)=(A-1) already exists.")),
            Some("A-1".to_owned())
        );
        assert_eq!(
            detail_value(Some("Key (model_name, name)=(a, b) already exists.")),
            Some("a, b".to_owned())
        );
        assert_eq!(detail_value(None), None);
    }
}
