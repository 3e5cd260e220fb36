//! Streamed reads of several models from one snapshot (A8.2 bulk export): the list-read
//! statement of each model ([`select_sql`]), run one after the other as portals (server-side
//! cursors) inside ONE `REPEATABLE READ READ ONLY` transaction, so the whole export sees the
//! tenant as it was at its first statement — a child written during the export can never
//! appear without its parent.
//!
//! Same mechanics as [`super::records_stream`]: a producer task fetches batches of
//! [`BATCH_ROWS`] and feeds a bounded channel, so memory stays flat whatever the tenant size,
//! `statement_timeout` bounds each fetch (not the whole download), and when the receiver goes
//! away the task ends and dropping the transaction rolls it back. The price of the snapshot:
//! the transaction (and its xmin horizon, which holds back vacuum) lives as long as the
//! download.

use super::db::observe;
use super::map_db_error;
use super::record_store::select_sql;
use super::Db;
use abbotik_domain::ports::records::{Select, TaggedRowStream};
use abbotik_domain::{Error, ErrorCode, Result};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::IsolationLevel;

/// Rows per fetch (and per channel message).
const BATCH_ROWS: i32 = 500;
/// Batches buffered between the database and the HTTP body.
const CHANNEL_BATCHES: usize = 2;
/// Longest wait for the client to take the next batch. A reader that stalls longer ends the
/// export (truncated transfer, no `end` line) rather than hold a pooled connection and an old
/// snapshot — which keeps vacuum from cleaning the whole database — for as long as it likes.
const STALL_LIMIT: Duration = Duration::from_secs(600);

type Sender = mpsc::Sender<Result<(usize, Vec<String>)>>;

/// Starts the producer task for `sels` and returns its stream. Errors (including those of
/// the first fetch) arrive as an item, so the caller can still answer with an error envelope
/// when nothing was sent yet.
pub fn spawn(db: Db, sels: Vec<Select>) -> TaggedRowStream {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    tokio::spawn(async move {
        let started = Instant::now();
        match produce(&db, &sels, &tx).await {
            Ok(()) => observe("records.stream_snapshot", started),
            Err(e) => {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    TaggedRowStream::new(rx)
}

async fn produce(db: &Db, sels: &[Select], out: &Sender) -> Result<()> {
    let mut c = db.conn().await?;
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(map_db_error)?;
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
                match tokio::time::timeout(STALL_LIMIT, out.send(Ok((i, batch)))).await {
                    Ok(Ok(())) => {}
                    // Client gone: dropping `tx` rolls the transaction back.
                    Ok(Err(_)) => return Ok(()),
                    // An error, not a clean end: the body must stop without its `end` line.
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
