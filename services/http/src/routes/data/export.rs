//! Response formats of record reads (A1.5 `format` / `Accept`) and the streamed CSV and
//! NDJSON export of `GET /api/data/:model` (A5.4).
//!
//! The first batch of rows is fetched before the status line is sent, so every error the
//! query can raise up front (bad filter, timeout, unavailable database) still answers with
//! the JSON envelope. After the first byte, a failure ends the body with an error: hyper then
//! drops the connection without the terminating chunk and the client sees a truncated
//! transfer instead of a complete-looking file. The response size cap does not apply here:
//! memory is bounded by the store's batches, not by the export size.

use super::Res;
use crate::error::ApiError;
use crate::extract::Params;
use abbotik_domain::data::export::{self, Export, ExportColumn};
use abbotik_domain::ports::records::RowStream;
use abbotik_domain::{ident, Error, ErrorCode};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;

/// A response encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ndjson,
}

impl Format {
    const fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

fn unsupported(wanted: &str, offered: &[Format]) -> ApiError {
    let names: Vec<&str> = offered.iter().map(|f| f.name()).collect();
    ApiError(
        Error::msg(
            ErrorCode::ValidationFormatUnsupported,
            format!(
                "Format {} is not offered on this route",
                ident::clip(wanted)
            ),
        )
        .with_data(json!({ "format": ident::clip(wanted), "supported": names })),
    )
}

/// The media ranges of an `Accept` header that name a format, with their `q` (0 excluded).
fn accepted(accept: &str) -> Vec<(f32, Format, String)> {
    let mut out = Vec::new();
    for part in accept.split(',') {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in it {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        let f = match media.as_str() {
            "application/json" | "application/*" | "*/*" => Format::Json,
            "text/csv" => Format::Csv,
            "application/x-ndjson" => Format::Ndjson,
            _ => continue,
        };
        if q > 0.0 {
            out.push((q, f, media));
        }
    }
    out
}

/// The format of a response among those the route `offered` (A1.5): `?format` wins over
/// `Accept`; no format, `*/*`, `application/json` or an `Accept` naming no known format →
/// JSON. A named format the route does not offer → `406 VALIDATION_FORMAT_UNSUPPORTED`.
pub fn negotiate(p: &Params, headers: &HeaderMap, offered: &[Format]) -> Result<Format, ApiError> {
    if let Some(f) = p.get("format") {
        let f = f.trim().to_ascii_lowercase();
        let wanted = match f.as_str() {
            "" | "json" => Format::Json,
            "csv" => Format::Csv,
            "ndjson" => Format::Ndjson,
            _ => return Err(unsupported(&f, offered)),
        };
        return if offered.contains(&wanted) {
            Ok(wanted)
        } else {
            Err(unsupported(&f, offered))
        };
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let ranges = accepted(&accept);
    if ranges.is_empty() {
        return Ok(Format::Json);
    }
    // Highest q first; among equals, the one listed first.
    let mut best: Option<(f32, Format)> = None;
    for (q, f, _) in &ranges {
        if offered.contains(f) && best.is_none_or(|(bq, _)| *q > bq) {
            best = Some((*q, *f));
        }
    }
    match best {
        Some((_, f)) => Ok(f),
        None => Err(unsupported(&ranges[0].2, offered)),
    }
}

/// Turns batches of rendered records into body bytes.
struct Encoder {
    format: Format,
    columns: Vec<ExportColumn>,
    csv_safe: bool,
}

impl Encoder {
    fn csv_writer(cap: usize) -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(cap))
    }

    fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, Error> {
        w.into_inner().map_err(Error::internal)
    }

    /// The CSV header row (NDJSON has none).
    fn header(&self) -> Result<Vec<u8>, Error> {
        if self.format != Format::Csv {
            return Ok(Vec::new());
        }
        let mut w = Self::csv_writer(256);
        w.write_record(self.columns.iter().map(|c| c.name.as_str()))
            .map_err(Error::internal)?;
        Self::finish(w)
    }

    fn batch(&self, rows: &[String]) -> Result<Vec<u8>, Error> {
        let size = rows.iter().map(|r| r.len() + 1).sum();
        match self.format {
            Format::Csv => {
                let mut w = Self::csv_writer(size);
                for r in rows {
                    let cells = export::csv_cells(&self.columns, r, self.csv_safe)?;
                    w.write_record(&cells).map_err(Error::internal)?;
                }
                Self::finish(w)
            }
            _ => {
                // The JSON text of each record as the JSON API renders it; PostgreSQL
                // escapes newlines inside strings, so one record is one line.
                let mut out = Vec::with_capacity(size);
                for r in rows {
                    out.extend_from_slice(r.as_bytes());
                    out.push(b'\n');
                }
                Ok(out)
            }
        }
    }
}

/// Ends a started body: logged once here, then the connection is dropped by hyper.
fn abort(e: &Error) -> std::io::Error {
    tracing::warn!(code = e.code.as_str(), internal = ?e.internal, "export aborted after the first byte");
    std::io::Error::other("export aborted")
}

/// State of the body stream after the first chunk.
struct Rest {
    rows: RowStream,
    enc: Arc<Encoder>,
}

/// The streamed `200` answer of an export.
pub async fn respond(mut ex: Export, format: Format, csv_safe: bool) -> Res {
    let enc = Arc::new(Encoder {
        format,
        columns: std::mem::take(&mut ex.columns),
        csv_safe,
    });
    let first = match ex.rows.next().await {
        Some(Err(e)) => return Err(ApiError(e)),
        Some(Ok(b)) => b,
        None => Vec::new(),
    };
    let mut head = enc.header()?;
    head.extend(enc.batch(&first)?);
    let rest = futures::stream::unfold(Some(Rest { rows: ex.rows, enc }), |state| async move {
        let mut st = state?;
        let item = match st.rows.next().await? {
            Ok(batch) => st.enc.batch(&batch).map_err(|e| abort(&e)),
            Err(e) => Err(abort(&e)),
        };
        let next = if item.is_ok() { Some(st) } else { None };
        Some((item.map(Bytes::from), next))
    });
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head))]);
    let body = Body::from_stream(futures::StreamExt::chain(body, rest));
    let name = export::filename(&ex.model);
    let (ct, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        _ => ("application/x-ndjson", "ndjson"),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `?csv_safe` (A5.4), default off.
pub fn csv_safe(p: &Params) -> Result<bool, ApiError> {
    Ok(p.flag("csv_safe", false)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(q: &[(&str, &str)]) -> Params {
        Params(
            q.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    const ALL: &[Format] = &[Format::Json, Format::Csv, Format::Ndjson];

    fn export(items: Vec<abbotik_domain::Result<Vec<String>>>) -> Export {
        let (tx, rx) = tokio::sync::mpsc::channel(items.len().max(1));
        for i in items {
            tx.try_send(i).unwrap();
        }
        Export {
            model: "items".into(),
            columns: vec![
                ExportColumn {
                    name: "id".into(),
                    json: false,
                },
                ExportColumn {
                    name: "n".into(),
                    json: false,
                },
            ],
            rows: RowStream::new(rx),
        }
    }

    /// The bytes of a streamed answer; `Err` (with what arrived) when the stream broke.
    pub(crate) async fn body(r: Response) -> Result<Vec<u8>, String> {
        use http_body_util::BodyExt;
        let mut b = r.into_body();
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => out.extend_from_slice(f.data_ref().map_or(&[][..], |d| &d[..])),
                Err(_) => return Err(String::from_utf8_lossy(&out).into_owned()),
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn streams_batches_and_aborts_after_the_first_byte() {
        let rows = |r: &[&str]| Ok(r.iter().map(|s| (*s).to_owned()).collect());
        let r = respond(
            export(vec![
                rows(&[r#"{"id":"a","n":1}"#]),
                rows(&[r#"{"id":"b","n":"x,y"}"#]),
            ]),
            Format::Csv,
            false,
        )
        .await
        .unwrap();
        assert_eq!(body(r).await.unwrap(), b"id,n\r\na,1\r\nb,\"x,y\"\r\n");

        // An error as the first item is still an envelope.
        let e = respond(
            export(vec![Err(Error::new(ErrorCode::FilterQueryTimeout))]),
            Format::Ndjson,
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e.0.code, ErrorCode::FilterQueryTimeout);

        // After the first byte, an error ends the body with an error (no clean end).
        let r = respond(
            export(vec![
                rows(&[r#"{"id":"a","n":1}"#]),
                Err(Error::new(ErrorCode::ServiceUnavailable)),
                rows(&[r#"{"id":"c","n":3}"#]),
            ]),
            Format::Ndjson,
            false,
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let partial = body(r).await.unwrap_err();
        assert_eq!(partial, "{\"id\":\"a\",\"n\":1}\n");

        // No rows: the header alone (CSV), an empty body (NDJSON).
        let r = respond(export(vec![]), Format::Csv, false).await.unwrap();
        assert_eq!(body(r).await.unwrap(), b"id,n\r\n");
        let r = respond(export(vec![]), Format::Ndjson, false)
            .await
            .unwrap();
        assert!(body(r).await.unwrap().is_empty());
    }

    #[test]
    fn negotiation() {
        let none = HeaderMap::new();
        let p = params(&[]);
        assert_eq!(negotiate(&p, &none, ALL).unwrap(), Format::Json);
        assert_eq!(
            negotiate(&p, &accept("text/csv"), ALL).unwrap(),
            Format::Csv
        );
        assert_eq!(
            negotiate(&p, &accept("application/x-ndjson"), ALL).unwrap(),
            Format::Ndjson
        );
        assert_eq!(negotiate(&p, &accept("*/*"), ALL).unwrap(), Format::Json);
        assert_eq!(
            negotiate(
                &p,
                &accept("text/html,application/xhtml+xml,*/*;q=0.8"),
                ALL
            )
            .unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(&p, &accept("application/json;q=0.5, text/csv"), ALL).unwrap(),
            Format::Csv
        );
        assert_eq!(
            negotiate(&p, &accept("text/csv;q=0, */*"), ALL).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(&p, &accept("image/png"), ALL).unwrap(),
            Format::Json
        );
        let csv = params(&[("format", "CSV")]);
        assert_eq!(
            negotiate(&csv, &accept("application/json"), ALL).unwrap(),
            Format::Csv
        );
        let json = params(&[("format", "json")]);
        assert_eq!(
            negotiate(&json, &accept("text/csv"), ALL).unwrap(),
            Format::Json
        );
        for bad in ["xml", "tsv"] {
            let e = negotiate(&params(&[("format", bad)]), &none, ALL).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::ValidationFormatUnsupported);
        }
        let only = &[Format::Json];
        assert!(negotiate(&csv, &none, only).is_err());
        assert!(negotiate(&p, &accept("text/csv"), only).is_err());
        assert_eq!(
            negotiate(&p, &accept("text/csv, application/json;q=0.1"), only).unwrap(),
            Format::Json
        );
    }
}
