//! Validated names (A1.8): tenants, usernames, models, fields, relationships.
//! An [`Ident`] is the only way a user-supplied name reaches SQL; it is always quoted there.

use crate::{Error, ErrorCode};
use std::sync::LazyLock;

static NAME_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z][a-z0-9_]{0,62}$").expect("static regex"));
static TENANT_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z][a-z0-9_]{1,47}$").expect("static regex"));

/// PostgreSQL reserved key words (reserved, and reserved-but-usable-as-function-or-type).
const PG_RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// Names of system models, internal tables and phase-2 system models (A1.8).
pub const RESERVED_MODEL_NAMES: &[&str] = &[
    "models",
    "fields",
    "users",
    "filters",
    "tracked",
    "credentials",
    "machine_keys",
    "auth_challenges",
    "api_keys",
    "invites",
    "user_secrets",
    "idempotency_keys",
    "fs_nodes",
    "fs_blobs",
    "fs_usage",
    "rooms",
    "room_messages",
    "room_events",
    "factory_runs",
];

/// System columns present on every record (A1.7).
pub const SYSTEM_FIELDS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "trashed_at",
    "deleted_at",
    "access_read",
    "access_edit",
    "access_full",
    "access_deny",
];

/// System models seeded in every tenant (A4.6).
pub const SYSTEM_MODELS: &[&str] = &["models", "fields", "users", "filters", "tracked"];

/// A validated SQL-safe identifier (matches `^[a-z][a-z0-9_]{0,62}$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Ident(String);

impl Ident {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Trusted constructor for names that come from our own metadata (already validated once).
    pub fn trusted(s: impl Into<String>) -> Self {
        let s = s.into();
        debug_assert!(
            NAME_RE.is_match(&s) || s.starts_with("ns_tenant_") || s == "abbotik_control"
        );
        Self(s)
    }

    /// The identifier double-quoted for SQL. Safe because the charset excludes quotes.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Ident {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_name(s: &str) -> bool {
    NAME_RE.is_match(s)
}

fn forbidden_model_like(s: &str) -> bool {
    s.contains("__")
        || s.starts_with("pg_")
        || s.starts_with("sql_")
        || s.starts_with("sys_")
        || s == "information_schema"
        || PG_RESERVED.contains(&s)
}

/// A tenant name: `^[a-z][a-z0-9_]{1,47}$`.
pub fn tenant_name(s: &str) -> Result<Ident, Error> {
    if TENANT_RE.is_match(s) {
        Ok(Ident(s.to_owned()))
    } else {
        Err(Error::msg(
            ErrorCode::TenantNameInvalid,
            format!("Invalid tenant name: {}", clip(s)),
        )
        .with_data(serde_json::json!({ "field": "tenant" })))
    }
}

/// The schema of a tenant: `ns_tenant_<tenant>`.
pub fn tenant_schema(tenant: &Ident) -> Ident {
    Ident(format!("ns_tenant_{}", tenant.0))
}

/// A username: `^[a-z][a-z0-9_]{0,62}$`.
pub fn username(s: &str) -> Result<Ident, Error> {
    if is_name(s) {
        Ok(Ident(s.to_owned()))
    } else {
        Err(Error::msg(
            ErrorCode::AuthUsernameInvalid,
            format!("Invalid username: {}", clip(s)),
        )
        .with_data(serde_json::json!({ "field": "username" })))
    }
}

/// A user model name (not a system or reserved name).
pub fn model_name(s: &str) -> Result<Ident, Error> {
    if is_name(s) && !forbidden_model_like(s) && !RESERVED_MODEL_NAMES.contains(&s) {
        Ok(Ident(s.to_owned()))
    } else {
        Err(Error::msg(
            ErrorCode::ModelNameInvalid,
            format!("Invalid model name: {}", clip(s)),
        )
        .with_data(serde_json::json!({ "model": clip(s) })))
    }
}

/// A model name as it appears in a URL: user models and system models alike.
/// Unknown or malformed names are reported as `MODEL_NOT_FOUND` by the caller.
pub fn model_ref(s: &str) -> Option<Ident> {
    if is_name(s) && (SYSTEM_MODELS.contains(&s) || model_name(s).is_ok()) {
        Some(Ident(s.to_owned()))
    } else {
        None
    }
}

/// A user field name (not a system field).
pub fn field_name(s: &str) -> Result<Ident, Error> {
    if is_name(s) && !forbidden_model_like(s) && !SYSTEM_FIELDS.contains(&s) {
        Ok(Ident(s.to_owned()))
    } else {
        Err(Error::msg(
            ErrorCode::FieldNameInvalid,
            format!("Invalid field name: {}", clip(s)),
        )
        .with_data(serde_json::json!({ "field": clip(s) })))
    }
}

/// Any column name that may exist on a model (user or system field), for lookups.
pub fn column_ref(s: &str) -> Option<Ident> {
    is_name(s).then(|| Ident(s.to_owned()))
}

/// A relationship name (same charset as fields).
pub fn relationship_name(s: &str) -> Result<Ident, Error> {
    if is_name(s) {
        Ok(Ident(s.to_owned()))
    } else {
        Err(Error::msg(
            ErrorCode::FieldRelationshipInvalid,
            format!("Invalid relationship name: {}", clip(s)),
        ))
    }
}

/// Shortens user input echoed in messages.
pub fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rules() {
        assert!(model_name("orders").is_ok());
        assert!(model_name("o").is_ok());
        for bad in [
            "Orders",
            "1a",
            "a__b",
            "pg_x",
            "sql_x",
            "sys_x",
            "users",
            "select",
            "user",
            "information_schema",
            "",
            "a-b",
            "ünï",
        ] {
            assert!(model_name(bad).is_err(), "{bad}");
        }
        assert!(model_name(&"a".repeat(63)).is_ok());
        assert!(model_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn tenant_rules() {
        assert!(tenant_name("ab").is_ok());
        assert!(tenant_name("a").is_err());
        assert!(tenant_name(&"a".repeat(48)).is_ok());
        assert!(tenant_name(&"a".repeat(49)).is_err());
        assert_eq!(
            tenant_schema(&tenant_name("acme").unwrap()).as_str(),
            "ns_tenant_acme"
        );
    }

    #[test]
    fn field_rules() {
        assert!(field_name("total").is_ok());
        assert!(field_name("id").is_err());
        assert!(field_name("created_at").is_err());
        assert!(field_name("order").is_err());
        assert!(column_ref("id").is_some());
        assert!(column_ref("x\"y").is_none());
    }
}
