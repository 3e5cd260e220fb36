//! Shared state handed to every handler: the domain services and edge settings.

use abbotik_domain::auth::machine::MachineService;
use abbotik_domain::auth::AuthService;
use abbotik_domain::data::DataService;
use abbotik_domain::describe::DescribeService;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Readiness of backing services (B6), implemented by the server's wiring.
#[async_trait::async_trait]
pub trait Readiness: Send + Sync {
    /// `(name, ok, latency_ms, critical, error text for logs)` per configured check.
    async fn check(&self) -> Vec<ReadyCheck>;
}

#[derive(Debug, Clone)]
pub struct ReadyCheck {
    pub name: &'static str,
    pub ok: bool,
    pub latency_ms: u64,
    /// A failure of a critical check (Postgres) makes `/ready` 503.
    pub critical: bool,
    /// Only shown on the metrics listener.
    pub error: Option<String>,
}

/// Settings of the HTTP edge (from config, loaded once).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub body_limit_bytes: usize,
    pub response_max_bytes: usize,
    pub region: String,
    pub version: &'static str,
    pub public_url: String,
    /// `ABBOTIK_TRUSTED_PROXIES` (B5): peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::client_ip::Cidr>,
    /// `ABBOTIK_IMPORT_MAX_BYTES` (A8.3): cap of an NDJSON import stream.
    pub import_max_bytes: u64,
}

/// The state every handler gets: one shared [`AppServices`], so handing it to a handler
/// costs one reference-count increment, whatever the number of services.
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    pub fn new(services: AppServices) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;
    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The domain services and edge settings behind [`AppState`].
pub struct AppServices {
    pub auth: Arc<AuthService>,
    /// Machine bootstrap, challenge/verify and machine keys (A3.4, A3.6).
    pub machine: Arc<MachineService>,
    pub describe: Arc<DescribeService>,
    pub data: Arc<DataService>,
    /// Import of exports (A8.3).
    pub import: Arc<abbotik_domain::transfer::ImportService>,
    /// The rate limiters (B5).
    pub limits: Arc<abbotik_domain::ratelimit::RateLimitService>,
    /// The tenant's users and invites (A3.5, A3.8).
    pub users: Arc<abbotik_domain::users::UsersService>,
    /// The caller's encrypted secrets (A3.8a).
    pub secrets: Arc<abbotik_domain::secrets::SecretsService>,
    pub readiness: Arc<dyn Readiness>,
    pub settings: Arc<HttpSettings>,
    pub started: Instant,
    /// Set when shutdown begins: `/ready` answers 503 from then on.
    pub shutting_down: Arc<AtomicBool>,
}
