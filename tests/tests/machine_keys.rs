//! Machine keys (A3.6) over HTTP: key formats, duplicate fingerprints, revoked and expired
//! keys, the last-key guard, rotation overlap, role rules and the per-user key limit. Keys are
//! made by the `openssl` command line.

#[path = "support/machine.rs"]
mod machine;
#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

use abbotik_testkit::{err, okd, spawn_app, test_db, TestTenant};
use machine::{add_key, challenge, insert_user, machine_token, provision, verify};
use openssl_ed25519::OpensslKey;
use serde_json::{json, Value};

#[tokio::test]
async fn key_formats() {
    let app = spawn_app().await;
    let (m, _) = provision(&app, "machk").await;
    let token = machine_token(&app, &m.tenant, &m.key_id, &m.key).await;

    type Encode = Box<dyn Fn(&OpensslKey) -> String>;
    let formats: Vec<(&str, Encode)> = vec![
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
