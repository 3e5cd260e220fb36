//! Abbotik domain: the rules of the product, independent of HTTP and of storage.
//!
//! - names ([`ident`]), roles ([`Role`]), the caller's [`TenantCtx`], timestamps ([`time`]);
//! - model and field definitions ([`model`]) and the describe rules ([`describe`]);
//! - record validation and data rules ([`data`]); auth rules ([`auth`]);
//! - ports ([`ports`]): traits the adapters implement, each with a real and an in-memory twin.

pub mod auth;
pub mod body;
pub mod clock;
mod codes;
pub mod ctx;
pub mod data;
pub mod describe;
mod error;
pub mod ident;
pub mod model;
pub mod ports;
pub mod ratelimit;
mod role;
pub mod secrets;
pub mod time;
pub mod transfer;
pub mod users;

pub use codes::ErrorCode;
pub use ctx::{AuthInfo, AuthType, TenantCtx};
pub use error::{Error, Result};
pub use ident::Ident;
pub use role::Role;
