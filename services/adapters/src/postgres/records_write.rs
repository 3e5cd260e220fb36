//! Write statements of the record store, each one round trip that both writes and renders.
//!
//! Every statement answers rows `(kind int, ord int8, text)`: kind 0 = a rendered record at
//! request position `ord`; other kinds are problems found before writing (1 missing,
//! 2 wrong trash state, 3 immutable field, 4 bad reference). When any problem row exists the
//! write CTE was gated off (`ok.go`), so nothing changed.

use super::records_sql::{self as q, Sql, TextCache};
use abbotik_domain::ports::records::{
    CascadeStep, Column, Doc, Insert, Life, LifeOp, Projection, RefCheck, Table, Target, Update,
};
use serde_json::{Map, Value};

pub const KIND_ROW: i32 = 0;
pub const KIND_MISSING: i32 = 1;
pub const KIND_STATE: i32 = 2;
pub const KIND_IMMUTABLE: i32 = 3;
pub const KIND_REFERENCE: i32 = 4;

/// The documents as one jsonb array; each carries `id` and `_ord` beside the values.
pub fn docs_json(docs: &[Doc]) -> String {
    let arr: Vec<Value> = docs
        .iter()
        .map(|d| {
            let mut m: Map<String, Value> = d.values.clone();
            m.insert("id".into(), Value::String(d.id.to_string()));
            m.insert("_ord".into(), Value::from(d.ord));
            Value::Object(m)
        })
        .collect();
    Value::Array(arr).to_string()
}

/// `INSERT` of all documents; id conflicts and unique violations abort the statement.
pub fn insert(ins: &Insert, proj: &Projection) -> Sql {
    if let [doc] = ins.docs.as_slice() {
        return insert_one(ins, doc, proj);
    }
    let mut sql = Sql::default();
    let docs = sql.text(docs_json(&ins.docs));
    let (cols, vals) = insert_columns(&ins.columns);
    sql.text = format!(
        "WITH x AS (SELECT (e.d->>'id')::uuid AS id, e.d, (e.d->>'_ord')::int8 AS ord \
           FROM jsonb_array_elements({docs}::jsonb) e(d)), \
         w AS (INSERT INTO {t} ({cols}) SELECT {vals} FROM x RETURNING *) \
         SELECT {KIND_ROW}, x.ord, row_to_json(p)::text FROM w t JOIN x ON x.id = t.id, {lat} \
         ORDER BY 2",
        t = q::table(&ins.table),
        lat = q::lateral("t", proj),
    );
    sql
}

/// The column list of an insert and the value of each, read from a document `x.d`.
fn insert_columns(columns: &[Column]) -> (String, String) {
    let mut cols = vec!["id".to_owned()];
    let mut vals = vec!["x.id".to_owned()];
    for c in columns {
        cols.push(c.name.quoted());
        vals.push(q::doc_value("x.d", c));
    }
    (cols.join(", "), vals.join(", "))
}

/// Rendered single-record inserts by table, columns and projection.
static INSERT_ONE: TextCache<(Table, Vec<Column>, Projection)> = TextCache::new();

/// `INSERT` of one document: the same columns and values as [`insert`] without the CTEs,
/// join and sort a set needs. The executor sets a plan up on every execution, and for the
/// single-record create (the commonest write) that set-up was a tenth of PostgreSQL's time.
fn insert_one(ins: &Insert, doc: &Doc, proj: &Projection) -> Sql {
    let mut sql = Sql::default();
    // Bound in the same order whether the text is rendered or cached.
    let d = sql.text(serde_json::to_string(&doc.values).unwrap_or_default());
    let id = sql.uuid(doc.id);
    let ord = sql.int(doc.ord);
    let key = (ins.table.clone(), ins.columns.clone(), proj.clone());
    sql.text = INSERT_ONE.get_or_render(key, || {
        let (cols, vals) = insert_columns(&ins.columns);
        format!(
            "INSERT INTO {t} AS t ({cols}) SELECT {vals} FROM (SELECT {id} AS id, {d}::jsonb AS d) x \
             RETURNING {KIND_ROW}, {ord}, (SELECT row_to_json(p)::text FROM (SELECT {proj}) p)",
            t = q::table(&ins.table),
            proj = q::projection("t", proj),
        )
    });
    sql
}

/// Rendered batched inserts by table, columns and projection.
static INSERT_BATCH: TextCache<(Table, Vec<Column>, Projection)> = TextCache::new();

/// `INSERT` of documents given as parallel arrays of ids and JSON texts (the group commit of
/// single-record creates): the columns and values of [`insert`], answering `(id, rendered
/// row)` per record in no particular order.
pub fn insert_batch(
    table: &Table,
    columns: &[Column],
    proj: &Projection,
    ids: Vec<uuid::Uuid>,
    docs: Vec<String>,
) -> Sql {
    let mut sql = Sql::default();
    let ids = sql.uuids(ids);
    let docs = sql.texts(docs);
    let key = (table.clone(), columns.to_vec(), proj.clone());
    sql.text = INSERT_BATCH.get_or_render(key, || {
        let (cols, vals) = insert_columns(columns);
        format!(
            "INSERT INTO {t} AS t ({cols}) SELECT {vals} \
             FROM (SELECT u.id, u.d::jsonb AS d FROM unnest({ids}, {docs}) AS u(id, d)) x \
             RETURNING t.id, (SELECT row_to_json(p)::text FROM (SELECT {proj}) p)",
            t = q::table(table),
            proj = q::projection("t", proj),
        )
    });
    sql
}

/// The `cur` CTE source: locked target rows with their request positions.
/// Ids: `x(id, d, ord)` from documents; filter: every live row, positions in default order.
fn targets(
    sql: &mut Sql,
    t: &str,
    target: &Target,
    scope: &abbotik_domain::data::filter::Filter,
    docs: Option<&[Doc]>,
    only_live: bool,
) -> (String, String, bool) {
    let scope_sql = q::filter(sql, "t", scope);
    match target {
        Target::Ids(ids) => {
            let x = match docs {
                Some(d) => {
                    let p = sql.text(docs_json(d));
                    format!(
                        "x AS (SELECT (e.d->>'id')::uuid AS id, e.d, (e.d->>'_ord')::int8 AS ord \
                         FROM jsonb_array_elements({p}::jsonb) e(d))"
                    )
                }
                None => {
                    let idp = sql.texts(ids.iter().map(|(_, u)| u.to_string()).collect());
                    let ordp = sql.texts(ids.iter().map(|(o, _)| o.to_string()).collect());
                    format!(
                        "x AS (SELECT u.id::uuid AS id, NULL::jsonb AS d, u.ord::int8 AS ord \
                         FROM unnest({idp}, {ordp}) AS u(id, ord))"
                    )
                }
            };
            let lk = format!(
                "lk AS (SELECT t.id, x.ord, x.d FROM {t} t JOIN x ON t.id = x.id \
                 WHERE t.deleted_at IS NULL AND {scope_sql} FOR UPDATE OF t)"
            );
            (format!("{x}, {lk}"), "lk".into(), true)
        }
        Target::Filter(f) => {
            let d = match docs.and_then(|d| d.first()) {
                Some(doc) => {
                    let p = sql.text(serde_json::to_string(&doc.values).unwrap_or_default());
                    format!("{p}::jsonb")
                }
                None => "NULL::jsonb".into(),
            };
            let fsql = q::filter(sql, "t", f);
            let live = if only_live {
                " AND t.trashed_at IS NULL"
            } else {
                ""
            };
            let lk0 = format!(
                "lk0 AS (SELECT t.id FROM {t} t WHERE t.deleted_at IS NULL{live} \
                 AND {fsql} AND {scope_sql} FOR UPDATE OF t)"
            );
            let lk = format!(
                "lk AS (SELECT t.id, row_number() OVER (ORDER BY t.created_at, t.id) - 1 AS ord, \
                 {d} AS d FROM {t} t JOIN lk0 ON lk0.id = t.id)"
            );
            (format!("{lk0}, {lk}"), "lk".into(), false)
        }
    }
}

/// Merge update: `SET f = CASE WHEN d ? 'f' THEN value ELSE f END` for every column.
pub fn update(u: &Update, proj: &Projection) -> Sql {
    let mut sql = Sql::default();
    let t = q::table(&u.table);
    let (pre, lk, by_ids) = targets(&mut sql, &t, &u.target, &u.scope, Some(&u.docs), true);
    let imm: Vec<String> = u
        .immutable
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "({tc} IS NOT NULL AND {has} AND {tc} IS DISTINCT FROM {v}) AS imm{i}",
                tc = q::col("t", &c.name),
                has = q::doc_has("lk.d", c),
                v = q::doc_value("lk.d", c),
            )
        })
        .collect();
    let imm_any = if imm.is_empty() {
        "FALSE".to_owned()
    } else {
        (0..imm.len())
            .map(|i| format!("cur.imm{i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let cur = format!(
        "cur AS (SELECT t.id, lk.ord, lk.d, t.trashed_at IS NOT NULL AS trashed{sep}{imm} \
         FROM {t} t JOIN {lk} lk ON lk.id = t.id)",
        sep = if imm.is_empty() { "" } else { ", " },
        imm = imm.join(", "),
    );
    let missing_ok = if by_ids {
        "(SELECT count(*) FROM cur) = (SELECT count(*) FROM x)"
    } else {
        "TRUE"
    };
    let ok = format!(
        "ok AS (SELECT {missing_ok} AND NOT EXISTS \
         (SELECT 1 FROM cur WHERE cur.trashed OR {imm_any}) AS go)"
    );
    let mut sets: Vec<String> = u
        .columns
        .iter()
        .map(|c| {
            format!(
                "{n} = CASE WHEN {has} THEN {v} ELSE t.{n} END",
                n = c.name.quoted(),
                has = q::doc_has("cur.d", c),
                v = q::doc_value("cur.d", c),
            )
        })
        .collect();
    sets.push("updated_at = now()".into());
    let w = format!(
        "w AS (UPDATE {t} t SET {sets} FROM cur, ok WHERE t.id = cur.id AND ok.go \
         RETURNING t.*, cur.ord AS _ord)",
        sets = sets.join(", ")
    );
    let mut tail = vec![format!(
        "SELECT {KIND_ROW}, t._ord, row_to_json(p)::text FROM w t, {}",
        q::lateral("t", proj)
    )];
    if by_ids {
        tail.push(format!(
            "SELECT {KIND_MISSING}, x.ord, x.id::text FROM x \
             WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.ord = x.ord)"
        ));
    }
    tail.push(format!(
        "SELECT {KIND_STATE}, cur.ord, cur.id::text FROM cur WHERE cur.trashed"
    ));
    for (i, c) in u.immutable.iter().enumerate() {
        tail.push(format!(
            "SELECT {KIND_IMMUTABLE}, cur.ord, '{}' FROM cur WHERE cur.imm{i}",
            c.name.as_str()
        ));
    }
    sql.text = format!(
        "WITH {pre}, {cur}, {ok}, {w} {} ORDER BY 1, 2",
        tail.join(" UNION ALL ")
    );
    sql
}

/// The `SET` of a life-cycle change.
fn life_set(op: LifeOp) -> &'static str {
    match op {
        LifeOp::Trash => "trashed_at = now(), updated_at = now()",
        LifeOp::Restore => "trashed_at = NULL, updated_at = now()",
        LifeOp::Purge => "deleted_at = now()",
        LifeOp::TrashPurge => "trashed_at = coalesce(t.trashed_at, now()), deleted_at = now()",
    }
}

/// The rows of a cascade child a life-cycle change touches (`p` = the parent CTE).
fn cascade_where(op: LifeOp, fk: &str) -> String {
    match op {
        LifeOp::Trash => format!("t.{fk} = p.id AND t.trashed_at IS NULL AND t.deleted_at IS NULL"),
        LifeOp::Restore => {
            format!("t.{fk} = p.id AND t.trashed_at = p._old AND t.deleted_at IS NULL")
        }
        LifeOp::Purge | LifeOp::TrashPurge => format!("t.{fk} = p.id AND t.deleted_at IS NULL"),
    }
}

fn cascade(steps: &[CascadeStep], op: LifeOp) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let parent = match s.parent {
                None => "w".to_owned(),
                Some(j) => format!("c{j}"),
            };
            format!(
                "c{i} AS (UPDATE {t} t SET {set} FROM {parent} p WHERE {cond} \
                 RETURNING t.id, p._old AS _old)",
                t = q::table(&s.table),
                set = life_set(op),
                cond = cascade_where(op, &s.fk.quoted()),
            )
        })
        .collect()
}

/// Restore's check that relationship values still name live parents.
fn ref_bad(r: &RefCheck) -> String {
    let c = q::col("t", &r.column);
    format!(
        "({c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} pp WHERE pp.id = {c} \
         AND pp.trashed_at IS NULL AND pp.deleted_at IS NULL))",
        p = q::table(&r.parent)
    )
}

/// Trash, restore, purge (with the cascade) of the target rows.
pub fn life(l: &Life, proj: &Projection) -> Sql {
    let mut sql = Sql::default();
    let t = q::table(&l.table);
    let only_live = matches!(l.op, LifeOp::Trash | LifeOp::TrashPurge);
    let (pre, lk, by_ids) = targets(&mut sql, &t, &l.target, &l.scope, None, only_live);
    let state_bad = match l.op {
        LifeOp::Trash => "t.trashed_at IS NOT NULL",
        LifeOp::Restore | LifeOp::Purge => "t.trashed_at IS NULL",
        LifeOp::TrashPurge => "FALSE",
    };
    let refs: &[RefCheck] = if l.op == LifeOp::Restore {
        &l.restore_refs
    } else {
        &[]
    };
    let mut cur_cols = vec![
        "t.id".to_owned(),
        "lk.ord".to_owned(),
        "t.trashed_at AS old_trashed".to_owned(),
        format!("{state_bad} AS bad_state"),
    ];
    for (i, r) in refs.iter().enumerate() {
        cur_cols.push(format!("{} AS ref{i}", ref_bad(r)));
        cur_cols.push(format!("{}::text AS refv{i}", q::col("t", &r.column)));
    }
    let cur = format!(
        "cur AS (SELECT {} FROM {t} t JOIN {lk} lk ON lk.id = t.id)",
        cur_cols.join(", ")
    );
    let ref_any: String = std::iter::once("cur.bad_state".to_owned())
        .chain((0..refs.len()).map(|i| format!("cur.ref{i}")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let missing_ok = if by_ids {
        "(SELECT count(*) FROM cur) = (SELECT count(*) FROM x)"
    } else {
        "TRUE"
    };
    let ok = format!(
        "ok AS (SELECT {missing_ok} AND NOT EXISTS (SELECT 1 FROM cur WHERE {ref_any}) AS go)"
    );
    let w = format!(
        "w AS (UPDATE {t} t SET {set} FROM cur, ok WHERE t.id = cur.id AND ok.go \
         RETURNING t.*, cur.ord AS _ord, cur.old_trashed AS _old)",
        set = life_set(l.op)
    );
    let mut ctes = vec![pre, cur, ok, w];
    ctes.extend(cascade(&l.cascade, l.op));
    let mut tail = vec![format!(
        "SELECT {KIND_ROW}, t._ord, row_to_json(p)::text FROM w t, {}",
        q::lateral("t", proj)
    )];
    if by_ids {
        tail.push(format!(
            "SELECT {KIND_MISSING}, x.ord, x.id::text FROM x \
             WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.ord = x.ord)"
        ));
    }
    tail.push(format!(
        "SELECT {KIND_STATE}, cur.ord, cur.id::text FROM cur WHERE cur.bad_state"
    ));
    for (i, r) in refs.iter().enumerate() {
        tail.push(format!(
            "SELECT {KIND_REFERENCE}, cur.ord, '{}:' || cur.refv{i} FROM cur WHERE cur.ref{i}",
            r.column.as_str()
        ));
    }
    sql.text = format!(
        "WITH {} {} ORDER BY 1, 2",
        ctes.join(", "),
        tail.join(" UNION ALL ")
    );
    sql
}

/// Relationship values of the documents that name no live parent: rows `(field, value)`.
/// `None` when no document sets a relationship column.
pub fn reference_check(refs: &[RefCheck], docs: &[&Doc]) -> Option<Sql> {
    let used: Vec<&RefCheck> = refs
        .iter()
        .filter(|r| {
            docs.iter().any(|d| {
                d.values
                    .get(r.column.as_str())
                    .is_some_and(|v| !v.is_null())
            })
        })
        .collect();
    if used.is_empty() {
        return None;
    }
    let mut sql = Sql::default();
    let owned: Vec<Doc> = docs.iter().map(|d| (*d).clone()).collect();
    let p = sql.text(docs_json(&owned));
    let parts: Vec<String> = used
        .iter()
        .map(|r| {
            let k = r.column.as_str();
            format!(
                "(SELECT '{k}'::text AS f, s.v::text AS v FROM \
                 (SELECT DISTINCT (e.d->>'{k}')::uuid AS v FROM jsonb_array_elements({p}::jsonb) e(d) \
                  WHERE e.d->>'{k}' IS NOT NULL) s \
                 WHERE NOT EXISTS (SELECT 1 FROM {pt} pp WHERE pp.id = s.v \
                 AND pp.trashed_at IS NULL AND pp.deleted_at IS NULL FOR KEY SHARE))",
                pt = q::table(&r.parent)
            )
        })
        .collect();
    sql.text = format!("{} LIMIT 1", parts.join(" UNION ALL "));
    Some(sql)
}
