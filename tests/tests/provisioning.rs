//! Tenant provisioning (A13): one transaction; a failure injected mid-way leaves no schema
//! and no registry row, and the name is free again.

use abbotik_testkit::{spawn_app, unique_name, TEST_PASSWORD};
use serde_json::json;

/// An event trigger (real PostgreSQL, no test hook in the product) that fails the creation of
/// the `credentials` table in any schema named `ns_tenant_failinject_…`.
async fn install_failure(c: &tokio_postgres::Client) {
    c.batch_execute(
        r#"
        CREATE OR REPLACE FUNCTION public.abbotik_test_fail_provision() RETURNS event_trigger
        LANGUAGE plpgsql AS $$
        DECLARE r record;
        BEGIN
          FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            IF r.object_identity LIKE 'ns_tenant_failinject\_%.credentials' THEN
              RAISE EXCEPTION 'injected provisioning failure';
            END IF;
          END LOOP;
        END $$;
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'abbotik_test_fail_provision') THEN
            CREATE EVENT TRIGGER abbotik_test_fail_provision ON ddl_command_end
              EXECUTE FUNCTION public.abbotik_test_fail_provision();
          END IF;
        END $$;
        "#,
    )
    .await
    .expect("install event trigger");
}

#[tokio::test]
async fn failure_mid_provisioning_leaves_nothing() {
    let app = spawn_app().await;
    let c = abbotik_testkit::test_db().await;
    install_failure(&c).await;
    let name = unique_name("failinject");
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"tenant": name, "username": "alice", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["code"], "TENANT_PROVISION_FAILED");
    assert!(
        !r.text.contains("injected"),
        "no internal text leaks: {}",
        r.text
    );
    assert!(!r.text.to_lowercase().contains("credentials"), "{}", r.text);
    let rows = c
        .query(
            "SELECT 1 FROM abbotik_control.tenants WHERE name = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert!(rows.is_empty(), "registry row left behind");
    let schema = format!("ns_tenant_{name}");
    let rows = c
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .unwrap();
    assert!(rows.is_empty(), "schema left behind");
}

#[tokio::test]
async fn provisioned_tenant_is_small_and_complete() {
    let app = spawn_app().await;
    let c = abbotik_testkit::test_db().await;
    let name = unique_name("small");
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"tenant": name, "username": "alice", "password": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let schema = format!("ns_tenant_{name}");
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    // Tables, their indexes, sequences and TOAST tables of one new tenant.
    println!("relations per tenant: {n}");
    assert!(n <= 40, "a tenant costs {n} relations");
    let users: i64 = c
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".users"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 2, "the zero-uuid root user and the owner");
    let status: String = c
        .query_one(
            "SELECT status FROM abbotik_control.tenants WHERE name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "pending");
}
