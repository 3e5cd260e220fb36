//! The connection pool: one per process, sized by `ABBOTIK_DATABASE_POOL_MAX`, and the
//! pipelined [`Lanes`] for short reads (`ABBOTIK_DATABASE_READ_LANES`).
//! Every connection gets `statement_timeout` and UTC; prepared statements are cached per
//! connection. Errors are mapped to domain errors here, never shown as SQL to clients.

use super::lanes::{Lanes, LANE_LOCK_TIMEOUT_MS};
use abbotik_domain::{Error, ErrorCode};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use metrics::Histogram;
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// `postgres://…` URL, or `None` with `socket_dir` for the embedded cluster.
    pub url: Option<String>,
    /// Unix socket directory of the embedded cluster.
    pub socket_dir: Option<std::path::PathBuf>,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub pool_max: usize,
    /// Pipelined read connections ([`Lanes`]); 0 runs every read on the pool.
    pub read_lanes: usize,
    pub statement_timeout_ms: u64,
}

/// The database gateway shared by all stores.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    lanes: Arc<Lanes>,
}

impl Db {
    pub fn connect(cfg: &DbConfig) -> anyhow::Result<Db> {
        let mut pg: tokio_postgres::Config = match &cfg.url {
            Some(url) => url.parse()?,
            None => {
                let mut c = tokio_postgres::Config::new();
                let dir = cfg
                    .socket_dir
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no database url or socket dir"))?;
                c.host_path(dir);
                c.port(cfg.port);
                c.user(&cfg.user);
                c.dbname(&cfg.dbname);
                c
            }
        };
        pg.application_name("abbot-api");
        pg.connect_timeout(Duration::from_secs(5));
        let options = format!(
            "-c statement_timeout={} -c TimeZone=UTC",
            cfg.statement_timeout_ms
        );
        // Lanes only run primary-key lookups, whose generic plan is the best plan: planning
        // them again on every execution (PostgreSQL's default for the first runs and whenever
        // it guesses a custom plan may win) only costs time. A generic plan of `id = ANY($1)`
        // guesses ten ids and picks a bitmap scan; the batches of a lane are a few ids, read
        // faster by a plain index scan.
        let mut lane = pg.clone();
        lane.application_name("abbot-api-lane");
        lane.options(format!(
            "{options} -c lock_timeout={LANE_LOCK_TIMEOUT_MS} -c plan_cache_mode=force_generic_plan -c enable_bitmapscan=off"
        ));
        let lanes = Arc::new(Lanes::new(lane, cfg.read_lanes));
        pg.options(format!("{options} -c lock_timeout=30000"));
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(cfg.pool_max.max(1))
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        Ok(Db { pool, lanes })
    }

    /// Runs a short read-only statement: on a read lane when one can take it, else on a
    /// pooled connection. The outer error is the pool's (`SERVICE_UNAVAILABLE`); the inner
    /// one is the statement's, for the caller to map.
    pub async fn read(
        &self,
        text: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Result<Vec<Row>, tokio_postgres::Error>, Error> {
        if let Some(result) = self.lanes.query(text, params).await {
            return Ok(result);
        }
        let c = self.conn().await?;
        Ok(query_prepared(&c, text, params).await)
    }

    /// A pooled connection, or `SERVICE_UNAVAILABLE`.
    pub async fn conn(&self) -> Result<Object, Error> {
        let started = Instant::now();
        let c = self.pool.get().await.map_err(Error::unavailable)?;
        metrics::histogram!("abbotik_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
        Ok(c)
    }

    /// Readiness probe: `SELECT 1`.
    pub async fn ping(&self) -> Result<(), Error> {
        let c = self.conn().await?;
        c.simple_query("SELECT 1")
            .await
            .map_err(Error::unavailable)?;
        Ok(())
    }

    /// Pool gauges for `/metrics`.
    pub fn pool_status(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.available, s.size.saturating_sub(s.available))
    }

    pub fn close(&self) {
        self.lanes.close();
        self.pool.close();
    }
}

/// Runs a statement through the client's prepared-statement cache.
pub(super) async fn query_prepared<C: GenericClient>(
    c: &C,
    text: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let st = c.prepare_cached(text).await?;
    c.query(&st, params).await
}

/// Records the duration of one named database operation. The histogram of each operation is
/// looked up in the recorder once (operations are a fixed set of names): building its label
/// set and finding it on every query cost more than the record itself.
pub fn observe(op: &'static str, started: Instant) {
    static BY_OP: LazyLock<RwLock<FxHashMap<&'static str, Histogram>>> =
        LazyLock::new(Default::default);
    let secs = started.elapsed().as_secs_f64();
    if let Some(h) = BY_OP.read().get(op) {
        return h.record(secs);
    }
    let h = metrics::histogram!("abbotik_db_query_duration_seconds", "op" => op);
    h.record(secs);
    BY_OP.write().insert(op, h);
}

/// Maps a driver error to a domain error. Constraint-specific mapping (unique fields and the
/// like) is done by the store that knows the constraint; this is the fallback.
pub fn map_db_error(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::QUERY_CANCELED {
            // Every FILTER_* error names a path (A6.6): the filter as a whole.
            return Error::new(ErrorCode::FilterQueryTimeout)
                .with_data(serde_json::json!({ "path": "where" }))
                .with_internal(db.message());
        }
        if *code == SqlState::INVALID_REGULAR_EXPRESSION {
            // Only `$regex`/`$nregex` patterns reach PostgreSQL's regex compiler (A6.6).
            return Error::msg(
                ErrorCode::FilterInvalidRegex,
                format!("Invalid $regex pattern ({})", db.message()),
            )
            .with_data(serde_json::json!({ "path": "where" }));
        }
        if *code == SqlState::UNIQUE_VIOLATION {
            return Error::new(ErrorCode::RecordUniqueViolation).with_internal(db.message());
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return Error::unavailable(db.message());
        }
        return Error::internal(format!("{}: {}", code.code(), db.message()));
    }
    if e.is_closed() {
        return Error::unavailable(e);
    }
    Error::internal(e)
}
