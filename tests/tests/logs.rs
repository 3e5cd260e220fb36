//! The access log of B6, read from a real server's stdout: one JSON line per request with its
//! request id, method, route, status and duration, and the caller's tenant and user once
//! authenticated; never a token or a request body.

use abbotik_testkit::process::ApiProcess;
use abbotik_testkit::{unique_name, TEST_PASSWORD};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// The access line of the request with this id (log lines are flushed every 50 ms).
async fn access_line(seen: &Mutex<Vec<String>>, request_id: &str) -> Value {
    for _ in 0..100 {
        let found = seen.lock().unwrap().iter().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["msg"] == "request" && v["request_id"] == request_id).then_some(v)
        });
        if let Some(v) = found {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no access line for {request_id}: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn every_request_has_one_access_line_with_its_caller() {
    let http = ApiProcess::start(&[("ABBOTIK_LOG", "info")]).await;
    let seen = &http.log;
    let tenant = unique_name("logs");
    let creds = json!({"tenant": tenant, "username": "owner", "password": TEST_PASSWORD});
    assert_eq!(
        http.post("/auth/register", None, creds.clone())
            .await
            .status,
        201
    );
    let r = http.post("/auth/login", None, creds).await;
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();
    let login_rid = r.headers["x-request-id"].to_str().unwrap().to_owned();
    let r = http
        .post(
            "/api/describe/items",
            Some(&token),
            json!({"fields": {"name": {"type": "text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = http
        .post(
            "/api/data/items",
            Some(&token),
            json!({"name": "secret-body-value"}),
        )
        .await;
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let r = http
        .get(&format!("/api/data/items/{id}"), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let get_rid = r.headers["x-request-id"].to_str().unwrap().to_owned();
    let r = http.get("/api/data/items/not-a-uuid", Some("x.y.z")).await;
    let bad_rid = r.headers["x-request-id"].to_str().unwrap().to_owned();

    let line = access_line(seen, &get_rid).await;
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/data/{model}/{id}");
    assert_eq!(line["status"], 200);
    assert!(line["duration_ms"].is_u64(), "{line}");
    assert_eq!(line["tenant"], tenant.as_str());
    assert!(uuid::Uuid::parse_str(line["user_id"].as_str().unwrap()).is_ok());
    assert_eq!(line["level"], "info");
    // Before authentication there is no caller on the line.
    let line = access_line(seen, &login_rid).await;
    assert_eq!(line["route"], "/auth/login");
    assert!(line.get("tenant").is_none(), "{line}");
    let line = access_line(seen, &bad_rid).await;
    assert_eq!(line["status"], 401);
    assert!(line.get("tenant").is_none(), "{line}");
    // Neither the token nor a request body is ever written.
    let all = seen.lock().unwrap().join("\n");
    assert!(!all.contains(&token));
    assert!(!all.contains("secret-body-value"));
    assert!(!all.contains(TEST_PASSWORD));
}
