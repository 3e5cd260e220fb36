//! Invites (A3.5): sudo callers invite a username with an `access` ≤ their own role; the
//! code (`inv_` + 43 base64url chars) is shown once and only its SHA-256 is stored; the
//! public `/auth/register/user` redeems it (single use, atomically with the user's creation).

use super::rules::{self, check_grant, object, opt_str, req_str, sudo_required};
use super::{hash_password, UsersService};
use crate::data::access::role_insufficient;
use crate::ident;
use crate::ports::users::{InviteRow, NewInvite, NewUser};
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A fresh invite code: `inv_` + 32 CSPRNG bytes as base64url without padding (43 chars).
pub fn new_code() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "inv_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// The stored form of a code: lowercase hex SHA-256 of the whole string.
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

fn invalid() -> Error {
    Error::new(ErrorCode::AuthInviteInvalid)
}

/// The list item of `GET /api/user/invite` (never the code).
pub fn invite_json(i: &InviteRow) -> Value {
    json!({
        "invite_id": i.id,
        "username": i.username,
        "invite_type": i.invite_type,
        "access": i.access,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
        "used_at": i.used_at,
        "revoked_at": i.revoked_at,
    })
}

/// Whether `row` may be redeemed now by `username` through a route of `kind` (`human` or
/// `machine`) in a tenant of `tenant_status`.
pub fn check_redeemable(
    row: &InviteRow,
    username: &str,
    kind: &str,
    tenant_status: &str,
) -> Result<()> {
    if row.used_at.is_some()
        || row.revoked_at.is_some()
        || row.username != username
        || !rules::invite_fits(&row.invite_type, kind)
    {
        return Err(invalid());
    }
    if row.expires_at.0 <= chrono::Utc::now() {
        return Err(Error::new(ErrorCode::AuthInviteExpired));
    }
    if tenant_status != "pending" && tenant_status != "active" {
        return Err(Error::new(ErrorCode::TenantInactive));
    }
    Ok(())
}

impl UsersService {
    /// `POST /api/user/invite` → 201 with the code, shown once.
    pub async fn create_invite(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        rules::no_fake(ctx, "manage invites")?;
        if !ctx.is_sudo() {
            return Err(sudo_required("Inviting users"));
        }
        let b = object(body)?;
        let username = ident::username(req_str(&b, "username")?)?;
        let invite_type = rules::invite_type(opt_str(&b, "invite_type")?)?;
        let access = match b.get("access") {
            None | Some(Value::Null) => Role::Read,
            Some(v) => rules::parse_role("access", v)?,
        };
        check_grant(ctx, access)?;
        let expires_in = rules::invite_ttl(b.get("expires_in"))?;
        let code = new_code();
        let row = self
            .store
            .create_invite(
                &ctx.schema,
                NewInvite {
                    code_hash: code_hash(&code),
                    username,
                    invite_type: invite_type.to_owned(),
                    access,
                    created_by: ctx.user_id,
                    expires_in,
                },
            )
            .await?;
        tracing::info!(target: "audit", event = "invite_created", tenant = %ctx.tenant,
            invite_id = %row.id, username = %row.username, access = %row.access,
            by = %ctx.user_id, request_id = %ctx.request_id, "invite created");
        Ok(json!({
            "invite_id": row.id,
            "username": row.username,
            "invite_type": row.invite_type,
            "access": row.access,
            "code": code,
            "expires_at": row.expires_at,
        }))
    }

    /// `GET /api/user/invite` (role ≥ `full`), newest first.
    pub async fn list_invites(
        &self,
        ctx: &TenantCtx,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Value> {
        if ctx.role < Role::Full {
            return Err(role_insufficient(Role::Full, ctx.role));
        }
        let (limit, offset) = rules::page(limit, offset)?;
        let rows = self.store.list_invites(&ctx.schema, limit, offset).await?;
        Ok(Value::Array(rows.iter().map(invite_json).collect()))
    }

    /// `DELETE /api/user/invite/:invite_id` (sudo): the code stops working at once; a used or
    /// already revoked invite answers the same.
    pub async fn revoke_invite(&self, ctx: &TenantCtx, raw_id: &str) -> Result<Value> {
        rules::no_fake(ctx, "manage invites")?;
        if !ctx.is_sudo() {
            return Err(sudo_required("Revoking invites"));
        }
        let not_found = || {
            Error::msg(
                ErrorCode::AuthInviteNotFound,
                format!("No invite {}", ident::clip(raw_id)),
            )
            .with_data(json!({"invite_id": ident::clip(raw_id)}))
        };
        let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
        if !self.store.revoke_invite(&ctx.schema, id).await? {
            return Err(not_found());
        }
        tracing::info!(target: "audit", event = "invite_revoked", tenant = %ctx.tenant,
            invite_id = %id, by = %ctx.user_id, request_id = %ctx.request_id, "invite revoked");
        Ok(json!({"invite_id": id, "revoked": true}))
    }

    /// `POST /auth/register/user` (public): a `human`/`either` invite for exactly this
    /// username becomes a user with a password, in one transaction.
    pub async fn register_user(&self, body: Option<Value>) -> Result<Value> {
        let b = object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let username_raw = req_str(&b, "username")?;
        let code = req_str(&b, "invite_code")?;
        let pw = req_str(&b, "password")?;
        let username = ident::username(username_raw)?;
        let email = opt_str(&b, "email")?.map(rules::email).transpose()?;
        rules::password("password", pw)?;
        // An unknown (or malformed, or dissolved) tenant is just an invalid invite: the
        // route does not tell which tenants exist.
        let tenant = match ident::tenant_name(tenant_raw) {
            Ok(t) => self.store.invite_tenant(t.as_str()).await?,
            Err(_) => None,
        }
        .filter(|t| t.status != "deleted")
        .ok_or_else(invalid)?;
        let hash = hash_password(pw).await?;
        let status = tenant.status.clone();
        let uname = username.as_str().to_owned();
        let check = move |row: &InviteRow| check_redeemable(row, &uname, "human", &status);
        let schema = ident::tenant_schema(&tenant.name);
        self.store
            .redeem_invite(
                &schema,
                &code_hash(code),
                &check,
                NewUser {
                    name: username.as_str().to_owned(),
                    username: username.clone(),
                    email,
                    // Replaced by the invite's access inside the transaction.
                    access: Role::Deny,
                    password_hash: Some(hash),
                },
                None,
            )
            .await?;
        tracing::info!(target: "audit", event = "invite_redeemed", tenant = %tenant.name,
            username = %username, "invite redeemed");
        Ok(json!({
            "tenant_id": tenant.id,
            "tenant": tenant.name,
            "username": username,
            "status": tenant.status,
        }))
    }
}

impl UsersService {
    /// `POST /auth/provision/user` (public): a `machine`/`either` invite for exactly this
    /// username becomes a user holding the given Ed25519 key, plus a first challenge to sign
    /// (A3.4), in one transaction. Same answer shape as `/auth/provision`.
    pub async fn provision_user(&self, body: Option<Value>) -> Result<Value> {
        use crate::auth::ed25519::{self, PublicKey};
        use crate::ports::machine::{NewChallenge, ProvisionKey};
        let b = object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let username_raw = req_str(&b, "username")?;
        let code = req_str(&b, "invite_code")?;
        let public_key = req_str(&b, "public_key")?;
        let username = ident::username(username_raw)?;
        ed25519::check_algorithm(opt_str(&b, "algorithm")?)?;
        let key = PublicKey::parse(public_key)?;
        let name = match opt_str(&b, "key_name")? {
            Some(n) if n.chars().count() > 255 => {
                return Err(Error::field_invalid(
                    "key_name",
                    "a string of at most 255 characters",
                ))
            }
            n => n.map(str::to_owned),
        };
        let tenant = match ident::tenant_name(tenant_raw) {
            Ok(t) => self.store.invite_tenant(t.as_str()).await?,
            Err(_) => None,
        }
        .filter(|t| t.status != "deleted")
        .ok_or_else(invalid)?;
        let key_id = Uuid::new_v4();
        let issued = chrono::Utc::now();
        let challenge = NewChallenge {
            id: Uuid::new_v4(),
            key_id,
            nonce: ed25519::new_nonce(),
            issued_at: crate::time::Ts(issued),
            expires_at: crate::time::Ts(
                issued + chrono::Duration::seconds(crate::auth::machine::CHALLENGE_TTL),
            ),
        };
        let fingerprint = key.fingerprint();
        let status = tenant.status.clone();
        let uname = username.as_str().to_owned();
        let check = move |row: &InviteRow| check_redeemable(row, &uname, "machine", &status);
        let (user_id, access) = self
            .store
            .redeem_invite(
                &ident::tenant_schema(&tenant.name),
                &code_hash(code),
                &check,
                NewUser {
                    name: username.as_str().to_owned(),
                    username: username.clone(),
                    email: None,
                    access: Role::Deny,
                    password_hash: None,
                },
                Some(ProvisionKey {
                    key_id,
                    name: name.clone(),
                    public_key: key.der().to_vec(),
                    fingerprint: fingerprint.clone(),
                    challenge: challenge.clone(),
                }),
            )
            .await?;
        tracing::info!(target: "audit", event = "invite_redeemed", tenant = %tenant.name,
            username = %username, key_id = %key_id, "invite redeemed by a machine");
        Ok(json!({
            "tenant": tenant.name,
            "tenant_id": tenant.id,
            "status": tenant.status,
            "user": {"id": user_id, "username": username, "access": access},
            "key": {"id": key_id, "name": name, "algorithm": ed25519::ALGORITHM, "fingerprint": fingerprint},
            "challenge": {
                "challenge_id": challenge.id,
                "nonce": challenge.nonce,
                "issued_at": challenge.issued_at,
                "expires_in": crate::auth::machine::CHALLENGE_TTL,
                "algorithm": ed25519::ALGORITHM,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Ts;

    fn row(kind: &str, expires_in: i64) -> InviteRow {
        InviteRow {
            id: Uuid::new_v4(),
            username: "bob".into(),
            invite_type: kind.into(),
            access: Role::Edit,
            created_at: Ts::now(),
            expires_at: Ts(chrono::Utc::now() + chrono::Duration::seconds(expires_in)),
            used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn codes() {
        let c = new_code();
        assert_eq!(c.len(), 47);
        assert!(c.starts_with("inv_"));
        assert!(c[4..]
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_ne!(new_code(), c);
        assert_eq!(code_hash("x").len(), 64);
    }

    #[test]
    fn redeemable() {
        let code = |r: Result<()>| r.unwrap_err().code;
        assert!(check_redeemable(&row("human", 60), "bob", "human", "active").is_ok());
        assert!(check_redeemable(&row("either", 60), "bob", "human", "pending").is_ok());
        assert_eq!(
            code(check_redeemable(
                &row("machine", 60),
                "bob",
                "human",
                "active"
            )),
            ErrorCode::AuthInviteInvalid
        );
        assert_eq!(
            code(check_redeemable(
                &row("human", 60),
                "eve",
                "human",
                "active"
            )),
            ErrorCode::AuthInviteInvalid
        );
        assert_eq!(
            code(check_redeemable(
                &row("human", -1),
                "bob",
                "human",
                "active"
            )),
            ErrorCode::AuthInviteExpired
        );
        let mut used = row("human", 60);
        used.used_at = Some(Ts::now());
        assert_eq!(
            code(check_redeemable(&used, "bob", "human", "active")),
            ErrorCode::AuthInviteInvalid
        );
        let mut revoked = row("human", 60);
        revoked.revoked_at = Some(Ts::now());
        assert_eq!(
            code(check_redeemable(&revoked, "bob", "human", "active")),
            ErrorCode::AuthInviteInvalid
        );
        assert_eq!(
            code(check_redeemable(
                &row("human", 60),
                "bob",
                "human",
                "suspended"
            )),
            ErrorCode::TenantInactive
        );
    }
}
