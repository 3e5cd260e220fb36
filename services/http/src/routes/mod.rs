//! Routes, one file per surface.
pub mod aggregate;
pub mod auth;
pub mod bulk;
pub mod bulk_export;
pub mod data;
pub mod describe;
pub mod find;
pub mod health;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod machine;
pub mod secrets;
pub mod stat;
pub mod trashed;
pub mod user;
pub mod users;
