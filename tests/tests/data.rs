//! Data (A5): records over HTTP — every route of `/api/data`, values and timestamps (A1.6),
//! system fields (A1.7), query options (A1.5, A1.10), write-time validation (A4.4), model and
//! system-model rules (A4.2, A4.6), one transaction per request, and owned relationships (A5.3).

use abbotik_testkit::{enc, err, okd, spawn_app, Resp, TestApp, TestTenant};
use serde_json::{json, Value};

async fn call(app: &TestApp, m: &str, path: &str, t: &TestTenant, body: Option<Value>) -> Resp {
    app.call(m, path, t.token(), body).await
}

/// A tenant with `orders` (every scalar type and most constraints).
async fn setup() -> (TestApp, TestTenant) {
    let app = spawn_app().await;
    let t = TestTenant::with_model(
        &app,
        "orders",
        json!({"fields":[
                {"field_name":"number","type":"text","required":true,"unique":true,"transform":"uppercase"},
                {"field_name":"total","type":"decimal","minimum":0},
                {"field_name":"state","type":"text","enum":["new","paid","shipped"],"default":"new"},
                {"field_name":"meta","type":"jsonb"},
                {"field_name":"tags","type":"text[]"},
                {"field_name":"at","type":"timestamp"},
                {"field_name":"day","type":"date"},
                {"field_name":"blob","type":"binary"},
                {"field_name":"qty","type":"integer","maximum":100},
                {"field_name":"paid","type":"boolean"},
                {"field_name":"ref","type":"uuid"},
                {"field_name":"seq","type":"bigserial"},
                {"field_name":"code","type":"text","immutable":true,"pattern":"^[a-z]+$"}
            ]}),
    )
    .await;
    (app, t)
}

fn is_ts(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 27 && s.ends_with('Z') && s.as_bytes()[19] == b'.')
}

#[tokio::test]
async fn create_get_list_with_exact_values() {
    let (app, t) = setup().await;
    let body: Value = serde_json::from_str(
        r#"{"number":"a-1","total":12345678901234567890.123456789,"meta":{"x":[1,2]},"tags":["a","b"],
            "at":"2026-05-06T16:03:21.4+02:00","day":"2026-05-06","blob":"aGVsbG8=","qty":7,"paid":true,
            "ref":"0C3E5B5E-8A4F-4A53-9D2C-1F6F3C1A2B10","seq":99,"created_at":"1999-01-01T00:00:00Z",
            "access_read":["00000000-0000-0000-0000-000000000000"]}"#,
    )
    .unwrap();
    let r = call(&app, "POST", "/api/data/orders", &t, Some(body)).await;
    let rec = okd(&r, 201);
    let keys: Vec<&str> = rec
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "number",
            "total",
            "state",
            "meta",
            "tags",
            "at",
            "day",
            "blob",
            "qty",
            "paid",
            "ref",
            "seq",
            "code",
            "created_at",
            "updated_at",
            "trashed_at",
            "deleted_at",
            "access_read",
            "access_edit",
            "access_full",
            "access_deny"
        ]
    );
    assert_eq!(rec["number"], "A-1", "transform applied");
    assert_eq!(rec["total"].to_string(), "12345678901234567890.123456789");
    assert!(r.text.contains("\"total\":12345678901234567890.123456789"));
    assert_eq!(rec["state"], "new", "default applied");
    assert_eq!(rec["meta"], json!({"x":[1,2]}));
    assert_eq!(rec["tags"], json!(["a", "b"]));
    assert_eq!(rec["at"], "2026-05-06T14:03:21.400000Z");
    assert_eq!(rec["day"], "2026-05-06");
    assert_eq!(rec["blob"], "aGVsbG8=");
    assert_eq!(rec["qty"], json!(7));
    assert_eq!(rec["paid"], true);
    assert_eq!(rec["ref"], "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10");
    assert_ne!(rec["seq"], json!(99), "bigserial is server-assigned");
    assert!(rec["seq"].is_number());
    assert!(
        is_ts(&rec["created_at"]) && is_ts(&rec["updated_at"]),
        "{rec}"
    );
    assert_ne!(
        rec["created_at"], "1999-01-01T00:00:00.000000Z",
        "system fields ignored"
    );
    assert_eq!(rec["trashed_at"], Value::Null);
    assert_eq!(rec["deleted_at"], Value::Null);
    assert_eq!(rec["access_read"], json!([]), "ACL lists not writable here");
    let id = rec["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);

    let got = okd(
        &app.get(&format!("/api/data/orders/{id}"), t.token()).await,
        200,
    );
    assert_eq!(got, rec);
    let list = okd(&app.get("/api/data/orders", t.token()).await, 200);
    assert_eq!(list, json!([rec.clone()]));

    // select, stat, access, unwrap
    let r = app
        .get(
            &format!("/api/data/orders/{id}?select=total,number&stat=false&access=0"),
            t.token(),
        )
        .await;
    let d = okd(&r, 200);
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "number", "total"]);
    let r = app
        .get("/api/data/orders?stat=false&unwrap", t.token())
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_array());
    assert!(r.body[0].get("created_at").is_none());
    assert!(r.body[0].get("access_read").is_some());
    let r = app.get("/api/data/orders?select=nope", t.token()).await;
    assert_eq!(err(&r, 400, "FILTER_INVALID_SELECT")["path"], "select");
    let r = app
        .get("/api/data/orders?include_deleted=true", t.token())
        .await;
    assert_eq!(okd(&r, 200).as_array().unwrap().len(), 1);

    // malformed or unknown ids
    let r = app.get("/api/data/orders/not-a-uuid", t.token()).await;
    err(&r, 404, "RECORD_NOT_FOUND");
    let r = app
        .get(
            &format!("/api/data/orders/{}", uuid::Uuid::new_v4()),
            t.token(),
        )
        .await;
    assert_eq!(err(&r, 404, "RECORD_NOT_FOUND")["model"], "orders");
    let r = app.get("/api/data/nope", t.token()).await;
    err(&r, 404, "MODEL_NOT_FOUND");
    let r = app.get("/api/data/credentials", t.token()).await;
    err(&r, 404, "MODEL_NOT_FOUND");
    let r = app.get("/api/data/orders", None).await;
    err(&r, 401, "AUTH_TOKEN_REQUIRED");
}

#[tokio::test]
async fn validation_collects_every_failure_and_writes_nothing() {
    let (app, t) = setup().await;
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([
            {"number":"ok-1","total":"19.50"},
            {"total":-1,"state":"lost","bogus":1,"qty":1.5},
            {"number":"x","at":"yesterday","day":"2026-02-30","blob":"%%%","paid":"yes","ref":"nope",
             "total":"0x10","qty":101,"tags":[1],"code":"ABC"}
        ])),
    )
    .await;
    let d = err(&r, 400, "VALIDATION_ERROR");
    assert_eq!(r.body["message"], "Validation failed for 2 records");
    let errs: Vec<(i64, String, String)> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["message"].is_string());
            (
                e["index"].as_i64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        (1, "total", "minimum"),
        (1, "state", "enum"),
        (1, "bogus", "unknown_field"),
        (1, "qty", "type"),
        (1, "number", "required"),
        (2, "at", "type"),
        (2, "day", "type"),
        (2, "blob", "type"),
        (2, "paid", "type"),
        (2, "ref", "type"),
        (2, "total", "type"),
        (2, "qty", "maximum"),
        (2, "tags", "type"),
        (2, "code", "pattern"),
    ] {
        assert!(
            errs.contains(&(want.0, want.1.to_owned(), want.2.to_owned())),
            "missing {want:?} in {errs:?}"
        );
    }
    let min = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rule"] == "minimum")
        .unwrap();
    assert_eq!(min["message"], "total must be >= 0");
    assert_eq!(
        okd(&app.get("/api/data/orders", t.token()).await, 200),
        json!([])
    );

    // body shapes
    let r = call(&app, "POST", "/api/data/orders", &t, Some(json!("x"))).await;
    err(&r, 400, "VALIDATION_BODY_NOT_OBJECT");
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([{"number":"a"}, 3])),
    )
    .await;
    assert_eq!(err(&r, 400, "VALIDATION_BODY_NOT_OBJECT")["index"], 1);
    let r = call(&app, "PUT", "/api/data/orders", &t, Some(json!({"id":"x"}))).await;
    err(&r, 400, "VALIDATION_BODY_NOT_ARRAY");
    let r = call(&app, "POST", "/api/data/orders", &t, Some(json!([]))).await;
    assert_eq!(okd(&r, 201), json!([]));
}

#[tokio::test]
async fn conflicts_roll_back_the_whole_request() {
    let (app, t) = setup().await;
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"number":"A-1"})),
    )
    .await;
    let first = okd(&r, 201);
    let id = first["id"].as_str().unwrap().to_owned();

    // unique violation on the second record: nothing written, field and index named
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([{"number":"B-1"},{"number":"a-1"}])),
    )
    .await;
    let d = err(&r, 409, "RECORD_UNIQUE_VIOLATION");
    assert_eq!(d["field"], "number");
    assert_eq!(d["index"], 1);
    assert!(!r.text.contains("uq_"), "no index names leak: {}", r.text);
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([{"number":"B-1"},{"number":"b-1"}])),
    )
    .await;
    assert_eq!(err(&r, 409, "RECORD_UNIQUE_VIOLATION")["index"], 1);
    assert_eq!(
        okd(&app.get("/api/data/orders", t.token()).await, 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // supplied id that exists
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([{"number":"C-1"},{"id":id,"number":"C-2"}])),
    )
    .await;
    let d = err(&r, 409, "RECORD_EXISTS");
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["index"], 1);
    let own = uuid::Uuid::new_v4().to_string();
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"id":own,"number":"D-1"})),
    )
    .await;
    assert_eq!(okd(&r, 201)["id"], own.as_str());

    // unique violation on update
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{own}"),
        &t,
        Some(json!({"number":"A-1"})),
    )
    .await;
    assert_eq!(err(&r, 409, "RECORD_UNIQUE_VIOLATION")["field"], "number");
}

#[tokio::test]
async fn merge_updates_by_id_bulk_and_where() {
    let (app, t) = setup().await;
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!([{"number":"A-1","total":1,"meta":{"a":1,"b":2}},{"number":"A-2","total":2},{"number":"A-3","state":"paid"}])),
    )
    .await;
    let recs = okd(&r, 201);
    let ids: Vec<String> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    // PUT and PATCH merge: only keys present change; null clears; jsonb replaced whole
    let r = call(
        &app,
        "PUT",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        Some(json!({"total":"5.50","meta":{"c":3}})),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d["total"].to_string(), "5.50");
    assert_eq!(d["meta"], json!({"c":3}));
    assert_eq!(d["number"], "A-1");
    assert_eq!(d["created_at"], recs[0]["created_at"]);
    assert!(d["updated_at"].as_str() >= recs[0]["updated_at"].as_str());
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        Some(json!({"meta":null,"id":ids[1]})),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d["meta"], Value::Null);
    assert_eq!(d["id"], ids[0].as_str(), "id in the body is ignored");
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        Some(json!({"number":null})),
    )
    .await;
    let d = err(&r, 400, "VALIDATION_ERROR");
    assert_eq!(d["errors"][0]["rule"], "required");
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{}", uuid::Uuid::new_v4()),
        &t,
        Some(json!({"total":1})),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");

    // bulk PUT
    let r = call(
        &app,
        "PUT",
        "/api/data/orders",
        &t,
        Some(json!([{"id":ids[1],"qty":3},{"id":ids[2],"qty":4}])),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d[0]["id"], ids[1].as_str());
    assert_eq!(d[1]["qty"], json!(4));
    let r = call(
        &app,
        "PUT",
        "/api/data/orders",
        &t,
        Some(json!([{"id":ids[1],"qty":9},{"id":uuid::Uuid::new_v4(),"qty":9}])),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    let r = call(
        &app,
        "PUT",
        "/api/data/orders",
        &t,
        Some(json!([{"qty":9}])),
    )
    .await;
    assert_eq!(err(&r, 400, "VALIDATION_ERROR")["errors"][0]["field"], "id");
    let one = okd(
        &app.get(&format!("/api/data/orders/{}", ids[1]), t.token())
            .await,
        200,
    );
    assert_eq!(one["qty"], json!(3), "failed bulk PUT wrote nothing");

    // PATCH ?where
    let w = enc(r#"{"state":"new"}"#);
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders?where={w}"),
        &t,
        Some(json!({"state":"shipped"})),
    )
    .await;
    let d = okd(&r, 200);
    let mut got: Vec<&str> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_str().unwrap())
        .collect();
    // Created in one request: same created_at, so the default order falls to random ids.
    got.sort_unstable();
    assert_eq!(got, ["A-1", "A-2"]);
    let r = call(
        &app,
        "PATCH",
        "/api/data/orders",
        &t,
        Some(json!({"state":"paid"})),
    )
    .await;
    assert_eq!(err(&r, 400, "VALIDATION_FIELD_MISSING")["field"], "where");
    let w = enc(r#"{"state":{"$elemMatch":["new"]}}"#);
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders?where={w}"),
        &t,
        Some(json!({"state":"paid"})),
    )
    .await;
    let d = err(&r, 400, "FILTER_UNSUPPORTED_OPERATOR");
    assert_eq!(d["path"], "where.state.$elemMatch");
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders?where={}", enc(r#"{"nope":1}"#)),
        &t,
        Some(json!({"state":"paid"})),
    )
    .await;
    err(&r, 400, "FILTER_UNKNOWN_FIELD");
}

#[tokio::test]
async fn where_order_limit_offset() {
    let (app, t) = setup().await;
    for (n, total, state) in [
        ("A-1", 3, "new"),
        ("A-2", 1, "paid"),
        ("A-3", 2, "new"),
        ("A-4", 2, "shipped"),
    ] {
        let r = call(
            &app,
            "POST",
            "/api/data/orders",
            &t,
            Some(json!({"number":n,"total":total,"state":state})),
        )
        .await;
        okd(&r, 201);
    }
    let numbers = |d: &Value| -> Vec<String> {
        d.as_array()
            .unwrap()
            .iter()
            .map(|r| r["number"].as_str().unwrap().to_owned())
            .collect()
    };
    let d = okd(&app.get("/api/data/orders", t.token()).await, 200);
    assert_eq!(
        numbers(&d),
        ["A-1", "A-2", "A-3", "A-4"],
        "created_at asc default"
    );
    let d = okd(
        &app.get(
            &format!("/api/data/orders?order={}", enc("total desc,number")),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-1", "A-3", "A-4", "A-2"]);
    let d = okd(
        &app.get(
            &format!(
                "/api/data/orders?order={}",
                enc(r#"[{"field":"number","sort":"desc"}]"#)
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-4", "A-3", "A-2", "A-1"]);
    let d = okd(
        &app.get("/api/data/orders?order=number&limit=2&offset=1", t.token())
            .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-2", "A-3"]);
    let d = okd(&app.get("/api/data/orders?limit=0", t.token()).await, 200);
    assert_eq!(d, json!([]));
    let d = okd(
        &app.get(
            &format!(
                "/api/data/orders?where={}",
                enc(r#"{"state":"new","total":2}"#)
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-3"]);
    let d = okd(
        &app.get(
            &format!(
                "/api/data/orders?where={}",
                enc(r#"{"state":["paid","shipped"]}"#)
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-2", "A-4"]);
    let d = okd(
        &app.get(
            &format!(
                "/api/data/orders?where={}",
                enc(r#"{"$and":[{"qty":null},{"state":{"$eq":"new"}}]}"#)
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(numbers(&d), ["A-1", "A-3"]);

    for (q, code, path) in [
        ("limit=10001", "FILTER_INVALID_LIMIT", "limit"),
        ("limit=-1", "FILTER_INVALID_LIMIT", "limit"),
        ("offset=x", "FILTER_INVALID_OFFSET", "offset"),
        ("order=nope", "FILTER_INVALID_SORT", "order"),
        ("order=total%20up", "FILTER_INVALID_SORT", "order"),
        ("where=%7Bbad", "FILTER_INVALID", "where"),
    ] {
        let r = app.get(&format!("/api/data/orders?{q}"), t.token()).await;
        assert_eq!(err(&r, 400, code)["path"], path, "{q}");
    }
    let r = app
        .get(
            &format!(
                "/api/data/orders?where={}",
                enc(r#"{"$xor":[{"state":"new"}]}"#)
            ),
            t.token(),
        )
        .await;
    let d = err(&r, 400, "FILTER_UNSUPPORTED_OPERATOR");
    assert_eq!(d["operator"], "$xor");
    let r = app
        .get(
            &format!("/api/data/orders?where={}", enc(r#"{"total":"abc"}"#)),
            t.token(),
        )
        .await;
    err(&r, 400, "FILTER_INVALID_VALUE");
    let r = app.get("/api/data/orders?stat=maybe", t.token()).await;
    err(&r, 400, "VALIDATION_FIELD_INVALID");

    // Unknown formats are refused (CSV/NDJSON export: tests/export.rs)
    let r = app.get("/api/data/orders?format=xml", t.token()).await;
    err(&r, 406, "VALIDATION_FORMAT_UNSUPPORTED");
}

#[tokio::test]
async fn soft_delete_permanent_and_upsert() {
    let (app, t) = setup().await;
    let recs = okd(
        &call(
            &app,
            "POST",
            "/api/data/orders",
            &t,
            Some(json!([{"number":"A-1"},{"number":"A-2"},{"number":"A-3"},{"number":"A-4"}])),
        )
        .await,
        201,
    );
    let ids: Vec<String> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    let r = call(
        &app,
        "DELETE",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        None,
    )
    .await;
    let d = okd(&r, 200);
    assert!(is_ts(&d["trashed_at"]));
    assert_eq!(d["deleted_at"], Value::Null);
    err(
        &app.get(&format!("/api/data/orders/{}", ids[0]), t.token())
            .await,
        404,
        "RECORD_NOT_FOUND",
    );
    let d = okd(
        &app.get(
            &format!("/api/data/orders/{}?include_trashed=true", ids[0]),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d["id"], ids[0].as_str());
    let r = call(
        &app,
        "DELETE",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        None,
    )
    .await;
    err(&r, 409, "RECORD_TRASHED");
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{}", ids[0]),
        &t,
        Some(json!({"total":1})),
    )
    .await;
    err(&r, 409, "RECORD_TRASHED");
    assert_eq!(
        okd(&app.get("/api/data/orders", t.token()).await, 200)
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        okd(
            &app.get("/api/data/orders?include_trashed=true", t.token())
                .await,
            200
        )
        .as_array()
        .unwrap()
        .len(),
        4
    );

    // bulk delete by ids (both shapes) and by where
    let r = call(
        &app,
        "DELETE",
        "/api/data/orders",
        &t,
        Some(json!([{"id":ids[1]}])),
    )
    .await;
    assert_eq!(okd(&r, 200)[0]["id"], ids[1].as_str());
    let r = call(
        &app,
        "DELETE",
        "/api/data/orders",
        &t,
        Some(json!([ids[2], ids[1]])),
    )
    .await;
    err(&r, 409, "RECORD_TRASHED");
    assert!(
        okd(
            &app.get(&format!("/api/data/orders/{}", ids[2]), t.token())
                .await,
            200
        )
        .is_object(),
        "rolled back"
    );
    let r = call(
        &app,
        "DELETE",
        &format!("/api/data/orders?where={}", enc(r#"{"number":"A-3"}"#)),
        &t,
        None,
    )
    .await;
    assert_eq!(okd(&r, 200)[0]["id"], ids[2].as_str());
    let r = call(&app, "DELETE", "/api/data/orders", &t, None).await;
    err(&r, 400, "VALIDATION_FIELD_MISSING");
    let r = call(
        &app,
        "DELETE",
        "/api/data/orders",
        &t,
        Some(json!({"id":ids[3]})),
    )
    .await;
    err(&r, 400, "VALIDATION_BODY_NOT_ARRAY");

    // permanent: purged rows are gone for good, their ids stay taken, unique values are freed
    let r = call(
        &app,
        "DELETE",
        &format!("/api/data/orders/{}?permanent=true", ids[3]),
        &t,
        None,
    )
    .await;
    let d = okd(&r, 200);
    assert!(is_ts(&d["trashed_at"]));
    assert_eq!(d["deleted_at"], Value::Null);
    err(
        &app.get(
            &format!("/api/data/orders/{}?include_trashed=true", ids[3]),
            t.token(),
        )
        .await,
        404,
        "RECORD_NOT_FOUND",
    );
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"id":ids[3],"number":"Z"})),
    )
    .await;
    err(&r, 409, "RECORD_EXISTS");
    let r = call(
        &app,
        "POST",
        "/api/data/orders?upsert=true",
        &t,
        Some(json!({"id":ids[3],"number":"Z"})),
    )
    .await;
    err(&r, 409, "RECORD_EXISTS");
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"number":"A-4"})),
    )
    .await;
    okd(&r, 201);

    // upsert: existing ids merge (no required check), new ones are created, order kept
    let fresh = uuid::Uuid::new_v4().to_string();
    let live = okd(
        &call(
            &app,
            "POST",
            "/api/data/orders",
            &t,
            Some(json!({"number":"U-1","total":1})),
        )
        .await,
        201,
    );
    let r = call(
        &app,
        "POST",
        "/api/data/orders?upsert=true",
        &t,
        Some(json!([{"id":fresh,"number":"U-2"},{"id":live["id"],"total":7}])),
    )
    .await;
    let d = okd(&r, 201);
    assert_eq!(d[0]["id"], fresh.as_str());
    assert_eq!(d[1]["number"], "U-1");
    assert_eq!(d[1]["total"], json!(7));
    let r = call(
        &app,
        "POST",
        "/api/data/orders?upsert=true",
        &t,
        Some(json!([{"id":ids[0],"total":7}])),
    )
    .await;
    err(&r, 409, "RECORD_TRASHED");
}

#[tokio::test]
async fn immutable_fields_and_model_flags() {
    let (app, t) = setup().await;
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"number":"A-1"})),
    )
    .await;
    let id = okd(&r, 201)["id"].as_str().unwrap().to_owned();
    let path = format!("/api/data/orders/{id}");
    // writable while null, then frozen
    let d = okd(
        &call(&app, "PATCH", &path, &t, Some(json!({"code":"abc"}))).await,
        200,
    );
    assert_eq!(d["code"], "abc");
    let d = okd(
        &call(
            &app,
            "PATCH",
            &path,
            &t,
            Some(json!({"code":"abc","total":1})),
        )
        .await,
        200,
    );
    assert_eq!(d["total"], json!(1), "same value is not a change");
    let r = call(&app, "PATCH", &path, &t, Some(json!({"code":"xyz"}))).await;
    let d = err(&r, 400, "FIELD_IMMUTABLE");
    assert_eq!(d["field"], "code");
    let r = call(&app, "PATCH", &path, &t, Some(json!({"code":null}))).await;
    err(&r, 400, "FIELD_IMMUTABLE");

    // model flags
    for (flag, code) in [("frozen", "MODEL_FROZEN"), ("external", "MODEL_EXTERNAL")] {
        let r = app
            .post(
                &format!("/api/describe/m_{flag}"),
                t.token(),
                json!({flag: true, "fields":{"a":{"type":"text"}}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = call(
            &app,
            "POST",
            &format!("/api/data/m_{flag}"),
            &t,
            Some(json!({"a":"x"})),
        )
        .await;
        err(&r, 403, code);
        okd(
            &app.get(&format!("/api/data/m_{flag}"), t.token()).await,
            200,
        );
    }
    let r = app
        .post(
            "/api/describe/m_imm",
            t.token(),
            json!({"immutable": true, "fields":{"a":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rec = okd(
        &call(&app, "POST", "/api/data/m_imm", &t, Some(json!({"a":"x"}))).await,
        201,
    );
    let p = format!("/api/data/m_imm/{}", rec["id"].as_str().unwrap());
    err(
        &call(&app, "PATCH", &p, &t, Some(json!({"a":"y"}))).await,
        403,
        "MODEL_IMMUTABLE",
    );
    err(
        &call(&app, "DELETE", &p, &t, None).await,
        403,
        "MODEL_IMMUTABLE",
    );
}

#[tokio::test]
async fn system_models_through_the_generic_routes() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let d = okd(
        &app.get(
            &format!(
                "/api/data/models?where={}",
                enc(r#"{"model_name":"users"}"#)
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d[0]["model_name"], "users");
    assert_eq!(d[0]["status"], "system");
    let d = okd(
        &app.get(
            "/api/data/fields?select=model_name,field_name&limit=1",
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d.as_array().unwrap().len(), 1);
    for m in ["models", "fields", "users"] {
        let r = call(&app, "POST", &format!("/api/data/{m}"), &t, Some(json!({}))).await;
        err(&r, 403, "MODEL_SYSTEM_PROTECTED");
    }
    err(
        &app.get("/api/data/tracked", t.token()).await,
        403,
        "MODEL_SYSTEM_PROTECTED",
    );
    // the root owner is sudo: users are readable
    let d = okd(
        &app.get(
            &format!("/api/data/users?where={}", enc(r#"{"username":"owner"}"#)),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d[0]["username"], "owner");
    // filters behave like any model
    let r = call(
        &app,
        "POST",
        "/api/data/filters",
        &t,
        Some(json!({"model_name":"orders","name":"open","where":{"state":"new"}})),
    )
    .await;
    let f = okd(&r, 201);
    assert_eq!(f["where"], json!({"state":"new"}));
    let r = call(
        &app,
        "POST",
        "/api/data/filters",
        &t,
        Some(json!({"model_name":"orders","name":"open"})),
    )
    .await;
    assert_eq!(err(&r, 409, "RECORD_UNIQUE_VIOLATION")["field"], "name");
}

/// `customers` ← `orders.customer_id` (owned, cascade) ← `lines.order_id` (owned, cascade).
pub async fn relationship_models(app: &TestApp, t: &TestTenant) {
    for (m, body) in [
        ("customers", json!({"fields":{"name":{"type":"text"}}})),
        (
            "orders",
            json!({"fields":{"number":{"type":"text","unique":true},"total":{"type":"decimal"},
            "customer_id":{"type":"uuid","relationship_type":"owned","related_model":"customers","relationship_name":"orders","cascade_delete":true}}}),
        ),
        (
            "lines",
            json!({"fields":{"sku":{"type":"text"},
            "order_id":{"type":"uuid","relationship_type":"owned","related_model":"orders","relationship_name":"lines","cascade_delete":true}}}),
        ),
    ] {
        let r = app
            .post(&format!("/api/describe/{m}"), t.token(), body)
            .await;
        assert_eq!(r.status, 201, "{m}: {}", r.text);
    }
}

#[tokio::test]
async fn owned_relationship_routes() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    relationship_models(&app, &t).await;
    let c = okd(
        &call(
            &app,
            "POST",
            "/api/data/customers",
            &t,
            Some(json!({"name":"Ada"})),
        )
        .await,
        201,
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let other = okd(
        &call(
            &app,
            "POST",
            "/api/data/customers",
            &t,
            Some(json!({"name":"Bob"})),
        )
        .await,
        201,
    );
    let base = format!("/api/data/customers/{cid}/orders");

    // create: the key is set from the URL
    let r = call(
        &app,
        "POST",
        &base,
        &t,
        Some(json!({"number":"A-3","total":5,"customer_id":other["id"]})),
    )
    .await;
    let o = okd(&r, 201);
    assert_eq!(o["customer_id"], cid.as_str());
    let r = call(
        &app,
        "POST",
        &base,
        &t,
        Some(json!([{"number":"A-4"},{"number":"A-5"}])),
    )
    .await;
    assert_eq!(okd(&r, 201).as_array().unwrap().len(), 2);
    let oid = o["id"].as_str().unwrap().to_owned();
    let d = okd(&app.get(&base, t.token()).await, 200);
    assert_eq!(d.as_array().unwrap().len(), 3);
    let d = okd(
        &app.get(
            &format!("{base}?where={}&select=number", enc(r#"{"number":"A-4"}"#)),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d, json!([{"id": d[0]["id"], "number":"A-4"}]));
    let d = okd(
        &app.get(
            &format!(
                "/api/data/customers/{}/orders",
                other["id"].as_str().unwrap()
            ),
            t.token(),
        )
        .await,
        200,
    );
    assert_eq!(d, json!([]));

    // one child
    let d = okd(&app.get(&format!("{base}/{oid}"), t.token()).await, 200);
    assert_eq!(d["number"], "A-3");
    err(
        &app.get(
            &format!(
                "/api/data/customers/{}/orders/{oid}",
                other["id"].as_str().unwrap()
            ),
            t.token(),
        )
        .await,
        404,
        "RECORD_NOT_FOUND",
    );
    let d = okd(
        &call(
            &app,
            "PATCH",
            &format!("{base}/{oid}"),
            &t,
            Some(json!({"total":6})),
        )
        .await,
        200,
    );
    assert_eq!(d["total"], json!(6));
    let r = call(
        &app,
        "PUT",
        &format!("{base}/{oid}"),
        &t,
        Some(json!({"customer_id":other["id"]})),
    )
    .await;
    err(&r, 400, "VALIDATION_FIELD_INVALID");

    // PUT the collection: array of children, or one object for all
    let r = call(&app, "PUT", &base, &t, Some(json!([{"id":oid,"total":7}]))).await;
    assert_eq!(okd(&r, 200)[0]["total"], json!(7));
    let stranger = okd(
        &call(
            &app,
            "POST",
            "/api/data/orders",
            &t,
            Some(json!({"number":"X-1"})),
        )
        .await,
        201,
    );
    let r = call(
        &app,
        "PUT",
        &base,
        &t,
        Some(json!([{"id":stranger["id"],"total":7}])),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    let r = call(&app, "PUT", &base, &t, Some(json!({"total":8}))).await;
    let d = okd(&r, 200);
    assert_eq!(d.as_array().unwrap().len(), 3);
    assert!(d.as_array().unwrap().iter().all(|o| o["total"] == json!(8)));

    // relationship errors
    err(
        &app.get(&format!("/api/data/customers/{cid}/nope"), t.token())
            .await,
        404,
        "MODEL_RELATIONSHIP_NOT_FOUND",
    );
    err(
        &app.get(
            &format!("/api/data/customers/{}/orders", uuid::Uuid::new_v4()),
            t.token(),
        )
        .await,
        404,
        "RECORD_NOT_FOUND",
    );
    let r = call(&app, "PATCH", &base, &t, Some(json!({}))).await;
    assert_eq!(r.status, 405, "{}", r.text);
    let allow = r.headers.get("allow").unwrap().to_str().unwrap().to_owned();
    for m in ["GET", "POST", "PUT", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }

    // references must name a live parent, anywhere
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"number":"R-1","customer_id":uuid::Uuid::new_v4()})),
    )
    .await;
    let d = err(&r, 409, "RECORD_REFERENCE_INVALID");
    assert_eq!(d["field"], "customer_id");
    let r = call(
        &app,
        "PATCH",
        &format!("/api/data/orders/{}", stranger["id"].as_str().unwrap()),
        &t,
        Some(json!({"customer_id": other["id"]})),
    )
    .await;
    assert_eq!(okd(&r, 200)["customer_id"], other["id"]);

    // delete one child, then all
    let d = okd(
        &call(&app, "DELETE", &format!("{base}/{oid}"), &t, None).await,
        200,
    );
    assert!(is_ts(&d["trashed_at"]));
    let d = okd(&call(&app, "DELETE", &base, &t, None).await, 200);
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert_eq!(okd(&app.get(&base, t.token()).await, 200), json!([]));
    assert_eq!(
        okd(
            &app.get(&format!("{base}?include_trashed=true"), t.token())
                .await,
            200
        )
        .as_array()
        .unwrap()
        .len(),
        3
    );
    // a trashed parent cannot take children
    okd(
        &call(
            &app,
            "DELETE",
            &format!("/api/data/customers/{}", other["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        200,
    );
    let r = call(
        &app,
        "POST",
        "/api/data/orders",
        &t,
        Some(json!({"number":"R-2","customer_id":other["id"]})),
    )
    .await;
    err(&r, 409, "RECORD_REFERENCE_INVALID");
}

/// A user of `access`, logged in.
async fn user_token(app: &TestApp, t: &TestTenant, username: &str, access: &str) -> String {
    t.add_user(app, username, access)
        .await
        .1
        .expect("the new user logs in")
}

#[tokio::test]
async fn roles_and_sudo_flags() {
    let (app, t) = setup().await;
    let r = app
        .post(
            "/api/describe/vault",
            t.token(),
            json!({"sudo": true, "fields":{"a":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/describe/notes",
            t.token(),
            json!({"fields":{"a":{"type":"text"},"secret":{"type":"text","sudo":true}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rec = okd(
        &call(
            &app,
            "POST",
            "/api/data/orders",
            &t,
            Some(json!({"number":"A-1"})),
        )
        .await,
        201,
    );
    let path = format!("/api/data/orders/{}", rec["id"].as_str().unwrap());

    let read = user_token(&app, &t, "reader", "read").await;
    let edit = user_token(&app, &t, "editor", "edit").await;
    let full = user_token(&app, &t, "fuller", "full").await;
    let deny = user_token(&app, &t, "denied", "deny").await;

    // read ≥ read; deny gets nothing
    assert_eq!(app.get(&path, Some(&read)).await.status, 200);
    let d = err(
        &app.get("/api/data/orders", Some(&deny)).await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(d, json!({"required":"read","actual":"deny"}));
    // create/update ≥ edit
    let r = app
        .call(
            "POST",
            "/api/data/orders",
            Some(&read),
            Some(json!({"number":"R"})),
        )
        .await;
    let d = err(&r, 403, "AUTH_ROLE_INSUFFICIENT");
    assert_eq!(d, json!({"required":"edit","actual":"read"}));
    let r = app
        .call("PATCH", &path, Some(&read), Some(json!({"total":1})))
        .await;
    err(&r, 403, "AUTH_ROLE_INSUFFICIENT");
    let r = app
        .call("PATCH", &path, Some(&edit), Some(json!({"total":1})))
        .await;
    okd(&r, 200);
    // trash/restore/purge ≥ full
    let r = app.call("DELETE", &path, Some(&edit), None).await;
    assert_eq!(err(&r, 403, "AUTH_ROLE_INSUFFICIENT")["required"], "full");
    okd(&app.call("DELETE", &path, Some(&full), None).await, 200);
    let id = rec["id"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            &format!("/api/trashed/orders/{id}"),
            Some(&edit),
            None,
        )
        .await;
    err(&r, 403, "AUTH_ROLE_INSUFFICIENT");
    okd(
        &app.call(
            "POST",
            &format!("/api/trashed/orders/{id}"),
            Some(&full),
            None,
        )
        .await,
        200,
    );

    // sudo model and sudo field
    let r = app
        .call(
            "POST",
            "/api/data/vault",
            Some(&full),
            Some(json!({"a":"x"})),
        )
        .await;
    assert_eq!(err(&r, 403, "AUTH_SUDO_REQUIRED")["model"], "vault");
    okd(
        &call(&app, "POST", "/api/data/vault", &t, Some(json!({"a":"x"}))).await,
        201,
    );
    assert_eq!(
        app.get("/api/data/vault", Some(&read)).await.status,
        200,
        "reads unaffected"
    );
    let r = app
        .call(
            "POST",
            "/api/data/notes",
            Some(&edit),
            Some(json!({"a":"x","secret":"s"})),
        )
        .await;
    assert_eq!(
        err(&r, 403, "AUTH_SUDO_REQUIRED")["fields"],
        json!(["secret"])
    );
    okd(
        &app.call(
            "POST",
            "/api/data/notes",
            Some(&edit),
            Some(json!({"a":"x"})),
        )
        .await,
        201,
    );

    // users: sudo only; trashed users left out of /api/trashed for non-sudo callers
    err(
        &app.get("/api/data/users", Some(&full)).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    let all = okd(&app.get("/api/trashed", Some(&read)).await, 200);
    assert!(all.get("users").is_none());
}

#[tokio::test]
async fn response_cap_answers_413_before_sending() {
    let app = abbotik_testkit::spawn_app_with(&[("ABBOTIK_RESPONSE_MAX_BYTES", "2048")]).await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/notes",
            t.token(),
            json!({"fields":{"body":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rows: Vec<Value> = (0..20)
        .map(|i| json!({"body": format!("note {i}")}))
        .collect();
    let r = app
        .call(
            "POST",
            "/api/data/notes?select=id",
            t.token(),
            Some(json!(rows)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.get("/api/data/notes", t.token()).await;
    assert_eq!(
        err(&r, 413, "VALIDATION_RESPONSE_TOO_LARGE")["limit_bytes"],
        2048
    );
    let r = app
        .get(
            "/api/data/notes?select=id&stat=false&access=false&limit=5",
            t.token(),
        )
        .await;
    assert_eq!(okd(&r, 200).as_array().unwrap().len(), 5);
}
