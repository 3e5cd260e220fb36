//! Test support: [`spawn_app`] starts the real server in-process on `127.0.0.1:0` against the
//! real services whose URLs `scripts/test` exports (`ABBOTIK_TEST_DATABASE_URL`, …), and
//! [`TestApp`] offers a small HTTP client. Every test makes its own tenant (`unique_name`).

pub mod process;
pub mod transfer;

use abbot_api::config::Config;
use abbot_api::wiring;
use serde_json::Value;
use std::collections::HashMap;

/// The default database for local runs when `scripts/test` did not export one.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://abbotik:abbotik@127.0.0.1:55432/abbotik";

/// Environment for a test server: cluster mode on the test services, generous limits.
pub fn test_env() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    let db = std::env::var("ABBOTIK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    env.insert("ABBOTIK_DATABASE_URL".into(), db);
    env.insert("ABBOTIK_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "ABBOTIK_AUTH_JWT_KEYS".into(),
        "t1:test-secret-0123456789abcdef0123456789abcdef".into(),
    );
    env.insert(
        "ABBOTIK_SECRETS_KEK".into(),
        "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    );
    env.insert("ABBOTIK_METRICS".into(), "off".into());
    env.insert("ABBOTIK_SHUTDOWN_DELAY_SECONDS".into(), "0".into());
    // Rate limits (B5) high enough that no test meets one by accident: tests that exercise a
    // limiter set its budget explicitly (tests/tests/rate_limits.rs).
    for (k, v) in [
        ("ABBOTIK_RATE_TENANT_CREATE_PER_HOUR", "1000000"),
        ("ABBOTIK_RATE_AUTH_PER_MIN", "1000000"),
        ("ABBOTIK_RATE_AUTH_BURST", "1000000"),
        ("ABBOTIK_RATE_TENANT_RPS", "1000000"),
        ("ABBOTIK_RATE_TENANT_BURST", "1000000"),
        ("ABBOTIK_RATE_KEY_RPS", "1000000"),
        ("ABBOTIK_RATE_KEY_BURST", "1000000"),
    ] {
        env.insert(k.into(), v.into());
    }
    env.insert("ABBOTIK_LOG".into(), "warn".into());
    env.insert("ABBOTIK_DATABASE_POOL_MAX".into(), "8".into());
    for (k, v) in [
        ("ABBOTIK_TEST_REDIS_URL", "ABBOTIK_REDIS_URL"),
        ("ABBOTIK_TEST_NATS_URL", "ABBOTIK_NATS_URL"),
        ("ABBOTIK_TEST_S3_BUCKET", "ABBOTIK_S3_BUCKET"),
        ("ABBOTIK_TEST_S3_ENDPOINT", "ABBOTIK_S3_ENDPOINT"),
    ] {
        if let Ok(val) = std::env::var(k) {
            env.insert(v.into(), val);
        }
    }
    if !env.contains_key("ABBOTIK_REDIS_URL")
        || !env.contains_key("ABBOTIK_NATS_URL")
        || !env.contains_key("ABBOTIK_S3_BUCKET")
    {
        env.insert("ABBOTIK_SINGLE_NODE".into(), "true".into());
    } else {
        env.insert("ABBOTIK_S3_FORCE_PATH_STYLE".into(), "true".into());
    }
    env
}

/// A running test server (in this process); its HTTP client methods come from [`Http`].
pub struct TestApp {
    pub http: Http,
    pub running: wiring::Running,
}

impl std::ops::Deref for TestApp {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

/// A small HTTP client bound to one server's base URL.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Http {
        Http {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }
}

/// Starts the server with [`test_env`] plus `overrides`, migrating the test database first.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let mut env = test_env();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let cfg = Config::from_map(&env).expect("test config");
    migrate_once(&cfg).await;
    let running = wiring::start(&cfg).await.expect("server starts");
    TestApp {
        http: Http::new(format!("http://{}", running.addr)),
        running,
    }
}

/// Starts the server with the default test environment.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

async fn migrate_once(cfg: &Config) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let res = wiring::open_db(cfg).await.expect("test database reachable");
        abbotik_adapters_migrate(&res).await;
    })
    .await;
}

async fn abbotik_adapters_migrate(res: &wiring::Resources) {
    wiring::migrate_db(&res.db).await.expect("migrations apply");
}

/// A direct client of the test database, for checks and fault injection behind the API.
pub async fn test_db() -> tokio_postgres::Client {
    let url = std::env::var("ABBOTIK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("test database reachable");
    tokio::spawn(conn);
    client
}

/// A direct connection holding `ACCESS EXCLUSIVE` on a tenant's model table in an open
/// transaction: the table stays locked until `COMMIT` on it (or until it is dropped).
pub async fn lock_model_table(tenant: &str, model: &str) -> tokio_postgres::Client {
    let db = test_db().await;
    db.batch_execute(&format!(
        "BEGIN; LOCK TABLE \"ns_tenant_{tenant}\".\"{model}\" IN ACCESS EXCLUSIVE MODE"
    ))
    .await
    .expect("lock the table");
    db
}

/// Asserts an error answer: status, error code and the envelope; returns its `data`.
#[track_caller]
pub fn err(r: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert_eq!(r.body["success"], false);
    r.body["data"].clone()
}

/// Asserts a success answer with `status`; returns its `data`.
#[track_caller]
pub fn okd(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["success"], true, "{}", r.text);
    r.body["data"].clone()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (query values, path parts).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client address of its own for one test (IPv6 documentation range), to send as
/// `X-Forwarded-For` through `ABBOTIK_TRUSTED_PROXIES=127.0.0.1/32`: per-address budgets
/// (B5) live in the shared Redis and outlive a test server.
pub fn unique_ip() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    std::net::Ipv6Addr::new(
        0x2001,
        0xdb8,
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]),
        u16::from_be_bytes([b[8], b[9]]),
        u16::from_be_bytes([b[10], b[11]]),
    )
    .to_string()
}

/// A unique tenant name for one test.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// A response: status, headers and JSON body (`Value::Null` when not JSON).
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Http {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(m, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call("POST", path, token, Some(body)).await
    }
}

/// The password every test tenant's owner gets.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// A freshly registered tenant with a logged-in `root` owner (sudo by role).
pub struct TestTenant {
    pub name: String,
    pub tenant_id: String,
    pub username: String,
    pub user_id: String,
    pub token: String,
}

impl TestTenant {
    /// Registers a unique tenant and logs its owner in.
    pub async fn new(app: &TestApp) -> TestTenant {
        Self::named(app, &unique_name("t")).await
    }

    /// A new tenant ([`TestTenant::new`]) with model `model` described by `describe` (the
    /// `POST /api/describe/:model` body), which must be accepted (`201`).
    pub async fn with_model(app: &TestApp, model: &str, describe: Value) -> TestTenant {
        let t = Self::new(app).await;
        let r = app
            .post(&format!("/api/describe/{model}"), t.token(), describe)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        t
    }

    /// Registers `name` and logs its owner (`owner`) in.
    pub async fn named(app: &TestApp, name: &str) -> TestTenant {
        let r = app
            .post(
                "/auth/register",
                None,
                serde_json::json!({"tenant": name, "username": "owner", "password": TEST_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "register {name}: {}", r.text);
        let r = app
            .post(
                "/auth/login",
                None,
                serde_json::json!({"tenant": name, "username": "owner", "password": TEST_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text);
        let d = &r.body["data"];
        TestTenant {
            name: name.to_owned(),
            tenant_id: d["user"]["tenant_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            username: "owner".into(),
            user_id: d["user"]["id"].as_str().unwrap_or_default().to_owned(),
            token: d["token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }

    /// Changes user `username` behind the API (`set`: the `SET` list of an `UPDATE` of the
    /// tenant's `users` table, e.g. `access = 'deny'`), as another pod or an operator would.
    pub async fn update_user(&self, username: &str, set: &str) {
        let sql = format!(
            "UPDATE \"ns_tenant_{}\".users SET {set} WHERE username = $1",
            self.name
        );
        let n = test_db()
            .await
            .execute(&sql, &[&username])
            .await
            .expect("update user");
        assert_eq!(n, 1, "no user {username}");
    }

    /// Another user of this tenant with `access` and the owner's password ([`TEST_PASSWORD`]),
    /// inserted behind the API (so tests of other routes do not lean on the user routes), then
    /// logged in: its id and, when the login succeeds, its token.
    pub async fn add_user(
        &self,
        app: &Http,
        username: &str,
        access: &str,
    ) -> (String, Option<String>) {
        let c = test_db().await;
        let s = format!("\"ns_tenant_{}\"", self.name);
        let id: uuid::Uuid = c
            .query_one(
                &format!(
                    "WITH u AS (INSERT INTO {s}.users (name, username, access) VALUES ($1, $1, $2) RETURNING id),
                          p AS (INSERT INTO {s}.credentials (user_id, password_hash)
                                SELECT u.id, cr.password_hash FROM u, {s}.credentials cr
                                WHERE cr.user_id = $3::text::uuid)
                     SELECT id FROM u"
                ),
                &[&username, &access, &self.user_id],
            )
            .await
            .expect("insert user")
            .get(0);
        let r = app
            .post(
                "/auth/login",
                None,
                serde_json::json!({"tenant": self.name, "username": username, "password": TEST_PASSWORD}),
            )
            .await;
        let token = (r.status == 200).then(|| {
            r.body["data"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        (id.to_string(), token)
    }
}
