//! The auth port: tenant registry, provisioning and identity lookups used by [`crate::auth`].

use crate::ctx::{AuthInfo, AuthType};
use crate::{Ident, Result, Role, TenantCtx};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

/// A tenant registry row.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub description: Option<String>,
}

/// What provisioning needs (A13): the tenant, its owner and the owner's credential.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant: Ident,
    pub description: Option<String>,
    pub region: String,
    pub owner_username: Ident,
    pub owner_email: Option<String>,
    /// argon2id PHC string (password registration).
    pub password_hash: Option<String>,
    /// The owner's Ed25519 key and first challenge (`/auth/provision`).
    pub machine_key: Option<crate::ports::machine::ProvisionKey>,
}

#[derive(Debug, Clone)]
pub struct ProvisionedTenant {
    pub tenant_id: Uuid,
    pub owner_id: Uuid,
}

/// A user as login needs it.
#[derive(Debug, Clone)]
pub struct LoginUser {
    pub id: Uuid,
    pub username: String,
    pub access: Role,
    pub active: bool,
    pub password_hash: Option<String>,
}

/// What the per-request identity check reads (A3.2): the tenant and user always, and the
/// credential rows a token leans on — its machine key, its API key, its impersonator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityRef {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// Machine tokens (`auth_type:"public_key"`): the key must be live.
    pub machine_key: Option<Uuid>,
    /// API-key requests and sudo tokens minted from one: the key must be live; it caps the role.
    pub api_key: Option<Uuid>,
    /// Impersonation tokens: the impersonator must still be active; its role caps the target's.
    pub impersonator: Option<Uuid>,
}

impl IdentityRef {
    /// The rows a context's credential depends on.
    pub fn of(ctx: &TenantCtx) -> IdentityRef {
        Self::from_auth(ctx.tenant_id, ctx.user_id, &ctx.auth)
    }

    /// The rows credential `a` of `user_id` in `tenant_id` depends on (an id that does not
    /// parse names no row).
    pub fn from_auth(tenant_id: Uuid, user_id: Uuid, a: &AuthInfo) -> IdentityRef {
        let uuid = |s: &Option<String>| s.as_deref().and_then(|s| Uuid::parse_str(s).ok());
        IdentityRef {
            tenant_id,
            user_id,
            machine_key: match a.auth_type {
                AuthType::PublicKey => uuid(&a.key_id),
                _ => None,
            },
            api_key: match a.auth_type {
                AuthType::ApiKey => uuid(&a.api_key_id),
                _ => None,
            },
            impersonator: if a.is_fake { a.faked_by } else { None },
        }
    }
}

/// The identity behind a token, re-read on every request.
#[derive(Debug, Clone)]
pub struct ResolvedIdentity {
    pub tenant_name: String,
    pub tenant_status: String,
    pub meta_version: i64,
    /// `None` when the user row does not exist.
    pub user: Option<ResolvedUser>,
    /// Set when the [`IdentityRef`] named a machine key.
    pub machine_key: Option<KeyState>,
    /// Set when the [`IdentityRef`] named an API key.
    pub api_key: Option<KeyState>,
    /// Set when the [`IdentityRef`] named an impersonator and that user row exists.
    pub impersonator: Option<ResolvedUser>,
}

/// The live state of a credential row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    /// The row exists and belongs to the token's tenant and user.
    pub found: bool,
    /// `revoked_at` has passed (a rotation may set it in the future: the key still works).
    pub revoked: bool,
    pub expired: bool,
    /// The key's own access cap (API keys).
    pub access: Option<Role>,
}

#[derive(Debug, Clone)]
pub struct ResolvedUser {
    pub username: String,
    pub access: Role,
    pub active: bool,
}

#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Creates registry row, schema, tables, users and credential in one transaction.
    /// `TENANT_EXISTS` on a taken name; any other failure → `TENANT_PROVISION_FAILED`, nothing left.
    async fn provision(&self, t: NewTenant) -> Result<ProvisionedTenant>;
    async fn count_pending(&self) -> Result<i64>;
    async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>>;
    async fn tenant_by_id(&self, id: Uuid) -> Result<Option<TenantRecord>>;
    async fn login_user(&self, tenant: &Ident, username: &str) -> Result<Option<LoginUser>>;
    /// `pending` → `active` (no-op otherwise).
    async fn activate(&self, tenant_id: Uuid) -> Result<()>;
    /// Tenant status, user and the credential rows in one round trip; `None` when the
    /// tenant row (or its schema) is gone.
    async fn resolve(&self, tenant: &Ident, id: &IdentityRef) -> Result<Option<ResolvedIdentity>>;
    /// The user object of A3.8 as JSON.
    async fn user_object(&self, tenant: &Ident, user_id: Uuid) -> Result<Option<Value>>;
    /// Records a single-use token id; `false` when it was already used.
    async fn consume_jti(&self, jti: Uuid, expires_at: i64) -> Result<bool>;
    /// Tenants served (`pending`, `active`) by name, for the optional public listing.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>>;
    /// Usernames of a tenant's active users that can log in (have a password), sorted.
    async fn login_usernames(&self, tenant: &Ident) -> Result<Vec<String>>;
    /// Marks the tenant `deleted` (dissolution, A3.10); `false` when it is not there.
    async fn dissolve(&self, tenant_id: Uuid) -> Result<bool>;
}
