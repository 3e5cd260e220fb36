//! The static route registry (B4): one entry per method and path, with its docs. The router
//! is built from it and every docs surface renders it, so a route cannot exist undocumented.

use crate::state::AppState;
use axum::routing::MethodRouter;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Bearer,
    Sudo,
}

impl Access {
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Bearer => "bearer",
            Access::Sudo => "bearer + sudo",
        }
    }
}

/// One documented route.
pub struct RouteDoc {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: &'static str,
    /// Axum path syntax (`/api/data/{model}/{id}`); docs show `:model`.
    pub path: &'static str,
    /// Docs area (`auth`, `api/data`, …).
    pub area: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Markdown.
    pub description: &'static str,
    /// Example request body (JSON text), if the route takes one.
    pub request: Option<&'static str>,
    /// Example success response (JSON text).
    pub response: &'static str,
    pub status: u16,
    /// Error codes this route may answer with.
    pub errors: &'static [&'static str],
    /// The handler, bound to this route's method.
    pub handler: fn() -> MethodRouter<AppState>,
}

impl RouteDoc {
    /// The contract's notation: `/api/data/:model/:id`.
    pub fn contract_path(&self) -> String {
        self.path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') && seg.ends_with('}') {
                    format!(
                        ":{}",
                        seg.trim_matches(|c| c == '{' || c == '}' || c == '*')
                    )
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Every route of the public listener, in docs order.
pub fn all() -> Vec<&'static RouteDoc> {
    let groups: &[&'static [RouteDoc]] = &[
        crate::routes::health::ROUTES,
        crate::routes::auth::ROUTES,
        crate::routes::user::ROUTES,
        crate::routes::users::ROUTES,
        crate::routes::invites::ROUTES,
        crate::routes::secrets::ROUTES,
        crate::routes::keys::ROUTES,
        crate::routes::limits::ROUTES,
        crate::routes::machine::ROUTES,
        crate::routes::describe::ROUTES,
        crate::routes::data::ROUTES,
        crate::routes::find::ROUTES,
        crate::routes::aggregate::ROUTES,
        crate::routes::bulk::ROUTES,
        crate::routes::bulk_export::ROUTES,
        crate::routes::bulk_import::ROUTES,
        crate::routes::trashed::ROUTES,
        crate::routes::stat::ROUTES,
        crate::docs::ROUTES,
    ];
    groups.iter().flat_map(|g| g.iter()).collect()
}
