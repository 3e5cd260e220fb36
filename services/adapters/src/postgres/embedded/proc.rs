//! Crash forensics for the embedded cluster: reading `postmaster.pid`, telling a live postmaster
//! of *our* data directory from a dead one, a zombie or an unrelated process that reused the pid,
//! and finding server processes left behind by a killed postmaster.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lines of `postmaster.pid` we use (PostgreSQL documents the layout in `pidfile.h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    pub pid: i32,
    pub port: Option<u16>,
    pub socket_dir: Option<PathBuf>,
    /// `starting`, `stopping`, `ready` or `standby` (line 8).
    pub status: Option<String>,
}

impl PidFile {
    pub fn read(path: &Path) -> Option<PidFile> {
        let text = std::fs::read_to_string(path).ok()?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Option<PidFile> {
        let lines: Vec<&str> = text.lines().collect();
        let pid: i32 = lines.first()?.trim().parse().ok()?;
        if pid <= 0 {
            return None;
        }
        Some(PidFile {
            pid,
            port: lines.get(3).and_then(|l| l.trim().parse().ok()),
            socket_dir: lines
                .get(4)
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
            status: lines
                .get(7)
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty()),
        })
    }
}

/// What a pid from a lock file refers to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// No such process: PostgreSQL itself treats the lock file as stale.
    Dead,
    /// A `postgres` process whose working directory is our data directory.
    Ours,
    /// The pid exists but is not our server (a zombie, or a reused pid): PostgreSQL would
    /// refuse to start over such a lock file, so it must be removed.
    Stale,
}

/// Classifies `pid` against the (canonical) data directory `pg_dir`.
pub fn liveness(pid: i32, pg_dir: &Path) -> Liveness {
    match kill(Pid::from_raw(pid), None) {
        Err(nix::errno::Errno::ESRCH) => return Liveness::Dead,
        Err(_) => return Liveness::Stale,
        Ok(()) => {}
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self").exists() {
        // No procfs: trust the pid (PostgreSQL itself does the same).
        return Liveness::Ours;
    }
    if is_zombie(pid) {
        return Liveness::Stale;
    }
    if is_postgres_in(&proc_dir, pg_dir) {
        Liveness::Ours
    } else if !proc_dir.exists() {
        Liveness::Dead
    } else {
        Liveness::Stale
    }
}

fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`: comm may hold spaces and parentheses, so split at the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|s| s == "Z" || s == "X")
}

/// A `postgres` executable whose working directory is `pg_dir` (every server process does
/// `chdir(DataDir)` at start).
fn is_postgres_in(proc_dir: &Path, pg_dir: &Path) -> bool {
    let cwd_ok = std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|c| c == pg_dir);
    let exe_ok = std::fs::read_link(proc_dir.join("exe")).is_ok_and(|e| {
        e.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("postgres"))
    });
    cwd_ok && exe_ok
}

/// Server processes of `pg_dir` still alive (backends and auxiliaries of a killed postmaster
/// keep the shared memory attached until they notice; PostgreSQL refuses to start until then).
pub fn leftover_processes(pg_dir: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| pid != me && !is_zombie(pid))
        .filter(|&pid| is_postgres_in(Path::new(&format!("/proc/{pid}")), pg_dir))
        .collect()
}

/// SIGKILLs the leftover processes of a dead postmaster and waits (bounded) until they are gone.
pub async fn reap_leftovers(pg_dir: &Path, wait: Duration) -> Vec<i32> {
    let pids = leftover_processes(pg_dir);
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let started = Instant::now();
    while started.elapsed() < wait && !leftover_processes(pg_dir).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pids
}

/// Waits (bounded) until `pid` is no longer one of our server processes.
pub async fn wait_gone(pid: i32, pg_dir: &Path, wait: Duration) -> bool {
    let started = Instant::now();
    loop {
        if liveness(pid, pg_dir) != Liveness::Ours {
            return true;
        }
        if started.elapsed() >= wait {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pid_file() {
        let text = "4242\n/data/pg\n1700000000\n5432\n/data/run\n\n  1234567     65539\nready   \n";
        let p = PidFile::parse(text).unwrap();
        assert_eq!(p.pid, 4242);
        assert_eq!(p.port, Some(5432));
        assert_eq!(p.socket_dir.as_deref(), Some(Path::new("/data/run")));
        assert_eq!(p.status.as_deref(), Some("ready"));
        assert!(PidFile::parse("").is_none());
        assert!(PidFile::parse("x\n").is_none());
    }

    #[test]
    fn own_process_is_not_a_postmaster() {
        let me = std::process::id() as i32;
        assert_ne!(liveness(me, Path::new("/nonexistent")), Liveness::Ours);
        assert_eq!(
            liveness(i32::MAX - 7, Path::new("/nonexistent")),
            Liveness::Dead
        );
    }
}
