//! A per-pod cache of bearer tokens whose signature already verified. Verification is a pure
//! function of the token text and the key ring (fixed for the process), so a hit skips the
//! HMAC and JSON decoding; expiry is still checked on every use, and identity is still
//! resolved from the database on every request. Only successfully verified tokens enter.

use super::Verified;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Past this many entries the cache starts over (a token costs one verification to re-enter).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(super) struct VerifiedCache {
    map: Mutex<HashMap<Box<str>, Arc<Verified>>>,
}

impl VerifiedCache {
    pub fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.map.lock().get(token).cloned()
    }

    pub fn insert(&self, token: &str, v: Arc<Verified>) {
        let mut m = self.map.lock();
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(token.into(), v);
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().remove(token);
    }
}
