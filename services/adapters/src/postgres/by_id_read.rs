//! By-id reads on the read lanes. Guarded ones (`GET /api/data/:model/:id`) resolve the
//! caller's identity (tenant, user, credential rows; A3.2) in the statement that reads the
//! row; plain ones only read it. Concurrent by-id reads of one shape (table, projection,
//! trash scope, credential joins) are coalesced ([`Coalescer`]) into one statement over
//! arrays of record ids and identities: each read still gets its own identity row and
//! record, checked one by one by the caller, but PostgreSQL sets up one statement for all of
//! them. A read whose filter is not exactly its id runs its own statement.

use super::coalesce::{Batch, Coalescer, Member};
use super::identity::{self, identity_from_row, identity_select, Joins, Placeholders};
use super::record_store::{by_id, select_by_id_sql, select_sql};
use super::records_sql::{self as q, Sql, TextCache};
use super::{map_db_error, Db};
use abbotik_domain::ports::auth::IdentityRef;
use abbotik_domain::ports::records::{Guarded, Projection, Select, Table, TrashedScope};
use abbotik_domain::{Error, Result, TenantCtx};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

/// The shape of a by-id read: everything that decides its SQL text but no bound value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    table: Table,
    projection: Projection,
    trashed: TrashedScope,
    /// The credential rows its identity joins; `None`: a plain read, no identity.
    joins: Option<Joins>,
}

impl Shape {
    fn of(s: &Select, who: Option<&IdentityRef>) -> Shape {
        Shape {
            table: s.table.clone(),
            projection: s.projection.clone(),
            trashed: s.trashed,
            joins: who.map(Joins::of),
        }
    }

    /// Where the record's column is in an answer row (after the identity's, if any).
    fn doc_column(&self) -> usize {
        if self.joins.is_some() {
            identity::COLUMNS
        } else {
            0
        }
    }
}

/// Binds the identity values of a guarded read, in placeholder order: tenant, user, then
/// each credential row the token leans on. Returns the placeholders.
fn bind_identity(sql: &mut Sql, id: &IdentityRef) -> [Option<String>; 5] {
    let mut out: [Option<String>; 5] = Default::default();
    out[0] = Some(sql.uuid(id.tenant_id));
    out[1] = Some(sql.uuid(id.user_id));
    for (slot, v) in out[2..]
        .iter_mut()
        .zip([id.machine_key, id.api_key, id.impersonator])
    {
        *slot = v.map(|u| sql.uuid(u));
    }
    out
}

/// A read that also resolves the caller's identity (tenant, user and credential rows) in
/// the same statement: the reads that are not plain by-id reads (those are batched).
fn guarded_sql(ctx: &TenantCtx, s: &Select) -> (Sql, Joins) {
    let id = IdentityRef::of(ctx);
    let joins = Joins::of(&id);
    let mut sql = match by_id(s) {
        Some(_) => select_by_id_sql(s),
        None => select_sql(s),
    };
    let [t, u, mk, ak, f] = bind_identity(&mut sql, &id);
    let ident = identity_select(
        ctx.schema.quoted().as_str(),
        &Placeholders {
            tenant: t.as_deref().unwrap_or_default(),
            user: u.as_deref().unwrap_or_default(),
            machine_key: mk.as_deref(),
            api_key: ak.as_deref(),
            impersonator: f.as_deref(),
        },
    );
    sql.text = format!(
        "SELECT i.*, r.doc FROM ({ident}) i LEFT JOIN LATERAL ({inner}) r(doc) ON true",
        inner = sql.text,
    );
    (sql, joins)
}

/// By-id reads over PostgreSQL, coalesced by shape.
pub(super) struct ByIdReads {
    db: Db,
    batched: Coalescer<Reads>,
}

/// One by-id read of a batch: the record and whose identity to resolve, if any.
pub(super) struct Read {
    id: Uuid,
    who: Option<IdentityRef>,
}

impl ByIdReads {
    pub fn new(db: Db) -> Self {
        Self {
            batched: Coalescer::new(Reads { db: db.clone() }),
            db,
        }
    }

    /// The row of `s` with the caller's identity; `None` when the table or schema is gone
    /// (the caller re-reads through the ordinary path); `(None, None)` when the tenant is.
    pub async fn guarded(&self, ctx: &TenantCtx, s: &Select) -> Result<Option<Guarded>> {
        let who = IdentityRef::of(ctx);
        if let Some(out) = self.batch(s, Some(who)).await {
            return out;
        }
        let (sql, joins) = guarded_sql(ctx, s);
        match self.db.read(&sql.text, &sql.refs()).await? {
            Ok(rows) => Ok(Some(guarded(rows.first(), Some(joins)))),
            Err(e) => gone_or(e),
        }
    }

    /// The row of a read whose filter is exactly its id (no identity), batched; `None` for
    /// any other read, having done nothing.
    pub async fn plain(&self, s: &Select) -> Option<Result<Option<String>>> {
        let out = self.batch(s, None).await?;
        Some(out.and_then(|found| match found {
            Some((_, doc)) => Ok(doc),
            None => Err(Error::internal("the table of a by-id read is gone")),
        }))
    }

    /// `s` in a batch of its shape when its filter is exactly a valid id; else `None`.
    async fn batch(&self, s: &Select, who: Option<IdentityRef>) -> Option<Result<Option<Guarded>>> {
        let id = by_id(s).and_then(|v| Uuid::parse_str(&v).ok())?;
        let shape = Shape::of(s, who.as_ref());
        Some(
            self.batched
                .submit(shape, Read { id, who })
                .await
                .unwrap_or_else(|| Err(Error::unavailable("the read was lost"))),
        )
    }
}

/// A dropped table or schema answers `Ok(None)`: the caller re-reads through the ordinary
/// path.
fn gone_or(e: tokio_postgres::Error) -> Result<Option<Guarded>> {
    if e.code() == Some(&SqlState::UNDEFINED_TABLE)
        || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME)
    {
        Ok(None)
    } else {
        Err(map_db_error(e))
    }
}

/// One read's answer from its row: its identity (if it has one) and its record; no row: its
/// tenant is gone.
fn guarded(row: Option<&Row>, joins: Option<Joins>) -> Guarded {
    match (row, joins) {
        (None, _) => (None, None),
        (Some(r), Some(j)) => (Some(identity_from_row(r, j)), r.get(identity::COLUMNS)),
        (Some(r), None) => (None, r.get(0)),
    }
}

pub(super) struct Reads {
    db: Db,
}

impl Batch for Reads {
    type Key = Shape;
    type Item = Read;
    type Out = Result<Option<Guarded>>;

    /// Reads are short and CPU-bound: two small batches in flight keep PostgreSQL and the
    /// server both busy where one large one left each idle in turn (measured, 32 clients:
    /// ≈ 5% more reads/s and a third less idle CPU than one runner with batches of 128).
    const RUNNERS: usize = 2;
    const MAX_ITEMS: usize = 8;

    fn bytes(_: &Read) -> usize {
        0
    }

    async fn run(&self, shape: &Shape, batch: Vec<Member<Self>>) {
        let sql = batch_sql(shape, &batch);
        let failed = match self.db.read(&sql.text, &sql.refs()).await {
            Ok(Ok(rows)) => {
                // Row `n` (1-based) answers read `n`; a read without a row lost its tenant.
                let mut found: Vec<Option<&Row>> = vec![None; batch.len()];
                for r in &rows {
                    let n: i64 = r.get(shape.doc_column() + 1);
                    if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| found.get_mut(i)) {
                        *slot = Some(r);
                    }
                }
                for (m, row) in batch.into_iter().zip(found) {
                    let _ = m.answer.send(Ok(Some(guarded(row, shape.joins))));
                }
                return;
            }
            Ok(Err(e)) => gone_or(e),
            Err(e) => Err(e),
        };
        for m in batch {
            let out = match &failed {
                Ok(_) => Ok(None),
                Err(e) => Err(e.clone()),
            };
            let _ = m.answer.send(out);
        }
    }
}

/// One uuid of an identity (one array of a batch).
type Pick = fn(&IdentityRef) -> Uuid;

/// Rendered batched by-id reads by shape.
static BATCH_TEXT: TextCache<Shape> = TextCache::new();

/// One statement for the reads of a batch: per read (`b.n`, 1-based) its identity row, if
/// the shape has one, and its record. Reads of one caller share one identity lookup: the
/// distinct identities go as arrays of tenants, users and the credential ids the shape joins
/// (`d.k`, 1-based), the reads as arrays of record ids and identity numbers. Columns: the
/// identity's, the record, `n`.
fn batch_sql(shape: &Shape, batch: &[Member<Reads>]) -> Sql {
    let mut sql = Sql::default();
    let records = sql.uuids(batch.iter().map(|m| m.item.id).collect());
    // Rendered only when the shape's text is not cached yet.
    let record = || {
        format!(
            "LEFT JOIN LATERAL (SELECT row_to_json(p)::text FROM {t} t, {lat} \
               WHERE {life} AND t.id = b.rid) r(doc) ON true",
            t = q::table(&shape.table),
            lat = q::lateral("t", &shape.projection),
            life = q::life_predicate("t", shape.trashed),
        )
    };
    let Some(joins) = shape.joins else {
        sql.text = BATCH_TEXT.get_or_render(shape.clone(), || {
            format!(
                "SELECT r.doc, b.n FROM unnest({records}) WITH ORDINALITY AS b(rid, n) {}",
                record()
            )
        });
        return sql;
    };
    let mut who: Vec<IdentityRef> = Vec::new();
    let ks: Vec<i64> = batch
        .iter()
        .filter_map(|m| m.item.who)
        .map(|w| {
            let at = who.iter().position(|known| *known == w).unwrap_or_else(|| {
                who.push(w);
                who.len() - 1
            });
            i64::try_from(at).unwrap_or_default() + 1
        })
        .collect();
    let record_ks = sql.ints(ks);
    let column = |f: Pick| who.iter().map(f).collect::<Vec<_>>();
    let mut arrays = vec![
        sql.uuids(column(|w| w.tenant_id)),
        sql.uuids(column(|w| w.user_id)),
    ];
    let mut names = vec!["tid", "uid"];
    let credentials: [(bool, &str, Pick); 3] = [
        (joins.machine_key, "mk", |w| {
            w.machine_key.unwrap_or_default()
        }),
        (joins.api_key, "ak", |w| w.api_key.unwrap_or_default()),
        (joins.impersonator, "imp", |w| {
            w.impersonator.unwrap_or_default()
        }),
    ];
    for (joined, name, of) in credentials {
        if joined {
            arrays.push(sql.uuids(column(of)));
            names.push(name);
        }
    }
    sql.text = BATCH_TEXT.get_or_render(shape.clone(), || {
        let ident = identity_select(
            shape.table.schema.quoted().as_str(),
            &Placeholders {
                tenant: "d.tid",
                user: "d.uid",
                machine_key: joins.machine_key.then_some("d.mk"),
                api_key: joins.api_key.then_some("d.ak"),
                impersonator: joins.impersonator.then_some("d.imp"),
            },
        );
        format!(
            "SELECT i.*, r.doc, b.n FROM unnest({arrays}) WITH ORDINALITY AS d({names}, k) \
             CROSS JOIN LATERAL ({ident}) i \
             JOIN unnest({records}, {record_ks}) WITH ORDINALITY AS b(rid, k, n) ON b.k = d.k \
             {record}",
            arrays = arrays.join(", "),
            names = names.join(", "),
            record = record(),
        )
    });
    sql
}
