//! The user-secrets port (A3.8a): sealed rows of a tenant's internal `user_secrets` table,
//! always addressed by (user, name). The store never sees a plaintext value.

use crate::secrets::Sealed;
use crate::time::Ts;
use crate::{Ident, Result};
use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The metadata of one secret (what every route but reveal answers).
#[derive(Debug, Clone)]
pub struct SecretMeta {
    pub name: String,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub last_used_at: Option<Ts>,
}

/// A row as reveal and rekey need it.
#[derive(Debug, Clone)]
pub struct SealedSecret {
    pub user_id: Uuid,
    pub name: String,
    pub sealed: Sealed,
}

#[derive(Debug, Clone)]
pub struct NewSecret {
    pub name: String,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub sealed: Sealed,
}

/// An update: `Some` replaces the stored value, `None` keeps it.
#[derive(Debug, Clone)]
pub struct SecretPatch {
    pub kind: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub sealed: Option<Sealed>,
}

/// A tenant whose schema holds secrets (for rekey).
#[derive(Debug, Clone)]
pub struct SecretTenant {
    pub id: Uuid,
    pub name: Ident,
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The user's secrets, by name.
    async fn list(&self, schema: &Ident, user_id: Uuid) -> Result<Vec<SecretMeta>>;
    /// Inserts; `None` when the user already has a secret of that name.
    async fn insert(
        &self,
        schema: &Ident,
        user_id: Uuid,
        s: NewSecret,
    ) -> Result<Option<SecretMeta>>;
    /// Applies the patch (and bumps `updated_at`); `None` when there is no such secret.
    async fn update(
        &self,
        schema: &Ident,
        user_id: Uuid,
        name: &str,
        patch: &SecretPatch,
    ) -> Result<Option<SecretMeta>>;
    /// Removes; the removed row's metadata, `None` when there was none.
    async fn delete(&self, schema: &Ident, user_id: Uuid, name: &str)
        -> Result<Option<SecretMeta>>;
    async fn get(&self, schema: &Ident, user_id: Uuid, name: &str) -> Result<Option<SealedSecret>>;
    /// Sets `last_used_at` (reveal).
    async fn touch(&self, schema: &Ident, user_id: Uuid, name: &str) -> Result<()>;
    /// Every tenant whose schema still exists.
    async fn tenants(&self) -> Result<Vec<SecretTenant>>;
    /// Rows of a tenant not sealed under `kek_id`.
    async fn stale(&self, schema: &Ident, kek_id: &str) -> Result<Vec<SealedSecret>>;
    /// Replaces `old` by `new` when the row still holds `old` (a concurrent write wins);
    /// `true` when replaced.
    async fn reseal(
        &self,
        schema: &Ident,
        user_id: Uuid,
        name: &str,
        old: &Sealed,
        new: &Sealed,
    ) -> Result<bool>;
}
