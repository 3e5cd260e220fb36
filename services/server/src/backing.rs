//! The cluster-mode backing services (Redis, NATS JetStream, S3) as readiness probes (the
//! embedded data-dir probe lives in `wiring`).
//!
//! Each client is built from configuration at start-up: a malformed URL or an unreadable
//! credentials file fails the start (exit code 2 territory), but an unreachable service does
//! not — it makes `/ready` answer `degraded` (B6), because every pod shares these services and
//! pulling them all from the load balancer would turn a partial outage into a full one.

use crate::config::Config;
use crate::wiring::Probe;
use abbotik_adapters::nats::Nats;
use abbotik_adapters::redis::Redis;
use abbotik_adapters::s3::{S3BlobStore, S3Config};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The S3 settings of `cfg` (credentials from the standard `AWS_*` chain).
pub fn s3_config(cfg: &Config) -> Option<S3Config> {
    cfg.s3_bucket.as_ref().map(|bucket| S3Config {
        bucket: bucket.clone(),
        endpoint: cfg.s3_endpoint.clone(),
        region: cfg.s3_region.clone(),
        force_path_style: cfg.s3_force_path_style,
        access_key_id: None,
        secret_access_key: None,
    })
}

/// Probes for every configured backing service (none in embedded mode).
pub fn probes(cfg: &Config) -> anyhow::Result<Vec<Box<dyn Probe>>> {
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    if cfg.embedded() {
        return Ok(probes);
    }
    if let Some(url) = &cfg.redis_url {
        probes.push(Box::new(RedisProbe(Redis::open(&url.0)?)));
    }
    if let Some(url) = &cfg.nats_url {
        probes.push(Box::new(NatsProbe::start(
            url.0.clone(),
            cfg.nats_creds.clone(),
        )));
    }
    if let Some(s3) = s3_config(cfg) {
        probes.push(Box::new(S3Probe(S3BlobStore::new(s3)?)));
    }
    Ok(probes)
}

struct RedisProbe(Redis);

#[async_trait::async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(internal_text)
    }
}

/// NATS connects in the background from the moment the probe is built, so the first `/ready`
/// does not pay for the handshake.
struct NatsProbe {
    url: String,
    creds: Option<PathBuf>,
    client: Arc<OnceCell<Nats>>,
}

impl NatsProbe {
    fn start(url: String, creds: Option<PathBuf>) -> NatsProbe {
        let p = NatsProbe {
            url,
            creds,
            client: Arc::new(OnceCell::new()),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let (cell, url, creds) = (p.client.clone(), p.url.clone(), p.creds.clone());
            tokio::spawn(async move {
                if let Err(e) = cell
                    .get_or_try_init(|| Nats::connect(&url, creds.as_deref()))
                    .await
                {
                    tracing::warn!(error = %e, "NATS client not created");
                }
            });
        }
        p
    }
}

#[async_trait::async_trait]
impl Probe for NatsProbe {
    fn name(&self) -> &'static str {
        "nats"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn probe(&self) -> Result<(), String> {
        let nats = self
            .client
            .get_or_try_init(|| Nats::connect(&self.url, self.creds.as_deref()))
            .await
            .map_err(|e| e.to_string())?;
        // Right after start the connection may still be in its handshake: give it a moment.
        nats.wait_connected(Duration::from_secs(1)).await;
        nats.ping().await.map_err(internal_text)
    }
}

struct S3Probe(S3BlobStore);

#[async_trait::async_trait]
impl Probe for S3Probe {
    fn name(&self) -> &'static str {
        "s3"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn probe(&self) -> Result<(), String> {
        self.0.head_bucket().await.map_err(internal_text)
    }
}

/// The cause kept for the log and the metrics listener's detailed `/ready`.
fn internal_text(e: abbotik_domain::Error) -> String {
    e.internal.unwrap_or_else(|| format!("{:?}", e.code))
}
