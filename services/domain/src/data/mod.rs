//! Data (A5): records.

/// Record reads and writes.
pub struct DataService {}
