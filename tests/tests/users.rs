//! Users (A3.8) against a running server: every route and its errors, the no-escalation
//! rules of A3.1, the last-root guard, deactivation cutting off live tokens at once,
//! impersonation limits, and tenant isolation.

use abbotik_testkit::{err, okd, spawn_app, Resp, TestApp, TestTenant, TEST_PASSWORD};
use serde_json::{json, Value};

const ZERO: &str = "00000000-0000-0000-0000-000000000000";

async fn call(app: &TestApp, m: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    app.call(m, path, Some(token), body).await
}

/// Creates a user with a password through `POST /api/user` and logs it in → (id, token).
async fn user(app: &TestApp, t: &TestTenant, username: &str, access: &str) -> (String, String) {
    let r = call(
        app,
        "POST",
        "/api/user",
        &t.token,
        Some(json!({"username": username, "access": access, "password": TEST_PASSWORD})),
    )
    .await;
    let id = okd(&r, 201)["id"].as_str().unwrap().to_owned();
    (id, login(app, t, username, TEST_PASSWORD).await)
}

async fn login(app: &TestApp, t: &TestTenant, username: &str, password: &str) -> String {
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": t.name, "username": username, "password": password}),
        )
        .await;
    okd(&r, 200)["token"].as_str().unwrap().to_owned()
}

async fn sudo(app: &TestApp, token: &str) -> String {
    let r = call(app, "POST", "/api/user/sudo", token, Some(json!({}))).await;
    okd(&r, 200)["sudo_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_list_read_and_validation() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tok = t.token.as_str();

    // Compatible clients send `auth`; `name` defaults to the username; no password yet.
    let c = okd(
        &call(
            &app,
            "POST",
            "/api/user",
            tok,
            Some(json!({"name": "Carol", "auth": "carol", "access": "edit"})),
        )
        .await,
        201,
    );
    assert_eq!(c["username"], "carol");
    assert_eq!(c["auth"], "carol");
    assert_eq!(c["name"], "Carol");
    assert_eq!(c["access"], "edit");
    assert_eq!(c["has_password"], false);
    assert_eq!(c["trashed_at"], Value::Null);
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    let d = okd(
        &call(
            &app,
            "POST",
            "/api/user",
            tok,
            Some(json!({"username": "dave", "email": null})),
        )
        .await,
        201,
    );
    assert_eq!(d["name"], "dave");
    assert_eq!(d["access"], "read");

    for (body, status, code) in [
        (json!({"username": "carol"}), 409, "AUTH_USERNAME_EXISTS"),
        (
            json!({"username": "Bad Name"}),
            400,
            "AUTH_USERNAME_INVALID",
        ),
        (
            json!({"username": "x1", "email": "nope"}),
            400,
            "AUTH_EMAIL_INVALID",
        ),
        (
            json!({"username": "x2", "password": "short"}),
            400,
            "AUTH_PASSWORD_INVALID",
        ),
        (
            json!({"username": "x3", "access": "admin"}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (
            json!({"username": "x4", "auth": "x5"}),
            400,
            "VALIDATION_FIELD_INVALID",
        ),
        (json!({"name": "Nobody"}), 400, "VALIDATION_FIELD_MISSING"),
        (json!([1]), 400, "VALIDATION_BODY_NOT_OBJECT"),
    ] {
        let r = call(&app, "POST", "/api/user", tok, Some(body.clone())).await;
        err(&r, status, code);
    }

    let all = okd(&call(&app, "GET", "/api/user", tok, None).await, 200);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "owner", "carol", "dave"]);
    let two = okd(
        &call(&app, "GET", "/api/user?limit=2&offset=1", tok, None).await,
        200,
    );
    assert_eq!(two[0]["username"], "owner");
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(
        okd(
            &call(&app, "GET", "/api/user?limit=0", tok, None).await,
            200
        ),
        json!([])
    );
    err(
        &call(&app, "GET", "/api/user?limit=1001", tok, None).await,
        400,
        "FILTER_INVALID_LIMIT",
    );
    err(
        &call(&app, "GET", "/api/user?offset=-1", tok, None).await,
        400,
        "FILTER_INVALID_OFFSET",
    );

    let carol = c["id"].as_str().unwrap();
    let one = okd(
        &call(&app, "GET", &format!("/api/user/{carol}"), tok, None).await,
        200,
    );
    assert_eq!(one, c);
    let me = okd(&call(&app, "GET", "/api/user/me", tok, None).await, 200);
    assert_eq!(me["username"], "owner");
    assert_eq!(me["has_password"], true);
    err(
        &call(&app, "GET", "/api/user/not-a-uuid", tok, None).await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    err(
        &call(
            &app,
            "GET",
            "/api/user/0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10",
            tok,
            None,
        )
        .await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    // `me` works wherever `:id` does.
    let renamed = okd(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            tok,
            Some(json!({"name": "The Owner"})),
        )
        .await,
        200,
    );
    assert_eq!(renamed["name"], "The Owner");

    // whoami answers 301 to /api/user/me (not followed here).
    let nofollow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = nofollow
        .get(app.url("/api/user/whoami"))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/api/user/me");
    let r = nofollow
        .get(app.url("/api/user/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn update_password_and_non_sudo_limits() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tok = t.token.as_str();
    let (ed, ed_tok) = user(&app, &t, "ed", "edit").await;
    let (fay, _) = user(&app, &t, "fay", "read").await;

    // Self: name and email; null clears the email, and is invalid on name.
    let u = okd(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            &ed_tok,
            Some(json!({"name": "Ed", "email": "ed@acme.io"})),
        )
        .await,
        200,
    );
    assert_eq!(
        (u["name"].as_str(), u["email"].as_str()),
        (Some("Ed"), Some("ed@acme.io"))
    );
    let u = okd(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{ed}"),
            &ed_tok,
            Some(json!({"email": null})),
        )
        .await,
        200,
    );
    assert_eq!(u["email"], Value::Null);
    err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            &ed_tok,
            Some(json!({"name": null})),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            &ed_tok,
            Some(json!({"email": "x"})),
        )
        .await,
        400,
        "AUTH_EMAIL_INVALID",
    );
    // Without sudo: no access/username, nobody else, no listing, no reading others.
    let d = err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            &ed_tok,
            Some(json!({"access": "root", "username": "boss"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    assert_eq!(d["fields"], json!(["access", "username"]));
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{fay}"),
            &ed_tok,
            Some(json!({"name": "x"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    err(
        &call(&app, "GET", "/api/user", &ed_tok, None).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    err(
        &call(
            &app,
            "POST",
            "/api/user",
            &ed_tok,
            Some(json!({"username": "z"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    err(
        &call(&app, "GET", &format!("/api/user/{fay}"), &ed_tok, None).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    err(
        &call(
            &app,
            "DELETE",
            &format!("/api/user/{fay}"),
            &ed_tok,
            Some(json!({"confirm": true})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    // Sudo (root): username and access; a taken username is refused.
    let u = okd(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{fay}"),
            tok,
            Some(json!({"username": "faye", "access": "edit"})),
        )
        .await,
        200,
    );
    assert_eq!(
        (
            u["username"].as_str(),
            u["auth"].as_str(),
            u["access"].as_str()
        ),
        (Some("faye"), Some("faye"), Some("edit"))
    );
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{fay}"),
            tok,
            Some(json!({"username": "ed"})),
        )
        .await,
        409,
        "AUTH_USERNAME_EXISTS",
    );
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{fay}"),
            tok,
            Some(json!({"access": null})),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    // The new access acts on the next request.
    let me = okd(
        &call(
            &app,
            "GET",
            "/api/user/me",
            &login(&app, &t, "faye", TEST_PASSWORD).await,
            None,
        )
        .await,
        200,
    );
    assert_eq!(me["access"], "edit");

    // Passwords: self needs the current one.
    let pw = format!("/api/user/{ed}/password");
    err(
        &call(
            &app,
            "POST",
            &pw,
            &ed_tok,
            Some(json!({"current_password": TEST_PASSWORD})),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(
        &call(
            &app,
            "POST",
            &pw,
            &ed_tok,
            Some(json!({"new_password": "a new passphrase"})),
        )
        .await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(
        &call(
            &app,
            "POST",
            &pw,
            &ed_tok,
            Some(json!({"current_password": "wrong password", "new_password": "a new passphrase"})),
        )
        .await,
        403,
        "AUTH_PASSWORD_MISMATCH",
    );
    err(
        &call(
            &app,
            "POST",
            &pw,
            &ed_tok,
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "short"})),
        )
        .await,
        400,
        "AUTH_PASSWORD_INVALID",
    );
    let r = okd(
        &call(
            &app,
            "POST",
            "/api/user/me/password",
            &ed_tok,
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "a new passphrase"})),
        )
        .await,
        200,
    );
    assert_eq!(r["id"], ed.as_str());
    assert!(r["password_changed_at"].as_str().unwrap().ends_with('Z'));
    login(&app, &t, "ed", "a new passphrase").await;
    // Someone else's password: sudo only, no current password needed.
    err(
        &call(
            &app,
            "POST",
            &format!("/api/user/{fay}/password"),
            &ed_tok,
            Some(json!({"new_password": "x password x"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
    okd(
        &call(
            &app,
            "POST",
            &format!("/api/user/{fay}/password"),
            tok,
            Some(json!({"current_password": null, "new_password": "set by root 123"})),
        )
        .await,
        200,
    );
    login(&app, &t, "faye", "set by root 123").await;
    err(
        &call(
            &app,
            "POST",
            "/api/user/0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10/password",
            tok,
            Some(json!({"new_password": "whatever 123"})),
        )
        .await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn deactivation_cuts_off_tokens_and_restore_brings_them_back() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tok = t.token.as_str();
    let (ed, ed_tok) = user(&app, &t, "ed", "edit").await;
    okd(&call(&app, "GET", "/api/user/me", &ed_tok, None).await, 200);

    let path = format!("/api/user/{ed}");
    err(
        &call(
            &app,
            "DELETE",
            &path,
            tok,
            Some(json!({"confirm": false, "reason": null})),
        )
        .await,
        400,
        "VALIDATION_CONFIRMATION_REQUIRED",
    );
    err(
        &call(&app, "DELETE", &path, tok, None).await,
        400,
        "VALIDATION_CONFIRMATION_REQUIRED",
    );
    let d = okd(
        &call(
            &app,
            "DELETE",
            &path,
            tok,
            Some(json!({"confirm": true, "reason": "left team"})),
        )
        .await,
        200,
    );
    assert_eq!(d["id"], ed.as_str());
    assert_eq!(d["reason"], "left team");
    assert!(d["deactivated_at"].as_str().unwrap().ends_with('Z'));
    // The very next request with the user's live token is refused.
    err(
        &call(&app, "GET", "/api/user/me", &ed_tok, None).await,
        401,
        "AUTH_USER_INACTIVE",
    );
    err(
        &call(&app, "GET", "/api/describe", &ed_tok, None).await,
        401,
        "AUTH_USER_INACTIVE",
    );
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": t.name, "username": "ed", "password": TEST_PASSWORD}),
        )
        .await;
    err(&r, 401, "AUTH_LOGIN_FAILED");
    // Gone from the list unless asked for; sudo still reads it.
    let live = okd(&call(&app, "GET", "/api/user", tok, None).await, 200);
    assert!(!live
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == ed.as_str()));
    let all = okd(
        &call(&app, "GET", "/api/user?include_trashed=true", tok, None).await,
        200,
    );
    let gone = all
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ed.as_str())
        .unwrap();
    assert!(gone["trashed_at"].is_string());
    assert!(okd(&call(&app, "GET", &path, tok, None).await, 200)["trashed_at"].is_string());
    err(
        &call(&app, "DELETE", &path, tok, Some(json!({"confirm": true}))).await,
        404,
        "AUTH_USER_NOT_FOUND",
    );
    err(
        &call(&app, "PUT", &path, tok, Some(json!({"name": "x"}))).await,
        404,
        "AUTH_USER_NOT_FOUND",
    );

    // Restore through the trash (sudo): the old token works again.
    let r = call(&app, "POST", &format!("/api/trashed/users/{ed}"), tok, None).await;
    assert_eq!(okd(&r, 200)["trashed_at"], Value::Null);
    okd(&call(&app, "GET", "/api/user/me", &ed_tok, None).await, 200);

    // Self-deactivation.
    okd(
        &call(
            &app,
            "DELETE",
            "/api/user/me",
            &ed_tok,
            Some(json!({"confirm": true})),
        )
        .await,
        200,
    );
    err(
        &call(&app, "GET", "/api/user/me", &ed_tok, None).await,
        401,
        "AUTH_USER_INACTIVE",
    );
}

#[tokio::test]
async fn no_escalation_for_sudo_full_users() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (ed, _) = user(&app, &t, "ed", "edit").await;
    let (_, full_tok) = user(&app, &t, "fuller", "full").await;
    let s = sudo(&app, &full_tok).await;
    let owner = t.user_id.as_str();

    // Creating or granting root.
    let d = err(
        &call(
            &app,
            "POST",
            "/api/user",
            &s,
            Some(json!({"username": "boss", "access": "root"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    assert_eq!(
        (d["required"].as_str(), d["actual"].as_str()),
        (Some("root"), Some("full"))
    );
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{ed}"),
            &s,
            Some(json!({"access": "root"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            &s,
            Some(json!({"access": "root"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    // Acting on a root user.
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{owner}"),
            &s,
            Some(json!({"name": "pwned"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &call(
            &app,
            "POST",
            &format!("/api/user/{owner}/password"),
            &s,
            Some(json!({"new_password": "taken over!"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &call(
            &app,
            "DELETE",
            &format!("/api/user/{owner}"),
            &s,
            Some(json!({"confirm": true})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    err(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &s,
            Some(json!({"username": "boss", "access": "root"})),
        )
        .await,
        403,
        "AUTH_ROLE_INSUFFICIENT",
    );
    // What is within the role works.
    let u = okd(
        &call(
            &app,
            "POST",
            "/api/user",
            &s,
            Some(json!({"username": "gus", "access": "full"})),
        )
        .await,
        201,
    );
    assert_eq!(u["access"], "full");
    okd(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{ed}"),
            &s,
            Some(json!({"access": "full"})),
        )
        .await,
        200,
    );
    // Reading a root user is not acting on it.
    okd(
        &call(&app, "GET", &format!("/api/user/{owner}"), &s, None).await,
        200,
    );
    // Without the sudo token the same full user is not sudo.
    err(
        &call(
            &app,
            "POST",
            "/api/user",
            &full_tok,
            Some(json!({"username": "hal"})),
        )
        .await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
}

#[tokio::test]
async fn last_root_and_builtin_root() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tok = t.token.as_str();
    // The owner is the only root that can log in: it can neither demote nor deactivate itself.
    err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            tok,
            Some(json!({"access": "full"})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    err(
        &call(
            &app,
            "DELETE",
            "/api/user/me",
            tok,
            Some(json!({"confirm": true})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    // The built-in root, never.
    err(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{ZERO}"),
            tok,
            Some(json!({"access": "edit"})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    err(
        &call(
            &app,
            "DELETE",
            &format!("/api/user/{ZERO}"),
            tok,
            Some(json!({"confirm": true})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    // A root without credentials does not count: deactivating it is fine and changes nothing.
    let ghost = okd(
        &call(
            &app,
            "POST",
            "/api/user",
            tok,
            Some(json!({"username": "ghost", "access": "root"})),
        )
        .await,
        201,
    );
    okd(
        &call(
            &app,
            "PUT",
            &format!("/api/user/{}", ghost["id"].as_str().unwrap()),
            tok,
            Some(json!({"access": "edit"})),
        )
        .await,
        200,
    );
    err(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            tok,
            Some(json!({"access": "full"})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    // With a second root that has a password, the owner may step down.
    let (_, r2) = user(&app, &t, "root2", "root").await;
    let me = okd(
        &call(
            &app,
            "PUT",
            "/api/user/me",
            tok,
            Some(json!({"access": "full"})),
        )
        .await,
        200,
    );
    assert_eq!(me["access"], "full");
    // Now root2 is the last one.
    err(
        &call(
            &app,
            "DELETE",
            "/api/user/me",
            &r2,
            Some(json!({"confirm": true})),
        )
        .await,
        409,
        "AUTH_LAST_ROOT",
    );
    // The demoted owner is no longer sudo (role re-read on every request).
    err(
        &call(&app, "GET", "/api/user", tok, None).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
}

#[tokio::test]
async fn impersonation_tokens_are_restricted() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let (_, _) = user(&app, &t, "ed", "edit").await;
    let r = call(
        &app,
        "POST",
        "/api/user/fake",
        &t.token,
        Some(json!({"user_id": null, "username": "ed"})),
    )
    .await;
    let fake = okd(&r, 200)["fake_token"].as_str().unwrap().to_owned();
    let me = okd(&call(&app, "GET", "/api/user/me", &fake, None).await, 200);
    assert_eq!(me["username"], "ed");
    err(
        &call(
            &app,
            "POST",
            "/api/user/me/password",
            &fake,
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "hijacked pw"})),
        )
        .await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    err(
        &call(
            &app,
            "POST",
            "/api/user/invite",
            &fake,
            Some(json!({"username": "x"})),
        )
        .await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    err(
        &call(
            &app,
            "DELETE",
            "/api/user/invite/0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10",
            &fake,
            None,
        )
        .await,
        403,
        "AUTH_IMPERSONATION_RESTRICTED",
    );
    // A fake token of a root target is still never sudo.
    err(
        &call(&app, "GET", "/api/user", &fake, None).await,
        403,
        "AUTH_SUDO_REQUIRED",
    );
}

#[tokio::test]
async fn tenants_never_see_each_others_users() {
    let app = spawn_app().await;
    let a = TestTenant::new(&app).await;
    let b = TestTenant::new(&app).await;
    let (ed, _) = user(&app, &a, "ed_a", "edit").await;
    let list = okd(&call(&app, "GET", "/api/user", &b.token, None).await, 200);
    assert!(!list
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "ed_a" || u["id"] == a.user_id.as_str()));
    for (m, p, body) in [
        ("GET", format!("/api/user/{ed}"), None),
        ("PUT", format!("/api/user/{ed}"), Some(json!({"name": "x"}))),
        (
            "POST",
            format!("/api/user/{ed}/password"),
            Some(json!({"new_password": "cross tenant"})),
        ),
        (
            "DELETE",
            format!("/api/user/{ed}"),
            Some(json!({"confirm": true})),
        ),
    ] {
        err(
            &call(&app, m, &p, &b.token, body).await,
            404,
            "AUTH_USER_NOT_FOUND",
        );
    }
}
