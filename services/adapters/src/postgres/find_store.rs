//! [`RecordCounter`] on PostgreSQL: the total of a find (A6.1), one `count(*)` statement over
//! the same table, trash scope and compiled filter as the read.

use super::db::observe;
use super::records_sql::{self as q, Sql};
use super::{map_db_error, Db};
use abbotik_domain::ports::records::{RecordCounter, Select};
use abbotik_domain::{Result, TenantCtx};
use std::time::Instant;

/// Totals of record reads.
pub struct PgRecordCounter {
    db: Db,
}

impl PgRecordCounter {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// `SELECT count(*) …` of a read, ignoring its order, limit and offset.
pub fn count_sql(s: &Select) -> Sql {
    let mut sql = Sql::default();
    let f = q::filter(&mut sql, "t", &s.filter);
    sql.text = format!(
        "SELECT count(*) FROM {t} t WHERE {life} AND {f}",
        t = q::table(&s.table),
        life = q::life_predicate("t", s.trashed),
    );
    sql
}

#[async_trait::async_trait]
impl RecordCounter for PgRecordCounter {
    async fn count(&self, _ctx: &TenantCtx, s: &Select) -> Result<i64> {
        let started = Instant::now();
        let c = self.db.conn().await?;
        let sql = count_sql(s);
        let st = c.prepare_cached(&sql.text).await.map_err(map_db_error)?;
        let row = c.query_one(&st, &sql.refs()).await.map_err(map_db_error)?;
        observe("records.count", started);
        Ok(row.get::<_, i64>(0))
    }
}
