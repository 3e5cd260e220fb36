//! Routes, one file per surface.
pub mod auth;
pub mod data;
pub mod describe;
pub mod health;
pub mod limits;
pub mod machine;
pub mod stat;
pub mod trashed;
pub mod user;
