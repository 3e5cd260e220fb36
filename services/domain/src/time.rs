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

/// Whether `s` is already in the one output format (`2026-05-06T14:03:21.482913Z`) and names
/// a real instant: such input needs no parsing and re-formatting (bulk import reads millions).
pub fn is_canonical(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 27 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0')))
    };
    let shape = b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && digits(20..26);
    shape
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 60
        && chrono::NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10)).is_some()
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
        assert!(is_canonical("2026-05-06T14:03:21.000000Z"));
        for bad in [
            "2026-05-06T14:03:21.00000Z",
            "2026-02-30T14:03:21.000000Z",
            "2026-05-06T24:03:21.000000Z",
            "2026-05-06T14:03:21.000000+",
            "2026-05-06 14:03:21.000000Z",
            "2026-0a-06T14:03:21.000000Z",
        ] {
            assert!(!is_canonical(bad), "{bad}");
        }
    }
}
