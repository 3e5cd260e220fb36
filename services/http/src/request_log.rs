//! The log context of the request being handled: its id, method and route, and the caller's
//! tenant and user once authenticated. Every log line written while the request is handled
//! carries these fields (B6; the log formatter reads them with [`with_current`]).
//!
//! They live in a task-local of the request's task rather than on a `tracing` span: a span
//! costs bookkeeping on every poll of the request (enter, exit, reference counts in the span
//! registry), which on `GET /api/data/:model/:id` was a tenth of the server's throughput.
//! A task-local is one pointer swap per poll. Tasks the request spawns do not inherit it (they
//! did not inherit the span either).

use axum::http::Method;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

tokio::task_local! {
    static CURRENT: RequestLog;
}

/// What a request's log lines say about it.
pub struct RequestLog {
    pub request_id: String,
    pub method: Method,
    pub route: Arc<str>,
    caller: OnceLock<(String, Uuid)>,
}

impl RequestLog {
    pub fn new(request_id: String, method: Method, route: Arc<str>) -> Self {
        RequestLog {
            request_id,
            method,
            route,
            caller: OnceLock::new(),
        }
    }

    /// The authenticated caller: tenant name and user id.
    pub fn caller(&self) -> Option<(&str, Uuid)> {
        self.caller.get().map(|(t, u)| (t.as_str(), *u))
    }
}

/// Runs `f` (the handling of one request) with `log` as its log context.
pub async fn scope<F: Future>(log: RequestLog, f: F) -> F::Output {
    CURRENT.scope(log, f).await
}

/// Records the authenticated caller on the current request (the first caller recorded stays).
pub fn record_caller(tenant: &str, user_id: Uuid) {
    let _ = CURRENT.try_with(|r| r.caller.set((tenant.to_owned(), user_id)));
}

/// Calls `f` with the current request's log context, if a request is being handled.
pub fn with_current(f: impl FnOnce(&RequestLog)) {
    let _ = CURRENT.try_with(f);
}
