//! Machine bootstrap and re-authentication (A3.4) end to end: keys made and signatures
//! computed by the `openssl` command line (a separate program), provisioning, challenge and
//! verify, and the refusal of each step (replay, expiry, wrong message, another key, another
//! tenant, a failed provisioning).

#[path = "support/machine.rs"]
mod machine;
#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

use abbotik_testkit::{err, okd, spawn_app, test_db, unique_name};
use machine::{challenge, machine_token, provision, tenant_status, verify};
use openssl_ed25519::OpensslKey;
use serde_json::{json, Value};

#[tokio::test]
async fn end_to_end_with_openssl() {
    let app = spawn_app().await;
    let (m, d) = provision(&app, "mach").await;
    assert_eq!(d["tenant"], m.tenant);
    assert_eq!(d["status"], "pending");
    assert_eq!(d["user"]["username"], "agent");
    assert_eq!(d["user"]["access"], "root");
    assert_eq!(d["key"]["name"], "builder-1");
    assert_eq!(d["key"]["algorithm"], "ed25519");
    assert_eq!(
        m.fingerprint,
        m.key.fingerprint(),
        "fingerprint = fp_ + sha256(SPKI DER)[..32]"
    );
    let c = &d["challenge"];
    let nonce = c["nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 43);
    assert!(nonce
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    assert_eq!(c["expires_in"], 300);
    assert_eq!(c["algorithm"], "ed25519");
    assert!(c["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(tenant_status(&m.tenant).await.as_deref(), Some("pending"));

    // The challenge is stored in the tenant's own table, 300 s, bound to the key.
    let row = test_db()
        .await
        .query_one(
            &format!(
                "SELECT key_id::text, nonce, extract(epoch FROM expires_at - issued_at)::int, used_at IS NULL
                 FROM \"ns_tenant_{}\".\"auth_challenges\" WHERE id = $1::text::uuid",
                m.tenant
            ),
            &[&c["challenge_id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), m.key_id);
    assert_eq!(row.get::<_, String>(1), nonce);
    assert_eq!(row.get::<_, i32>(2), 300);
    assert!(row.get::<_, bool>(3));

    // Sign with openssl exactly as the contract's one-liner, verify.
    let sig = m.key.sign(nonce);
    assert!(!sig.contains('=') && !sig.contains('\n'));
    let r = verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), &sig).await;
    let v = okd(&r, 200);
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["tenant"], m.tenant);
    assert_eq!(v["tenant_id"], m.tenant_id);
    assert_eq!(v["key_id"], m.key_id);
    assert_eq!(v["user"]["id"], m.user_id);
    assert_eq!(v["user"]["access"], "root");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        tenant_status(&m.tenant).await.as_deref(),
        Some("active"),
        "pending → active"
    );

    // The claims compatible clients read, with their JSON types.
    let payload = token.split('.').nth(1).unwrap();
    assert!(!payload.contains('='));
    let claims: Value = serde_json::from_slice(&m.key.decode_base64url(payload)).unwrap();
    assert_eq!(claims["auth_type"], "public_key");
    assert_eq!(claims["key_id"], m.key_id);
    assert_eq!(claims["key_fingerprint"], m.fingerprint);
    assert_eq!(claims["tenant"], m.tenant);
    assert_eq!(claims["username"], "agent");
    assert_eq!(claims["access"], "root");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);

    // The token works.
    let me = okd(&app.get("/api/user/me", Some(&token)).await, 200);
    assert_eq!(me["id"], m.user_id);
    assert_eq!(me["username"], "agent");
    assert_eq!(me["has_password"], false);
    okd(&app.get("/api/describe", Some(&token)).await, 200);
    // key_last_used_at was recorded.
    let keys = okd(&app.get("/api/user/machine-keys", Some(&token)).await, 200);
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(keys[0]["last_used_at"].is_string(), "{keys}");
    assert!(keys[0].get("public_key").is_none());

    // Machine tokens are never refreshed.
    err(
        &app.post("/auth/refresh", None, json!({"token": token}))
            .await,
        403,
        "AUTH_REFRESH_UNSUPPORTED",
    );

    // Re-authentication: by key_id, and by fingerprint (key_id null), as compatible clients do.
    let c2 = challenge(&app, &m.tenant, &m.key_id).await;
    assert_eq!(c2["key_id"], m.key_id);
    assert_ne!(c2["nonce"], c["nonce"]);
    let r = app
        .post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": null, "fingerprint": m.fingerprint}),
        )
        .await;
    let c3 = okd(&r, 200);
    assert_eq!(c3["key_id"], m.key_id);
    for c in [&c2, &c3] {
        let sig = m.key.sign(c["nonce"].as_str().unwrap());
        okd(
            &verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), &sig).await,
            200,
        );
    }
}

#[tokio::test]
async fn missing_fields() {
    let app = spawn_app().await;
    let key = OpensslKey::generate();
    let t = unique_name("machf");
    for (body, field) in [
        (
            json!({"username": "a", "public_key": key.public_pem()}),
            "tenant",
        ),
        (
            json!({"tenant": t, "public_key": key.public_pem()}),
            "username",
        ),
        (
            json!({"tenant": t, "username": "a", "public_key": null}),
            "public_key",
        ),
    ] {
        let d = err(
            &app.post("/auth/provision", None, body).await,
            400,
            "VALIDATION_FIELD_MISSING",
        );
        assert_eq!(d["field"], field);
    }
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": t, "key_id": null, "fingerprint": null}),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(
        &app.post(
            "/auth/verify",
            None,
            json!({"tenant": t, "challenge_id": "x"}),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(
        &app.post(
            "/auth/provision",
            None,
            json!({"tenant": "Bad-Name", "username": "a", "public_key": key.public_pem()}),
        )
        .await,
        400,
        "TENANT_NAME_INVALID",
    );
    err(
        &app.post(
            "/auth/provision",
            None,
            json!({"tenant": t, "username": "Bad", "public_key": key.public_pem()}),
        )
        .await,
        400,
        "AUTH_USERNAME_INVALID",
    );
    err(
        &app.post("/auth/provision", None, json!({"tenant": t, "username": "a", "public_key": key.public_pem(), "algorithm": "rsa"})).await,
        400,
        "KEY_ALGORITHM_UNSUPPORTED",
    );
    assert_eq!(tenant_status(&t).await, None, "nothing was created");
}

#[tokio::test]
async fn replayed_and_failed_challenges_are_spent() {
    let app = spawn_app().await;
    let (m, d) = provision(&app, "machr").await;
    let cid = d["challenge"]["challenge_id"].as_str().unwrap();
    let sig = m.key.sign(d["challenge"]["nonce"].as_str().unwrap());
    okd(&verify(&app, &m.tenant, cid, &sig).await, 200);
    err(
        &verify(&app, &m.tenant, cid, &sig).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );

    // A failed attempt spends the challenge too: the right signature afterwards is refused.
    let c = challenge(&app, &m.tenant, &m.key_id).await;
    let cid = c["challenge_id"].as_str().unwrap();
    err(
        &verify(&app, &m.tenant, cid, "AAAA").await,
        401,
        "AUTH_SIGNATURE_INVALID",
    );
    let good = m.key.sign(c["nonce"].as_str().unwrap());
    err(
        &verify(&app, &m.tenant, cid, &good).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );

    // Unknown or malformed challenge ids.
    let unknown = uuid::Uuid::new_v4().to_string();
    err(
        &verify(&app, &m.tenant, &unknown, &good).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );
    err(
        &verify(&app, &m.tenant, "not-a-uuid", &good).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );
}

#[tokio::test]
async fn expired_challenge() {
    let app = spawn_app().await;
    let (m, d) = provision(&app, "mache").await;
    let cid = d["challenge"]["challenge_id"].as_str().unwrap();
    let sig = m.key.sign(d["challenge"]["nonce"].as_str().unwrap());
    // The service clock steps past the 300 s (an in-process hook; no route reaches it).
    app.running.state.machine.clock().advance(301);
    err(
        &verify(&app, &m.tenant, cid, &sig).await,
        401,
        "AUTH_CHALLENGE_EXPIRED",
    );
    // Consumed by that attempt.
    err(
        &verify(&app, &m.tenant, cid, &sig).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );
    // A fresh challenge at the new time works.
    machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
}

#[tokio::test]
async fn wrong_signatures() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machs").await;
    let other = OpensslKey::generate();

    // Signature over the DECODED nonce bytes instead of the nonce string.
    let c = challenge(&app, &m.tenant, &m.key_id).await;
    let nonce = c["nonce"].as_str().unwrap();
    let raw = m.key.decode_base64url(nonce);
    assert_eq!(raw.len(), 32);
    let sig = m.key.sign_bytes(&raw);
    err(
        &verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), &sig).await,
        401,
        "AUTH_SIGNATURE_INVALID",
    );

    // Another key's signature over the right string.
    let c = challenge(&app, &m.tenant, &m.key_id).await;
    let sig = other.sign(c["nonce"].as_str().unwrap());
    err(
        &verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), &sig).await,
        401,
        "AUTH_SIGNATURE_INVALID",
    );

    // Not base64, or not 64 bytes.
    let long = "A".repeat(90);
    for bad in ["***", "", "QUJD", long.as_str()] {
        let c = challenge(&app, &m.tenant, &m.key_id).await;
        let r = verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), bad).await;
        err(&r, 401, "AUTH_SIGNATURE_INVALID");
    }

    // Padded and standard base64 of a good signature are accepted.
    for variant in [0, 1, 2] {
        let c = challenge(&app, &m.tenant, &m.key_id).await;
        let url = m.key.sign(c["nonce"].as_str().unwrap());
        let mut s = match variant {
            0 => url.clone(),
            _ => url.replace('-', "+").replace('_', "/"),
        };
        if variant != 0 {
            while !s.len().is_multiple_of(4) {
                s.push('=');
            }
        }
        if variant == 2 {
            s = s.trim_end_matches('=').to_owned();
        }
        okd(
            &verify(&app, &m.tenant, c["challenge_id"].as_str().unwrap(), &s).await,
            200,
        );
    }
}

#[tokio::test]
async fn key_of_another_tenant() {
    let app = spawn_app().await;
    let (a, da) = provision(&app, "macha").await;
    let (b, _) = provision(&app, "machb").await;
    let not_found = |r: &abbotik_testkit::Resp| {
        err(r, 401, "AUTH_KEY_NOT_FOUND");
        r.body["message"].clone()
    };
    let m1 = not_found(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": b.tenant, "key_id": a.key_id}),
        )
        .await,
    );
    let m2 = not_found(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": b.tenant, "fingerprint": a.fingerprint}),
        )
        .await,
    );
    // An unknown tenant answers exactly like an unknown key.
    let m3 = not_found(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": unique_name("nosuch"), "key_id": a.key_id}),
        )
        .await,
    );
    let m4 = not_found(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": "Not A Name", "key_id": a.key_id}),
        )
        .await,
    );
    let m5 = not_found(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": a.tenant, "key_id": "not-a-uuid"}),
        )
        .await,
    );
    assert!(m1 == m2 && m2 == m3 && m3 == m4 && m4 == m5);

    // A's challenge presented to tenant B: invalid there, and still usable in A.
    let cid = da["challenge"]["challenge_id"].as_str().unwrap();
    let sig = a.key.sign(da["challenge"]["nonce"].as_str().unwrap());
    err(
        &verify(&app, &b.tenant, cid, &sig).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );
    err(
        &verify(&app, &unique_name("nosuch"), cid, &sig).await,
        401,
        "AUTH_CHALLENGE_INVALID",
    );
    okd(&verify(&app, &a.tenant, cid, &sig).await, 200);
}

/// An event trigger (real PostgreSQL, no test hook in the product) that puts a failing INSERT
/// trigger on `auth_challenges` in any schema named `ns_tenant_failmachine_…`: provisioning
/// then fails at its very last write (the first challenge, A13 step 5).
async fn install_challenge_failure(c: &tokio_postgres::Client) {
    c.batch_execute(
        r#"
        CREATE OR REPLACE FUNCTION public.abbotik_test_fail_insert() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected challenge failure'; END $$;
        CREATE OR REPLACE FUNCTION public.abbotik_test_fail_challenge() RETURNS event_trigger
        LANGUAGE plpgsql AS $$
        DECLARE r record;
        BEGIN
          FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            IF r.command_tag = 'CREATE TABLE'
               AND r.object_identity LIKE 'ns_tenant_failmachine\_%.auth_challenges' THEN
              EXECUTE format('CREATE TRIGGER fail_insert BEFORE INSERT ON %s FOR EACH ROW
                              EXECUTE FUNCTION public.abbotik_test_fail_insert()', r.object_identity);
            END IF;
          END LOOP;
        END $$;
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'abbotik_test_fail_challenge') THEN
            CREATE EVENT TRIGGER abbotik_test_fail_challenge ON ddl_command_end
              EXECUTE FUNCTION public.abbotik_test_fail_challenge();
          END IF;
        END $$;
        "#,
    )
    .await
    .expect("install event trigger");
}

#[tokio::test]
async fn provisioning_failure_leaves_nothing() {
    let app = spawn_app().await;
    let c = test_db().await;
    install_challenge_failure(&c).await;
    let key = OpensslKey::generate();
    let name = unique_name("failmachine");
    let r = app
        .post(
            "/auth/provision",
            None,
            json!({"tenant": name, "username": "agent", "public_key": key.public_pem()}),
        )
        .await;
    err(&r, 500, "TENANT_PROVISION_FAILED");
    assert!(!r.text.contains("injected"), "{}", r.text);
    assert_eq!(tenant_status(&name).await, None, "registry row left behind");
    let schema = format!("ns_tenant_{name}");
    let rows = c
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .unwrap();
    assert!(rows.is_empty(), "schema left behind");

    // A refused key leaves nothing either, and the name stays free.
    let rsa = OpensslKey::generate_rsa();
    let free = unique_name("machx");
    err(
        &app.post(
            "/auth/provision",
            None,
            json!({"tenant": free, "username": "agent", "public_key": rsa.public_pem()}),
        )
        .await,
        400,
        "KEY_PUBLIC_KEY_INVALID",
    );
    assert_eq!(tenant_status(&free).await, None);
    okd(
        &app.post(
            "/auth/provision",
            None,
            json!({"tenant": free, "username": "agent", "public_key": key.public_pem()}),
        )
        .await,
        201,
    );
    // Taken now.
    err(
        &app.post(
            "/auth/provision",
            None,
            json!({"tenant": free, "username": "agent", "public_key": key.public_pem()}),
        )
        .await,
        409,
        "TENANT_EXISTS",
    );
}

#[tokio::test]
async fn one_attempt_per_challenge_under_concurrency() {
    let app = spawn_app().await;
    let (m, d) = provision(&app, "machcc").await;
    let cid = d["challenge"]["challenge_id"].as_str().unwrap().to_owned();
    let sig = m.key.sign(d["challenge"]["nonce"].as_str().unwrap());
    let attempts = (0..6).map(|_| verify(&app, &m.tenant, &cid, &sig));
    let answers = futures::future::join_all(attempts).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one attempt wins");
    for r in answers.iter().filter(|r| r.status != 200) {
        err(r, 401, "AUTH_CHALLENGE_INVALID");
    }
}

#[tokio::test]
async fn provision_shares_the_tenant_creation_limits() {
    // A budget of 2 per hour for an address of its own (the budget store outlives the server).
    let app = abbotik_testkit::spawn_app_with(&[
        ("ABBOTIK_RATE_TENANT_CREATE_PER_HOUR", "2"),
        ("ABBOTIK_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let ip = abbotik_testkit::unique_ip();
    let key = OpensslKey::generate();
    let send = |path: &'static str, body: Value| {
        app.client
            .post(app.url(path))
            .header("x-forwarded-for", ip.as_str())
            .json(&body)
            .send()
    };
    let pw = abbotik_testkit::TEST_PASSWORD;
    let r = send(
        "/auth/register",
        json!({"tenant": unique_name("rlp"), "username": "a", "password": pw}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let provision_body =
        || json!({"tenant": unique_name("rlp"), "username": "a", "public_key": key.public_pem()});
    let r = send("/auth/provision", provision_body()).await.unwrap();
    assert_eq!(r.status(), 201);
    let r = send("/auth/provision", provision_body()).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["data"]["scope"], "tenant_create");
    // Register spends from the same budget.
    let r = send(
        "/auth/register",
        json!({"tenant": unique_name("rlp"), "username": "a", "password": pw}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);

    // At most N pending tenants in the deployment (the two above count: 1 is full).
    let full = abbotik_testkit::spawn_app_with(&[("ABBOTIK_MAX_PENDING_TENANTS", "1")]).await;
    let r = full.post("/auth/provision", None, provision_body()).await;
    let d = err(&r, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(d["reason"], "pending_tenants");
}

#[tokio::test]
async fn provisioning_as_root_attaches_the_key_to_the_root_user() {
    let app = spawn_app().await;
    let key = OpensslKey::generate();
    let tenant = unique_name("machroot");
    let r = app
        .post(
            "/auth/provision",
            None,
            json!({"tenant": tenant, "username": "root", "public_key": key.public_pem()}),
        )
        .await;
    let d = okd(&r, 201);
    let root = "00000000-0000-0000-0000-000000000000";
    assert_eq!(d["user"]["id"], root);
    assert_eq!(d["key"]["name"], Value::Null);
    let key_id = d["key"]["id"].as_str().unwrap();
    let token = machine_token(&app, &tenant, key_id, &key).await;
    let me = okd(&app.get("/api/user/me", Some(&token)).await, 200);
    assert_eq!(me["id"], root);
    assert_eq!(me["access"], "root");
}
