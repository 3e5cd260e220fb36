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

    /// Where the record's id is in an answer row (after the identity's and its tag `k`, if
    /// any); the record follows it.
    fn rid_column(&self) -> usize {
        if self.joins.is_some() {
            identity::COLUMNS + 1
        } else {
            0
        }
    }
}

/// The placeholders of one bound identity: tenant, user, machine key, API key, impersonator.
type Bound = [Option<String>; 5];

/// Binds the identity values of a guarded read, in placeholder order: tenant, user, then
/// each credential row the token leans on. Returns the placeholders.
fn bind_identity(sql: &mut Sql, id: &IdentityRef) -> Bound {
    let mut out: Bound = Default::default();
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

/// The identity statement over the placeholders of [`bind_identity`]; `schema` quoted.
fn identity_sql(schema: &str, [t, u, mk, ak, imp]: &Bound) -> String {
    identity_select(
        schema,
        &Placeholders {
            tenant: t.as_deref().unwrap_or_default(),
            user: u.as_deref().unwrap_or_default(),
            machine_key: mk.as_deref(),
            api_key: ak.as_deref(),
            impersonator: imp.as_deref(),
        },
    )
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
    let bound = bind_identity(&mut sql, &id);
    let ident = identity_sql(ctx.schema.quoted().as_str(), &bound);
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

    /// Most of a batch's PostgreSQL time is the statement's, not its rows', so one batch in
    /// flight (plus one while batches are lone, see [`Coalescer`]) gathering everything that
    /// arrived meanwhile does best (measured, 32 clients: ≈ 7% more reads/s than two runners
    /// with batches of at most 8, which suited the earlier `unnest` join statement).
    const RUNNERS: usize = 1;
    const MAX_ITEMS: usize = 32;

    fn bytes(_: &Read) -> usize {
        0
    }

    async fn run(&self, shape: &Shape, batch: Vec<Member<Self>>) {
        let (sql, callers) = batch_sql(shape, &batch);
        let failed = match self.db.read(&sql.text, &sql.refs()).await {
            Ok(Ok(rows)) => {
                let answers = Answers::of(shape, &rows, batch.len());
                for (m, caller) in batch.into_iter().zip(callers.iter()) {
                    let _ = m.answer.send(Ok(Some(answers.of_read(&m.item, *caller))));
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

/// The rows of a batch statement sorted out: each distinct caller's identity row (`None`:
/// its tenant is gone) and the records found, by id.
struct Answers<'a> {
    joins: Option<Joins>,
    /// The record's column.
    doc: usize,
    identities: Vec<Option<&'a Row>>,
    records: Vec<(Uuid, &'a Row)>,
}

impl<'a> Answers<'a> {
    /// `reads`: the batch's reads, as many as it can have distinct callers at most.
    fn of(shape: &Shape, rows: &'a [Row], reads: usize) -> Self {
        let rid = shape.rid_column();
        let mut out = Answers {
            joins: shape.joins,
            doc: rid + 1,
            identities: vec![None; reads],
            records: Vec::with_capacity(rows.len()),
        };
        for r in rows {
            match r.get::<_, Option<Uuid>>(rid) {
                Some(id) => out.records.push((id, r)),
                None => {
                    let k: Option<i64> = r.get(identity::COLUMNS);
                    let slot = k.and_then(|k| usize::try_from(k - 1).ok());
                    if let Some(slot) = slot.and_then(|i| out.identities.get_mut(i)) {
                        *slot = Some(r);
                    }
                }
            }
        }
        out
    }

    /// The answer of `read`, whose caller is distinct caller `caller` of the batch.
    fn of_read(&self, read: &Read, caller: usize) -> Guarded {
        let doc = || {
            self.records
                .iter()
                .find(|(id, _)| *id == read.id)
                .and_then(|(_, r)| r.get::<_, Option<String>>(self.doc))
        };
        match self.joins {
            None => (None, doc()),
            Some(joins) => match self.identities.get(caller).copied().flatten() {
                None => (None, None),
                Some(r) => (Some(identity_from_row(r, joins)), doc()),
            },
        }
    }
}

/// Rendered batched by-id reads by shape and number of distinct callers.
static BATCH_TEXT: TextCache<(Shape, usize)> = TextCache::new();

/// One statement for the reads of a batch, and per read the number (0-based) of its caller
/// among the batch's distinct callers. Reads of one caller share one identity lookup: each
/// distinct caller's identity is a row of its own, tagged `k` (1-based); the records are
/// one `= ANY` lookup, tagged by their id, and reads of one record share its row. (Measured:
/// a third less PostgreSQL time per read than joining `unnest`ed arrays of callers and ids.)
/// Columns of a guarded shape: the identity's (NULLs on record rows), `k`, the record's id
/// (NULL on identity rows), the record; of a plain one: the record's id, the record.
fn batch_sql(shape: &Shape, batch: &[Member<Reads>]) -> (Sql, Vec<usize>) {
    let mut sql = Sql::default();
    let mut who: Vec<IdentityRef> = Vec::new();
    let callers = batch
        .iter()
        .map(|m| match m.item.who {
            None => 0,
            Some(w) => who.iter().position(|known| *known == w).unwrap_or_else(|| {
                who.push(w);
                who.len() - 1
            }),
        })
        .collect();
    let bound: Vec<Bound> = who.iter().map(|w| bind_identity(&mut sql, w)).collect();
    let mut ids: Vec<Uuid> = batch.iter().map(|m| m.item.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let records = sql.uuids(ids);
    // Rendered only when the text of this shape and number of callers is not cached yet.
    sql.text = BATCH_TEXT.get_or_render((shape.clone(), who.len()), || {
        let record = format!(
            "SELECT {nulls}t.id, row_to_json(p)::text FROM {t} t, {lat} \
             WHERE {life} AND t.id = ANY({records})",
            nulls = match shape.joins {
                Some(_) => "NULL, ".repeat(identity::COLUMNS + 1),
                None => String::new(),
            },
            t = q::table(&shape.table),
            lat = q::lateral("t", &shape.projection),
            life = q::life_predicate("t", shape.trashed),
        );
        let schema = shape.table.schema.quoted();
        let mut arms: Vec<String> = bound
            .iter()
            .enumerate()
            .map(|(k, b)| {
                format!(
                    "SELECT i.*, {k}::int8, NULL::uuid, NULL::text FROM ({ident}) i",
                    k = k + 1,
                    ident = identity_sql(schema.as_str(), b),
                )
            })
            .collect();
        arms.push(record);
        arms.join(" UNION ALL ")
    });
    (sql, callers)
}
