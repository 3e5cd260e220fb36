//! Export (A5.4): `GET /api/data/:model?format=csv|ndjson` — RFC 4180 CSV with CRLF line ends
//! and the cell rules, NDJSON lines identical to the JSON API's records, query options,
//! `csv_safe`, format negotiation (A1.5), errors before the first byte, and a large export
//! streamed past the response size cap (A1.10).

use abbotik_testkit::transfer::abandon_streams;
use abbotik_testkit::{enc, spawn_app, spawn_app_with, TestApp, TestTenant};
use serde_json::{json, Value};

/// A raw response: status, headers, body text.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn raw(app: &TestApp, path: &str, t: &TestTenant, accept: Option<&str>) -> Raw {
    let mut rb = app.client.get(app.url(path)).bearer_auth(&t.token);
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let r = rb.send().await.expect("request sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("complete body");
    Raw {
        status,
        headers,
        text,
    }
}

/// A strict RFC 4180 reader: records end with CRLF (a bare LF or CR outside quotes fails),
/// quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let b: Vec<char> = text.chars().collect();
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut i = 0;
    assert!(text.is_empty() || text.ends_with("\r\n"), "ends with CRLF");
    while i < b.len() {
        if b[i] == '"' && cell.is_empty() {
            i += 1;
            loop {
                assert!(i < b.len(), "unterminated quoted field");
                if b[i] == '"' {
                    if b.get(i + 1) == Some(&'"') {
                        cell.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                cell.push(b[i]);
                i += 1;
            }
            assert!(
                matches!(b.get(i), Some(',') | Some('\r')),
                "quote closes a field"
            );
            continue;
        }
        match b[i] {
            ',' => {
                row.push(std::mem::take(&mut cell));
                i += 1;
            }
            '\r' => {
                assert_eq!(b.get(i + 1), Some(&'\n'), "CR is followed by LF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                i += 2;
            }
            '\n' => panic!("bare LF outside quotes at {i}"),
            '"' => panic!("quote inside an unquoted field at {i}"),
            c => {
                cell.push(c);
                i += 1;
            }
        }
    }
    rows
}

/// A tenant with `items` covering every value kind.
async fn setup(app: &TestApp) -> TestTenant {
    TestTenant::with_model(
        app,
        "items",
        json!({"fields":[
            {"field_name":"name","type":"text"},
            {"field_name":"note","type":"text"},
            {"field_name":"total","type":"decimal"},
            {"field_name":"qty","type":"integer"},
            {"field_name":"ok","type":"boolean"},
            {"field_name":"meta","type":"jsonb"},
            {"field_name":"tags","type":"text[]"},
            {"field_name":"nums","type":"decimal[]"},
            {"field_name":"blob","type":"binary"},
            {"field_name":"at","type":"timestamp"},
            {"field_name":"day","type":"date"},
            {"field_name":"ref","type":"uuid"}
        ]}),
    )
    .await
}

async fn create(app: &TestApp, t: &TestTenant, model: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/data/{model}"), t.token(), body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["data"].clone()
}

const ALL_COLUMNS: &[&str] = &[
    "id",
    "name",
    "note",
    "total",
    "qty",
    "ok",
    "meta",
    "tags",
    "nums",
    "blob",
    "at",
    "day",
    "ref",
    "created_at",
    "updated_at",
    "trashed_at",
    "deleted_at",
    "access_read",
    "access_edit",
    "access_full",
    "access_deny",
];

#[tokio::test]
async fn csv_header_quoting_and_cell_rules() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    let body: Value = serde_json::from_str(
        r#"[{"name":"a full","note":"comma, \"quote\"\nnew line\r\nand CRLF","total":12345678901234567890.123456789,
             "qty":-7,"ok":true,"meta":{"x":[1, 2],"s":"t"},"tags":["a","b,c"],"nums":[1.50,2],"blob":"aGVsbG8=",
             "at":"2026-05-06T16:03:21.4+02:00","day":"2026-05-06","ref":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"},
            {"name":"b nulls","ok":false,"meta":"5"},
            {"name":"c empty","note":"","meta":null,"tags":[]}]"#,
    )
    .unwrap();
    let recs = create(&app, &t, "items", body).await;
    let r = raw(&app, "/api/data/items?format=csv&order=name", &t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=\"items.csv\""
    );
    assert!(
        r.headers.get("content-length").is_none(),
        "streamed, not buffered"
    );
    let rows = parse_csv(&r.text);
    assert_eq!(rows.len(), 4, "{}", r.text);
    assert_eq!(rows[0], ALL_COLUMNS);
    let a = &rows[1];
    let col = |row: &Vec<String>, name: &str| {
        row[ALL_COLUMNS.iter().position(|c| *c == name).unwrap()].clone()
    };
    assert_eq!(col(a, "id"), recs[0]["id"].as_str().unwrap());
    assert_eq!(col(a, "note"), "comma, \"quote\"\nnew line\r\nand CRLF");
    assert!(
        r.text
            .contains("\"comma, \"\"quote\"\"\nnew line\r\nand CRLF\""),
        "RFC 4180 quoting: {}",
        r.text
    );
    assert_eq!(col(a, "total"), "12345678901234567890.123456789");
    assert_eq!(col(a, "qty"), "-7");
    assert_eq!(col(a, "ok"), "true");
    assert_eq!(col(a, "meta"), r#"{"s":"t","x":[1,2]}"#, "compact JSON");
    assert_eq!(col(a, "tags"), r#"["a","b,c"]"#);
    assert_eq!(col(a, "nums"), "[1.50,2]", "exact decimals in arrays");
    assert_eq!(col(a, "blob"), "aGVsbG8=");
    assert_eq!(col(a, "at"), "2026-05-06T14:03:21.400000Z");
    assert_eq!(col(a, "day"), "2026-05-06");
    assert_eq!(col(a, "ref"), "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10");
    assert_eq!(
        col(a, "created_at"),
        recs[0]["created_at"].as_str().unwrap()
    );
    assert_eq!(
        col(a, "updated_at"),
        recs[0]["updated_at"].as_str().unwrap()
    );
    assert_eq!(col(a, "trashed_at"), "");
    assert_eq!(col(a, "deleted_at"), "");
    assert_eq!(col(a, "access_read"), "[]");
    let b = &rows[2];
    assert_eq!(col(b, "ok"), "false");
    assert_eq!(col(b, "meta"), "\"5\"", "a jsonb string stays JSON text");
    for f in [
        "note", "total", "qty", "tags", "nums", "blob", "at", "day", "ref",
    ] {
        assert_eq!(col(b, f), "", "null {f} is an empty cell");
    }
    let c = &rows[3];
    assert_eq!(col(c, "note"), "");
    assert_eq!(col(c, "meta"), "");
    assert_eq!(col(c, "tags"), "[]");
}

#[tokio::test]
async fn stat_access_select_and_query_options() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    let items: Vec<Value> = (1..=6)
        .map(|i| json!({"name": format!("n{i}"), "qty": i, "meta": {"i": i}}))
        .collect();
    create(&app, &t, "items", Value::Array(items)).await;

    let header = |text: &str| parse_csv(text)[0].clone();
    let r = raw(
        &app,
        "/api/data/items?format=csv&stat=false&access=false",
        &t,
        None,
    )
    .await;
    assert_eq!(header(&r.text), ALL_COLUMNS[..13].to_vec());
    let r = raw(&app, "/api/data/items?format=csv&stat=false", &t, None).await;
    let h = header(&r.text);
    assert_eq!(h[13..], ALL_COLUMNS[17..]);
    let r = raw(&app, "/api/data/items?format=csv&access=0", &t, None).await;
    assert_eq!(header(&r.text)[13..], ALL_COLUMNS[13..17]);
    let r = raw(
        &app,
        "/api/data/items?format=csv&select=qty,created_at,name",
        &t,
        None,
    )
    .await;
    assert_eq!(header(&r.text), ["id", "name", "qty", "created_at"]);

    // where / order / limit / offset, in CSV and NDJSON alike.
    let w = enc(r#"{"qty":[1,2,3,4,5]}"#);
    let q = format!("where={w}&order=qty%20desc&offset=1&limit=3&select=qty");
    let r = raw(&app, &format!("/api/data/items?format=csv&{q}"), &t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = parse_csv(&r.text);
    let qty: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(qty, ["4", "3", "2"]);
    let r = raw(
        &app,
        &format!("/api/data/items?format=ndjson&{q}"),
        &t,
        None,
    )
    .await;
    let qty: Vec<i64> = r
        .text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["qty"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(qty, [4, 3, 2]);

    // limit=0 → the header alone; limits above the JSON maximum are fine for streams.
    let r = raw(&app, "/api/data/items?format=csv&limit=0", &t, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(parse_csv(&r.text).len(), 1);
    let r = raw(&app, "/api/data/items?format=ndjson&limit=0", &t, None).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = raw(&app, "/api/data/items?format=csv&limit=50000", &t, None).await;
    assert_eq!(parse_csv(&r.text).len(), 7);

    // Trashed records appear only with include_trashed.
    let listed = app
        .get("/api/data/items?order=qty&limit=1", t.token())
        .await
        .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = app
        .call(
            "DELETE",
            &format!("/api/data/items/{listed}"),
            t.token(),
            None,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let r = raw(&app, "/api/data/items?format=ndjson", &t, None).await;
    assert_eq!(r.text.lines().count(), 5);
    let r = raw(
        &app,
        "/api/data/items?format=ndjson&include_trashed=true",
        &t,
        None,
    )
    .await;
    assert_eq!(r.text.lines().count(), 6);
}

#[tokio::test]
async fn ndjson_lines_are_the_json_records() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    create(
        &app,
        &t,
        "items",
        json!([
            {"name":"x\ny","total":"0.10","meta":{"deep":{"a":[1,{"b":null}]}},"blob":"AAEC"},
            {"name":"two","tags":["q\"r"],"at":"2026-01-01T00:00:00Z"}
        ]),
    )
    .await;
    let list = app.get("/api/data/items", t.token()).await;
    let data = list.body["data"].as_array().unwrap().clone();
    for accept in [None, Some("application/x-ndjson")] {
        let path = if accept.is_some() {
            "/api/data/items"
        } else {
            "/api/data/items?format=ndjson"
        };
        let r = raw(&app, path, &t, accept).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("content-type"), "application/x-ndjson");
        assert!(r.text.ends_with('\n'));
        let lines: Vec<Value> = r
            .text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON record"))
            .collect();
        assert_eq!(lines, data);
        assert!(r.text.contains("\"total\":0.10"), "exact decimal text");
    }
    let r = raw(
        &app,
        "/api/data/items?format=ndjson&stat=false&access=false&select=name",
        &t,
        None,
    )
    .await;
    let first: Value = serde_json::from_str(r.text.lines().next().unwrap()).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "name"]);
}

#[tokio::test]
async fn csv_safe_prefixes_formula_cells() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    let risky = [
        "=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b",
    ];
    let items: Vec<Value> = risky
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"name": s, "qty": i, "total": -1.5, "meta": "=x"}))
        .collect();
    create(&app, &t, "items", Value::Array(items)).await;
    let q = "select=name,qty,total,meta&order=qty&stat=false&access=false";
    let r = raw(&app, &format!("/api/data/items?format=csv&{q}"), &t, None).await;
    let rows = parse_csv(&r.text);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, risky, "off by default: exact round trip");
    let r = raw(
        &app,
        &format!("/api/data/items?format=csv&csv_safe=true&{q}"),
        &t,
        None,
    )
    .await;
    let rows = parse_csv(&r.text);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        names,
        [
            "'=1+1",
            "'+cmd",
            "'-2",
            "'@SUM(A1)",
            "'\tx",
            "'\rx",
            "plain",
            "a=b"
        ]
    );
    assert_eq!(rows[0], ["id", "name", "total", "qty", "meta"]);
    assert_eq!(rows[1][2], "-1.5", "numbers are not text cells");
    assert_eq!(rows[1][4], "\"=x\"", "jsonb cells are JSON text");
    let r = raw(&app, "/api/data/items?format=csv&csv_safe=maybe", &t, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["code"], "VALIDATION_FIELD_INVALID");
}

#[tokio::test]
async fn negotiation_and_errors_before_the_first_byte() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    create(&app, &t, "items", json!({"name":"one"})).await;
    let id = app.get("/api/data/items", t.token()).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ct = |r: &Raw| r.header("content-type").to_owned();
    let r = raw(&app, "/api/data/items", &t, Some("text/csv")).await;
    assert_eq!((r.status, ct(&r)), (200, "text/csv; charset=utf-8".into()));
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("text/html,*/*;q=0.8"),
    ] {
        let r = raw(&app, "/api/data/items", &t, accept).await;
        assert_eq!(r.status, 200);
        assert!(ct(&r).starts_with("application/json"), "{accept:?}");
        assert_eq!(r.json()["success"], true);
    }
    // ?format wins over Accept, both ways.
    let r = raw(&app, "/api/data/items?format=json", &t, Some("text/csv")).await;
    assert!(ct(&r).starts_with("application/json"));
    let r = raw(
        &app,
        "/api/data/items?format=csv",
        &t,
        Some("application/json"),
    )
    .await;
    assert_eq!(ct(&r), "text/csv; charset=utf-8");
    let r = raw(&app, "/api/data/items?format=ndjson", &t, Some("text/csv")).await;
    assert_eq!(ct(&r), "application/x-ndjson");

    // Unsupported formats, and formats on routes that do not offer them.
    let r = raw(&app, "/api/data/items?format=xml", &t, None).await;
    assert_eq!(r.status, 406, "{}", r.text);
    assert_eq!(r.json()["code"], "VALIDATION_FORMAT_UNSUPPORTED");
    assert_eq!(
        r.json()["data"]["supported"],
        json!(["json", "csv", "ndjson"])
    );
    let r = raw(&app, &format!("/api/data/items/{id}?format=csv"), &t, None).await;
    assert_eq!(r.status, 406, "{}", r.text);
    assert_eq!(r.json()["code"], "VALIDATION_FORMAT_UNSUPPORTED");
    let r = raw(&app, &format!("/api/data/items/{id}"), &t, Some("text/csv")).await;
    assert_eq!(r.status, 406, "{}", r.text);

    // Errors found before the first byte keep the JSON envelope.
    for (path, status, code) in [
        ("/api/data/items?format=csv&where=%7Bbad", 400, ""),
        (
            "/api/data/items?format=csv&where=%7B%22nope%22%3A1%7D",
            400,
            "FILTER_UNKNOWN_FIELD",
        ),
        (
            "/api/data/items?format=csv&order=nope",
            400,
            "FILTER_INVALID_SORT",
        ),
        (
            "/api/data/items?format=csv&select=nope",
            400,
            "FILTER_INVALID_SELECT",
        ),
        (
            "/api/data/items?format=csv&limit=-1",
            400,
            "FILTER_INVALID_LIMIT",
        ),
        (
            "/api/data/items?format=ndjson&offset=x",
            400,
            "FILTER_INVALID_OFFSET",
        ),
        ("/api/data/nothing_here?format=csv", 404, "MODEL_NOT_FOUND"),
        (
            "/api/data/tracked?format=csv",
            403,
            "MODEL_SYSTEM_PROTECTED",
        ),
    ] {
        let r = raw(&app, path, &t, None).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
        assert!(
            ct(&r).starts_with("application/json"),
            "{path}: envelope, not a stream"
        );
        assert_eq!(r.json()["success"], false, "{path}");
        if !code.is_empty() {
            assert_eq!(r.json()["code"], code, "{path}");
        }
    }
    let anon = app
        .client
        .get(app.url("/api/data/items?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    // System models follow the JSON list's rules: the owner (sudo) may export users.
    let r = raw(&app, "/api/data/users?format=csv&select=username", &t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = parse_csv(&r.text);
    assert_eq!(rows[0], ["id", "username"]);
    assert!(rows.iter().any(|r| r[1] == "owner"));
}

#[tokio::test]
async fn large_export_streams_past_the_response_cap() {
    // Writes go through a normal pod; the export through a pod whose response cap is 100 kB
    // (both share the database and the signing keys).
    let writer = spawn_app().await;
    let app = spawn_app_with(&[("ABBOTIK_RESPONSE_MAX_BYTES", "100000")]).await;
    let t = TestTenant::new(&writer).await;
    let r = writer
        .post(
            "/api/describe/events",
            t.token(),
            json!({"fields":[{"field_name":"n","type":"integer"},{"field_name":"label","type":"text"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    const N: usize = 20_000;
    for chunk in 0..(N / 2000) {
        let items: Vec<Value> = (0..2000)
            .map(|i| {
                let n = chunk * 2000 + i;
                json!({"n": n, "label": format!("event, number \"{n}\"")})
            })
            .collect();
        let r = writer
            .post("/api/data/events", t.token(), Value::Array(items))
            .await;
        assert_eq!(r.status, 201, "{}", &r.text[..r.text.len().min(300)]);
    }

    // The JSON list is refused by the cap …
    let r = raw(&app, "/api/data/events?limit=10000", &t, None).await;
    assert_eq!(r.status, 413, "{}", &r.text[..r.text.len().min(300)]);
    assert_eq!(r.json()["code"], "VALIDATION_RESPONSE_TOO_LARGE");

    // … the CSV export streams every row (no default limit), in several chunks.
    let mut resp = app
        .client
        .get(app.url("/api/data/events?format=csv&order=n&stat=false&access=false"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(c) = resp.chunk().await.expect("complete transfer") {
        chunks += 1;
        body.extend_from_slice(&c);
    }
    assert!(body.len() > 100_000 * 5, "{} bytes", body.len());
    assert!(chunks > 1, "streamed in chunks");
    let text = String::from_utf8(body).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), N + 1);
    assert_eq!(rows[0], ["id", "n", "label"]);
    for (i, row) in rows[1..].iter().enumerate() {
        assert_eq!(row[1], i.to_string());
        assert_eq!(row[2], format!("event, number \"{i}\""));
    }

    // NDJSON too: every line parses, ids are unique.
    let r = raw(&app, "/api/data/events?format=ndjson", &t, None).await;
    assert_eq!(r.status, 200);
    let mut ids = std::collections::HashSet::new();
    for line in r.text.lines() {
        let v: Value = serde_json::from_str(line).expect("line parses");
        assert!(ids.insert(v["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(ids.len(), N);

    // A slow reader is not a slow query: each batch is its own fetch under the statement
    // timeout (1 s on this pod), so a download may outlast it.
    let slow = spawn_app_with(&[("ABBOTIK_STATEMENT_TIMEOUT_MS", "1000")]).await;
    let mut resp = slow
        .client
        .get(slow.url("/api/data/events?format=ndjson"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = Vec::new();
    let mut pauses = 0;
    while let Some(c) = resp.chunk().await.expect("complete transfer") {
        body.extend_from_slice(&c);
        if pauses < 2 {
            pauses += 1;
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        }
    }
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), N);

    // Clients that hang up mid-stream give their database connection back.
    abandon_streams(
        &app,
        &t.token,
        || {
            app.client
                .get(app.url("/api/data/events?format=ndjson"))
                .bearer_auth(&t.token)
        },
        "/api/data/events?limit=1",
    )
    .await;
}

#[tokio::test]
async fn failure_after_the_first_byte_truncates_the_transfer() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/pages",
            t.token(),
            json!({"fields":[{"field_name":"body","type":"text"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // 30 MB of rows: more than socket buffers hold, so the export is still reading from the
    // database (its portal suspended) while the client has not read past the first chunk.
    let page = "x".repeat(10_000);
    for _ in 0..6 {
        let items: Vec<Value> = (0..500).map(|_| json!({ "body": page })).collect();
        let r = app
            .post("/api/data/pages?select=id", t.token(), Value::Array(items))
            .await;
        assert_eq!(r.status, 201, "{}", &r.text[..r.text.len().min(300)]);
    }
    let mut resp = app
        .client
        .get(app.url("/api/data/pages?format=csv&select=body"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.chunk().await.unwrap().is_some());

    // Kill the export's database session while its transfer is under way.
    let c = abbotik_testkit::test_db().await;
    let table = format!("%\"ns_tenant_{}\".\"pages\"%", t.name);
    let mut killed = false;
    for _ in 0..50 {
        let rows = c
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND query LIKE $1 AND query LIKE '%row_to_json%'",
                &[&table],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            killed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(killed, "the export's session was found");
    let mut bytes = 0usize;
    let end = loop {
        match resp.chunk().await {
            Ok(Some(c)) => bytes += c.len(),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(
        end.is_err(),
        "a clean end after {bytes} more bytes would pass a partial file off as complete"
    );
}
