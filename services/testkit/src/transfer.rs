//! Export helpers for tests of bulk export and import (A8.2, A8.3): a whole tenant (or the
//! models a body names) as the NDJSON bytes of `POST /api/bulk/export`, its lines parsed, and
//! streams abandoned mid-way. No fixture: they work on whatever the tenant holds.

use crate::Http;
use serde_json::{json, Value};

/// `POST /api/bulk/export?format=ndjson` with `body` (`{}` = every non-system model, both
/// parts): asserts a complete `200 application/x-ndjson` stream (last line `end`) and
/// returns its bytes.
pub async fn export_ndjson_with(http: &Http, token: &str, body: Value) -> Vec<u8> {
    let r = http
        .client
        .post(http.url("/api/bulk/export?format=ndjson"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("export request sent");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = r.bytes().await.expect("complete export transfer").to_vec();
    assert_eq!(status, 200, "export: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/x-ndjson");
    let last = ndjson_lines(&bytes).pop().unwrap_or(Value::Null);
    assert_eq!(last["type"], "end", "export ends with its end line");
    bytes
}

/// The whole tenant (every non-system model, describe and data, live records only).
pub async fn export_ndjson(http: &Http, token: &str) -> Vec<u8> {
    export_ndjson_with(http, token, json!({})).await
}

/// Every line of an NDJSON body, parsed (a line that is not JSON fails the test).
pub fn ndjson_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("an NDJSON line is JSON"))
        .collect()
}

/// The lines of an export without what differs between two exports of equal content
/// (`meta.tenant` and `meta.exported_at`), for round-trip comparisons.
pub fn comparable(bytes: &[u8]) -> Vec<Value> {
    let mut lines = ndjson_lines(bytes);
    if let Some(meta) = lines.first_mut().and_then(Value::as_object_mut) {
        meta.remove("tenant");
        meta.remove("exported_at");
    }
    lines
}

/// Clients that hang up mid-stream give their database connection back: opens a dozen streams
/// (`open`) one after another, reads one chunk of each and hangs up, then reads `probe`. The
/// test pool holds 8 connections, so a stream that kept its connection would leave a later
/// one (or the probe) waiting past 20 s.
pub async fn abandon_streams(
    http: &Http,
    token: &str,
    open: impl Fn() -> reqwest::RequestBuilder,
    probe: &str,
) {
    let wait = std::time::Duration::from_secs(20);
    for _ in 0..12 {
        let mut resp = tokio::time::timeout(wait, open().send())
            .await
            .expect("export starts: connections were released")
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let _ = resp.chunk().await;
        drop(resp);
    }
    let r = tokio::time::timeout(wait, http.get(probe, Some(token)))
        .await
        .expect("pool not exhausted");
    assert_eq!(r.status, 200);
}
