//! Sudo and impersonation tokens (A3.9) and introspection of the calling credential (A3.8):
//! short-lived tokens minted from the caller's own, never refreshable, whose identity is
//! re-resolved on every request like any other (a sudo token dies with its source key; an
//! impersonation token dies with its impersonator).

use super::jwt::Claims;
use super::{body_object, opt_str, AuthService};
use crate::users::rules::no_fake;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use serde_json::{json, Value};
use uuid::Uuid;

/// Lifetime of sudo and impersonation tokens.
pub const ELEVATED_TTL: i64 = 900;

/// A token's `iat`/`exp` as an A1.6 timestamp (`null` when unknown or unbounded).
fn epoch(secs: Option<i64>) -> Value {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or(Value::Null, |d| json!(crate::time::Ts(d)))
}

impl AuthService {
    /// Claims of a token minted from the caller's credential: same user, tenant, auth type and
    /// key ids, so it is checked against the same rows.
    fn derived_claims(ctx: &TenantCtx, ttl: i64) -> Claims {
        let mut c = Claims::issue(
            ctx.user_id,
            &ctx.username,
            ctx.tenant.as_str(),
            ctx.tenant_id,
            ctx.role.as_str(),
            ctx.auth.auth_type.as_str(),
            ttl,
        );
        c.key_id = ctx.auth.key_id.clone();
        c.key_fingerprint = ctx.auth.key_fingerprint.clone();
        c.api_key_id = ctx.auth.api_key_id.clone();
        c
    }

    /// `POST /api/user/sudo`: a 15-minute sudo token for a caller whose role is ≥ `full`.
    pub fn sudo(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        no_fake(ctx, "elevate to sudo")?;
        let b = body_object(body)?;
        let reason = opt_str(&b, "reason")?.map(str::to_owned);
        if ctx.role < Role::Full {
            return Err(Error::msg(
                ErrorCode::AuthSudoForbidden,
                format!(
                    "Sudo needs role full or root; yours is {}",
                    ctx.role.as_str()
                ),
            )
            .with_data(json!({"required": Role::Full, "actual": ctx.role})));
        }
        let mut c = Self::derived_claims(ctx, ELEVATED_TTL);
        c.is_sudo = Some(true);
        c.elevated_at = Some(c.iat);
        c.elevation_reason = reason.clone();
        let token = self.keys.sign(&c)?;
        tracing::info!(reason = reason.as_deref(), "sudo token issued");
        Ok(json!({
            "sudo_token": token, "expires_in": ELEVATED_TTL, "token_type": "Bearer",
            "access_level": ctx.role, "is_sudo": true, "reason": reason,
            "warning": "Elevated token: valid 15 minutes; every use is audited.",
        }))
    }

    /// `POST /api/user/fake`: `root` acts as another user for 15 minutes.
    pub async fn fake(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        if ctx.auth.is_fake {
            return Err(Error::msg(
                ErrorCode::AuthImpersonationRestricted,
                "Impersonation tokens cannot impersonate",
            ));
        }
        if ctx.role != Role::Root {
            return Err(Error::msg(
                ErrorCode::AuthFakeForbidden,
                "Only a root user may impersonate",
            )
            .with_data(json!({"required": Role::Root, "actual": ctx.role})));
        }
        let b = body_object(body)?;
        let not_found =
            |who: &str| Error::msg(ErrorCode::AuthUserNotFound, format!("No active user {who}"));
        let target_id = match (opt_str(&b, "user_id")?, opt_str(&b, "username")?) {
            (Some(id), _) => Uuid::parse_str(id).map_err(|_| not_found(id))?,
            (None, Some(name)) => {
                self.store
                    .login_user(&ctx.tenant, name)
                    .await?
                    .filter(|u| u.active)
                    .ok_or_else(|| not_found(name))?
                    .id
            }
            (None, None) => return Err(Error::field_missing("user_id")),
        };
        if target_id == ctx.user_id {
            return Err(Error::msg(
                ErrorCode::AuthFakeSelf,
                "Impersonating yourself changes nothing",
            ));
        }
        let target = self
            .store
            .user_object(&ctx.tenant, target_id)
            .await?
            .filter(|u| u["trashed_at"].is_null())
            .ok_or_else(|| not_found(&target_id.to_string()))?;
        let username = target["username"].as_str().unwrap_or_default();
        let access = target["access"].as_str().unwrap_or("deny");
        let mut c = Claims::issue(
            target_id,
            username,
            ctx.tenant.as_str(),
            ctx.tenant_id,
            access,
            crate::ctx::AuthType::Username.as_str(),
            ELEVATED_TTL,
        );
        c.is_fake = Some(true);
        c.faked_by_user_id = Some(ctx.user_id.to_string());
        c.faked_by_username = Some(ctx.username.clone());
        c.faked_at = Some(c.iat);
        let token = self.keys.sign(&c)?;
        tracing::info!(target_user_id = %target_id, "impersonation token issued");
        Ok(json!({
            "fake_token": token, "expires_in": ELEVATED_TTL, "token_type": "Bearer",
            "target_user": {"id": target_id, "name": target["name"], "username": username, "access": access},
            "faked_by": {"id": ctx.user_id, "username": ctx.username},
            "warning": "Impersonation token: actions are recorded with faked_by.",
        }))
    }

    /// `GET /api/user/introspect`: what the server made of the calling credential.
    pub fn introspect(ctx: &TenantCtx) -> Value {
        let a = &ctx.auth;
        json!({
            "tenant": {"id": ctx.tenant_id, "name": ctx.tenant, "status": ctx.tenant_status},
            "user": {"id": ctx.user_id, "username": ctx.username, "access": ctx.role},
            "auth": {
                "auth_type": a.auth_type.as_str(), "key_id": a.key_id,
                "key_fingerprint": a.key_fingerprint, "api_key_id": a.api_key_id,
                "is_sudo": a.is_sudo_token, "is_fake": a.is_fake, "faked_by": a.faked_by,
                "issued_at": epoch(a.issued_at.filter(|i| *i > 0)),
                "expires_at": epoch(a.expires_at.filter(|e| *e != i64::MAX)),
            },
            "request_id": ctx.request_id,
        })
    }
}
