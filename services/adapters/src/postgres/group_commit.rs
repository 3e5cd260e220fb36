//! Group commit of single-record creates. Concurrent creates of one record each into the same
//! table (same columns, same answer shape) are written by one multi-row `INSERT`: one
//! statement, one transaction and one WAL flush for all of them instead of one of each per
//! request — under load most of PostgreSQL's work per create was that statement and commit
//! overhead, not the row. Every caller is answered only after the statement committed, with
//! its own row, so what it sees and what is durable are those of a lone insert.
//!
//! No waiting is added: a create runs at once when no statement of its table is in flight
//! (see [`RUNNERS`]); otherwise it joins the next batch, which starts as soon as the running
//! one ends. A batch only holds rows of one table, so of one tenant.
//!
//! A batch PostgreSQL refuses (an id or unique conflict, a value out of range, …) rolled back
//! whole; its creates then run one by one, so each gets the answer it would have got alone
//! and none fails for another's row. A batch that fails without an answer from PostgreSQL
//! (the connection broke) may or may not have committed; every caller gets that error, as a
//! lone insert would.

use super::record_store::{query, run_steps};
use super::records_write as qw;
use super::{map_db_error, Db};
use abbotik_domain::ports::records::{Column, Outcome, Projection, Table, Write, WriteOp};
use abbotik_domain::Result;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Statements in flight per table. One, as soon as creates batch: more would split the same
/// load into smaller batches, each with its own statement and commit (measured: 32 clients,
/// one runner ≈ 15% more creates/s than two, 30% more than four). A second only while the
/// first runs a lone create: at two or three clients, waiting for another's commit cost more
/// than the batch saves.
const RUNNERS: usize = 2;
/// Rows per statement.
const MAX_ROWS: usize = 128;
/// Document bytes per statement (one create's body can be large; a batch stays small).
const MAX_BYTES: usize = 1 << 20;

/// Everything that decides the batch statement's text: its table, columns and answer shape.
type Key = (Table, Vec<Column>, Projection);

/// One waiting create: its write (to run it alone if the batch is refused), its document as
/// JSON text, and where its answer goes.
struct Waiting {
    write: Write,
    id: Uuid,
    doc: String,
    answer: oneshot::Sender<Result<Outcome>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Runners of this table.
    running: usize,
    /// Of those, the ones running a statement of more than one row.
    batching: usize,
}

/// Batches single-record creates per table.
#[derive(Clone)]
pub(super) struct GroupCommit {
    db: Db,
    queues: Arc<Mutex<FxHashMap<Key, Queue>>>,
}

impl GroupCommit {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            queues: Arc::default(),
        }
    }

    /// Whether `w` is a create of one record and nothing else (no reference to check, no
    /// update): the writes this batches.
    pub fn takes(w: &Write) -> bool {
        match w.ops.as_slice() {
            [WriteOp::Insert(i)] => match i.docs.as_slice() {
                [doc] => qw::reference_check(&w.refs, &[doc]).is_none(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Runs a write [`takes`](Self::takes) accepted, alone or in a batch; its outcome is the
    /// one a lone insert would have had.
    pub async fn write(&self, w: Write) -> Result<Outcome> {
        let [WriteOp::Insert(ins)] = w.ops.as_slice() else {
            unreachable!("GroupCommit::takes checked the shape")
        };
        let doc = &ins.docs[0];
        let key = (ins.table.clone(), ins.columns.clone(), w.projection.clone());
        let (id, json) = (
            doc.id,
            serde_json::to_string(&doc.values).unwrap_or_default(),
        );
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock();
            let q = queues.entry(key.clone()).or_default();
            q.waiting.push_back(Waiting {
                write: w,
                id,
                doc: json,
                answer: tx,
            });
            let start = q.running == 0 || (q.running < RUNNERS && q.batching == 0);
            if start {
                q.running += 1;
            }
            start
        };
        if start {
            // A task of its own: a caller that goes away does not cancel the others' rows.
            tokio::spawn(self.clone().run(key));
        }
        rx.await
            .unwrap_or_else(|_| Err(abbotik_domain::Error::unavailable("the write was dropped")))
    }

    /// Runs batches of `key` until none is waiting.
    async fn run(self, key: Key) {
        let mut runner = Runner {
            queues: self.queues.clone(),
            key,
            batching: false,
            left: false,
        };
        while let Some(batch) = runner.next() {
            self.run_batch(&runner.key, batch).await;
        }
    }

    async fn run_batch(&self, key: &Key, mut batch: Vec<Waiting>) {
        if batch.len() == 1 {
            let one = batch.pop().expect("one");
            let out = self.alone(&one.write).await;
            let _ = one.answer.send(out);
            return;
        }
        let (table, columns, projection) = key;
        let ids: Vec<Uuid> = batch.iter().map(|b| b.id).collect();
        let docs: Vec<String> = batch
            .iter_mut()
            .map(|b| std::mem::take(&mut b.doc))
            .collect();
        let sql = qw::insert_batch(table, columns, projection, ids, docs);
        let rows = match self.db.conn().await {
            Ok(c) => query(&c, &sql).await,
            Err(e) => {
                for b in batch {
                    let _ = b.answer.send(Err(e.clone()));
                }
                return;
            }
        };
        match rows {
            Ok(rows) if rows.len() == batch.len() => {
                let mut by_id: FxHashMap<Uuid, String> = rows
                    .iter()
                    .map(|r| (r.get::<_, Uuid>(0), r.get::<_, String>(1)))
                    .collect();
                for b in batch {
                    let out = match by_id.remove(&b.id) {
                        Some(text) => Ok(Outcome::Rows(vec![(ord_of(&b.write), text)])),
                        None => Err(abbotik_domain::Error::internal(
                            "a batched row went missing",
                        )),
                    };
                    let _ = b.answer.send(out);
                }
            }
            // PostgreSQL refused the statement, so nothing of it was written: each create on
            // its own, for the answer it would have had alone.
            Err(e) if e.as_db_error().is_some() => {
                let outs =
                    futures::future::join_all(batch.iter().map(|b| self.alone(&b.write))).await;
                for (b, out) in batch.into_iter().zip(outs) {
                    let _ = b.answer.send(out);
                }
            }
            Err(e) => {
                let e = map_db_error(e);
                for b in batch {
                    let _ = b.answer.send(Err(e.clone()));
                }
            }
            Ok(_) => {
                let e = abbotik_domain::Error::internal("a batched insert answered a wrong count");
                for b in batch {
                    let _ = b.answer.send(Err(e.clone()));
                }
            }
        }
    }

    /// One create as its own statement.
    async fn alone(&self, w: &Write) -> Result<Outcome> {
        let c = self.db.conn().await?;
        run_steps(&c, w).await
    }
}

/// A runner's place in its table's queue.
struct Runner {
    queues: Arc<Mutex<FxHashMap<Key, Queue>>>,
    key: Key,
    /// Whether its current batch has more than one row.
    batching: bool,
    left: bool,
}

impl Runner {
    /// The next batch; `None`, having left the queue, when nothing waits. Leaving is decided
    /// under the lock a create takes to join, so no create is left without a runner.
    fn next(&mut self) -> Option<Vec<Waiting>> {
        let mut queues = self.queues.lock();
        let q = queues.get_mut(&self.key)?;
        q.batching -= usize::from(std::mem::take(&mut self.batching));
        let batch = take_batch(&mut q.waiting);
        if batch.is_empty() {
            q.running -= 1;
            if q.running == 0 {
                queues.remove(&self.key);
            }
            self.left = true;
            return None;
        }
        self.batching = batch.len() > 1;
        q.batching += usize::from(self.batching);
        Some(batch)
    }
}

impl Drop for Runner {
    /// Only after a panic: gives the place back; with no runner left, the creates still
    /// waiting are dropped, so they answer an error instead of hanging.
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let mut queues = self.queues.lock();
        if let Some(q) = queues.get_mut(&self.key) {
            q.running -= 1;
            q.batching -= usize::from(self.batching);
            if q.running == 0 {
                queues.remove(&self.key);
            }
        }
    }
}

/// The request position of a create's only document.
fn ord_of(w: &Write) -> i64 {
    match w.ops.as_slice() {
        [WriteOp::Insert(i)] => i.docs.first().map_or(0, |d| d.ord),
        _ => 0,
    }
}

/// The next batch from the front of the queue: at most [`MAX_ROWS`] rows and, past the
/// first, at most [`MAX_BYTES`] of documents.
fn take_batch(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(next) = waiting.front() {
        if batch.len() == MAX_ROWS || (!batch.is_empty() && bytes + next.doc.len() > MAX_BYTES) {
            break;
        }
        bytes += next.doc.len();
        batch.extend(waiting.pop_front());
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(bytes: usize) -> Waiting {
        Waiting {
            write: Write {
                ops: Vec::new(),
                refs: Vec::new(),
                projection: Projection {
                    user: Vec::new(),
                    system: Vec::new(),
                },
                unique: Vec::new(),
            },
            id: Uuid::new_v4(),
            doc: "x".repeat(bytes),
            answer: oneshot::channel().0,
        }
    }

    #[test]
    fn batches_stop_at_the_row_and_byte_bounds() {
        let mut q: VecDeque<Waiting> = (0..MAX_ROWS + 5).map(|_| waiting(10)).collect();
        assert_eq!(take_batch(&mut q).len(), MAX_ROWS);
        assert_eq!(take_batch(&mut q).len(), 5);
        assert!(take_batch(&mut q).is_empty());

        // A create larger than the byte bound still runs, alone.
        let mut q: VecDeque<Waiting> = [MAX_BYTES + 1, 10, MAX_BYTES / 2, MAX_BYTES / 2 - 10, 1]
            .into_iter()
            .map(waiting)
            .collect();
        assert_eq!(take_batch(&mut q).len(), 1);
        assert_eq!(take_batch(&mut q).len(), 3);
        assert_eq!(take_batch(&mut q).len(), 1);
    }
}
