//! The HTTP edge of Abbotik: builds the axum router from the route registry, adds the
//! request-id / tracing / metrics / rate-limit middleware, and maps every error to the envelope.
//! Handlers are thin: parse, call one domain service, map the result.

pub mod client_ip;
pub mod docs;
pub mod error;
mod error_table;
pub mod extract;
mod middleware;
pub mod ratelimit;
pub mod registry;
pub mod request_log;
pub mod routes;
pub mod state;

pub use error::ApiError;
pub use state::{AppServices, AppState, HttpSettings, Readiness, ReadyCheck};

use axum::routing::MethodRouter;
use axum::Router;
use std::collections::BTreeMap;

/// The public router (A1–A13 surfaces built so far).
pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for r in registry::all() {
        let mr = (r.handler)();
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(mr),
            None => mr,
        };
        by_path.insert(r.path, merged);
    }
    let mut router = Router::new();
    for (path, mr) in by_path {
        router = router.route(path, mr);
    }
    router
        .fallback(middleware::not_found)
        // One layer for everything cross-cutting: every `Router::layer` wraps each route in
        // one more boxed service, moved and polled on every request.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::edge,
        ))
        .with_state(state)
}
