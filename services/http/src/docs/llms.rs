//! `GET /llms.txt`: the agent entrypoint. Bootstrap steps quote the registry's own examples, and
//! each way in (password, machine keys, API keys, MCP) is described only when its routes are
//! registered in this binary — otherwise it is marked as not available yet.

use super::areas;
use crate::registry::{self, RouteDoc};
use serde_json::Value;
use std::fmt::Write as _;

fn route(method: &str, path: &str) -> Option<&'static RouteDoc> {
    registry::all()
        .into_iter()
        .find(|r| r.method == method && r.path == path)
}

fn has_prefix(prefix: &str) -> bool {
    registry::all().iter().any(|r| r.path.starts_with(prefix))
}

fn compact(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| text.to_owned())
}

/// One bootstrap step quoting the route's example request and response.
fn step(out: &mut String, n: &mut usize, what: &str, r: &RouteDoc) {
    *n += 1;
    let _ = writeln!(out, "{n}. {what}: `{} {}`", r.method, r.contract_path());
    if let Some(req) = r.request {
        let _ = writeln!(out, "   ```json\n   {}\n   ```", compact(req));
    }
    let _ = writeln!(
        out,
        "   → `{}`\n   ```json\n   {}\n   ```",
        r.status,
        compact(r.response)
    );
}

/// The whole `/llms.txt` body.
pub fn render(version: &str) -> String {
    let mut out = format!(
        "# Abbotik API\n\n> A multi-tenant, agent-first backend (version {version}). Each tenant is an isolated PostgreSQL schema; you define models (tables) and fields (columns) at runtime over HTTP and get a JSON API over their records, with no server code of your own.\n\nAll paths are absolute from the origin you reached (e.g. `https://api.abbotik.com`). Request and response bodies are JSON (`Content-Type: application/json`) unless a route says otherwise. Full index: [/docs](/docs). Every route, machine-readable: [/openapi.json](/openapi.json).\n\n"
    );

    out.push_str("## Bootstrap: human auth (password)\n\n");
    let mut n = 0;
    let register = route("POST", "/auth/register");
    let login = route("POST", "/auth/login");
    if let Some(r) = register {
        step(
            &mut out,
            &mut n,
            "Create a tenant and its first user (role `root`; no token yet)",
            r,
        );
    }
    if let Some(r) = login {
        step(
            &mut out,
            &mut n,
            "Log in with the same tenant, username and password",
            r,
        );
        n += 1;
        let _ = writeln!(
            out,
            "{n}. Send `Authorization: Bearer <data.token>` on every `/api/*` request. `data.expires_in` is the token lifetime in seconds."
        );
    }
    if let Some(r) = route("POST", "/auth/refresh") {
        n += 1;
        let _ = writeln!(
            out,
            "{n}. Before it expires: `{} {}` with `{{\"token\":\"<jwt>\"}}` returns a fresh token.",
            r.method,
            r.contract_path()
        );
    }
    if register.is_none() || login.is_none() {
        out.push_str("Password sign-up and login are not available in this version yet.\n");
    }
    out.push('\n');

    out.push_str("## Other ways in\n\n");
    let machine =
        route("POST", "/auth/challenge").is_some() && route("POST", "/auth/verify").is_some();
    if machine {
        out.push_str("- Machine auth (Ed25519): `POST /auth/provision` or a registered key, then `POST /auth/challenge` and sign the nonce, then `POST /auth/verify` for a 1-hour token. See [/docs/auth](/docs/auth).\n");
    } else {
        out.push_str(
            "- Machine auth (Ed25519 challenge/verify): planned, not available in this version.\n",
        );
    }
    if has_prefix("/api/keys") {
        out.push_str("- API keys (`abk_…`, sent as the bearer credential): see [/docs/api/keys](/docs/api/keys).\n");
    } else {
        out.push_str("- Bearer API keys (`abk_…`): planned, not available in this version.\n");
    }
    if has_prefix("/mcp") {
        out.push_str(
            "- MCP (Model Context Protocol over HTTP): `POST /mcp`, see [/docs/mcp](/docs/mcp).\n",
        );
    } else {
        out.push_str(
            "- MCP server (`/mcp`): planned, not available in this version; use the HTTP API.\n",
        );
    }
    out.push('\n');

    let first_model = route("POST", "/api/describe/{model}");
    let first_record = route("POST", "/api/data/{model}");
    if first_model.is_some() || first_record.is_some() {
        out.push_str("## First steps with a token\n\n");
        let mut n = 0;
        if let Some(r) = first_model {
            step(
                &mut out,
                &mut n,
                "Create a model (needs sudo: the tenant's first user is `root`)",
                r,
            );
        }
        if let Some(r) = first_record {
            step(&mut out, &mut n, "Create a record", r);
        }
        out.push('\n');
    }

    out.push_str("## Areas\n\n");
    for a in areas::available() {
        let summary = if a.summary.is_empty() {
            a.title
        } else {
            a.summary
        };
        let _ = writeln!(out, "- [{}](/docs/{}): {}", a.title, a.path, summary);
    }
    let planned = areas::planned();
    if !planned.is_empty() {
        let names: Vec<&str> = planned.iter().map(|a| a.path).collect();
        let _ = writeln!(
            out,
            "\nNot available in this version yet: {}.",
            names.join(", ")
        );
    }
    out.push('\n');

    out.push_str(ENVELOPE);
    out.push_str(CONVENTIONS);
    out
}

const ENVELOPE: &str = r#"## Envelope and errors

Success (every 2xx JSON response):

```json
{"success":true,"data":{}}
```

Error (every 4xx/5xx):

```json
{"success":false,"error":"Record not found","error_code":"RECORD_NOT_FOUND","code":"RECORD_NOT_FOUND","message":"Record not found","remediation":"Check the id; trashed records are listed under /api/trashed/:model.","docs":"/docs/api/data","data":{"model":"orders","id":"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"}}
```

Branch on `code` (stable; `error_code` is the same). `error`/`message` is a sentence for humans, `remediation` says what to do next, `docs` links the page of the surface, `data` (only when there is context) names the offending field, id or index. Statuses: 400 malformed or invalid, 401 missing/invalid credential, 403 not allowed, 404 unknown route or resource, 405 wrong method (`Allow` header), 409 conflict, 413/415 body too large / wrong content type, 429 rate limited (`Retry-After`), 5xx server side (retry with backoff). Every code: [/docs/errors](/docs/errors).

"#;

const CONVENTIONS: &str = r#"## Conventions that matter to agents

- `null` in request bodies: in `/auth/*` and `/api/user*` bodies and in request options, `null` means absent (defaults apply); `PUT /api/user/:id` is the exception, where `null` clears a nullable field. In record data (create/update bodies) and describe bodies, `null` clears the value (SQL NULL / removes the constraint). Inside a `where` filter, `null` is a value (`IS NULL`).
- Keys are `snake_case`. Timestamps are RFC 3339 UTC with exactly 6 fraction digits: `"2026-05-06T14:03:21.482913Z"`; any RFC 3339 offset is accepted on input. Ids are lowercase UUID strings. Durations are integer seconds.
- Pagination of record lists: `limit` (default 1000, max 10000) and `offset`; other lists default to 100 (max 1000). `limit=0` returns `[]`. Default order `created_at asc, id asc`. A response over the size cap answers `413 VALIDATION_RESPONSE_TOO_LARGE`: narrow `select` or lower `limit`.
- `?unwrap` (or `?unwrap=true`): the bare `data` value without the envelope. Errors keep the envelope.
- `?stat=false` removes `created_at`, `updated_at`, `trashed_at`, `deleted_at` from records; `?access=false` removes `access_read`, `access_edit`, `access_full`, `access_deny`. `id` is always kept.
- Every record carries the system fields `id`, `created_at`, `updated_at`, `trashed_at`, `deleted_at` and the ACL lists; they are ignored in create/update bodies (except `id` on create).
- `X-Request-Id`: send one (`[A-Za-z0-9._:-]{1,128}`) or get a generated one; it is echoed on every response, errors included. Quote it when reporting a failure.
- Docs are markdown whatever the `Accept` header says; `?format=json` gives `{"success":true,"data":{"path","markdown","routes"}}`.
"#;
