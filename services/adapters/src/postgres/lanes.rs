//! Read lanes: a few connections shared by every request for short, read-only,
//! single-statement reads (the guarded by-id read, identity, existence checks).
//!
//! tokio-postgres pipelines the queries of concurrent callers on one connection, so one
//! PostgreSQL backend answers many requests per wakeup instead of sleeping and waking once per
//! request. On the two-core bench machine that halves PostgreSQL's CPU per by-id read compared
//! with one pooled connection per request, which is most of what separates the API from the
//! raw database there.
//!
//! A lane never holds a transaction or session state: every statement is schema-qualified and
//! runs in autocommit, so sharing a lane between tenants shares nothing but the socket. What a
//! lane must never do is stall: a read queued behind a statement that waits on a lock (a DDL
//! of another tenant holding its table) would wait too. Lanes therefore run with a short
//! `lock_timeout`; a read that hits it, or finds its lane closed or not yet connected, answers
//! [`None`] and the caller runs it on the pool, where waiting is harmless.

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

/// How long a lane read waits for a lock before it gives the read back to the pool.
pub const LANE_LOCK_TIMEOUT_MS: u64 = 20;
/// Prepared statements kept per lane; the cache starts over when full (each dropped
/// statement is closed on the server).
const STATEMENTS_MAX: usize = 1_000;
/// How long a lane whose connection attempt failed waits before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The lanes of one process.
pub struct Lanes {
    config: Config,
    lanes: Box<[Arc<Lane>]>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Lane {
    conn: RwLock<Option<Arc<LaneConn>>>,
    connecting: AtomicBool,
    failed_at: Mutex<Option<Instant>>,
}

struct LaneConn {
    client: Client,
    statements: Mutex<FxHashMap<Arc<str>, Statement>>,
}

impl Lanes {
    /// `count` lanes (0 turns them off) connecting with `config`, whose options must already
    /// carry the lane `lock_timeout`.
    pub fn new(config: Config, count: usize) -> Lanes {
        Lanes {
            config,
            lanes: (0..count).map(|_| Arc::new(Lane::default())).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs a read-only statement on the next lane. `None`: no lane could take it (not
    /// connected yet, closed, or it waited on a lock) and nothing was changed — run it on the
    /// pool. Connecting happens in the background, triggered by use.
    pub async fn query(
        &self,
        text: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Option<Result<Vec<Row>, tokio_postgres::Error>> {
        if self.lanes.is_empty() {
            return None;
        }
        let lane = &self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()];
        let conn = self.ready(lane)?;
        let result = match conn.statement(text) {
            Some(st) => conn.client.query(&st, params).await,
            None => match conn.client.prepare(text).await {
                Ok(st) => {
                    conn.keep(text, st.clone());
                    conn.client.query(&st, params).await
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Err(e) if hand_back(&e) => None,
            other => Some(other),
        }
    }

    /// The lane's open connection, or `None` after starting (at most one) connection attempt.
    fn ready(&self, lane: &Arc<Lane>) -> Option<Arc<LaneConn>> {
        if let Some(c) = lane.conn.read().as_ref() {
            if !c.client.is_closed() {
                return Some(c.clone());
            }
        }
        let recent_failure = lane
            .failed_at
            .lock()
            .is_some_and(|t| t.elapsed() < RETRY_AFTER);
        if !recent_failure && !lane.connecting.swap(true, Ordering::AcqRel) {
            let (lane, config) = (lane.clone(), self.config.clone());
            tokio::spawn(async move {
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        *lane.conn.write() = Some(Arc::new(LaneConn {
                            client,
                            statements: Mutex::default(),
                        }));
                        *lane.failed_at.lock() = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "read lane: connection failed");
                        *lane.failed_at.lock() = Some(Instant::now());
                    }
                }
                lane.connecting.store(false, Ordering::Release);
            });
        }
        None
    }

    /// Drops every lane connection (shutdown).
    pub fn close(&self) {
        for lane in self.lanes.iter() {
            lane.conn.write().take();
        }
    }
}

/// Whether a failed lane read goes back to the pool: it waited on a lock, or the lane itself
/// failed (closed, reset, its backend terminated). A read changes nothing, so running it again
/// is safe; an error of the statement itself (a dropped table, a timeout) is the answer.
fn hand_back(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
    }
}

impl LaneConn {
    fn statement(&self, text: &str) -> Option<Statement> {
        self.statements.lock().get(text).cloned()
    }

    fn keep(&self, text: &str, st: Statement) {
        let mut map = self.statements.lock();
        if map.len() >= STATEMENTS_MAX {
            map.clear();
        }
        map.insert(Arc::from(text), st);
    }
}
