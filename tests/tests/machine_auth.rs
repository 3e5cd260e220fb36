//! Machine identity (A3.4, A3.6) end to end: keys made and signatures computed by the
//! `openssl` command line (a separate program), provisioning, challenge/verify, the negative
//! paths of each step, key formats, and machine-key management (add, rotate, revoke, roles).

#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

use abbotik_testkit::{err, okd, spawn_app, test_db, unique_name, TestApp, TestTenant};
use openssl_ed25519::OpensslKey;
use serde_json::{json, Value};

/// A provisioned machine tenant, its root owner and its first key.
struct Machine {
    tenant: String,
    tenant_id: String,
    user_id: String,
    key_id: String,
    fingerprint: String,
    key: OpensslKey,
}

async fn provision(app: &TestApp, prefix: &str) -> (Machine, Value) {
    let key = OpensslKey::generate();
    let tenant = unique_name(prefix);
    let r = app
        .post(
            "/auth/provision",
            None,
            json!({"tenant": tenant, "username": "agent", "public_key": key.public_pem(),
                   "algorithm": null, "key_name": "builder-1", "invite_code": null}),
        )
        .await;
    let d = okd(&r, 201);
    let m = Machine {
        tenant: tenant.clone(),
        tenant_id: d["tenant_id"].as_str().unwrap().to_owned(),
        user_id: d["user"]["id"].as_str().unwrap().to_owned(),
        key_id: d["key"]["id"].as_str().unwrap().to_owned(),
        fingerprint: d["key"]["fingerprint"].as_str().unwrap().to_owned(),
        key,
    };
    (m, d)
}

async fn challenge(app: &TestApp, tenant: &str, key_id: &str) -> Value {
    app.post(
        "/auth/challenge",
        None,
        json!({"tenant": tenant, "key_id": key_id, "fingerprint": null}),
    )
    .await
    .body["data"]
        .clone()
}

async fn verify(
    app: &TestApp,
    tenant: &str,
    challenge_id: &str,
    sig: &str,
) -> abbotik_testkit::Resp {
    app.post(
        "/auth/verify",
        None,
        json!({"tenant": tenant, "challenge_id": challenge_id, "signature": sig}),
    )
    .await
}

/// Challenge + verify with `key`: the machine token.
async fn machine_token(app: &TestApp, tenant: &str, key_id: &str, key: &OpensslKey) -> String {
    let c = challenge(app, tenant, key_id).await;
    let nonce = c["nonce"].as_str().expect("nonce");
    let r = verify(
        app,
        tenant,
        c["challenge_id"].as_str().unwrap(),
        &key.sign(nonce),
    )
    .await;
    okd(&r, 200)["token"].as_str().unwrap().to_owned()
}

async fn tenant_status(tenant: &str) -> Option<String> {
    test_db()
        .await
        .query_opt(
            "SELECT status FROM abbotik_control.tenants WHERE name = $1",
            &[&tenant],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Adds `key` for `user_id` (None: the caller) with `token`.
async fn add_key(
    app: &TestApp,
    token: &str,
    key: &OpensslKey,
    user_id: Option<&str>,
) -> abbotik_testkit::Resp {
    app.post(
        "/api/user/machine-keys",
        Some(token),
        json!({"public_key": key.public_pem(), "user_id": user_id, "name": "k"}),
    )
    .await
}

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
            while s.len() % 4 != 0 {
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
async fn key_formats() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machk").await;
    let token = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;

    let formats: Vec<(&str, Box<dyn Fn(&OpensslKey) -> String>)> = vec![
        (
            "pem, 10-char CRLF lines",
            Box::new(|k: &OpensslKey| {
                let b = k.der_base64();
                let body: Vec<String> = b
                    .as_bytes()
                    .chunks(10)
                    .map(|c| String::from_utf8(c.to_vec()).unwrap())
                    .collect();
                format!(
                    "-----BEGIN PUBLIC KEY-----\r\n{}\r\n-----END PUBLIC KEY-----",
                    body.join("\r\n")
                )
            }),
        ),
        (
            "pem, one line, no final newline",
            Box::new(|k: &OpensslKey| {
                format!(
                    "-----BEGIN PUBLIC KEY-----{}-----END PUBLIC KEY-----",
                    k.der_base64()
                )
            }),
        ),
        (
            "base64 std padded",
            Box::new(|k: &OpensslKey| k.der_base64()),
        ),
        (
            "base64 std unpadded",
            Box::new(|k: &OpensslKey| k.der_base64().trim_end_matches('=').to_owned()),
        ),
        (
            "base64url padded",
            Box::new(|k: &OpensslKey| k.der_base64().replace('+', "-").replace('/', "_")),
        ),
        (
            "base64url unpadded",
            Box::new(|k: &OpensslKey| {
                k.der_base64()
                    .replace('+', "-")
                    .replace('/', "_")
                    .trim_end_matches('=')
                    .to_owned()
            }),
        ),
    ];
    for (what, f) in formats {
        let k = OpensslKey::generate();
        let r = app
            .post(
                "/api/user/machine-keys",
                Some(&token),
                json!({"public_key": f(&k), "algorithm": "ed25519", "name": what}),
            )
            .await;
        let d = okd(&r, 201);
        assert_eq!(d["fingerprint"], k.fingerprint(), "{what}");
        assert_eq!(d["name"], what);
        // The key authenticates.
        let id = d["id"].as_str().unwrap().to_owned();
        machine_token(&app, &m.tenant, &id, &k).await;
    }

    let rsa = OpensslKey::generate_rsa();
    let other = OpensslKey::generate();
    for bad in [
        rsa.public_pem(),
        rsa.der_base64(),
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n".to_owned(),
        other.public_pem().replace("-----END PUBLIC KEY-----\n", ""),
        other.der_base64()[..40].to_owned(),
        "".to_owned(),
    ] {
        let r = app
            .post(
                "/api/user/machine-keys",
                Some(&token),
                json!({"public_key": bad}),
            )
            .await;
        err(&r, 400, "KEY_PUBLIC_KEY_INVALID");
    }
    err(
        &app.post(
            "/api/user/machine-keys",
            Some(&token),
            json!({"public_key": other.public_pem(), "algorithm": "rsa"}),
        )
        .await,
        400,
        "KEY_ALGORITHM_UNSUPPORTED",
    );
    err(
        &app.post(
            "/api/user/machine-keys",
            Some(&token),
            json!({"public_key": other.public_pem(), "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await,
        400,
        "KEY_EXPIRES_AT_INVALID",
    );
    err(
        &app.post(
            "/api/user/machine-keys",
            Some(&token),
            json!({"public_key": other.public_pem(), "expires_at": "soon"}),
        )
        .await,
        400,
        "KEY_EXPIRES_AT_INVALID",
    );
}

#[tokio::test]
async fn duplicate_fingerprint() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machd").await;
    let token = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    // The provisioned key itself, in another encoding.
    let r = app
        .post(
            "/api/user/machine-keys",
            Some(&token),
            json!({"public_key": m.key.der_base64()}),
        )
        .await;
    err(&r, 409, "KEY_DUPLICATE");
    // A revoked key's fingerprint stays taken.
    let k2 = OpensslKey::generate();
    let id2 = okd(&add_key(&app, &token, &k2, None).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    okd(
        &app.call(
            "DELETE",
            &format!("/api/user/machine-keys/{id2}"),
            Some(&token),
            None,
        )
        .await,
        200,
    );
    err(
        &add_key(&app, &token, &k2, None).await,
        409,
        "KEY_DUPLICATE",
    );
    // Unique per tenant only: another tenant may register the same key.
    let other = TestTenant::new(&app).await;
    okd(&add_key(&app, &other.token, &m.key, None).await, 201);
}

#[tokio::test]
async fn revoked_and_expired_keys() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machv").await;
    let t1 = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let k2 = OpensslKey::generate();
    let id2 = okd(&add_key(&app, &t1, &k2, None).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A challenge issued before the revocation cannot be used after it.
    let pending = challenge(&app, &m.tenant, &m.key_id).await;
    let r = app
        .call(
            "DELETE",
            &format!("/api/user/machine-keys/{}", m.key_id),
            Some(&t1),
            None,
        )
        .await;
    let d = okd(&r, 200);
    assert_eq!(d["revoked"], true);
    assert!(d["revoked_at"].is_string());
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": m.key_id}),
        )
        .await,
        401,
        "AUTH_KEY_REVOKED",
    );
    let sig = m.key.sign(pending["nonce"].as_str().unwrap());
    err(
        &verify(
            &app,
            &m.tenant,
            pending["challenge_id"].as_str().unwrap(),
            &sig,
        )
        .await,
        401,
        "AUTH_KEY_REVOKED",
    );

    // Expired key: valid until expires_at, then AUTH_KEY_EXPIRED at /auth/challenge.
    let t2 = machine_token(&app, &m.tenant, &id2, &k2).await;
    let k3 = OpensslKey::generate();
    let r = app
        .post(
            "/api/user/machine-keys",
            Some(&t2),
            json!({"public_key": k3.public_pem(), "expires_at": "2099-01-01T00:00:00+01:00"}),
        )
        .await;
    let d = okd(&r, 201);
    assert_eq!(d["expires_at"], "2098-12-31T23:00:00.000000Z");
    let id3 = d["id"].as_str().unwrap().to_owned();
    machine_token(&app, &m.tenant, &id3, &k3).await;
    let secs: i64 = test_db()
        .await
        .query_one(
            "SELECT extract(epoch FROM '2099-01-02T00:00:00Z'::timestamptz - now())::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    app.running.state.machine.clock().advance(secs);
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": id3}),
        )
        .await,
        401,
        "AUTH_KEY_EXPIRED",
    );
    // An expired key can be rotated (the remediation the error gives).
    let k4 = OpensslKey::generate();
    let r = app
        .post(
            "/api/user/machine-keys/rotate",
            Some(&t2),
            json!({"key_id": id3, "new_public_key": k4.public_pem(), "revoke_old_after_seconds": 0}),
        )
        .await;
    okd(&r, 201);
}

#[tokio::test]
async fn revoked_key_token_is_refused_on_next_request() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machq").await;
    let t1 = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let k2 = OpensslKey::generate();
    let id2 = okd(&add_key(&app, &t1, &k2, None).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t2 = machine_token(&app, &m.tenant, &id2, &k2).await;
    okd(
        &app.call(
            "DELETE",
            &format!("/api/user/machine-keys/{}", m.key_id),
            Some(&t2),
            None,
        )
        .await,
        200,
    );
    err(
        &app.get("/api/user/me", Some(&t1)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
    okd(&app.get("/api/user/me", Some(&t2)).await, 200);
}

#[tokio::test]
async fn last_key_guard() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machl").await;
    let t1 = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let appr = &app;
    let del = move |id: String, t: String| async move {
        appr.call(
            "DELETE",
            &format!("/api/user/machine-keys/{id}"),
            Some(&t),
            None,
        )
        .await
    };
    // The owner has no password and one key.
    err(
        &del(m.key_id.clone(), t1.clone()).await,
        409,
        "KEY_LAST_ACTIVE",
    );
    let k2 = OpensslKey::generate();
    let id2 = okd(&add_key(&app, &t1, &k2, None).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    okd(&del(m.key_id.clone(), t1.clone()).await, 200);
    let t2 = machine_token(&app, &m.tenant, &id2, &k2).await;
    err(
        &del(m.key_id.clone(), t2.clone()).await,
        409,
        "KEY_ALREADY_REVOKED",
    );
    err(&del(id2.clone(), t2.clone()).await, 409, "KEY_LAST_ACTIVE");
    // A key in its rotation overlap does not count as the one that stays.
    let k3 = OpensslKey::generate();
    let r = app
        .post(
            "/api/user/machine-keys/rotate",
            Some(&t2),
            json!({"key_id": id2, "new_public_key": k3.public_pem()}),
        )
        .await;
    let id3 = okd(&r, 201)["new_key_id"].as_str().unwrap().to_owned();
    err(&del(id3.clone(), t2.clone()).await, 409, "KEY_LAST_ACTIVE");
    okd(&del(id2.clone(), t2.clone()).await, 200);
    // The revoked key's token is refused from the next request on.
    err(
        &app.get("/api/user/me", Some(&t2)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
    // Unknown and malformed ids.
    let t3 = machine_token(&app, &m.tenant, &id3, &k3).await;
    err(
        &del(uuid::Uuid::new_v4().to_string(), t3.clone()).await,
        404,
        "KEY_NOT_FOUND",
    );
    err(&del("nope".into(), t3.clone()).await, 404, "KEY_NOT_FOUND");

    // A user with a password may revoke all their keys.
    let human = TestTenant::new(&app).await;
    let k = OpensslKey::generate();
    let id = okd(&add_key(&app, &human.token, &k, None).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    okd(&del(id, human.token.clone()).await, 200);
}

#[tokio::test]
async fn rotation_overlap() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machrot").await;
    let t1 = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let k2 = OpensslKey::generate();
    for bad in [json!(-1), json!(86401), json!("300"), json!(1.5)] {
        let r = app
            .post(
                "/api/user/machine-keys/rotate",
                Some(&t1),
                json!({"key_id": m.key_id, "new_public_key": k2.public_pem(), "revoke_old_after_seconds": bad}),
            )
            .await;
        err(&r, 400, "VALIDATION_FIELD_INVALID");
    }
    err(
        &app.post(
            "/api/user/machine-keys/rotate",
            Some(&t1),
            json!({"key_id": uuid::Uuid::new_v4(), "new_public_key": k2.public_pem()}),
        )
        .await,
        404,
        "KEY_NOT_FOUND",
    );
    let r = app
        .post(
            "/api/user/machine-keys/rotate",
            Some(&t1),
            json!({"key_id": m.key_id, "new_public_key": k2.public_pem(), "algorithm": "ed25519",
                   "new_name": "builder-2", "revoke_old_after_seconds": 300}),
        )
        .await;
    let d = okd(&r, 201);
    assert_eq!(d["old_key_id"], m.key_id);
    assert_eq!(d["fingerprint"], k2.fingerprint());
    let id2 = d["new_key_id"].as_str().unwrap().to_owned();
    let revokes_at = d["revokes_at"].as_str().unwrap().to_owned();
    assert!(
        revokes_at.ends_with('Z') && revokes_at.len() == 27,
        "{revokes_at}"
    );
    let within: bool = test_db()
        .await
        .query_one(
            "SELECT $1::text::timestamptz BETWEEN now() + interval '290 seconds' AND now() + interval '310 seconds'",
            &[&revokes_at],
        )
        .await
        .unwrap()
        .get(0);
    assert!(within, "revokes_at = now + 300 s: {revokes_at}");

    // Both keys work during the overlap; the list shows the scheduled revocation.
    machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let t2 = machine_token(&app, &m.tenant, &id2, &k2).await;
    let list = okd(&app.get("/api/user/machine-keys", Some(&t2)).await, 200);
    let old = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == m.key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(old["revoked_at"], revokes_at.as_str());
    let new = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id2.as_str())
        .unwrap()
        .clone();
    assert_eq!(new["name"], "builder-2");
    assert!(new["revoked_at"].is_null());

    // After the overlap the old key is revoked; the new one works.
    app.running.state.machine.clock().advance(301);
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": m.key_id}),
        )
        .await,
        401,
        "AUTH_KEY_REVOKED",
    );
    machine_token(&app, &m.tenant, &id2, &k2).await;
    let k3 = OpensslKey::generate();
    err(
        &app.post(
            "/api/user/machine-keys/rotate",
            Some(&t2),
            json!({"key_id": m.key_id, "new_public_key": k3.public_pem()}),
        )
        .await,
        409,
        "KEY_ALREADY_REVOKED",
    );

    // Overlap 0: the old key is revoked at once; the name carries over when not given.
    let r = app
        .post(
            "/api/user/machine-keys/rotate",
            Some(&t2),
            json!({"key_id": id2, "new_public_key": k3.public_pem(), "revoke_old_after_seconds": 0}),
        )
        .await;
    let d = okd(&r, 201);
    let id3 = d["new_key_id"].as_str().unwrap().to_owned();
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": id2}),
        )
        .await,
        401,
        "AUTH_KEY_REVOKED",
    );
    let t3 = machine_token(&app, &m.tenant, &id3, &k3).await;
    let list = okd(&app.get("/api/user/machine-keys", Some(&t3)).await, 200);
    let k = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id3.as_str())
        .unwrap()
        .clone();
    assert_eq!(k["name"], "builder-2");
    // Duplicate on rotation.
    err(
        &app.post(
            "/api/user/machine-keys/rotate",
            Some(&t3),
            json!({"key_id": id3, "new_public_key": m.key.public_pem()}),
        )
        .await,
        409,
        "KEY_DUPLICATE",
    );
}

/// Inserts a user straight into the tenant (the user routes are another issue's).
async fn insert_user(tenant: &str, username: &str, access: &str) -> String {
    let id = uuid::Uuid::new_v4();
    test_db()
        .await
        .execute(
            &format!("INSERT INTO \"ns_tenant_{tenant}\".\"users\" (id, name, username, access) VALUES ($1, $2, $2, $3)"),
            &[&id, &username, &access],
        )
        .await
        .unwrap();
    id.to_string()
}

#[tokio::test]
async fn roles_and_visibility() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machu").await;
    let root = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    let bob = insert_user(&m.tenant, "bob", "edit").await;
    let carol = insert_user(&m.tenant, "carol", "full").await;
    let kb = OpensslKey::generate();
    let kc = OpensslKey::generate();
    let bob_key = okd(&add_key(&app, &root, &kb, Some(&bob)).await, 201);
    assert_eq!(bob_key["user_id"], bob.as_str());
    let carol_key = okd(&add_key(&app, &root, &kc, Some(&carol)).await, 201);
    let tb = machine_token(&app, &m.tenant, bob_key["id"].as_str().unwrap(), &kb).await;
    let tc = machine_token(&app, &m.tenant, carol_key["id"].as_str().unwrap(), &kc).await;
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k["user_id"].as_str().unwrap().to_owned())
            .collect()
    };

    // bob (edit): own keys only.
    let l = okd(&app.get("/api/user/machine-keys", Some(&tb)).await, 200);
    assert_eq!(ids(&l), vec![bob.clone()]);
    let d = err(
        &app.get(
            &format!("/api/user/machine-keys?user_id={carol}"),
            Some(&tb),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(d["required"], "full");
    assert_eq!(d["actual"], "edit");
    let k = OpensslKey::generate();
    err(
        &add_key(&app, &tb, &k, Some(&carol)).await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &app.call(
            "DELETE",
            &format!(
                "/api/user/machine-keys/{}",
                carol_key["id"].as_str().unwrap()
            ),
            Some(&tb),
            None,
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );

    // carol (full): everyone at or below full, never root's keys.
    let l = okd(&app.get("/api/user/machine-keys", Some(&tc)).await, 200);
    let mut got = ids(&l);
    got.sort();
    let mut want = vec![bob.clone(), carol.clone()];
    want.sort();
    assert_eq!(got, want);
    let l = okd(
        &app.get(&format!("/api/user/machine-keys?user_id={bob}"), Some(&tc))
            .await,
        200,
    );
    assert_eq!(ids(&l), vec![bob.clone()]);
    let d = err(
        &app.get(
            &format!("/api/user/machine-keys?user_id={}", m.user_id),
            Some(&tc),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(d["required"], "root");
    err(
        &add_key(&app, &tc, &k, Some(&m.user_id)).await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &app.call(
            "DELETE",
            &format!("/api/user/machine-keys/{}", m.key_id),
            Some(&tc),
            None,
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &app.post(
            "/api/user/machine-keys/rotate",
            Some(&tc),
            json!({"key_id": m.key_id, "new_public_key": k.public_pem()}),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    let kb2 = okd(&add_key(&app, &tc, &k, Some(&bob)).await, 201);
    assert_eq!(kb2["user_id"], bob.as_str());

    // root sees all three users' keys; paging.
    let l = okd(&app.get("/api/user/machine-keys", Some(&root)).await, 200);
    assert_eq!(l.as_array().unwrap().len(), 4);
    let l = okd(
        &app.get("/api/user/machine-keys?limit=1&offset=1", Some(&root))
            .await,
        200,
    );
    assert_eq!(l.as_array().unwrap().len(), 1);
    let l = okd(
        &app.get("/api/user/machine-keys?limit=0", Some(&root)).await,
        200,
    );
    assert_eq!(l, json!([]));
    err(
        &app.get("/api/user/machine-keys?limit=1001", Some(&root))
            .await,
        400,
        "FILTER_INVALID_LIMIT",
    );
    err(
        &app.get("/api/user/machine-keys?offset=-1", Some(&root))
            .await,
        400,
        "FILTER_INVALID_OFFSET",
    );
    err(
        &app.get("/api/user/machine-keys?user_id=nope", Some(&root))
            .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    let ghost = uuid::Uuid::new_v4();
    err(
        &app.get(
            &format!("/api/user/machine-keys?user_id={ghost}"),
            Some(&root),
        )
        .await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    let k5 = OpensslKey::generate();
    err(
        &add_key(&app, &root, &k5, Some(&ghost.to_string())).await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    err(
        &app.get("/api/user/machine-keys", None).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );

    // Impersonation tokens cannot change keys (when the fake route is there).
    let r = app
        .post("/api/user/fake", Some(&root), json!({"user_id": bob}))
        .await;
    if r.status == 200 {
        let fake = r.body["data"]["fake_token"].as_str().unwrap().to_owned();
        err(
            &add_key(&app, &fake, &k5, None).await,
            403,
            "AUTH_IMPERSONATION_RESTRICTED",
        );
        err(
            &app.call(
                "DELETE",
                &format!("/api/user/machine-keys/{}", bob_key["id"].as_str().unwrap()),
                Some(&fake),
                None,
            )
            .await,
            403,
            "AUTH_IMPERSONATION_RESTRICTED",
        );
        err(
            &app.post(
                "/api/user/machine-keys/rotate",
                Some(&fake),
                json!({"key_id": bob_key["id"], "new_public_key": k5.public_pem()}),
            )
            .await,
            403,
            "AUTH_IMPERSONATION_RESTRICTED",
        );
    }

    // A deactivated owner: the key cannot get a challenge.
    test_db()
        .await
        .execute(
            &format!("UPDATE \"ns_tenant_{}\".\"users\" SET trashed_at = now() WHERE id = $1::text::uuid", m.tenant),
            &[&bob],
        )
        .await
        .unwrap();
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": bob_key["id"]}),
        )
        .await,
        401,
        "AUTH_USER_INACTIVE",
    );
}

#[tokio::test]
async fn key_limit_and_inactive_tenant() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machlim").await;
    let token = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;
    // 99 more active keys straight in the table (fingerprints that no real key has).
    test_db()
        .await
        .execute(
            &format!(
                "INSERT INTO \"ns_tenant_{}\".\"machine_keys\" (user_id, public_key, fingerprint)
                 SELECT $1::text::uuid, '\\x00'::bytea, 'fp_fake' || g FROM generate_series(1, 99) g",
                m.tenant
            ),
            &[&m.user_id],
        )
        .await
        .unwrap();
    let k = OpensslKey::generate();
    err(
        &add_key(&app, &token, &k, None).await,
        409,
        "KEY_LIMIT_REACHED",
    );
    // Rotation replaces a key: it stays within the limit.
    let r = app
        .post(
            "/api/user/machine-keys/rotate",
            Some(&token),
            json!({"key_id": m.key_id, "new_public_key": k.public_pem()}),
        )
        .await;
    okd(&r, 201);

    // A suspended tenant: TENANT_INACTIVE to a caller naming one of its keys.
    test_db()
        .await
        .execute(
            "UPDATE abbotik_control.tenants SET status = 'suspended' WHERE name = $1",
            &[&m.tenant],
        )
        .await
        .unwrap();
    err(
        &app.post(
            "/auth/challenge",
            None,
            json!({"tenant": m.tenant, "key_id": m.key_id}),
        )
        .await,
        401,
        "TENANT_INACTIVE",
    );
}
