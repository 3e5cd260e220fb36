//! The users port (A3.5, A3.8): the tenant's `users` rows, their password credentials and
//! the invites that create them. User objects come back already rendered (the A3.8 shape),
//! since the database builds them in the same statement that reads them.

use crate::ports::machine::ProvisionKey;
use crate::time::Ts;
use crate::{Ident, Result, Role};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

/// A user as the rules need it (trashed users included, `active = false`).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub access: Role,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Ident,
    pub name: String,
    pub email: Option<String>,
    pub access: Role,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
}

/// A profile change: `Some` sets the column (`email: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub username: Option<Ident>,
    pub access: Option<Role>,
}

impl UserChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.username.is_none()
            && self.access.is_none()
    }
}

/// An invite row (A3.5); the code itself is never stored, only its SHA-256.
#[derive(Debug, Clone)]
pub struct InviteRow {
    pub id: Uuid,
    pub username: String,
    pub invite_type: String,
    pub access: Role,
    pub created_at: Ts,
    pub expires_at: Ts,
    pub used_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

#[derive(Debug, Clone)]
pub struct NewInvite {
    pub code_hash: String,
    pub username: Ident,
    pub invite_type: String,
    pub access: Role,
    pub created_by: Uuid,
    pub expires_in: i64,
}

/// A tenant as invite redemption needs it.
#[derive(Debug, Clone)]
pub struct InviteTenant {
    pub id: Uuid,
    pub name: Ident,
    pub status: String,
}

/// Checks an invite row (and the tenant) inside the redeeming transaction; an error rolls
/// the redemption back.
pub type InviteCheck<'a> = &'a (dyn Fn(&InviteRow) -> Result<()> + Sync);

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Users in `created_at, id` order; trashed ones only with `include_trashed`.
    async fn list(
        &self,
        schema: &Ident,
        limit: i64,
        offset: i64,
        include_trashed: bool,
    ) -> Result<Vec<Value>>;
    /// The A3.8 user object (trashed users included; purged ones never).
    async fn object(&self, schema: &Ident, id: Uuid) -> Result<Option<Value>>;
    async fn row(&self, schema: &Ident, id: Uuid) -> Result<Option<UserRow>>;
    /// Inserts the user (and its credential) → its object; a taken username →
    /// `AUTH_USERNAME_EXISTS`.
    async fn create(&self, schema: &Ident, user: NewUser) -> Result<Value>;
    /// Applies a change to a live user → its object (`None`: no live user). With
    /// `guard_last_root`, refuses (`AUTH_LAST_ROOT`) when the tenant would be left without
    /// an active `root` that can log in (password or active machine key), atomically.
    async fn update(
        &self,
        schema: &Ident,
        id: Uuid,
        change: &UserChange,
        guard_last_root: bool,
    ) -> Result<Option<Value>>;
    async fn password_hash(&self, schema: &Ident, id: Uuid) -> Result<Option<String>>;
    /// Stores a new credential → `password_changed_at`.
    async fn set_password(&self, schema: &Ident, id: Uuid, hash: &str) -> Result<Ts>;
    /// Trashes a live user → `trashed_at` (`None`: no live user); the guard as for `update`.
    async fn deactivate(
        &self,
        schema: &Ident,
        id: Uuid,
        guard_last_root: bool,
    ) -> Result<Option<Ts>>;

    /// Stores an invite; a username already used in the tenant → `AUTH_USERNAME_EXISTS`.
    async fn create_invite(&self, schema: &Ident, invite: NewInvite) -> Result<InviteRow>;
    /// Newest first.
    async fn list_invites(&self, schema: &Ident, limit: i64, offset: i64)
        -> Result<Vec<InviteRow>>;
    /// Sets `revoked_at` unless already set; `false` when there is no such invite.
    async fn revoke_invite(&self, schema: &Ident, id: Uuid) -> Result<bool>;
    async fn invite_tenant(&self, name: &str) -> Result<Option<InviteTenant>>;
    /// In one transaction: locks the invite with `code_hash` (`None` → `AUTH_INVITE_INVALID`),
    /// runs `check`, creates the user with the invite's `access` (not `user.access`) and its
    /// password or machine key with a first challenge (a fingerprint seen before in the
    /// tenant → `KEY_DUPLICATE`), marks the invite used → (user id, access).
    async fn redeem_invite(
        &self,
        schema: &Ident,
        code_hash: &str,
        check: InviteCheck<'_>,
        user: NewUser,
        key: Option<ProvisionKey>,
    ) -> Result<(Uuid, Role)>;
}
