//! Human auth (A3.3, A3.10), `/api/user/me`, and identity re-resolution (A3.2).

use abbotik_testkit::{spawn_app, unique_name, TestTenant, TEST_PASSWORD};
use serde_json::json;

#[tokio::test]
async fn register_login_me_refresh() {
    let app = spawn_app().await;
    let name = unique_name("reg");
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"tenant": name, "username": "alice", "email": "alice@acme.io",
                   "password": TEST_PASSWORD, "description": "Acme prod", "invite_code": null}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"]["tenant"], name.as_str());
    assert_eq!(r.body["data"]["username"], "alice");
    assert_eq!(r.body["data"]["status"], "pending");
    assert!(r.body["data"].get("token").is_none());

    // Compatible clients send all five keys, unset ones null.
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": name, "tenant_id": null, "username": "alice", "password": TEST_PASSWORD, "format": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = &r.body["data"];
    assert_eq!(d["expires_in"], 604800);
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["user"]["access"], "root");
    let token = d["token"].as_str().unwrap().to_owned();
    let tenant_id = d["user"]["tenant_id"].as_str().unwrap().to_owned();

    // JWT payload: base64url without padding, integers for exp/iat, strings for the rest.
    let payload = token.split('.').nth(1).unwrap();
    assert!(!payload.contains('='));
    let claims: serde_json::Value = serde_json::from_slice(&base64_url_decode(payload)).unwrap();
    assert!(claims["exp"].is_i64() && claims["iat"].is_i64());
    assert_eq!(claims["auth_type"], "username");
    assert_eq!(claims["tenant"], name.as_str());
    assert_eq!(claims["tenant_id"], tenant_id.as_str());

    let r = app.get("/api/user/me", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["username"], "alice");
    assert_eq!(r.body["data"]["auth"], "alice");
    assert_eq!(r.body["data"]["has_password"], true);
    let created = r.body["data"]["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 27, "{created}");

    // Login by tenant_id alone works; mismatching tenant/tenant_id fails.
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant_id": tenant_id, "username": "alice", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200);
    let other = TestTenant::new(&app).await;
    let r = app
        .post("/auth/login", None, json!({"tenant": name, "tenant_id": other.tenant_id, "username": "alice", "password": TEST_PASSWORD}))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "AUTH_LOGIN_FAILED");

    // Refresh: the body wins over a bad header.
    let r = app
        .call(
            "POST",
            "/auth/refresh",
            Some("garbage"),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["data"]["expires_in"].is_i64());
    // Header only.
    let r = app.call("POST", "/auth/refresh", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.call("POST", "/auth/refresh", None, None).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_REQUIRED");
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = A.iter().position(|&x| x == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn register_errors() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "a", "password": TEST_PASSWORD}),
            400,
            "VALIDATION_FIELD_MISSING",
        ),
        (
            json!({"tenant": "A!", "username": "a", "password": TEST_PASSWORD}),
            400,
            "TENANT_NAME_INVALID",
        ),
        (
            json!({"tenant": unique_name("x"), "username": "Bad", "password": TEST_PASSWORD}),
            400,
            "AUTH_USERNAME_INVALID",
        ),
        (
            json!({"tenant": unique_name("x"), "username": "a", "password": "short"}),
            400,
            "AUTH_PASSWORD_INVALID",
        ),
        (
            json!({"tenant": unique_name("x"), "username": "a", "password": TEST_PASSWORD, "email": "nope"}),
            400,
            "AUTH_EMAIL_INVALID",
        ),
        (
            json!({"tenant": unique_name("x"), "username": "a", "password": 5}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (json!([1]), 400, "VALIDATION_BODY_NOT_OBJECT"),
    ];
    for (body, status, code) in cases {
        let r = app.post("/auth/register", None, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.body["code"], code, "{body}");
        assert!(r.body["remediation"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
    }
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"tenant": t.name, "username": "b", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["code"], "TENANT_EXISTS");

    // Malformed JSON, wrong content type, empty body.
    let r = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["code"], "VALIDATION_JSON_PARSE");
    let r = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app.call("POST", "/auth/register", None, None).await;
    assert_eq!(r.body["code"], "VALIDATION_FIELD_MISSING");
}

#[tokio::test]
async fn login_failures_do_not_leak() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    for body in [
        json!({"tenant": t.name, "username": "owner", "password": "wrong password"}),
        json!({"tenant": t.name, "username": "nobody", "password": TEST_PASSWORD}),
        json!({"tenant": unique_name("none"), "username": "owner", "password": TEST_PASSWORD}),
        json!({"tenant": t.name, "username": "root", "password": TEST_PASSWORD}),
    ] {
        let r = app.post("/auth/login", None, body.clone()).await;
        assert_eq!(r.status, 401, "{body}");
        assert_eq!(r.body["code"], "AUTH_LOGIN_FAILED");
        assert_eq!(r.body["message"], r.body["error"]);
    }
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"username": "owner", "password": "x"}),
        )
        .await;
    assert_eq!(r.body["code"], "VALIDATION_FIELD_MISSING");
}

#[tokio::test]
async fn bad_tokens() {
    let app = spawn_app().await;
    let r = app.get("/api/user/me", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "AUTH_TOKEN_REQUIRED");
    let r = app.get("/api/user/me", Some("not.a.jwt")).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_INVALID");
    let r = app.get("/api/user/me", Some("abk_unknown")).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_INVALID");
    // Scheme is case-insensitive.
    let t = TestTenant::new(&app).await;
    let r = app
        .client
        .get(app.url("/api/user/me"))
        .header("authorization", format!("bEaReR {}", t.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A token signed by another key ring (a different deployment) is invalid here.
    let other = abbotik_testkit::spawn_app_with(&[(
        "ABBOTIK_AUTH_JWT_KEYS",
        "t1:another-secret-0123456789abcdef0123456789",
    )])
    .await;
    let r = other.get("/api/user/me", Some(&t.token)).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_INVALID");
    // Rotation: new key first, old key kept → old tokens still work.
    let rotated = abbotik_testkit::spawn_app_with(&[(
        "ABBOTIK_AUTH_JWT_KEYS",
        "t2:rotated-secret-0123456789abcdef0123456789,t1:test-secret-0123456789abcdef0123456789abcdef",
    )])
    .await;
    let r = rotated.get("/api/user/me", Some(&t.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn dissolve_flow() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/auth/dissolve",
            None,
            json!({"tenant": t.name, "username": "owner", "password": "wrong password"}),
        )
        .await;
    assert_eq!(r.body["code"], "AUTH_LOGIN_FAILED");
    let r = app
        .post(
            "/auth/dissolve",
            None,
            json!({"tenant": t.name, "username": "owner", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["expires_in"], 300);
    let confirm = r.body["data"]["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The confirmation token is not a bearer credential.
    let r = app.get("/api/user/me", Some(&confirm)).await;
    assert_eq!(r.body["code"], "AUTH_TOKEN_INVALID");
    let r = app
        .post(
            "/auth/dissolve/confirm",
            None,
            json!({"confirmation_token": confirm}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["dissolved"], true);
    let r = app
        .post(
            "/auth/dissolve/confirm",
            None,
            json!({"confirmation_token": confirm}),
        )
        .await;
    assert_eq!(r.body["code"], "AUTH_DISSOLVE_TOKEN_INVALID");
    let r = app.get("/api/user/me", Some(&t.token)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "TENANT_INACTIVE");
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": t.name, "username": "owner", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.body["code"], "AUTH_LOGIN_FAILED");
    // The name stays reserved.
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"tenant": t.name, "username": "x", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.body["code"], "TENANT_EXISTS");

    // Bearer form: a root token with an empty body.
    let t2 = TestTenant::new(&app).await;
    let r = app
        .call("POST", "/auth/dissolve", Some(&t2.token), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            "/auth/dissolve/confirm",
            None,
            json!({"confirmation_token": "x.y.z"}),
        )
        .await;
    assert_eq!(r.body["code"], "AUTH_DISSOLVE_TOKEN_INVALID");
}

#[tokio::test]
async fn tenant_creation_is_rate_limited_per_client() {
    // The budget is shared through Redis and outlives the server, so this test counts for an
    // address of its own (from a trusted proxy's X-Forwarded-For) rather than 127.0.0.1.
    let app = abbotik_testkit::spawn_app_with(&[
        ("ABBOTIK_RATE_TENANT_CREATE_PER_HOUR", "2"),
        ("ABBOTIK_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let client_ip = abbotik_testkit::unique_ip();
    let register = |tenant: String| {
        app.client
            .post(app.url("/auth/register"))
            .header("x-forwarded-for", client_ip.as_str())
            .json(&json!({"tenant": tenant, "username": "a", "password": TEST_PASSWORD}))
            .send()
    };
    for _ in 0..2 {
        let r = register(unique_name("rl")).await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = register(unique_name("rl")).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["data"]["scope"], "tenant_create");
    // Invalid input is refused before it spends budget, and other addresses are not limited.
    let r = register("X".into()).await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "TENANT_NAME_INVALID");
    let r = app
        .client
        .post(app.url("/auth/register"))
        .header("x-forwarded-for", abbotik_testkit::unique_ip())
        .json(&json!({"tenant": unique_name("rl"), "username": "a", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn tenant_listing_is_off_by_default_and_opt_in() {
    let app = spawn_app().await;
    let r = app.get("/auth/tenants", None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "AUTH_TENANT_LIST_DISABLED");

    let listed = abbotik_testkit::spawn_app_with(&[("ABBOTIK_AUTH_TENANT_LIST", "true")]).await;
    let t = TestTenant::new(&listed).await;
    let r = listed.get("/auth/tenants", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let item = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == t.name.as_str())
        .cloned()
        .expect("new tenant listed");
    assert_eq!(
        item["users"],
        json!([]),
        "usernames stay private unless enabled"
    );
    assert!(item.get("description").is_some());

    let with_users = abbotik_testkit::spawn_app_with(&[
        ("ABBOTIK_AUTH_TENANT_LIST", "true"),
        ("ABBOTIK_AUTH_TENANT_LIST_USERS", "true"),
    ])
    .await;
    let r = with_users.get("/auth/tenants", None).await;
    let item = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == t.name.as_str())
        .cloned()
        .unwrap();
    // The credential-less zero-uuid root cannot log in, so only the owner is listed.
    assert_eq!(item["users"], json!(["owner"]));
}
