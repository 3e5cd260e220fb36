//! Guarded by-id reads: `GET /api/data/:model/:id` resolves the caller's identity (tenant,
//! user, credential rows; A3.2) in the statement that reads the row, on a read lane.
//! Concurrent reads of one shape (table, projection, trash scope, credential joins) are
//! coalesced ([`Coalescer`]) into one statement over arrays of (record id, tenant, user,
//! credential ids): each read still gets its own identity row and record, checked one by one
//! by the caller, but PostgreSQL sets up one statement for all of them. A read alone, or one
//! that is not a plain by-id read, runs its own statement.

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

/// The shape of a guarded by-id read: everything that decides its SQL text but no bound value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    table: Table,
    projection: Projection,
    trashed: TrashedScope,
    joins: Joins,
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

/// Guarded reads over PostgreSQL, coalesced by shape.
pub(super) struct GuardedReads {
    db: Db,
    batched: Coalescer<Reads>,
}

/// One by-id read of a batch: the record and whose identity to resolve.
pub(super) struct Read {
    id: Uuid,
    who: IdentityRef,
}

impl GuardedReads {
    pub fn new(db: Db) -> Self {
        Self {
            batched: Coalescer::new(Reads { db: db.clone() }),
            db,
        }
    }

    /// The row of `s` with the caller's identity; `None` when the table or schema is gone
    /// (the caller re-reads through the ordinary path); `(None, None)` when the tenant is.
    pub async fn read(&self, ctx: &TenantCtx, s: &Select) -> Result<Option<Guarded>> {
        if let Some(id) = by_id(s).and_then(|v| Uuid::parse_str(&v).ok()) {
            let who = IdentityRef::of(ctx);
            let shape = Shape {
                table: s.table.clone(),
                projection: s.projection.clone(),
                trashed: s.trashed,
                joins: Joins::of(&who),
            };
            return self
                .batched
                .submit(shape, Read { id, who })
                .await
                .unwrap_or_else(|| Err(Error::unavailable("the read was lost")));
        }
        let (sql, joins) = guarded_sql(ctx, s);
        match self.db.read(&sql.text, &sql.refs()).await? {
            Ok(rows) => Ok(Some(guarded(rows.first(), joins))),
            Err(e) => gone_or(e),
        }
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

/// One read's answer from its row; no row: its tenant is gone.
fn guarded(row: Option<&Row>, joins: Joins) -> Guarded {
    match row {
        None => (None, None),
        Some(r) => (Some(identity_from_row(r, joins)), r.get(identity::COLUMNS)),
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
                    let n: i64 = r.get(identity::COLUMNS + 1);
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

/// Rendered batched guarded reads by shape.
static BATCH_TEXT: TextCache<Shape> = TextCache::new();

/// One statement for the reads of a batch: per read (`b.n`, 1-based) its identity row and
/// its record. Reads of one caller share one identity lookup: the distinct identities go as
/// arrays of tenants, users and the credential ids the shape joins (`d.k`, 1-based), the
/// reads as arrays of record ids and identity numbers. Columns: the identity's, the
/// record, `n`.
fn batch_sql(shape: &Shape, batch: &[Member<Reads>]) -> Sql {
    let mut who: Vec<IdentityRef> = Vec::new();
    let ks: Vec<i64> = batch
        .iter()
        .map(|m| {
            let at = who
                .iter()
                .position(|w| *w == m.item.who)
                .unwrap_or_else(|| {
                    who.push(m.item.who);
                    who.len() - 1
                });
            i64::try_from(at).unwrap_or_default() + 1
        })
        .collect();
    let mut sql = Sql::default();
    let column = |f: Pick| who.iter().map(f).collect::<Vec<_>>();
    let mut arrays = vec![
        sql.uuids(column(|w| w.tenant_id)),
        sql.uuids(column(|w| w.user_id)),
    ];
    let mut names = vec!["tid", "uid"];
    let credentials: [(bool, &str, Pick); 3] = [
        (shape.joins.machine_key, "mk", |w| {
            w.machine_key.unwrap_or_default()
        }),
        (shape.joins.api_key, "ak", |w| w.api_key.unwrap_or_default()),
        (shape.joins.impersonator, "imp", |w| {
            w.impersonator.unwrap_or_default()
        }),
    ];
    for (joined, name, of) in credentials {
        if joined {
            arrays.push(sql.uuids(column(of)));
            names.push(name);
        }
    }
    let records = sql.uuids(batch.iter().map(|m| m.item.id).collect());
    let record_ks = sql.ints(ks);
    sql.text = BATCH_TEXT.get_or_render(shape.clone(), || {
        let ident = identity_select(
            shape.table.schema.quoted().as_str(),
            &Placeholders {
                tenant: "d.tid",
                user: "d.uid",
                machine_key: shape.joins.machine_key.then_some("d.mk"),
                api_key: shape.joins.api_key.then_some("d.ak"),
                impersonator: shape.joins.impersonator.then_some("d.imp"),
            },
        );
        format!(
            "SELECT i.*, r.doc, b.n FROM unnest({arrays}) WITH ORDINALITY AS d({names}, k) \
             CROSS JOIN LATERAL ({ident}) i \
             JOIN unnest({records}, {record_ks}) WITH ORDINALITY AS b(rid, k, n) ON b.k = d.k \
             LEFT JOIN LATERAL (SELECT row_to_json(p)::text FROM {t} t, {lat} \
               WHERE {life} AND t.id = b.rid) r(doc) ON true",
            arrays = arrays.join(", "),
            names = names.join(", "),
            t = q::table(&shape.table),
            lat = q::lateral("t", &shape.projection),
            life = q::life_predicate("t", shape.trashed),
        )
    });
    sql
}
