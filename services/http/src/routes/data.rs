//! Routes of this surface (filled in by its issue work).
use crate::registry::RouteDoc;

pub const ROUTES: &[RouteDoc] = &[];
