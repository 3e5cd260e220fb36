//! `/api/user/machine-keys` (A3.6): list, add, rotate, revoke. Any caller manages its own
//! keys; other users' keys need role ≥ `full` and a target whose `access` ≤ the caller's
//! effective role (a `root` user's keys: `root` only). Impersonation tokens never change
//! keys. Key material is never returned.

use super::ed25519::{self, PublicKey};
use super::machine::{key_name, MachineService};
use super::{body_object, opt_str, req_str};
use crate::data::access::role_insufficient;
use crate::ports::machine::{KeyListQuery, KeyOwner, KeyRefusal, NewMachineKey};
use crate::time::{self, Ts};
use crate::users::rules::no_fake;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use chrono::Duration;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Active machine keys per user (A3.6).
pub const MAX_ACTIVE_KEYS: i64 = 100;
/// Default and maximum overlap of a rotation, seconds.
pub const ROTATE_OVERLAP_DEFAULT: i64 = 300;
pub const ROTATE_OVERLAP_MAX: i64 = 86_400;

fn refusal(r: KeyRefusal) -> Error {
    match r {
        KeyRefusal::NotFound => Error::new(ErrorCode::KeyNotFound),
        KeyRefusal::AlreadyRevoked => Error::new(ErrorCode::KeyAlreadyRevoked),
        KeyRefusal::LimitReached => Error::msg(
            ErrorCode::KeyLimitReached,
            format!("The user already has {MAX_ACTIVE_KEYS} active machine keys"),
        )
        .with_data(json!({"limit": MAX_ACTIVE_KEYS})),
        KeyRefusal::Duplicate => Error::msg(
            ErrorCode::KeyDuplicate,
            "A key with this fingerprint was already registered in the tenant",
        ),
        KeyRefusal::LastActive => Error::msg(
            ErrorCode::KeyLastActive,
            "This is the last active machine key of a user without a password",
        ),
    }
}

/// A3.1 rules 1–2 for acting on `owner`'s keys.
fn may_act_on(ctx: &TenantCtx, owner: &KeyOwner) -> Result<()> {
    if owner.id == ctx.user_id {
        return Ok(());
    }
    if ctx.role < Role::Full {
        return Err(role_insufficient(Role::Full, ctx.role));
    }
    if owner.access > ctx.role {
        return Err(role_insufficient(owner.access, ctx.role));
    }
    Ok(())
}

/// `expires_at` (null = absent): RFC 3339 in the future.
fn expires_at(b: &Map<String, Value>, now: Ts) -> Result<Option<Ts>> {
    let invalid =
        || Error::new(ErrorCode::KeyExpiresAtInvalid).with_data(json!({"field": "expires_at"}));
    match b.get("expires_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match time::parse_rfc3339(s) {
            Some(t) if t > now => Ok(Some(t)),
            _ => Err(invalid()),
        },
        Some(_) => Err(invalid()),
    }
}

/// An optional UUID body/query value; anything else is `VALIDATION_FIELD_INVALID`.
fn opt_uuid(raw: Option<&str>, field: &str) -> Result<Option<Uuid>> {
    raw.map(|s| Uuid::parse_str(s).map_err(|_| Error::field_invalid(field, "a user id (UUID)")))
        .transpose()
}

impl MachineService {
    /// A live (not trashed) user the caller may act on.
    async fn target(&self, ctx: &TenantCtx, user_id: Uuid) -> Result<KeyOwner> {
        let owner = self
            .store
            .owner(ctx, user_id)
            .await?
            .filter(|o| o.active)
            .ok_or_else(|| Error::new(ErrorCode::AuthUserNotFound))?;
        may_act_on(ctx, &owner)?;
        Ok(owner)
    }

    /// `GET /api/user/machine-keys?user_id=&limit=&offset=`: own keys; a `full`/`root`
    /// caller also sees the keys of users whose `access` ≤ its role, or one such user's.
    pub async fn list_keys(
        &self,
        ctx: &TenantCtx,
        user_id: Option<&str>,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Value> {
        let (limit, offset) = crate::users::rules::page(limit, offset)?;
        let user = opt_uuid(user_id.filter(|s| !s.is_empty()), "user_id")?;
        let q = match user {
            Some(id) if id != ctx.user_id => {
                let owner = self
                    .store
                    .owner(ctx, id)
                    .await?
                    .ok_or_else(|| Error::new(ErrorCode::AuthUserNotFound))?;
                may_act_on(ctx, &owner)?;
                KeyListQuery {
                    user_id: id,
                    accesses: None,
                    limit,
                    offset,
                }
            }
            Some(_) => KeyListQuery {
                user_id: ctx.user_id,
                accesses: None,
                limit,
                offset,
            },
            None => KeyListQuery {
                user_id: ctx.user_id,
                accesses: (ctx.role >= Role::Full).then(|| {
                    [Role::Deny, Role::Read, Role::Edit, Role::Full, Role::Root]
                        .into_iter()
                        .filter(|r| *r <= ctx.role)
                        .collect()
                }),
                limit,
                offset,
            },
        };
        let keys = self.store.list(ctx, &q).await?;
        Ok(Value::Array(keys.iter().map(|k| k.to_json()).collect()))
    }

    /// `POST /api/user/machine-keys` → 201.
    pub async fn add_key(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        no_fake(ctx, "manage machine keys")?;
        let b = body_object(body)?;
        let public_key = req_str(&b, "public_key")?;
        ed25519::check_algorithm(opt_str(&b, "algorithm")?)?;
        let key = PublicKey::parse(public_key)?;
        let name = key_name(&b, "name")?;
        let now = self.now();
        let expires = expires_at(&b, now)?;
        let user_id = opt_uuid(opt_str(&b, "user_id")?, "user_id")?.unwrap_or(ctx.user_id);
        let owner = self.target(ctx, user_id).await?;
        let new = NewMachineKey {
            id: Uuid::new_v4(),
            user_id: owner.id,
            name,
            public_key: key.der().to_vec(),
            fingerprint: key.fingerprint(),
            expires_at: expires,
        };
        let k = self
            .store
            .add(ctx, &new, now, MAX_ACTIVE_KEYS)
            .await?
            .map_err(refusal)?;
        Ok(json!({
            "id": k.id,
            "user_id": k.user_id,
            "name": k.name,
            "algorithm": k.algorithm,
            "fingerprint": k.fingerprint,
            "created_at": k.created_at,
            "expires_at": time::format_opt(k.expires_at),
        }))
    }

    /// `POST /api/user/machine-keys/rotate` → 201: a new key for the old key's user; the old
    /// key keeps working for `revoke_old_after_seconds` (0–86400, default 300). `new_name`
    /// defaults to the old key's name; `expires_at` (optional) applies to the new key.
    pub async fn rotate_key(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        no_fake(ctx, "manage machine keys")?;
        let b = body_object(body)?;
        let key_id_raw = req_str(&b, "key_id")?;
        let public_key = req_str(&b, "new_public_key")?;
        ed25519::check_algorithm(opt_str(&b, "algorithm")?)?;
        let key = PublicKey::parse(public_key)
            .map_err(|e| e.with_data(json!({"field": "new_public_key"})))?;
        let new_name = key_name(&b, "new_name")?;
        let overlap = match b.get("revoke_old_after_seconds") {
            None | Some(Value::Null) => ROTATE_OVERLAP_DEFAULT,
            Some(v) => v
                .as_i64()
                .filter(|n| (0..=ROTATE_OVERLAP_MAX).contains(n))
                .ok_or_else(|| {
                    Error::field_invalid("revoke_old_after_seconds", "an integer from 0 to 86400")
                })?,
        };
        let now = self.now();
        let expires = expires_at(&b, now)?;
        let old_id = Uuid::parse_str(key_id_raw).map_err(|_| Error::new(ErrorCode::KeyNotFound))?;
        let old = self
            .store
            .key(ctx, old_id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::KeyNotFound))?;
        let owner = self.target(ctx, old.user_id).await?;
        if old.revoked(now) {
            return Err(refusal(KeyRefusal::AlreadyRevoked));
        }
        let new = NewMachineKey {
            id: Uuid::new_v4(),
            user_id: owner.id,
            name: new_name.or_else(|| old.name.clone()),
            public_key: key.der().to_vec(),
            fingerprint: key.fingerprint(),
            expires_at: expires,
        };
        let revoke_at = Ts(now.0 + Duration::seconds(overlap));
        let (k, revokes_at) = self
            .store
            .rotate(ctx, old.id, &new, revoke_at, now, MAX_ACTIVE_KEYS)
            .await?
            .map_err(refusal)?;
        Ok(json!({
            "old_key_id": old.id,
            "new_key_id": k.id,
            "fingerprint": k.fingerprint,
            "revokes_at": revokes_at,
        }))
    }

    /// `DELETE /api/user/machine-keys/:key_id`: revokes now (also a key whose rotation
    /// overlap is still running).
    pub async fn revoke_key(&self, ctx: &TenantCtx, key_id: &str) -> Result<Value> {
        no_fake(ctx, "manage machine keys")?;
        let not_found = || Error::new(ErrorCode::KeyNotFound);
        let id = Uuid::parse_str(key_id).map_err(|_| not_found())?;
        let key = self.store.key(ctx, id).await?.ok_or_else(not_found)?;
        // A purged owner's keys are not listed either.
        let owner = self
            .store
            .owner(ctx, key.user_id)
            .await?
            .ok_or_else(not_found)?;
        may_act_on(ctx, &owner)?;
        let revoked_at = self
            .store
            .revoke(ctx, id, self.now())
            .await?
            .map_err(refusal)?;
        Ok(json!({"id": id, "revoked": true, "revoked_at": revoked_at}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(crate::users::rules::page(None, None).unwrap(), (100, 0));
        assert_eq!(
            crate::users::rules::page(Some("0"), Some("5")).unwrap(),
            (0, 5)
        );
        assert_eq!(
            crate::users::rules::page(Some("1001"), None)
                .unwrap_err()
                .code,
            ErrorCode::FilterInvalidLimit
        );
        assert_eq!(
            crate::users::rules::page(None, Some("-1"))
                .unwrap_err()
                .code,
            ErrorCode::FilterInvalidOffset
        );
    }

    #[test]
    fn expiry_must_be_future() {
        let now = Ts::now();
        let mut b = Map::new();
        assert_eq!(expires_at(&b, now).unwrap(), None);
        b.insert("expires_at".into(), json!("2001-01-01T00:00:00Z"));
        assert_eq!(
            expires_at(&b, now).unwrap_err().code,
            ErrorCode::KeyExpiresAtInvalid
        );
        b.insert("expires_at".into(), json!("tomorrow"));
        assert!(expires_at(&b, now).is_err());
        b.insert("expires_at".into(), json!("2999-01-01T00:00:00+02:00"));
        assert!(expires_at(&b, now).unwrap().is_some());
    }
}
