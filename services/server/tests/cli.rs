//! The `abbot-api` command line as a process (B10): version, configuration errors (exit 2, one
//! line naming the variable, no secret echoed). Having an integration test here also makes
//! `cargo test`/`cargo nextest run --workspace` build the `abbot-api` binary, which the
//! workspace lifecycle tests (`tests/tests/lifecycle.rs`) run.

use std::process::Command;

fn api() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_abbot-api"));
    c.env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        c.env("PATH", p);
    }
    c
}

#[test]
fn version_prints_the_package_version() {
    let out = api().arg("version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("abbot-api {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let out = api()
        .arg("version")
        .env("ABBOTIK_LISTEN", "not-an-address")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ABBOTIK_LISTEN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn cluster_mode_secrets_are_never_echoed() {
    let out = api()
        .arg("version")
        .env(
            "ABBOTIK_DATABASE_URL",
            "postgres://u:hunter2-secret@127.0.0.1:1/x",
        )
        .env("ABBOTIK_SINGLE_NODE", "true")
        .env("ABBOTIK_AUTH_JWT_SECRET", "short-secret-value")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("ABBOTIK_AUTH_JWT_SECRET"), "{all}");
    assert!(
        !all.contains("hunter2") && !all.contains("short-secret-value"),
        "{all}"
    );
}

#[test]
fn the_allocator_runs_with_lazy_commit_and_immediate_purge() {
    // mimalloc prints the options in effect at start when asked (main.rs sets two of them
    // before it initialises; see `allocator_options`).
    let out = api()
        .arg("version")
        .env("MIMALLOC_VERBOSE", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("option 'arena_eager_commit': 0"), "{err}");
    assert!(err.contains("option 'purge_delay': 0"), "{err}");
}
