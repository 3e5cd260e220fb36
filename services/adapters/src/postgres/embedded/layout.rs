//! The on-disk layout of the embedded cluster under the data directory, and the ownership and
//! permissions it needs when the server runs as root and the cluster as an unprivileged user:
//!
//! ```text
//! <data_dir>/            0700 (0711 when root: the cluster user may traverse, never list)
//!   embedded.lock        flock held by the abbot-api process that owns the cluster
//!   pg/                  the PostgreSQL data directory (initdb), owned by the cluster user
//!   run/                 Unix socket directory, 0700, owned by the cluster user
//!   pg.log               server log (rotated to pg.log.1 past 16 MiB at start)
//! ```
//!
//! When the server runs as root and the cluster user cannot traverse a *parent* of the data
//! directory (say `/root`, mode 0700), we do not loosen permissions outside the data directory:
//! `pg`, `run` and `pg.log` are placed in `/var/lib/abbotik/clusters/<sha256(data_dir)[..16]>/`
//! instead, with symlinks of the same names in the data directory pointing there (so operators
//! find them, and later starts follow the links).

use super::bin::RunAs;
use anyhow::{bail, Context};
use sha2::Digest;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The fixed port: with `listen_addresses=''` it only names the socket file.
pub const PORT: u16 = 5432;
/// Longest Unix socket path PostgreSQL accepts (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub pg_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_file: PathBuf,
    pub lock_file: PathBuf,
    pub initdb_tmp: PathBuf,
    /// Where `pg`, `run` and `pg.log` really live when relocated (see the module docs).
    pub relocated: Option<PathBuf>,
}

/// Where relocated clusters live.
const RELOCATION_ROOT: &str = "/var/lib/abbotik/clusters";

impl Layout {
    /// Creates the data directory if needed and returns the canonical layout.
    pub fn prepare(data_dir: &Path, run_as: Option<&RunAs>) -> anyhow::Result<Layout> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let data_dir = std::fs::canonicalize(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let relocated = cluster_home(&data_dir, run_as)?;
        let home = relocated.clone().unwrap_or_else(|| data_dir.clone());
        let l = Layout {
            pg_dir: home.join("pg"),
            run_dir: home.join("run"),
            log_file: home.join("pg.log"),
            lock_file: data_dir.join("embedded.lock"),
            initdb_tmp: home.join("pg.initdb"),
            data_dir,
            relocated,
        };
        let socket = l.socket_path();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the data directory path is too long for a Unix socket ({} is {} bytes, the limit is \
                 {MAX_SOCKET_PATH}): choose a shorter ABBOTIK_DATA_DIR",
                socket.display(),
                socket.as_os_str().len()
            );
        }
        l.make_private_dir(&l.run_dir, run_as)?;
        l.prepare_log(run_as)?;
        if let Some(r) = run_as {
            if let Ok(meta) = std::fs::metadata(&l.pg_dir) {
                if meta.uid() != r.uid {
                    bail!(
                        "{} belongs to uid {}, but the embedded cluster runs as {:?} (uid {}): \
                         `chown -R {}: {}` or set ABBOTIK_PG_USER to its owner",
                        l.pg_dir.display(),
                        meta.uid(),
                        r.name,
                        r.uid,
                        r.name,
                        l.pg_dir.display()
                    );
                }
            }
        }
        Ok(l)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.run_dir.join(format!(".s.PGSQL.{PORT}"))
    }

    pub fn pid_file(&self) -> PathBuf {
        self.pg_dir.join("postmaster.pid")
    }

    /// A 0700 directory owned by the cluster user (created or fixed up).
    pub fn make_private_dir(&self, dir: &Path, run_as: Option<&RunAs>) -> anyhow::Result<()> {
        DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir.display()))?;
        chown_to(dir, run_as)
    }

    /// The log file exists, is owned by the cluster user, and is rotated once it is large.
    fn prepare_log(&self, run_as: Option<&RunAs>) -> anyhow::Result<()> {
        if std::fs::metadata(&self.log_file).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let _ = std::fs::rename(&self.log_file, self.data_dir.join("pg.log.1"));
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        chown_to(&self.log_file, run_as)
    }
}

/// The directory holding `pg`, `run` and `pg.log` when it is not the data directory itself.
///
/// The cluster user must reach them. We add search-only permission (o+x) to the data directory
/// itself when needed — never read, never on its parents; when a parent is not searchable the
/// cluster is relocated (see the module docs).
fn cluster_home(data_dir: &Path, run_as: Option<&RunAs>) -> anyhow::Result<Option<PathBuf>> {
    let link = data_dir.join("pg");
    if let Ok(target) = std::fs::read_link(&link) {
        // Relocated by an earlier start: follow it.
        let target = if target.is_absolute() {
            target
        } else {
            data_dir.join(target)
        };
        let home = target
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow::anyhow!("{} points nowhere usable", link.display()))?;
        make_home(&home)?;
        return Ok(Some(home));
    }
    let Some(r) = run_as else { return Ok(None) };
    let Some((anc, mode)) = blocked_ancestor(data_dir, r)? else {
        let meta = std::fs::metadata(data_dir)?;
        if !searchable(&meta, r) {
            let mode = (meta.mode() & 0o7777) | 0o001;
            std::fs::set_permissions(data_dir, Permissions::from_mode(mode))
                .with_context(|| format!("chmod o+x {}", data_dir.display()))?;
        }
        return Ok(None);
    };
    let unreachable = format!(
        "the embedded PostgreSQL runs as {:?} (PostgreSQL refuses to run as root) and cannot reach \
         the data directory {}: {} (mode {:o}) is not searchable by that user",
        r.name,
        data_dir.display(),
        anc.display(),
        mode
    );
    if link.exists() {
        bail!(
            "{unreachable}. Use a data directory it can reach (e.g. ABBOTIK_DATA_DIR=/var/lib/abbotik) \
             or allow traversal with `chmod o+x {}`",
            anc.display()
        );
    }
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let home = Path::new(RELOCATION_ROOT).join(&hex::encode(digest)[..16]);
    make_home(&home).with_context(|| {
        format!("{unreachable}, and the cluster cannot be placed in {RELOCATION_ROOT} instead")
    })?;
    std::fs::write(home.join("DATA_DIR"), format!("{}\n", data_dir.display()))?;
    for name in ["pg", "run", "pg.log"] {
        let at = data_dir.join(name);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) && name == "run" {
            // Only ever holds sockets and their lock files.
            std::fs::remove_dir_all(&at)?;
        }
        if std::fs::symlink_metadata(&at).is_err() {
            std::os::unix::fs::symlink(home.join(name), &at)
                .with_context(|| format!("linking {}", at.display()))?;
        }
    }
    tracing::warn!(
        data_dir = %data_dir.display(),
        cluster = %home.display(),
        "the PostgreSQL user cannot traverse {}: the embedded cluster lives in {} (symlinked from the data directory)",
        anc.display(),
        home.display()
    );
    Ok(Some(home))
}

/// The relocation directory: root-owned, searchable (not readable) by others.
fn make_home(home: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(home)
        .with_context(|| format!("creating {}", home.display()))?;
    std::fs::set_permissions(home, Permissions::from_mode(0o711))
        .with_context(|| format!("chmod 0711 {}", home.display()))?;
    Ok(())
}

/// The first parent of `data_dir` that `r` cannot search, with its mode.
fn blocked_ancestor(data_dir: &Path, r: &RunAs) -> anyhow::Result<Option<(PathBuf, u32)>> {
    for anc in data_dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(anc).with_context(|| format!("inspecting {}", anc.display()))?;
        if !searchable(&meta, r) {
            return Ok(Some((anc.to_path_buf(), meta.mode() & 0o7777)));
        }
    }
    Ok(None)
}

/// Whether `r` (uid and primary gid only: supplementary groups are dropped when we switch to
/// it) may search a directory.
fn searchable(meta: &std::fs::Metadata, r: &RunAs) -> bool {
    let mode = meta.mode();
    if meta.uid() == r.uid {
        mode & 0o100 != 0
    } else if meta.gid() == r.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

pub fn chown_to(path: &Path, run_as: Option<&RunAs>) -> anyhow::Result<()> {
    if let Some(r) = run_as {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(r.uid)),
            Some(nix::unistd::Gid::from_raw(r.gid)),
        )
        .with_context(|| format!("chown {} {}", r.name, path.display()))?;
    }
    Ok(())
}

/// Quotes a value for `postgresql.conf`.
pub fn conf_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

/// Our settings, rewritten at every start (so a moved data directory keeps working).
pub fn conf_text(l: &Layout) -> String {
    let run = conf_quote(&l.run_dir.to_string_lossy());
    format!(
        "# Written by abbot-api at every start of the embedded cluster: edits here are overwritten.\n\
         # Reachable only through the Unix socket in the data directory; no TCP listener.\n\
         listen_addresses = ''\n\
         port = {PORT}\n\
         unix_socket_directories = {run}\n\
         unix_socket_permissions = 0700\n\
         max_connections = 100\n\
         shared_buffers = '128MB'\n\
         # Durability: every acknowledged commit is on disk.\n\
         fsync = on\n\
         synchronous_commit = on\n\
         full_page_writes = on\n\
         timezone = 'UTC'\n\
         log_timezone = 'UTC'\n\
         logging_collector = off\n\
         log_line_prefix = '%m [%p] '\n\
         log_checkpoints = off\n{}",
        // Crash recovery first syncs the data directory; one syncfs() instead of an fsync()
        // per file makes a restart after SIGKILL seconds faster (Linux only).
        if cfg!(target_os = "linux") {
            "recovery_init_sync_method = syncfs\n"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_conf_values() {
        assert_eq!(conf_quote("/a b/it's"), "'/a b/it''s'");
        assert_eq!(conf_quote(r"C:\x"), r"'C:\\x'");
    }
}
