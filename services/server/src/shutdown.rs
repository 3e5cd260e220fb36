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
