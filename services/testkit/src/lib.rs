//! Test support (filled in with the harness).
