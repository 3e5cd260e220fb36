//! The embedded PostgreSQL cluster (B10 embedded mode): initdb into `<data_dir>/pg` on first
//! start, started on a Unix socket in `<data_dir>/run` with `listen_addresses=''`, stopped on
//! shutdown; run as an unprivileged user when the server runs as root; orphaned or stale
//! clusters (after a crash) detected from `postmaster.pid` and reused or restarted.
//!
//! One abbot-api process *owns* the cluster of a data directory (an exclusive `flock` on
//! `<data_dir>/embedded.lock`, released by the kernel even on SIGKILL); it starts it and stops it.
//! Administrative commands (`migrate`, `tenant …`) run while a server owns it *attach* instead:
//! they connect and leave it running.

mod bin;
mod layout;
mod proc;

use anyhow::{anyhow, bail, Context};
use bin::{PgBin, RunAs};
use layout::{chown_to, conf_text, Layout, PORT};
use nix::fcntl::{Flock, FlockArg};
use proc::{Liveness, PidFile};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub use bin::parse_major;

/// The bootstrap superuser created by initdb (used only to create the application role).
const SUPERUSER: &str = "postgres";
/// The application role and database.
pub const APP_ROLE: &str = "abbotik";
pub const DBNAME: &str = "abbotik";
/// Longest time for a start (crash recovery replays WAL and may take a while).
const START_TIMEOUT_SECS: u64 = 300;

/// How to find and run the PostgreSQL binaries.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub data_dir: PathBuf,
    /// `ABBOTIK_PG_BIN`; else `PATH`; else the newest `/usr/lib/postgresql/*/bin`.
    pub pg_bin: Option<PathBuf>,
    /// `ABBOTIK_PG_USER` (used only when running as root).
    pub pg_user: String,
    /// `true` for the server: fail when another abbot-api process owns the data directory.
    /// `false` for admin commands: attach to the cluster of a running server (and leave it
    /// running), or own it for the duration of the command when no server runs.
    pub exclusive: bool,
}

/// How the cluster was obtained (logged; tests assert on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// initdb, then started.
    Initialized,
    /// An existing cluster was started (clean or after a crash: PostgreSQL replays its WAL).
    Started,
    /// A running orphan (its server was killed) was adopted as is.
    Reused,
    /// Another abbot-api process owns it; we only connect.
    Attached,
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPg {
    pub socket_dir: PathBuf,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub pg_dir: PathBuf,
    pub log_file: PathBuf,
    pub kind: StartKind,
    /// Whether [`EmbeddedPg::stop`] stops the cluster (false when attached).
    pub owned: bool,
    layout: Layout,
    bin: Option<PgBin>,
    _lock: Option<Flock<File>>,
}

impl EmbeddedPg {
    pub async fn start(opts: EmbeddedOptions) -> anyhow::Result<EmbeddedPg> {
        let started = Instant::now();
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(RunAs::lookup(&opts.pg_user)?)
        } else {
            None
        };
        let layout = Layout::prepare(&opts.data_dir, run_as.as_ref())?;
        let pg = match take_lock(&layout)? {
            Ok(lock) => {
                let (dir, major, version) = bin::find(opts.pg_bin.as_deref()).await?;
                let bin = PgBin {
                    dir,
                    major,
                    version,
                    run_as,
                };
                let kind = own(&bin, &layout).await?;
                EmbeddedPg::new(layout, kind, Some(bin), Some(lock))
            }
            Err(holder) if opts.exclusive => bail!(
                "another abbot-api process{} is already running on the data directory {}: stop it \
                 first or use another ABBOTIK_DATA_DIR",
                holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                layout.data_dir.display()
            ),
            Err(holder) => {
                attach(&layout, holder).await?;
                EmbeddedPg::new(layout, StartKind::Attached, None, None)
            }
        };
        info!(
            kind = ?pg.kind,
            elapsed_ms = started.elapsed().as_millis() as u64,
            data_dir = %pg.pg_dir.display(),
            relocated = pg.layout.relocated.is_some(),
            "embedded PostgreSQL ready"
        );
        Ok(pg)
    }

    fn new(layout: Layout, kind: StartKind, bin: Option<PgBin>, lock: Option<Flock<File>>) -> Self {
        EmbeddedPg {
            socket_dir: layout.run_dir.clone(),
            port: PORT,
            user: APP_ROLE.to_owned(),
            dbname: DBNAME.to_owned(),
            pg_dir: layout.pg_dir.clone(),
            log_file: layout.log_file.clone(),
            owned: bin.is_some(),
            kind,
            layout,
            bin,
            _lock: lock,
        }
    }

    /// `pg_ctl stop -m fast` (then `immediate` if it hangs); a no-op when attached.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let Some(bin) = &self.bin else { return Ok(()) };
        let Some(pf) = PidFile::read(&self.layout.pid_file()) else {
            return Ok(());
        };
        if proc::liveness(pf.pid, &self.layout.pg_dir) != Liveness::Ours {
            return Ok(());
        }
        stop_cluster(bin, &self.layout, pf.pid).await?;
        info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// The postmaster's pid, when it runs.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let pf = PidFile::read(&self.layout.pid_file())?;
        (proc::liveness(pf.pid, &self.layout.pg_dir) == Liveness::Ours).then_some(pf.pid)
    }
}

/// `Ok(lock)`, or `Err(pid of the holder if known)` when another process holds it.
fn take_lock(l: &Layout) -> anyhow::Result<Result<Flock<File>, Option<u32>>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&l.lock_file)
        .with_context(|| format!("opening {}", l.lock_file.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0)?;
            writeln!(&mut *lock, "{}", std::process::id())?;
            Ok(Ok(lock))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = std::fs::read_to_string(&l.lock_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            Ok(Err(holder))
        }
        Err((_, e)) => Err(anyhow!("locking {}: {e}", l.lock_file.display())),
    }
}

/// The owner's path: initdb if needed, settle what a crash left, start, bootstrap.
async fn own(bin: &PgBin, l: &Layout) -> anyhow::Result<StartKind> {
    let initialized = ensure_initdb(bin, l).await?;
    write_conf(bin, l)?;
    if settle_existing(bin, l).await? {
        bootstrap(l).await?;
        return Ok(StartKind::Reused);
    }
    let pg = l.pg_dir.as_os_str();
    let log = l.log_file.as_os_str();
    let timeout = START_TIMEOUT_SECS.to_string();
    let args: [&OsStr; 9] = [
        "start".as_ref(),
        "-D".as_ref(),
        pg,
        "-l".as_ref(),
        log,
        "-w".as_ref(),
        "-t".as_ref(),
        timeout.as_ref(),
        "-s".as_ref(),
    ];
    let run = tokio::time::timeout(
        Duration::from_secs(START_TIMEOUT_SECS + 10),
        bin.run("pg_ctl", &args),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow!("pg_ctl start timed out")));
    if let Err(e) = run {
        bail!(
            "the embedded PostgreSQL did not start: {e:#}\n--- last lines of {} ---\n{}",
            l.log_file.display(),
            log_tail(&l.log_file, 20)
        );
    }
    bootstrap(l).await?;
    Ok(if initialized {
        StartKind::Initialized
    } else {
        StartKind::Started
    })
}

/// initdb into a scratch directory renamed into place, so a crash mid-initdb never leaves a
/// half-made cluster behind. Returns whether it ran.
async fn ensure_initdb(bin: &PgBin, l: &Layout) -> anyhow::Result<bool> {
    let version_file = l.pg_dir.join("PG_VERSION");
    if let Ok(v) = std::fs::read_to_string(&version_file) {
        let major: u32 = v.trim().parse().unwrap_or(0);
        if major != bin.major {
            bail!(
                "the embedded cluster in {} was made by PostgreSQL {major}, but the binaries in {} are \
                 PostgreSQL {}: point ABBOTIK_PG_BIN at PostgreSQL {major} binaries (or upgrade the \
                 cluster with pg_upgrade)",
                l.pg_dir.display(),
                bin.dir.display(),
                bin.major
            );
        }
        return Ok(false);
    }
    if l.pg_dir.exists() {
        let empty = std::fs::read_dir(&l.pg_dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            bail!(
                "{} exists but is not a PostgreSQL data directory (no PG_VERSION): move it away",
                l.pg_dir.display()
            );
        }
        std::fs::remove_dir(&l.pg_dir)?;
    }
    if l.initdb_tmp.exists() {
        std::fs::remove_dir_all(&l.initdb_tmp)
            .with_context(|| format!("removing {}", l.initdb_tmp.display()))?;
    }
    l.make_private_dir(&l.initdb_tmp, bin.run_as.as_ref())?;
    let started = Instant::now();
    bin.run(
        "initdb",
        &[
            "-D".as_ref(),
            l.initdb_tmp.as_os_str(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "--auth-local=trust".as_ref(),
            "--auth-host=reject".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-locale".as_ref(),
            "--data-checksums".as_ref(),
            "--no-instructions".as_ref(),
        ],
    )
    .await
    .context("initdb of the embedded cluster")?;
    let conf = l.initdb_tmp.join("postgresql.conf");
    let mut f = std::fs::OpenOptions::new().append(true).open(&conf)?;
    f.write_all(
        b"\n# abbot-api settings (rewritten at every start)\ninclude_if_exists = 'abbotik.conf'\n",
    )?;
    f.sync_all()?;
    std::fs::rename(&l.initdb_tmp, &l.pg_dir)?;
    File::open(&l.data_dir)?.sync_all()?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        version = %bin.version,
        "initdb of the embedded cluster done"
    );
    Ok(true)
}

fn write_conf(bin: &PgBin, l: &Layout) -> anyhow::Result<()> {
    let path = l.pg_dir.join("abbotik.conf");
    let tmp = l.pg_dir.join("abbotik.conf.tmp");
    std::fs::write(&tmp, conf_text(l)).with_context(|| format!("writing {}", tmp.display()))?;
    chown_to(&tmp, bin.run_as.as_ref())?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Deals with what a previous run left: returns `true` when a healthy orphan postmaster of
/// this data directory runs and is adopted; otherwise clears stale locks and leftover server
/// processes so that a start can proceed (PostgreSQL then recovers from its WAL).
async fn settle_existing(bin: &PgBin, l: &Layout) -> anyhow::Result<bool> {
    let pid_path = l.pid_file();
    if let Some(pf) = PidFile::read(&pid_path) {
        match proc::liveness(pf.pid, &l.pg_dir) {
            Liveness::Ours => {
                let same_socket =
                    pf.socket_dir.as_deref() == Some(l.run_dir.as_path()) && pf.port == Some(PORT);
                // An orphan still replaying its WAL is given the full start timeout: killing
                // it would only make the next start redo the same recovery.
                let patience = if pf.status.as_deref() == Some("starting") {
                    Duration::from_secs(START_TIMEOUT_SECS)
                } else {
                    Duration::from_secs(10)
                };
                if same_socket
                    && pf.status.as_deref() != Some("stopping")
                    && wait_connect(l, SUPERUSER, "postgres", patience)
                        .await
                        .is_ok()
                {
                    info!(
                        pid = pf.pid,
                        "adopting the running embedded PostgreSQL left by a previous process"
                    );
                    // Pick up settings this binary wrote into abbotik.conf (reloadable ones).
                    if let Err(e) = bin
                        .run(
                            "pg_ctl",
                            &[
                                "reload".as_ref(),
                                "-D".as_ref(),
                                l.pg_dir.as_os_str(),
                                "-s".as_ref(),
                            ],
                        )
                        .await
                    {
                        warn!(error = %e, "pg_ctl reload of the adopted cluster failed");
                    }
                    return Ok(true);
                }
                warn!(
                    pid = pf.pid,
                    "restarting an orphaned embedded PostgreSQL that does not answer as expected"
                );
                stop_cluster(bin, l, pf.pid).await?;
            }
            Liveness::Stale => {
                warn!(
                    pid = pf.pid,
                    "removing a stale postmaster.pid (its pid now belongs to another process)"
                );
                let _ = std::fs::remove_file(&pid_path);
            }
            // PostgreSQL overwrites a lock file whose pid is gone by itself.
            Liveness::Dead => {}
        }
    } else if pid_path.exists() {
        // Truncated by a crash while being written: it can guard nothing.
        let _ = std::fs::remove_file(&pid_path);
    }
    let reaped = proc::reap_leftovers(&l.pg_dir, Duration::from_secs(10)).await;
    if !reaped.is_empty() {
        warn!(pids = ?reaped, "killed server processes left behind by a dead postmaster");
    }
    let sock_lock = l.run_dir.join(format!(".s.PGSQL.{PORT}.lock"));
    if let Some(pf) = PidFile::read(&sock_lock) {
        if proc::liveness(pf.pid, &l.pg_dir) == Liveness::Stale {
            let _ = std::fs::remove_file(&sock_lock);
            let _ = std::fs::remove_file(l.socket_path());
        }
    }
    Ok(false)
}

/// Stops the postmaster `pid`: fast, then immediate, then SIGKILL; leftovers are reaped.
async fn stop_cluster(bin: &PgBin, l: &Layout, pid: i32) -> anyhow::Result<()> {
    let pg = l.pg_dir.as_os_str();
    for (mode, secs) in [("fast", "60"), ("immediate", "10")] {
        let r = bin
            .run(
                "pg_ctl",
                &[
                    "stop".as_ref(),
                    "-D".as_ref(),
                    pg,
                    "-m".as_ref(),
                    mode.as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    secs.as_ref(),
                    "-s".as_ref(),
                ],
            )
            .await;
        if proc::wait_gone(pid, &l.pg_dir, Duration::from_secs(2)).await {
            return Ok(());
        }
        if let Err(e) = r {
            warn!(mode, error = %e, "pg_ctl stop failed");
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    proc::reap_leftovers(&l.pg_dir, Duration::from_secs(10)).await;
    if proc::liveness(pid, &l.pg_dir) == Liveness::Ours {
        bail!("could not stop the embedded PostgreSQL (pid {pid})");
    }
    Ok(())
}

/// Another abbot-api process owns the cluster: wait (bounded) until it answers.
async fn attach(l: &Layout, holder: Option<u32>) -> anyhow::Result<()> {
    wait_connect(l, APP_ROLE, DBNAME, Duration::from_secs(60))
        .await
        .map(|_| ())
        .with_context(|| {
            format!(
                "another abbot-api process{} owns {} but its embedded PostgreSQL does not answer",
                holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                l.data_dir.display()
            )
        })
}

/// Creates the application role and database when missing (every start: a crash between
/// initdb and this step heals itself).
async fn bootstrap(l: &Layout) -> anyhow::Result<()> {
    let c = wait_connect(l, SUPERUSER, "postgres", Duration::from_secs(30))
        .await
        .with_context(|| {
            format!(
                "connecting to the embedded PostgreSQL; log tail:\n{}",
                log_tail(&l.log_file, 20)
            )
        })?;
    let role = c
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&APP_ROLE])
        .await?;
    if role.is_none() {
        c.batch_execute(&format!("CREATE ROLE \"{APP_ROLE}\" LOGIN"))
            .await?;
    }
    let db = c
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DBNAME])
        .await?;
    if db.is_none() {
        c.batch_execute(&format!(
            "CREATE DATABASE \"{DBNAME}\" OWNER \"{APP_ROLE}\" ENCODING 'UTF8' TEMPLATE template0"
        ))
        .await?;
    }
    Ok(())
}

/// Connects over the socket, retrying until `wait` has passed.
async fn wait_connect(
    l: &Layout,
    user: &str,
    dbname: &str,
    wait: Duration,
) -> anyhow::Result<tokio_postgres::Client> {
    let started = Instant::now();
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(&l.run_dir)
        .port(PORT)
        .user(user)
        .dbname(dbname)
        .application_name("abbot-api-embedded")
        .connect_timeout(Duration::from_secs(2));
    loop {
        match cfg.connect(tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok(client);
            }
            Err(e) if started.elapsed() >= wait => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The last `n` lines of the server log (for error messages).
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
