//! Streamed reads of records (A5.4 export): the same statement as a list read
//! ([`select_sql`]), run as a portal (a server-side cursor) in a read-only transaction and
//! fetched in batches by a producer task that feeds a bounded channel.
//!
//! Why a portal rather than one `query_raw`: each fetch is its own Execute/Sync, so
//! `statement_timeout` bounds each batch instead of the whole download — a slow client
//! never turns into a query timeout, and the database sends nothing while the client is not
//! reading. The channel holds at most [`CHANNEL_BATCHES`] batches, so memory stays bounded
//! whatever the table size. When the receiver goes away (client disconnected), the next send
//! fails, the task ends, and dropping the transaction rolls it back before the connection
//! returns to the pool.

use super::db::observe;
use super::map_db_error;
use super::record_store::select_sql;
use super::Db;
use abbotik_domain::ports::records::{RowStream, Select};
use abbotik_domain::Result;
use std::time::Instant;
use tokio::sync::mpsc;

/// Rows per fetch (and per channel message).
const BATCH_ROWS: i32 = 500;
/// Batches buffered between the database and the HTTP body.
const CHANNEL_BATCHES: usize = 2;

/// Starts the producer task for `sel` and returns its stream. Errors (including those of
/// the first fetch) arrive as the stream's first item, so the caller can still answer with
/// an error envelope before it sends the first byte.
pub fn spawn(db: Db, sel: Select) -> RowStream {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    tokio::spawn(async move {
        let started = Instant::now();
        match produce(&db, &sel, &tx).await {
            Ok(()) => observe("records.stream", started),
            Err(e) => {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    RowStream::new(rx)
}

type Sender = mpsc::Sender<Result<Vec<String>>>;

async fn produce(db: &Db, sel: &Select, out: &Sender) -> Result<()> {
    let mut c = db.conn().await?;
    let tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(map_db_error)?;
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
            if out.send(Ok(batch)).await.is_err() {
                // Client gone: dropping `tx` rolls the transaction back.
                return Ok(());
            }
        }
        if n < BATCH_ROWS as usize {
            break;
        }
    }
    tx.commit().await.map_err(map_db_error)?;
    Ok(())
}
