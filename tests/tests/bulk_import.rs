//! Bulk import (A8.3): `POST /api/bulk/import` — each strategy's effect on fields and records,
//! dry runs (rolled back, errors collected), the first invalid line (400 with line/reason,
//! nothing applied), end counts, line and stream limits, the confirm rule, references in any
//! order, system models, foreign access entries, purged lines, sequences, sudo, the per-tenant
//! lock, isolation, and the round trip export → import → export.

use abbotik_testkit::transfer::{comparable, export_ndjson_with, ndjson_lines};
use abbotik_testkit::{err, okd, spawn_app, spawn_app_with, test_db, Resp, TestApp, TestTenant};
use serde_json::{json, Value};

async fn ok(app: &TestApp, t: &TestTenant, method: &str, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let r = app.call(method, path, t.token(), body).await;
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.text);
    r.body["data"].clone()
}

/// `POST /api/bulk/import?{query}` with raw bytes of `content_type`.
async fn import_raw(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Resp {
    let r = app
        .client
        .post(app.url(&format!("/api/bulk/import?{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("import sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

fn nd(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

async fn import(app: &TestApp, t: &TestTenant, query: &str, lines: &[Value]) -> Resp {
    import_raw(app, &t.token, query, "application/x-ndjson", nd(lines)).await
}

/// An import refused as a whole (`400 VALIDATION_IMPORT_INVALID`): its `data`.
async fn refused(app: &TestApp, t: &TestTenant, query: &str, lines: &[Value]) -> Value {
    err(
        &import(app, t, query, lines).await,
        400,
        "VALIDATION_IMPORT_INVALID",
    )
}

fn meta() -> Value {
    json!({"type":"meta","format":"abbotik-export","version":1,"tenant":"elsewhere",
        "exported_at":"2026-05-06T14:00:00.000000Z","models":["items"],"include":["describe","data"]})
}

fn model(name: &str, fields: Value) -> Value {
    json!({"type":"model","model":{"model_name": name, "status":"active","description":null,
        "sudo":false,"frozen":false,"immutable":false,"external":false,"passthrough":false,"fields": fields}})
}

fn rec(model: &str, data: Value) -> Value {
    json!({"type":"record","model": model, "data": data})
}

const A: &str = "00000000-0000-4000-8000-00000000000a";
const B: &str = "00000000-0000-4000-8000-00000000000b";
const C: &str = "00000000-0000-4000-8000-00000000000c";

/// `items` with `name` (text, required) and `qty` (integer, min 0), records A and B.
async fn seed_items(app: &TestApp, t: &TestTenant) {
    ok(
        app,
        t,
        "POST",
        "/api/describe/items",
        json!({"fields": {
        "name": {"type": "text", "required": true},
        "qty": {"type": "integer", "minimum": 0},
        "note": {"type": "text"}}}),
    )
    .await;
    ok(
        app,
        t,
        "POST",
        "/api/data/items",
        json!([
        {"id": A, "name": "a", "qty": 1, "note": "keep-a"},
        {"id": B, "name": "b", "qty": 2, "note": "keep-b"}]),
    )
    .await;
}

fn items_fields(extra: bool) -> Value {
    let mut f = vec![
        json!({"field_name":"name","type":"text","required":true}),
        json!({"field_name":"qty","type":"integer","minimum":5}),
    ];
    if extra {
        f.push(json!({"field_name":"color","type":"text","default_value":"red"}));
    }
    Value::Array(f)
}

async fn get_rec(app: &TestApp, t: &TestTenant, model: &str, id: &str) -> Value {
    let r = app
        .get(
            &format!("/api/data/{model}/{id}?include_trashed=true"),
            t.token(),
        )
        .await;
    if r.status == 404 {
        return Value::Null;
    }
    okd(&r, 200)
}

/// Whether the tenant has a model of that name (`GET /api/describe`).
async fn has_model(app: &TestApp, t: &TestTenant, model: &str) -> bool {
    let names = ok(app, t, "GET", "/api/describe", Value::Null).await;
    names.as_array().unwrap().contains(&json!(model))
}

async fn field_names(app: &TestApp, t: &TestTenant, model: &str) -> Vec<String> {
    let d = ok(
        app,
        t,
        "GET",
        &format!("/api/describe/{model}"),
        Value::Null,
    )
    .await;
    d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn upsert_overwrites_records_and_updates_field_properties() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("items", items_fields(true)),
        rec("items", json!({"id": A, "name": "a2", "qty": 7})),
        rec(
            "items",
            json!({"id": C, "name": "c", "qty": 9, "created_at": "2020-01-02T03:04:05Z"}),
        ),
    ];
    let r = import(&app, &t, "", &lines).await;
    let d = okd(&r, 200);
    assert_eq!(d["dry_run"], false);
    assert_eq!(d["strategy"], "upsert");
    assert_eq!(d["meta"]["tenant"], "elsewhere");
    assert_eq!(d["errors"], json!([]));
    let s = &d["stats"];
    assert_eq!(s["models_updated"], 1);
    assert_eq!(s["fields_created"], 1);
    assert_eq!(s["fields_updated"], 1, "{d}");
    assert_eq!(s["records_created"], 1);
    assert_eq!(s["records_updated"], 1);
    assert_eq!(s["acl_entries_dropped"], 0);
    let m = &d["models"][0];
    assert_eq!(m["model_name"], "items");
    assert_eq!(m["action"], "update");
    assert_eq!(m["fields_created"], json!(["color"]));
    assert_eq!(m["fields_updated"], json!(["qty"]));
    // qty's minimum is now 5; note (absent from the import) is kept as a field.
    let f = ok(
        &app,
        &t,
        "GET",
        "/api/describe/items/fields/qty",
        Value::Null,
    )
    .await;
    assert_eq!(f["minimum"], 5);
    assert!(field_names(&app, &t, "items")
        .await
        .contains(&"note".to_owned()));
    // Every field overwritten: absent note → null, absent color → its default.
    let a = get_rec(&app, &t, "items", A).await;
    assert_eq!(
        (a["name"].clone(), a["qty"].clone()),
        (json!("a2"), json!(7))
    );
    assert_eq!(a["note"], Value::Null);
    assert_eq!(a["color"], "red");
    let c = get_rec(&app, &t, "items", C).await;
    assert_eq!(c["created_at"], "2020-01-02T03:04:05.000000Z");
    assert_eq!(get_rec(&app, &t, "items", B).await["note"], "keep-b");
}

#[tokio::test]
async fn merge_writes_present_keys_and_keeps_field_properties() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("items", items_fields(true)),
        rec("items", json!({"id": A, "qty": 3})),
        rec("items", json!({"id": C, "name": "c"})),
    ];
    let d = okd(&import(&app, &t, "strategy=merge", &lines).await, 200);
    assert_eq!(d["stats"]["fields_created"], 1);
    assert_eq!(d["stats"]["fields_updated"], 0);
    assert_eq!(d["stats"]["records_updated"], 1);
    assert_eq!(d["stats"]["records_created"], 1);
    let f = ok(
        &app,
        &t,
        "GET",
        "/api/describe/items/fields/qty",
        Value::Null,
    )
    .await;
    assert_eq!(f["minimum"], 0, "existing field properties untouched");
    let a = get_rec(&app, &t, "items", A).await;
    assert_eq!(a["qty"], 3);
    assert_eq!(a["name"], "a", "absent keys kept");
    assert_eq!(a["note"], "keep-a");
    assert_eq!(get_rec(&app, &t, "items", C).await["color"], "red");
    // A new record missing a required field cannot be merged.
    let bad = [
        meta(),
        rec(
            "items",
            json!({"id": "00000000-0000-4000-8000-0000000000dd", "qty": 1}),
        ),
    ];
    let e = refused(&app, &t, "strategy=merge", &bad).await;
    assert_eq!(e["line"], 2);
    assert_eq!(e["reason"], "validation");
}

#[tokio::test]
async fn replace_drops_fields_and_purges_records_and_needs_confirm() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("items", items_fields(false)),
        rec("items", json!({"id": C, "name": "c", "qty": 5})),
    ];
    let e = err(
        &import(&app, &t, "strategy=replace", &lines).await,
        400,
        "VALIDATION_CONFIRMATION_REQUIRED",
    );
    let _ = e;
    // A dry run needs no confirmation and changes nothing.
    let d = okd(
        &import(&app, &t, "strategy=replace&dry_run=true", &lines).await,
        200,
    );
    assert_eq!(d["dry_run"], true);
    assert_eq!(d["stats"]["records_deleted"], 2);
    assert_eq!(d["stats"]["fields_dropped"], 1);
    assert!(field_names(&app, &t, "items")
        .await
        .contains(&"note".to_owned()));
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "a");

    let d = okd(
        &import(&app, &t, "strategy=replace&confirm=true", &lines).await,
        200,
    );
    assert_eq!(d["stats"]["records_deleted"], 2);
    assert_eq!(d["stats"]["records_created"], 1);
    assert_eq!(d["models"][0]["fields_dropped"], json!(["note"]));
    assert_eq!(field_names(&app, &t, "items").await, ["name", "qty"]);
    assert_eq!(get_rec(&app, &t, "items", A).await, Value::Null);
    assert_eq!(get_rec(&app, &t, "items", C).await["qty"], 5);

    // Rule 9: data only → records replaced, fields left as they are.
    let data_only = [
        meta(),
        rec("items", json!({"id": A, "name": "again", "qty": 6})),
    ];
    let d = okd(
        &import(
            &app,
            &t,
            "strategy=replace&confirm=true&include=data",
            &data_only,
        )
        .await,
        200,
    );
    assert_eq!(d["stats"]["records_deleted"], 1);
    assert_eq!(d["stats"]["fields_dropped"], 0);
    assert_eq!(get_rec(&app, &t, "items", C).await, Value::Null);
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "again");
}

#[tokio::test]
async fn skip_leaves_existing_records_and_counts_them() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("items", items_fields(true)),
        rec("items", json!({"id": A, "name": "zzz", "qty": 9})),
        rec("items", json!({"id": B, "name": "zzz", "qty": 9})),
        rec("items", json!({"id": C, "name": "c", "qty": 9})),
    ];
    let d = okd(&import(&app, &t, "strategy=skip", &lines).await, 200);
    assert_eq!(d["stats"]["records_skipped"], 2);
    assert_eq!(d["stats"]["records_created"], 1);
    assert_eq!(d["stats"]["fields_created"], 1);
    assert_eq!(d["stats"]["fields_updated"], 0);
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "a");
    assert_eq!(get_rec(&app, &t, "items", C).await["name"], "c");
}

#[tokio::test]
async fn first_invalid_line_applies_nothing_and_dry_run_collects() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("fresh", json!([{"field_name":"n","type":"integer"}])),
        model("items", items_fields(true)),
        rec("fresh", json!({"n": 1})),
        rec("items", json!({"id": A, "name": "changed", "qty": 100})),
        rec("items", json!({"id": C, "name": "c", "qty": -1})),
        rec(
            "items",
            json!({"id": "00000000-0000-4000-8000-0000000000ee", "qty": "x"}),
        ),
    ];
    let e = refused(&app, &t, "", &lines).await;
    assert_eq!(e["line"], 6);
    assert_eq!(e["reason"], "validation");
    // Nothing applied: no new model, no new field, no changed record.
    assert!(!has_model(&app, &t, "fresh").await);
    assert!(!field_names(&app, &t, "items")
        .await
        .contains(&"color".to_owned()));
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "a");
    assert_eq!(get_rec(&app, &t, "items", C).await, Value::Null);

    let d = okd(&import(&app, &t, "dry_run=true", &lines).await, 200);
    assert_eq!(d["dry_run"], true);
    let errs = d["errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2, "{d}");
    assert_eq!(errs[0]["line"], 6);
    assert_eq!(errs[0]["code"], "VALIDATION_ERROR");
    assert_eq!(errs[0]["message"], "qty must be >= 5");
    assert_eq!(errs[1]["line"], 7);
    assert_eq!(d["stats"]["models_created"], 1);
    assert!(!has_model(&app, &t, "fresh").await, "dry run rolled back");
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "a");

    // Dry runs stop collecting at 100 errors.
    let mut many = vec![meta()];
    for _ in 0..150 {
        many.push(rec("items", json!({"name": 5})));
    }
    let d = okd(&import(&app, &t, "dry_run=true", &many).await, 200);
    assert_eq!(d["errors"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn stream_shape_end_counts_and_limits() {
    let app = spawn_app_with(&[
        ("ABBOTIK_IMPORT_MAX_BYTES", "3000000"),
        ("ABBOTIK_BODY_LIMIT_BYTES", "200000"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    // end counts must match.
    let lines = [
        meta(),
        rec("items", json!({"name": "x"})),
        json!({"type":"end","models":0,"records":2}),
    ];
    let e = refused(&app, &t, "", &lines).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(3), json!("end_count"))
    );
    let lines = [
        meta(),
        rec("items", json!({"name": "x"})),
        json!({"type":"end","models":0,"records":1}),
    ];
    okd(&import(&app, &t, "", &lines).await, 200);
    // line 1 must be meta; not JSON; order.
    let e = refused(&app, &t, "", &[rec("items", json!({}))]).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(1), json!("meta"))
    );
    let mut body = nd(&[meta()]);
    body.extend_from_slice(b"\n{nope\n");
    let e = err(
        &import_raw(&app, &t.token, "", "application/x-ndjson", body).await,
        400,
        "VALIDATION_IMPORT_INVALID",
    );
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(3), json!("json"))
    );
    let lines = [
        meta(),
        rec("items", json!({"name": "x"})),
        model("z", json!([])),
    ];
    let e = refused(&app, &t, "", &lines).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(3), json!("order"))
    );
    // A line over 1 MiB.
    let big = "x".repeat((1 << 20) + 10);
    let lines = [meta(), rec("items", json!({"name": big}))];
    let e = err(
        &import(&app, &t, "", &lines).await,
        413,
        "VALIDATION_BODY_TOO_LARGE",
    );
    assert_eq!(e["limit_bytes"], 1 << 20);
    // A stream over ABBOTIK_IMPORT_MAX_BYTES (3 MB here), in lines under 1 MiB.
    let mut lines = vec![meta()];
    for _ in 0..8 {
        lines.push(rec("items", json!({"name": "y".repeat(500_000)})));
    }
    let e = err(
        &import(&app, &t, "", &lines).await,
        413,
        "VALIDATION_BODY_TOO_LARGE",
    );
    assert_eq!(e["limit_bytes"], 3_000_000);
    // Nothing of the refused imports was applied.
    let all = ok(&app, &t, "GET", "/api/data/items", Value::Null).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    // Unsupported content type.
    err(
        &import_raw(&app, &t.token, "", "text/plain", nd(&[meta()])).await,
        415,
        "VALIDATION_UNSUPPORTED_MEDIA_TYPE",
    );
    // The JSON document form, with the envelope.
    let doc = json!({"success": true, "data": {"meta": {"format":"abbotik-export","version":1,"tenant":"x"},
        "models": [{"model_name":"docs","fields":[{"field_name":"title","type":"text"}]}],
        "records": {"docs": [{"title": "one"}, {"title": "two"}]}}});
    let d = okd(&app.post("/api/bulk/import", t.token(), doc).await, 200);
    assert_eq!(d["stats"]["records_created"], 2);
    assert_eq!(d["stats"]["models_created"], 1);
    // The JSON document is bounded by the body limit (200 kB here); NDJSON is not.
    let rows: Vec<Value> = (0..50)
        .map(|_| json!({"title": "z".repeat(5000)}))
        .collect();
    let doc = json!({"meta": {"format":"abbotik-export","version":1}, "records": {"docs": rows}});
    let e = err(
        &app.post("/api/bulk/import", t.token(), doc).await,
        413,
        "VALIDATION_BODY_TOO_LARGE",
    );
    assert_eq!(e["limit_bytes"], 200_000);
    let mut lines = vec![meta()];
    lines.extend((0..50).map(|_| rec("docs", json!({"title": "z".repeat(5000)}))));
    let d = okd(&import(&app, &t, "", &lines).await, 200);
    assert_eq!(d["stats"]["records_created"], 50);
}

#[tokio::test]
async fn models_filter_and_include_parts() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let lines = [
        meta(),
        model("alpha", json!([{"field_name":"a","type":"text"}])),
        model("beta", json!([{"field_name":"b","type":"text"}])),
        rec("alpha", json!({"id": A, "a": "1"})),
        rec("beta", json!({"id": B, "b": "2"})),
        json!({"type":"end","models":2,"records":2}),
    ];
    // Only beta; the end line still counts every line of the stream.
    let d = okd(&import(&app, &t, "models=beta", &lines).await, 200);
    assert_eq!(d["stats"]["models_created"], 1);
    assert_eq!(d["stats"]["records_created"], 1);
    assert!(has_model(&app, &t, "beta").await);
    assert!(!has_model(&app, &t, "alpha").await);
    // Describe only: alpha's model without its records.
    let d = okd(&import(&app, &t, "include=describe", &lines).await, 200);
    assert_eq!(d["stats"]["models_created"], 1);
    assert_eq!(d["stats"]["records_created"], 0);
    assert_eq!(get_rec(&app, &t, "alpha", A).await, Value::Null);
    // Data only: records of existing models; an unknown model is an invalid line.
    let d = okd(&import(&app, &t, "include=data", &lines).await, 200);
    assert_eq!(d["stats"]["records_created"], 1);
    assert_eq!(d["stats"]["records_updated"], 1);
    assert_eq!(get_rec(&app, &t, "alpha", A).await["a"], "1");
    let bad = [meta(), rec("gamma", json!({"x": 1}))];
    let e = refused(&app, &t, "include=data", &bad).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone(), e["code"].clone()),
        (json!(2), json!("model"), json!("MODEL_NOT_FOUND"))
    );
}

#[tokio::test]
async fn references_checked_at_the_end_in_any_order() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let p1 = "00000000-0000-4000-8000-000000000101";
    let k1 = "00000000-0000-4000-8000-000000000201";
    let k2 = "00000000-0000-4000-8000-000000000202";
    let models = [
        model(
            "kids",
            json!([{"field_name":"parent_id","type":"uuid","relationship_type":"owned","related_model":"parents","relationship_name":"kids"},
                              {"field_name":"sibling_id","type":"uuid","relationship_type":"referenced","related_model":"kids"}]),
        ),
        model("parents", json!([{"field_name":"name","type":"text"}])),
    ];
    // Children before parents; a self-reference pointing forward.
    let mut lines = vec![meta()];
    lines.extend(models.iter().cloned());
    lines.push(rec(
        "kids",
        json!({"id": k1, "parent_id": p1, "sibling_id": k2}),
    ));
    lines.push(rec(
        "kids",
        json!({"id": k2, "parent_id": p1, "sibling_id": k1}),
    ));
    lines.push(rec("parents", json!({"id": p1, "name": "p"})));
    let d = okd(&import(&app, &t, "", &lines).await, 200);
    assert_eq!(d["stats"]["records_created"], 3);
    assert_eq!(get_rec(&app, &t, "kids", k1).await["sibling_id"], k2);

    // A dangling reference fails the import with the record's line.
    let t2 = TestTenant::new(&app).await;
    let mut lines = vec![meta()];
    lines.extend(models.iter().cloned());
    lines.push(rec("parents", json!({"id": p1, "name": "p"})));
    lines.push(rec("kids", json!({"id": k1, "parent_id": p1})));
    lines.push(rec(
        "kids",
        json!({"id": k2, "parent_id": "00000000-0000-4000-8000-000000000999"}),
    ));
    let e = refused(&app, &t2, "", &lines).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(6), json!("reference"))
    );
    assert!(!has_model(&app, &t2, "kids").await);
}

#[tokio::test]
async fn system_models_acl_entries_purged_lines_and_sequences() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    for (line, sys) in [
        model("users", json!([])),
        rec("tracked", json!({})),
        rec("models", json!({})),
    ]
    .into_iter()
    .enumerate()
    {
        let lines = [meta(), sys];
        let e = err(
            &import(&app, &t, "", &lines).await,
            403,
            "MODEL_SYSTEM_PROTECTED",
        );
        assert_eq!(e["line"], 2, "case {line}");
    }
    let foreign = "00000000-0000-4000-8000-00000000f00f";
    let lines = [
        meta(),
        model(
            "seqs",
            json!([{"field_name":"n","type":"bigserial"},{"field_name":"label","type":"text"}]),
        ),
        rec(
            "seqs",
            json!({"id": A, "n": 41, "label": "a", "access_read": [t.user_id, foreign],
            "access_deny": [foreign], "trashed_at": "2026-01-01T00:00:00Z", "updated_at": "2021-01-01T00:00:00Z"}),
        ),
        rec(
            "seqs",
            json!({"id": B, "n": 7, "label": "gone", "deleted_at": "2026-01-01T00:00:00Z"}),
        ),
        rec(
            "filters",
            json!({"model_name": "seqs", "name": "mine", "where": {"label": "a"}}),
        ),
    ];
    let d = okd(&import(&app, &t, "", &lines).await, 200);
    assert_eq!(d["stats"]["acl_entries_dropped"], 2);
    assert_eq!(d["stats"]["records_created"], 2, "{d}");
    let a = get_rec(&app, &t, "seqs", A).await;
    assert_eq!(a["access_read"], json!([t.user_id]));
    assert_eq!(a["access_deny"], json!([]));
    assert_eq!(a["n"], 41);
    assert_eq!(a["trashed_at"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(a["updated_at"], "2021-01-01T00:00:00.000000Z");
    assert_eq!(
        get_rec(&app, &t, "seqs", B).await,
        Value::Null,
        "purged line skipped"
    );
    let n = ok(&app, &t, "POST", "/api/data/seqs", json!({"label": "next"})).await;
    assert_eq!(n["n"], 42, "sequence moved past the imported maximum");
    let f = ok(&app, &t, "GET", "/api/find/seqs/mine", Value::Null).await;
    assert_eq!(
        f.as_array().unwrap().len(),
        0,
        "the saved filter runs (record a is trashed)"
    );
}

#[tokio::test]
async fn sudo_lock_and_isolation() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let other = TestTenant::new(&app).await;
    seed_items(&app, &other).await;
    let (_, full) = t.add_user(&app, "fuller", "full").await;
    let full = full.expect("full user logs in");
    let lines = [
        meta(),
        model("items", items_fields(false)),
        rec("items", json!({"id": A, "name": "mine", "qty": 5})),
    ];
    let r = import_raw(&app, &full, "", "application/x-ndjson", nd(&lines)).await;
    err(&r, 403, "AUTH_SUDO_REQUIRED");

    // Another import (any pod) holds the tenant's lock → 409, dry runs included.
    let mut db = test_db().await;
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('abbotik-import:' || $1::text, 0))",
        &[&t.tenant_id],
    )
    .await
    .unwrap();
    err(
        &import(&app, &t, "", &lines).await,
        409,
        "TENANT_IMPORT_IN_PROGRESS",
    );
    err(
        &import(&app, &t, "dry_run=true", &lines).await,
        409,
        "TENANT_IMPORT_IN_PROGRESS",
    );
    tx.rollback().await.unwrap();
    okd(&import(&app, &t, "", &lines).await, 200);
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "mine");
    // The other tenant's items are untouched.
    assert_eq!(get_rec(&app, &other, "items", A).await["name"], "a");
    assert_eq!(get_rec(&app, &other, "items", A).await["note"], "keep-a");
}

/// A tenant with relationships, jsonb, arrays, unicode, trashed rows, decimals, timestamps.
async fn rich_tenant(app: &TestApp, t: &TestTenant) {
    ok(
        app,
        t,
        "POST",
        "/api/describe/vendors",
        json!({"description": "Vendors ✓", "fields": {
        "name": {"type": "text", "required": true, "unique": true},
        "rating": {"type": "decimal", "minimum": 0},
        "since": {"type": "timestamp"},
        "day": {"type": "date"},
        "logo": {"type": "binary"},
        "active": {"type": "boolean", "default": true}}}),
    )
    .await;
    ok(app, t, "POST", "/api/describe/orders", json!({"fields": {
        "number": {"type": "text", "index": true},
        "meta": {"type": "jsonb"},
        "tags": {"type": "text[]"},
        "amounts": {"type": "decimal[]"},
        "seq": {"type": "bigserial"},
        "vendor_id": {"type": "uuid", "relationship_type": "owned", "related_model": "vendors", "relationship_name": "orders", "cascade_delete": true}}})).await;
    ok(
        app,
        t,
        "POST",
        "/api/describe/notes",
        json!({"fields": {"body": {"type": "text", "searchable": true}}}),
    )
    .await;
    ok(app, t, "POST", "/api/describe/notes/fields/parent_id",
        json!({"type": "uuid", "relationship_type": "referenced", "related_model": "notes", "relationship_name": "replies"})).await;
    let v = ok(app, t, "POST", "/api/data/vendors", json!([
        {"name": "Ada", "rating": "12345678901234567890.123456789", "since": "2026-05-06T14:03:21.482913+02:00",
         "day": "2026-02-28", "logo": "AAEC/w=="},
        {"name": "Bob\nnew\tline \"ünïcødé\" \\ 🚀", "rating": 0.5, "active": false}])).await;
    let ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ok(app, t, "POST", "/api/data/orders", json!([
        {"number": "A-1", "vendor_id": ids[0], "meta": {"k": [1, 2.5, null, "x\u{0001}"], "n": {"deep": true}}, "tags": ["x", "y,z", "q\"uote", "back\\slash"], "amounts": [1.10, "2.000"]},
        {"number": "A-2", "vendor_id": ids[0], "meta": "a string"},
        {"number": "B-1", "vendor_id": ids[1], "tags": []}])).await;
    let n = ok(app, t, "POST", "/api/data/notes", json!({"body": "root"})).await;
    let reply = ok(
        app,
        t,
        "POST",
        "/api/data/notes",
        json!({"body": "reply", "parent_id": n["id"]}),
    )
    .await;
    // Trashed rows: a note and a vendor (its orders cascade).
    ok(
        app,
        t,
        "DELETE",
        &format!("/api/data/notes/{}", reply["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    ok(
        app,
        t,
        "DELETE",
        &format!("/api/data/vendors/{}", ids[1]),
        Value::Null,
    )
    .await;
}

/// Model lines without their timestamps (a fresh tenant creates its models now).
fn without_model_times(mut lines: Vec<Value>) -> Vec<Value> {
    for l in &mut lines {
        if l["type"] == "model" {
            if let Some(m) = l["model"].as_object_mut() {
                m.remove("created_at");
                m.remove("updated_at");
                if let Some(Value::Array(fs)) = m.get_mut("fields") {
                    for f in fs {
                        if let Some(f) = f.as_object_mut() {
                            f.remove("created_at");
                            f.remove("updated_at");
                        }
                    }
                }
            }
        }
    }
    lines
}

#[tokio::test]
async fn round_trip_export_import_export() {
    let app = spawn_app().await;
    let src = TestTenant::new(&app).await;
    rich_tenant(&app, &src).await;
    let body = json!({"include_trashed": true});
    let first = export_ndjson_with(&app, &src.token, body.clone()).await;
    let dst = TestTenant::new(&app).await;
    let r = import_raw(&app, &dst.token, "", "application/x-ndjson", first.clone()).await;
    let d = okd(&r, 200);
    assert_eq!(d["stats"]["models_created"], 3, "{d}");
    assert_eq!(d["stats"]["records_created"], 7, "{d}");
    let second = export_ndjson_with(&app, &dst.token, body).await;
    assert_eq!(
        without_model_times(comparable(&second)),
        without_model_times(comparable(&first))
    );
    // Imported again with upsert: nothing changes, every record updated in place.
    let r = import_raw(&app, &dst.token, "", "application/x-ndjson", first.clone()).await;
    let d = okd(&r, 200);
    assert_eq!(d["stats"]["records_updated"], 7, "{d}");
    assert_eq!(d["stats"]["fields_updated"], 0, "{d}");
    let third = export_ndjson_with(&app, &dst.token, json!({"include_trashed": true})).await;
    assert_eq!(ndjson_lines(&third).len(), ndjson_lines(&first).len());
    assert_eq!(
        without_model_times(comparable(&third)),
        without_model_times(comparable(&first))
    );
}

#[tokio::test]
async fn unique_violations_name_their_line() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    ok(
        &app,
        &t,
        "POST",
        "/api/describe/codes",
        json!({"fields": {"code": {"type": "text", "unique": true}}}),
    )
    .await;
    ok(
        &app,
        &t,
        "POST",
        "/api/data/codes",
        json!({"id": A, "code": "X"}),
    )
    .await;
    // Existing rows: staged batches; the colliding line is found after the batch fails.
    let lines = [
        meta(),
        rec("codes", json!({"id": B, "code": "Y"})),
        rec("codes", json!({"id": C, "code": "X"})),
        rec("codes", json!({"code": 5})),
    ];
    let e = refused(&app, &t, "", &lines).await;
    assert_eq!(
        (e["line"].clone(), e["reason"].clone()),
        (json!(3), json!("unique")),
        "{e}"
    );
    assert_eq!(e["code"], "RECORD_UNIQUE_VIOLATION");
    let d = okd(&import(&app, &t, "dry_run=true", &lines).await, 200);
    let lines_of: Vec<Value> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].clone())
        .collect();
    assert_eq!(lines_of, [json!(3), json!(4)], "{d}");
    assert_eq!(get_rec(&app, &t, "codes", B).await, Value::Null);
    // A new model (streamed straight into its table): the violation fails the import.
    let lines = [
        meta(),
        model(
            "tags",
            json!([{"field_name":"label","type":"text","unique":true}]),
        ),
        rec("tags", json!({"label": "a"})),
        rec("tags", json!({"label": "a"})),
    ];
    let e = refused(&app, &t, "", &lines).await;
    assert_eq!(e["reason"], "unique");
    assert!(!has_model(&app, &t, "tags").await);
}

/// The first line of a model is read as an object; the lines after it straight into the
/// model's columns. Both forms apply the same rules.
#[tokio::test]
async fn later_lines_of_a_model_follow_the_same_rules() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    seed_items(&app, &t).await;
    let lines = [
        meta(),
        model("items", items_fields(true)),
        rec("items", json!({"id": A, "name": "a2", "qty": 6})),
        rec("items", json!({"id": "nope", "name": "x", "qty": 6})),
        rec("items", json!({"name": "x", "qty": 6, "bogus": 1})),
        rec("items", json!({"qty": 6})),
        rec(
            "items",
            json!({"name": "x", "deleted_at": "2026-01-01T00:00:00.000000Z"}),
        ),
        rec("items", json!(["not", "an", "object"])),
        rec("items", json!({"id": C, "name": "c", "qty": 7})),
    ];
    let d = okd(&import(&app, &t, "dry_run=true", &lines).await, 200);
    let errs: Vec<(Value, Value)> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].clone(), e["message"].clone()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (json!(4), json!("id must be a UUID")),
            (json!(5), json!("Unknown field: bogus")),
            (json!(6), json!("name is required")),
            (json!(8), json!("record line without a data object")),
        ],
        "{d}"
    );
    // Line 7 is a purged record: skipped, counted nowhere.
    assert_eq!(d["stats"]["records_updated"], 1, "{d}");
    assert_eq!(d["stats"]["records_created"], 1, "{d}");
    // Defaults fill absent fields on the column path too.
    let lines = [
        meta(),
        model("items", items_fields(true)),
        rec("items", json!({"id": A, "name": "a2", "qty": 6})),
        rec("items", json!({"id": C, "name": "c", "qty": 7})),
    ];
    okd(&import(&app, &t, "", &lines).await, 200);
    assert_eq!(get_rec(&app, &t, "items", C).await["color"], "red");
    assert_eq!(get_rec(&app, &t, "items", A).await["name"], "a2");
}
