//! Machine identity (A3.4): `/auth/provision` (a tenant whose root owner holds an Ed25519
//! key), `/auth/challenge` and `/auth/verify` (signed nonce → 1-hour `public_key` token).
//! Key management (`/api/user/machine-keys`, A3.6) is in [`super::machine_keys`].

use super::ed25519::{self, PublicKey};
use super::jwt::Claims;
use super::{body_object, opt_str, req_str, AuthService};
use crate::clock::Clock;
use crate::ctx::AuthType;
use crate::ident;
use crate::ports::auth::NewTenant;
use crate::ports::machine::{KeyContext, KeyRef, MachineStore, NewChallenge, ProvisionKey};
use crate::time::Ts;
use crate::{Error, ErrorCode, Result, Role};
use chrono::Duration;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Lifetime of a challenge (A3.4 step 3).
pub const CHALLENGE_TTL: i64 = 300;
/// Lifetime of a machine token (A3.2).
pub const MACHINE_TOKEN_TTL: i64 = 3600;
/// Longest key name accepted.
const MAX_KEY_NAME: usize = 255;

/// Machine bootstrap, re-authentication and key management.
pub struct MachineService {
    pub(super) auth: Arc<AuthService>,
    pub(super) store: Arc<dyn MachineStore>,
    pub(super) clock: Clock,
}

/// An optional key name (`null` = absent); at most 255 characters.
pub(super) fn key_name(b: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match opt_str(b, field)? {
        Some(n) if n.chars().count() > MAX_KEY_NAME => Err(Error::field_invalid(
            field,
            "a string of at most 255 characters",
        )),
        n => Ok(n.map(str::to_owned)),
    }
}

impl MachineService {
    pub fn new(auth: Arc<AuthService>, store: Arc<dyn MachineStore>) -> Self {
        Self {
            auth,
            store,
            clock: Clock::system(),
        }
    }

    /// The clock the expiry rules read (tests move it forward in-process).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(super) fn now(&self) -> Ts {
        Ts(self.clock.now())
    }

    fn new_challenge(&self, key_id: Uuid) -> NewChallenge {
        let issued = self.clock.now();
        NewChallenge {
            id: Uuid::new_v4(),
            key_id,
            nonce: ed25519::new_nonce(),
            issued_at: Ts(issued),
            expires_at: Ts(issued + Duration::seconds(CHALLENGE_TTL)),
        }
    }

    fn challenge_json(c: &NewChallenge) -> Value {
        json!({
            "challenge_id": c.id,
            "nonce": c.nonce,
            "issued_at": c.issued_at,
            "expires_in": CHALLENGE_TTL,
            "algorithm": ed25519::ALGORITHM,
        })
    }

    /// `POST /auth/provision` (A3.4): a `pending` tenant, its `root` owner, the owner's key
    /// and a first challenge, in one transaction (A13). `client` is the caller's address.
    pub async fn provision(&self, body: Option<Value>, client: &str) -> Result<Value> {
        let b = body_object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let username_raw = req_str(&b, "username")?;
        let public_key = req_str(&b, "public_key")?;
        let tenant = ident::tenant_name(tenant_raw)?;
        let username = ident::username(username_raw)?;
        ed25519::check_algorithm(opt_str(&b, "algorithm")?)?;
        let key = PublicKey::parse(public_key)?;
        let name = key_name(&b, "key_name")?;
        self.auth.admit_new_tenant(&tenant, client).await?;
        let key_id = Uuid::new_v4();
        let challenge = self.new_challenge(key_id);
        let fingerprint = key.fingerprint();
        let created = self
            .auth
            .store
            .provision(NewTenant {
                tenant: tenant.clone(),
                description: None,
                region: self.auth.settings.region.clone(),
                owner_username: username.clone(),
                owner_email: None,
                password_hash: None,
                machine_key: Some(ProvisionKey {
                    key_id,
                    name: name.clone(),
                    public_key: key.der().to_vec(),
                    fingerprint: fingerprint.clone(),
                    challenge: challenge.clone(),
                }),
            })
            .await?;
        Ok(json!({
            "tenant": tenant,
            "tenant_id": created.tenant_id,
            "status": "pending",
            "user": {"id": created.owner_id, "username": username, "access": Role::Root},
            "key": {"id": key_id, "name": name, "algorithm": ed25519::ALGORITHM, "fingerprint": fingerprint},
            "challenge": Self::challenge_json(&challenge),
        }))
    }

    /// The state rules shared by challenge and verify: tenant served, key neither revoked
    /// nor expired, owner active.
    fn check_key(kc: &KeyContext, now: Ts) -> Result<()> {
        if kc.tenant_status != "pending" && kc.tenant_status != "active" {
            return Err(Error::new(ErrorCode::TenantInactive));
        }
        if kc.key.revoked(now) {
            return Err(Error::new(ErrorCode::AuthKeyRevoked));
        }
        if kc.key.expired(now) {
            return Err(Error::new(ErrorCode::AuthKeyExpired));
        }
        if !kc.owner.as_ref().is_some_and(|o| o.active) {
            return Err(Error::new(ErrorCode::AuthUserInactive));
        }
        Ok(())
    }

    /// `POST /auth/challenge` (A3.4): by `key_id` when non-null, else by `fingerprint`. An
    /// unknown tenant and an unknown key give the same `AUTH_KEY_NOT_FOUND`; the tenant's
    /// state is told only to a caller naming one of its keys.
    pub async fn challenge(&self, body: Option<Value>) -> Result<Value> {
        let b = body_object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let key_ref = match (opt_str(&b, "key_id")?, opt_str(&b, "fingerprint")?) {
            (Some(id), _) => Uuid::parse_str(id).ok().map(KeyRef::Id),
            (None, Some(fp)) => Some(KeyRef::Fingerprint(fp.to_owned())),
            (None, None) => return Err(Error::field_missing("key_id")),
        };
        let not_found = || Error::new(ErrorCode::AuthKeyNotFound);
        let (Ok(tenant), Some(key_ref)) = (ident::tenant_name(tenant_raw), key_ref) else {
            return Err(not_found());
        };
        let kc = self
            .store
            .key_context(&tenant, &key_ref)
            .await?
            .ok_or_else(not_found)?;
        Self::check_key(&kc, self.now())?;
        let c = self.new_challenge(kc.key.id);
        self.store.insert_challenge(&tenant, &c).await?;
        let mut out = Self::challenge_json(&c);
        out["key_id"] = json!(kc.key.id);
        Ok(out)
    }

    /// `POST /auth/verify` (A3.4 step 5): the challenge is consumed before anything is
    /// checked (one attempt per challenge), then its expiry, then tenant/key/owner state, then
    /// the strict signature over the nonce string's UTF-8 bytes.
    pub async fn verify(&self, body: Option<Value>) -> Result<Value> {
        let b = body_object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let challenge_raw = req_str(&b, "challenge_id")?;
        let signature = req_str(&b, "signature")?;
        let invalid = || Error::new(ErrorCode::AuthChallengeInvalid);
        let (Ok(tenant), Ok(challenge_id)) = (
            ident::tenant_name(tenant_raw),
            Uuid::parse_str(challenge_raw),
        ) else {
            return Err(invalid());
        };
        let now = self.now();
        let consumed = self
            .store
            .consume_challenge(&tenant, challenge_id, now)
            .await?
            .ok_or_else(invalid)?;
        if consumed.expires_at <= now {
            return Err(Error::new(ErrorCode::AuthChallengeExpired));
        }
        let kc = consumed.key.ok_or_else(invalid)?;
        Self::check_key(&kc, now)?;
        let bad_signature = || Error::new(ErrorCode::AuthSignatureInvalid);
        let sig = ed25519::decode_signature(signature).ok_or_else(bad_signature)?;
        let key = PublicKey::from_der(&kc.public_key).map_err(|_| bad_signature())?;
        if !key.verify(consumed.nonce.as_bytes(), &sig) {
            return Err(bad_signature());
        }
        let owner = kc.owner.as_ref().ok_or_else(invalid)?;
        self.store
            .key_used(&tenant, kc.tenant_id, kc.key.id, now)
            .await?;
        let mut claims = Claims::issue(
            owner.id,
            &owner.username,
            &kc.tenant_name,
            kc.tenant_id,
            owner.access.as_str(),
            AuthType::PublicKey.as_str(),
            MACHINE_TOKEN_TTL,
        );
        claims.key_id = Some(kc.key.id.to_string());
        claims.key_fingerprint = Some(kc.key.fingerprint.clone());
        let token = self.auth.keys.sign(&claims)?;
        Ok(json!({
            "token": token,
            "expires_in": MACHINE_TOKEN_TTL,
            "token_type": "Bearer",
            "tenant": kc.tenant_name,
            "tenant_id": kc.tenant_id,
            "key_id": kc.key.id,
            "user": {"id": owner.id, "username": owner.username, "access": owner.access},
        }))
    }
}
