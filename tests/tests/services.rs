//! The real backing services that `scripts/test` starts (PostgreSQL, Redis, NATS JetStream and an
//! S3-compatible server): a server configured with all four is ready with every check ok, a
//! service that is down degrades `/ready` without failing it, and each adapter works against
//! the real server.
//!
//! Outside `scripts/test` a missing service skips these tests with a loud message; with `CI` or
//! `ABBOTIK_TEST_REQUIRE_SERVICES=1` set, a missing service fails them.

use abbotik_adapters::nats::Nats;
use abbotik_adapters::redis::Redis;
use abbotik_adapters::s3::{S3BlobStore, S3Config};
use abbotik_domain::ports::blob::{BlobKey, BlobStore};
use abbotik_testkit::{spawn_app, spawn_app_with};
use std::time::Duration;

/// The value of a service variable exported by `scripts/test`, or `None` (skip) when it is
/// absent and services are not required.
fn service_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            let required = std::env::var("ABBOTIK_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
                || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
            assert!(
                !required,
                "{var} is not set but real services are required (CI / ABBOTIK_TEST_REQUIRE_SERVICES): run scripts/test"
            );
            eprintln!(
                "\n!!! SKIPPED: {var} is not set. This test needs the real services: run scripts/test !!!\n"
            );
            None
        }
    }
}

fn s3_config() -> Option<S3Config> {
    Some(S3Config {
        bucket: service_var("ABBOTIK_TEST_S3_BUCKET")?,
        endpoint: Some(service_var("ABBOTIK_TEST_S3_ENDPOINT")?),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        force_path_style: true,
        // The standard AWS_* chain, exactly as the server uses it.
        access_key_id: None,
        secret_access_key: None,
    })
}

#[tokio::test]
async fn ready_strict_checks_all_four_services() {
    for var in [
        "ABBOTIK_TEST_REDIS_URL",
        "ABBOTIK_TEST_NATS_URL",
        "ABBOTIK_TEST_S3_ENDPOINT",
        "ABBOTIK_TEST_S3_BUCKET",
    ] {
        if service_var(var).is_none() {
            return;
        }
    }
    let app = spawn_app().await;
    // NATS connects in the background at start: allow it a few seconds.
    let mut r = app.get("/ready?strict=true", None).await;
    for _ in 0..50 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = app.get("/ready?strict=true", None).await;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["status"], "ready", "{}", r.text);
    for check in ["postgres", "redis", "nats", "s3"] {
        assert_eq!(
            r.body["data"]["checks"][check]["ok"], true,
            "{check}: {}",
            r.text
        );
        assert!(
            r.body["data"]["checks"][check]["latency_ms"].is_u64(),
            "{}",
            r.text
        );
    }
    // The public listener never shows dependency error text.
    assert!(!r.text.contains("error"), "{}", r.text);
}

#[tokio::test]
async fn a_service_that_is_down_degrades_ready_and_strict_fails() {
    // Nothing listens on loopback port 1. Postgres stays up, so the pod stays in rotation.
    let app = spawn_app_with(&[("ABBOTIK_REDIS_URL", "redis://127.0.0.1:1/")]).await;
    // Other configured services may still be connecting right after start: wait until only
    // the dead one is left failing (Redis, and the rate limiter that fell back from it, B5).
    let down = serde_json::json!(["redis", "ratelimit"]);
    let mut r = app.get("/ready", None).await;
    for _ in 0..50 {
        if r.body["data"]["failed"] == down {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = app.get("/ready", None).await;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["status"], "degraded", "{}", r.text);
    assert_eq!(r.body["data"]["failed"], down, "{}", r.text);
    assert_eq!(r.body["data"]["checks"]["redis"]["ok"], false);
    assert_eq!(r.body["data"]["checks"]["postgres"]["ok"], true);

    let r = app.get("/ready?strict=true", None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["code"], "NOT_READY");
    assert_eq!(r.body["data"]["failed"], down);
}

#[tokio::test]
async fn redis_answers_ping() {
    let Some(url) = service_var("ABBOTIK_TEST_REDIS_URL") else {
        return;
    };
    let redis = Redis::open(&url).expect("valid url");
    redis.ping().await.expect("PING");
    // The connection is shared and reused.
    let mut conn = redis.conn().await.expect("connection");
    let key = format!("abbotik:test:{}", uuid::Uuid::new_v4().simple());
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let v: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(v, "v");
}

#[tokio::test]
async fn nats_jetstream_answers_account_info() {
    let Some(url) = service_var("ABBOTIK_TEST_NATS_URL") else {
        return;
    };
    let nats = Nats::connect(&url, None).await.expect("connect");
    assert!(
        nats.wait_connected(Duration::from_secs(5)).await,
        "not connected"
    );
    nats.ping().await.expect("readiness");
    let before = nats.account_info().await.expect("JetStream account info");

    // JetStream really stores: a stream, a published message, and the account sees the stream.
    let name = format!("T{}", uuid::Uuid::new_v4().simple());
    let subject = format!("abbotik.test.{name}");
    let js = nats.jetstream();
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .expect("create stream");
    let ack = js
        .publish(subject, "hello".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!(ack.stream, name);
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
    let after = nats.account_info().await.expect("JetStream account info");
    assert!(after.streams >= 1, "{before:?} {after:?}");
    js.delete_stream(&name).await.expect("delete stream");
    nats.close().await;
}

#[tokio::test]
async fn s3_blob_store_put_get_head_delete() {
    let Some(cfg) = s3_config() else {
        return;
    };
    let store = S3BlobStore::new(cfg.clone()).expect("client");
    store.head_bucket().await.expect("HeadBucket");

    let key = BlobKey::parse(&format!("test/{}/blob.bin", uuid::Uuid::new_v4().simple())).unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.head(&key).await.unwrap(), None);

    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let meta = store.put(&key, bytes.clone()).await.expect("put");
    assert_eq!(meta.size, 70_000);
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&bytes[..]));
    let head = store.head(&key).await.unwrap().expect("head");
    assert_eq!(head.size, 70_000);

    store
        .put(&key, b"replaced".to_vec())
        .await
        .expect("overwrite");
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );

    store.delete(&key).await.expect("delete");
    store.delete(&key).await.expect("delete is idempotent");
    assert_eq!(store.get(&key).await.unwrap(), None);

    // HeadBucket really checks the bucket and the signature.
    let missing = S3BlobStore::new(S3Config {
        bucket: format!("missing-{}", uuid::Uuid::new_v4().simple()),
        ..cfg.clone()
    })
    .unwrap();
    assert!(missing.head_bucket().await.is_err());
    let wrong_secret = S3BlobStore::new(S3Config {
        access_key_id: Some(std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default()),
        secret_access_key: Some("not-the-secret".into()),
        ..cfg
    })
    .unwrap();
    assert!(wrong_secret.head_bucket().await.is_err());
}
