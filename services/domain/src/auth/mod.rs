//! Human auth (A3.2 tokens, A3.3 register/login/refresh, A3.10 dissolution) and the
//! per-request authentication that re-resolves identity from the database (A3.2).

pub mod api_keys;
pub mod ed25519;
mod elevation;
pub mod jwt;
pub mod machine;
mod machine_keys;
pub mod password;
mod tenant_create;
mod verified_cache;

use crate::ctx::{AuthInfo, AuthType};
use crate::ident;
use crate::ports::api_keys::ApiKeyStore;
use crate::ports::auth::{AuthStore, IdentityRef, NewTenant, ResolvedIdentity};
use crate::ports::ratelimit::RateLimiter;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use jwt::{Claims, KeyRing};
use serde_json::{json, Map, Value};
use std::sync::{Arc, LazyLock};
use uuid::Uuid;

pub const LOGIN_TTL: i64 = 604_800;
pub const DISSOLVE_TTL: i64 = 300;

static EMAIL_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[^@\s]+@[^@\s]+$").expect("static regex"));

/// Settings the auth rules need.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub region: String,
    pub max_pending_tenants: i64,
    /// New tenants per client IP per hour (`ABBOTIK_RATE_TENANT_CREATE_PER_HOUR`, A3.3).
    pub tenant_create_per_hour: u32,
    /// `GET /auth/tenants` enabled (`ABBOTIK_AUTH_TENANT_LIST`), and with usernames
    /// (`ABBOTIK_AUTH_TENANT_LIST_USERS`).
    pub tenant_list: bool,
    pub tenant_list_users: bool,
}

/// Registration, login, refresh, dissolution, and per-request authentication.
pub struct AuthService {
    store: Arc<dyn AuthStore>,
    keys: KeyRing,
    settings: AuthSettings,
    limiter: Arc<dyn RateLimiter>,
    api_keys: Arc<dyn ApiKeyStore>,
    verified: verified_cache::VerifiedCache,
}

/// A body key under the "null = absent" rule (A1.1): `None` when missing or null.
pub fn opt_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Error::field_invalid(key, "a string")),
    }
}

/// A required string body key.
pub fn req_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    opt_str(body, key)?.ok_or_else(|| Error::field_missing(key))
}

/// The body as an object (`{}` when empty).
pub fn body_object(body: Option<Value>) -> Result<Map<String, Value>> {
    match body {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Error::new(ErrorCode::ValidationBodyNotObject)),
    }
}

impl AuthService {
    pub fn new(
        store: Arc<dyn AuthStore>,
        keys: KeyRing,
        settings: AuthSettings,
        limiter: Arc<dyn RateLimiter>,
        api_keys: Arc<dyn ApiKeyStore>,
    ) -> Self {
        Self {
            store,
            keys,
            settings,
            limiter,
            api_keys,
            verified: verified_cache::VerifiedCache::default(),
        }
    }

    /// `POST /auth/register` (A3.3): a `pending` tenant whose owner is `root`; no token.
    /// `client` is the caller's address, for the tenant-creation budget.
    pub async fn register(&self, body: Option<Value>, client: &str) -> Result<Value> {
        let b = body_object(body)?;
        let tenant_raw = req_str(&b, "tenant")?;
        let username_raw = req_str(&b, "username")?;
        let password = req_str(&b, "password")?;
        let tenant = ident::tenant_name(tenant_raw)?;
        let username = ident::username(username_raw)?;
        let email = opt_str(&b, "email")?;
        if let Some(e) = email {
            if !EMAIL_RE.is_match(e) {
                return Err(
                    Error::new(ErrorCode::AuthEmailInvalid).with_data(json!({"field": "email"}))
                );
            }
        }
        if !password::valid_length(password) {
            return Err(
                Error::new(ErrorCode::AuthPasswordInvalid).with_data(json!({"field": "password"}))
            );
        }
        let description = opt_str(&b, "description")?.map(str::to_owned);
        self.admit_new_tenant(&tenant, client).await?;
        let pw = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(Error::internal)??;
        let created = self
            .store
            .provision(NewTenant {
                tenant: tenant.clone(),
                description,
                region: self.settings.region.clone(),
                owner_username: username.clone(),
                owner_email: email.map(str::to_owned),
                password_hash: Some(hash),
                machine_key: None,
            })
            .await?;
        Ok(json!({
            "tenant_id": created.tenant_id,
            "tenant": tenant,
            "username": username,
            "status": "pending",
        }))
    }

    /// `POST /auth/login` (A3.3).
    pub async fn login(&self, body: Option<Value>) -> Result<Value> {
        let b = body_object(body)?;
        let by_name = opt_str(&b, "tenant")?;
        let by_id = opt_str(&b, "tenant_id")?;
        let username = req_str(&b, "username")?;
        let password = req_str(&b, "password")?.to_owned();
        if by_name.is_none() && by_id.is_none() {
            return Err(Error::field_missing("tenant"));
        }
        let failed = || Error::new(ErrorCode::AuthLoginFailed);
        let mut tenant = match by_name {
            Some(n) => self.store.tenant_by_name(n).await?,
            None => None,
        };
        if let Some(id) = by_id {
            let from_id = match Uuid::parse_str(id) {
                Ok(u) => self.store.tenant_by_id(u).await?,
                Err(_) => None,
            };
            tenant = match (by_name, tenant, from_id) {
                (Some(_), Some(a), Some(b)) if a.id == b.id => Some(a),
                (Some(_), _, _) => None,
                (None, _, b) => b,
            };
        }
        let tenant = tenant.filter(|t| t.status != "deleted");
        let user = match &tenant {
            Some(t) => {
                let name = ident::tenant_name(&t.name)?;
                self.store.login_user(&name, username).await?
            }
            None => None,
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, phc.as_deref()))
            .await
            .map_err(Error::internal)?;
        let (Some(tenant), Some(user), true) = (tenant, user, ok) else {
            return Err(failed());
        };
        if !user.active {
            return Err(failed());
        }
        if tenant.status == "suspended" {
            return Err(Error::new(ErrorCode::TenantInactive));
        }
        if tenant.status == "pending" {
            self.store.activate(tenant.id).await?;
        }
        self.issue_login(
            &tenant.name,
            tenant.id,
            user.id,
            &user.username,
            user.access,
        )
    }

    fn issue_login(
        &self,
        tenant: &str,
        tenant_id: Uuid,
        user_id: Uuid,
        username: &str,
        access: Role,
    ) -> Result<Value> {
        let claims = Claims::issue(
            user_id,
            username,
            tenant,
            tenant_id,
            access.as_str(),
            AuthType::Username.as_str(),
            LOGIN_TTL,
        );
        let token = self.keys.sign(&claims)?;
        Ok(json!({
            "token": token,
            "expires_in": LOGIN_TTL,
            "token_type": "Bearer",
            "user": {"id": user_id, "username": username, "tenant": tenant, "tenant_id": tenant_id, "access": access},
        }))
    }

    /// `POST /auth/refresh` (A3.3): the body's `token` wins over the header's.
    pub async fn refresh(&self, body: Option<Value>, header: Option<String>) -> Result<Value> {
        let b = body_object(body)?;
        let token = match opt_str(&b, "token")? {
            Some(t) => t.to_owned(),
            None => header.ok_or_else(|| Error::new(ErrorCode::AuthTokenRequired))?,
        };
        let claims = self.keys.verify(&token)?;
        if claims.token_use.is_some() {
            return Err(Error::new(ErrorCode::AuthTokenInvalid));
        }
        if claims.auth_type != AuthType::Username.as_str() || claims.is_fake == Some(true) {
            return Err(Error::new(ErrorCode::AuthRefreshUnsupported));
        }
        let v = Verified::from_claims(claims)?;
        let resolved = self.store.resolve(&v.tenant, &v.identity).await?;
        let ctx = Self::finish(&v, resolved, String::new())?;
        self.issue_login(
            ctx.tenant.as_str(),
            ctx.tenant_id,
            ctx.user_id,
            &ctx.username,
            ctx.role,
        )
    }

    /// Verifies a bearer credential and re-resolves the identity from the database.
    pub async fn authenticate(&self, token: &str, request_id: String) -> Result<TenantCtx> {
        let v = self.verify(token).await?;
        let resolved = self.store.resolve(&v.tenant, &v.identity).await?;
        Self::finish(&v, resolved, request_id)
    }

    /// Checks a bearer credential's signature (a JWT), or finds the key (an `abk_` API key:
    /// one lookup by hash, then cached like a verified JWT), and its expiry and shape. The
    /// identity behind it must still be resolved ([`Self::finish`]) before anything is
    /// decided or returned.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>> {
        if let Some(v) = self.verified.get(token) {
            if v.claims.exp < chrono::Utc::now().timestamp() {
                self.verified.remove(token);
                return Err(Error::new(ErrorCode::AuthTokenExpired));
            }
            self.note_api_key_use(&v);
            return Ok(v);
        }
        let v = if token.starts_with(api_keys::PREFIX) {
            self.verify_api_key(token).await?
        } else {
            let claims = self.keys.verify(token)?;
            if claims.token_use.is_some() {
                return Err(Error::new(ErrorCode::AuthTokenInvalid));
            }
            Verified::from_claims(claims)?
        };
        if v.claims.exp < chrono::Utc::now().timestamp() {
            return Err(Error::new(ErrorCode::AuthTokenExpired));
        }
        let v = Arc::new(v);
        self.verified.insert(token, v.clone());
        self.note_api_key_use(&v);
        Ok(v)
    }

    /// A context built from the verified claims alone, to address statements that resolve
    /// the identity themselves (one round trip). Its role and versions are NOT to be trusted:
    /// decisions use the context [`Self::finish`] returns.
    pub fn provisional(v: &Verified, meta_version: i64, request_id: String) -> TenantCtx {
        Self::ctx(
            v,
            v.claimed_role,
            "pending".into(),
            v.claims.username.clone(),
            meta_version,
            request_id,
        )
    }

    /// Applies the identity rules of A3.2 to what the database said about the credential.
    pub fn finish(
        v: &Verified,
        resolved: Option<ResolvedIdentity>,
        request_id: String,
    ) -> Result<TenantCtx> {
        let id = resolved.ok_or_else(|| Error::new(ErrorCode::TenantInactive))?;
        if id.tenant_name != v.tenant.as_str() {
            return Err(Error::new(ErrorCode::AuthTokenInvalid));
        }
        if id.tenant_status != "pending" && id.tenant_status != "active" {
            return Err(Error::new(ErrorCode::TenantInactive));
        }
        let user = id
            .user
            .filter(|u| u.active)
            .ok_or_else(|| Error::new(ErrorCode::AuthUserInactive))?;
        let mut role = user.access;
        if let Some(k) = id.machine_key {
            if !k.found || k.revoked {
                return Err(Error::new(ErrorCode::AuthKeyRevoked));
            }
            if k.expired {
                return Err(Error::new(ErrorCode::AuthKeyExpired));
            }
        }
        if let Some(k) = id.api_key {
            if !k.found {
                return Err(Error::new(ErrorCode::AuthTokenInvalid));
            }
            if k.revoked {
                return Err(Error::new(ErrorCode::AuthKeyRevoked));
            }
            if k.expired {
                return Err(Error::new(ErrorCode::AuthTokenExpired));
            }
            role = role.min(k.access.unwrap_or(Role::Deny));
        }
        if v.identity.impersonator.is_some() {
            let by = id
                .impersonator
                .filter(|u| u.active)
                .ok_or_else(|| Error::new(ErrorCode::AuthUserInactive))?;
            role = role.min(by.access);
        }
        Ok(Self::ctx(
            v,
            role,
            id.tenant_status,
            user.username,
            id.meta_version,
            request_id,
        ))
    }

    fn ctx(
        v: &Verified,
        role: Role,
        tenant_status: String,
        username: String,
        meta_version: i64,
        request_id: String,
    ) -> TenantCtx {
        TenantCtx {
            tenant_id: v.tenant_id,
            schema: ident::tenant_schema(&v.tenant),
            tenant: v.tenant.clone(),
            tenant_status,
            user_id: v.user_id,
            username,
            role,
            auth: v.auth.clone(),
            meta_version,
            request_id,
        }
    }

    /// `GET /auth/tenants` (A3.3): off unless the operator enables it; `users` is always an
    /// array, filled only when usernames are enabled too.
    pub async fn list_tenants(&self) -> Result<Value> {
        if !self.settings.tenant_list {
            return Err(Error::new(ErrorCode::AuthTenantListDisabled));
        }
        let mut out = Vec::new();
        for t in self.store.list_tenants().await? {
            let users = if self.settings.tenant_list_users {
                self.store
                    .login_usernames(&ident::tenant_name(&t.name)?)
                    .await?
            } else {
                Vec::new()
            };
            out.push(json!({"name": t.name, "description": t.description, "users": users}));
        }
        Ok(Value::Array(out))
    }

    /// `GET /api/user/me`.
    pub async fn me(&self, ctx: &TenantCtx) -> Result<Value> {
        self.store
            .user_object(&ctx.tenant, ctx.user_id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::AuthUserNotFound))
    }

    /// `POST /auth/dissolve` (A3.10): password body, or a root bearer token when the body has no
    /// credentials. Returns a single-use confirmation token valid 300 s.
    pub async fn dissolve(&self, body: Option<Value>, bearer: Option<String>) -> Result<Value> {
        let b = body_object(body)?;
        let has_credentials = ["tenant", "username", "password"]
            .iter()
            .any(|k| !matches!(b.get(*k), None | Some(Value::Null)));
        let (tenant, tenant_id, user_id, username) = if has_credentials {
            let login = self.login_identity(&b).await?;
            if login.3 != Role::Root {
                return Err(Error::new(ErrorCode::AuthDissolveForbidden));
            }
            (login.0, login.1, login.2, login.4)
        } else {
            let token = bearer.ok_or_else(|| Error::field_missing("tenant"))?;
            let ctx = self.authenticate(&token, String::new()).await?;
            if ctx.role != Role::Root || ctx.auth.is_fake {
                return Err(Error::new(ErrorCode::AuthDissolveForbidden));
            }
            (
                ctx.tenant.to_string(),
                ctx.tenant_id,
                ctx.user_id,
                ctx.username,
            )
        };
        let mut claims = Claims::issue(
            user_id,
            &username,
            &tenant,
            tenant_id,
            Role::Root.as_str(),
            AuthType::Username.as_str(),
            DISSOLVE_TTL,
        );
        claims.token_use = Some("dissolve".into());
        Ok(json!({"confirmation_token": self.keys.sign(&claims)?, "expires_in": DISSOLVE_TTL}))
    }

    /// Password check for dissolution: (tenant, tenant_id, user_id, access, username).
    async fn login_identity(
        &self,
        b: &Map<String, Value>,
    ) -> Result<(String, Uuid, Uuid, Role, String)> {
        let tenant_raw = req_str(b, "tenant")?;
        let username = req_str(b, "username")?;
        let password = req_str(b, "password")?.to_owned();
        let tenant = self
            .store
            .tenant_by_name(tenant_raw)
            .await?
            .filter(|t| t.status != "deleted");
        let user = match &tenant {
            Some(t) => {
                self.store
                    .login_user(&ident::tenant_name(&t.name)?, username)
                    .await?
            }
            None => None,
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, phc.as_deref()))
            .await
            .map_err(Error::internal)?;
        match (tenant, user, ok) {
            (Some(t), Some(u), true) if u.active => Ok((t.name, t.id, u.id, u.access, u.username)),
            _ => Err(Error::new(ErrorCode::AuthLoginFailed)),
        }
    }

    /// `POST /auth/dissolve/confirm` (A3.10).
    pub async fn dissolve_confirm(&self, body: Option<Value>) -> Result<Value> {
        let b = body_object(body)?;
        let token = req_str(&b, "confirmation_token")?;
        let claims = self.keys.verify(token).map_err(|e| match e.code {
            ErrorCode::AuthTokenExpired => Error::new(ErrorCode::AuthDissolveTokenExpired),
            _ => Error::new(ErrorCode::AuthDissolveTokenInvalid),
        })?;
        if claims.token_use.as_deref() != Some("dissolve") {
            return Err(Error::new(ErrorCode::AuthDissolveTokenInvalid));
        }
        let jti = Uuid::parse_str(&claims.jti)
            .map_err(|_| Error::new(ErrorCode::AuthDissolveTokenInvalid))?;
        if !self.store.consume_jti(jti, claims.exp).await? {
            return Err(Error::new(ErrorCode::AuthDissolveTokenInvalid));
        }
        let tenant_id = claims
            .tenant_uuid()
            .map_err(|_| Error::new(ErrorCode::AuthDissolveTokenInvalid))?;
        if !self.store.dissolve(tenant_id).await? {
            return Err(Error::new(ErrorCode::TenantNotFound));
        }
        Ok(json!({"tenant": claims.tenant, "username": claims.username, "dissolved": true}))
    }

    /// Builds the key ring from `(kid, secret)` pairs.
    pub fn key_ring(keys: &[(String, Vec<u8>)]) -> Result<KeyRing> {
        KeyRing::new(keys)
    }
}

/// A bearer token whose signature and expiry were checked, identity not yet resolved.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Claims,
    pub tenant_id: Uuid,
    pub tenant: ident::Ident,
    pub user_id: Uuid,
    /// The credential as every request's context carries it (built once per token).
    pub auth: AuthInfo,
    /// The rows the per-request identity check must read for this credential.
    pub identity: IdentityRef,
    claimed_role: Role,
    /// API keys: when this pod last recorded the key's use.
    key_use: Option<Arc<api_keys::KeyUse>>,
}

impl Verified {
    fn from_claims(claims: Claims) -> Result<Verified> {
        let invalid = || Error::new(ErrorCode::AuthTokenInvalid);
        let tenant_id = claims.tenant_uuid()?;
        let user_id = claims.user_uuid()?;
        let tenant = ident::tenant_name(&claims.tenant).map_err(|_| invalid())?;
        let auth_type = match claims.auth_type.as_str() {
            "username" => AuthType::Username,
            "public_key" => AuthType::PublicKey,
            "api_key" => AuthType::ApiKey,
            _ => return Err(invalid()),
        };
        let claimed_role = Role::parse(&claims.access).unwrap_or(Role::Deny);
        let auth = AuthInfo {
            auth_type,
            token_id: Uuid::parse_str(&claims.jti).ok(),
            key_id: claims.key_id.clone(),
            key_fingerprint: claims.key_fingerprint.clone(),
            api_key_id: claims.api_key_id.clone(),
            is_sudo_token: claims.is_sudo == Some(true),
            is_fake: claims.is_fake == Some(true),
            faked_by: claims
                .faked_by_user_id
                .as_deref()
                .and_then(|s| Uuid::parse_str(s).ok()),
            issued_at: Some(claims.iat),
            expires_at: Some(claims.exp),
        };
        // The rows the token leans on must be named by valid ids: a machine token its key,
        // an API-key credential its key, an impersonation token its impersonator.
        let identity = IdentityRef::from_auth(tenant_id, user_id, &auth);
        let named = |id: Option<Uuid>, needed: bool| id.is_some() || !needed;
        if !(named(identity.machine_key, auth_type == AuthType::PublicKey)
            && named(identity.api_key, auth_type == AuthType::ApiKey)
            && named(identity.impersonator, auth.is_fake))
        {
            return Err(invalid());
        }
        Ok(Verified {
            identity,
            auth,
            claims,
            tenant_id,
            tenant,
            user_id,
            claimed_role,
            key_use: None,
        })
    }
}

#[cfg(test)]
mod tests;
