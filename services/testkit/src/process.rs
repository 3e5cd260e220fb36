//! The `abbot-api` binary as a separate process, for tests that need real processes (crash
//! recovery, several pods sharing Postgres and Redis).

use crate::Http;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The `abbot-api` binary: `ABBOTIK_API_BIN`, else `target/<profile>/abbot-api` beside the
/// running test executable, built once when missing.
pub fn api_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("ABBOTIK_API_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory")
            .to_path_buf();
        let bin = profile_dir.join("abbot-api");
        if !bin.is_file() {
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_owned(),
                Some(p) => p.to_owned(),
            };
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "abbot-api", "--bin", "abbot-api"])
                .args(["--profile", &profile])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build -p abbot-api");
            assert!(status.success(), "cargo build -p abbot-api failed");
        }
        assert!(
            bin.is_file(),
            "{} not found: build it with `cargo build -p abbot-api`",
            bin.display()
        );
        bin
    })
    .clone()
}

/// `abbot-api` with a clean environment: the test configuration ([`crate::test_env`], real
/// services when the suite runs with them) plus `extra`.
pub fn api_command(extra: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(api_bin());
    c.env_clear();
    for k in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c.envs(crate::test_env());
    c.env("ABBOTIK_LOG_FORMAT", "json");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// A running `abbot-api run` process on a free port; killed when dropped. Its HTTP client
/// methods come from [`Http`]; the lines it writes to stdout after starting are kept in `log`.
pub struct ApiProcess {
    _child: tokio::process::Child,
    pub http: Http,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl std::ops::Deref for ApiProcess {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

impl ApiProcess {
    pub async fn start(extra: &[(&str, &str)]) -> ApiProcess {
        let mut child = api_command(extra)
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn abbot-api");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("abbot-api listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("abbot-api started within 60 s");
        // Keep draining stdout so the process never blocks on a full pipe.
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().expect("log lines").push(line);
            }
        });
        ApiProcess {
            _child: child,
            http: Http::new(base),
            log,
        }
    }
}
