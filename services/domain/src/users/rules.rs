//! The pure rules of the user surface (A3.1 no escalation, A3.5, A3.8): who may act on whom,
//! which `access` may be granted, and how user and invite bodies are read.

use crate::data::access::role_insufficient;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use serde_json::{json, Value};
use std::sync::LazyLock;
use uuid::Uuid;

/// The credential-less `root` user every tenant has (A13 step 4).
pub const ROOT_USER_ID: Uuid = Uuid::nil();

/// Part A lists other than records: default 100, at most 1000 (A1.10).
pub const LIST_DEFAULT: i64 = 100;
pub const LIST_MAX: i64 = 1000;

/// Invite lifetime (A3.5).
pub const INVITE_TTL_DEFAULT: i64 = 604_800;
pub const INVITE_TTL_MAX: i64 = 2_592_000;

static EMAIL_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[^@\s]+@[^@\s]+$").expect("static regex"));

/// No escalation, rule 1 (A3.1): `access` being granted must be ≤ the caller's role.
pub fn check_grant(ctx: &TenantCtx, access: Role) -> Result<()> {
    if access > ctx.role {
        return Err(role_insufficient(access, ctx.role));
    }
    Ok(())
}

/// No escalation, rules 1–2 (A3.1): acting on another user needs the target's `access` ≤ the
/// caller's role (so a `root` target needs a `root` caller).
pub fn check_target(ctx: &TenantCtx, target: Role) -> Result<()> {
    if target > ctx.role {
        return Err(role_insufficient(target, ctx.role));
    }
    Ok(())
}

/// `403 AUTH_SUDO_REQUIRED` with a sentence.
pub fn sudo_required(what: &str) -> Error {
    Error::msg(ErrorCode::AuthSudoRequired, format!("{what} needs sudo"))
}

/// `403 AUTH_IMPERSONATION_RESTRICTED` for impersonation tokens.
pub fn no_fake(ctx: &TenantCtx, what: &str) -> Result<()> {
    if ctx.auth.is_fake {
        return Err(Error::msg(
            ErrorCode::AuthImpersonationRestricted,
            format!("Impersonation tokens cannot {what}"),
        ));
    }
    Ok(())
}

/// `:id` of `/api/user/:id`: a UUID or `me`, else `404 AUTH_USER_NOT_FOUND`.
pub fn user_id(ctx: &TenantCtx, raw: &str) -> Result<Uuid> {
    if raw == "me" {
        return Ok(ctx.user_id);
    }
    Uuid::parse_str(raw).map_err(|_| user_not_found(raw))
}

pub fn user_not_found(raw: &str) -> Error {
    Error::msg(
        ErrorCode::AuthUserNotFound,
        format!("No user {}", crate::ident::clip(raw)),
    )
    .with_data(json!({"id": crate::ident::clip(raw)}))
}

/// An `access` value.
pub fn parse_role(key: &str, v: &Value) -> Result<Role> {
    v.as_str()
        .and_then(Role::parse)
        .ok_or_else(|| Error::field_invalid(key, "one of deny, read, edit, full, root"))
}

/// An email address (`local@domain`), else `400 AUTH_EMAIL_INVALID`.
pub fn email(s: &str) -> Result<String> {
    if EMAIL_RE.is_match(s) && s.len() <= 320 {
        Ok(s.to_owned())
    } else {
        Err(Error::new(ErrorCode::AuthEmailInvalid).with_data(json!({"field": "email"})))
    }
}

/// A display name: a non-empty string of at most 200 characters.
pub fn display_name(v: &Value) -> Result<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 200 => Ok(s.clone()),
        _ => Err(Error::field_invalid(
            "name",
            "a non-empty string of at most 200 characters",
        )),
    }
}

/// A password of 8–1024 characters, else `400 AUTH_PASSWORD_INVALID`.
pub fn password(key: &str, s: &str) -> Result<()> {
    if crate::auth::password::valid_length(s) {
        Ok(())
    } else {
        Err(Error::new(ErrorCode::AuthPasswordInvalid).with_data(json!({"field": key})))
    }
}

pub use crate::auth::{body_object as object, opt_str, req_str};

/// `limit`/`offset` of an identity list (users, invites, keys): default 100, max 1000.
pub fn page(limit: Option<&str>, offset: Option<&str>) -> Result<(i64, i64)> {
    crate::data::query::bounds_within(limit, offset, LIST_DEFAULT, LIST_MAX)
}

/// `invite_type` (default `either`).
pub fn invite_type(v: Option<&str>) -> Result<&'static str> {
    match v {
        None => Ok("either"),
        Some("human") => Ok("human"),
        Some("machine") => Ok("machine"),
        Some("either") => Ok("either"),
        Some(_) => Err(Error::field_invalid(
            "invite_type",
            "one of human, machine, either",
        )),
    }
}

/// `expires_in` of an invite: integer seconds 1..=2592000 (default 604800).
pub fn invite_ttl(v: Option<&Value>) -> Result<i64> {
    match v {
        None | Some(Value::Null) => Ok(INVITE_TTL_DEFAULT),
        Some(x) => match x.as_i64() {
            Some(n) if (1..=INVITE_TTL_MAX).contains(&n) => Ok(n),
            _ => Err(Error::field_invalid(
                "expires_in",
                "an integer number of seconds from 1 to 2592000",
            )),
        },
    }
}

/// Whether an invite of `invite_type` may be redeemed by a route for `kind`
/// (`human` for `/auth/register/user`, `machine` for `/auth/provision/user`).
pub fn invite_fits(invite_type: &str, kind: &str) -> bool {
    invite_type == "either" || invite_type == kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthInfo, AuthType, Ident};

    pub(crate) fn ctx(role: Role, sudo_token: bool, fake: bool) -> TenantCtx {
        TenantCtx {
            tenant_id: Uuid::new_v4(),
            tenant: Ident::trusted("acme"),
            schema: Ident::trusted("ns_tenant_acme"),
            tenant_status: "active".into(),
            user_id: Uuid::new_v4(),
            username: "alice".into(),
            role,
            auth: AuthInfo {
                auth_type: AuthType::Username,
                token_id: None,
                key_id: None,
                key_fingerprint: None,
                api_key_id: None,
                is_sudo_token: sudo_token,
                is_fake: fake,
                faked_by: None,
                issued_at: None,
                expires_at: None,
            },
            meta_version: 0,
            request_id: "r".into(),
        }
    }

    #[test]
    fn no_escalation() {
        let full = ctx(Role::Full, true, false);
        assert!(check_grant(&full, Role::Full).is_ok());
        let e = check_grant(&full, Role::Root).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRoleInsufficient);
        assert_eq!(e.data.unwrap()["required"], "root");
        assert!(check_target(&full, Role::Edit).is_ok());
        assert!(check_target(&full, Role::Root).is_err());
        let root = ctx(Role::Root, false, false);
        assert!(check_target(&root, Role::Root).is_ok());
        assert!(check_grant(&root, Role::Root).is_ok());
    }

    #[test]
    fn ids_and_values() {
        let c = ctx(Role::Read, false, false);
        assert_eq!(user_id(&c, "me").unwrap(), c.user_id);
        assert_eq!(
            user_id(&c, "nope").unwrap_err().code,
            ErrorCode::AuthUserNotFound
        );
        assert_eq!(parse_role("access", &json!("edit")).unwrap(), Role::Edit);
        assert_eq!(
            parse_role("access", &json!("admin")).unwrap_err().code,
            ErrorCode::ValidationFieldInvalid
        );
        assert!(email("a@b.io").is_ok());
        assert_eq!(email("nope").unwrap_err().code, ErrorCode::AuthEmailInvalid);
        assert!(display_name(&json!("")).is_err());
        assert!(display_name(&json!(null)).is_err());
        assert_eq!(
            password("p", "short").unwrap_err().code,
            ErrorCode::AuthPasswordInvalid
        );
        assert!(no_fake(&ctx(Role::Root, false, true), "x").is_err());
    }

    #[test]
    fn pages_and_invites() {
        assert_eq!(page(None, None).unwrap(), (100, 0));
        assert_eq!(page(Some("0"), Some("5")).unwrap(), (0, 5));
        assert_eq!(
            page(Some("1001"), None).unwrap_err().code,
            ErrorCode::FilterInvalidLimit
        );
        assert_eq!(
            page(None, Some("-1")).unwrap_err().code,
            ErrorCode::FilterInvalidOffset
        );
        assert_eq!(invite_type(None).unwrap(), "either");
        assert!(invite_type(Some("robot")).is_err());
        assert_eq!(invite_ttl(None).unwrap(), 604_800);
        assert_eq!(invite_ttl(Some(&json!(2_592_000))).unwrap(), 2_592_000);
        assert!(invite_ttl(Some(&json!(2_592_001))).is_err());
        assert!(invite_ttl(Some(&json!(0))).is_err());
        assert!(invite_ttl(Some(&json!("1"))).is_err());
        assert!(invite_fits("either", "human") && invite_fits("human", "human"));
        assert!(!invite_fits("machine", "human"));
    }
}
