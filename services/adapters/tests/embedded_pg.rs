//! The embedded PostgreSQL cluster against the machine's PostgreSQL binaries: first start
//! (initdb), clean restart, restart after the postmaster was SIGKILLed (stale pid, WAL
//! recovery), adoption of an orphan whose owner died, attach/exclusive rules.
//! Each test uses its own data directory under the system temp dir and removes it.

use abbotik_adapters::postgres::embedded::{EmbeddedOptions, EmbeddedPg, StartKind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let p = std::env::temp_dir().join(format!("abbotik-emb-{}", &id[..12]));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(dir: &TempDir, exclusive: bool) -> EmbeddedOptions {
    EmbeddedOptions {
        data_dir: dir.0.clone(),
        pg_bin: std::env::var_os("ABBOTIK_PG_BIN").map(PathBuf::from),
        pg_user: std::env::var("ABBOTIK_PG_USER").unwrap_or_else(|_| "postgres".into()),
        exclusive,
    }
}

async fn client(pg: &EmbeddedPg) -> tokio_postgres::Client {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(&pg.socket_dir)
        .port(pg.port)
        .user(&pg.user)
        .dbname(&pg.dbname);
    let (c, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the embedded cluster");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    c
}

async fn count(pg: &EmbeddedPg) -> i64 {
    client(pg)
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("count")
        .get(0)
}

/// Every test is bounded in time.
async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(180), f)
        .await
        .expect("test finished within 180 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_then_clean_restart_keeps_data() {
    bounded(async {
        let dir = TempDir::new();
        let t = Instant::now();
        let pg = EmbeddedPg::start(opts(&dir, true))
            .await
            .expect("first start");
        eprintln!("first start (initdb): {:?}", t.elapsed());
        assert_eq!(pg.kind, StartKind::Initialized);
        assert!(pg.owned);
        let c = client(&pg).await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
            .await
            .expect("write");
        pg.stop().await.expect("stop");
        assert!(pg.postmaster_pid().is_none(), "stopped");
        drop(pg);

        let t = Instant::now();
        let pg = EmbeddedPg::start(opts(&dir, true))
            .await
            .expect("warm start");
        eprintln!("warm start: {:?}", t.elapsed());
        assert_eq!(pg.kind, StartKind::Started);
        assert_eq!(count(&pg).await, 2);
        // No TCP listener: the socket is the only way in.
        let conf = std::fs::read_to_string(pg.pg_dir.join("abbotik.conf")).expect("conf");
        assert!(conf.contains("listen_addresses = ''"));
        assert!(conf.contains("fsync = on"));
        pg.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_postmaster_is_recovered() {
    bounded(async {
        let dir = TempDir::new();
        let pg = EmbeddedPg::start(opts(&dir, true)).await.expect("start");
        client(&pg)
            .await
            .batch_execute(
                "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 500)",
            )
            .await
            .expect("write");
        let pid = pg.postmaster_pid().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill postmaster");
        // The owner dies too (the lock goes with it); the cluster is not stopped.
        drop(pg);
        let t = Instant::now();
        let pg = EmbeddedPg::start(opts(&dir, true))
            .await
            .expect("start after crash");
        eprintln!("start after SIGKILL of the postmaster: {:?}", t.elapsed());
        assert_eq!(pg.kind, StartKind::Started);
        assert_ne!(pg.postmaster_pid(), Some(pid));
        assert_eq!(count(&pg).await, 500, "every committed row survived");
        pg.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_cluster_is_adopted() {
    bounded(async {
        let dir = TempDir::new();
        let pg = EmbeddedPg::start(opts(&dir, true)).await.expect("start");
        client(&pg)
            .await
            .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (7)")
            .await
            .expect("write");
        let pid = pg.postmaster_pid().expect("running");
        // The owning process "crashes": its lock is released, its postmaster keeps running.
        drop(pg);
        let t = Instant::now();
        let pg = EmbeddedPg::start(opts(&dir, true))
            .await
            .expect("start over an orphan");
        eprintln!("start over a running orphan: {:?}", t.elapsed());
        assert_eq!(pg.kind, StartKind::Reused);
        assert_eq!(
            pg.postmaster_pid(),
            Some(pid),
            "the orphan itself was reused"
        );
        assert_eq!(count(&pg).await, 1);
        pg.stop().await.expect("stop");
        assert!(pg.postmaster_pid().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_attach_and_servers_are_exclusive() {
    bounded(async {
        let dir = TempDir::new();
        let owner = EmbeddedPg::start(opts(&dir, true)).await.expect("owner");
        client(&owner)
            .await
            .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
            .await
            .expect("write");
        let guest = EmbeddedPg::start(opts(&dir, false)).await.expect("attach");
        assert_eq!(guest.kind, StartKind::Attached);
        assert!(!guest.owned);
        assert_eq!(count(&guest).await, 1);
        guest.stop().await.expect("guest stop is a no-op");
        assert!(
            owner.postmaster_pid().is_some(),
            "the owner's cluster still runs"
        );
        let err = EmbeddedPg::start(opts(&dir, true))
            .await
            .expect_err("a second server is refused");
        assert!(format!("{err:#}").contains("already running"), "{err:#}");
        owner.stop().await.expect("stop");
    })
    .await;
}
