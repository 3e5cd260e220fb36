//! The API-key port (A3.7): bearer keys stored in the control schema by the SHA-256 of the
//! whole key string, so a key resolves to its tenant before any tenant schema is touched.

use crate::time::Ts;
use crate::{Ident, Result, Role};
use async_trait::async_trait;
use uuid::Uuid;

/// A key to store; the secret itself never reaches the store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// Lowercase hex SHA-256 of the whole key string.
    pub key_hash: String,
    /// The first 12 characters (`abk_` + 8), for display.
    pub prefix: String,
    pub name: Option<String>,
    pub access: Role,
    pub expires_at: Option<Ts>,
}

/// A stored key as the routes show it (never the secret or its hash).
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub prefix: String,
    pub access: Role,
    pub created_at: Ts,
    pub last_used_at: Option<Ts>,
    pub expires_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

/// What a presented key resolves to: its immutable facts. Whether it is still live (revoked,
/// expired, its cap) is read again on every request with the identity.
#[derive(Debug, Clone)]
pub struct ApiKeyLookup {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant: String,
    pub user_id: Uuid,
    pub access: Role,
    pub expires_at: Option<Ts>,
}

/// Outcome of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now(Ts),
    Already,
    NotFound,
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key unless its owner already has `max_active` live keys (`None` then).
    async fn create(&self, key: NewApiKey, max_active: i64) -> Result<Option<ApiKeyRow>>;
    /// Keys of the tenant, of one user when `user_id` is set; newest first.
    async fn list(
        &self,
        tenant_id: Uuid,
        user_id: Option<Uuid>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ApiKeyRow>>;
    async fn get(&self, tenant_id: Uuid, key_id: Uuid) -> Result<Option<ApiKeyRow>>;
    async fn revoke(&self, tenant_id: Uuid, key_id: Uuid) -> Result<Revoked>;
    /// Revokes every live key of a user; returns how many.
    async fn revoke_all(&self, tenant_id: Uuid, user_id: Uuid) -> Result<u64>;
    /// The key whose hash this is, with its tenant's name.
    async fn lookup(&self, key_hash: &str) -> Result<Option<ApiKeyLookup>>;
    /// Sets `last_used_at` to now.
    async fn touch(&self, key_id: Uuid) -> Result<()>;
    /// The current `access` of a user of the tenant (`None`: no such user).
    async fn user_access(&self, tenant: &Ident, user_id: Uuid) -> Result<Option<Role>>;
}
