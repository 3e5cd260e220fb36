//! User secrets (A3.8a) against a running server: the round trip and every error, values
//! never in answers other than reveal, the associated-data binding (a ciphertext moved to
//! another row in SQL does not open), isolation between users and tenants, impersonation,
//! and `abbot-api secrets rekey` on a database of its own.

use abbotik_testkit::{
    err, okd, spawn_app, spawn_app_with, test_db, Resp, TestApp, TestTenant, TEST_PASSWORD,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const K1: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const K2: &str = "k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

async fn call(app: &TestApp, m: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    app.call(m, path, Some(token), body).await
}

/// A user with a password, logged in → (id, token).
async fn member(app: &TestApp, t: &TestTenant, username: &str) -> (String, String) {
    let r = call(
        app,
        "POST",
        "/api/user",
        &t.token,
        Some(json!({"username": username, "access": "edit", "password": TEST_PASSWORD})),
    )
    .await;
    let id = okd(&r, 201)["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": t.name, "username": username, "password": TEST_PASSWORD}),
        )
        .await;
    (id, okd(&r, 200)["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn round_trip_and_errors() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tok = t.token.as_str();
    let value = "ghp_very_secret_value_42";
    let r = call(
        &app,
        "POST",
        "/api/user/secrets",
        tok,
        Some(json!({"name": "github_token", "value": value, "kind": "api_key", "description": "CI token", "metadata": {"provider": "github"}})),
    )
    .await;
    assert!(!r.text.contains(value), "{}", r.text);
    let m = okd(&r, 201);
    assert_eq!(m["name"], "github_token");
    assert_eq!(m["kind"], "api_key");
    assert_eq!(m["metadata"], json!({"provider": "github"}));
    assert_eq!(m["last_used_at"], Value::Null);
    assert!(m.get("value").is_none());
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "kind",
            "description",
            "metadata",
            "created_at",
            "updated_at",
            "last_used_at"
        ]
    );

    let list = call(&app, "GET", "/api/user/secrets", tok, None).await;
    assert!(!list.text.contains(value));
    assert_eq!(okd(&list, 200).as_array().unwrap().len(), 1);

    let d = err(
        &call(
            &app,
            "POST",
            "/api/user/secrets",
            tok,
            Some(json!({"name": "github_token", "value": "other"})),
        )
        .await,
        409,
        "SECRET_EXISTS",
    );
    assert_eq!(d["name"], "github_token");
    let rev = okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets/github_token/reveal",
            tok,
            Some(json!({})),
        )
        .await,
        200,
    );
    assert_eq!(rev, json!({"name": "github_token", "value": value}));
    let after = okd(
        &call(&app, "GET", "/api/user/secrets", tok, None).await,
        200,
    );
    assert!(after[0]["last_used_at"].is_string());

    // PUT: keys sent replace, keys omitted (or null) are kept.
    let m = okd(
        &call(
            &app,
            "PUT",
            "/api/user/secrets/github_token",
            tok,
            Some(json!({"description": "rotated", "kind": null})),
        )
        .await,
        200,
    );
    assert_eq!(
        (m["description"].as_str(), m["kind"].as_str()),
        (Some("rotated"), Some("api_key"))
    );
    let rev = okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets/github_token/reveal",
            tok,
            None,
        )
        .await,
        200,
    );
    assert_eq!(rev["value"], value);
    let r = call(
        &app,
        "PUT",
        "/api/user/secrets/github_token",
        tok,
        Some(json!({"value": "new-value"})),
    )
    .await;
    assert!(!r.text.contains("new-value"));
    okd(&r, 200);
    let rev = okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets/github_token/reveal",
            tok,
            None,
        )
        .await,
        200,
    );
    assert_eq!(rev["value"], "new-value");
    // PUT of a new name creates it, and needs a value.
    err(
        &call(
            &app,
            "PUT",
            "/api/user/secrets/slack",
            tok,
            Some(json!({"kind": "webhook"})),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    let m = okd(
        &call(
            &app,
            "PUT",
            "/api/user/secrets/slack",
            tok,
            Some(json!({"value": "xoxb"})),
        )
        .await,
        200,
    );
    assert_eq!(m["metadata"], json!({}));

    for (body, status, code) in [
        (json!({"value": "v"}), 400, "VALIDATION_FIELD_MISSING"),
        (json!({"name": "x"}), 400, "VALIDATION_FIELD_MISSING"),
        (
            json!({"name": "Bad-Name", "value": "v"}),
            400,
            "SECRET_NAME_INVALID",
        ),
        (
            json!({"name": "select", "value": "v"}),
            400,
            "SECRET_NAME_INVALID",
        ),
        (
            json!({"name": "x", "value": 5}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"name": "x", "value": "v", "metadata": [1]}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"name": "x", "value": "v", "metadata": "s"}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"name": "x", "value": "a".repeat(65537)}),
            413,
            "SECRET_TOO_LARGE",
        ),
        (json!("nope"), 400, "VALIDATION_BODY_NOT_OBJECT"),
    ] {
        let r = call(&app, "POST", "/api/user/secrets", tok, Some(body)).await;
        err(&r, status, code);
    }
    okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets",
            tok,
            Some(json!({"name": "big", "value": "a".repeat(65536)})),
        )
        .await,
        201,
    );
    err(
        &call(
            &app,
            "PUT",
            "/api/user/secrets/Bad-Name",
            tok,
            Some(json!({"value": "v"})),
        )
        .await,
        400,
        "SECRET_NAME_INVALID",
    );
    err(
        &call(&app, "POST", "/api/user/secrets/missing/reveal", tok, None).await,
        404,
        "SECRET_NOT_FOUND",
    );
    err(
        &call(&app, "DELETE", "/api/user/secrets/missing", tok, None).await,
        404,
        "SECRET_NOT_FOUND",
    );
    let gone = okd(
        &call(&app, "DELETE", "/api/user/secrets/slack", tok, None).await,
        200,
    );
    assert_eq!(gone["name"], "slack");
    err(
        &call(&app, "POST", "/api/user/secrets/slack/reveal", tok, None).await,
        404,
        "SECRET_NOT_FOUND",
    );

    // At rest: only ciphertext, under the configured key id.
    let db = test_db().await;
    let row = db
        .query_one(
            &format!(
                "SELECT kek_id, length(nonce), position('new-value'::bytea in ciphertext) > 0
                   FROM \"ns_tenant_{}\".\"user_secrets\" WHERE name = 'github_token'",
                t.name
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "k1");
    assert_eq!(row.get::<_, i32>(1), 12);
    assert!(!row.get::<_, bool>(2));
}

#[tokio::test]
async fn ciphertext_moved_to_another_row_does_not_open() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (bob, bob_tok) = member(&app, &t, "bob").await;
    for (tok, v) in [(&t.token, "owner-value"), (&bob_tok, "bob-value")] {
        okd(
            &call(
                &app,
                "POST",
                "/api/user/secrets",
                tok,
                Some(json!({"name": "token", "value": v})),
            )
            .await,
            201,
        );
    }
    okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets",
            &t.token,
            Some(json!({"name": "other", "value": "x"})),
        )
        .await,
        201,
    );
    let db = test_db().await;
    let s = format!("\"ns_tenant_{}\".\"user_secrets\"", t.name);
    // Copy the owner's sealed value into Bob's row: same key, valid ciphertext, wrong row.
    db.execute(
        &format!(
            "UPDATE {s} b SET nonce = o.nonce, ciphertext = o.ciphertext, kek_id = o.kek_id
               FROM {s} o WHERE o.user_id = $1 AND o.name = 'token' AND b.user_id = $2 AND b.name = 'token'"
        ),
        &[&uuid::Uuid::parse_str(&t.user_id).unwrap(), &uuid::Uuid::parse_str(&bob).unwrap()],
    )
    .await
    .unwrap();
    let r = call(
        &app,
        "POST",
        "/api/user/secrets/token/reveal",
        &bob_tok,
        None,
    )
    .await;
    err(&r, 500, "INTERNAL");
    assert!(!r.text.contains("owner-value"));
    // Renaming a row breaks it too (the name is bound).
    db.execute(
        &format!("UPDATE {s} SET name = 'renamed' WHERE name = 'other'"),
        &[],
    )
    .await
    .unwrap();
    err(
        &call(
            &app,
            "POST",
            "/api/user/secrets/renamed/reveal",
            &t.token,
            None,
        )
        .await,
        500,
        "INTERNAL",
    );
    // The untouched row still opens.
    let v = okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets/token/reveal",
            &t.token,
            None,
        )
        .await,
        200,
    );
    assert_eq!(v["value"], "owner-value");
}

#[tokio::test]
async fn users_and_tenants_are_isolated_and_fakes_cannot_reveal() {
    let app = spawn_app().await;
    let a = TestTenant::new(&app).await;
    let b = TestTenant::new(&app).await;
    let (_, bob_tok) = member(&app, &a, "bob").await;
    okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets",
            &a.token,
            Some(json!({"name": "mine", "value": "owner-only"})),
        )
        .await,
        201,
    );
    // Another user of the tenant, and the same username in another tenant, see nothing.
    for tok in [&bob_tok, &b.token] {
        assert_eq!(
            okd(
                &call(&app, "GET", "/api/user/secrets", tok, None).await,
                200
            ),
            json!([])
        );
        err(
            &call(&app, "POST", "/api/user/secrets/mine/reveal", tok, None).await,
            404,
            "SECRET_NOT_FOUND",
        );
        err(
            &call(&app, "DELETE", "/api/user/secrets/mine", tok, None).await,
            404,
            "SECRET_NOT_FOUND",
        );
        // Their own secret of the same name is theirs alone.
        okd(
            &call(
                &app,
                "POST",
                "/api/user/secrets",
                tok,
                Some(json!({"name": "mine", "value": "theirs"})),
            )
            .await,
            201,
        );
    }
    let v = okd(
        &call(
            &app,
            "POST",
            "/api/user/secrets/mine/reveal",
            &a.token,
            None,
        )
        .await,
        200,
    );
    assert_eq!(v["value"], "owner-only");

    // Impersonating Bob: metadata yes, values never.
    let r = call(
        &app,
        "POST",
        "/api/user/fake",
        &a.token,
        Some(json!({"username": "bob"})),
    )
    .await;
    let fake = okd(&r, 200)["fake_token"].as_str().unwrap().to_owned();
    assert_eq!(
        okd(
            &call(&app, "GET", "/api/user/secrets", &fake, None).await,
            200
        )[0]["name"],
        "mine"
    );
    let r = call(&app, "POST", "/api/user/secrets/mine/reveal", &fake, None).await;
    err(&r, 403, "SECRET_FORBIDDEN");
    assert!(!r.text.contains("theirs"));
}

/// The `abbot-api` binary next to this test's executable (built by the workspace tests).
fn api_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ABBOTIK_API_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("abbot-api");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "abbot-api", "--bin", "abbot-api"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build");
        assert!(ok.success());
    }
    bin
}

fn cli(db_url: &str, kek: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(api_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ABBOTIK_DATABASE_URL", db_url)
        .env("ABBOTIK_SINGLE_NODE", "true")
        .env(
            "ABBOTIK_AUTH_JWT_SECRET",
            "test-secret-0123456789abcdef0123456789abcdef",
        )
        .env("ABBOTIK_SECRETS_KEK", kek)
        .env("ABBOTIK_LOG", "warn")
        .output()
        .expect("abbot-api runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Rekey runs over every tenant, so it gets a database of its own (other tests share theirs).
#[tokio::test]
async fn rekey_reseals_every_row_under_the_first_key() {
    let admin = test_db().await;
    let dbname = format!(
        "abbotik_rekey_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {dbname}"))
        .await
        .unwrap();
    let base = std::env::var("ABBOTIK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| abbotik_testkit::DEFAULT_TEST_DATABASE_URL.to_owned());
    let url = format!("{}/{dbname}", &base[..base.rfind('/').unwrap()]);
    cli(&url, K1, &["migrate"]);

    let old = spawn_app_with(&[("ABBOTIK_DATABASE_URL", &url), ("ABBOTIK_SECRETS_KEK", K1)]).await;
    let mut owners = Vec::new();
    for _ in 0..2 {
        let t = TestTenant::new(&old).await;
        for (n, v) in [("a", "value-a"), ("b", "value-b")] {
            okd(
                &call(
                    &old,
                    "POST",
                    "/api/user/secrets",
                    &t.token,
                    Some(json!({"name": n, "value": format!("{}-{v}", t.name)})),
                )
                .await,
                201,
            );
        }
        owners.push(t);
    }

    // The new key first, the old one kept after it.
    let ring = format!("{K2},{K1}");
    let out = cli(&url, &ring, &["secrets", "rekey"]);
    assert!(
        out.contains("rekeyed 4 secret(s) in 2 tenant(s) under key k2"),
        "{out}"
    );
    let out = cli(&url, &ring, &["secrets", "rekey"]);
    assert!(out.contains("rekeyed 0 secret(s)"), "{out}");

    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for t in &owners {
        let rows = c
            .query(
                &format!(
                    "SELECT DISTINCT kek_id FROM \"ns_tenant_{}\".\"user_secrets\"",
                    t.name
                ),
                &[],
            )
            .await
            .unwrap();
        let kids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(kids, ["k2"]);
    }
    // A server that only knows the new key opens everything; one with only the old key cannot.
    let new = spawn_app_with(&[("ABBOTIK_DATABASE_URL", &url), ("ABBOTIK_SECRETS_KEK", K2)]).await;
    for t in &owners {
        let v = okd(
            &call(&new, "POST", "/api/user/secrets/a/reveal", &t.token, None).await,
            200,
        );
        assert_eq!(v["value"], format!("{}-value-a", t.name));
        err(
            &call(&old, "POST", "/api/user/secrets/b/reveal", &t.token, None).await,
            500,
            "INTERNAL",
        );
    }
    // Writes under the new ring use the new key.
    okd(
        &call(
            &new,
            "PUT",
            "/api/user/secrets/a",
            &owners[0].token,
            Some(json!({"value": "fresh"})),
        )
        .await,
        200,
    );

    drop(c);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE {dbname} WITH (FORCE)"))
        .await;
}
