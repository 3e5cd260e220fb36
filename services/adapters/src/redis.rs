//! Redis (cluster mode): MCP sessions and rate-limit budgets shared by every pod.
//!
//! [`Redis`] parses the URL at start-up (a bad URL is a configuration error) but connects
//! lazily: a Redis outage must not stop a pod from starting, it only makes `/ready` report
//! `degraded` (B6). The connection is a [`ConnectionManager`], which multiplexes one socket and
//! reconnects by itself after a failure.

use abbotik_domain::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A shared handle to one Redis deployment (`redis://` or `rediss://`).
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.write_str("Redis(***)")
    }
}

impl Redis {
    /// Validates the URL; does not connect.
    pub fn open(url: &str) -> anyhow::Result<Redis> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL: {}", e.category()))?;
        Ok(Redis {
            inner: Arc::new(Inner {
                client,
                conn: OnceCell::new(),
            }),
        })
    }

    /// The multiplexed connection, established on first use.
    pub async fn conn(&self) -> Result<ConnectionManager> {
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| async {
                self.inner
                    .client
                    .get_connection_manager_with_config(cfg)
                    .await
            })
            .await
            .map_err(redis_err)?;
        Ok(conn.clone())
    }

    /// Readiness: `PING` answers `PONG`.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::unavailable(format!("redis: PING answered {pong:?}")))
        }
    }
}

/// Any Redis failure is an unavailable dependency for the client; the cause goes to the log.
pub fn redis_err(e: redis::RedisError) -> Error {
    Error::unavailable(format!("redis: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_rejected_without_echoing_them() {
        let e = Redis::open("http://user:hunter2@host/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(Redis::open("redis://127.0.0.1:1/").is_ok());
        assert_eq!(
            format!("{:?}", Redis::open("redis://:pw@h/").unwrap()),
            "Redis(***)"
        );
    }

    #[tokio::test]
    async fn unreachable_redis_is_unavailable_not_a_panic() {
        // Port 1 on loopback: nothing listens there.
        let r = Redis::open("redis://127.0.0.1:1/").unwrap();
        let e = r.ping().await.unwrap_err();
        assert_eq!(e.code, abbotik_domain::ErrorCode::ServiceUnavailable);
    }
}
