//! Stat (A12): timestamps, etag = quoted first 16 hex of SHA-256(id ‖ updated_at), size = bytes
//! of the compact record JSON; live and trashed records.

use abbotik_testkit::{spawn_app, TestTenant};
use serde_json::{json, Value};

#[tokio::test]
async fn stat_of_live_and_trashed_records() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/notes",
            t.token(),
            json!({"fields":{"body":{"type":"text"},"meta":{"type":"jsonb"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/data/notes",
            t.token(),
            json!({"body":"hello","meta":{"a": [1, 2]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rec = r.body["data"].clone();
    let id = rec["id"].as_str().unwrap().to_owned();

    let r = app.get(&format!("/api/stat/notes/{id}"), t.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = r.body["data"].clone();
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "model",
            "created_at",
            "updated_at",
            "trashed_at",
            "deleted_at",
            "etag",
            "size"
        ]
    );
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["model"], "notes");
    assert_eq!(s["created_at"], rec["created_at"]);
    assert_eq!(s["updated_at"], rec["updated_at"]);
    assert_eq!(s["trashed_at"], Value::Null);
    assert_eq!(s["deleted_at"], Value::Null);
    let etag = s["etag"].as_str().unwrap().to_owned();
    assert_eq!(etag.len(), 18);
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert!(etag[1..17]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let got = app.get(&format!("/api/data/notes/{id}"), t.token()).await;
    let compact = serde_json::to_string(&got.body["data"]).unwrap();
    assert_eq!(s["size"], json!(compact.len()));

    // every write changes the etag
    let r = app
        .call(
            "PATCH",
            &format!("/api/data/notes/{id}"),
            t.token(),
            Some(json!({"body":"bye"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s2 = app
        .get(&format!("/api/stat/notes/{id}"), t.token())
        .await
        .body["data"]
        .clone();
    assert_ne!(s2["etag"], s["etag"]);
    assert_eq!(
        s2["etag"],
        app.get(&format!("/api/stat/notes/{id}"), t.token())
            .await
            .body["data"]["etag"],
        "stable"
    );

    // trashed records too
    let r = app
        .call("DELETE", &format!("/api/data/notes/{id}"), t.token(), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s3 = app.get(&format!("/api/stat/notes/{id}"), t.token()).await;
    assert_eq!(s3.status, 200, "{}", s3.text);
    assert_eq!(s3.body["data"]["trashed_at"], r.body["data"]["trashed_at"]);

    for (path, status, code) in [
        (
            format!("/api/stat/notes/{}", uuid::Uuid::new_v4()),
            404,
            "RECORD_NOT_FOUND",
        ),
        (
            "/api/stat/notes/not-a-uuid".to_owned(),
            404,
            "RECORD_NOT_FOUND",
        ),
        (format!("/api/stat/nope/{id}"), 404, "MODEL_NOT_FOUND"),
        (
            format!("/api/stat/tracked/{id}"),
            403,
            "MODEL_SYSTEM_PROTECTED",
        ),
    ] {
        let r = app.get(&path, t.token()).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
        assert_eq!(r.body["code"], code);
    }
    let r = app.get(&format!("/api/stat/notes/{id}"), None).await;
    assert_eq!(r.status, 401);
}
