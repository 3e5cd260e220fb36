//! The composition root: the only place concrete adapters are chosen (embedded vs cluster),
//! services are built, listeners bound, and the ordered shutdown is carried out.

use crate::cli::{TenantAction, Workers};
use crate::config::Config;
use crate::shutdown::{self, Shutdown};
use crate::telemetry;
use abbotik_adapters::memory::ratelimit::MemoryRateLimiter;
use abbotik_adapters::postgres::auth_store::PgAuthStore;
use abbotik_adapters::postgres::embedded::{EmbeddedOptions, EmbeddedPg};
use abbotik_adapters::postgres::janitor::PgJanitor;
use abbotik_adapters::postgres::tenant_limits::PgTenantLimits;
use abbotik_adapters::postgres::{migrate as pg_migrate, Db, DbConfig};
use abbotik_adapters::redis_ratelimit::RedisRateLimiter;
use abbotik_domain::auth::{AuthService, AuthSettings};
use abbotik_domain::ports::janitor::Retention;
use abbotik_domain::ports::ratelimit::BudgetStore;
use abbotik_domain::ratelimit::{RateLimitService, RateSettings, TenantCreateLimiter};
use abbotik_http::{AppServices, AppState, HttpSettings, Readiness, ReadyCheck};
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

/// Embedded mode: the data directory (file bytes, keys) must stay writable (B6).
struct DataDirProbe(std::path::PathBuf);

#[async_trait::async_trait]
impl Probe for DataDirProbe {
    fn name(&self) -> &'static str {
        "data_dir"
    }
    fn critical(&self) -> bool {
        true
    }
    async fn probe(&self) -> Result<(), String> {
        let path = self.0.join(".ready-probe");
        tokio::fs::write(&path, b"ok")
            .await
            .and(tokio::fs::remove_file(&path).await)
            .map_err(|e| format!("data directory not writable: {e}"))
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

/// Opens the database: the embedded cluster when `ABBOTIK_DATABASE_URL` is unset (owned by
/// this process: another server on the same data directory is refused).
pub async fn open_db(cfg: &Config) -> anyhow::Result<Resources> {
    open_db_as(cfg, true).await
}

/// [`open_db`] for admin commands (`migrate`, `tenant …`) with `exclusive = false`: in embedded
/// mode they attach to the cluster of a running server (and leave it running), or start and
/// stop it themselves when no server runs.
pub async fn open_db_as(cfg: &Config, exclusive: bool) -> anyhow::Result<Resources> {
    let (dbcfg, embedded) = match &cfg.database_url {
        Some(url) => (
            DbConfig {
                url: Some(url.0.clone()),
                socket_dir: None,
                port: 5432,
                user: String::new(),
                dbname: String::new(),
                pool_max: cfg.database_pool_max,
                read_lanes: cfg.database_read_lanes,
                statement_timeout_ms: cfg.statement_timeout_ms,
            },
            None,
        ),
        None => {
            let pg = EmbeddedPg::start(EmbeddedOptions {
                data_dir: cfg.data_dir.clone(),
                pg_bin: cfg.pg_bin.clone(),
                pg_user: cfg.pg_user.clone(),
                exclusive,
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
                    read_lanes: cfg.database_read_lanes,
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
    if cfg.embedded() {
        probes.push(Box::new(DataDirProbe(cfg.data_dir.clone())));
    }
    let describe = Arc::new(abbotik_domain::describe::DescribeService::new(Arc::new(
        abbotik_adapters::postgres::describe_store::PgDescribeStore::new(res.db.clone()),
    )));
    let (limits, budgets) = rate_limits(cfg, res)?;
    if shared_budgets(cfg) {
        probes.push(Box::new(RateLimitProbe(limits.clone())));
    }
    let auth = Arc::new(AuthService::new(
        Arc::new(PgAuthStore::new(res.db.clone())),
        AuthService::key_ring(&jwt_keys(cfg)?).map_err(|e| anyhow::anyhow!("{e}"))?,
        AuthSettings {
            region: cfg.region.clone(),
            max_pending_tenants: cfg.max_pending_tenants,
            tenant_create_per_hour: cfg.rate_tenant_create_per_hour,
            tenant_list: cfg.tenant_list,
            tenant_list_users: cfg.tenant_list_users,
        },
        Arc::new(TenantCreateLimiter(budgets)),
        Arc::new(abbotik_adapters::postgres::api_key_store::PgApiKeyStore::new(res.db.clone())),
    ));
    let machine = Arc::new(abbotik_domain::auth::machine::MachineService::new(
        auth.clone(),
        Arc::new(abbotik_adapters::postgres::machine_store::PgMachineStore::new(res.db.clone())),
    ));
    Ok(AppState::new(AppServices {
        auth,
        machine,
        data: Arc::new(
            abbotik_domain::data::DataService::new(
                Arc::new(
                    abbotik_adapters::postgres::record_store::PgRecordStore::new(res.db.clone()),
                ),
                describe.clone(),
            )
            .with_counter(Arc::new(
                abbotik_adapters::postgres::find_store::PgRecordCounter::new(res.db.clone()),
            ))
            .with_aggregator(Arc::new(
                abbotik_adapters::postgres::aggregate_store::PgAggregator::new(res.db.clone()),
            ))
            .with_query_gate(abbotik_domain::data::gate::QueryGate::new(
                cfg.query_concurrency_per_tenant as usize,
            ))
            .with_unit_of_work(Arc::new(
                abbotik_adapters::postgres::unit_of_work::PgUnitOfWork::new(res.db.clone()),
            )),
        ),
        import: Arc::new(abbotik_domain::transfer::ImportService::new(Arc::new(
            abbotik_adapters::postgres::import_store::PgImportStore::new(res.db.clone()),
        ))),
        describe,
        limits,
        users: Arc::new(abbotik_domain::users::UsersService::new(Arc::new(
            abbotik_adapters::postgres::user_store::PgUserStore::new(res.db.clone()),
        ))),
        secrets: Arc::new(abbotik_domain::secrets::SecretsService::new(
            Arc::new(abbotik_adapters::postgres::secret_store::PgSecretStore::new(res.db.clone())),
            Arc::new(crate::kek::ring(cfg)?),
        )),
        readiness: Arc::new(Checks(probes)),
        settings: Arc::new(HttpSettings {
            body_limit_bytes: cfg.body_limit_bytes,
            response_max_bytes: cfg.response_max_bytes,
            region: cfg.region.clone(),
            version: env!("CARGO_PKG_VERSION"),
            public_url: cfg.public_url.clone(),
            trusted_proxies: cfg.trusted_proxies.clone(),
            import_max_bytes: cfg.import_max_bytes,
        }),
        started: Instant::now(),
        shutting_down: shutdown.flag.clone(),
    }))
}

/// The rate limiters (B5): `auth` always in-process; `tenant`, `key` and `tenant_create` on
/// Redis in cluster mode when it is configured (with the in-process fallback), else in-process.
fn rate_limits(
    cfg: &Config,
    res: &Resources,
) -> anyhow::Result<(Arc<RateLimitService>, Arc<dyn BudgetStore>)> {
    let local: Arc<dyn BudgetStore> = Arc::new(MemoryRateLimiter::new());
    let shared: Arc<dyn BudgetStore> = match &cfg.redis_url {
        Some(url) if shared_budgets(cfg) => {
            RedisRateLimiter::start(abbotik_adapters::redis::Redis::open(&url.0)?)
        }
        _ => Arc::new(MemoryRateLimiter::new()),
    };
    let settings = RateSettings {
        auth_per_min: cfg.rate_auth_per_min,
        auth_burst: cfg.rate_auth_burst,
        tenant_rps: cfg.rate_tenant_rps,
        tenant_burst: cfg.rate_tenant_burst,
        key_rps: cfg.rate_key_rps,
        key_burst: cfg.rate_key_burst,
        ..RateSettings::default()
    };
    let service = RateLimitService::new(
        settings,
        local,
        shared.clone(),
        Arc::new(PgTenantLimits::new(res.db.clone())),
    );
    Ok((Arc::new(service), shared))
}

/// Budgets live in Redis: cluster mode with `ABBOTIK_REDIS_URL` set.
fn shared_budgets(cfg: &Config) -> bool {
    cfg.redis_url.is_some() && !cfg.embedded()
}

/// `/ready` reports the limiter `degraded` (200, not 503) while its budgets are per pod
/// because Redis is unreachable (B5, B6).
struct RateLimitProbe(Arc<RateLimitService>);

#[async_trait::async_trait]
impl Probe for RateLimitProbe {
    fn name(&self) -> &'static str {
        "ratelimit"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn probe(&self) -> Result<(), String> {
        if self.0.degraded() {
            Err("Redis unreachable: rate limits use the in-process budgets of this pod".into())
        } else {
            Ok(())
        }
    }
}

/// The JWT key ring: configured keys, or (embedded mode) a secret generated once into
/// `<data_dir>/jwt.key` with mode 0600 and reused on every start.
fn jwt_keys(cfg: &Config) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    if !cfg.jwt_keys.is_empty() {
        return Ok(cfg
            .jwt_keys
            .iter()
            .map(|(kid, s)| (kid.clone(), s.0.as_bytes().to_vec()))
            .collect());
    }
    let path = cfg.data_dir.join("jwt.key");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => s.trim().to_owned(),
        _ => {
            use rand::RngCore;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut bytes = [0u8; 48];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let s =
                base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
            std::fs::create_dir_all(&cfg.data_dir)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            f.write_all(s.as_bytes())?;
            s
        }
    };
    Ok(vec![("e1".to_owned(), secret.into_bytes())])
}

/// Janitor cadence and retention from configuration (A10, A13, A3.10).
pub fn janitor_settings(cfg: &Config) -> abbotik_worker::JanitorSettings {
    abbotik_worker::JanitorSettings {
        interval: Duration::from_secs(300),
        retention: Retention {
            trash_days: cfg.trash_retention_days,
            dissolved_days: cfg.tenant_drop_after_days,
            pending_secs: 24 * 3600,
            purged_secs: 24 * 3600,
        },
    }
}

/// A server started in the background (used by `run` and by tests).
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub resources: Resources,
    pub serve: JoinHandle<std::io::Result<()>>,
    /// The application state (the metrics listener answers `/health` and `/ready` from it).
    pub state: AppState,
}

/// Opens resources, migrates in embedded mode, binds the listener and serves in the background.
/// On failure after the database was opened, the resources are closed again (an embedded
/// cluster is not left running).
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    let resources = open_db(cfg).await?;
    match serve_on(cfg, &resources).await {
        Ok((addr, shutdown, state, serve)) => Ok(Running {
            addr,
            shutdown,
            resources,
            serve,
            state,
        }),
        Err(e) => {
            close_resources(&resources).await;
            Err(e)
        }
    }
}

type Served = (
    SocketAddr,
    Shutdown,
    AppState,
    JoinHandle<std::io::Result<()>>,
);

async fn serve_on(cfg: &Config, resources: &Resources) -> anyhow::Result<Served> {
    if cfg.embedded() {
        pg_migrate::migrate(&resources.db)
            .await
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    }
    let shutdown = Shutdown::new();
    let state = build_state(cfg, resources, &shutdown)?;
    let app = abbotik_http::router(state.clone());
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let stop = shutdown.clone();
    let serve = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await
    });
    Ok((addr, shutdown, state, serve))
}

/// Step (7)–(8) of the ordered shutdown (B6): close the pools, then stop the embedded
/// PostgreSQL. Every backing client opened by [`open_db`] is closed here.
pub async fn close_resources(res: &Resources) {
    res.db.close();
    if let Some(pg) = &res.embedded {
        if let Err(e) = pg.stop().await {
            tracing::warn!(error = %format!("{e:#}"), "stopping the embedded PostgreSQL");
        }
    }
}

/// `abbot-api run`: serve until SIGTERM/SIGINT, then the ordered shutdown of B6. Exit code 0
/// after a complete drain, 1 when the grace deadline passed (or a second signal cut it short).
pub async fn run(cfg: Config, workers: Workers) -> anyhow::Result<i32> {
    let metrics = telemetry::init_metrics(&cfg);
    let mut running = start(&cfg).await?;
    // B10: `auto` runs the workers in-process in embedded and single-node mode only.
    let in_process = match workers {
        Workers::On => true,
        Workers::Off => false,
        Workers::Auto => cfg.embedded() || cfg.single_node,
    };
    let janitor = in_process.then(|| {
        let stop = running.shutdown.clone();
        tokio::spawn(abbotik_worker::run_janitor(
            Arc::new(PgJanitor::new(running.resources.db.clone())),
            janitor_settings(&cfg),
            async move { stop.stopped().await },
        ))
    });
    let ops = if cfg.metrics_enabled {
        spawn_metrics_listener(
            cfg.metrics_listen,
            metrics,
            running.state.clone(),
            running.resources.db.clone(),
        )
        .await
    } else {
        None
    };
    tracing::info!(addr = %running.addr, embedded = cfg.embedded(), "abbot-api listening");
    println!("abbot-api listening on http://{}", running.addr);
    let ops = ops.map(|(addr, task)| {
        println!("abbot-api ops listener (/metrics, /health, /ready) on http://{addr}");
        task
    });
    let early_exit = tokio::select! {
        _ = shutdown::signal() => None,
        r = &mut running.serve => Some(r),
    };
    if let Some(r) = early_exit {
        // The listener failed on its own: nothing left to drain.
        tracing::error!(result = ?r.map(|r| r.map_err(|e| e.to_string())), "the HTTP listener stopped");
        if let Some(t) = ops {
            t.abort();
        }
        close_resources(&running.resources).await;
        return Ok(1);
    }
    tracing::info!("shutdown requested");
    let drained = shutdown::drain(
        &running.shutdown,
        Duration::from_secs(cfg.shutdown_delay_seconds),
        Duration::from_secs(cfg.shutdown_grace_seconds),
        &mut running.serve,
    )
    .await;
    if !drained {
        running.serve.abort();
    }
    // (4) background loops finish their current step; (5)–(6) publishes and telemetry are
    // flushed by their owners here once they exist; the ops listener answers until the end.
    if let Some(j) = janitor {
        let _ = tokio::time::timeout(Duration::from_secs(cfg.shutdown_grace_seconds), j).await;
    }
    if let Some(t) = ops {
        t.abort();
    }
    close_resources(&running.resources).await;
    tracing::info!(drained, "shutdown complete");
    Ok(if drained { 0 } else { 1 })
}

/// The ops listener on `ABBOTIK_METRICS_LISTEN` (B6): `/metrics`, `/health` and the detailed
/// `/ready` (with the dependency error strings, which the public listener never shows).
async fn spawn_metrics_listener(
    addr: SocketAddr,
    handle: Option<metrics_exporter_prometheus::PrometheusHandle>,
    state: AppState,
    db: Db,
) -> Option<(SocketAddr, JoinHandle<()>)> {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use std::collections::HashMap;
    let metrics = move || {
        let h = handle.clone();
        let db = db.clone();
        async move {
            let (idle, used) = db.pool_status();
            metrics::gauge!("abbotik_db_pool_connections", "state" => "idle").set(idle as f64);
            metrics::gauge!("abbotik_db_pool_connections", "state" => "used").set(used as f64);
            match h {
                Some(h) => (StatusCode::OK, h.render()),
                None => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "# metrics recorder unavailable\n".to_owned(),
                ),
            }
        }
    };
    let health = |State(s): State<AppState>| async move {
        abbotik_http::extract::ok(
            StatusCode::OK,
            serde_json::json!({
                "status": "healthy",
                "timestamp": abbotik_domain::time::Ts::now(),
                "uptime": (s.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                "version": s.settings.version,
                "region": s.settings.region,
            }),
            false,
        )
    };
    let ready = |State(s): State<AppState>, Query(q): Query<HashMap<String, String>>| async move {
        let strict = matches!(q.get("strict").map(String::as_str), Some("true" | "1"));
        abbotik_http::routes::health::readiness_response(&s, strict, true).await
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/health", axum::routing::get(health))
        .route("/ready", axum::routing::get(ready))
        .with_state(state);
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            let bound = l.local_addr().unwrap_or(addr);
            let task = tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
            Some((bound, task))
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "metrics listener not started");
            None
        }
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
    let res = open_db_as(&cfg, false).await?;
    let result = async {
        if check {
            let behind = pg_migrate::is_behind(&res.db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", if behind { "behind" } else { "up to date" });
            Ok(i32::from(behind))
        } else {
            migrate_db(&res.db).await?;
            println!("migrations applied");
            Ok(0)
        }
    }
    .await;
    close_resources(&res).await;
    result
}

/// `abbot-api tenant …` (direct database access; see [`crate::admin`]).
pub async fn tenant(cfg: Config, action: TenantAction) -> anyhow::Result<i32> {
    let res = open_db_as(&cfg, false).await?;
    let result = crate::admin::tenant(&res.db, action).await;
    close_resources(&res).await;
    result
}
