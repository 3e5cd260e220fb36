//! The HTTP edge: public routes, unknown routes, wrong methods, request ids.

use abbotik_testkit::spawn_app;

#[tokio::test]
async fn health_root_and_fallbacks() {
    let app = spawn_app().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["status"], "healthy");
    assert!(r.headers.contains_key("x-request-id"));

    let r = app.get("/", None).await;
    assert_eq!(r.body["data"]["name"], "abbotik-api");

    let r = app.get("/no/such/route", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "NOT_FOUND");
    assert_eq!(r.body["success"], false);

    let r = app.call("DELETE", "/health", None, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["code"], "METHOD_NOT_ALLOWED");
    let allow = r
        .headers
        .get("allow")
        .expect("Allow header")
        .to_str()
        .unwrap();
    assert!(allow.contains("GET"), "{allow}");

    let r = app.get("/ready", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "req-abc.1:2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-abc.1:2");
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn body_limit_and_head() {
    let app = abbotik_testkit::spawn_app_with(&[("ABBOTIK_BODY_LIMIT_BYTES", "1000")]).await;
    let big = serde_json::json!({"tenant": "x".repeat(2000), "username": "a", "password": "p"});
    let r = app.post("/auth/register", None, big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["code"], "VALIDATION_BODY_TOO_LARGE");
    assert_eq!(r.body["data"]["limit_bytes"], 1000);

    let r = app.client.head(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().is_empty());
}
