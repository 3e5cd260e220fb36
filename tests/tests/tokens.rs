//! Credentials beyond the password login (issue 4): bearer API keys (A3.7), sudo and
//! impersonation tokens (A3.9), introspection, and every way a forged, stale or revoked token
//! is refused (A3.2) — each refusal checked on the very next request.

use abbotik_domain::auth::jwt::{Claims, KeyRing};
use abbotik_testkit::{
    err, okd, spawn_app, spawn_app_with, test_db, TestApp, TestTenant, TEST_PASSWORD,
};
use serde_json::{json, Value};

const TEST_KEY: (&str, &str) = ("t1", "test-secret-0123456789abcdef0123456789abcdef");

/// A user of `access` with a password, logged in: (id, token).
async fn user_with_role(
    app: &TestApp,
    t: &TestTenant,
    username: &str,
    access: &str,
) -> (String, String) {
    let (id, token) = t.add_user(app, username, access).await;
    (id, token.expect("the new user logs in"))
}

async fn new_key(app: &TestApp, token: &str, body: Value) -> Value {
    okd(&app.post("/api/keys", Some(token), body).await, 201)
}

async fn items_model(app: &TestApp, t: &TestTenant) {
    let r = app
        .post(
            "/api/describe/items",
            t.token(),
            json!({"fields": {"name": {"type": "text"}}}),
        )
        .await;
    okd(&r, 201);
}

#[tokio::test]
async fn api_key_lifecycle() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    items_model(&app, &t).await;
    let k = new_key(&app, &t.token, json!({"name": "ci", "access": "edit"})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 47);
    assert!(key.starts_with("abk_"));
    assert_eq!(k["prefix"], key[..12]);
    assert_eq!(k["access"], "edit");
    assert!(k["warning"]
        .as_str()
        .unwrap()
        .contains("cannot be shown again"));
    // Only a hash is stored.
    let db = test_db().await;
    let stored: String = db
        .query_one(
            "SELECT key_hash FROM abbotik_control.api_keys WHERE id = $1::text::uuid",
            &[&k["id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&key[4..]));

    // The key works as a bearer, as the owner, with min(owner, key) as its role.
    let me = okd(&app.get("/api/user/me", Some(&key)).await, 200);
    assert_eq!(me["username"], "owner");
    let i = okd(&app.get("/api/user/introspect", Some(&key)).await, 200);
    assert_eq!(i["auth"]["auth_type"], "api_key");
    assert_eq!(i["auth"]["api_key_id"], k["id"]);
    assert_eq!(i["user"]["access"], "edit");
    assert_eq!(i["auth"]["expires_at"], Value::Null);
    let created = okd(
        &app.post("/api/data/items", Some(&key), json!([{"name": "a"}]))
            .await,
        201,
    );
    let id = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        okd(
            &app.get(&format!("/api/data/items/{id}"), Some(&key)).await,
            200
        )["name"],
        "a"
    );
    // edit < full: no trashing, and no sudo for schema changes.
    err(
        &app.call("DELETE", &format!("/api/data/items/{id}"), Some(&key), None)
            .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &app.post("/api/describe/other", Some(&key), json!({})).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    // A key never mints a key with more access than itself.
    let e = err(
        &app.post("/api/keys", Some(&key), json!({"access": "full"}))
            .await,
        400,
        "KEY_ACCESS_INVALID",
    );
    assert_eq!(e["field"], "access");
    let child = new_key(&app, &key, json!({"access": "read"})).await;
    let child_key = child["key"].as_str().unwrap().to_owned();
    err(
        &app.post("/api/data/items", Some(&child_key), json!([{"name": "b"}]))
            .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );

    // Listing never shows the secret.
    let list = okd(&app.get("/api/keys", t.token()).await, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&key[12..]));
    assert!(list[0].get("key").is_none());

    // Revocation acts on the next request; a second revocation is a conflict.
    let path = format!("/api/keys/{}", k["id"].as_str().unwrap());
    let r = okd(&app.call("DELETE", &path, t.token(), None).await, 200);
    assert_eq!(r["revoked"], true);
    err(
        &app.get(&format!("/api/data/items/{id}"), Some(&key)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
    err(
        &app.get("/api/user/me", Some(&key)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
    err(
        &app.call("DELETE", &path, t.token(), None).await,
        409,
        "KEY_ALREADY_REVOKED",
    );
    err(
        &app.call(
            "DELETE",
            "/api/keys/00000000-0000-4000-8000-000000000000",
            t.token(),
            None,
        )
        .await,
        404,
        "KEY_NOT_FOUND",
    );
    err(
        &app.call("DELETE", "/api/keys/nope", t.token(), None).await,
        404,
        "KEY_NOT_FOUND",
    );

    // revoke-all counts the live ones only.
    new_key(&app, &t.token, json!({})).await;
    let n = okd(
        &app.post("/api/keys/revoke-all", t.token(), json!({})).await,
        200,
    );
    assert_eq!(n["revoked"], 2);
    err(
        &app.get("/api/user/me", Some(&child_key)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
}

#[tokio::test]
async fn api_key_refusals() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    err(
        &app.get(
            "/api/user/me",
            Some("abk_unknownunknownunknownunknownunknownunknownu"),
        )
        .await,
        401,
        "AUTH_TOKEN_INVALID",
    );
    err(
        &app.get("/api/user/me", Some("abk_short")).await,
        401,
        "AUTH_TOKEN_INVALID",
    );
    for bad in [
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
        json!({"expires_at": "tomorrow"}),
    ] {
        err(
            &app.post("/api/keys", t.token(), bad).await,
            400,
            "KEY_EXPIRES_AT_INVALID",
        );
    }
    err(
        &app.post("/api/keys", t.token(), json!({"access": "god"}))
            .await,
        400,
        "KEY_ACCESS_INVALID",
    );
    // An edit user asking for a full key: the general no-escalation rule.
    let (_, edit_token) = user_with_role(&app, &t, "editor", "edit").await;
    let e = err(
        &app.post("/api/keys", Some(&edit_token), json!({"access": "full"}))
            .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(e["required"], "full");

    // Expired: the clock passes expires_at (moved into the past in the database).
    let k = new_key(
        &app,
        &t.token,
        json!({"expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_owned();
    okd(&app.get("/api/user/me", Some(&key)).await, 200);
    let db = test_db().await;
    db.execute(
        "UPDATE abbotik_control.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::text::uuid",
        &[&k["id"].as_str().unwrap()],
    )
    .await
    .unwrap();
    err(
        &app.get("/api/user/me", Some(&key)).await,
        401,
        "AUTH_TOKEN_EXPIRED",
    );

    // The owner deactivated, the tenant suspended: refused on the next request.
    let k2 = new_key(&app, &edit_token, json!({})).await;
    let key2 = k2["key"].as_str().unwrap().to_owned();
    okd(&app.get("/api/user/me", Some(&key2)).await, 200);
    t.update_user("editor", "trashed_at = now()").await;
    err(
        &app.get("/api/user/me", Some(&key2)).await,
        401,
        "AUTH_USER_INACTIVE",
    );
    let k3 = new_key(&app, &t.token, json!({})).await;
    let key3 = k3["key"].as_str().unwrap().to_owned();
    db.execute(
        "UPDATE abbotik_control.tenants SET status = 'suspended' WHERE name = $1",
        &[&t.name],
    )
    .await
    .unwrap();
    err(
        &app.get("/api/user/me", Some(&key3)).await,
        401,
        "TENANT_INACTIVE",
    );
}

#[tokio::test]
async fn api_key_of_another_tenant_reaches_nothing_of_this_one() {
    let app = spawn_app().await;
    let a = TestTenant::new(&app).await;
    let b = TestTenant::new(&app).await;
    items_model(&app, &a).await;
    let rec = okd(
        &app.post("/api/data/items", a.token(), json!([{"name": "secret"}]))
            .await,
        201,
    );
    let id = rec[0]["id"].as_str().unwrap().to_owned();
    let bk = new_key(&app, &b.token, json!({})).await;
    let bkey = bk["key"].as_str().unwrap().to_owned();
    // B's key is B: A's model, record and keys do not exist for it.
    err(
        &app.get(&format!("/api/data/items/{id}"), Some(&bkey)).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &app.post("/api/data/items", Some(&bkey), json!([{"name": "x"}]))
            .await,
        404,
        "MODEL_NOT_FOUND",
    );
    let ak = new_key(&app, &a.token, json!({})).await;
    err(
        &app.call(
            "DELETE",
            &format!("/api/keys/{}", ak["id"].as_str().unwrap()),
            Some(&bkey),
            None,
        )
        .await,
        404,
        "KEY_NOT_FOUND",
    );
    err(
        &app.get(&format!("/api/keys?user_id={}", a.user_id), Some(&bkey))
            .await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    // A key row moved to another tenant in the database does not follow: the identity check
    // requires the key's tenant and user to be the token's.
    let db = test_db().await;
    db.execute(
        "UPDATE abbotik_control.api_keys SET tenant_id = $1::text::uuid WHERE id = $2::text::uuid",
        &[&a.tenant_id, &bk["id"].as_str().unwrap()],
    )
    .await
    .unwrap();
    let r = app.get(&format!("/api/data/items/{id}"), Some(&bkey)).await;
    assert!(r.status == 401 || r.status == 404, "{}", r.text);
    assert!(!r.text.contains("secret"));
    // A's record is untouched.
    assert_eq!(
        okd(
            &app.get(&format!("/api/data/items/{id}"), a.token()).await,
            200
        )["name"],
        "secret"
    );
}

#[tokio::test]
async fn sudo_tokens() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (_, full) = user_with_role(&app, &t, "fuller", "full").await;
    let (_, read) = user_with_role(&app, &t, "reader", "read").await;
    err(
        &app.post("/api/describe/widgets", Some(&full), json!({}))
            .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    let s = okd(
        &app.post(
            "/api/user/sudo",
            Some(&full),
            json!({"reason": "schema change"}),
        )
        .await,
        200,
    );
    for k in [
        "sudo_token",
        "expires_in",
        "token_type",
        "access_level",
        "is_sudo",
        "warning",
    ] {
        assert!(s.get(k).is_some(), "{k}");
    }
    assert_eq!(s["expires_in"], 900);
    assert_eq!(s["access_level"], "full");
    assert_eq!(s["reason"], "schema change");
    let sudo = s["sudo_token"].as_str().unwrap().to_owned();
    okd(
        &app.post("/api/describe/widgets", Some(&sudo), json!({}))
            .await,
        201,
    );
    let i = okd(&app.get("/api/user/introspect", Some(&sudo)).await, 200);
    assert_eq!(i["auth"]["is_sudo"], true);
    let none = okd(
        &app.post("/api/user/sudo", Some(&full), json!({})).await,
        200,
    );
    assert_eq!(none["reason"], Value::Null);
    err(
        &app.post("/api/user/sudo", Some(&read), json!({})).await,
        403,
        "AUTH_SUDO_FORBIDDEN",
    );
    // Refreshing a sudo token gives an ordinary one.
    let r = okd(
        &app.post("/auth/refresh", None, json!({"token": sudo}))
            .await,
        200,
    );
    let plain = r["token"].as_str().unwrap().to_owned();
    err(
        &app.post("/api/describe/gadgets", Some(&plain), json!({}))
            .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    // Demoted below full: the sudo token stops being sudo on the next request.
    t.update_user("fuller", "access = 'edit'").await;
    err(
        &app.post("/api/describe/gadgets", Some(&sudo), json!({}))
            .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    // A sudo token minted from an API key dies with the key.
    let k = new_key(&app, &t.token, json!({"access": "full"})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let ks = okd(
        &app.post("/api/user/sudo", Some(&key), json!({})).await,
        200,
    );
    let key_sudo = ks["sudo_token"].as_str().unwrap().to_owned();
    let i = okd(&app.get("/api/user/introspect", Some(&key_sudo)).await, 200);
    assert_eq!(i["auth"]["auth_type"], "api_key");
    assert_eq!(i["user"]["access"], "full");
    okd(
        &app.post("/api/describe/gizmos", Some(&key_sudo), json!({}))
            .await,
        201,
    );
    okd(
        &app.call(
            "DELETE",
            &format!("/api/keys/{}", k["id"].as_str().unwrap()),
            t.token(),
            None,
        )
        .await,
        200,
    );
    err(
        &app.get("/api/user/me", Some(&key_sudo)).await,
        401,
        "AUTH_KEY_REVOKED",
    );
}

#[tokio::test]
async fn impersonation_tokens() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (bob_id, bob) = user_with_role(&app, &t, "bob", "edit").await;
    let (_, alice_full) = user_with_role(&app, &t, "alice", "full").await;
    err(
        &app.post(
            "/api/user/fake",
            Some(&alice_full),
            json!({"username": "bob"}),
        )
        .await,
        403,
        "AUTH_FAKE_FORBIDDEN",
    );
    err(
        &app.post(
            "/api/user/fake",
            t.token(),
            json!({"user_id": null, "username": null}),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(
        &app.post("/api/user/fake", t.token(), json!({"user_id": t.user_id}))
            .await,
        400,
        "AUTH_FAKE_SELF",
    );
    err(
        &app.post("/api/user/fake", t.token(), json!({"username": "nobody"}))
            .await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    // user_id wins when both are given.
    let f = okd(
        &app.post(
            "/api/user/fake",
            t.token(),
            json!({"user_id": bob_id, "username": "alice"}),
        )
        .await,
        200,
    );
    assert_eq!(f["target_user"]["username"], "bob");
    assert_eq!(f["target_user"]["access"], "edit");
    assert_eq!(f["faked_by"]["username"], "owner");
    assert_eq!(f["expires_in"], 900);
    let fake = f["fake_token"].as_str().unwrap().to_owned();
    let me = okd(&app.get("/api/user/me", Some(&fake)).await, 200);
    assert_eq!(me["username"], "bob");
    let i = okd(&app.get("/api/user/introspect", Some(&fake)).await, 200);
    assert_eq!(i["auth"]["is_fake"], true);
    assert_eq!(i["auth"]["faked_by"], t.user_id.as_str());
    // Never sudo; cannot refresh, sudo, impersonate, or manage keys.
    err(
        &app.post("/api/describe/things", Some(&fake), json!({}))
            .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    err(
        &app.post("/auth/refresh", None, json!({"token": fake}))
            .await,
        403,
        "AUTH_REFRESH_UNSUPPORTED",
    );
    err(
        &app.post("/api/user/sudo", Some(&fake), json!({})).await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    err(
        &app.post("/api/user/fake", Some(&fake), json!({"username": "alice"}))
            .await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    err(
        &app.post("/api/keys", Some(&fake), json!({})).await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    err(
        &app.get("/api/keys", Some(&fake)).await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    let _ = bob;
    // The impersonator deactivated: the token dies on the next request.
    let db = test_db().await;
    db.execute(
        &format!(
            "UPDATE \"ns_tenant_{}\".users SET trashed_at = now() WHERE id = $1::text::uuid",
            t.name
        ),
        &[&t.user_id],
    )
    .await
    .unwrap();
    err(
        &app.get("/api/user/me", Some(&fake)).await,
        401,
        "AUTH_USER_INACTIVE",
    );
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn forged_and_stale_jwts_are_refused() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let parts: Vec<&str> = t.token.split('.').collect();
    // Tampered payload (role raised, signature kept).
    let mut claims: Value = serde_json::from_slice(&base64_decode(parts[1])).unwrap();
    claims["username"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    err(
        &app.get("/api/user/me", Some(&tampered)).await,
        401,
        "AUTH_TOKEN_INVALID",
    );
    // alg none, with and without a signature segment.
    let none_header = b64url(br#"{"alg":"none","typ":"JWT","kid":"t1"}"#);
    for tok in [
        format!("{none_header}.{}.", parts[1]),
        format!("{none_header}.{}", parts[1]),
    ] {
        err(
            &app.get("/api/user/me", Some(&tok)).await,
            401,
            "AUTH_TOKEN_INVALID",
        );
    }
    // Unknown kid; a token of another tenant's id with this tenant's name.
    let ring = KeyRing::new(&[("zz".into(), TEST_KEY.1.as_bytes().to_vec())]).unwrap();
    let c: Claims = serde_json::from_value(claims.clone()).unwrap();
    err(
        &app.get("/api/user/me", Some(&ring.sign(&c).unwrap())).await,
        401,
        "AUTH_TOKEN_INVALID",
    );
    let good_ring = KeyRing::new(&[(TEST_KEY.0.into(), TEST_KEY.1.as_bytes().to_vec())]).unwrap();
    let mut other = c.clone();
    other.username = "owner".into();
    other.tenant_id = uuid::Uuid::new_v4().to_string();
    err(
        &app.get("/api/user/me", Some(&good_ring.sign(&other).unwrap()))
            .await,
        401,
        "TENANT_INACTIVE",
    );
    // Expired.
    let mut old = c.clone();
    old.username = "owner".into();
    old.exp = old.iat - 10;
    err(
        &app.get("/api/user/me", Some(&good_ring.sign(&old).unwrap()))
            .await,
        401,
        "AUTH_TOKEN_EXPIRED",
    );

    // Key rotation: a server whose ring still holds the old key accepts the old token; one
    // that retired it refuses it.
    let rotated = spawn_app_with(&[(
        "ABBOTIK_AUTH_JWT_KEYS",
        "t2:another-secret-0123456789abcdef0123456789ab,t1:test-secret-0123456789abcdef0123456789abcdef",
    )])
    .await;
    okd(&rotated.get("/api/user/me", t.token()).await, 200);
    let retired = spawn_app_with(&[(
        "ABBOTIK_AUTH_JWT_KEYS",
        "t2:another-secret-0123456789abcdef0123456789ab",
    )])
    .await;
    err(
        &retired.get("/api/user/me", t.token()).await,
        401,
        "AUTH_TOKEN_INVALID",
    );
    // The rotated server signs with its new key; the old-only server cannot read that.
    let r = okd(
        &rotated
            .post(
                "/auth/login",
                None,
                json!({"tenant": t.name, "username": "owner", "password": TEST_PASSWORD}),
            )
            .await,
        200,
    );
    let new_token = r["token"].as_str().unwrap();
    okd(&retired.get("/api/user/me", Some(new_token)).await, 200);
    err(
        &app.get("/api/user/me", Some(new_token)).await,
        401,
        "AUTH_TOKEN_INVALID",
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' | b'+' => 62,
        _ => 63,
    } as u32;
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | val(*c) << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[path = "support/machine.rs"]
mod machine;
#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

/// Two server processes on the same PostgreSQL (and Redis): a credential revoked through one
/// is refused by the other on the very next request — identity is re-read on every request.
#[tokio::test]
async fn revocation_through_one_process_is_refused_by_another_at_once() {
    use abbotik_testkit::process::ApiProcess;
    let app = spawn_app().await; // migrates the test database
    let t = TestTenant::new(&app).await;
    let (a, b) = tokio::join!(ApiProcess::start(&[]), ApiProcess::start(&[]));

    // An API key made through A works on B until A revokes it.
    let k = okd(&a.post("/api/keys", t.token(), json!({})).await, 201);
    let key = k["key"].as_str().unwrap().to_owned();
    okd(&b.get("/api/user/me", Some(&key)).await, 200);
    let path = format!("/api/keys/{}", k["id"].as_str().unwrap());
    okd(&a.call("DELETE", &path, t.token(), None).await, 200);
    err(
        &b.get("/api/user/me", Some(&key)).await,
        401,
        "AUTH_KEY_REVOKED",
    );

    // A machine token obtained through B dies when its key is revoked through A.
    let (m, _) = machine::provision(&a, "xproc").await;
    let spare = openssl_ed25519::OpensslKey::generate();
    let token = machine::machine_token(&b, &m.tenant, &m.key_id, &m.key).await;
    okd(&b.get("/api/user/me", Some(&token)).await, 200);
    // A second key first: the last key of a password-less user cannot be revoked.
    okd(&machine::add_key(&a, &token, &spare, None).await, 201);
    okd(
        &a.call(
            "DELETE",
            &format!("/api/user/machine-keys/{}", m.key_id),
            Some(&token),
            None,
        )
        .await,
        200,
    );
    err(
        &b.get("/api/user/me", Some(&token)).await,
        401,
        "AUTH_KEY_REVOKED",
    );

    // A user deactivated through A: its token is refused by B.
    let (uid, utoken) = user_with_role(&app, &t, "leaver", "edit").await;
    okd(&b.get("/api/user/me", Some(&utoken)).await, 200);
    okd(
        &a.call(
            "DELETE",
            &format!("/api/user/{uid}"),
            t.token(),
            Some(json!({"confirm": true, "reason": null})),
        )
        .await,
        200,
    );
    err(
        &b.get("/api/user/me", Some(&utoken)).await,
        401,
        "AUTH_USER_INACTIVE",
    );
}
