//! Group commit of single-record creates. Concurrent creates of one record each into the same
//! table (same columns, same answer shape) are written by one multi-row `INSERT`: one
//! statement, one transaction and one WAL flush for all of them instead of one of each per
//! request — under load most of PostgreSQL's work per create was that statement and commit
//! overhead, not the row. Every caller is answered only after the statement committed, with
//! its own row, so what it sees and what is durable are those of a lone insert.
//!
//! Batches are formed by [`Coalescer`] (no added wait). A batch only holds rows of one table,
//! so of one tenant.
//!
//! A batch PostgreSQL refuses (an id or unique conflict, a value out of range, …) rolled back
//! whole; its creates then run one by one, so each gets the answer it would have got alone
//! and none fails for another's row. A batch that fails without an answer from PostgreSQL
//! (the connection broke) may or may not have committed; every caller gets that error, as a
//! lone insert would.

use super::coalesce::{Batch, Coalescer, Member};
use super::record_store::{query, run_steps};
use super::records_write as qw;
use super::{map_db_error, Db};
use abbotik_domain::ports::records::{Column, Outcome, Projection, Table, Write, WriteOp};
use abbotik_domain::{Error, Result};
use rustc_hash::FxHashMap;
use uuid::Uuid;

/// Everything that decides the batch statement's text: its table, columns and answer shape.
type Key = (Table, Vec<Column>, Projection);

/// One create: its write (to run it alone if the batch is refused) and its document as JSON.
pub(super) struct Create {
    write: Write,
    id: Uuid,
    doc: String,
}

/// Batches single-record creates per table.
pub(super) struct GroupCommit {
    creates: Coalescer<Creates>,
}

impl GroupCommit {
    pub fn new(db: Db) -> Self {
        Self {
            creates: Coalescer::new(Creates { db }),
        }
    }

    /// Runs `w` alone or in a batch when it is a create of one record and nothing else (no
    /// reference to check, no update), with the outcome a lone insert would have had;
    /// `None`, having done nothing, for any other write.
    pub async fn write(&self, w: &Write) -> Option<Result<Outcome>> {
        let [WriteOp::Insert(ins)] = w.ops.as_slice() else {
            return None;
        };
        let [doc] = ins.docs.as_slice() else {
            return None;
        };
        if qw::reference_check(&w.refs, &[doc]).is_some() {
            return None;
        }
        let key = (ins.table.clone(), ins.columns.clone(), w.projection.clone());
        let create = Create {
            id: doc.id,
            doc: serde_json::to_string(&doc.values).unwrap_or_default(),
            write: w.clone(),
        };
        Some(
            self.creates
                .submit(key, create)
                .await
                .unwrap_or_else(|| Err(Error::unavailable("the write was lost"))),
        )
    }
}

pub(super) struct Creates {
    db: Db,
}

impl Batch for Creates {
    type Key = Key;
    type Item = Create;
    type Out = Result<Outcome>;
    /// One statement in flight as soon as creates batch: more would split the same load into
    /// smaller batches, each with its own commit (measured, 32 clients: one runner ≈ 15% more
    /// creates/s than two, 30% more than four).
    const RUNNERS: usize = 1;
    const MAX_ITEMS: usize = 128;

    fn bytes(c: &Create) -> usize {
        c.doc.len()
    }

    async fn run(&self, key: &Key, mut batch: Vec<Member<Self>>) {
        if batch.len() == 1 {
            let one = batch.pop().expect("one");
            let out = self.alone(&one.item.write).await;
            let _ = one.answer.send(out);
            return;
        }
        let (table, columns, projection) = key;
        let ids: Vec<Uuid> = batch.iter().map(|b| b.item.id).collect();
        let docs: Vec<String> = batch
            .iter_mut()
            .map(|b| std::mem::take(&mut b.item.doc))
            .collect();
        let sql = qw::insert_batch(table, columns, projection, ids, docs);
        let rows = match self.db.conn().await {
            Ok(c) => query(&c, &sql).await,
            Err(e) => return answer_all(batch, &e),
        };
        match rows {
            Ok(rows) if rows.len() == batch.len() => {
                let mut by_id: FxHashMap<Uuid, String> = rows
                    .iter()
                    .map(|r| (r.get::<_, Uuid>(0), r.get::<_, String>(1)))
                    .collect();
                for b in batch {
                    let out = match by_id.remove(&b.item.id) {
                        Some(text) => Ok(Outcome::Rows(vec![(ord_of(&b.item.write), text)])),
                        None => Err(Error::internal("a batched row went missing")),
                    };
                    let _ = b.answer.send(out);
                }
            }
            // PostgreSQL refused the statement, so nothing of it was written: each create on
            // its own, for the answer it would have had alone.
            Err(e) if e.as_db_error().is_some() => {
                let outs =
                    futures::future::join_all(batch.iter().map(|b| self.alone(&b.item.write)))
                        .await;
                for (b, out) in batch.into_iter().zip(outs) {
                    let _ = b.answer.send(out);
                }
            }
            Err(e) => answer_all(batch, &map_db_error(e)),
            Ok(_) => answer_all(
                batch,
                &Error::internal("a batched insert answered a wrong count"),
            ),
        }
    }
}

impl Creates {
    /// One create as its own statement.
    async fn alone(&self, w: &Write) -> Result<Outcome> {
        let c = self.db.conn().await?;
        run_steps(&c, w).await
    }
}

fn answer_all(batch: Vec<Member<Creates>>, e: &Error) {
    for b in batch {
        let _ = b.answer.send(Err(e.clone()));
    }
}

/// The request position of a create's only document.
fn ord_of(w: &Write) -> i64 {
    match w.ops.as_slice() {
        [WriteOp::Insert(i)] => i.docs.first().map_or(0, |d| d.ord),
        _ => 0,
    }
}
