//! NATS JetStream (cluster mode): cron dispatch and change events relayed from the outbox.
//!
//! [`Nats`] connects in the background (`retry_on_initial_connect`): a NATS outage must not
//! stop a pod from starting, it only makes `/ready` report `degraded` (B6). Readiness is the
//! connection state plus a JetStream account-info round trip, which proves JetStream is enabled
//! for this account and answering.

use abbotik_domain::{Error, Result};
use async_nats::connection::State;
use std::path::Path;
use std::time::Duration;

/// A shared NATS client with its JetStream context (both are cheap to clone).
#[derive(Clone)]
pub struct Nats {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a user and password: never print it.
        f.write_str("Nats(***)")
    }
}

/// What JetStream reports about this account (for tests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamInfo {
    pub streams: usize,
    pub consumers: usize,
    pub domain: Option<String>,
}

impl Nats {
    /// Starts connecting to `url` (comma-separated server list allowed), with an optional
    /// credentials file (`ABBOTIK_NATS_CREDS`). Fails only on a malformed URL or an unreadable
    /// credentials file; an unreachable server is retried in the background.
    pub async fn connect(url: &str, creds: Option<&Path>) -> anyhow::Result<Nats> {
        let mut opts = async_nats::ConnectOptions::new()
            .name("abbot-api")
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)))
            .retry_on_initial_connect();
        if let Some(path) = creds {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| anyhow::anyhow!("reading ABBOTIK_NATS_CREDS: {}", e.kind()))?;
        }
        let client = opts
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("invalid NATS URL ({})", e.kind()))?;
        let js = async_nats::jetstream::new(client.clone());
        Ok(Nats { client, js })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.js
    }

    /// JetStream account info (one request/reply round trip on `$JS.API.INFO`).
    ///
    /// The reply is read leniently (only the fields used here) rather than through the
    /// client's typed `Account`, which requires fields that servers before 2.10 do not send:
    /// readiness must work against every server version a deployment may run.
    pub async fn account_info(&self) -> Result<JetStreamInfo> {
        let unavailable =
            |what: String| Error::unavailable(format!("nats: jetstream account info: {what}"));
        let msg = tokio::time::timeout(
            Duration::from_secs(2),
            self.client.request("$JS.API.INFO", bytes::Bytes::new()),
        )
        .await
        .map_err(|_| unavailable("timed out".into()))?
        .map_err(|e| unavailable(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&msg.payload).map_err(|e| unavailable(e.to_string()))?;
        if let Some(err) = v.get("error") {
            let text = err
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("error reply");
            return Err(unavailable(text.to_owned()));
        }
        let count = |k: &str| v.get(k).and_then(|n| n.as_u64()).map(|n| n as usize);
        match (count("streams"), count("consumers")) {
            (Some(streams), Some(consumers)) => Ok(JetStreamInfo {
                streams,
                consumers,
                domain: v.get("domain").and_then(|d| d.as_str()).map(str::to_owned),
            }),
            _ => Err(unavailable("unexpected reply".into())),
        }
    }

    /// Waits up to `max` for the connection to be established (right after start it may
    /// still be in its handshake); true when connected.
    pub async fn wait_connected(&self, max: Duration) -> bool {
        let until = tokio::time::Instant::now() + max;
        loop {
            if self.client.connection_state() == State::Connected {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Readiness: connected, and JetStream answers for this account.
    pub async fn ping(&self) -> Result<()> {
        match self.client.connection_state() {
            State::Connected => {}
            other => {
                return Err(Error::unavailable(format!(
                    "nats: connection {}",
                    match other {
                        State::Pending => "pending",
                        _ => "disconnected",
                    }
                )))
            }
        }
        self.account_info().await.map(|_| ())
    }

    /// Flushes pending publishes and drains subscriptions (ordered shutdown, B6 step 5).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await;
        let _ = self.client.drain().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_nats_starts_and_reports_unavailable() {
        // Nothing listens on loopback port 1: connecting must not fail, readiness must.
        let n = Nats::connect("nats://127.0.0.1:1", None).await.unwrap();
        let e = n.ping().await.unwrap_err();
        assert_eq!(e.code, abbotik_domain::ErrorCode::ServiceUnavailable);
        assert_eq!(format!("{n:?}"), "Nats(***)");
    }

    #[tokio::test]
    async fn missing_creds_file_is_a_config_error() {
        let e = Nats::connect(
            "nats://127.0.0.1:1",
            Some(Path::new("/nonexistent/abbotik.creds")),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("ABBOTIK_NATS_CREDS"), "{e}");
    }
}
