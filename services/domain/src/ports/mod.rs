//! Ports: the traits adapters implement. Each external system sits behind one, with a real
//! adapter and an in-memory twin.

pub mod aggregate;
pub mod api_keys;
pub mod auth;
pub mod blob;
pub mod describe;
pub mod import;
pub mod janitor;
pub mod machine;
pub mod ratelimit;
pub mod records;
pub mod secrets;
pub mod unit;
pub mod users;
