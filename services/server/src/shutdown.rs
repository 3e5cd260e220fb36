//! Ordered shutdown (B6): on SIGTERM/SIGINT `/ready` turns 503, we wait the LB delay, stop
//! accepting and drain; past the grace deadline the process exits with code 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The shutdown sequence shared by the server and tests: `trigger` starts it.
#[derive(Clone)]
pub struct Shutdown {
    pub flag: Arc<AtomicBool>,
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Marks not-ready and, after `delay`, tells listeners to stop accepting.
    pub async fn begin(&self, delay: Duration) {
        self.flag.store(true, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        let _ = self.tx.send(true);
    }

    /// Resolves once listeners should stop accepting.
    pub async fn stopped(&self) {
        let mut rx = self.rx.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Steps (1)–(3) of B6: `/ready` turns 503, wait `delay` for load balancers, stop accepting,
/// and wait for `serve` (the HTTP server) to finish its in-flight requests. Returns `true` when
/// all of it completed within `grace`; `false` past the deadline or on a second signal (an
/// operator pressing Ctrl-C twice wants out now).
pub async fn drain(
    sd: &Shutdown,
    delay: Duration,
    grace: Duration,
    serve: &mut tokio::task::JoinHandle<std::io::Result<()>>,
) -> bool {
    let sequence = async {
        sd.begin(delay).await;
        match serve.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
        }
    };
    tokio::select! {
        r = tokio::time::timeout(grace, sequence) => {
            if r.is_err() {
                tracing::error!(grace_seconds = grace.as_secs(), "shutdown deadline passed with requests still in flight");
            }
            r.is_ok()
        }
        _ = signal() => {
            tracing::warn!("second signal: shutting down without waiting for the drain");
            false
        }
    }
}
