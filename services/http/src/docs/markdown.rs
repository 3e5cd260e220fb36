//! Markdown pages rendered from the route registry and the error table: the `/docs` index,
//! area pages, endpoint pages, the error code table. Also the JSON view of one route used by
//! `?format=json`. Nothing here is written by hand per route.

use super::areas::{self, AreaView};
use super::resolve::endpoint_path;
use crate::error::docs_of;
use crate::error_table::row;
use crate::registry::{self, Access, RouteDoc};
use abbotik_domain::ErrorCode;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The code of a string listed in a route's `errors`.
pub fn code_of(s: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
}

/// An example as JSON (text that does not parse is kept as a string).
pub fn example(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The auth line of a route.
pub fn auth_label(a: Access) -> &'static str {
    match a {
        Access::Public => "public",
        Access::Bearer => "bearer",
        Access::Sudo => "bearer + sudo",
    }
}

/// One route as JSON (the `routes` of the `?format=json` docs form).
pub fn route_json(r: &RouteDoc) -> Value {
    json!({
        "method": r.method,
        "path": r.contract_path(),
        "area": r.area,
        "auth": auth_label(r.access),
        "summary": r.summary,
        "description": r.description,
        "request": r.request.map(example),
        "response": example(r.response),
        "status": r.status,
        "errors": r.errors,
        "docs": endpoint_path(r),
    })
}

/// A fenced block of an example: pretty JSON, or the text of a string example (markdown bodies).
fn fenced(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => format!("```markdown\n{s}\n```\n"),
        Ok(v) => {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_owned());
            format!("```json\n{pretty}\n```\n")
        }
        Err(_) => format!("```\n{text}\n```\n"),
    }
}

/// A copy-paste `curl` line for a route (placeholders as `<name>`).
fn curl(r: &RouteDoc) -> String {
    let path: String = r
        .path
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                format!("<{}>", s.trim_matches(|c| c == '{' || c == '}' || c == '*'))
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut out = format!("curl -sS -X {} \"$ABBOTIK_URL{}\"", r.method, path);
    if r.access != Access::Public {
        out.push_str(" \\\n  -H \"Authorization: Bearer $TOKEN\"");
    }
    if let Some(body) = r.request {
        let compact = serde_json::from_str::<Value>(body)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| body.to_owned());
        let _ = write!(
            out,
            " \\\n  -H \"Content-Type: application/json\" \\\n  -d '{}'",
            compact.replace('\'', "'\\''")
        );
    }
    out
}

/// `| code | HTTP | remediation |` rows of a route's errors.
fn error_rows(codes: &[&str]) -> String {
    let mut out = String::from("| Code | HTTP | Remediation |\n|------|------|-------------|\n");
    for c in codes {
        match code_of(c) {
            Some(code) => {
                let r = row(code);
                let _ = writeln!(
                    out,
                    "| `{c}` | {} | {} |",
                    status_text(r.status),
                    cell(r.remediation)
                );
            }
            None => {
                let _ = writeln!(out, "| `{c}` | ? | (not in the error table) |");
            }
        }
    }
    out
}

fn status_text(s: u16) -> String {
    if s == 0 {
        "—".to_owned()
    } else {
        s.to_string()
    }
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The full section of one route (used on area and endpoint pages).
pub fn route_section(r: &RouteDoc, level: usize) -> String {
    let h = "#".repeat(level);
    let mut out = format!(
        "{h} {} {}\n\n{}\n\n",
        r.method,
        r.contract_path(),
        r.summary
    );
    let _ = writeln!(out, "- Auth: {}", auth_label(r.access));
    let _ = writeln!(out, "- Success: `{}`", r.status);
    let _ = writeln!(out, "- Page: {}\n", endpoint_path(r));
    if !r.description.is_empty() {
        let _ = writeln!(out, "{}\n", r.description.trim());
    }
    let _ = writeln!(out, "```sh\n{}\n```\n", curl(r));
    if let Some(req) = r.request {
        let _ = writeln!(out, "Request body:\n\n{}", fenced(req));
    }
    let _ = writeln!(out, "Response `{}`:\n\n{}", r.status, fenced(r.response));
    if !r.errors.is_empty() {
        let _ = writeln!(out, "Errors:\n\n{}", error_rows(r.errors));
    }
    if r.access != Access::Public {
        out.push_str("Without a valid bearer credential: `401 AUTH_TOKEN_REQUIRED`, `AUTH_TOKEN_INVALID` or `AUTH_TOKEN_EXPIRED`.\n\n");
    }
    out
}

/// `GET /docs`: areas with summaries and their routes.
pub fn index() -> String {
    let mut out = String::from(
        "# Abbotik API docs\n\nAbbotik is a multi-tenant, agent-first backend: each tenant defines models and fields at runtime and gets a JSON API over them. Start with `/llms.txt` for the bootstrap steps; the machine-readable form of every route is `/openapi.json`.\n\nEvery page is markdown; add `?format=json` for `{\"success\":true,\"data\":{\"path\",\"markdown\",\"routes\"}}`. One endpoint: `/docs/<path with placeholder names>/<METHOD>`, e.g. `/docs/api/data/model/id/GET`.\n\n## Areas\n\n",
    );
    for a in areas::available() {
        let _ = writeln!(out, "### [{}](/docs/{})\n", a.title, a.path);
        if !a.summary.is_empty() {
            let _ = writeln!(out, "{}\n", a.summary);
        }
        for r in areas::routes_of(a.path) {
            let _ = writeln!(
                out,
                "- [`{} {}`]({}) — {} ({})",
                r.method,
                r.contract_path(),
                endpoint_path(r),
                r.summary,
                auth_label(r.access)
            );
        }
        out.push('\n');
    }
    let planned = areas::planned();
    if !planned.is_empty() {
        out.push_str("## Not available yet\n\nNamed by the contract but not served by this version (requests for their pages answer `404 DOCS_NOT_FOUND`): ");
        let names: Vec<String> = planned.iter().map(|a| format!("`{}`", a.path)).collect();
        out.push_str(&names.join(", "));
        out.push_str(".\n");
    }
    out
}

/// `GET /docs/<area>`.
pub fn area_page(a: &AreaView) -> String {
    if a.path == "errors" {
        return errors_page();
    }
    let mut out = format!("# {}\n\n", a.title);
    if !a.summary.is_empty() {
        let _ = writeln!(out, "{}.\n", a.summary.trim_end_matches('.'));
    }
    if !a.concepts.is_empty() {
        let _ = writeln!(out, "## Concepts\n\n{}\n", a.concepts);
    }
    let routes = areas::routes_of(a.path);
    out.push_str("## Routes\n\n");
    for r in &routes {
        let _ = writeln!(
            out,
            "- [`{} {}`]({}) — {}",
            r.method,
            r.contract_path(),
            endpoint_path(r),
            r.summary
        );
    }
    out.push('\n');
    for r in routes {
        out.push_str(&route_section(r, 3));
    }
    out.push_str("Errors of every surface: /docs/errors.\n");
    out
}

/// `GET /docs/<path>/<METHOD>`.
pub fn endpoint_page(r: &RouteDoc) -> String {
    let mut out = route_section(r, 1);
    let _ = writeln!(out, "Area: /docs/{}", r.area);
    out
}

/// Every method of one path (`/docs/api/data/model/id`).
pub fn route_path_page(key: &str, routes: &[&'static RouteDoc]) -> String {
    let mut out = format!("# /{key}\n\n");
    for r in routes {
        out.push_str(&route_section(r, 2));
    }
    out
}

/// `GET /docs/errors`: every code of the table.
pub fn errors_page() -> String {
    let mut out = String::from(
        "# Error codes\n\nEvery error answers the same envelope:\n\n```json\n{\"success\":false,\"error\":\"Record not found\",\"error_code\":\"RECORD_NOT_FOUND\",\"code\":\"RECORD_NOT_FOUND\",\"message\":\"Record not found\",\"remediation\":\"Check the id; trashed records are listed under /api/trashed/:model.\",\"docs\":\"/docs/api/data\",\"data\":{\"model\":\"orders\",\"id\":\"0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10\"}}\n```\n\n`error` and `message` carry the same sentence, `error_code` and `code` the same code; `data` is present only with context. Branch on `code`, never on the sentence. This table is the whole registry of the contract, including codes of surfaces this version does not serve yet. One code: `/docs/errors/<CODE>`.\n\n| Code | HTTP | Meaning | Remediation |\n|------|------|---------|-------------|\n",
    );
    for code in ErrorCode::ALL {
        let r = row(*code);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            code.as_str(),
            status_text(r.status),
            cell(r.meaning),
            cell(r.remediation)
        );
    }
    out
}

/// `GET /docs/errors/<CODE>`.
pub fn error_code_page(code: ErrorCode) -> String {
    let r = row(code);
    let mut out = format!(
        "# {}\n\n- HTTP: {}\n- Meaning: {}\n- Remediation: {}\n- Docs of its surface: {}\n\n",
        code.as_str(),
        status_text(r.status),
        r.meaning,
        r.remediation,
        docs_of(code)
    );
    let users: Vec<&RouteDoc> = registry::all()
        .into_iter()
        .filter(|rd| rd.errors.contains(&code.as_str()))
        .collect();
    if !users.is_empty() {
        out.push_str("Routes that may answer it:\n\n");
        for u in users {
            let _ = writeln!(
                out,
                "- [`{} {}`]({})",
                u.method,
                u.contract_path(),
                endpoint_path(u)
            );
        }
    }
    out
}

/// Routes shown with a page in the JSON form.
pub fn page_routes(routes: &[&RouteDoc]) -> Value {
    Value::Array(routes.iter().map(|r| route_json(r)).collect())
}
