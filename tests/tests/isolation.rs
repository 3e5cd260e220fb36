//! Tenant isolation (non-negotiable 4): a token of tenant A cannot read or change anything of
//! tenant B by any route — by naming B's models, B's record ids, or B's schema.

use abbotik_testkit::{spawn_app, TestTenant};
use serde_json::json;

#[tokio::test]
async fn tenant_a_cannot_reach_tenant_b() {
    let app = spawn_app().await;
    let a = TestTenant::new(&app).await;
    let b = TestTenant::new(&app).await;

    // B owns a model `vault` with one record; A owns a model `notes` only.
    let r = app
        .post(
            "/api/describe/vault",
            b.token(),
            json!({"fields": {"secret": {"type": "text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post("/api/data/vault", b.token(), json!({"secret": "b-only"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let bid = r.body["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/describe/notes",
            a.token(),
            json!({"fields": {"body": {"type": "text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let schema_b = format!("ns_tenant_{}", b.name);
    let enc = |s: &str| s.replace('"', "%22").replace(' ', "%20");
    // Reads and writes naming B's model, B's ids, or B's schema.
    let probes: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/api/data/vault".into(), None),
        ("GET", format!("/api/data/vault/{bid}"), None),
        (
            "PUT",
            format!("/api/data/vault/{bid}"),
            Some(json!({"secret": "pwned"})),
        ),
        (
            "PATCH",
            format!("/api/data/vault/{bid}"),
            Some(json!({"secret": "pwned"})),
        ),
        ("DELETE", format!("/api/data/vault/{bid}"), None),
        (
            "POST",
            "/api/data/vault".into(),
            Some(json!({"secret": "x"})),
        ),
        ("GET", "/api/describe/vault".into(), None),
        ("DELETE", "/api/describe/vault".into(), None),
        ("GET", format!("/api/stat/vault/{bid}"), None),
        ("GET", format!("/api/trashed/vault/{bid}"), None),
        ("GET", format!("/api/data/notes/{bid}"), None),
        (
            "PUT",
            format!("/api/data/notes/{bid}"),
            Some(json!({"body": "x"})),
        ),
        ("DELETE", format!("/api/data/notes/{bid}"), None),
        ("GET", format!("/api/stat/notes/{bid}"), None),
        (
            "GET",
            format!("/api/data/{}", enc(&format!("{schema_b}.vault"))),
            None,
        ),
        (
            "GET",
            format!("/api/data/{}", enc(&format!("\"{schema_b}\".\"vault\""))),
            None,
        ),
        (
            "GET",
            format!("/api/data/{}", enc("notes\" UNION SELECT * FROM vault --")),
            None,
        ),
        (
            "GET",
            format!("/api/describe/{}", enc(&format!("{schema_b}.vault"))),
            None,
        ),
    ];
    for (method, path, body) in probes {
        let r = app.call(method, &path, a.token(), body).await;
        assert!(
            r.status == 404 || r.status == 400,
            "{method} {path} as A answered {}: {}",
            r.status,
            r.text
        );
        assert!(
            !r.text.contains("b-only"),
            "{method} {path} leaked B's data"
        );
        // Naming B's schema answers exactly as naming a schema that does not exist: the
        // response tells nothing about B (the path itself is only echoed back).
        if path.contains(&schema_b) {
            let ghost = path.replace(&schema_b, "ns_tenant_nobody_here");
            let g = app.call(method, &ghost, a.token(), None).await;
            assert_eq!(
                (r.status, &r.body["code"]),
                (g.status, &g.body["code"]),
                "{method} {path}"
            );
        }
    }
    // PUT /api/data/notes bulk naming B's id must not touch B.
    let r = app
        .call(
            "PUT",
            "/api/data/notes",
            a.token(),
            Some(json!([{"id": bid, "body": "x"}])),
        )
        .await;
    assert!(r.status == 404 || r.status == 400, "{}", r.text);

    // A token whose tenant claim is swapped to B fails signature verification.
    let parts: Vec<&str> = a.token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1].chars().rev().collect::<String>(),
        parts[2]
    );
    let r = app.get("/api/data/vault", Some(&forged)).await;
    assert_eq!(r.status, 401);

    // B's record is untouched and still visible to B.
    let r = app.get(&format!("/api/data/vault/{bid}"), b.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["secret"], "b-only");
    assert!(r.body["data"]["trashed_at"].is_null());
    // And A's listing of its own model shows nothing of B.
    let r = app.get("/api/data/notes", a.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!([]));
    let r = app.get("/api/describe", a.token()).await;
    assert!(!r.text.contains("vault"), "{}", r.text);
}
