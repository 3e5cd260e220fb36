//! Human auth (A3.2, A3.3, A3.10) and identity resolution on every request.

use crate::{Result, TenantCtx};

/// Registration, login, refresh, dissolution, and per-request authentication.
pub struct AuthService {}

impl AuthService {
    /// Verifies a bearer credential and re-resolves the identity from the database.
    pub async fn authenticate(&self, _token: &str, _request_id: String) -> Result<TenantCtx> {
        Err(crate::Error::new(crate::ErrorCode::AuthTokenInvalid))
    }
}
