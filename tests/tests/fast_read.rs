//! `GET /api/data/:model/:id` resolves identity in the same statement as the read. These
//! tests prove that path enforces every identity rule (A3.2) on the very next request, and
//! falls back correctly when model metadata changed on another pod. The read runs on a read
//! lane (a connection shared by all requests): a lock or a lost lane must cost nobody else.
//! Concurrent reads of one model are batched into one statement: each caller must still get
//! the answer of its own identity and record.

use abbotik_testkit::{
    lock_model_table, spawn_app, spawn_app_with, test_db, Http, TestTenant, TEST_PASSWORD,
};
use serde_json::json;
use std::time::Duration;

/// A tenant with model `items` and one record, read once so the model is cached.
async fn setup(app: &abbotik_testkit::TestApp) -> (TestTenant, String) {
    let t =
        TestTenant::with_model(app, "items", json!({"fields": {"name": {"type": "text"}}})).await;
    let r = app
        .post("/api/data/items", t.token(), json!({"name": "one"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = app.get(&format!("/api/data/items/{id}"), t.token()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["name"], "one");
    }
    (t, id)
}

#[tokio::test]
async fn identity_rules_hold_on_the_one_round_trip_read() {
    let app = spawn_app().await;
    let c = abbotik_testkit::test_db().await;
    let (t, id) = setup(&app).await;
    let path = format!("/api/data/items/{id}");

    // Role demoted to deny → 403 on the next request, the row not shown.
    t.update_user("owner", "access = 'deny'").await;
    let r = app.get(&path, t.token()).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["code"], "AUTH_ROLE_INSUFFICIENT");
    assert!(!r.text.contains("\"one\""));
    t.update_user("owner", "access = 'root'").await;
    assert_eq!(app.get(&path, t.token()).await.status, 200);

    // User deactivated → AUTH_USER_INACTIVE at once.
    t.update_user("owner", "trashed_at = now()").await;
    let r = app.get(&path, t.token()).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "AUTH_USER_INACTIVE");
    t.update_user("owner", "trashed_at = NULL").await;

    // Tenant suspended → TENANT_INACTIVE at once; resumed → readable again.
    c.execute(
        "UPDATE abbotik_control.tenants SET status = 'suspended' WHERE name = $1",
        &[&t.name],
    )
    .await
    .unwrap();
    let r = app.get(&path, t.token()).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "TENANT_INACTIVE");
    c.execute(
        "UPDATE abbotik_control.tenants SET status = 'active' WHERE name = $1",
        &[&t.name],
    )
    .await
    .unwrap();
    assert_eq!(app.get(&path, t.token()).await.status, 200);

    // Unknown ids, malformed ids, missing and bad tokens keep their codes.
    let r = app
        .get(
            "/api/data/items/00000000-0000-4000-8000-000000000000",
            t.token(),
        )
        .await;
    assert_eq!(r.body["code"], "RECORD_NOT_FOUND");
    let r = app.get("/api/data/items/not-a-uuid", t.token()).await;
    assert_eq!(r.body["code"], "RECORD_NOT_FOUND");
    let r = app.get(&path, None).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_REQUIRED");
    let r = app.get(&path, Some("x.y.z")).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_INVALID");
    let r = app.get(&format!("{path}?stat=maybe"), t.token()).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Dissolved → TENANT_INACTIVE.
    let r = app
        .post(
            "/auth/dissolve",
            None,
            json!({"tenant": t.name, "username": "owner", "password": TEST_PASSWORD}),
        )
        .await;
    let confirm = r.body["data"]["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/auth/dissolve/confirm",
            None,
            json!({"confirmation_token": confirm}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app.get(&path, t.token()).await;
    assert_eq!(r.body["code"], "TENANT_INACTIVE");
}

#[tokio::test]
async fn metadata_change_on_another_pod_is_seen_at_once() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    let (t, id) = setup(&a).await;
    let path = format!("/api/data/items/{id}");
    // Pod B adds a field with a default; pod A (holding the old definition) must show it.
    let r = b
        .post(
            "/api/describe/items/fields/color",
            t.token(),
            json!({"type": "text", "default": "red"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = a.get(&path, t.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["color"], "red", "{}", r.text);
    // Dropping the model on B: A answers MODEL_NOT_FOUND, not stale data.
    let r = b
        .call("DELETE", "/api/describe/items", t.token(), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = a.get(&path, t.token()).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["code"], "MODEL_NOT_FOUND");
}

/// Reads share a read lane. A table locked by one tenant (a long DDL) must not stall another
/// tenant's reads queued on the same lane: the locked read gives the lane up after a short
/// lock wait and finishes on the pool once the lock is released.
#[tokio::test]
async fn a_lock_on_one_tenants_table_does_not_stall_another_tenants_reads() {
    let app = spawn_app_with(&[("ABBOTIK_DATABASE_READ_LANES", "1")]).await;
    let (a, a_id) = setup(&app).await;
    let (b, b_id) = setup(&app).await;
    let db = lock_model_table(&a.name, "items").await;
    let http = Http::new(app.url(""));
    let token = a.token().unwrap().to_owned();
    let blocked = tokio::spawn(async move {
        http.get(&format!("/api/data/items/{a_id}"), Some(&token))
            .await
    });
    // Give A's read time to reach the lane and wait there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            app.get(&format!("/api/data/items/{b_id}"), b.token()),
        )
        .await
        .expect("B's read stalled behind A's lock");
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(!blocked.is_finished(), "A's read cannot pass the lock");
    db.batch_execute("COMMIT").await.unwrap();
    let r = blocked.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["name"], "one");
}

/// A read lane whose backend is terminated mid-load: every read still answers (on the pool
/// while the lane reconnects). Lanes of other test processes are terminated too; they must
/// cope the same way.
#[tokio::test]
async fn reads_go_on_when_a_lane_connection_dies() {
    let app = spawn_app_with(&[("ABBOTIK_DATABASE_READ_LANES", "1")]).await;
    let (t, id) = setup(&app).await;
    let path = format!("/api/data/items/{id}");
    let db = test_db().await;
    for _ in 0..3 {
        let reads = futures::future::join_all((0..20).map(|_| app.get(&path, t.token())));
        let kill = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'abbot-api-lane'",
            &[],
        );
        let (answers, killed) = tokio::join!(reads, kill);
        killed.unwrap();
        for r in answers {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["data"]["name"], "one");
        }
    }
}

#[tokio::test]
async fn batched_reads_answer_each_caller_by_its_own_identity() {
    let app = spawn_app().await;
    let (t, id) = setup(&app).await;
    let (_, reader) = t.add_user(&app.http, "reader", "read").await;
    let (_, gone) = t.add_user(&app.http, "gone", "read").await;
    let (_, denied) = t.add_user(&app.http, "denied", "read").await;
    t.update_user("gone", "trashed_at = now()").await;
    t.update_user("denied", "access = 'deny'").await;
    // Another tenant with the same model name: its own row, and none with the first's id.
    let (t2, id2) = setup(&app).await;
    let missing = uuid::Uuid::new_v4().to_string();

    let (reader, gone, denied) = (reader.unwrap(), gone.unwrap(), denied.unwrap());
    let cases: Vec<(Option<&str>, &str, u16, &str)> = vec![
        (t.token(), &id, 200, "one"),
        (Some(&reader), &id, 200, "one"),
        (Some(&gone), &id, 401, "AUTH_USER_INACTIVE"),
        (Some(&denied), &id, 403, "AUTH_ROLE_INSUFFICIENT"),
        (t.token(), &missing, 404, "RECORD_NOT_FOUND"),
        (t2.token(), &id, 404, "RECORD_NOT_FOUND"),
        (t2.token(), &id2, 200, "one"),
    ];
    for round in 0..3 {
        let calls = (0..70).map(|i| {
            let (token, record, _, _) = cases[i % cases.len()];
            let app = &app;
            async move { app.get(&format!("/api/data/items/{record}"), token).await }
        });
        for (i, r) in futures::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            let (_, record, status, what) = cases[i % cases.len()];
            assert_eq!(
                r.status,
                status,
                "round {round}, case {}: {}",
                i % cases.len(),
                r.text
            );
            if status == 200 {
                assert_eq!(r.body["data"]["id"], record, "{}", r.text);
                assert_eq!(r.body["data"]["name"], what, "{}", r.text);
            } else {
                assert_eq!(r.body["code"], what, "{}", r.text);
                assert!(!r.text.contains("\"one\""), "{}", r.text);
            }
        }
    }
}
