//! The janitor (A10, A13, A3.10): never-activated tenants expire after 24 h, trashed records
//! are purged after the retention, purged rows are deleted 24 h later, dissolved tenants'
//! schemas are dropped after `ABBOTIK_TENANT_DROP_AFTER_DAYS` and their names freed.
//! Ages are set directly in the database; one sweep is run through the real store.

use abbotik_adapters::postgres::janitor::PgJanitor;
use abbotik_domain::ports::janitor::{JanitorStore, Retention};
use abbotik_testkit::{spawn_app, test_db, unique_name, TestTenant, TEST_PASSWORD};
use serde_json::json;

const RETENTION: Retention = Retention {
    trash_days: 30,
    dissolved_days: 30,
    pending_secs: 24 * 3600,
    purged_secs: 24 * 3600,
};

async fn exists_schema(c: &tokio_postgres::Client, tenant: &str) -> bool {
    !c.query(
        "SELECT 1 FROM pg_namespace WHERE nspname = $1",
        &[&format!("ns_tenant_{tenant}")],
    )
    .await
    .unwrap()
    .is_empty()
}

/// Runs sweeps until one is not skipped (another test's sweep may hold the lock).
async fn sweep(j: &PgJanitor) -> abbotik_domain::ports::janitor::SweepReport {
    for _ in 0..200 {
        if let Some(r) = j.sweep(RETENTION).await.unwrap() {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("janitor lock never free");
}

#[tokio::test]
async fn janitor_expires_purges_and_drops() {
    let app = spawn_app().await;
    let c = test_db().await;
    let janitor = PgJanitor::new(app.running.resources.db.clone());

    // A pending tenant 25 h old expires; a fresh pending one and an old active one stay.
    let (old, fresh) = (unique_name("jold"), unique_name("jnew"));
    for name in [&old, &fresh] {
        let r = app
            .post(
                "/auth/register",
                None,
                json!({"tenant": name, "username": "u", "password": TEST_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    c.execute(
        "UPDATE abbotik_control.tenants SET created_at = now() - interval '25 hours' WHERE name = $1",
        &[&old],
    )
    .await
    .unwrap();
    let active = TestTenant::new(&app).await;
    c.execute(
        "UPDATE abbotik_control.tenants SET created_at = now() - interval '25 hours' WHERE name = $1",
        &[&active.name],
    )
    .await
    .unwrap();

    // Trashed records: one past the retention, one recent; one purged row past 24 h.
    let r = app
        .post(
            "/api/describe/things",
            active.token(),
            json!({"fields": {"n": {"type": "integer", "unique": true}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/data/things",
            active.token(),
            json!([{"n": 1}, {"n": 2}, {"n": 3}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ids: Vec<String> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        let r = app
            .call(
                "DELETE",
                &format!("/api/data/things/{id}"),
                active.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let schema = format!("\"ns_tenant_{}\".things", active.name);
    let challenges = format!("\"ns_tenant_{}\".auth_challenges", active.name);
    c.execute(
        &format!(
            "UPDATE {schema} SET trashed_at = now() - interval '31 days' WHERE id = $1::text::uuid"
        ),
        &[&ids[0]],
    )
    .await
    .unwrap();
    c.execute(
        &format!("UPDATE {schema} SET deleted_at = now() - interval '25 hours' WHERE id = $1::text::uuid"),
        &[&ids[2]],
    )
    .await
    .unwrap();

    // A tenant dissolved 31 days ago.
    let gone = TestTenant::new(&app).await;
    let r = app
        .post(
            "/auth/dissolve",
            None,
            json!({"tenant": gone.name, "username": "owner", "password": TEST_PASSWORD}),
        )
        .await;
    let confirm = r.body["data"]["confirmation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/auth/dissolve/confirm",
            None,
            json!({"confirmation_token": confirm}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.execute(
        "UPDATE abbotik_control.tenants SET deleted_at = now() - interval '31 days' WHERE name = $1",
        &[&gone.name],
    )
    .await
    .unwrap();

    // Two challenges of the active tenant: one past its expiry, one still open.
    for offset in ["-1 second", "+300 seconds"] {
        c.execute(
            &format!(
                "INSERT INTO {} (key_id, nonce, expires_at) VALUES (gen_random_uuid(), 'n', now() + interval '{offset}')",
                challenges
            ),
            &[],
        )
        .await
        .unwrap();
    }

    let report = sweep(&janitor).await;
    let open: i64 = c
        .query_one(&format!("SELECT count(*) FROM {challenges}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 1, "expired challenges are deleted, open ones kept");
    assert!(report.expired_pending.contains(&old), "{report:?}");
    assert!(!report.expired_pending.contains(&fresh));
    assert!(report.dropped_dissolved.contains(&gone.name), "{report:?}");

    assert!(
        !exists_schema(&c, &old).await,
        "expired pending schema dropped"
    );
    assert!(exists_schema(&c, &fresh).await);
    assert!(exists_schema(&c, &active.name).await);
    assert!(
        !exists_schema(&c, &gone.name).await,
        "dissolved schema dropped"
    );

    // The old trashed record was purged (no longer in the trash), the recent one stays,
    // the old purged row is gone from the table.
    let r = app.get("/api/trashed/things", active.token()).await;
    let left: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![ids[1].as_str()], "{}", r.text);
    let rows: i64 = c
        .query_one(&format!("SELECT count(*) FROM {schema}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "the purged row past 24 h is physically deleted");
    // Purging freed the unique value of the expired record.
    let r = app
        .post("/api/data/things", active.token(), json!({"n": 1}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Names are free again.
    for name in [&old, &gone.name] {
        let r = app
            .post(
                "/auth/register",
                None,
                json!({"tenant": name, "username": "u", "password": TEST_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "{name}: {}", r.text);
    }
}
