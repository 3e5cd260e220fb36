//! Trash (A10): listing, restore with the cascade (same `trashed_at`), purge, and the
//! purged-id rule of A5.1; plus `/api/trashed` grouping and system-model visibility.

use abbotik_testkit::{err, okd, spawn_app, Resp, TestApp, TestTenant};
use serde_json::{json, Value};

async fn call(app: &TestApp, m: &str, path: &str, t: &TestTenant, body: Option<Value>) -> Resp {
    app.call(m, path, t.token(), body).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// `customers` ← `orders` (cascade) ← `lines` (cascade), one record each.
async fn tree(app: &TestApp, t: &TestTenant) -> (String, String, String) {
    for (m, body) in [
        ("customers", json!({"fields":{"name":{"type":"text"}}})),
        (
            "orders",
            json!({"fields":{"number":{"type":"text","unique":true},
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
    let c = okd(
        &call(
            app,
            "POST",
            "/api/data/customers",
            t,
            Some(json!({"name":"Ada"})),
        )
        .await,
        201,
    );
    let o = okd(
        &call(
            app,
            "POST",
            &format!("/api/data/customers/{}/orders", id(&c)),
            t,
            Some(json!({"number":"A-1"})),
        )
        .await,
        201,
    );
    let l = okd(
        &call(
            app,
            "POST",
            &format!("/api/data/orders/{}/lines", id(&o)),
            t,
            Some(json!({"sku":"S"})),
        )
        .await,
        201,
    );
    (id(&c), id(&o), id(&l))
}

#[tokio::test]
async fn cascade_trash_restore_and_purge() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (c, o, l) = tree(&app, &t).await;
    assert_eq!(
        okd(&app.get("/api/trashed", t.token()).await, 200),
        json!({})
    );

    let d = okd(
        &call(
            &app,
            "DELETE",
            &format!("/api/data/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    let at = d["trashed_at"].clone();
    let ord = okd(
        &app.get(&format!("/api/trashed/orders/{o}"), t.token())
            .await,
        200,
    );
    assert_eq!(ord["trashed_at"], at, "cascade shares trashed_at");
    let line = okd(
        &app.get(&format!("/api/trashed/lines/{l}"), t.token()).await,
        200,
    );
    assert_eq!(line["trashed_at"], at, "two levels deep");

    let all = okd(&app.get("/api/trashed", t.token()).await, 200);
    let keys: Vec<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["customers", "lines", "orders"]);
    assert_eq!(all["orders"][0]["id"], o.as_str());
    let all = okd(&app.get("/api/trashed?limit=0", t.token()).await, 200);
    assert_eq!(all, json!({}));
    let d = okd(
        &app.get("/api/trashed/orders?stat=false", t.token()).await,
        200,
    );
    assert_eq!(d.as_array().unwrap().len(), 1);
    assert!(d[0].get("trashed_at").is_none());
    err(
        &app.get(
            &format!("/api/trashed/customers/{}", uuid::Uuid::new_v4()),
            t.token(),
        )
        .await,
        404,
        "RECORD_NOT_FOUND",
    );

    // a child of a trashed parent cannot be restored alone
    let r = call(&app, "POST", &format!("/api/trashed/orders/{o}"), &t, None).await;
    assert_eq!(
        err(&r, 409, "RECORD_REFERENCE_INVALID")["field"],
        "customer_id"
    );

    // restoring the parent restores what its cascade trashed
    let d = okd(
        &call(
            &app,
            "POST",
            &format!("/api/trashed/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    assert_eq!(d["trashed_at"], Value::Null);
    assert_eq!(
        okd(
            &app.get(&format!("/api/data/orders/{o}"), t.token()).await,
            200
        )["trashed_at"],
        Value::Null
    );
    assert_eq!(
        okd(
            &app.get(&format!("/api/data/lines/{l}"), t.token()).await,
            200
        )["trashed_at"],
        Value::Null
    );
    let r = call(
        &app,
        "POST",
        &format!("/api/trashed/customers/{c}"),
        &t,
        None,
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");

    // a child trashed on its own is not restored by the parent's restore
    okd(
        &call(&app, "DELETE", &format!("/api/data/lines/{l}"), &t, None).await,
        200,
    );
    okd(
        &call(
            &app,
            "DELETE",
            &format!("/api/data/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    okd(
        &call(
            &app,
            "POST",
            &format!("/api/trashed/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    err(
        &app.get(&format!("/api/data/lines/{l}"), t.token()).await,
        404,
        "RECORD_NOT_FOUND",
    );
    let d = okd(
        &call(
            &app,
            "POST",
            "/api/trashed/lines",
            &t,
            Some(json!([{"id": l}])),
        )
        .await,
        200,
    );
    assert_eq!(d[0]["id"], l.as_str());

    // purge: only from the trash; the cascade goes too; the id stays taken; unique freed
    let r = call(
        &app,
        "DELETE",
        &format!("/api/trashed/customers/{c}"),
        &t,
        None,
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    okd(
        &call(
            &app,
            "DELETE",
            &format!("/api/data/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    let d = okd(
        &call(
            &app,
            "DELETE",
            &format!("/api/trashed/customers/{c}"),
            &t,
            None,
        )
        .await,
        200,
    );
    assert_eq!(d, json!({"id": c, "purged": true}));
    err(
        &app.get(&format!("/api/trashed/orders/{o}"), t.token())
            .await,
        404,
        "RECORD_NOT_FOUND",
    );
    err(
        &app.get(&format!("/api/trashed/lines/{l}"), t.token()).await,
        404,
        "RECORD_NOT_FOUND",
    );
    assert_eq!(
        okd(&app.get("/api/trashed", t.token()).await, 200),
        json!({})
    );
    let r = call(
        &app,
        "POST",
        "/api/data/customers",
        &t,
        Some(json!({"id": c, "name":"again"})),
    )
    .await;
    err(&r, 409, "RECORD_EXISTS");
    okd(
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
}

#[tokio::test]
async fn bulk_restore_and_purge_are_all_or_nothing() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/notes",
            t.token(),
            json!({"fields":{"body":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let recs = okd(
        &call(
            &app,
            "POST",
            "/api/data/notes",
            &t,
            Some(json!([{"body":"a"},{"body":"b"},{"body":"c"}])),
        )
        .await,
        201,
    );
    let ids: Vec<String> = recs.as_array().unwrap().iter().map(id).collect();
    okd(
        &call(
            &app,
            "DELETE",
            "/api/data/notes",
            &t,
            Some(json!([ids[0], ids[1]])),
        )
        .await,
        200,
    );

    // one id not in the trash: nothing restored
    let r = call(
        &app,
        "POST",
        "/api/trashed/notes",
        &t,
        Some(json!([ids[0], ids[2]])),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    assert_eq!(
        okd(&app.get("/api/trashed/notes", t.token()).await, 200)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = call(
        &app,
        "POST",
        "/api/trashed/notes",
        &t,
        Some(json!({"id": ids[0]})),
    )
    .await;
    err(&r, 400, "VALIDATION_BODY_NOT_ARRAY");
    let d = okd(
        &call(
            &app,
            "POST",
            "/api/trashed/notes",
            &t,
            Some(json!([{"id": ids[0]}])),
        )
        .await,
        200,
    );
    assert_eq!(d[0]["trashed_at"], Value::Null);

    let r = call(
        &app,
        "DELETE",
        "/api/trashed/notes",
        &t,
        Some(json!([ids[0], ids[1]])),
    )
    .await;
    err(&r, 404, "RECORD_NOT_FOUND");
    let d = okd(
        &call(
            &app,
            "DELETE",
            "/api/trashed/notes",
            &t,
            Some(json!([ids[1]])),
        )
        .await,
        200,
    );
    assert_eq!(d, json!([{"id": ids[1], "purged": true}]));
    let r = call(&app, "DELETE", "/api/trashed/notes", &t, Some(json!("x"))).await;
    err(&r, 400, "VALIDATION_BODY_NOT_ARRAY");

    // tracked is never listed; unknown model
    err(
        &app.get("/api/trashed/tracked", t.token()).await,
        403,
        "MODEL_SYSTEM_PROTECTED",
    );
    err(
        &app.get("/api/trashed/nope", t.token()).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &app.get("/api/trashed", None).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );
}
