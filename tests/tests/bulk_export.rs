//! Bulk export (A8.2): `POST /api/bulk/export` as the `abbotik-export` NDJSON stream (line
//! order and shapes, parents before children, every system field, trash and purge, the
//! include parts, the models filter), as the JSON document under the response cap, its
//! permissions and errors, tenant isolation, one snapshot across models, a 20k-row export,
//! and a failure mid-stream (no `end` line, truncated transfer).

use abbotik_testkit::transfer::{abandon_streams, export_ndjson, export_ndjson_with, ndjson_lines};
use abbotik_testkit::{err, okd, spawn_app, spawn_app_with, test_db, TestApp, TestTenant};
use serde_json::{json, Value};

const SYSTEM: &[&str] = &[
    "created_at",
    "updated_at",
    "trashed_at",
    "deleted_at",
    "access_read",
    "access_edit",
    "access_full",
    "access_deny",
];

async fn ok(app: &TestApp, t: &TestTenant, method: &str, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let r = app.call(method, path, t.token(), body).await;
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.text);
    r.body["data"].clone()
}

/// `notes` (self-referencing), `vendors` and `orders` (child of vendors): alphabetical order
/// would put `orders` before its parent. Two vendors, three orders, two notes.
/// The request of a streaming NDJSON export of everything; the caller sends it and reads the
/// body as it needs.
fn open_export(app: &TestApp, t: &TestTenant) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/api/bulk/export?format=ndjson"))
        .bearer_auth(&t.token)
        .json(&json!({}))
}

async fn setup(app: &TestApp, t: &TestTenant) -> (Vec<String>, Vec<String>) {
    ok(app, t, "POST", "/api/describe/vendors",
        json!({"fields": {"name": {"type": "text", "required": true}, "rating": {"type": "decimal"}}})).await;
    ok(app, t, "POST", "/api/describe/orders", json!({"fields": {
        "number": {"type": "text"},
        "meta": {"type": "jsonb"},
        "tags": {"type": "text[]"},
        "vendor_id": {"type": "uuid", "relationship_type": "owned", "related_model": "vendors", "relationship_name": "orders"}}})).await;
    ok(
        app,
        t,
        "POST",
        "/api/describe/notes",
        json!({"fields": {"body": {"type": "text"}}}),
    )
    .await;
    ok(app, t, "POST", "/api/describe/notes/fields/parent_id",
        json!({"type": "uuid", "relationship_type": "referenced", "related_model": "notes", "relationship_name": "replies"})).await;
    let v = ok(
        app,
        t,
        "POST",
        "/api/data/vendors",
        json!([{"name": "Ada", "rating": "4.50"}, {"name": "Bob\nnewline ünïcode"}]),
    )
    .await;
    let vendors: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let o = ok(
        app,
        t,
        "POST",
        "/api/data/orders",
        json!([
        {"number": "A-1", "vendor_id": vendors[0], "meta": {"k": [1, 2]}, "tags": ["x", "y"]},
        {"number": "A-2", "vendor_id": vendors[0]},
        {"number": "B-1", "vendor_id": vendors[1]}]),
    )
    .await;
    let orders: Vec<String> = o
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let n = ok(app, t, "POST", "/api/data/notes", json!({"body": "root"})).await;
    ok(
        app,
        t,
        "POST",
        "/api/data/notes",
        json!({"body": "reply", "parent_id": n["id"]}),
    )
    .await;
    (vendors, orders)
}

fn of_type<'a>(lines: &'a [Value], ty: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == ty).collect()
}

#[tokio::test]
async fn ndjson_lines_in_order_with_parents_first_and_every_system_field() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (vendors, _) = setup(&app, &t).await;

    let r = app
        .client
        .post(app.url("/api/bulk/export"))
        .bearer_auth(&t.token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let lines = ndjson_lines(text.as_bytes());

    // meta
    let meta = &lines[0];
    assert_eq!(
        text.lines().next().unwrap().find("\"type\":\"meta\""),
        Some(1),
        "type first"
    );
    assert_eq!(meta["type"], "meta");
    assert_eq!(meta["format"], "abbotik-export");
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["tenant"], t.name.as_str());
    let at = meta["exported_at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 27, "{at}");
    assert_eq!(meta["models"], json!(["notes", "vendors", "orders"]));
    assert_eq!(meta["include"], json!(["describe", "data"]));

    // model lines: parents first (self-reference ignored), describe objects with fields
    let models: Vec<&Value> = lines[1..4].iter().collect();
    assert!(models.iter().all(|l| l["type"] == "model"));
    let names: Vec<&str> = models
        .iter()
        .map(|l| l["model"]["model_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes", "vendors", "orders"]);
    let orders = &models[2]["model"];
    assert_eq!(orders["status"], "active");
    assert_eq!(orders["passthrough"], false);
    assert!(orders.get("created_at").is_none(), "no metadata timestamps");
    let f: Vec<&str> = orders["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap())
        .collect();
    assert_eq!(f, ["number", "meta", "tags", "vendor_id"]);
    let fk = &orders["fields"][3];
    assert_eq!(fk["related_model"], "vendors");
    assert_eq!(fk["relationship_type"], "owned");
    assert_eq!(fk["type"], "uuid");
    assert!(fk.get("updated_at").is_none());

    // record lines, model by model in the same order, then end
    let records = &lines[4..lines.len() - 1];
    let seq: Vec<&str> = records
        .iter()
        .map(|l| l["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        seq,
        ["notes", "notes", "vendors", "vendors", "orders", "orders", "orders"]
    );
    for l in records {
        assert_eq!(l["type"], "record");
        let d = l["data"].as_object().unwrap();
        assert!(d["id"].is_string());
        for k in SYSTEM {
            assert!(d.contains_key(*k), "{k} in {l}");
        }
        assert!(d["deleted_at"].is_null() && d["trashed_at"].is_null());
        assert_eq!(d["access_read"], json!([]));
    }
    // Values exactly as the JSON API renders them.
    let ada = records.iter().find(|l| l["data"]["name"] == "Ada").unwrap();
    let api = okd(
        &app.get(&format!("/api/data/vendors/{}", vendors[0]), t.token())
            .await,
        200,
    );
    assert_eq!(ada["data"], api);
    assert_eq!(ada["data"]["rating"].to_string(), "4.50");
    assert!(records
        .iter()
        .any(|l| l["data"]["name"] == "Bob\nnewline ünïcode"));
    let a1 = records
        .iter()
        .find(|l| l["data"]["number"] == "A-1")
        .unwrap();
    assert_eq!(a1["data"]["meta"], json!({"k": [1, 2]}));
    assert_eq!(a1["data"]["tags"], json!(["x", "y"]));

    let end = lines.last().unwrap();
    assert_eq!(end, &json!({"type": "end", "models": 3, "records": 7}));
}

#[tokio::test]
async fn trash_purge_include_parts_and_models_filter() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (_, orders) = setup(&app, &t).await;
    ok(
        &app,
        &t,
        "DELETE",
        &format!("/api/data/orders/{}", orders[1]),
        Value::Null,
    )
    .await;
    ok(
        &app,
        &t,
        "DELETE",
        &format!("/api/data/orders/{}?permanent=true", orders[2]),
        Value::Null,
    )
    .await;

    // Sorted: rows created by one request share `created_at`, so `id` orders them.
    let ids = |b: &[u8]| -> Vec<String> {
        let mut v: Vec<String> = ndjson_lines(b)
            .iter()
            .filter(|l| l["model"] == "orders" && l["type"] == "record")
            .map(|l| l["data"]["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let live = export_ndjson(&app, &t.token).await;
    assert_eq!(ids(&live), [orders[0].clone()]);
    let all = export_ndjson_with(&app, &t.token, json!({"include_trashed": true})).await;
    assert_eq!(
        ids(&all),
        {
            let mut v = vec![orders[0].clone(), orders[1].clone()];
            v.sort();
            v
        },
        "purged never"
    );
    let lines = ndjson_lines(&all);
    let trashed = lines
        .iter()
        .find(|l| l["data"]["id"] == orders[1].as_str())
        .unwrap();
    assert!(trashed["data"]["trashed_at"].is_string());
    assert!(trashed["data"]["deleted_at"].is_null());
    assert_eq!(lines.last().unwrap()["records"], 2 + 2 + 2);

    // describe only: model lines, no records
    let d =
        ndjson_lines(&export_ndjson_with(&app, &t.token, json!({"include": ["describe"]})).await);
    assert_eq!(d[0]["include"], json!(["describe"]));
    assert_eq!(of_type(&d, "model").len(), 3);
    assert!(of_type(&d, "record").is_empty());
    assert_eq!(
        d.last().unwrap(),
        &json!({"type": "end", "models": 3, "records": 0})
    );

    // data only: records, no model lines (end counts the lines that are there)
    let d = ndjson_lines(
        &export_ndjson_with(&app, &t.token, json!({"include": ["data"], "models": null})).await,
    );
    assert_eq!(d[0]["include"], json!(["data"]));
    assert_eq!(d[0]["models"], json!(["notes", "vendors", "orders"]));
    assert!(of_type(&d, "model").is_empty());
    assert_eq!(
        d.last().unwrap(),
        &json!({"type": "end", "models": 0, "records": 5})
    );

    // models filter: only those, still parents first whatever the request order
    let d = ndjson_lines(
        &export_ndjson_with(&app, &t.token, json!({"models": ["orders", "vendors"]})).await,
    );
    assert_eq!(d[0]["models"], json!(["vendors", "orders"]));
    let models: Vec<&Value> = of_type(&d, "model")
        .into_iter()
        .map(|l| &l["model"]["model_name"])
        .collect();
    assert_eq!(models, [&json!("vendors"), &json!("orders")]);
    assert!(of_type(&d, "record").iter().all(|l| l["model"] != "notes"));
    assert_eq!(d.last().unwrap()["records"], 3);

    // saved filters may be named explicitly (the one system model import accepts), and come last
    ok(
        &app,
        &t,
        "POST",
        "/api/data/filters",
        json!({"model_name": "orders", "name": "open", "where": {"number": {"$like": "A%"}}}),
    )
    .await;
    let d = ndjson_lines(
        &export_ndjson_with(&app, &t.token, json!({"models": ["filters", "orders"]})).await,
    );
    assert_eq!(d[0]["models"], json!(["orders", "filters"]));
    let f = of_type(&d, "record")
        .into_iter()
        .find(|l| l["model"] == "filters")
        .unwrap();
    assert_eq!(f["data"]["name"], "open");
    // ...but never by default
    let d = ndjson_lines(&export_ndjson(&app, &t.token).await);
    assert!(d.iter().all(|l| l["model"] != "filters"));
}

#[tokio::test]
async fn errors_before_the_first_byte() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    setup(&app, &t).await;
    let post = |body: Value| app.post("/api/bulk/export?format=ndjson", t.token(), body);
    for m in ["users", "models", "fields", "tracked"] {
        let d = err(
            &post(json!({"models": ["orders", m]})).await,
            403,
            "MODEL_SYSTEM_PROTECTED",
        );
        assert_eq!(d["model"], m);
    }
    err(
        &post(json!({"models": ["orders", "nope"]})).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &post(json!({"models": ["credentials"]})).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &post(json!({"models": 5})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post(json!({"models": [1]})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post(json!({"include": ["acl"]})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post(json!({"include_trashed": "yes"})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    let d = err(
        &post(json!({"model": ["orders"]})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    assert_eq!(d["field"], "model");
    err(
        &post(json!(["orders"])).await,
        400,
        "VALIDATION_BODY_NOT_OBJECT",
    );
    err(
        &app.post("/api/bulk/export?format=csv", t.token(), json!({}))
            .await,
        406,
        "VALIDATION_FORMAT_UNSUPPORTED",
    );
    let r = app
        .client
        .post(app.url("/api/bulk/export"))
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // No credential.
    err(
        &app.post("/api/bulk/export", None, json!({})).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );
    // An empty body is `{}`.
    let r = app
        .client
        .post(app.url("/api/bulk/export"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn roles_read_allowed_deny_refused() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    setup(&app, &t).await;
    let (_, reader) = t.add_user(&app, "reader", "read").await;
    let reader = reader.expect("reader logs in");
    let d = ndjson_lines(&export_ndjson(&app, &reader).await);
    assert_eq!(d.last().unwrap()["records"], 7);
    let (_, denied) = t.add_user(&app, "nobody", "deny").await;
    if let Some(denied) = denied {
        let r = app.post("/api/bulk/export", Some(&denied), json!({})).await;
        err(&r, 403, "AUTH_ROLE_INSUFFICIENT");
    }
}

#[tokio::test]
async fn json_document_and_response_cap() {
    let app = spawn_app_with(&[("ABBOTIK_RESPONSE_MAX_BYTES", "20000")]).await;
    let t = TestTenant::new(&app).await;
    setup(&app, &t).await;
    let d = okd(
        &app.post("/api/bulk/export", t.token(), json!({})).await,
        200,
    );
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["meta", "models", "records"]);
    assert!(d["meta"].get("type").is_none());
    assert_eq!(d["meta"]["format"], "abbotik-export");
    assert_eq!(d["meta"]["models"], json!(["notes", "vendors", "orders"]));
    assert_eq!(d["models"].as_array().unwrap().len(), 3);
    assert_eq!(d["models"][1]["model_name"], "vendors");
    let rk: Vec<&String> = d["records"].as_object().unwrap().keys().collect();
    assert_eq!(rk, ["notes", "vendors", "orders"]);
    assert_eq!(d["records"]["orders"].as_array().unwrap().len(), 3);
    assert!(d["records"]["orders"][0]["access_deny"].is_array());

    // A model without records is an empty array; no data part → no records.
    ok(
        &app,
        &t,
        "POST",
        "/api/describe/empty_one",
        json!({"fields": {"x": {"type": "integer"}}}),
    )
    .await;
    let d = okd(
        &app.post(
            "/api/bulk/export",
            t.token(),
            json!({"models": ["empty_one"]}),
        )
        .await,
        200,
    );
    assert_eq!(d["records"], json!({"empty_one": []}));
    let d = okd(
        &app.post(
            "/api/bulk/export",
            t.token(),
            json!({"include": ["describe"]}),
        )
        .await,
        200,
    );
    assert_eq!(d["records"], json!({}));
    let d = okd(
        &app.post("/api/bulk/export", t.token(), json!({"include": ["data"]}))
            .await,
        200,
    );
    assert_eq!(d["models"], json!([]));
    let r = app
        .post("/api/bulk/export?unwrap", t.token(), json!({}))
        .await;
    assert_eq!(r.body["meta"]["version"], 1);

    // Past the cap: 413 in JSON, the NDJSON stream is not capped.
    let big = "x".repeat(1000);
    let items: Vec<Value> = (0..40)
        .map(|i| json!({"body": format!("{i}{big}")}))
        .collect();
    ok(
        &app,
        &t,
        "POST",
        "/api/data/notes?select=id",
        Value::Array(items),
    )
    .await;
    let d = err(
        &app.post("/api/bulk/export", t.token(), json!({})).await,
        413,
        "VALIDATION_RESPONSE_TOO_LARGE",
    );
    assert_eq!(d["limit_bytes"], 20000);
    let n = ndjson_lines(&export_ndjson(&app, &t.token).await);
    assert_eq!(n.last().unwrap()["records"], 47);
}

#[tokio::test]
async fn other_tenants_never_appear() {
    let app = spawn_app().await;
    let a = TestTenant::new(&app).await;
    let b = TestTenant::new(&app).await;
    for (t, name) in [(&a, "mine-a"), (&b, "secret-b")] {
        ok(
            &app,
            t,
            "POST",
            "/api/describe/vendors",
            json!({"fields": {"name": {"type": "text"}}}),
        )
        .await;
        ok(&app, t, "POST", "/api/data/vendors", json!({"name": name})).await;
    }
    ok(
        &app,
        &b,
        "POST",
        "/api/describe/only_b",
        json!({"fields": {"x": {"type": "text"}}}),
    )
    .await;
    let text = String::from_utf8(export_ndjson(&app, &a.token).await).unwrap();
    assert!(text.contains("mine-a"));
    assert!(!text.contains("secret-b") && !text.contains("only_b"));
    err(
        &app.post("/api/bulk/export", a.token(), json!({"models": ["only_b"]}))
            .await,
        404,
        "MODEL_NOT_FOUND",
    );
}

/// Rows generated in PostgreSQL behind the API.
async fn generate(t: &TestTenant, model: &str, n: i64, pad: usize) {
    let c = test_db().await;
    c.execute(
        &format!(
            "INSERT INTO \"ns_tenant_{}\".\"{model}\" (sku, n, body) \
             SELECT 'sku-' || g, g, repeat('x', $2::int) FROM generate_series(1, $1::bigint) g",
            t.name
        ),
        &[&n, &(pad as i32)],
    )
    .await
    .expect("rows generated");
}

async fn big_model(app: &TestApp, t: &TestTenant, name: &str) {
    ok(
        app,
        t,
        "POST",
        &format!("/api/describe/{name}"),
        json!({"fields": {
        "sku": {"type": "text"}, "n": {"type": "integer"}, "body": {"type": "text"}}}),
    )
    .await;
}

#[tokio::test]
async fn twenty_thousand_rows_stream_and_one_snapshot() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    big_model(&app, &t, "big").await;
    big_model(&app, &t, "zz_late").await;
    const N: i64 = 20_000;
    generate(&t, "big", N, 600).await;
    generate(&t, "zz_late", 10, 1).await;

    // Start the export and read only its first chunk: the snapshot is taken.
    let mut resp = open_export(&app, &t).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.chunk().await.unwrap().expect("first chunk").to_vec();
    // Writes after the start are not part of it, in the model being read or a later one.
    ok(
        &app,
        &t,
        "POST",
        "/api/data/big",
        json!({"sku": "late-big"}),
    )
    .await;
    ok(
        &app,
        &t,
        "POST",
        "/api/data/zz_late",
        json!({"sku": "late-z"}),
    )
    .await;
    while let Some(c) = resp.chunk().await.expect("complete transfer") {
        body.extend_from_slice(&c);
    }
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("late-big") && !text.contains("late-z"));
    let lines = ndjson_lines(text.as_bytes());
    let big = lines
        .iter()
        .filter(|l| l["model"] == "big" && l["type"] == "record")
        .count();
    assert_eq!(big as i64, N);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"type": "end", "models": 2, "records": N + 10})
    );
    // Default order within a model: created_at, id — every sku once.
    let mut skus = std::collections::HashSet::new();
    for l in lines.iter().filter(|l| l["model"] == "big") {
        assert!(skus.insert(l["data"]["sku"].as_str().unwrap().to_owned()));
    }
    // A later export sees the new rows.
    let after = ndjson_lines(&export_ndjson(&app, &t.token).await);
    assert_eq!(after.last().unwrap()["records"], N + 12);

    // Clients that hang up mid-stream give their connection (and snapshot) back.
    abandon_streams(
        &app,
        &t.token,
        || open_export(&app, &t),
        "/api/data/big?limit=1",
    )
    .await;
}

#[tokio::test]
async fn failure_mid_stream_leaves_no_end_line() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    big_model(&app, &t, "pages").await;
    // ~30 MB: more than socket buffers hold, so the read is still going on.
    generate(&t, "pages", 3000, 10_000).await;
    let mut resp = open_export(&app, &t).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.chunk().await.unwrap().expect("first chunk").to_vec();
    let c = test_db().await;
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
    let end = loop {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(end.is_err(), "the transfer is truncated");
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("\"type\":\"end\""),
        "no end line after a failure"
    );
}

#[tokio::test]
async fn an_export_holds_a_query_slot_until_its_last_byte() {
    let app = spawn_app_with(&[("ABBOTIK_QUERY_CONCURRENCY_PER_TENANT", "1")]).await;
    let t = TestTenant::new(&app).await;
    big_model(&app, &t, "pages").await;
    // ~20 MB: the export is still streaming while the client holds it.
    generate(&t, "pages", 2000, 10_000).await;
    let mut first = open_export(&app, &t).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    assert!(first.chunk().await.unwrap().is_some());
    // The tenant's one slot is taken: a second export and a list wait, then 429.
    let d = err(
        &app.post("/api/bulk/export?format=ndjson", t.token(), json!({}))
            .await,
        429,
        "RATE_LIMITED",
    );
    assert_eq!(d["scope"], "query");
    // A describe-only export reads no records and needs no slot.
    let d =
        ndjson_lines(&export_ndjson_with(&app, &t.token, json!({"include": ["describe"]})).await);
    assert_eq!(d.len(), 3);
    // Read to the end: the slot comes back.
    while first.chunk().await.expect("complete transfer").is_some() {}
    let n = ndjson_lines(&export_ndjson(&app, &t.token).await);
    assert_eq!(n.last().unwrap()["records"], 2000);
}
