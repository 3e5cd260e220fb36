//! Unit tests of the auth service that need no database (token verification and its cache).
use super::*;
use crate::ports::api_keys::{ApiKeyLookup, ApiKeyRow, NewApiKey, Revoked};
use crate::ports::auth::{LoginUser, ProvisionedTenant, TenantRecord};
use crate::ports::ratelimit::Decision;

/// verify() never touches the store; any call here is a bug.
struct NoStore;

#[async_trait::async_trait]
impl AuthStore for NoStore {
    async fn provision(&self, _: NewTenant) -> Result<ProvisionedTenant> {
        unreachable!()
    }
    async fn count_pending(&self) -> Result<i64> {
        unreachable!()
    }
    async fn tenant_by_name(&self, _: &str) -> Result<Option<TenantRecord>> {
        unreachable!()
    }
    async fn tenant_by_id(&self, _: Uuid) -> Result<Option<TenantRecord>> {
        unreachable!()
    }
    async fn login_user(&self, _: &ident::Ident, _: &str) -> Result<Option<LoginUser>> {
        unreachable!()
    }
    async fn activate(&self, _: Uuid) -> Result<()> {
        unreachable!()
    }
    async fn resolve(&self, _: &ident::Ident, _: &IdentityRef) -> Result<Option<ResolvedIdentity>> {
        unreachable!()
    }
    async fn user_object(&self, _: &ident::Ident, _: Uuid) -> Result<Option<Value>> {
        unreachable!()
    }
    async fn consume_jti(&self, _: Uuid, _: i64) -> Result<bool> {
        unreachable!()
    }
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        unreachable!()
    }
    async fn login_usernames(&self, _: &ident::Ident) -> Result<Vec<String>> {
        unreachable!()
    }
    async fn dissolve(&self, _: Uuid) -> Result<bool> {
        unreachable!()
    }
}

struct Unlimited;

#[async_trait::async_trait]
impl RateLimiter for Unlimited {
    async fn hit(&self, _: &str, _: &str, _: u32, _: u64) -> Result<Decision> {
        Ok(Decision::Allowed)
    }
}

/// Looks up nothing: every presented API key is unknown.
struct NoKeys;

#[async_trait::async_trait]
impl ApiKeyStore for NoKeys {
    async fn create(&self, _: NewApiKey, _: i64) -> Result<Option<ApiKeyRow>> {
        unreachable!()
    }
    async fn list(&self, _: Uuid, _: Option<Uuid>, _: i64, _: i64) -> Result<Vec<ApiKeyRow>> {
        unreachable!()
    }
    async fn get(&self, _: Uuid, _: Uuid) -> Result<Option<ApiKeyRow>> {
        unreachable!()
    }
    async fn revoke(&self, _: Uuid, _: Uuid) -> Result<Revoked> {
        unreachable!()
    }
    async fn revoke_all(&self, _: Uuid, _: Uuid) -> Result<u64> {
        unreachable!()
    }
    async fn lookup(&self, _: &str) -> Result<Option<ApiKeyLookup>> {
        Ok(None)
    }
    async fn touch(&self, _: Uuid) -> Result<()> {
        unreachable!()
    }
    async fn user_access(&self, _: &ident::Ident, _: Uuid) -> Result<Option<Role>> {
        unreachable!()
    }
}

fn service() -> AuthService {
    AuthService::new(
        Arc::new(NoStore),
        KeyRing::new(&[("k1".into(), b"k".repeat(32))]).unwrap(),
        AuthSettings {
            region: "local".into(),
            max_pending_tenants: 1,
            tenant_create_per_hour: 1,
            tenant_list: false,
            tenant_list_users: false,
        },
        Arc::new(Unlimited),
        Arc::new(NoKeys),
    )
}

#[tokio::test]
async fn unknown_or_malformed_api_keys_are_invalid_tokens() {
    let svc = service();
    for k in ["abk_x", &api_keys::generate()] {
        assert_eq!(
            svc.verify(k).await.unwrap_err().code,
            ErrorCode::AuthTokenInvalid
        );
    }
}

#[tokio::test]
async fn cached_tokens_still_expire() {
    let svc = service();
    let claims = Claims::issue(
        Uuid::new_v4(),
        "u",
        "acme",
        Uuid::new_v4(),
        "root",
        "username",
        1,
    );
    let token = svc.keys.sign(&claims).unwrap();
    assert!(svc.verify(&token).await.is_ok());
    assert!(svc.verify(&token).await.is_ok(), "served from the cache");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        svc.verify(&token).await.unwrap_err().code,
        ErrorCode::AuthTokenExpired
    );
    assert_eq!(
        svc.verify(&token).await.unwrap_err().code,
        ErrorCode::AuthTokenExpired
    );
}

#[tokio::test]
async fn failed_tokens_are_not_cached() {
    let svc = service();
    let claims = Claims::issue(
        Uuid::new_v4(),
        "u",
        "acme",
        Uuid::new_v4(),
        "root",
        "username",
        60,
    );
    let mut token = svc.keys.sign(&claims).unwrap();
    token.push('x');
    assert!(svc.verify(&token).await.is_err());
    assert!(svc.verify(&token).await.is_err());
    let mut dissolve = claims.clone();
    dissolve.token_use = Some("dissolve".into());
    let t = svc.keys.sign(&dissolve).unwrap();
    assert_eq!(
        svc.verify(&t).await.unwrap_err().code,
        ErrorCode::AuthTokenInvalid
    );
}
