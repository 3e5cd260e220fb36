//! The tenant-creation limits shared by `/auth/register` and `/auth/provision` (A3.3): the
//! name must be free, the deployment must have room for another `pending` tenant, and the
//! client address must have budget left in its hourly `tenant_create` scope.

use super::AuthService;
use crate::ident::Ident;
use crate::ports::ratelimit::Decision;
use crate::{Error, ErrorCode, Result};
use serde_json::json;

impl AuthService {
    /// Checks, in this order: `409 TENANT_EXISTS`, `503 SERVICE_UNAVAILABLE`
    /// (`reason:"pending_tenants"`), `429 RATE_LIMITED` (`scope:"tenant_create"`). The budget
    /// is spent only by a request that passed the other two. Provisioning still re-checks the
    /// name inside its transaction (a concurrent creation loses there).
    pub(crate) async fn admit_new_tenant(&self, tenant: &Ident, client: &str) -> Result<()> {
        if self.store.tenant_by_name(tenant.as_str()).await?.is_some() {
            return Err(Error::msg(
                ErrorCode::TenantExists,
                format!("Tenant {tenant} already exists"),
            ));
        }
        if self.store.count_pending().await? >= self.settings.max_pending_tenants {
            return Err(Error::msg(
                ErrorCode::ServiceUnavailable,
                "Too many tenants are waiting for their first login",
            )
            .with_data(json!({"reason": "pending_tenants"})));
        }
        let limit = self.settings.tenant_create_per_hour;
        if let Decision::Limited { retry_after } = self
            .limiter
            .hit("tenant_create", client, limit, 3600)
            .await?
        {
            metrics::counter!("abbotik_ratelimit_rejected_total", "scope" => "tenant_create")
                .increment(1);
            return Err(Error::msg(
                ErrorCode::RateLimited,
                format!("At most {limit} new tenants per hour from one address"),
            )
            .with_data(
                json!({"scope": "tenant_create", "limit": limit, "retry_after": retry_after}),
            ));
        }
        Ok(())
    }
}
