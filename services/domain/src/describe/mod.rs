//! Describe (A4): models and fields.

/// Models and fields of a tenant, with a per-pod metadata cache.
pub struct DescribeService {}
