//! `POST /api/bulk` (A8.1) against a real server and PostgreSQL: every operation's result,
//! one transaction (later operations see earlier writes; the first failure rolls everything
//! back and names `data.operation_index`), checks before anything runs, the 501 of `access*`,
//! the 10000-row bound and the response cap, roles, tenant isolation, hostile names and the
//! rate-limit cost.

use abbotik_testkit::{
    err, lock_model_table, okd, spawn_app, spawn_app_with, Resp, TestApp, TestTenant,
};
use serde_json::{json, Value};

/// A tenant with `items` (unique required `name`, `qty` ≥ 0, `state` enum with a default).
async fn setup_on(app: &TestApp) -> TestTenant {
    TestTenant::with_model(
        app,
        "items",
        json!({"fields":[
            {"field_name":"name","type":"text","required":true,"unique":true},
            {"field_name":"qty","type":"integer","minimum":0},
            {"field_name":"state","type":"text","enum":["new","done"],"default":"new"}
        ]}),
    )
    .await
}

async fn setup() -> (TestApp, TestTenant) {
    let app = spawn_app().await;
    let t = setup_on(&app).await;
    (app, t)
}

async fn bulk(app: &TestApp, t: &TestTenant, ops: Value) -> Resp {
    app.post("/api/bulk", t.token(), json!({ "operations": ops }))
        .await
}

/// The live items, by name.
async fn names(app: &TestApp, t: &TestTenant) -> Vec<String> {
    let r = app.get("/api/data/items?order=name", t.token()).await;
    okd(&r, 200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(app: &TestApp, t: &TestTenant, body: Value) -> Value {
    okd(&app.post("/api/data/items", t.token(), body).await, 201)
}

#[tokio::test]
async fn every_operation_answers_its_result() {
    let (app, t) = setup().await;
    let a = create(&app, &t, json!({"name":"a","qty":1})).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let missing = "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10";
    let up_id = "5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d";
    let ops = json!([
        {"operation":"create","model":"items","data":{"name":"b","qty":2}},
        {"operation":"create-one","model":"items","data":{"name":"c"}},
        {"operation":"create-all","model":"items","data":[{"name":"d","qty":4},{"name":"e","qty":5}]},
        {"operation":"select","model":"items","filter":{"order":"name","select":["name"]}},
        {"operation":"select-all","model":"items","filter":{"qty":{"$gte":4},"order":["name desc"]}},
        {"operation":"select-one","model":"items","id":a_id},
        {"operation":"select-one","model":"items","filter":{"where":{"name":"zzz"}}},
        {"operation":"select-404","model":"items","filter":{"name":"b"}},
        {"operation":"count","model":"items"},
        {"operation":"aggregate","model":"items","aggregate":{"n":{"$count":"*"},"s":{"$sum":"qty"}},"filter":{"where":{"qty":{"$gte":2}}}},
        {"operation":"update","model":"items","id":a_id,"data":{"qty":10}},
        {"operation":"update-one","model":"items","id":missing,"data":{"qty":1}},
        {"operation":"update-404","model":"items","id":a_id,"data":{"state":"done"}},
        {"operation":"update-all","model":"items","data":[{"id":a_id,"qty":11}]},
        {"operation":"update-any","model":"items","filter":{"where":{"name":{"$in":["d","e"]}}},"data":{"state":"done"}},
        {"operation":"delete","model":"items","id":missing},
        {"operation":"upsert","model":"items","data":{"id":up_id,"name":"u","qty":1}},
        {"operation":"upsert-one","model":"items","data":{"id":up_id,"qty":2}},
        {"operation":"upsert-all","model":"items","data":[{"id":up_id,"qty":3},{"name":"v"}]},
        {"operation":"delete-any","model":"items","filter":{"name":"v"}},
        {"operation":"count","model":"items","filter":{"trashed":"only"}}
    ]);
    let r = bulk(&app, &t, ops.clone()).await;
    let d = okd(&r, 200);
    let d = d.as_array().unwrap();
    assert_eq!(d.len(), ops.as_array().unwrap().len());
    // Each is the operation echoed, plus `result`.
    for (op, got) in ops.as_array().unwrap().iter().zip(d) {
        for (k, v) in op.as_object().unwrap() {
            assert_eq!(&got[k], v, "echo of {k}");
        }
        assert!(got.get("result").is_some(), "{got}");
    }
    let res = |i: usize| &d[i]["result"];
    assert_eq!(res(0)["name"], "b");
    assert_eq!(res(0)["qty"], 2);
    assert!(res(0)["created_at"].is_string());
    assert_eq!(res(1)["state"], "new");
    assert_eq!(res(2).as_array().unwrap().len(), 2);
    // Later operations see earlier writes.
    let sel: Vec<&str> = res(3)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(sel, ["a", "b", "c", "d", "e"]);
    assert_eq!(
        res(3)[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "name"]
    );
    assert_eq!(res(4)[0]["name"], "e");
    assert_eq!(res(4).as_array().unwrap().len(), 2);
    assert_eq!(res(5)["id"], a_id.as_str());
    assert_eq!(res(6), &Value::Null);
    assert_eq!(res(7)["name"], "b");
    assert_eq!(res(8), 5);
    assert_eq!(res(9), &json!([{"n":3,"s":11}]));
    assert_eq!(res(10)["qty"], 10);
    assert_eq!(res(11), &Value::Null);
    assert_eq!(res(12)["state"], "done");
    assert_eq!(res(13)[0]["qty"], 11);
    assert_eq!(res(14).as_array().unwrap().len(), 2);
    assert_eq!(res(14)[1]["state"], "done");
    assert_eq!(res(15), &Value::Null);
    assert_eq!(res(16)["id"], up_id);
    assert_eq!(res(17)["qty"], 2);
    assert_eq!(res(17)["name"], "u");
    assert_eq!(res(18)[0]["qty"], 3);
    assert_eq!(res(18)[1]["name"], "v");
    assert!(res(19)[0]["trashed_at"].is_string());
    assert_eq!(res(20), 1);
    // Committed: the normal routes see it all.
    assert_eq!(names(&app, &t).await, ["a", "b", "c", "d", "e", "u"]);

    // delete, delete-one, delete-404, delete-all (ids as objects and strings).
    let ids: Vec<String> = okd(&app.get("/api/data/items?order=name", t.token()).await, 200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"delete","model":"items","id":ids[0]},
            {"operation":"delete-one","model":"items","id":ids[1]},
            {"operation":"delete-404","model":"items","id":ids[2]},
            {"operation":"delete-all","model":"items","data":[{"id":ids[3]},ids[4]]},
            {"operation":"select","model":"items"}
        ]),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d[0]["result"]["id"], ids[0].as_str());
    assert!(d[0]["result"]["trashed_at"].is_string());
    assert!(d[1]["result"]["trashed_at"].is_string());
    assert!(d[2]["result"]["trashed_at"].is_string());
    assert_eq!(d[3]["result"].as_array().unwrap().len(), 2);
    assert_eq!(d[4]["result"].as_array().unwrap().len(), 1);
    assert_eq!(names(&app, &t).await, ["u"]);
}

#[tokio::test]
async fn query_flags_apply_to_every_record() {
    let (app, t) = setup().await;
    let r = app
        .post(
            "/api/bulk?stat=false&access=false",
            t.token(),
            json!({"operations":[
                {"operation":"create","model":"items","data":{"name":"a"}},
                {"operation":"select","model":"items"}
            ]}),
        )
        .await;
    let d = okd(&r, 200);
    for rec in [&d[0]["result"], &d[1]["result"][0]] {
        let keys: Vec<&str> = rec
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["id", "name", "qty", "state"]);
    }
    // ?unwrap gives the bare array.
    let r = app
        .post(
            "/api/bulk?unwrap",
            t.token(),
            json!({"operations":[{"operation":"count","model":"items"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!([{"operation":"count","model":"items","result":1}])
    );
}

#[tokio::test]
async fn a_failure_rolls_back_every_earlier_operation() {
    let (app, t) = setup().await;
    create(&app, &t, json!({"name":"keep","qty":1})).await;
    let keep = names(&app, &t).await;
    // Unique violation in operation 2 (the name written by operation 0).
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"create","model":"items","data":{"name":"x"}},
            {"operation":"update-any","model":"items","filter":{"name":"keep"},"data":{"qty":99}},
            {"operation":"create","model":"items","data":{"name":"x"}},
            {"operation":"create","model":"items","data":{"name":"never"}}
        ]),
    )
    .await;
    let d = err(&r, 409, "RECORD_UNIQUE_VIOLATION");
    assert_eq!(d["operation_index"], 2);
    assert_eq!(d["field"], "name");
    assert_eq!(names(&app, &t).await, keep);
    let rec = okd(&app.get("/api/data/items", t.token()).await, 200);
    assert_eq!(rec[0]["qty"], 1);
    // Validation failure: the same VALIDATION_ERROR as the single route, plus the index.
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"create","model":"items","data":{"name":"y"}},
            {"operation":"create-all","model":"items","data":[{"name":"z"},{"qty":-1}]}
        ]),
    )
    .await;
    let d = err(&r, 400, "VALIDATION_ERROR");
    assert_eq!(d["operation_index"], 1);
    let rules: Vec<&str> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"required") && rules.contains(&"minimum"),
        "{d}"
    );
    assert_eq!(names(&app, &t).await, keep);
    // A filter error at run time (unknown field) rolls back too.
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"create","model":"items","data":{"name":"y"}},
            {"operation":"select","model":"items","filter":{"nope":1}}
        ]),
    )
    .await;
    let d = err(&r, 400, "FILTER_UNKNOWN_FIELD");
    assert_eq!(d["operation_index"], 1);
    assert_eq!(names(&app, &t).await, keep);
}

#[tokio::test]
async fn not_found_forms_answer_404_and_roll_back() {
    let (app, t) = setup().await;
    let a = create(&app, &t, json!({"name":"a","qty":1})).await;
    let a_id = a["id"].as_str().unwrap();
    let missing = "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10";
    let cases = [
        json!({"operation":"select-404","model":"items","id":missing}),
        json!({"operation":"select-404","model":"items","filter":{"name":"none"}}),
        json!({"operation":"update-404","model":"items","id":missing,"data":{"qty":2}}),
        json!({"operation":"update-404","model":"items","id":"not-a-uuid","data":{"qty":2}}),
        json!({"operation":"delete-404","model":"items","id":missing}),
        json!({"operation":"update-all","model":"items","data":[{"id":a_id,"qty":5},{"id":missing,"qty":6}]}),
        json!({"operation":"delete-all","model":"items","data":[{"id":a_id},{"id":missing}]}),
    ];
    for op in cases {
        let r = bulk(
            &app,
            &t,
            json!([
                {"operation":"update","model":"items","id":a_id,"data":{"qty":7}},
                op
            ]),
        )
        .await;
        let d = err(&r, 404, "RECORD_NOT_FOUND");
        assert_eq!(d["operation_index"], 1, "{op}");
        assert_eq!(d["model"], "items", "{op}");
        let rec = okd(
            &app.get(&format!("/api/data/items/{a_id}"), t.token()).await,
            200,
        );
        assert_eq!(rec["qty"], 1, "{op}");
        assert!(rec["trashed_at"].is_null(), "{op}");
    }
    // A trashed record: update answers 409 RECORD_TRASHED as the single route does.
    okd(
        &app.call(
            "DELETE",
            &format!("/api/data/items/{a_id}"),
            t.token(),
            None,
        )
        .await,
        200,
    );
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"update","model":"items","id":a_id,"data":{"qty":7}}]),
    )
    .await;
    assert_eq!(err(&r, 409, "RECORD_TRASHED")["operation_index"], 0);
}

#[tokio::test]
async fn malformed_operations_are_refused_before_anything_runs() {
    let (app, t) = setup().await;
    let valid = json!({"operation":"create","model":"items","data":{"name":"w"}});
    let cases = [
        (
            json!({"operation":"explode","model":"items"}),
            "unknown_operation",
        ),
        (json!({"model":"items"}), "missing_key"),
        (
            json!({"operation":"create-all","model":"items","data":[{"name":"q"}],"filter":{"name":"q"}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"delete-all","model":"items","data":{"id":"x"}}),
            "data_not_array",
        ),
        (
            json!({"operation":"create","model":"items","data":[{"name":"q"}]}),
            "data_not_object",
        ),
        (
            json!({"operation":"update","model":"items","data":{"qty":1}}),
            "missing_key",
        ),
        (
            json!({"operation":"select","model":"items","where":{"name":"q"}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"delete-any","model":"items","filter":{"name":"w","limit":1}}),
            "filter_option_unsupported",
        ),
        (json!(42), "not_an_object"),
    ];
    for (op, reason) in cases {
        let r = bulk(&app, &t, json!([valid.clone(), op.clone()])).await;
        let d = err(&r, 400, "VALIDATION_OPERATION_INVALID");
        assert_eq!(d["operation_index"], 1, "{op}");
        assert_eq!(d["reason"], reason, "{op}");
        assert!(names(&app, &t).await.is_empty(), "{op}");
    }
    for (body, code) in [
        (json!({}), "VALIDATION_FIELD_MISSING"),
        (json!({"operations":[]}), "VALIDATION_FIELD_INVALID"),
        (
            json!({"operations":{"operation":"count"}}),
            "VALIDATION_FIELD_INVALID",
        ),
        (json!([valid.clone()]), "VALIDATION_BODY_NOT_OBJECT"),
    ] {
        let r = app.post("/api/bulk", t.token(), body.clone()).await;
        err(&r, 400, code);
    }
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"operation":"count","model":"items"}))
        .collect();
    let r = bulk(&app, &t, json!(many)).await;
    err(&r, 400, "VALIDATION_FIELD_INVALID");
    let r = app
        .call(
            "POST",
            "/api/bulk?format=csv",
            t.token(),
            Some(json!({"operations":[valid]})),
        )
        .await;
    err(&r, 406, "VALIDATION_FORMAT_UNSUPPORTED");
    assert!(names(&app, &t).await.is_empty());
}

#[tokio::test]
async fn access_operations_are_not_implemented_yet() {
    let (app, t) = setup().await;
    for name in [
        "access",
        "access-one",
        "access-404",
        "access-all",
        "access-any",
    ] {
        let r = bulk(
            &app,
            &t,
            json!([
                {"operation":"create","model":"items","data":{"name":"w"}},
                {"operation": name, "model":"items","id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10","data":{"access_read":[]}}
            ]),
        )
        .await;
        let d = err(&r, 501, "NOT_IMPLEMENTED");
        assert_eq!(d["operation_index"], 1, "{name}");
        assert_eq!(d["operation"], name);
        assert!(r.body["message"].as_str().unwrap().contains(name));
    }
    assert!(names(&app, &t).await.is_empty());
}

#[tokio::test]
async fn select_rows_are_bounded_and_rolled_back() {
    let (app, t) = setup().await;
    let rows: Vec<Value> = (0..5001)
        .map(|i| json!({"name": format!("n{i}")}))
        .collect();
    create(&app, &t, json!(rows)).await;
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"create","model":"items","data":{"name":"extra"}},
            {"operation":"select","model":"items","filter":{"limit":5000}},
            {"operation":"select-one","model":"items","filter":{"name":"n1"}},
            {"operation":"select","model":"items","filter":{"limit":10000}}
        ]),
    )
    .await;
    let d = err(&r, 400, "VALIDATION_OPERATION_INVALID");
    assert_eq!(d["reason"], "too_many_rows");
    assert_eq!(d["operation_index"], 3);
    let r = app
        .get(
            "/api/data/items?where=%7B%22name%22%3A%22extra%22%7D",
            t.token(),
        )
        .await;
    assert_eq!(okd(&r, 200), json!([]));
    // Exactly 10000 rows pass.
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"select","model":"items","filter":{"limit":5000}},
            {"operation":"select","model":"items","filter":{"limit":5000,"offset":1}}
        ]),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d[1]["result"].as_array().unwrap().len(), 5000);
}

#[tokio::test]
async fn response_cap_refuses_and_rolls_back() {
    let app = spawn_app_with(&[("ABBOTIK_RESPONSE_MAX_BYTES", "8192")]).await;
    let t = setup_on(&app).await;
    let rows: Vec<Value> = (0..80)
        .map(|i| json!({"name": format!("item-{i:04}")}))
        .collect();
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"create-all","model":"items","data":rows}]),
    )
    .await;
    let d = err(&r, 413, "VALIDATION_RESPONSE_TOO_LARGE");
    assert_eq!(d["limit_bytes"], 8192);
    assert_eq!(d["operation_index"], 0);
    assert!(names(&app, &t).await.is_empty());
}

#[tokio::test]
async fn roles_are_checked_as_on_the_single_routes() {
    let (app, t) = setup().await;
    create(&app, &t, json!({"name":"a"})).await;
    let (_, read) = t.add_user(&app, "reader", "read").await;
    let read = read.unwrap();
    let single = app
        .post("/api/data/items", Some(&read), json!({"name":"r"}))
        .await;
    let want = err(&single, 403, "AUTH_ROLE_INSUFFICIENT");
    let r = app
        .post(
            "/api/bulk",
            Some(&read),
            json!({"operations":[
                {"operation":"count","model":"items"},
                {"operation":"create","model":"items","data":{"name":"r"}}
            ]}),
        )
        .await;
    let d = err(&r, 403, "AUTH_ROLE_INSUFFICIENT");
    assert_eq!(d["operation_index"], 1);
    assert_eq!(d["required"], want["required"]);
    assert_eq!(d["actual"], "read");
    // Reads are allowed; trashing needs `full` (an `edit` user may update, not delete).
    let r = app
        .post(
            "/api/bulk",
            Some(&read),
            json!({"operations":[{"operation":"select","model":"items"}]}),
        )
        .await;
    assert_eq!(okd(&r, 200)[0]["result"].as_array().unwrap().len(), 1);
    let (_, edit) = t.add_user(&app, "editor", "edit").await;
    let r = app
        .post(
            "/api/bulk",
            edit.as_deref(),
            json!({"operations":[
                {"operation":"update-any","model":"items","filter":{},"data":{"qty":3}},
                {"operation":"delete-any","model":"items","filter":{}}
            ]}),
        )
        .await;
    assert_eq!(err(&r, 403, "AUTH_ROLE_INSUFFICIENT")["operation_index"], 1);
    let rec = okd(&app.get("/api/data/items", t.token()).await, 200);
    assert!(rec[0]["qty"].is_null());
    // System models keep their protection.
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"create","model":"users","data":{"name":"x","username":"x"}}]),
    )
    .await;
    assert_eq!(err(&r, 403, "MODEL_SYSTEM_PROTECTED")["operation_index"], 0);
}

#[tokio::test]
async fn another_tenants_models_and_ids_are_out_of_reach() {
    let app = spawn_app().await;
    let a = setup_on(&app).await;
    let b = setup_on(&app).await;
    let rec = create(&app, &a, json!({"name":"secret","qty":1})).await;
    let id = rec["id"].as_str().unwrap();
    // A model only A has.
    let r = app
        .post(
            "/api/describe/private",
            a.token(),
            json!({"fields":[{"field_name":"x","type":"text"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = bulk(&app, &b, json!([{"operation":"select","model":"private"}])).await;
    assert_eq!(err(&r, 404, "MODEL_NOT_FOUND")["operation_index"], 0);
    // A's id through B's own `items`: not found, nothing touched.
    let r = bulk(
        &app,
        &b,
        json!([
            {"operation":"select-one","model":"items","id":id},
            {"operation":"update","model":"items","id":id,"data":{"qty":9}},
            {"operation":"delete","model":"items","id":id},
            {"operation":"select","model":"items","filter":{"id":id}}
        ]),
    )
    .await;
    let d = okd(&r, 200);
    for i in 0..3 {
        assert_eq!(d[i]["result"], Value::Null);
    }
    assert_eq!(d[3]["result"], json!([]));
    let r = bulk(
        &app,
        &b,
        json!([{"operation":"update-404","model":"items","id":id,"data":{"qty":9}}]),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    let rec = okd(
        &app.get(&format!("/api/data/items/{id}"), a.token()).await,
        200,
    );
    assert_eq!(rec["qty"], 1);
    // A schema-qualified name is just an unknown model.
    let qualified = format!("ns_tenant_{}.items", a.name);
    let r = bulk(&app, &b, json!([{"operation":"count","model":qualified}])).await;
    assert!(r.status == 404 || r.status == 400, "{}", r.text);
}

#[tokio::test]
async fn hostile_names_are_rejected() {
    let (app, t) = setup().await;
    create(&app, &t, json!({"name":"a"})).await;
    for model in [
        "items\"; DROP TABLE items; --",
        "items; DELETE FROM items",
        "../items",
        "Items",
        "",
    ] {
        let r = bulk(
            &app,
            &t,
            json!([{"operation":"delete-any","model":model,"filter":{}}]),
        )
        .await;
        assert!(r.status == 404 || r.status == 400, "{model}: {}", r.text);
        assert_eq!(r.body["data"]["operation_index"], 0, "{model}");
    }
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"create","model":"items","data":{"name":"b","qty\" = 1; --":1}}]),
    )
    .await;
    let d = err(&r, 400, "VALIDATION_ERROR");
    assert_eq!(d["errors"][0]["rule"], "unknown_field");
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"update-any","model":"items","filter":{"name\" OR 1=1 --":"x"},"data":{"qty":1}}]),
    )
    .await;
    err(&r, 400, "FILTER_UNKNOWN_FIELD");
    let r = bulk(
        &app,
        &t,
        json!([{"operation":"select","model":"items","filter":{"select":["name\"--"]}}]),
    )
    .await;
    err(&r, 400, "FILTER_INVALID_SELECT");
    assert_eq!(names(&app, &t).await, ["a"]);
}

#[tokio::test]
async fn a_bulk_costs_one_plus_a_hundredth_of_its_operations() {
    let app = spawn_app_with(&[
        ("ABBOTIK_RATE_TENANT_RPS", "0.1"),
        ("ABBOTIK_RATE_TENANT_BURST", "6"),
    ])
    .await;
    let t = setup_on(&app).await;
    // describe (1) done; 300 operations cost 4 → 1 left.
    let ops: Vec<Value> = (0..300)
        .map(|_| json!({"operation":"count","model":"items"}))
        .collect();
    let r = bulk(&app, &t, json!(ops.clone())).await;
    okd(&r, 200);
    let r = bulk(&app, &t, json!(ops)).await;
    let d = err(&r, 429, "RATE_LIMITED");
    assert_eq!(d["scope"], "tenant");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_thousand_operations_run_in_one_request() {
    let (app, t) = setup().await;
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"operation":"create","model":"items","data":{"name": format!("n{i:04}"),"qty":i}}))
        .collect();
    let started = std::time::Instant::now();
    let r = bulk(&app, &t, json!(ops)).await;
    let created = started.elapsed();
    let d = okd(&r, 200);
    let ids: Vec<String> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["result"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1000);
    let mut ops: Vec<Value> = ids
        .iter()
        .take(999)
        .map(|id| json!({"operation":"update-404","model":"items","id":id,"data":{"state":"done"}}))
        .collect();
    ops.push(json!({"operation":"count","model":"items","filter":{"state":"done"}}));
    let started = std::time::Instant::now();
    let r = bulk(&app, &t, json!(ops)).await;
    let updated = started.elapsed();
    assert_eq!(okd(&r, 200)[999]["result"], 999);
    eprintln!("bulk: 1000 creates in {created:?}, 999 updates + count in {updated:?}");
}

#[tokio::test]
async fn the_body_limit_applies() {
    let app = spawn_app_with(&[("ABBOTIK_BODY_LIMIT_BYTES", "4096")]).await;
    let t = setup_on(&app).await;
    let ops: Vec<Value> = (0..100)
        .map(|i| json!({"operation":"create","model":"items","data":{"name": format!("n{i:04}")}}))
        .collect();
    let r = bulk(&app, &t, json!(ops)).await;
    assert_eq!(
        err(&r, 413, "VALIDATION_BODY_TOO_LARGE")["limit_bytes"],
        4096
    );
    assert!(names(&app, &t).await.is_empty());
}

#[tokio::test]
async fn aggregate_takes_where_or_the_filter_where() {
    let (app, t) = setup().await;
    create(
        &app,
        &t,
        json!([{"name":"a","qty":1},{"name":"b","qty":2,"state":"done"},{"name":"c","qty":3,"state":"done"}]),
    )
    .await;
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"aggregate","model":"items","aggregate":{"n":{"$count":"*"},"q":{"$sum":"qty"}},
             "where":{"qty":{"$gte":2}},"groupBy":["state"],"order":["state asc"]},
            {"operation":"aggregate","model":"items","aggregate":{"n":{"$count":"*"}},
             "filter":{"where":{"state":"new"}}},
            {"operation":"aggregate","model":"items","aggregate":{"n":{"$count":"*"}},
             "filter":{"state":"done"},"having":{"n":{"$gt":5}},"groupBy":["state"]}
        ]),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(d[0]["result"], json!([{"state":"done","n":2,"q":5}]));
    assert_eq!(d[1]["result"], json!([{"n":1}]));
    assert_eq!(d[2]["result"], json!([]));
    // The A7 checks, with the index.
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"count","model":"items"},
            {"operation":"aggregate","model":"items","aggregate":{"s":{"$sum":"name"}}}
        ]),
    )
    .await;
    assert_eq!(
        err(&r, 400, "FILTER_AGGREGATE_INVALID")["operation_index"],
        1
    );
}

/// A statement that fails inside the transaction (here a statement timeout behind a lock)
/// rolls back the earlier operations, and the connection serves the next request.
#[tokio::test]
async fn a_failed_statement_rolls_back_and_the_next_bulk_works() {
    let app = spawn_app_with(&[("ABBOTIK_STATEMENT_TIMEOUT_MS", "1500")]).await;
    let t = setup_on(&app).await;
    let r = app
        .post(
            "/api/describe/other",
            t.token(),
            json!({"fields":[{"field_name":"k","type":"text"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let db = lock_model_table(&t.name, "other").await;
    let r = bulk(
        &app,
        &t,
        json!([
            {"operation":"create","model":"items","data":{"name":"a"}},
            {"operation":"count","model":"other"}
        ]),
    )
    .await;
    db.batch_execute("COMMIT").await.unwrap();
    assert_eq!(err(&r, 400, "FILTER_QUERY_TIMEOUT")["operation_index"], 1);
    assert!(names(&app, &t).await.is_empty());
    for _ in 0..3 {
        let r = bulk(
            &app,
            &t,
            json!([
                {"operation":"create","model":"other","data":{"k":"x"}},
                {"operation":"count","model":"other"}
            ]),
        )
        .await;
        okd(&r, 200);
    }
    let r = bulk(&app, &t, json!([{"operation":"count","model":"other"}])).await;
    assert_eq!(okd(&r, 200)[0]["result"], 3);
}
