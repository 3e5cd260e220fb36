//! The composition root: the only place concrete adapters are chosen (embedded vs cluster),
//! services are built, listeners bound, and the ordered shutdown is carried out.

use crate::cli::{TenantAction, Workers};
use crate::config::Config;
use crate::shutdown::{self, Shutdown};
use crate::telemetry;
use abbotik_adapters::postgres::embedded::{EmbeddedOptions, EmbeddedPg};
use abbotik_adapters::postgres::{migrate as pg_migrate, Db, DbConfig};
use abbotik_http::{AppState, HttpSettings, ReadyCheck, Readiness};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A readiness probe of one dependency.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    fn name(&self) -> &'static str;
    fn critical(&self) -> bool;
    async fn probe(&self) -> Result<(), String>;
}

struct PostgresProbe(Db);

#[async_trait::async_trait]
impl Probe for PostgresProbe {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn critical(&self) -> bool {
        true
    }
    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())?;
        match pg_migrate::is_behind(&self.0).await {
            Ok(false) => Ok(()),
            Ok(true) => Err("migrations behind this binary: run abbot-api migrate".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Every configured check, run in parallel with a 2 s timeout each (B6).
pub struct Checks(pub Vec<Box<dyn Probe>>);

#[async_trait::async_trait]
impl Readiness for Checks {
    async fn check(&self) -> Vec<ReadyCheck> {
        let futs = self.0.iter().map(|p| async move {
            let started = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(2), p.probe()).await;
            let error = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("timed out after 2 s".to_owned()),
            };
            ReadyCheck {
                name: p.name(),
                ok: error.is_none(),
                latency_ms: started.elapsed().as_millis() as u64,
                critical: p.critical(),
                error,
            }
        });
        futures::future::join_all(futs).await
    }
}

/// Backing resources opened for one process.
pub struct Resources {
    pub db: Db,
    pub embedded: Option<EmbeddedPg>,
}

/// Opens the database: the embedded cluster when `ABBOTIK_DATABASE_URL` is unset.
pub async fn open_db(cfg: &Config) -> anyhow::Result<Resources> {
    let (dbcfg, embedded) = match &cfg.database_url {
        Some(url) => (
            DbConfig {
                url: Some(url.0.clone()),
                socket_dir: None,
                port: 5432,
                user: String::new(),
                dbname: String::new(),
                pool_max: cfg.database_pool_max,
                statement_timeout_ms: cfg.statement_timeout_ms,
            },
            None,
        ),
        None => {
            let pg = EmbeddedPg::start(EmbeddedOptions {
                data_dir: cfg.data_dir.clone(),
                pg_bin: cfg.pg_bin.clone(),
                pg_user: cfg.pg_user.clone(),
            })
            .await
            .context("starting the embedded PostgreSQL")?;
            (
                DbConfig {
                    url: None,
                    socket_dir: Some(pg.socket_dir.clone()),
                    port: pg.port,
                    user: pg.user.clone(),
                    dbname: pg.dbname.clone(),
                    pool_max: cfg.database_pool_max,
                    statement_timeout_ms: cfg.statement_timeout_ms,
                },
                Some(pg),
            )
        }
    };
    let db = Db::connect(&dbcfg)?;
    Ok(Resources { db, embedded })
}

/// Builds the application state (services over their adapters).
pub fn build_state(cfg: &Config, res: &Resources, shutdown: &Shutdown) -> anyhow::Result<AppState> {
    let mut probes: Vec<Box<dyn Probe>> = vec![Box::new(PostgresProbe(res.db.clone()))];
    probes.extend(crate::backing::probes(cfg)?);
    let describe = Arc::new(abbotik_domain::describe::DescribeService::new(Arc::new(
        abbotik_adapters::postgres::describe_store::PgDescribeStore::new(res.db.clone()),
    )));
    Ok(AppState {
        auth: Arc::new(abbotik_domain::auth::AuthService {}),
        data: Arc::new(abbotik_domain::data::DataService::new(
            Arc::new(abbotik_adapters::postgres::record_store::PgRecordStore::new(res.db.clone())),
            describe.clone(),
        )),
        describe,
        readiness: Arc::new(Checks(probes)),
        settings: Arc::new(HttpSettings {
            body_limit_bytes: cfg.body_limit_bytes,
            response_max_bytes: cfg.response_max_bytes,
            region: cfg.region.clone(),
            version: env!("CARGO_PKG_VERSION"),
            public_url: cfg.public_url.clone(),
        }),
        started: Instant::now(),
        shutting_down: shutdown.flag.clone(),
    })
}

/// A server started in the background (used by `run` and by tests).
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub resources: Resources,
    pub serve: JoinHandle<std::io::Result<()>>,
}

/// Opens resources, migrates in embedded mode, binds the listener and serves in the background.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    let resources = open_db(cfg).await?;
    if cfg.embedded() {
        pg_migrate::migrate(&resources.db)
            .await
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    }
    let shutdown = Shutdown::new();
    let state = build_state(cfg, &resources, &shutdown)?;
    let app = abbotik_http::router(state);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let stop = shutdown.clone();
    let serve = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await
    });
    Ok(Running {
        addr,
        shutdown,
        resources,
        serve,
    })
}

/// `abbot-api run`.
pub async fn run(cfg: Config, _workers: Workers) -> anyhow::Result<i32> {
    let metrics = telemetry::init_metrics(&cfg);
    let running = start(&cfg).await?;
    if let Some(handle) = metrics {
        spawn_metrics_listener(cfg.metrics_listen, handle).await;
    }
    tracing::info!(addr = %running.addr, embedded = cfg.embedded(), "abbot-api listening");
    println!("abbot-api listening on http://{}", running.addr);
    shutdown::signal().await;
    tracing::info!("shutdown requested");
    let grace = Duration::from_secs(cfg.shutdown_grace_seconds);
    let deadline = tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        eprintln!("abbot-api: shutdown deadline passed");
        std::process::exit(1);
    });
    running
        .shutdown
        .begin(Duration::from_secs(cfg.shutdown_delay_seconds))
        .await;
    let _ = running.serve.await;
    running.resources.db.close();
    if let Some(pg) = &running.resources.embedded {
        if let Err(e) = pg.stop().await {
            tracing::warn!(error = %e, "stopping embedded PostgreSQL");
        }
    }
    deadline.abort();
    tracing::info!("shutdown complete");
    Ok(0)
}

async fn spawn_metrics_listener(
    addr: SocketAddr,
    handle: metrics_exporter_prometheus::PrometheusHandle,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    );
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
        }
        Err(e) => tracing::warn!(%addr, error = %e, "metrics listener not started"),
    }
}

/// `abbot-api worker`.
pub async fn worker(_cfg: Config) -> anyhow::Result<i32> {
    anyhow::bail!("the worker command arrives with the cron and events issues")
}

/// Applies control migrations and tenant upgrades (used by `migrate` and tests).
pub async fn migrate_db(db: &Db) -> anyhow::Result<()> {
    pg_migrate::migrate(db)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

/// `abbot-api migrate [--check]`.
pub async fn migrate(cfg: Config, check: bool) -> anyhow::Result<i32> {
    let res = open_db(&cfg).await?;
    let code = if check {
        let behind = pg_migrate::is_behind(&res.db)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", if behind { "behind" } else { "up to date" });
        i32::from(behind)
    } else {
        pg_migrate::migrate(&res.db)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("migrations applied");
        0
    };
    res.db.close();
    if let Some(pg) = &res.embedded {
        pg.stop().await?;
    }
    Ok(code)
}

/// `abbot-api tenant …`.
pub async fn tenant(_cfg: Config, _action: TenantAction) -> anyhow::Result<i32> {
    anyhow::bail!("tenant administration is not built yet")
}
