//! The machine-key port (A3.4, A3.6): Ed25519 keys and challenges in the tenant's internal
//! tables `machine_keys` and `auth_challenges`. Times the rules compare come from the caller
//! (the domain's [`crate::clock::Clock`]); the writes that guard an invariant (key limit,
//! last-key guard, single-use challenge) are atomic in the store.

use crate::time::{format_opt, Ts};
use crate::{Ident, Result, Role, TenantCtx};
use async_trait::async_trait;
use serde_json::{json, Value};
use uuid::Uuid;

/// How `/auth/challenge` names a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Id(Uuid),
    Fingerprint(String),
}

/// A machine-key row, without key material.
#[derive(Debug, Clone)]
pub struct MachineKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub algorithm: String,
    pub fingerprint: String,
    pub created_at: Ts,
    pub last_used_at: Option<Ts>,
    pub expires_at: Option<Ts>,
    /// May lie in the future: a rotated key stays valid until then (A3.6).
    pub revoked_at: Option<Ts>,
}

impl MachineKey {
    pub fn revoked(&self, now: Ts) -> bool {
        self.revoked_at.is_some_and(|t| t <= now)
    }
    pub fn expired(&self, now: Ts) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The list object of A3.6.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "name": self.name,
            "algorithm": self.algorithm,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "last_used_at": format_opt(self.last_used_at),
            "expires_at": format_opt(self.expires_at),
            "revoked_at": format_opt(self.revoked_at),
        })
    }
}

/// The user a key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub id: Uuid,
    pub username: String,
    pub access: Role,
    /// Not trashed.
    pub active: bool,
    pub has_password: bool,
}

/// A key to insert (its SPKI DER and fingerprint already validated).
#[derive(Debug, Clone)]
pub struct NewMachineKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub public_key: Vec<u8>,
    pub fingerprint: String,
    pub expires_at: Option<Ts>,
}

/// A challenge to insert (A3.4 step 3).
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub id: Uuid,
    pub key_id: Uuid,
    pub nonce: String,
    pub issued_at: Ts,
    pub expires_at: Ts,
}

/// The key and first challenge `/auth/provision` stores with a new tenant (A13 step 5); the
/// key belongs to the owner provisioning creates.
#[derive(Debug, Clone)]
pub struct ProvisionKey {
    pub key_id: Uuid,
    pub name: Option<String>,
    pub public_key: Vec<u8>,
    pub fingerprint: String,
    pub challenge: NewChallenge,
}

/// A key with its owner and tenant, as the public challenge/verify routes need them.
#[derive(Debug, Clone)]
pub struct KeyContext {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_status: String,
    pub key: MachineKey,
    /// SPKI DER.
    pub public_key: Vec<u8>,
    /// `None` when the user row is gone.
    pub owner: Option<KeyOwner>,
}

/// A challenge that was just consumed (marked used), with what verification needs.
#[derive(Debug, Clone)]
pub struct ConsumedChallenge {
    pub nonce: String,
    pub expires_at: Ts,
    /// `None` only if the key row vanished (keys are never deleted).
    pub key: Option<KeyContext>,
}

/// Which keys a listing shows: `user_id`'s keys, plus (when `accesses` is set) the keys of
/// every user whose `access` is one of `accesses`.
#[derive(Debug, Clone)]
pub struct KeyListQuery {
    pub user_id: Uuid,
    pub accesses: Option<Vec<Role>>,
    pub limit: i64,
    pub offset: i64,
}

/// Why a guarded key write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    NotFound,
    AlreadyRevoked,
    /// The user already has the maximum of active keys.
    LimitReached,
    /// The fingerprint was registered in the tenant before (revoked keys included).
    Duplicate,
    /// Revoking the last active key of a user without a password.
    LastActive,
}

pub type KeyWrite<T> = std::result::Result<T, KeyRefusal>;

#[async_trait]
pub trait MachineStore: Send + Sync {
    /// The key named by id or fingerprint in `tenant`, with tenant and owner; `None` when the
    /// tenant (or its schema) or the key does not exist.
    async fn key_context(&self, tenant: &Ident, key: &KeyRef) -> Result<Option<KeyContext>>;
    async fn insert_challenge(&self, tenant: &Ident, c: &NewChallenge) -> Result<()>;
    /// Marks the challenge used if it was not (atomically, before anything is checked);
    /// `None` when it does not exist in `tenant` or was already used.
    async fn consume_challenge(
        &self,
        tenant: &Ident,
        id: Uuid,
        now: Ts,
    ) -> Result<Option<ConsumedChallenge>>;
    /// After a successful verify: the key's `last_used_at`, and `pending` → `active`.
    async fn key_used(&self, tenant: &Ident, tenant_id: Uuid, key_id: Uuid, now: Ts) -> Result<()>;

    /// A user of the caller's tenant (not purged).
    async fn owner(&self, ctx: &TenantCtx, user_id: Uuid) -> Result<Option<KeyOwner>>;
    async fn key(&self, ctx: &TenantCtx, key_id: Uuid) -> Result<Option<MachineKey>>;
    /// Keys ordered by `created_at`, `id`.
    async fn list(&self, ctx: &TenantCtx, q: &KeyListQuery) -> Result<Vec<MachineKey>>;
    /// Inserts a key unless its user already has `max_active` active keys at `now`.
    async fn add(
        &self,
        ctx: &TenantCtx,
        key: &NewMachineKey,
        now: Ts,
        max_active: i64,
    ) -> Result<KeyWrite<MachineKey>>;
    /// Inserts `new` for the old key's user and schedules the old key's revocation at
    /// `revoke_at` (an earlier scheduled revocation is kept). Returns the new key and the old
    /// key's effective `revoked_at`.
    async fn rotate(
        &self,
        ctx: &TenantCtx,
        old: Uuid,
        new: &NewMachineKey,
        revoke_at: Ts,
        now: Ts,
        max_active: i64,
    ) -> Result<KeyWrite<(MachineKey, Ts)>>;
    /// Revokes the key at `now`, unless already revoked or it is the last active key of a
    /// user without a password. Returns the `revoked_at` set.
    async fn revoke(&self, ctx: &TenantCtx, key_id: Uuid, now: Ts) -> Result<KeyWrite<Ts>>;
}
