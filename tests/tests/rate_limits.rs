//! Rate limits (B5), black-box: `429 RATE_LIMITED` with `Retry-After`, the `RateLimit-*`
//! headers and the envelope for each scope (`auth`, `tenant`, `key`; `tenant_create` is in
//! auth.rs); `0` disables a limiter; per-tenant overrides from the control table; the
//! in-process fallback when Redis is unreachable (`/ready` degraded, not 503); and two real
//! `abbot-api run` processes sharing one tenant budget through Redis.
//!
//! Budgets are chosen so that no assertion depends on timing luck: refill rates of one request
//! per 10 s where a test counts exact remainders, and bounds (never exact counts) where time
//! passes on purpose. Per-address budgets use an address of their own (`unique_ip`) through
//! `ABBOTIK_TRUSTED_PROXIES`, since 127.0.0.1 is shared by every test.

use abbotik_testkit::process::{api_command, ApiProcess};
use abbotik_testkit::{
    err, okd, spawn_app, spawn_app_with, test_db, unique_ip, Resp, TestApp, TestTenant,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn header(r: &Resp, name: &str) -> Option<u64> {
    r.headers.get(name)?.to_str().ok()?.parse().ok()
}

/// `(limit, remaining, reset)` of a response.
fn rl(r: &Resp) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        header(r, "ratelimit-limit"),
        header(r, "ratelimit-remaining"),
        header(r, "ratelimit-reset"),
    )
}

/// A refusal: 429, `Retry-After` ≥ 1, the envelope with scope/limit/retry_after, and the
/// `RateLimit-*` headers naming the refusing budget.
#[track_caller]
fn refused(r: &Resp, scope: &str, limit: u64) {
    let d = err(r, 429, "RATE_LIMITED");
    assert_eq!(d["scope"], scope, "{}", r.text);
    assert_eq!(d["limit"], limit, "{}", r.text);
    let retry = header(r, "retry-after").expect("Retry-After");
    assert!(retry >= 1, "{}", r.text);
    assert_eq!(d["retry_after"], retry);
    assert_eq!(r.body["docs"], "/docs/limits");
    let (l, rem, reset) = rl(r);
    assert_eq!(l, Some(limit));
    assert_eq!(rem, Some(0));
    assert!(reset.is_some_and(|s| s >= 1));
}

#[tokio::test]
async fn tenant_budget_refuses_with_headers_and_envelope() {
    // One request per 10 s, burst 3: exact remainders whatever the machine's speed.
    let app = spawn_app_with(&[
        ("ABBOTIK_RATE_TENANT_RPS", "0.1"),
        ("ABBOTIK_RATE_TENANT_BURST", "3"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    for want in [2, 1, 0] {
        let r = app.get("/api/user/me", t.token()).await;
        okd(&r, 200);
        let (l, rem, reset) = rl(&r);
        assert_eq!((l, rem), (Some(3), Some(want)), "{}", r.text);
        assert_eq!(reset, Some(if want > 0 { 0 } else { 10 }));
    }
    let r = app.get("/api/user/me", t.token()).await;
    refused(&r, "tenant", 3);
    assert_eq!(
        r.body["message"],
        format!("Rate limit exceeded for tenant {}", t.name)
    );
    assert!(r.headers.contains_key("x-request-id"));
    // Unknown routes and bad methods under /api count too; /health, /ready, /docs never.
    for path in ["/health", "/ready", "/docs", "/llms.txt", "/openapi.json"] {
        let r = app.get(path, t.token()).await;
        assert_ne!(r.status, 429, "{path}");
        assert!(!r.headers.contains_key("ratelimit-limit"), "{path}");
    }
    // Another tenant has its own budget.
    let other = TestTenant::new(&app).await;
    okd(&app.get("/api/user/me", other.token()).await, 200);
    // Without a credential the request is not counted: authentication answers it.
    let r = app.get("/api/user/me", None).await;
    err(&r, 401, "AUTH_TOKEN_REQUIRED");
    assert!(!r.headers.contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn key_budget_is_per_credential() {
    let app = spawn_app_with(&[
        ("ABBOTIK_RATE_KEY_RPS", "0.1"),
        ("ABBOTIK_RATE_KEY_BURST", "2"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    let r = app.get("/api/user/limits", t.token()).await;
    let d = okd(&r, 200);
    assert_eq!(d["key"], json!({"rps": 0.1, "burst": 2, "remaining": 1}));
    assert_eq!(d["tenant"]["burst"], 1_000_000);
    assert_eq!(d["fs"], json!({"quota_bytes": null, "used_bytes": 0}));
    // The key budget (1 left) is the more constrained one.
    assert_eq!(rl(&r), (Some(2), Some(1), Some(0)));
    okd(&app.get("/api/user/me", t.token()).await, 200);
    let r = app.get("/api/user/me", t.token()).await;
    refused(&r, "key", 2);
    assert_eq!(r.body["message"], "Rate limit exceeded for this credential");
}

#[tokio::test]
async fn auth_budget_is_per_client_address() {
    let app = spawn_app_with(&[
        ("ABBOTIK_RATE_AUTH_PER_MIN", "6"),
        ("ABBOTIK_RATE_AUTH_BURST", "2"),
        ("ABBOTIK_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let ip = unique_ip();
    let login = |ip: String| {
        let app: &TestApp = &app;
        async move {
            let r = app
                .client
                .post(app.url("/auth/login"))
                .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
                .json(&json!({"tenant": "nobody_here", "username": "x", "password": "wrong password"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            Resp {
                status,
                headers,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                text,
            }
        }
    };
    for want in [1, 0] {
        let r = login(ip.clone()).await;
        err(&r, 401, "AUTH_LOGIN_FAILED");
        assert_eq!(rl(&r).0, Some(2));
        assert_eq!(rl(&r).1, Some(want));
    }
    let r = login(ip.clone()).await;
    refused(&r, "auth", 2);
    // The spoofed leftmost address is not the client: the budget follows the proxy's view.
    let r = login(unique_ip()).await;
    err(&r, 401, "AUTH_LOGIN_FAILED");
}

#[tokio::test]
async fn zero_disables_every_limiter() {
    let app = spawn_app_with(&[
        ("ABBOTIK_RATE_AUTH_PER_MIN", "0"),
        ("ABBOTIK_RATE_AUTH_BURST", "1"),
        ("ABBOTIK_RATE_TENANT_RPS", "0"),
        ("ABBOTIK_RATE_KEY_RPS", "5"),
        ("ABBOTIK_RATE_KEY_BURST", "0"),
        ("ABBOTIK_RATE_TENANT_CREATE_PER_HOUR", "0"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    for _ in 0..5 {
        let r = app.get("/api/user/me", t.token()).await;
        okd(&r, 200);
        assert!(!r.headers.contains_key("ratelimit-limit"));
        let r = app.post("/auth/login", None, json!({})).await;
        assert_ne!(r.status, 429);
        assert!(!r.headers.contains_key("ratelimit-limit"));
    }
    let d = okd(&app.get("/api/user/limits", t.token()).await, 200);
    assert_eq!(
        d["tenant"],
        json!({"rps": null, "burst": null, "remaining": null})
    );
    assert_eq!(
        d["key"],
        json!({"rps": null, "burst": null, "remaining": null})
    );
}

#[tokio::test]
async fn tenant_override_from_the_control_table() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    // Before the tenant's first /api request, so no server has cached its limits yet.
    let db = test_db().await;
    let id = uuid::Uuid::parse_str(&t.tenant_id).unwrap();
    db.execute(
        "INSERT INTO abbotik_control.tenant_limits (tenant_id, tenant_rps, tenant_burst, key_rps, key_burst)
         VALUES ($1, 1, 2, NULL, 0)",
        &[&id],
    )
    .await
    .unwrap();
    // The three requests must land within one second for the refusal to be certain.
    let started = Instant::now();
    let d = okd(&app.get("/api/user/limits", t.token()).await, 200);
    assert_eq!(d["tenant"]["rps"], 1);
    assert_eq!(d["tenant"]["burst"], 2);
    // key_burst 0 disables the key limiter for this tenant only.
    assert_eq!(d["key"]["remaining"], Value::Null);
    let r1 = app.get("/api/user/me", t.token()).await;
    let r2 = app.get("/api/user/me", t.token()).await;
    if started.elapsed() < Duration::from_millis(900) {
        okd(&r1, 200);
        refused(&r2, "tenant", 2);
    }
    // Other tenants keep the defaults.
    let other = TestTenant::new(&app).await;
    let d = okd(&app.get("/api/user/limits", other.token()).await, 200);
    assert_eq!(d["tenant"]["burst"], 1_000_000);
}

#[tokio::test]
async fn unreachable_redis_fails_open_to_local_budgets() {
    // Port 1 on loopback: nothing listens. Cluster mode needs the other services too; the
    // test environment provides them (or single-node mode).
    let app = spawn_app_with(&[
        ("ABBOTIK_REDIS_URL", "redis://127.0.0.1:1/"),
        ("ABBOTIK_RATE_TENANT_RPS", "0.1"),
        ("ABBOTIK_RATE_TENANT_BURST", "2"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    okd(&app.get("/api/user/me", t.token()).await, 200);
    okd(&app.get("/api/user/me", t.token()).await, 200);
    // Same limits, in process.
    refused(&app.get("/api/user/me", t.token()).await, "tenant", 2);
    let r = app.get("/ready", None).await;
    let d = okd(&r, 200);
    assert_eq!(d["status"], "degraded", "{}", r.text);
    let failed: Vec<&str> = d["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(failed.contains(&"ratelimit"), "{}", r.text);
    assert_eq!(d["checks"]["ratelimit"]["ok"], false);
    let r = app.get("/ready?strict=true", None).await;
    err(&r, 503, "NOT_READY");
}

// ---------------------------------------------------------------------------------------------
// Two real server processes sharing one tenant budget through Redis
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_processes_share_one_tenant_budget() {
    if std::env::var("ABBOTIK_TEST_REDIS_URL").is_err() {
        eprintln!("ABBOTIK_TEST_REDIS_URL unset: budgets cannot be shared; test skipped");
        return;
    }
    // The in-process app migrates the test database and registers the tenant.
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    // 2 requests/s, burst 4, set with the operator command before any /api request.
    let out = api_command(&[])
        .args([
            "tenant",
            "limits",
            &t.name,
            "--tenant-rps",
            "2",
            "--tenant-burst",
            "4",
        ])
        .output()
        .await
        .expect("tenant limits ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("tenant-rps 2, tenant-burst 4"), "{shown}");

    let (a, b) = tokio::join!(ApiProcess::start(&[]), ApiProcess::start(&[]));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let window = Duration::from_secs(3);
    let hammer = |base: String| {
        let (client, token) = (client.clone(), t.token.clone());
        async move {
            let (mut ok, mut limited) = (0u32, 0u32);
            while started.elapsed() < window {
                let r = client
                    .get(format!("{base}/api/user/me"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                match r.status().as_u16() {
                    200 => ok += 1,
                    429 => {
                        let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok());
                        assert!(retry
                            .and_then(|v| v.parse::<u64>().ok())
                            .is_some_and(|s| s >= 1));
                        let body: Value = r.json().await.expect("json");
                        assert_eq!(body["data"]["scope"], "tenant");
                        limited += 1;
                    }
                    s => panic!("unexpected status {s}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, limited)
        }
    };
    let ((ok_a, lim_a), (ok_b, lim_b)) =
        tokio::join!(hammer(a.base.clone()), hammer(b.base.clone()));
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = ok_a + ok_b;
    // One shared budget: at most the burst plus the refill over the run (and one request in
    // flight at the edge); per-pod budgets would have accepted about twice as many.
    let bound = 4.0 + 2.0 * elapsed + 1.0;
    assert!(
        f64::from(accepted) <= bound,
        "accepted {accepted} (a {ok_a}, b {ok_b}) in {elapsed:.2} s, bound {bound:.1}"
    );
    assert!(accepted >= 4, "accepted {accepted}");
    assert!(
        ok_a > 0 && ok_b > 0,
        "both servers served: a {ok_a}, b {ok_b}"
    );
    assert!(
        lim_a > 0 && lim_b > 0,
        "both servers refused: a {lim_a}, b {lim_b}"
    );
}
