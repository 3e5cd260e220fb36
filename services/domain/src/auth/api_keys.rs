//! Bearer API keys (A3.7): minting (`abk_` + 43 base64url chars, shown once, stored as the
//! SHA-256 of the whole string), listing and revoking them, and turning a presented key into
//! a verified credential whose liveness the per-request identity check re-reads.

use super::jwt::Claims;
use super::{body_object, opt_str, AuthService, Verified};
use crate::ctx::AuthType;
use crate::ports::api_keys::{ApiKeyLookup, ApiKeyRow, NewApiKey, Revoked};
use crate::time::{format_opt, parse_rfc3339};
use crate::users::rules::{check_target, no_fake, page, sudo_required};
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Every key starts with this.
pub const PREFIX: &str = "abk_";
/// Live keys one user may hold.
pub const MAX_ACTIVE: i64 = 100;
/// `last_used_at` is written at most this often per key and pod.
const TOUCH_EVERY_SECS: i64 = 60;

/// Lowercase hex SHA-256 of the whole key string (the lookup key).
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh key: `abk_` + 32 CSPRNG bytes in base64url without padding (47 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A presented string shaped like a key (the lookup is the only real check).
fn well_formed(key: &str) -> bool {
    key.len() == 47
        && key.starts_with(PREFIX)
        && key[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn row_json(k: &ApiKeyRow) -> Value {
    json!({
        "id": k.id, "user_id": k.user_id, "name": k.name, "prefix": k.prefix,
        "access": k.access, "created_at": k.created_at,
        "last_used_at": format_opt(k.last_used_at), "expires_at": format_opt(k.expires_at),
        "revoked_at": format_opt(k.revoked_at),
    })
}

fn key_not_found(id: &str) -> Error {
    Error::msg(ErrorCode::KeyNotFound, format!("No API key {id}")).with_data(json!({"key_id": id}))
}

/// The per-key bookkeeping a verified API key carries in the verified cache.
#[derive(Debug, Default)]
pub struct KeyUse {
    last_touch: AtomicI64,
}

impl Verified {
    /// A presented API key as a credential: claims synthesized from the key row's immutable
    /// facts (tenant, owner, id); `exp` is the key's expiry.
    fn from_api_key(k: &ApiKeyLookup) -> Result<Verified> {
        let mut claims = Claims::issue(
            k.user_id,
            "",
            &k.tenant,
            k.tenant_id,
            k.access.as_str(),
            AuthType::ApiKey.as_str(),
            0,
        );
        // A key has no issue time of its own in the credential; no expiry means none.
        claims.iat = 0;
        claims.exp = k.expires_at.map_or(i64::MAX, |t| t.0.timestamp());
        claims.api_key_id = Some(k.id.to_string());
        let mut v = Verified::from_claims(claims)?;
        v.key_use = Some(Arc::new(KeyUse::default()));
        Ok(v)
    }
}

impl AuthService {
    /// Resolves a presented `abk_…` key (unknown → `401 AUTH_TOKEN_INVALID`).
    pub(super) async fn verify_api_key(&self, key: &str) -> Result<Verified> {
        let invalid = || Error::new(ErrorCode::AuthTokenInvalid);
        if !well_formed(key) {
            return Err(invalid());
        }
        let found = self.api_keys.lookup(&key_hash(key)).await?;
        Verified::from_api_key(&found.ok_or_else(invalid)?)
    }

    /// Writes `last_used_at` in the background, at most once a minute per key and pod.
    pub(super) fn note_api_key_use(&self, v: &Verified) {
        let (Some(used), Some(id)) = (&v.key_use, v.identity.api_key) else {
            return;
        };
        let now = chrono::Utc::now().timestamp();
        let last = used.last_touch.load(Ordering::Relaxed);
        if now - last < TOUCH_EVERY_SECS
            || used
                .last_touch
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.api_keys.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch(id).await {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }

    /// `POST /api/keys` (A3.7): a key for the caller, shown once.
    pub async fn create_api_key(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        no_fake(ctx, "create API keys")?;
        let b = body_object(body)?;
        let name = opt_str(&b, "name")?.map(str::to_owned);
        let access = match b.get("access") {
            None | Some(Value::Null) => ctx.role,
            Some(Value::String(s)) => Role::parse(s).ok_or_else(|| {
                Error::msg(
                    ErrorCode::KeyAccessInvalid,
                    "access must be one of deny, read, edit, full, root",
                )
                .with_data(json!({"field": "access"}))
            })?,
            Some(_) => return Err(Error::field_invalid("access", "a role name")),
        };
        if access > ctx.role {
            // A key never mints a key with more access than itself (rule 4); anyone else
            // hits the general no-escalation rule (rule 1).
            return Err(if ctx.auth.auth_type == AuthType::ApiKey {
                Error::msg(
                    ErrorCode::KeyAccessInvalid,
                    format!("This key's effective role is {}", ctx.role.as_str()),
                )
                .with_data(json!({"field": "access", "max": ctx.role}))
            } else {
                Error::new(ErrorCode::AuthRoleInsufficient)
                    .with_data(json!({"required": access, "actual": ctx.role}))
            });
        }
        let expires_at = match opt_str(&b, "expires_at")? {
            None => None,
            Some(s) => Some(
                parse_rfc3339(s)
                    .filter(|t| t.0 > chrono::Utc::now())
                    .ok_or_else(|| {
                        Error::msg(
                            ErrorCode::KeyExpiresAtInvalid,
                            "expires_at must be an RFC 3339 time in the future",
                        )
                        .with_data(json!({"field": "expires_at"}))
                    })?,
            ),
        };
        let key = generate();
        let row = self
            .api_keys
            .create(
                NewApiKey {
                    tenant_id: ctx.tenant_id,
                    user_id: ctx.user_id,
                    key_hash: key_hash(&key),
                    prefix: key[..12].to_owned(),
                    name,
                    access,
                    expires_at,
                },
                MAX_ACTIVE,
            )
            .await?
            .ok_or_else(|| {
                Error::msg(
                    ErrorCode::KeyLimitReached,
                    format!("At most {MAX_ACTIVE} active API keys per user"),
                )
            })?;
        tracing::info!(api_key_id = %row.id, access = row.access.as_str(), "API key created");
        Ok(json!({
            "id": row.id, "name": row.name, "key": key, "prefix": row.prefix,
            "access": row.access, "created_at": row.created_at,
            "expires_at": format_opt(row.expires_at),
            "warning": "Store this key now; it cannot be shown again.",
        }))
    }

    /// Sudo over another user's keys, within the no-escalation rules.
    async fn may_manage_keys_of(&self, ctx: &TenantCtx, user_id: Uuid) -> Result<()> {
        if user_id == ctx.user_id {
            return Ok(());
        }
        if !ctx.is_sudo() {
            return Err(sudo_required("Managing another user's API keys"));
        }
        let target = self
            .api_keys
            .user_access(&ctx.tenant, user_id)
            .await?
            .ok_or_else(|| Error::msg(ErrorCode::AuthUserNotFound, format!("No user {user_id}")))?;
        check_target(ctx, target)
    }

    /// `GET /api/keys?user_id=&limit=&offset=`.
    pub async fn list_api_keys(
        &self,
        ctx: &TenantCtx,
        user_id: Option<&str>,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Value> {
        no_fake(ctx, "manage API keys")?;
        let (limit, offset) = page(limit, offset)?;
        let user = match user_id.filter(|s| !s.is_empty()) {
            None => ctx.user_id,
            Some(s) => Uuid::parse_str(s)
                .map_err(|_| Error::msg(ErrorCode::AuthUserNotFound, format!("No user {s}")))?,
        };
        self.may_manage_keys_of(ctx, user).await?;
        let rows = self
            .api_keys
            .list(ctx.tenant_id, Some(user), limit, offset)
            .await?;
        Ok(Value::Array(rows.iter().map(row_json).collect()))
    }

    /// `DELETE /api/keys/:key_id`.
    pub async fn revoke_api_key(&self, ctx: &TenantCtx, key_id: &str) -> Result<Value> {
        no_fake(ctx, "manage API keys")?;
        let id = Uuid::parse_str(key_id).map_err(|_| key_not_found(key_id))?;
        let key = self
            .api_keys
            .get(ctx.tenant_id, id)
            .await?
            .ok_or_else(|| key_not_found(key_id))?;
        self.may_manage_keys_of(ctx, key.user_id).await?;
        match self.api_keys.revoke(ctx.tenant_id, id).await? {
            Revoked::Now(at) => {
                tracing::info!(api_key_id = %id, "API key revoked");
                Ok(json!({"id": id, "revoked": true, "revoked_at": at}))
            }
            Revoked::Already => Err(Error::msg(
                ErrorCode::KeyAlreadyRevoked,
                format!("API key {id} is already revoked"),
            )),
            Revoked::NotFound => Err(key_not_found(key_id)),
        }
    }

    /// `POST /api/keys/revoke-all`: every live key of the caller.
    pub async fn revoke_all_api_keys(&self, ctx: &TenantCtx) -> Result<Value> {
        no_fake(ctx, "manage API keys")?;
        let n = self.api_keys.revoke_all(ctx.tenant_id, ctx.user_id).await?;
        tracing::info!(count = n, "API keys revoked");
        Ok(json!({"revoked": n}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_contract_shape() {
        let k = generate();
        assert_eq!(k.len(), 47);
        assert!(well_formed(&k));
        assert_ne!(generate(), k);
        assert_eq!(key_hash("abk_x").len(), 64);
        assert!(!well_formed("abk_short"));
        assert!(!well_formed(&format!("abk_{}", "=".repeat(43))));
    }
}
