//! Export of a model's records (A5.4): the read of `GET /api/data/:model?format=csv|ndjson`
//! and the rules that turn a rendered record into CSV cells.
//!
//! The read is the list read (same permissions, `where`, `order`, `select`, `stat`,
//! `access`, `offset`) without a default or maximum `limit` (A1.10), streamed from the store.
//! Rows arrive as the JSON text PostgreSQL renders for the JSON API, so NDJSON is those texts
//! as they are, and CSV cells are derived from the same JSON: one rendering path for every
//! format, with timestamps, base64 and exact numerics already in their contract form.

use super::access::{self, Op};
use super::filter::Filter;
use super::query::ReadOptions;
use super::records::select_for;
use super::DataService;
use crate::model::FieldType;
use crate::ports::records::{Projection, RowStream, TrashedScope};
use crate::{ident, Error, ErrorCode, Result, TenantCtx};
use serde_json::{json, Map, Value};

/// A column of an export, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportColumn {
    pub name: String,
    /// `jsonb` columns: every value (strings included) is written as JSON text, so a cell
    /// tells the string `"5"` from the number `5`.
    pub json: bool,
}

/// A started export: the header and the rows still to come.
pub struct Export {
    pub model: String,
    pub columns: Vec<ExportColumn>,
    pub rows: RowStream,
}

/// Columns of a projection: `id`, user fields in definition order, system fields.
pub fn columns(p: &Projection) -> Vec<ExportColumn> {
    let mut out = vec![ExportColumn {
        name: "id".into(),
        json: false,
    }];
    out.extend(p.user.iter().map(|c| ExportColumn {
        name: c.name.as_str().to_owned(),
        json: c.ty == FieldType::Jsonb,
    }));
    out.extend(p.system.iter().map(|s| ExportColumn {
        name: (*s).to_owned(),
        json: false,
    }));
    out
}

/// `limit` of an export: any non-negative integer; absent = every row (A1.10).
fn export_limit(limit: Option<&str>) -> Result<i64> {
    match limit.map(str::trim) {
        None | Some("") => Ok(i64::MAX),
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Error::msg(
                ErrorCode::FilterInvalidLimit,
                "limit must be a non-negative integer",
            )
            .with_data(json!({ "path": "limit" }))
        }),
    }
}

impl DataService {
    /// Starts the export of `model`: validates everything a JSON list validates, then hands
    /// back the header and the row stream. Errors of the query itself arrive as the first
    /// item of the stream.
    pub async fn export(&self, ctx: &TenantCtx, model: &str, opts: &ReadOptions) -> Result<Export> {
        let m = self.model(ctx, model).await?;
        access::check(ctx, &m, Op::Read)?;
        let limit = export_limit(opts.limit.as_deref())?;
        let mut o = opts.clone();
        o.limit = None;
        let trashed = if opts.include_trashed {
            TrashedScope::Include
        } else {
            TrashedScope::Exclude
        };
        let mut sel = select_for(ctx, &m, &o, trashed, Filter::True)?;
        sel.limit = limit;
        let columns = columns(&sel.projection);
        let rows = self.store.stream(ctx, &sel).await?;
        Ok(Export {
            model: m.model_name.clone(),
            columns,
            rows,
        })
    }
}

/// Whether `csv_safe` prefixes this text (A5.4): cells spreadsheets would run as formulas.
fn formula_like(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The CSV cell of one value: `null` → empty, booleans `true`/`false`, numbers as their exact
/// text, arrays, objects and every `jsonb` value → compact JSON, strings as they are
/// (timestamps and base64 are already rendered). With `csv_safe`, strings that start like a
/// formula get a `'` in front.
pub fn cell(v: &Value, json: bool, csv_safe: bool) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if !json => {
            if csv_safe && formula_like(s) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The CSV cells of one rendered record, in column order.
pub fn csv_cells(columns: &[ExportColumn], row: &str, csv_safe: bool) -> Result<Vec<String>> {
    let obj: Map<String, Value> = serde_json::from_str(row).map_err(Error::internal)?;
    Ok(columns
        .iter()
        .map(|c| match obj.get(&c.name) {
            Some(v) => cell(v, c.json, csv_safe),
            None => String::new(),
        })
        .collect())
}

/// The filename stem of an export (a validated model name; clipped for safety anyway).
pub fn filename(model: &str) -> String {
    ident::clip(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<ExportColumn> {
        ["id", "name", "meta", "tags", "n", "ok", "at"]
            .iter()
            .map(|n| ExportColumn {
                name: (*n).into(),
                json: *n == "meta",
            })
            .collect()
    }

    #[test]
    fn cells_follow_the_rules() {
        let row = r#"{"id":"a","name":"=1+1","meta":"5","tags":["x", "y"],"n":12.3400,"ok":true,"at":null}"#;
        let c = csv_cells(&cols(), row, false).unwrap();
        assert_eq!(
            c,
            ["a", "=1+1", "\"5\"", "[\"x\",\"y\"]", "12.3400", "true", ""]
        );
        let c = csv_cells(&cols(), row, true).unwrap();
        assert_eq!(c[1], "'=1+1");
        assert_eq!(c[2], "\"5\"");
        let nested = r#"{"meta":{"a": [1, 2], "b": {"c": null}}}"#;
        let c = csv_cells(&cols(), nested, false).unwrap();
        assert_eq!(c[2], r#"{"a":[1,2],"b":{"c":null}}"#);
    }

    #[test]
    fn csv_safe_prefixes() {
        for s in ["=x", "+x", "-x", "@x", "\tx", "\rx"] {
            assert_eq!(cell(&json!(s), false, true), format!("'{s}"));
            assert_eq!(cell(&json!(s), false, false), s);
        }
        assert_eq!(cell(&json!("x=1"), false, true), "x=1");
        assert_eq!(cell(&json!(-5), false, true), "-5");
    }

    #[test]
    fn limits() {
        assert_eq!(export_limit(None).unwrap(), i64::MAX);
        assert_eq!(export_limit(Some("50000")).unwrap(), 50_000);
        assert_eq!(export_limit(Some("0")).unwrap(), 0);
        assert_eq!(
            export_limit(Some("-1")).unwrap_err().code,
            ErrorCode::FilterInvalidLimit
        );
    }

    #[test]
    fn projection_columns() {
        let o = ReadOptions::new();
        let m = crate::data::filter::tests::model(vec![crate::data::filter::tests::field(
            "orders",
            "meta",
            FieldType::Jsonb,
        )]);
        let p = crate::data::query::projection(&m, &o).unwrap();
        let c = columns(&p);
        assert_eq!(c[0].name, "id");
        assert!(c[1].json);
        assert_eq!(c.len(), 10);
    }
}
