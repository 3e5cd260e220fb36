//! Finding the PostgreSQL server binaries (`ABBOTIK_PG_BIN`, else `PATH`, else the newest
//! `/usr/lib/postgresql/*/bin`) and running them, as an unprivileged user when we are root.

use anyhow::{anyhow, bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The oldest PostgreSQL major version the product supports.
pub const MIN_MAJOR: u32 = 15;

/// Programs that must sit together in the binaries directory.
const PROGRAMS: &[&str] = &["postgres", "initdb", "pg_ctl"];

/// Environment variables of libpq and the server that must not leak into our commands.
const SCRUB_ENV: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGTZ",
    "PGCLIENTENCODING",
];

/// The system user the cluster runs as (only when the server runs as root).
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl RunAs {
    /// Looks up `name`; a clear error when the user does not exist.
    pub fn lookup(name: &str) -> anyhow::Result<RunAs> {
        let user = nix::unistd::User::from_name(name)
            .with_context(|| format!("looking up the system user {name:?}"))?
            .ok_or_else(|| {
                anyhow!(
                    "PostgreSQL refuses to run as root, so the embedded cluster runs as the system user \
                     {name:?}, which does not exist: create it (e.g. `useradd --system --home-dir /var/lib/postgresql \
                     --shell /usr/sbin/nologin {name}`) or set ABBOTIK_PG_USER to an existing unprivileged user"
                )
            })?;
        if user.uid.is_root() {
            bail!("ABBOTIK_PG_USER={name:?} is root; PostgreSQL must run as an unprivileged user");
        }
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
        })
    }
}

/// The binaries directory and how to run its programs.
#[derive(Debug, Clone)]
pub struct PgBin {
    pub dir: PathBuf,
    pub major: u32,
    pub version: String,
    pub run_as: Option<RunAs>,
}

impl PgBin {
    /// A command for `program` of this directory, run as the cluster user, in `/`, with the
    /// libpq environment removed. Stdin is closed.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(self.dir.join(program));
        for v in SCRUB_ENV {
            c.env_remove(v);
        }
        // Messages in the log stay parseable English whatever the host locale.
        c.env("LC_MESSAGES", "C");
        c.current_dir("/");
        c.stdin(Stdio::null());
        if let Some(r) = &self.run_as {
            // std drops supplementary groups when changing uid from root: the cluster runs with
            // exactly the user's uid and primary gid.
            c.uid(r.uid);
            c.gid(r.gid);
            c.env("HOME", &r.home);
            c.env("USER", &r.name);
            c.env("LOGNAME", &r.name);
        }
        c
    }

    /// Runs `program args…` to completion; an error carries its output.
    pub async fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<String> {
        let out = self
            .cmd(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running {}", self.dir.join(program).display()))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!(
                "{program} failed ({}): {}",
                out.status,
                text.trim()
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        Ok(text)
    }
}

/// Finds the binaries: `explicit` (must be valid), else `PATH`, else the newest well-known dir.
pub async fn find(explicit: Option<&Path>) -> anyhow::Result<(PathBuf, u32, String)> {
    if let Some(dir) = explicit {
        return check_dir(dir)
            .await
            .with_context(|| format!("ABBOTIK_PG_BIN={}", dir.display()));
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("postgres");
            if p.is_file() {
                // /usr/local/bin and friends often hold symlinks or unrelated wrappers: use the
                // directory of the real file, and accept it only if the whole set is there.
                if let Some(parent) = std::fs::canonicalize(&p)
                    .ok()
                    .and_then(|r| r.parent().map(Path::to_path_buf))
                {
                    candidates.push(parent);
                }
            }
        }
    }
    candidates.extend(well_known_dirs());
    let mut problems = Vec::new();
    for dir in candidates {
        match check_dir(&dir).await {
            Ok(found) => return Ok(found),
            Err(e) => problems.push(format!("{}: {e:#}", dir.display())),
        }
    }
    let tried = if problems.is_empty() {
        String::new()
    } else {
        format!(" (tried {})", problems.join("; "))
    };
    bail!(
        "PostgreSQL >= {MIN_MAJOR} server binaries (postgres, initdb, pg_ctl) not found on PATH or in \
         /usr/lib/postgresql/*/bin: install them (e.g. `apt-get install postgresql`) or set ABBOTIK_PG_BIN \
         to their directory{tried}"
    )
}

/// `/usr/lib/postgresql/<v>/bin` (Debian), `/usr/pgsql-<v>/bin` (RHEL), newest first.
fn well_known_dirs() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for (root, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(v) = name.strip_prefix(prefix) else {
                continue;
            };
            let Ok(major) = v.split('.').next().unwrap_or("").parse::<u32>() else {
                continue;
            };
            found.push((major, e.path().join("bin")));
        }
    }
    found.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Checks that `dir` holds the programs and that `postgres --version` is >= [`MIN_MAJOR`].
async fn check_dir(dir: &Path) -> anyhow::Result<(PathBuf, u32, String)> {
    for p in PROGRAMS {
        if !dir.join(p).is_file() {
            bail!("no {p} there");
        }
    }
    let out = Command::new(dir.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .context("running postgres --version")?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let major =
        parse_major(&text).ok_or_else(|| anyhow!("not a PostgreSQL server binary ({text:?})"))?;
    if major < MIN_MAJOR {
        bail!("PostgreSQL {major} is too old (need >= {MIN_MAJOR})");
    }
    Ok((dir.to_path_buf(), major, text))
}

/// `postgres (PostgreSQL) 15.18 (Debian …)` → 15.
pub fn parse_major(version_line: &str) -> Option<u32> {
    let rest = version_line.split("(PostgreSQL)").nth(1)?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(parse_major("wrapper 1.0"), None);
    }
}
