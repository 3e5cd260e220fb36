//! Any input to the `where` parser (A6.3–A6.5) either parses or fails with a client error
//! of the FILTER_* / VALIDATION_* families — never a panic, never an internal error.

#![no_main]

use abbotik_domain::data::filter::parse_param;
use abbotik_fuzz::MODEL;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_param(&MODEL, text) {
        let code = e.code.as_str();
        assert!(
            code.starts_with("FILTER_") || code.starts_with("VALIDATION_"),
            "{code} for {text:?}"
        );
    }
});
