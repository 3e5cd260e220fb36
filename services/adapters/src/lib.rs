//! Adapters: the concrete implementations of the domain ports.
//!
//! - [`postgres`]: pool, control-plane migrations, tenant schema DDL, embedded cluster manager,
//!   and the stores (the only place that emits SQL);
//! - [`memory`]: in-process twins for embedded mode and unit tests;
//! - [`redis`], [`nats`], [`s3`]: the cluster-mode services (sessions and budgets, events and
//!   cron dispatch, file bytes), each with a readiness probe;
//! - [`local_disk`]: the S3 twin under `<data_dir>/blobs`.

pub mod local_disk;
pub mod memory;
pub mod nats;
pub mod postgres;
pub mod redis;
pub mod redis_ratelimit;
pub mod s3;
