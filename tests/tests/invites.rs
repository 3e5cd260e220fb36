//! Invites (A3.5) against a running server: create/list/revoke and their errors, redemption
//! through `/auth/register/user` (single use, expiry, revocation, username and type checks,
//! tenant status), and the invitee's login with the invite's access.

#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

use abbotik_testkit::{err, okd, spawn_app, test_db, Resp, TestApp, TestTenant, TEST_PASSWORD};
use openssl_ed25519::OpensslKey;
use serde_json::{json, Value};

async fn call(app: &TestApp, m: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    app.call(m, path, Some(token), body).await
}

async fn invite(app: &TestApp, t: &TestTenant, body: Value) -> Value {
    okd(
        &call(app, "POST", "/api/user/invite", &t.token, Some(body)).await,
        201,
    )
}

fn register(t: &TestTenant, username: &str, code: &Value) -> Value {
    json!({"tenant": t.name, "username": username, "invite_code": code, "email": null, "password": "invitee password"})
}

#[tokio::test]
async fn invite_redeem_login() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let inv = invite(
        &app,
        &t,
        json!({"username": "bob", "invite_type": "human", "access": "edit", "access_read": ["x"], "access_edit": null, "access_full": null, "expires_in": null}),
    )
    .await;
    let code = inv["code"].clone();
    let c = code.as_str().unwrap();
    assert!(c.starts_with("inv_") && c.len() == 47, "{c}");
    assert_eq!(
        (
            inv["username"].as_str(),
            inv["invite_type"].as_str(),
            inv["access"].as_str()
        ),
        (Some("bob"), Some("human"), Some("edit"))
    );
    let exp = chrono_like_days(inv["expires_at"].as_str().unwrap());
    assert!((6.9..7.1).contains(&exp), "{exp}");
    // Defaults: either, read.
    let d = invite(&app, &t, json!({"username": "carl"})).await;
    assert_eq!(
        (d["invite_type"].as_str(), d["access"].as_str()),
        (Some("either"), Some("read"))
    );

    // Only the hash is stored.
    let db = test_db().await;
    let n: i64 = db
        .query_one(&format!("SELECT count(*) FROM \"ns_tenant_{}\".\"invites\" WHERE code_hash = encode(sha256($1::text::bytea), 'hex')", t.name), &[&c])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Listing: newest first, never the code.
    let list = call(&app, "GET", "/api/user/invite", &t.token, None).await;
    assert!(!list.text.contains(c));
    let l = okd(&list, 200);
    assert_eq!(l[0]["username"], "carl");
    assert_eq!(l[1]["invite_id"], inv["invite_id"]);
    assert_eq!(l[1]["used_at"], Value::Null);
    assert_eq!(
        okd(
            &call(
                &app,
                "GET",
                "/api/user/invite?limit=1&offset=1",
                &t.token,
                None
            )
            .await,
            200
        )[0]["username"],
        "bob"
    );

    // Wrong username, wrong type, unknown tenant, unknown code: all the same 401.
    err(
        &app.post("/auth/register/user", None, register(&t, "eve", &code))
            .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    let machine = invite(
        &app,
        &t,
        json!({"username": "bot", "invite_type": "machine"}),
    )
    .await;
    err(
        &app.post(
            "/auth/register/user",
            None,
            register(&t, "bot", &machine["code"]),
        )
        .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    let mut other = register(&t, "bob", &code);
    other["tenant"] = json!("no_such_tenant_xyz");
    err(
        &app.post("/auth/register/user", None, other).await,
        401,
        "AUTH_INVITE_INVALID",
    );
    err(
        &app.post(
            "/auth/register/user",
            None,
            register(&t, "bob", &json!("inv_nope")),
        )
        .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    // Body validation comes first.
    let mut short = register(&t, "bob", &code);
    short["password"] = json!("short");
    err(
        &app.post("/auth/register/user", None, short).await,
        400,
        "AUTH_PASSWORD_INVALID",
    );
    let mut bad = register(&t, "bob", &code);
    bad["email"] = json!("nope");
    err(
        &app.post("/auth/register/user", None, bad).await,
        400,
        "AUTH_EMAIL_INVALID",
    );
    err(
        &app.post(
            "/auth/register/user",
            None,
            json!({"tenant": t.name, "username": "bob"}),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );

    // Redeem once.
    let r = okd(
        &app.post("/auth/register/user", None, register(&t, "bob", &code))
            .await,
        201,
    );
    assert_eq!(
        r,
        json!({"tenant_id": t.tenant_id, "tenant": t.name, "username": "bob", "status": "active"})
    );
    err(
        &app.post("/auth/register/user", None, register(&t, "bob", &code))
            .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    let login = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": t.name, "username": "bob", "password": "invitee password"}),
        )
        .await;
    let l = okd(&login, 200);
    assert_eq!(l["user"]["access"], "edit");
    let me = okd(
        &call(
            &app,
            "GET",
            "/api/user/me",
            l["token"].as_str().unwrap(),
            None,
        )
        .await,
        200,
    );
    assert_eq!(
        (me["name"].as_str(), me["has_password"].as_bool()),
        (Some("bob"), Some(true))
    );
    let l = okd(
        &call(&app, "GET", "/api/user/invite", &t.token, None).await,
        200,
    );
    let used = l
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["invite_id"] == inv["invite_id"])
        .unwrap();
    assert!(used["used_at"].is_string());
    // The username is now taken for new invites.
    err(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &t.token,
            Some(json!({"username": "bob"})),
        )
        .await,
        409,
        "AUTH_USERNAME_EXISTS",
    );
}

/// Days from now until an RFC 3339 `Z` timestamp (coarse, for default-lifetime checks).
fn chrono_like_days(ts: &str) -> f64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let parsed = ts_to_epoch(ts);
    (parsed - t) / 86400.0
}

fn ts_to_epoch(ts: &str) -> f64 {
    // YYYY-MM-DDTHH:MM:SS.ffffffZ
    let (y, mo, d) = (&ts[0..4], &ts[5..7], &ts[8..10]);
    let (h, mi, s) = (&ts[11..13], &ts[14..16], &ts[17..19]);
    let (y, mo, d): (i64, i64, i64) = (y.parse().unwrap(), mo.parse().unwrap(), d.parse().unwrap());
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400
        + h.parse::<i64>().unwrap() * 3600
        + mi.parse::<i64>().unwrap() * 60
        + s.parse::<i64>().unwrap()) as f64
}

#[tokio::test]
async fn expired_revoked_and_suspended() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let db = test_db().await;
    // Expired (moved into the past in SQL).
    let old = invite(&app, &t, json!({"username": "old", "expires_in": 60})).await;
    db.execute(
        &format!("UPDATE \"ns_tenant_{}\".\"invites\" SET expires_at = now() - interval '1 second' WHERE username = 'old'", t.name),
        &[],
    )
    .await
    .unwrap();
    err(
        &app.post(
            "/auth/register/user",
            None,
            register(&t, "old", &old["code"]),
        )
        .await,
        401,
        "AUTH_INVITE_EXPIRED",
    );
    // Revoked: the code stops working at once; revoking again answers the same.
    let rv = invite(&app, &t, json!({"username": "rev"})).await;
    let path = format!("/api/user/invite/{}", rv["invite_id"].as_str().unwrap());
    let r = okd(&call(&app, "DELETE", &path, &t.token, None).await, 200);
    assert_eq!(r, json!({"invite_id": rv["invite_id"], "revoked": true}));
    okd(&call(&app, "DELETE", &path, &t.token, None).await, 200);
    err(
        &app.post(
            "/auth/register/user",
            None,
            register(&t, "rev", &rv["code"]),
        )
        .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    err(
        &call(
            &app,
            "DELETE",
            "/api/user/invite/0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10",
            &t.token,
            None,
        )
        .await,
        404,
        "AUTH_INVITE_NOT_FOUND",
    );
    err(
        &call(&app, "DELETE", "/api/user/invite/nope", &t.token, None).await,
        404,
        "AUTH_INVITE_NOT_FOUND",
    );
    // A suspended tenant refuses redemption after the invite itself checked out.
    let s = invite(&app, &t, json!({"username": "sus"})).await;
    db.execute(
        "UPDATE abbotik_control.tenants SET status = 'suspended' WHERE name = $1",
        &[&t.name],
    )
    .await
    .unwrap();
    err(
        &app.post("/auth/register/user", None, register(&t, "sus", &s["code"]))
            .await,
        401,
        "TENANT_INACTIVE",
    );
    db.execute(
        "UPDATE abbotik_control.tenants SET status = 'active' WHERE name = $1",
        &[&t.name],
    )
    .await
    .unwrap();
    // Nothing was consumed by the refusals.
    okd(
        &app.post("/auth/register/user", None, register(&t, "sus", &s["code"]))
            .await,
        201,
    );
}

#[tokio::test]
async fn who_may_manage_invites() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    for (u, access) in [("ed", "edit"), ("fuller", "full")] {
        okd(
            &call(
                &app,
                "POST",
                "/api/user",
                &t.token,
                Some(json!({"username": u, "access": access, "password": TEST_PASSWORD})),
            )
            .await,
            201,
        );
    }
    let tok = |u: &'static str| {
        let app = &app;
        let name = t.name.clone();
        async move {
            let r = app
                .post(
                    "/auth/login",
                    None,
                    json!({"tenant": name, "username": u, "password": TEST_PASSWORD}),
                )
                .await;
            okd(&r, 200)["token"].as_str().unwrap().to_owned()
        }
    };
    let ed = tok("ed").await;
    let full = tok("fuller").await;
    // Listing needs role full; creating and revoking need sudo.
    err(
        &call(&app, "GET", "/api/user/invite", &ed, None).await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    okd(
        &call(&app, "GET", "/api/user/invite", &full, None).await,
        200,
    );
    err(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &full,
            Some(json!({"username": "x"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    let inv = invite(&app, &t, json!({"username": "x"})).await;
    err(
        &call(
            &app,
            "DELETE",
            &format!("/api/user/invite/{}", inv["invite_id"].as_str().unwrap()),
            &full,
            None,
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    // A sudo full user invites up to full, never root.
    let r = call(&app, "POST", "/api/user/sudo", &full, Some(json!({}))).await;
    let s = okd(&r, 200)["sudo_token"].as_str().unwrap().to_owned();
    let d = err(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &s,
            Some(json!({"username": "y", "access": "root"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(
        (d["required"].as_str(), d["actual"].as_str()),
        (Some("root"), Some("full"))
    );
    okd(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &s,
            Some(json!({"username": "y", "access": "full"})),
        )
        .await,
        201,
    );
    for (body, status, code) in [
        (json!({}), 400, "VALIDATION_FIELD_MISSING"),
        (
            json!({"username": "Bad Name"}),
            400,
            "AUTH_USERNAME_INVALID",
        ),
        (
            json!({"username": "z", "invite_type": "robot"}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"username": "z", "access": "admin"}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"username": "z", "expires_in": 2_592_001}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"username": "z", "expires_in": 0}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (json!({"username": "owner"}), 409, "AUTH_USERNAME_EXISTS"),
    ] {
        err(
            &call(&app, "POST", "/api/user/invite", &t.token, Some(body)).await,
            status,
            code,
        );
    }
    okd(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &t.token,
            Some(json!({"username": "z", "expires_in": 2_592_000})),
        )
        .await,
        201,
    );
}

#[tokio::test]
async fn machines_join_with_provision_user() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let inv = invite(
        &app,
        &t,
        json!({"username": "ci_bot", "invite_type": "machine", "access": "edit"}),
    )
    .await;
    let human = invite(&app, &t, json!({"username": "hu", "invite_type": "human"})).await;
    let key = OpensslKey::generate();
    let body = |user: &str, code: &Value, pem: &str| json!({"tenant": t.name, "username": user, "invite_code": code, "public_key": pem, "algorithm": null, "key_name": "ci"});
    // A human invite does not admit a machine; a bad key is refused before the invite is read.
    err(
        &app.post(
            "/auth/provision/user",
            None,
            body("hu", &human["code"], &key.public_pem()),
        )
        .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    err(
        &app.post(
            "/auth/provision/user",
            None,
            body("ci_bot", &inv["code"], "not a key"),
        )
        .await,
        400,
        "KEY_PUBLIC_KEY_INVALID",
    );
    // Redeemed once: the user gets the invite's access, the key and a first challenge.
    let d = okd(
        &app.post(
            "/auth/provision/user",
            None,
            body("ci_bot", &inv["code"], &key.public_pem()),
        )
        .await,
        201,
    );
    assert_eq!(d["user"]["access"], "edit");
    assert_eq!(d["user"]["username"], "ci_bot");
    assert_eq!(d["key"]["fingerprint"], key.fingerprint());
    assert_eq!(d["status"], "active");
    err(
        &app.post(
            "/auth/provision/user",
            None,
            body("ci_bot", &inv["code"], &key.public_pem()),
        )
        .await,
        401,
        "AUTH_INVITE_INVALID",
    );
    let ch = &d["challenge"];
    let v = app
        .post("/auth/verify", None, json!({"tenant": t.name, "challenge_id": ch["challenge_id"], "signature": key.sign(ch["nonce"].as_str().unwrap())}))
        .await;
    let v = okd(&v, 200);
    let me = okd(
        &call(
            &app,
            "GET",
            "/api/user/me",
            v["token"].as_str().unwrap(),
            None,
        )
        .await,
        200,
    );
    assert_eq!(
        (
            me["username"].as_str(),
            me["access"].as_str(),
            me["has_password"].as_bool()
        ),
        (Some("ci_bot"), Some("edit"), Some(false))
    );
    // The same key again through another invite: KEY_DUPLICATE, and that invite stays unused.
    let again = invite(
        &app,
        &t,
        json!({"username": "ci_bot2", "invite_type": "either"}),
    )
    .await;
    err(
        &app.post(
            "/auth/provision/user",
            None,
            body("ci_bot2", &again["code"], &key.public_pem()),
        )
        .await,
        409,
        "KEY_DUPLICATE",
    );
    let other = OpensslKey::generate();
    okd(
        &app.post(
            "/auth/provision/user",
            None,
            body("ci_bot2", &again["code"], &other.public_pem()),
        )
        .await,
        201,
    );
}
