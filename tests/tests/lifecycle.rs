//! Process lifecycle of `abbot-api run` in embedded mode (B6 graceful shutdown, B10 modes),
//! black-box: the real binary is started as a child process on a fresh data directory.
//!
//! - crash: concurrent writes, SIGKILL of the server (alone, or with its PostgreSQL), restart on
//!   the same data directory without manual steps, every acknowledged write still there;
//! - SIGTERM during load: requests sent before the signal complete, `/ready` turns 503, the
//!   process exits 0 and its PostgreSQL is stopped;
//! - `abbot-api tenant list|suspend|resume` and `migrate` on the same data directory, with and
//!   without a running server.
//!
//! The binary is `target/<profile>/abbot-api` next to this test's own executable (built by
//! `cargo nextest run --workspace` / `cargo test --workspace`), `ABBOTIK_API_BIN` if set, or built
//! once with `cargo build -p abbot-api` when missing. Every loop is bounded in count and time;
//! everything listens on loopback.

use abbotik_testkit::process::api_bin;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let p = std::env::temp_dir().join(format!("abbotik-lc-{}", &id[..12]));
        std::fs::create_dir_all(&p).expect("data dir");
        DataDir(p)
    }

    fn pid_file(&self) -> PathBuf {
        self.0.join("pg").join("postmaster.pid")
    }

    /// The postmaster pid recorded for this data directory, if the process runs.
    fn postmaster(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        running(pid).then_some(pid)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster() {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `pid` is a live (non-zombie) process.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// The environment of a server or command on `dir`: embedded mode, nothing inherited but
/// `PATH`, `HOME` and the PostgreSQL location settings.
fn command(dir: &DataDir, extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(api_bin());
    c.env_clear();
    for k in [
        "PATH",
        "HOME",
        "ABBOTIK_PG_BIN",
        "ABBOTIK_PG_USER",
        "TMPDIR",
    ] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c.env("ABBOTIK_DATA_DIR", &dir.0)
        .env("ABBOTIK_LISTEN", "127.0.0.1:0")
        .env("ABBOTIK_METRICS_LISTEN", "127.0.0.1:0")
        .env("ABBOTIK_LOG", "warn")
        .env("ABBOTIK_LOG_FORMAT", "json")
        .env("ABBOTIK_SHUTDOWN_DELAY_SECONDS", "0")
        .env("ABBOTIK_SHUTDOWN_GRACE_SECONDS", "20")
        .env("ABBOTIK_RATE_TENANT_CREATE_PER_HOUR", "1000000")
        // The writers register and log in from one address far faster than the B5 defaults.
        .env("ABBOTIK_RATE_AUTH_PER_MIN", "1000000")
        .env("ABBOTIK_RATE_AUTH_BURST", "1000000")
        .env("ABBOTIK_RATE_TENANT_RPS", "1000000")
        .env("ABBOTIK_RATE_TENANT_BURST", "1000000")
        .env("ABBOTIK_MAX_PENDING_TENANTS", "1000000")
        .env("ABBOTIK_DATABASE_POOL_MAX", "16");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// A running `abbot-api run`.
struct Server {
    child: Child,
    base: String,
    ops: Option<String>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(dir: &DataDir, extra: &[(&str, &str)]) -> Server {
        let started = Instant::now();
        let mut child = command(dir, extra)
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn abbot-api");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        // Drain both pipes for the whole life of the process (a full pipe would block it).
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let (out, tx) = (output.clone(), tx.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line.clone());
                    if let Ok(mut o) = out.lock() {
                        if o.len() < 5000 {
                            o.push(line);
                        }
                    }
                }
            });
        }
        drop(tx);
        let (mut base, mut ops) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(90);
        while base.is_none() || ops.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(url) = line.strip_prefix("abbot-api listening on ") {
                        base = Some(url.trim().to_owned());
                    } else if let Some((_, url)) = line.split_once(") on ") {
                        if line.starts_with("abbot-api ops listener") {
                            ops = Some(url.trim().to_owned());
                        }
                    }
                }
                _ => break,
            }
        }
        let Some(base) = base else {
            let _ = child.start_kill();
            panic!(
                "abbot-api did not start within 90 s:\n{}",
                output.lock().map(|o| o.join("\n")).unwrap_or_default()
            );
        };
        let s = Server {
            child,
            base,
            ops,
            output,
        };
        s.wait_healthy().await;
        eprintln!("server up on {} in {:?}", s.base, started.elapsed());
        s
    }

    fn pid(&self) -> i32 {
        self.child.id().expect("server pid") as i32
    }

    async fn wait_healthy(&self) {
        let c = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = c.get(format!("{}/ready", self.base)).send().await {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server never became ready:\n{}", self.log());
    }

    fn log(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit; its exit code.
    async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.start_kill();
                panic!("abbot-api did not exit within {limit:?}:\n{}", self.log());
            }
        }
    }
}

/// Runs an admin command to completion: (exit code, stdout, stderr).
async fn admin(dir: &DataDir, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(dir, &[]).args(args).output(),
    )
    .await
    .expect("admin command finished within 120 s")
    .expect("admin command ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn register(c: &reqwest::Client, base: &str, tenant: &str) -> Result<u16, reqwest::Error> {
    let r = c
        .post(format!("{base}/auth/register"))
        .json(&json!({"tenant": tenant, "username": "root", "password": PASSWORD}))
        .send()
        .await?;
    let status = r.status().as_u16();
    // The whole response is part of the acknowledgement.
    r.bytes().await?;
    Ok(status)
}

async fn login(c: &reqwest::Client, base: &str, tenant: &str) -> (u16, Value) {
    let r = c
        .post(format!("{base}/auth/login"))
        .json(&json!({"tenant": tenant, "tenant_id": null, "username": "root", "password": PASSWORD, "format": null}))
        .send()
        .await
        .expect("login request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One tenant name per write, unique across runs.
fn tenant_name(run: &str, writer: usize, i: usize) -> String {
    format!("lc{run}_{writer}_{i}")
}

/// Concurrent writers: each registers tenants until `stop`, a transport error, `max_each`
/// writes or `limit` elapsed. Returns (acknowledged names, requests started before `signaled`
/// became true with their outcome).
#[derive(Default)]
struct Load {
    acked: Vec<String>,
    /// (tenant, status or transport error) of requests started before the signal.
    before_signal: Vec<(String, Result<u16, String>)>,
}

async fn load(
    base: String,
    writers: usize,
    max_each: usize,
    limit: Duration,
    stop: Arc<AtomicBool>,
    signaled: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> Load {
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (base, stop, signaled, run, acks) = (
                base.clone(),
                stop.clone(),
                signaled.clone(),
                run.clone(),
                acks.clone(),
            );
            tokio::spawn(async move {
                let c = client();
                let mut out = Load::default();
                for i in 0..max_each {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > limit {
                        break;
                    }
                    let name = tenant_name(&run, w, i);
                    let before = !signaled.load(Ordering::SeqCst);
                    let r = register(&c, &base, &name).await.map_err(|e| e.to_string());
                    if r == Ok(201) {
                        out.acked.push(name.clone());
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    let failed = r.is_err();
                    if before {
                        out.before_signal.push((name, r));
                    }
                    if failed {
                        break;
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Load::default();
    for t in tasks {
        let l = t.await.expect("writer task");
        all.acked.extend(l.acked);
        all.before_signal.extend(l.before_signal);
    }
    all
}

/// Waits (bounded: at most `limit`) until `n` writes were acknowledged.
async fn wait_acks(acks: &AtomicUsize, n: usize, limit: Duration) {
    let started = Instant::now();
    while acks.load(Ordering::SeqCst) < n && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every acknowledged tenant can log in (4 at a time).
async fn assert_all_present(base: &str, acked: &[String]) {
    let c = client();
    let mut missing = Vec::new();
    for chunk in acked.chunks(4) {
        let mut set = tokio::task::JoinSet::new();
        for t in chunk {
            let (c, base, t) = (c.clone(), base.to_owned(), t.clone());
            set.spawn(async move {
                let r = login(&c, &base, &t).await;
                (t, r)
            });
        }
        while let Some(r) = set.join_next().await {
            let (t, (status, body)) = r.expect("login task");
            if status != 200 {
                missing.push(format!("{t}: {status} {body}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes are missing after the restart: {missing:?}",
        missing.len(),
        acked.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// B6/B10: SIGKILL during concurrent writes; the restart needs no manual step and every
/// acknowledged write is there.
async fn crash_during_writes(kill_postgres_too: bool) {
    let dir = DataDir::new();
    let mut server = Server::start(&dir, &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let never = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let writers = tokio::spawn(load(
        server.base.clone(),
        6,
        200,
        Duration::from_secs(30),
        stop.clone(),
        never,
        acks.clone(),
    ));
    // Let writes flow (at least 1 s and 10 acknowledged writes, at most 30 s), then crash.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    wait_acks(&acks, 10, Duration::from_secs(30)).await;
    let postmaster = dir.postmaster().expect("embedded postgres runs");
    signal(server.pid(), nix::sys::signal::Signal::SIGKILL);
    if kill_postgres_too {
        signal(postmaster, nix::sys::signal::Signal::SIGKILL);
    }
    server.wait_exit(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    let result = tokio::time::timeout(Duration::from_secs(60), writers)
        .await
        .expect("writers stop")
        .expect("writers");
    assert!(
        !result.acked.is_empty(),
        "no write was acknowledged before the crash:\n{}",
        server.log()
    );
    if kill_postgres_too {
        // SIGKILL is delivered asynchronously; on a loaded machine the process may take a
        // moment to be gone.
        let gone = async {
            while running(postmaster) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(10), gone)
                .await
                .is_ok(),
            "postmaster was killed"
        );
    } else {
        assert!(
            running(postmaster),
            "the orphaned postmaster survives its server"
        );
    }

    let restarted = Server::start(&dir, &[]).await;
    assert_all_present(&restarted.base, &result.acked).await;
    eprintln!(
        "{} acknowledged writes all present after the crash (postgres killed too: {kill_postgres_too})",
        result.acked.len()
    );
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_server_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(300), crash_during_writes(false))
        .await
        .expect("test finished within 300 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_server_and_postgres_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(300), crash_during_writes(true))
        .await
        .expect("test finished within 300 s");
}

/// B6: SIGTERM during load drains in-flight requests, `/ready` answers 503 during the delay,
/// the process exits 0, and the embedded PostgreSQL is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_load_drains_and_exits_zero() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let dir = DataDir::new();
        let mut server = Server::start(&dir, &[("ABBOTIK_SHUTDOWN_DELAY_SECONDS", "1")]).await;
        let ops = server.ops.clone().expect("ops listener address printed");
        let c = client();
        let detailed: Value = c
            .get(format!("{ops}/ready"))
            .send()
            .await
            .expect("ops ready")
            .json()
            .await
            .expect("json");
        assert_eq!(
            detailed["data"]["checks"]["postgres"]["ok"],
            json!(true),
            "{detailed}"
        );
        // Embedded mode checks Postgres and the data directory (B6).
        assert_eq!(
            detailed["data"]["checks"]["data_dir"]["ok"],
            json!(true),
            "{detailed}"
        );
        let health = c
            .get(format!("{ops}/health"))
            .send()
            .await
            .expect("ops health");
        assert_eq!(health.status().as_u16(), 200);
        let metrics = c
            .get(format!("{ops}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(metrics.status().as_u16(), 200);

        let postmaster = dir.postmaster().expect("embedded postgres runs");
        let stop = Arc::new(AtomicBool::new(false));
        let signaled = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let writers = tokio::spawn(load(
            server.base.clone(),
            6,
            200,
            Duration::from_secs(30),
            stop.clone(),
            signaled.clone(),
            acks.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        wait_acks(&acks, 5, Duration::from_secs(30)).await;
        // Flag first: a request that saw `false` was sent before the signal.
        signaled.store(true, Ordering::SeqCst);
        signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
        // During the load-balancer delay the process still serves, but is not ready.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ready = c
            .get(format!("{}/ready", server.base))
            .send()
            .await
            .expect("ready during delay");
        assert_eq!(ready.status().as_u16(), 503, "ready during shutdown");
        let health = c
            .get(format!("{}/health", server.base))
            .send()
            .await
            .expect("health during delay");
        assert_eq!(
            health.status().as_u16(),
            200,
            "still alive during the delay"
        );

        let code = server.wait_exit(Duration::from_secs(30)).await;
        stop.store(true, Ordering::SeqCst);
        let result = tokio::time::timeout(Duration::from_secs(60), writers)
            .await
            .expect("writers stop")
            .expect("writers");
        assert_eq!(code, Some(0), "exit code after SIGTERM:\n{}", server.log());
        assert!(
            !result.before_signal.is_empty(),
            "load ran before the signal"
        );
        let failed: Vec<_> = result
            .before_signal
            .iter()
            .filter(|(_, r)| r.as_ref().map_or(true, |s| *s != 201))
            .collect();
        assert!(
            failed.is_empty(),
            "requests sent before SIGTERM did not complete: {failed:?}"
        );
        assert!(!running(postmaster), "the embedded PostgreSQL was stopped");
        assert!(
            !dir.pid_file().exists(),
            "clean PostgreSQL shutdown removes postmaster.pid"
        );
        eprintln!(
            "{} requests sent before SIGTERM all completed; {} acknowledged in total",
            result.before_signal.len(),
            result.acked.len()
        );

        // The next start is clean, and the acknowledged writes are there.
        let again = Server::start(&dir, &[]).await;
        assert_all_present(&again.base, &result.acked[..result.acked.len().min(20)]).await;
    })
    .await
    .expect("test finished within 300 s");
}

/// B10: `migrate` and `tenant list|suspend|resume` on an embedded data directory, with no server
/// (the command starts and stops the cluster) and next to a running server (it attaches).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands_work_in_embedded_mode() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let dir = DataDir::new();
        let (code, out, err) = admin(&dir, &["migrate"]).await;
        assert_eq!(code, 0, "migrate on a fresh data dir: {out}{err}");
        assert!(
            dir.postmaster().is_none(),
            "migrate stopped the cluster it started"
        );
        let (code, out, _) = admin(&dir, &["migrate", "--check"]).await;
        assert_eq!((code, out.trim()), (0, "up to date"));

        let server = Server::start(&dir, &[]).await;
        let c = client();
        let tenant = format!("lcadm_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        assert_eq!(
            register(&c, &server.base, &tenant).await.expect("register"),
            201
        );
        let postmaster = dir.postmaster().expect("running");

        // Attached to the running server's cluster, which keeps running afterwards.
        let (code, out, err) = admin(&dir, &["tenant", "list", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let list: Value = serde_json::from_str(&out).expect("tenant list --json is JSON");
        let row = list
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == json!(tenant)))
            .unwrap_or_else(|| panic!("{tenant} listed: {out}"));
        assert_eq!(row["status"], json!("pending"));
        assert_eq!(
            dir.postmaster(),
            Some(postmaster),
            "the server's cluster still runs"
        );

        let (code, out, err) = admin(&dir, &["tenant", "suspend", &tenant]).await;
        assert_eq!(code, 0, "{out}{err}");
        let (status, body) = login(&c, &server.base, &tenant).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error_code"], json!("TENANT_INACTIVE"), "{body}");
        let (code, out, err) = admin(&dir, &["tenant", "resume", &tenant]).await;
        assert_eq!(code, 0, "{out}{err}");
        let (status, body) = login(&c, &server.base, &tenant).await;
        assert_eq!(status, 200, "{body}");

        let (code, _, err) = admin(&dir, &["tenant", "suspend", "no_such_tenant"]).await;
        assert_eq!(code, 1);
        assert!(err.contains("not found"), "{err}");
        let (code, out, _) = admin(&dir, &["tenant", "list"]).await;
        assert_eq!(code, 0);
        assert!(out.contains(&tenant) && out.contains("active"), "{out}");

        // A second server on the same data directory is refused.
        let second = command(&dir, &[]).arg("run").output();
        let second = tokio::time::timeout(Duration::from_secs(60), second)
            .await
            .expect("second server exits")
            .expect("ran");
        assert_eq!(second.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&second.stderr).contains("already running"),
            "{}",
            String::from_utf8_lossy(&second.stderr)
        );
        drop(server);
    })
    .await
    .expect("test finished within 300 s");
}
