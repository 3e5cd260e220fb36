//! The tenant context: who is calling, for which tenant, with which effective role.
//! Built only by the HTTP auth extractor after identity was re-resolved from the database;
//! every store call that touches tenant data takes it first.

use crate::ident::Ident;
use crate::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How the credential was obtained (A3.2 `auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    Username,
    PublicKey,
    ApiKey,
}

impl AuthType {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthType::Username => "username",
            AuthType::PublicKey => "public_key",
            AuthType::ApiKey => "api_key",
        }
    }
}

/// Facts about the credential itself.
#[derive(Debug, Clone)]
pub struct AuthInfo {
    pub auth_type: AuthType,
    pub token_id: Option<Uuid>,
    pub key_id: Option<String>,
    pub key_fingerprint: Option<String>,
    pub api_key_id: Option<String>,
    pub is_sudo_token: bool,
    pub is_fake: bool,
    pub faked_by: Option<Uuid>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The authenticated caller within one tenant.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant_id: Uuid,
    pub tenant: Ident,
    /// `ns_tenant_<tenant>`.
    pub schema: Ident,
    pub tenant_status: String,
    pub user_id: Uuid,
    pub username: String,
    /// Effective role, resolved from the database on this request (A3.1).
    pub role: Role,
    pub auth: AuthInfo,
    /// Version of the tenant's model metadata; metadata caches are valid only at this version.
    pub meta_version: i64,
    pub request_id: String,
}

impl TenantCtx {
    /// Sudo (A3.1): effective role `root`, or a sudo token while the role is still ≥ `full`.
    /// Impersonation tokens are never sudo.
    pub fn is_sudo(&self) -> bool {
        if self.auth.is_fake {
            return false;
        }
        self.role == Role::Root || (self.auth.is_sudo_token && self.role >= Role::Full)
    }
}
