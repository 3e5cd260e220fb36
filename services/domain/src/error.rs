//! The domain error: a stable [`ErrorCode`], an optional specific sentence and context data.
//! Mapping to HTTP status, remediation and docs happens only in `abbotik-http`.

use crate::ErrorCode;
use serde_json::Value;

/// Result alias used across the domain and adapters.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error safe to show a client. `internal` carries the cause for logs only.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: ErrorCode,
    /// Specific human sentence; `None` means the table's default sentence.
    pub message: Option<String>,
    /// Context object for the envelope's `data`.
    pub data: Option<Value>,
    /// Cause for the log line; never sent to clients.
    pub internal: Option<String>,
}

impl Error {
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: None,
            data: None,
            internal: None,
        }
    }

    pub fn msg(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code).with_message(message)
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// An unexpected failure: the client sees `INTERNAL`, the log sees the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::Internal);
        e.internal = Some(cause.to_string());
        e
    }

    /// A backing service is unreachable.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::ServiceUnavailable);
        e.internal = Some(cause.to_string());
        e
    }

    pub fn with_internal(mut self, cause: impl std::fmt::Display) -> Self {
        self.internal = Some(cause.to_string());
        self
    }

    /// `VALIDATION_FIELD_MISSING` naming the absent request field.
    pub fn field_missing(field: &str) -> Self {
        Self::msg(
            ErrorCode::ValidationFieldMissing,
            format!("Missing required field: {field}"),
        )
        .with_data(serde_json::json!({ "field": field }))
    }

    /// `VALIDATION_FIELD_INVALID` naming the field and what was expected.
    pub fn field_invalid(field: &str, expected: &str) -> Self {
        Self::msg(
            ErrorCode::ValidationFieldInvalid,
            format!("Invalid value for {field}: expected {expected}"),
        )
        .with_data(serde_json::json!({ "field": field, "expected": expected }))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(i) = &self.internal {
            write!(f, " ({i})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
