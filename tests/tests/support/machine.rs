//! Shared steps of the machine-identity tests: provision a tenant with an openssl key, get
//! challenges, verify, obtain machine tokens, add keys, read tenant state behind the API.

#![allow(dead_code)]

use crate::openssl_ed25519::OpensslKey;
use abbotik_testkit::{okd, test_db, unique_name, Http, Resp};
use serde_json::{json, Value};

/// A provisioned machine tenant, its root owner and its first key.
pub struct Machine {
    pub tenant: String,
    pub tenant_id: String,
    pub user_id: String,
    pub key_id: String,
    pub fingerprint: String,
    pub key: OpensslKey,
}

pub async fn provision(app: &Http, prefix: &str) -> (Machine, Value) {
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

pub async fn challenge(app: &Http, tenant: &str, key_id: &str) -> Value {
    app.post(
        "/auth/challenge",
        None,
        json!({"tenant": tenant, "key_id": key_id, "fingerprint": null}),
    )
    .await
    .body["data"]
        .clone()
}

pub async fn verify(app: &Http, tenant: &str, challenge_id: &str, sig: &str) -> Resp {
    app.post(
        "/auth/verify",
        None,
        json!({"tenant": tenant, "challenge_id": challenge_id, "signature": sig}),
    )
    .await
}

/// Challenge + verify with `key`: the machine token.
pub async fn machine_token(app: &Http, tenant: &str, key_id: &str, key: &OpensslKey) -> String {
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

pub async fn tenant_status(tenant: &str) -> Option<String> {
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
pub async fn add_key(app: &Http, token: &str, key: &OpensslKey, user_id: Option<&str>) -> Resp {
    app.post(
        "/api/user/machine-keys",
        Some(token),
        json!({"public_key": key.public_pem(), "user_id": user_id, "name": "k"}),
    )
    .await
}

/// Inserts a user straight into the tenant (the user routes are another issue's).
pub async fn insert_user(tenant: &str, username: &str, access: &str) -> String {
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
