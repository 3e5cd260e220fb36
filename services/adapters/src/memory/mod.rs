//! In-process adapters for embedded mode and unit tests.

pub mod ratelimit;
