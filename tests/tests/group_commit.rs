//! Concurrent single-record creates of one model are committed together (group commit):
//! every caller still gets its own row, or the error it would have got alone — a refused row
//! never fails the others of its batch.

use abbotik_testkit::{spawn_app, TestApp, TestTenant};
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Model `items` with a unique `code`.
async fn setup(app: &TestApp) -> TestTenant {
    TestTenant::with_model(
        app,
        "items",
        json!({"fields": {"name": {"type": "text", "required": true},
                          "code": {"type": "text", "unique": true},
                          "qty": {"type": "integer"}}}),
    )
    .await
}

/// POSTs every body at once; the answers in body order.
async fn create_all(app: &TestApp, t: &TestTenant, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    join_all(
        bodies
            .into_iter()
            .map(|b| async move { app.post("/api/data/items", t.token(), b).await }),
    )
    .await
    .into_iter()
    .map(|r| (r.status, r.body))
    .collect()
}

#[tokio::test]
async fn concurrent_creates_share_commits_and_each_gets_its_own_row() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    let n = 64;
    let bodies = (0..n)
        .map(|i| json!({"name": format!("item {i}"), "code": format!("c{i}"), "qty": i}))
        .collect();
    let answers = create_all(&app, &t, bodies).await;
    let mut ids = HashSet::new();
    let mut stamps = HashSet::new();
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 201, "{body}");
        let d = &body["data"];
        assert_eq!(d["name"], format!("item {i}"), "{body}");
        assert_eq!(d["qty"], i, "{body}");
        ids.insert(d["id"].as_str().unwrap().to_owned());
        stamps.insert(d["created_at"].as_str().unwrap().to_owned());
        // What was answered is what was stored.
        let r = app
            .get(
                &format!("/api/data/items/{}", d["id"].as_str().unwrap()),
                t.token(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(&r.body["data"], d);
    }
    assert_eq!(ids.len(), n);
    // A transaction stamps all its rows alike: fewer stamps than rows means creates were
    // committed together.
    assert!(
        stamps.len() < n,
        "every create had its own transaction ({} stamps)",
        stamps.len()
    );
    let r = app.get("/api/data/items", t.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), n);
}

#[tokio::test]
async fn a_refused_create_does_not_fail_the_others() {
    let app = spawn_app().await;
    let t = setup(&app).await;
    let taken = uuid::Uuid::new_v4().to_string();
    // Interleaved: unique rows, rows that all want code "same", rows that all want one id.
    let bodies: Vec<Value> = (0..60)
        .map(|i| match i % 3 {
            0 => json!({"name": format!("ok {i}"), "code": format!("c{i}")}),
            1 => json!({"name": format!("same {i}"), "code": "same"}),
            _ => json!({"id": taken, "name": format!("id {i}")}),
        })
        .collect();
    let answers = create_all(&app, &t, bodies).await;
    let (mut same_ok, mut id_ok) = (0, 0);
    for (i, (status, body)) in answers.iter().enumerate() {
        match (i % 3, *status) {
            (0, 201) => assert_eq!(body["data"]["name"], format!("ok {i}")),
            (1, 201) => same_ok += 1,
            (1, 409) => {
                assert_eq!(body["code"], "RECORD_UNIQUE_VIOLATION", "{body}");
                assert_eq!(body["data"]["field"], "code", "{body}");
            }
            (2, 201) => {
                assert_eq!(body["data"]["id"], taken.as_str());
                id_ok += 1;
            }
            (2, 409) => {
                assert_eq!(body["code"], "RECORD_EXISTS", "{body}");
                assert_eq!(body["data"]["id"], taken.as_str(), "{body}");
            }
            _ => panic!("create {i}: {status} {body}"),
        }
    }
    assert_eq!((same_ok, id_ok), (1, 1));
    let r = app.get("/api/data/items", t.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 22);
}
