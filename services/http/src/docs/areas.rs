//! The docs areas of B4: their paths, one-line summaries and short concept texts. Whether an
//! area is *available* is never written here: it follows from the route registry (an area with
//! no registered route is "planned"), so the docs cannot advertise a surface the binary lacks.

use crate::registry::{self, RouteDoc};

/// One docs area (`/docs/<path>`).
pub struct Area {
    /// `auth`, `api/data`, … (no leading slash).
    pub path: &'static str,
    pub title: &'static str,
    /// One line, shown in `/docs` and `/llms.txt`.
    pub summary: &'static str,
    /// Markdown concepts shown on the area page above its routes.
    pub concepts: &'static str,
    /// A page that exists without routes (the error table).
    pub static_page: bool,
}

const fn area(
    path: &'static str,
    title: &'static str,
    summary: &'static str,
    concepts: &'static str,
) -> Area {
    Area {
        path,
        title,
        summary,
        concepts,
        static_page: false,
    }
}

/// Every area named by B4, in docs order, plus `docs` (the documentation routes themselves).
pub const AREAS: &[Area] = &[
    area(
        "auth",
        "Authentication",
        "Create a tenant, log in and obtain bearer tokens",
        "Every request outside `/auth/*` and the public routes (`/`, `/health`, `/ready`, `/llms.txt`, `/docs*`, `/openapi.json`) needs `Authorization: Bearer <token>`; the scheme name is case-insensitive. A tenant is an isolated namespace; its first user is `root`. Roles: `deny < read < edit < full < root`. Identity is re-checked on every request, so a deactivated user or a suspended tenant is refused at once. Login answers never reveal whether a tenant or user exists.",
    ),
    area(
        "api/describe",
        "Describe: models and fields",
        "Define models (tables) and fields (columns) at runtime",
        "A model is a table in the tenant's schema, a field one of its columns. Creating or changing them runs the DDL at once; reads need role `read`, writes need sudo. Every model also has the system fields `id`, `created_at`, `updated_at`, `trashed_at`, `deleted_at` and the ACL lists `access_read`, `access_edit`, `access_full`, `access_deny`. In describe bodies `null` on a nullable property removes that default or constraint.",
    ),
    area(
        "api/data",
        "Data: records",
        "Create, read, update and delete the records of a model",
        "Records are JSON objects keyed by field name. Record lists take `limit` (default 1000, max 10000) and `offset`; default order `created_at asc, id asc`. `?stat=false` hides the timestamps, `?access=false` the ACL lists; `id` is always returned. In record bodies `null` clears a field (SQL NULL). Deleting a record trashes it (soft delete); see `/docs/api/trashed`.",
    ),
    area(
        "api/find",
        "Find",
        "Search records with a JSON filter (where, order, select, limit)",
        "",
    ),
    area(
        "api/aggregate",
        "Aggregate",
        "Count, sum, average, min and max with grouping",
        "",
    ),
    area(
        "api/bulk",
        "Bulk, export and import",
        "Many operations in one all-or-nothing transaction",
        "`POST /api/bulk` runs up to 1000 record operations (`select`, `count`, `aggregate`, `create`, `update`, `delete`, `upsert` and their `-one`/`-all`/`-any`/`-404` forms) in order in one transaction: later operations see earlier writes, each is checked like its single route, and the first failure rolls everything back and names `data.operation_index`. `POST /api/bulk/export` and `POST /api/bulk/import` move whole models out and in.",
    ),
    area("api/acls", "Record ACLs", "Share single records with named users", ""),
    area(
        "api/stat",
        "Stat",
        "Record metadata: timestamps, etag and size without the data",
        "Stat answers when a record was created, updated or trashed, with an `etag` that changes on every write and the `size` of its JSON; it works on live and trashed records.",
    ),
    area("api/tracked", "Tracked history", "Per-field change history and revert", ""),
    area(
        "api/trashed",
        "Trash",
        "List, restore and purge soft-deleted records",
        "Deleting a record sets `trashed_at`; it disappears from normal reads but can be listed here, restored, or purged for good. A purged record is never returned by any route.",
    ),
    area("api/cron", "Cron", "Scheduled jobs and their runs", ""),
    area(
        "api/keys",
        "API keys",
        "Bearer API keys (`abk_…`) for machines",
        "An API key is `abk_` + 43 base64url characters, shown once at creation; only its SHA-256 is stored. Send it as `Authorization: Bearer abk_…`: the request runs as the key's owner with role min(owner's current role, the key's `access`). A key may expire (`expires_at`); a revoked or expired key, or one whose owner was deactivated, is refused on the very next request on every server. A key never creates a key with more access than itself.",
    ),
    area(
        "api/user",
        "Users",
        "The caller's profile, the tenant's users, sudo and impersonation",
        "`/api/user/me` is the caller. Acting on another user never goes above the caller's own effective role (no escalation).",
    ),
    area(
        "api/user/machine-keys",
        "Machine keys",
        "Ed25519 keys for machine sign-in",
        "A machine signs in without a password: `POST /auth/challenge` (tenant + `key_id` or `fingerprint`) returns a 43-character nonce valid 300 s; sign the nonce string's UTF-8 bytes with the private key (pure Ed25519) and send the base64url signature to `POST /auth/verify` for a 1-hour token. With OpenSSL: `printf %s \"$NONCE\" > nonce.txt; openssl pkeyutl -sign -inkey key.pem -rawin -in nonce.txt | basenc --base64url | tr -d '=\\n'` (OpenSSL 3.0 cannot sign `-rawin` input from a pipe). Rotate a key with an overlap window; the last active key of a user without a password cannot be revoked. A revoked or expired key's tokens are refused on the next request.",
    ),
    area(
        "api/user/secrets",
        "User secrets",
        "Encrypted per-user secrets",
        "Secrets (third-party tokens an agent needs at run time) are encrypted at rest with AES-256-GCM under the operator's key-encryption key, bound to their tenant, user and name. Listing and writing never return values; only the owner's explicit `POST /api/user/secrets/:name/reveal` does, and never with an impersonation token. Values never appear in logs, errors or exports.",
    ),
    area(
        "api/user/invite",
        "Invites",
        "Invite users to an existing tenant",
        "A sudo caller creates a one-time code (`inv_…`, shown once, valid `expires_in` seconds) for a username, a role no higher than their own, and a type: `human` (redeemed with a password at `POST /auth/register/user`), `machine` (with an Ed25519 key at `POST /auth/provision/user`) or `either`. A code works once; revoking it stops it at once.",
    ),
    area("api/watch", "Watch", "Stream change events", ""),
    area("api/tenant", "Tenant", "Tenant information and region moves", ""),
    area("fs", "Filesystem", "A virtual filesystem over records and files", ""),
    area("mcp", "MCP", "The Model Context Protocol server for agents", ""),
    area("regions", "Regions", "Regions and the tenant directory", ""),
    Area {
        path: "errors",
        title: "Error codes",
        summary: "Every error code with its HTTP status and remediation",
        concepts: "",
        static_page: true,
    },
    area(
        "limits",
        "Limits",
        "Rate limits and quotas",
        "A request must pass every limiter that applies to it. `auth`: per client address on `/auth/*`, 30 requests/min, burst 10, counted by each server on its own. `tenant_create`: per client address on tenant-creating routes, 10 per hour. `tenant`: per tenant on every `/api` route, 100 requests/s, burst 200. `key`: per credential (API key, machine key, or the user behind a login token), 50 requests/s, burst 100. Budgets refill continuously (GCRA): a burst passes at once, then requests pass at the rate. The client address is the TCP peer, or behind a proxy listed in `ABBOTIK_TRUSTED_PROXIES` the last untrusted `X-Forwarded-For` address.\n\nEvery limited response carries `RateLimit-Limit` (the burst), `RateLimit-Remaining` and `RateLimit-Reset` (seconds until a request passes again; 0 while requests remain) of the most constrained budget. A refusal is `429 RATE_LIMITED` with `Retry-After` (seconds) and `data.scope` (`auth`, `tenant_create`, `tenant`, `key`), `data.limit` (the burst) and `data.retry_after`. `/health`, `/ready`, `/docs*`, `/llms.txt` and `/openapi.json` are never limited.\n\nThe operator sets the defaults with `ABBOTIK_RATE_*` (`0` disables a limiter) and per-tenant overrides with `abbot-api tenant limits <tenant> --tenant-rps N --tenant-burst N --key-rps N --key-burst N`; servers apply an override within 5 seconds. Budgets are shared by every server through Redis; when Redis is unreachable each server falls back to an in-process budget with the same limits (the effective limit is then at most servers × limit) and `/ready` answers `200` with `status:\"degraded\"` and `ratelimit` among the failed checks, not `503`: a cache outage must not take the API down.",
    ),
    area(
        "operations",
        "Operations",
        "Service identity, liveness and readiness",
        "`/health` answers while the process runs and never touches dependencies. `/ready` checks every configured dependency in parallel (2 s timeout each): a PostgreSQL failure or a shutdown in progress answers `503 NOT_READY`; a failure of Redis, NATS or S3 answers `200` with `status:\"degraded\"` unless `?strict=true`.",
    ),
    area(
        "docs",
        "Documentation",
        "This documentation: /llms.txt, /docs and /openapi.json",
        "All docs routes are public and answer markdown whatever the `Accept` header says; add `?format=json` for `{\"success\":true,\"data\":{\"path\",\"markdown\",\"routes\"}}`. Every docs surface is rendered from the same route registry the router is built from. Endpoint pages use literal placeholder names and the method: `GET /api/data/:model/:id` → `/docs/api/data/model/id/GET`.",
    ),
    area("llm/room", "LLM rooms", "Conversation rooms (phase 2)", ""),
    area("llm/factory", "LLM factory", "Generated applications (phase 2)", ""),
    area("v1/responses", "Responses API", "OpenAI-compatible responses (phase 2)", ""),
];

/// The table entry of an area path.
pub fn find(path: &str) -> Option<&'static Area> {
    AREAS.iter().find(|a| a.path == path)
}

/// Registered routes of an area, in registry order.
pub fn routes_of(area: &str) -> Vec<&'static RouteDoc> {
    registry::all()
        .into_iter()
        .filter(|r| r.area == area)
        .collect()
}

/// An area is available when it has a registered route (or is a static page).
pub fn is_available(a: &Area) -> bool {
    a.static_page || registry::all().iter().any(|r| r.area == a.path)
}

/// Available areas in docs order; areas used by routes but missing from [`AREAS`] follow.
pub fn available() -> Vec<AreaView> {
    let mut out: Vec<AreaView> = AREAS
        .iter()
        .filter(|a| is_available(a))
        .map(AreaView::from)
        .collect();
    for r in registry::all() {
        if find(r.area).is_none() && !out.iter().any(|v| v.path == r.area) {
            out.push(AreaView {
                path: r.area,
                title: r.area,
                summary: "",
                concepts: "",
            });
        }
    }
    out
}

/// Areas named by the contract that have no route in this binary yet.
pub fn planned() -> Vec<&'static Area> {
    AREAS.iter().filter(|a| !is_available(a)).collect()
}

/// An area as rendered (table entry, or a bare area name used by a route).
#[derive(Clone, Copy)]
pub struct AreaView {
    pub path: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    pub concepts: &'static str,
}

impl From<&'static Area> for AreaView {
    fn from(a: &'static Area) -> Self {
        AreaView {
            path: a.path,
            title: a.title,
            summary: a.summary,
            concepts: a.concepts,
        }
    }
}
