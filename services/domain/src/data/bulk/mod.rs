//! `POST /api/bulk` (A8.1): a list of operations run in order in ONE transaction.
//!
//! The operations are parsed and checked first ([`ops`]); nothing runs when one is malformed.
//! Then a unit of work is opened and every operation calls the same [`DataService`] method
//! its single route calls, on a copy of the service bound to the transaction
//! ([`DataService::within`]): roles, model flags, validation and write problems are decided
//! by one implementation. Later operations see earlier writes; the first failure rolls
//! everything back and is answered with `data.operation_index`. The rows of the `select*`
//! operations total at most [`MAX_ROWS`], and the answer is measured against the response cap
//! before the commit, so a refused answer never leaves committed writes behind.

mod ops;

use super::find::FindRequest;
use super::query::ReadOptions;
use super::{join, DataService, Raw};
use crate::{Error, ErrorCode, Result, TenantCtx};
use ops::{add_index, invalid, Kind, Operation};
use serde_json::{json, Value};

/// Most rows all `select*` operations of one request return together.
pub const MAX_ROWS: usize = 10_000;

/// The answer being built: `[op+result, …]`, measured as it grows.
struct Answer {
    text: String,
    /// Bytes the `data` array may take (the cap less the envelope).
    max: usize,
    limit_bytes: usize,
}

impl Answer {
    fn new(limit_bytes: usize) -> Self {
        Self {
            text: String::from("["),
            max: limit_bytes.saturating_sub(32),
            limit_bytes,
        }
    }

    /// Appends the echoed operation with its `result`.
    fn push(&mut self, op: &Operation, result: &str) -> Result<()> {
        if self.text.len() + op.echo.len() + result.len() + 12 > self.max {
            return Err(Error::msg(
                ErrorCode::ValidationResponseTooLarge,
                "Response would exceed the response size cap",
            )
            .with_data(json!({ "limit_bytes": self.limit_bytes })));
        }
        if self.text.len() > 1 {
            self.text.push(',');
        }
        // `{…}` → `{…,"result":…}`; the echo is an object's JSON text.
        let body = &op.echo[..op.echo.len() - 1];
        self.text.push_str(body);
        if body.len() > 1 {
            self.text.push(',');
        }
        self.text.push_str("\"result\":");
        self.text.push_str(result);
        self.text.push('}');
        Ok(())
    }

    fn finish(mut self) -> Raw {
        self.text.push(']');
        self.text
    }
}

/// `404 RECORD_NOT_FOUND` → `null` (the `select-one`, `update`, `delete` forms).
fn or_null(r: Result<Raw>) -> Result<Raw> {
    match r {
        Err(e) if e.code == ErrorCode::RecordNotFound => Ok("null".into()),
        other => other,
    }
}

impl DataService {
    /// `POST /api/bulk`: the operations echoed in order, each with its `result`, as the JSON
    /// text of `data`. `opts` carries the `stat`/`access` flags of the request (A1.5);
    /// `max_bytes` is the response cap (A1.10).
    pub async fn bulk(
        &self,
        ctx: &TenantCtx,
        body: Option<&Value>,
        opts: &ReadOptions,
        max_bytes: usize,
    ) -> Result<Raw> {
        let ops = ops::parse(body)?;
        let Some(unit) = &self.unit else {
            return Err(Error::unavailable("bulk transactions are not configured"));
        };
        let opts = ReadOptions {
            stat: opts.stat,
            access: opts.access,
            ..ReadOptions::new()
        };
        // One query slot for the whole request (A6.6).
        let _slot = self.query_slot(ctx).await?;
        let tx = unit.begin(ctx).await?;
        match self
            .run_within(ctx, tx.as_ref(), &ops, &opts, max_bytes)
            .await
        {
            Ok(answer) => {
                tx.commit().await?;
                Ok(answer)
            }
            Err(e) => {
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "rolling back a bulk request");
                }
                Err(e)
            }
        }
    }

    /// Runs checked operations inside an open transaction, which the caller commits or rolls
    /// back (a cron `bulk` action commits it with its own bookkeeping, B1.3). The first
    /// failure stops the run and carries `data.operation_index`.
    async fn run_within(
        &self,
        ctx: &TenantCtx,
        tx: &dyn crate::ports::unit::RecordTx,
        ops: &[Operation],
        opts: &ReadOptions,
        max_bytes: usize,
    ) -> Result<Raw> {
        let within = self.within(tx);
        let mut answer = Answer::new(max_bytes);
        let mut rows = 0usize;
        for (i, op) in ops.iter().enumerate() {
            let result = within.operation(ctx, i, op, opts, &mut rows).await;
            result
                .and_then(|r| answer.push(op, &r))
                .map_err(|e| add_index(e, i))?;
        }
        Ok(answer.finish())
    }

    /// Runs one operation; `rows` counts the rows of the `select*` operations so far.
    async fn operation(
        &self,
        ctx: &TenantCtx,
        i: usize,
        op: &Operation,
        opts: &ReadOptions,
        rows: &mut usize,
    ) -> Result<Raw> {
        let model = op.model.as_str();
        let id = op.id.as_deref().unwrap_or_default();
        let data = op.data.as_ref();
        let where_of = |f: &Option<FindRequest>| {
            f.as_ref()
                .map(|f| f.r#where.clone())
                .unwrap_or_else(|| json!({}))
        };
        match op.kind {
            Kind::Select => {
                let req = op.filter.clone().unwrap_or_else(default_find);
                let found = self.bounded(ctx, i, model, req, opts, rows).await?;
                Ok(join(&found))
            }
            Kind::SelectOne | Kind::Select404 => {
                let one = match &op.filter {
                    None => or_null(self.get(ctx, model, id, opts).await)?,
                    Some(f) => {
                        let mut req = f.clone();
                        req.limit = 1;
                        let found = self.bounded(ctx, i, model, req, opts, rows).await?;
                        found.into_iter().next().unwrap_or_else(|| "null".into())
                    }
                };
                if one == "null" {
                    if op.kind == Kind::Select404 {
                        return Err(not_found(model, op.id.as_deref()));
                    }
                } else if op.filter.is_none() {
                    take_rows(i, rows, 1)?;
                }
                Ok(one)
            }
            Kind::Count => {
                let req = op.filter.clone().unwrap_or_else(default_find);
                Ok(self.find_count(ctx, model, &req).await?.to_string())
            }
            Kind::Aggregate => self.aggregate(ctx, model, op.aggregate.as_ref()).await,
            Kind::Create | Kind::CreateAll => self.create(ctx, model, data, false, opts).await,
            Kind::Upsert | Kind::UpsertAll => self.create(ctx, model, data, true, opts).await,
            Kind::Update => or_null(self.update_one(ctx, model, id, data, opts).await),
            Kind::Update404 => self.update_one(ctx, model, id, data, opts).await,
            Kind::UpdateAll => self.update_many(ctx, model, data, opts).await,
            Kind::UpdateAny => {
                let w = where_of(&op.filter);
                let r = self.patch_where_value(ctx, model, &w, data, opts).await?;
                Ok(join(&r))
            }
            Kind::Delete => or_null(self.delete_one(ctx, model, id, false, opts).await),
            Kind::Delete404 => self.delete_one(ctx, model, id, false, opts).await,
            Kind::DeleteAll => self.delete_many(ctx, model, data, false, opts).await,
            Kind::DeleteAny => {
                let w = where_of(&op.filter);
                Ok(join(&self.delete_where_value(ctx, model, &w, opts).await?))
            }
            Kind::Access => Err(Error::new(ErrorCode::NotImplemented)),
        }
    }

    /// The rows of a find, counted against [`MAX_ROWS`]: the read asks for one row more
    /// than is left, so an oversized request is refused without reading it all.
    async fn bounded(
        &self,
        ctx: &TenantCtx,
        i: usize,
        model: &str,
        mut req: FindRequest,
        opts: &ReadOptions,
        rows: &mut usize,
    ) -> Result<Vec<String>> {
        let left = MAX_ROWS.saturating_sub(*rows);
        req.limit = req.limit.min(left as i64 + 1);
        let found = self.find_rows(ctx, model, &req, opts).await?;
        take_rows(i, rows, found.len())?;
        Ok(found)
    }
}

/// Counts `n` more `select*` rows, or `too_many_rows`.
fn take_rows(i: usize, rows: &mut usize, n: usize) -> Result<()> {
    *rows += n;
    if *rows > MAX_ROWS {
        let mut e = invalid(
            i,
            "too_many_rows",
            &format!("the select operations of one request return at most {MAX_ROWS} rows"),
        );
        if let Some(Value::Object(d)) = e.data.as_mut() {
            d.insert("limit".into(), json!(MAX_ROWS));
        }
        return Err(e);
    }
    Ok(())
}

/// A find of everything (no `filter`): the defaults of an empty find body.
fn default_find() -> FindRequest {
    FindRequest {
        r#where: json!({}),
        select: None,
        order: None,
        limit: super::query::DEFAULT_LIMIT,
        offset: 0,
        trashed: crate::ports::records::TrashedScope::Exclude,
        total: false,
    }
}

/// `select-404` found nothing.
fn not_found(model: &str, id: Option<&str>) -> Error {
    match id {
        Some(id) => super::record_not_found(model, id),
        None => Error::msg(
            ErrorCode::RecordNotFound,
            format!(
                "No record of {} matches the filter",
                crate::ident::clip(model)
            ),
        )
        .with_data(json!({ "model": crate::ident::clip(model) })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(echo: &str) -> Operation {
        Operation {
            kind: Kind::Count,
            model: "m".into(),
            id: None,
            filter: None,
            data: None,
            aggregate: None,
            echo: echo.into(),
        }
    }

    #[test]
    fn answer_splices_results_into_the_echo() {
        let mut a = Answer::new(1 << 20);
        a.push(&op(r#"{"operation":"count","model":"m"}"#), "3")
            .unwrap();
        a.push(
            &op(r#"{"operation":"select","model":"m"}"#),
            r#"[{"id":"x"}]"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&a.finish()).unwrap();
        assert_eq!(
            v,
            json!([
                {"operation":"count","model":"m","result":3},
                {"operation":"select","model":"m","result":[{"id":"x"}]}
            ])
        );
        assert_eq!(Answer::new(100).finish(), "[]");
    }

    #[test]
    fn answer_refuses_past_the_cap() {
        let mut a = Answer::new(120);
        let o = op(r#"{"operation":"count","model":"m"}"#);
        a.push(&o, "1").unwrap();
        let e = a.push(&o, &"9".repeat(60)).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationResponseTooLarge);
        assert_eq!(e.data.unwrap()["limit_bytes"], 120);
    }

    #[test]
    fn rows_are_bounded() {
        let mut rows = 0;
        take_rows(0, &mut rows, MAX_ROWS).unwrap();
        let e = take_rows(4, &mut rows, 1).unwrap_err();
        assert_eq!(e.data.unwrap()["reason"], "too_many_rows");
    }

    #[test]
    fn missing_records_become_null_only_for_not_found() {
        assert_eq!(
            or_null(Err(Error::new(ErrorCode::RecordNotFound))).unwrap(),
            "null"
        );
        assert!(or_null(Err(Error::new(ErrorCode::RecordTrashed))).is_err());
        assert_eq!(or_null(Ok("{}".into())).unwrap(), "{}");
    }
}
