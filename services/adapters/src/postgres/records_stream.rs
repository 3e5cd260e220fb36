//! Streamed reads of records: one model (A5.4 export) or several from one snapshot (A8.2
//! bulk export). Each is the list-read statement ([`select_sql`]) run as a portal (a
//! server-side cursor) in a read-only transaction and fetched in batches by a producer task
//! that feeds a bounded channel.
//!
//! Why a portal rather than one `query_raw`: each fetch is its own Execute/Sync, so
//! `statement_timeout` bounds each batch instead of the whole download — a slow client
//! never turns into a query timeout, and the database sends nothing while the client is not
//! reading. The channel holds at most [`CHANNEL_BATCHES`] batches, so memory stays bounded
//! whatever the table size. When the receiver goes away (client disconnected), the next send
//! fails, the task ends, and dropping the transaction rolls it back before the connection
//! returns to the pool.
//!
//! Several models are read inside ONE `REPEATABLE READ READ ONLY` transaction, so the whole
//! export sees the tenant as it was at its first statement — a child written during the
//! export can never appear without its parent. The price: the transaction (and its xmin
//! horizon, which holds back vacuum) lives as long as the download, hence [`STALL_LIMIT`].

use super::db::observe;
use super::map_db_error;
use super::record_store::select_sql;
use super::Db;
use abbotik_domain::ports::records::{RowStream, Select, TaggedRowStream};
use abbotik_domain::{Error, ErrorCode, Result};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::IsolationLevel;

/// Rows per fetch (and per channel message).
const BATCH_ROWS: i32 = 500;
/// Batches buffered between the database and the HTTP body.
const CHANNEL_BATCHES: usize = 2;
/// Longest wait for the client to take the next batch. A reader that stalls longer ends the
/// stream (truncated transfer: no `end` line, no terminating chunk) rather than hold a pooled
/// connection and an old snapshot — which keeps vacuum from cleaning the whole database —
/// for as long as it likes.
const STALL_LIMIT: Duration = Duration::from_secs(600);

/// Starts the producer task for one read. Errors (including those of the first fetch)
/// arrive as the stream's first item, so the caller can still answer with an error envelope
/// before it sends the first byte.
pub fn spawn(db: Db, sel: Select) -> RowStream {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    start(db, vec![sel], "records.stream", tx, |_, batch| batch);
    RowStream::new(rx)
}

/// Starts the producer task for several reads from one snapshot; each batch is tagged with
/// the index of its read in `sels`.
pub fn spawn_snapshot(db: Db, sels: Vec<Select>) -> TaggedRowStream {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    start(db, sels, "records.stream_snapshot", tx, |i, batch| {
        (i, batch)
    });
    TaggedRowStream::new(rx)
}

fn start<T: Send + 'static>(
    db: Db,
    sels: Vec<Select>,
    op: &'static str,
    out: mpsc::Sender<Result<T>>,
    wrap: fn(usize, Vec<String>) -> T,
) {
    tokio::spawn(async move {
        let started = Instant::now();
        match produce(&db, &sels, &out, wrap).await {
            Ok(()) => observe(op, started),
            Err(e) => {
                // The receiver may be gone already; then nobody needs the error.
                let _ = out.send(Err(e)).await;
            }
        }
    });
}

async fn produce<T>(
    db: &Db,
    sels: &[Select],
    out: &mpsc::Sender<Result<T>>,
    wrap: fn(usize, Vec<String>) -> T,
) -> Result<()> {
    let mut c = db.conn().await?;
    let mut build = c.build_transaction().read_only(true);
    if sels.len() > 1 {
        build = build.isolation_level(IsolationLevel::RepeatableRead);
    }
    let tx = build.start().await.map_err(map_db_error)?;
    for (i, sel) in sels.iter().enumerate() {
        let sql = select_sql(sel);
        let st = tx.prepare_cached(&sql.text).await.map_err(map_db_error)?;
        let portal = tx.bind(&st, &sql.refs()).await.map_err(map_db_error)?;
        loop {
            let rows = tx
                .query_portal(&portal, BATCH_ROWS)
                .await
                .map_err(map_db_error)?;
            let n = rows.len();
            if n > 0 {
                let batch: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
                match tokio::time::timeout(STALL_LIMIT, out.send(Ok(wrap(i, batch)))).await {
                    Ok(Ok(())) => {}
                    // Client gone: dropping `tx` rolls the transaction back.
                    Ok(Err(_)) => return Ok(()),
                    // An error, not a clean end: the body must stop without its last part.
                    // The transaction is released now; the error waits for the reader.
                    Err(_) => {
                        return Err(Error::msg(
                            ErrorCode::ServiceUnavailable,
                            format!("Export reader stalled for {} s", STALL_LIMIT.as_secs()),
                        ))
                    }
                }
            }
            if n < BATCH_ROWS as usize {
                break;
            }
        }
    }
    tx.commit().await.map_err(map_db_error)?;
    Ok(())
}
