//! Docs surfaces against a running server (B4): the router answers every registered route,
//! every docs page renders, suggestions and the JSON form work, `/openapi.json` lists every
//! route, and the registry's examples hold against the real server.

#[path = "support/openssl_ed25519.rs"]
mod openssl_ed25519;

use abbotik_http::docs::{areas, resolve};
use abbotik_http::registry::{self, Access, RouteDoc};
use abbotik_testkit::{spawn_app, unique_name, TestApp};
use openssl_ed25519::OpensslKey;
use serde_json::{json, Value};
use std::collections::HashSet;

/// A concrete URL path for a registered path (placeholders filled with probe values).
fn concrete(path: &str, fill: &dyn Fn(&str) -> String) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                fill(s.trim_matches(|c| c == '{' || c == '}' || c == '*'))
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn probe_value(name: &str) -> String {
    match name {
        "id" | "invite_id" | "key_id" | "run_id" | "tenant_id" => {
            "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10".to_owned()
        }
        "path" => "operations".to_owned(),
        "pid" => "1".to_owned(),
        other => format!("probe_{other}"),
    }
}

#[tokio::test]
async fn router_answers_every_registered_route() {
    let app = spawn_app().await;
    let mut problems = Vec::new();
    for r in registry::all() {
        let path = concrete(r.path, &probe_value);
        let resp = app.call(r.method, &path, None, None).await;
        let code = resp.body["code"].as_str().unwrap_or("");
        if resp.status == 405 || code == "NOT_FOUND" {
            problems.push(format!(
                "{} {path} ({}): {} {}",
                r.method, r.path, resp.status, resp.text
            ));
            continue;
        }
        if r.access != Access::Public && (resp.status != 401 || code != "AUTH_TOKEN_REQUIRED") {
            problems.push(format!(
                "{} {path}: unauthenticated call gave {} {code}, want 401 AUTH_TOKEN_REQUIRED",
                r.method, resp.status
            ));
        }
        // HEAD is accepted on every GET route (A1.4) and answers the GET status.
        if r.method == "GET" {
            let head = app.call("HEAD", &path, None, None).await;
            if head.status != resp.status {
                problems.push(format!(
                    "HEAD {path}: {} but GET gave {}",
                    head.status, resp.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn docs_pages_render_for_every_area_and_endpoint() {
    let app = spawn_app().await;
    // Markdown whatever Accept says (compatible clients send application/json).
    for a in areas::available() {
        let url = app.url(&format!("/docs/{}", a.path));
        let r = app
            .client
            .get(&url)
            .header("accept", "application/json")
            .bearer_auth("ignored-on-public-routes")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "/docs/{}", a.path);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/markdown"), "{ct}");
        let body = r.text().await.unwrap();
        assert!(body.starts_with("# "), "/docs/{}: {body}", a.path);

        let j = app
            .get(&format!("/docs/{}?format=json", a.path), None)
            .await;
        assert_eq!(j.status, 200, "{}", j.text);
        assert_eq!(j.body["success"], true);
        assert_eq!(j.body["data"]["path"], format!("/docs/{}", a.path));
        assert_eq!(j.body["data"]["markdown"].as_str(), Some(body.as_str()));
        let n = j.body["data"]["routes"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if a.path != "errors" {
            assert_eq!(n, areas::routes_of(a.path).len(), "/docs/{}", a.path);
        }
    }
    for r in registry::all() {
        let page = resolve::endpoint_path(r);
        let resp = app.get(&page, None).await;
        assert_eq!(resp.status, 200, "{page}: {}", resp.text);
        assert!(resp.text.contains(&r.contract_path()), "{page}");
        let j = app.get(&format!("{page}?format=json"), None).await;
        assert_eq!(j.body["data"]["routes"][0]["method"], r.method, "{page}");
    }

    let idx = app.get("/docs", None).await;
    assert_eq!(idx.status, 200);
    assert!(idx.text.starts_with("# Abbotik API docs"));
    let idx = app.get("/docs?format=json", None).await;
    assert_eq!(
        idx.body["data"]["routes"].as_array().map(Vec::len),
        Some(registry::all().len())
    );
    let bad = app.get("/docs?format=xml", None).await;
    assert_eq!(bad.status, 406);
    assert_eq!(bad.body["code"], "VALIDATION_FORMAT_UNSUPPORTED");

    let errors = app.get("/docs/errors", None).await;
    assert!(
        errors.text.contains("`DOCS_NOT_FOUND` | 404"),
        "{}",
        errors.text
    );
    let one = app.get("/docs/errors/AUTH_TOKEN_REQUIRED", None).await;
    assert_eq!(one.status, 200);
    assert!(one.text.contains("401"));
}

#[tokio::test]
async fn docs_errors_and_short_forms() {
    let app = spawn_app().await;
    let r = app.get("/docs/operatons", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "DOCS_NOT_FOUND");
    let s = r.body["data"]["suggestions"]
        .as_array()
        .expect("suggestions");
    assert!(!s.is_empty() && s.len() <= 5, "{s:?}");
    assert_eq!(s[0], "/docs/operations");

    for empty in ["/docs/", "/docs//"] {
        let r = app.get(empty, None).await;
        assert_eq!(r.status, 400, "{empty}: {}", r.text);
        assert_eq!(r.body["code"], "DOCS_PATH_MISSING");
    }

    // Short forms resolve to the api/ area.
    for a in areas::available() {
        if let Some(short) = a.path.strip_prefix("api/") {
            let r = app.get(&format!("/docs/{short}?format=json"), None).await;
            assert_eq!(r.status, 200, "/docs/{short}");
            assert_eq!(r.body["data"]["path"], format!("/docs/{}", a.path));
        }
    }
    // A contract area this binary does not serve is not advertised as working.
    if let Some(p) = areas::planned().first() {
        let r = app.get(&format!("/docs/{}", p.path), None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["data"]["planned"], true);
        let llms = app.get("/llms.txt", None).await;
        assert!(!llms.text.contains(&format!("(/docs/{})", p.path)));
    }
}

#[tokio::test]
async fn llms_txt_and_openapi() {
    let app = spawn_app().await;
    let r = app.get("/llms.txt", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/markdown; charset=utf-8"
    );
    for a in areas::available() {
        assert!(
            r.text.contains(&format!("(/docs/{})", a.path)),
            "llms.txt lacks {}",
            a.path
        );
    }
    for needle in [
        "\"success\":false",
        "?unwrap",
        "?stat=false",
        "?access=false",
        "null",
    ] {
        assert!(r.text.contains(needle), "llms.txt lacks {needle}");
    }

    let o = app.get("/openapi.json", None).await;
    assert_eq!(o.status, 200);
    assert_eq!(o.body["openapi"], "3.1.0");
    assert_eq!(o.body["info"]["version"], env!("CARGO_PKG_VERSION"));
    for r in registry::all() {
        let p = r.path.replace("{*", "{");
        let op = &o.body["paths"][&p][r.method.to_ascii_lowercase()];
        assert!(op["operationId"].is_string(), "{} {p}", r.method);
        assert!(op["summary"].is_string());
    }
    assert_eq!(
        o.body["components"]["schemas"]["Error"]["properties"]["success"]["const"],
        false
    );
}

/// Objects whose keys are data, not schema (`GET /api/trashed` keys its result by model name):
/// their values are compared with the example's first value instead of key by key.
const DATA_KEYED: &[&str] = &["GET /api/trashed $.data"];

/// `example` ⊆ `actual` by shape: every key of an example object is present, with the same JSON
/// type (null on either side is compatible; arrays compare their first items).
fn shape(route: &str, example: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (example, actual) {
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::Object(e), Value::Object(a))
            if DATA_KEYED.contains(&format!("{route} {at}").as_str()) =>
        {
            match (e.values().next(), a.values().next()) {
                (Some(x), Some(y)) => shape(route, x, y, &format!("{at}.*")),
                _ => Ok(()),
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let got = a.get(k).ok_or_else(|| format!("{at}.{k} missing"))?;
                shape(route, v, got, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => match (e.first(), a.first()) {
            (Some(x), Some(y)) => shape(route, x, y, &format!("{at}[0]")),
            _ => Ok(()),
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        (e, a) => Err(format!("{at}: example {e} but got {a}")),
    }
}

/// Checks a response against a route's example: status, and shape (JSON) or first line (text).
fn check_example(r: &RouteDoc, status: u16, text: &str) -> Result<(), String> {
    if status != r.status {
        return Err(format!(
            "status {status}, example says {}: {text}",
            r.status
        ));
    }
    let example: Value = serde_json::from_str(r.response).map_err(|e| e.to_string())?;
    match example {
        Value::String(s) => {
            let want = s.lines().next().unwrap_or("");
            let got = text.lines().next().unwrap_or("");
            if want == got {
                Ok(())
            } else {
                Err(format!("first line {got:?}, example says {want:?}"))
            }
        }
        e => {
            let actual: Value = serde_json::from_str(text).map_err(|x| format!("not JSON: {x}"))?;
            shape(&format!("{} {}", r.method, r.path), &e, &actual, "$")
        }
    }
}

/// Public machine-identity routes: they run in their own block (a tenant of their own, a key
/// made by openssl, a signed nonce), not in the generic public loop.
const MACHINE_PUBLIC: &[&str] = &["/auth/provision", "/auth/challenge", "/auth/verify"];

/// The ids the examples use, each standing for one resource of the scenario: the order `A-1`,
/// its customer and the child order `A-3` created through the relationship route.
const EX_ORDER: &str = "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10";
const EX_CUSTOMER: &str = "5e0d2c4a-3b1f-4e8a-9c7d-2f1e0a9b8c7d";
const EX_CHILD: &str = "91f2a7c4-5d3e-4b6a-8c9d-0e1f2a3b4c5d";

/// Runs registry examples in order against one server and records what held.
struct Scenario<'a> {
    app: &'a TestApp,
    problems: Vec<String>,
    executed: HashSet<String>,
}

/// One execution of a route's example: the concrete URL (placeholders filled, query added
/// where the route requires one), the bearer token, string substitutions applied to the
/// example body (example ids → real ids) and top-level body keys replaced by real values.
struct Call<'b> {
    method: &'static str,
    path: &'static str,
    url: String,
    token: Option<&'b str>,
    subs: Vec<(&'static str, String)>,
    keys: Vec<(&'static str, Value)>,
}

impl<'b> Call<'b> {
    fn new(method: &'static str, path: &'static str, url: impl Into<String>) -> Self {
        Call {
            method,
            path,
            url: url.into(),
            token: None,
            subs: Vec::new(),
            keys: Vec::new(),
        }
    }
    fn token(mut self, t: &'b str) -> Self {
        self.token = Some(t);
        self
    }
    fn sub(mut self, example: &'static str, real: &str) -> Self {
        self.subs.push((example, real.to_owned()));
        self
    }
    fn key(mut self, k: &'static str, v: Value) -> Self {
        self.keys.push((k, v));
        self
    }
}

impl Scenario<'_> {
    /// Executes the example of `c.method c.path`, records a problem when the answer does not
    /// hold, and answers the response body (later steps take their ids from it).
    async fn exec(&mut self, c: Call<'_>) -> Value {
        let me = format!("{} {}", c.method, c.path);
        let Some(r) = registry::all()
            .into_iter()
            .find(|r| r.method == c.method && r.path == c.path)
        else {
            self.problems.push(format!("{me}: not in the registry"));
            return Value::Null;
        };
        self.executed.insert(me.clone());
        let body = match r.request {
            None => None,
            Some(t) => {
                let mut text = t.to_owned();
                for (from, to) in &c.subs {
                    text = text.replace(from, to);
                }
                match serde_json::from_str::<Value>(&text) {
                    Ok(mut v) => {
                        if let Some(o) = v.as_object_mut() {
                            for (k, val) in &c.keys {
                                o.insert((*k).to_owned(), val.clone());
                            }
                        }
                        Some(v)
                    }
                    Err(e) => {
                        self.problems
                            .push(format!("{me}: request example is not JSON: {e}"));
                        return Value::Null;
                    }
                }
            }
        };
        let resp = self.app.call(r.method, &c.url, c.token, body).await;
        if let Err(e) = check_example(r, resp.status, &resp.text) {
            // A public GET whose success depends on operator settings (the tenant list
            // is disabled by default) may answer one of its documented errors instead.
            let code = resp.body["code"].as_str().unwrap_or("");
            let documented = r.access == Access::Public && r.errors.contains(&code);
            if !(r.method == "GET" && documented) {
                self.problems.push(format!("{me} ({}): {e}", c.url));
            }
        }
        resp.body
    }
}

fn id_of(v: &Value) -> String {
    let d = &v["data"];
    let one = if d.is_array() { &d[0] } else { d };
    one["id"].as_str().unwrap_or("missing-id").to_owned()
}

/// A setup request that is not an example (it must succeed for the scenario to mean anything).
async fn setup(app: &TestApp, method: &str, url: &str, token: &str, body: Option<Value>) -> Value {
    let r = app.call(method, url, Some(token), body).await;
    assert!(
        r.status < 300,
        "setup {method} {url}: {} {}",
        r.status,
        r.text
    );
    r.body
}

/// Every registered route's example runs against a real server, in an order where each one
/// finds the resources it names: public routes, then models, records, relationship children,
/// trash (restore, purge) and stat on the tenant the register example created; the routes
/// that destroy a tenant run last, on a tenant of their own.
#[tokio::test]
async fn registry_examples_hold_against_the_server() {
    let app = spawn_app().await;
    let mut s = Scenario {
        app: &app,
        problems: Vec::new(),
        executed: HashSet::new(),
    };
    let tenant = unique_name("docsx");
    let all = registry::all();

    // Public routes in registry order (register precedes login, so the login example finds the
    // tenant the register example created; refresh takes the token login returned).
    let mut token = String::new();
    for r in all.iter().filter(|r| r.access == Access::Public) {
        // Redeeming an invite needs one first: it runs in the users block below.
        if r.path.starts_with("/auth/dissolve")
            || MACHINE_PUBLIC.contains(&r.path)
            || r.path == "/auth/register/user"
            || r.path == "/auth/provision/user"
        {
            continue;
        }
        let url = if r.path == "/docs/{*path}" {
            "/docs/operations".to_owned()
        } else {
            r.path.to_owned()
        };
        let mut c = Call::new(r.method, r.path, url).key("tenant", json!(tenant));
        if r.path == "/auth/refresh" {
            c = c.key("token", json!(token));
        }
        let v = s.exec(c).await;
        if r.path == "/auth/login" {
            token = v["data"]["token"].as_str().unwrap_or_default().to_owned();
        }
    }
    assert!(!token.is_empty(), "login example failed: {:?}", s.problems);
    let t = token.as_str();

    s.exec(Call::new("GET", "/api/user/me", "/api/user/me").token(t))
        .await;
    s.exec(Call::new("GET", "/api/user/limits", "/api/user/limits").token(t))
        .await;

    // Machine identity, on a tenant of its own: provision with a key made by openssl, verify
    // the first challenge, challenge again; then the machine token manages keys (the key the
    // add example creates is rotated, then revoked during its overlap).
    let mt = unique_name("docsm");
    let k1 = OpensslKey::generate();
    let v = s
        .exec(
            Call::new("POST", "/auth/provision", "/auth/provision")
                .key("tenant", json!(mt))
                .key("public_key", json!(k1.public_pem())),
        )
        .await;
    let ch = v["data"]["challenge"].clone();
    let key1 = v["data"]["key"]["id"].clone();
    let sig = k1.sign(ch["nonce"].as_str().unwrap_or_default());
    let v = s
        .exec(
            Call::new("POST", "/auth/verify", "/auth/verify")
                .key("tenant", json!(mt))
                .key("challenge_id", ch["challenge_id"].clone())
                .key("signature", json!(sig)),
        )
        .await;
    let mtok = v["data"]["token"].as_str().unwrap_or_default().to_owned();
    s.exec(
        Call::new("POST", "/auth/challenge", "/auth/challenge")
            .key("tenant", json!(mt))
            .key("key_id", key1),
    )
    .await;
    let mk = "/api/user/machine-keys";
    s.exec(Call::new("GET", mk, mk).token(&mtok)).await;
    let k2 = OpensslKey::generate();
    let key2 = id_of(
        &s.exec(
            Call::new("POST", mk, mk)
                .token(&mtok)
                .key("public_key", json!(k2.public_pem())),
        )
        .await,
    );
    let k3 = OpensslKey::generate();
    let rot = "/api/user/machine-keys/rotate";
    s.exec(
        Call::new("POST", rot, rot)
            .token(&mtok)
            .key("key_id", json!(key2))
            .key("new_public_key", json!(k3.public_pem())),
    )
    .await;
    s.exec(
        Call::new(
            "DELETE",
            "/api/user/machine-keys/{key_id}",
            format!("{mk}/{key2}"),
        )
        .token(&mtok),
    )
    .await;

    // Models: `orders` relates to `customers`, so customers exist first.
    setup(
        &app,
        "POST",
        "/api/describe/customers",
        t,
        Some(json!({"fields": {"name": {"type": "text"}}})),
    )
    .await;
    let m = "/api/describe/orders";
    s.exec(Call::new("POST", "/api/describe/{model}", m).token(t))
        .await;
    s.exec(Call::new("GET", "/api/describe", "/api/describe").token(t))
        .await;
    s.exec(Call::new("GET", "/api/describe/{model}", m).token(t))
        .await;
    let fields = format!("{m}/fields");
    let total = format!("{m}/fields/total");
    s.exec(Call::new("GET", "/api/describe/{model}/fields", &fields).token(t))
        .await;
    s.exec(Call::new("GET", "/api/describe/{model}/fields/{field}", &total).token(t))
        .await;
    s.exec(Call::new("PUT", "/api/describe/{model}/fields", &fields).token(t))
        .await;
    s.exec(Call::new("PUT", "/api/describe/{model}/fields/{field}", &total).token(t))
        .await;
    // Drop `total` and add it back with the single-field example; the array example adds
    // the same field to `customers`, which has none.
    s.exec(Call::new("DELETE", "/api/describe/{model}/fields/{field}", &total).token(t))
        .await;
    s.exec(Call::new("POST", "/api/describe/{model}/fields/{field}", &total).token(t))
        .await;
    s.exec(
        Call::new(
            "POST",
            "/api/describe/{model}/fields",
            "/api/describe/customers/fields",
        )
        .token(t),
    )
    .await;

    // Records.
    let cust = id_of(
        &setup(
            &app,
            "POST",
            "/api/data/customers",
            t,
            Some(json!({"name": "Ada"})),
        )
        .await,
    );
    let d = "/api/data/orders";
    let v = s
        .exec(
            Call::new("POST", "/api/data/{model}", d)
                .token(t)
                .sub(EX_CUSTOMER, &cust),
        )
        .await;
    let order = id_of(&v);
    let one = format!("{d}/{order}");
    s.exec(Call::new("GET", "/api/data/{model}", d).token(t))
        .await;
    s.exec(Call::new("GET", "/api/data/{model}/{id}", &one).token(t))
        .await;
    s.exec(
        Call::new(
            "GET",
            "/api/stat/{model}/{id}",
            format!("/api/stat/orders/{order}"),
        )
        .token(t),
    )
    .await;
    s.exec(
        Call::new("PUT", "/api/data/{model}", d)
            .token(t)
            .sub(EX_ORDER, &order),
    )
    .await;
    // `where` is required on the bulk PATCH (its description says so); the body is the example.
    let where_one = format!("{d}?where=%7B%22id%22%3A%22{order}%22%7D");
    s.exec(Call::new("PATCH", "/api/data/{model}", where_one).token(t))
        .await;
    s.exec(Call::new("PUT", "/api/data/{model}/{id}", &one).token(t))
        .await;
    s.exec(Call::new("PATCH", "/api/data/{model}/{id}", &one).token(t))
        .await;

    // Find: the example body, then a saved filter of the `filters` system model by name.
    s.exec(Call::new("POST", "/api/find/{model}", "/api/find/orders").token(t))
        .await;
    setup(
        &app,
        "POST",
        "/api/data/filters",
        t,
        Some(json!({"model_name": "orders", "name": "open", "where": {"state": {"$ne": "void"}}})),
    )
    .await;
    s.exec(
        Call::new(
            "GET",
            "/api/find/{model}/{target}",
            "/api/find/orders/open?limit=10",
        )
        .token(t),
    )
    .await;

    // Aggregate: the query form, then the example body (groupBy state and day, having).
    s.exec(
        Call::new(
            "GET",
            "/api/aggregate/{model}",
            "/api/aggregate/orders?count&sum=total",
        )
        .token(t),
    )
    .await;
    s.exec(Call::new("POST", "/api/aggregate/{model}", "/api/aggregate/orders").token(t))
        .await;

    // Bulk: the example creates B-1 and B-2 in one transaction, marks B-2 paid, counts the new.
    s.exec(Call::new("POST", "/api/bulk", "/api/bulk").token(t))
        .await;

    // Bulk export: the example body (customers and orders) as the JSON document.
    s.exec(Call::new("POST", "/api/bulk/export", "/api/bulk/export").token(t))
        .await;

    // Bulk import: the example JSON document creates `suppliers` with one record.
    s.exec(Call::new("POST", "/api/bulk/import", "/api/bulk/import").token(t))
        .await;

    // Relationship children: `orders` is the relationship name of `orders.customer_id`.
    let rel = format!("/api/data/customers/{cust}/orders");
    let rp = "/api/data/{model}/{id}/{relationship}";
    let cp = "/api/data/{model}/{id}/{relationship}/{child}";
    s.exec(Call::new("GET", rp, &rel).token(t)).await;
    let child = id_of(&s.exec(Call::new("POST", rp, &rel).token(t)).await);
    let kid = format!("{rel}/{child}");
    s.exec(Call::new("PUT", rp, &rel).token(t).sub(EX_CHILD, &child))
        .await;
    s.exec(Call::new("GET", cp, &kid).token(t)).await;
    s.exec(Call::new("PUT", cp, &kid).token(t)).await;
    s.exec(Call::new("PATCH", cp, &kid).token(t)).await;
    s.exec(Call::new("DELETE", cp, &kid).token(t)).await;

    // Trash: the child is trashed; look, restore it; trash and restore the order both ways,
    // purge it; trash the children through the relationship and purge them in bulk.
    let tr = "/api/trashed/orders";
    let tkid = format!("{tr}/{child}");
    s.exec(Call::new("GET", "/api/trashed", "/api/trashed").token(t))
        .await;
    s.exec(Call::new("GET", "/api/trashed/{model}", tr).token(t))
        .await;
    s.exec(Call::new("GET", "/api/trashed/{model}/{id}", &tkid).token(t))
        .await;
    s.exec(Call::new("POST", "/api/trashed/{model}/{id}", &tkid).token(t))
        .await;
    s.exec(Call::new("DELETE", "/api/data/{model}/{id}", &one).token(t))
        .await;
    s.exec(
        Call::new("POST", "/api/trashed/{model}", tr)
            .token(t)
            .sub(EX_ORDER, &order),
    )
    .await;
    s.exec(
        Call::new("DELETE", "/api/data/{model}", d)
            .token(t)
            .sub(EX_ORDER, &order),
    )
    .await;
    s.exec(
        Call::new(
            "DELETE",
            "/api/trashed/{model}/{id}",
            format!("{tr}/{order}"),
        )
        .token(t),
    )
    .await;
    s.exec(Call::new("DELETE", rp, &rel).token(t)).await;
    s.exec(
        Call::new("DELETE", "/api/trashed/{model}", tr)
            .token(t)
            .sub(EX_ORDER, &child),
    )
    .await;

    // Users: create (carol), list, read, update, set her password, deactivate her; the owner
    // edits their own profile; a user of its own deactivates itself; whoami redirects.
    let carol = id_of(
        &s.exec(Call::new("POST", "/api/user", "/api/user").token(t))
            .await,
    );
    s.exec(Call::new("GET", "/api/user", "/api/user").token(t))
        .await;
    let cu = format!("/api/user/{carol}");
    s.exec(Call::new("GET", "/api/user/{id}", &cu).token(t))
        .await;
    s.exec(Call::new("PUT", "/api/user/{id}", &cu).token(t))
        .await;
    s.exec(Call::new("POST", "/api/user/{id}/password", format!("{cu}/password")).token(t))
        .await;
    s.exec(Call::new("DELETE", "/api/user/{id}", &cu).token(t))
        .await;
    s.exec(Call::new("PUT", "/api/user/me", "/api/user/me").token(t))
        .await;
    setup(
        &app,
        "POST",
        "/api/user",
        t,
        Some(json!({"username": "dora", "password": "dora's long password"})),
    )
    .await;
    let dora = app
        .post(
            "/auth/login",
            None,
            json!({"tenant": tenant, "username": "dora", "password": "dora's long password"}),
        )
        .await;
    let dora = dora.body["data"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.exec(Call::new("DELETE", "/api/user/me", "/api/user/me").token(&dora))
        .await;
    // whoami answers 301: checked without following the redirect.
    let whoami = registry::all()
        .into_iter()
        .find(|r| r.path == "/api/user/whoami")
        .expect("whoami registered");
    let nofollow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = nofollow
        .get(app.url("/api/user/whoami"))
        .bearer_auth(t)
        .send()
        .await
        .expect("whoami");
    let (status, loc) = (r.status().as_u16(), r.headers().get("location").cloned());
    let text = r.text().await.unwrap_or_default();
    s.executed.insert("GET /api/user/whoami".to_owned());
    if let Err(e) = check_example(whoami, status, &text) {
        s.problems.push(format!("GET /api/user/whoami: {e}"));
    }
    if loc.as_ref().and_then(|v| v.to_str().ok()) != Some("/api/user/me") {
        s.problems
            .push(format!("GET /api/user/whoami: Location {loc:?}"));
    }

    // Invites: the example invites bob, who redeems it; a second invite is revoked.
    let inv = s
        .exec(Call::new("POST", "/api/user/invite", "/api/user/invite").token(t))
        .await;
    s.exec(Call::new("GET", "/api/user/invite", "/api/user/invite").token(t))
        .await;
    s.exec(
        Call::new("POST", "/auth/register/user", "/auth/register/user")
            .key("tenant", json!(tenant))
            .key("invite_code", inv["data"]["code"].clone()),
    )
    .await;
    // A machine joins with a machine invite and a key made by openssl, then verifies.
    let bot = setup(
        &app,
        "POST",
        "/api/user/invite",
        t,
        Some(json!({"username": "ci_bot", "invite_type": "machine", "access": "edit"})),
    )
    .await;
    let bot_key = OpensslKey::generate();
    let joined = s
        .exec(
            Call::new("POST", "/auth/provision/user", "/auth/provision/user")
                .key("tenant", json!(tenant))
                .key("invite_code", bot["data"]["code"].clone())
                .key("public_key", json!(bot_key.public_pem())),
        )
        .await;
    let ch = &joined["data"]["challenge"];
    let signed = app
        .post(
            "/auth/verify",
            None,
            json!({"tenant": tenant, "challenge_id": ch["challenge_id"],
                   "signature": bot_key.sign(ch["nonce"].as_str().unwrap_or_default())}),
        )
        .await;
    if signed.status != 200 || signed.body["data"]["user"]["access"] != "edit" {
        s.problems.push(format!(
            "POST /auth/provision/user: its challenge does not verify: {}",
            signed.text
        ));
    }
    let second = setup(
        &app,
        "POST",
        "/api/user/invite",
        t,
        Some(json!({"username": "erin"})),
    )
    .await;
    s.exec(
        Call::new(
            "DELETE",
            "/api/user/invite/{invite_id}",
            format!(
                "/api/user/invite/{}",
                second["data"]["invite_id"].as_str().unwrap_or("missing")
            ),
        )
        .token(t),
    )
    .await;

    // Secrets: store, list, replace, reveal, delete (the example's `github_token`).
    let sec = "/api/user/secrets";
    let one_secret = "/api/user/secrets/github_token";
    s.exec(Call::new("POST", sec, sec).token(t)).await;
    s.exec(Call::new("GET", sec, sec).token(t)).await;
    s.exec(Call::new("PUT", "/api/user/secrets/{name}", one_secret).token(t))
        .await;
    s.exec(
        Call::new(
            "POST",
            "/api/user/secrets/{name}/reveal",
            format!("{one_secret}/reveal"),
        )
        .token(t),
    )
    .await;
    s.exec(Call::new("DELETE", "/api/user/secrets/{name}", one_secret).token(t))
        .await;

    // The calling credential: introspection, sudo, impersonation (of the credential-less
    // zero-uuid root), API keys (the created key is revoked, then revoke-all finds none).
    s.exec(Call::new("GET", "/api/user/introspect", "/api/user/introspect").token(t))
        .await;
    s.exec(Call::new("POST", "/api/user/sudo", "/api/user/sudo").token(t))
        .await;
    s.exec(
        Call::new("POST", "/api/user/fake", "/api/user/fake")
            .token(t)
            .key("user_id", json!("00000000-0000-0000-0000-000000000000")),
    )
    .await;
    let key = s
        .exec(Call::new("POST", "/api/keys", "/api/keys").token(t))
        .await;
    s.exec(Call::new("GET", "/api/keys", "/api/keys").token(t))
        .await;
    s.exec(
        Call::new(
            "DELETE",
            "/api/keys/{key_id}",
            format!("/api/keys/{}", id_of(&key)),
        )
        .token(t),
    )
    .await;
    s.exec(Call::new("POST", "/api/keys/revoke-all", "/api/keys/revoke-all").token(t))
        .await;

    // Model changes last: the example freezes the model, then it is dropped.
    s.exec(Call::new("PUT", "/api/describe/{model}", m).token(t))
        .await;
    s.exec(Call::new("DELETE", "/api/describe/{model}", m).token(t))
        .await;

    // Dissolution, on a tenant of its own (registered and activated with the examples' owner).
    let doomed = unique_name("docsd");
    let reg = all
        .iter()
        .find(|r| r.path == "/auth/register")
        .expect("register");
    let mut body: Value = serde_json::from_str(reg.request.unwrap_or("{}")).unwrap_or_default();
    body["tenant"] = json!(doomed);
    let r = app.post("/auth/register", None, body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.post("/auth/login", None, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = s
        .exec(Call::new("POST", "/auth/dissolve", "/auth/dissolve").key("tenant", json!(doomed)))
        .await;
    let confirm = v["data"]["confirmation_token"].clone();
    s.exec(
        Call::new("POST", "/auth/dissolve/confirm", "/auth/dissolve/confirm")
            .key("confirmation_token", confirm),
    )
    .await;

    let missed: Vec<String> = all
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .filter(|me| !s.executed.contains(me))
        .collect();
    assert!(
        missed.is_empty(),
        "routes whose example the scenario does not execute: {}",
        missed.join(", ")
    );
    assert!(
        s.problems.is_empty(),
        "examples that do not hold:\n{}",
        s.problems.join("\n")
    );
}
