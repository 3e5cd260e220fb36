//! The one timestamp serializer (A1.6): RFC 3339, UTC, `Z`, exactly 6 fractional digits.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A timestamp as every response shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    pub fn now() -> Self {
        Ts(Utc::now())
    }

    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(d: DateTime<Utc>) -> Self {
        Ts(d)
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Serializes `Option<Ts>` as the string or `null`.
pub fn format_opt(ts: Option<Ts>) -> serde_json::Value {
    ts.map_or(serde_json::Value::Null, |t| {
        serde_json::Value::String(t.to_rfc3339())
    })
}

/// Parses any RFC 3339 input and normalises it to UTC.
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| Ts(d.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn six_digits_and_z() {
        let t = parse_rfc3339("2026-05-06T16:03:21.4+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-06T14:03:21.400000Z");
        let t = parse_rfc3339("2026-05-06T14:03:21Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-06T14:03:21.000000Z");
    }
}
