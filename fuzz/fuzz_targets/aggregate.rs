//! Any POST body to the aggregate parser (A7) either parses or fails with a client error of
//! the FILTER_* / VALIDATION_* families — never a panic, never an internal error.

#![no_main]

use abbotik_domain::data::parse_aggregate_body;
use abbotik_fuzz::MODEL;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Err(e) = parse_aggregate_body(&MODEL, &body) {
        let code = e.code.as_str();
        assert!(
            code.starts_with("FILTER_") || code.starts_with("VALIDATION_"),
            "{code} for {body}"
        );
    }
});
