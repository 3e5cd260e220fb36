//! Adapters: the concrete implementations of the domain ports.
//!
//! - [`postgres`]: pool, control-plane migrations, tenant schema DDL, embedded cluster manager,
//!   and the stores (the only place that emits SQL);
//! - [`memory`]: in-process twins for embedded mode and unit tests.

pub mod memory;
pub mod postgres;
