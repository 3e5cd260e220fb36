//! The blob port: opaque bytes by key (file contents of `/fs`, export staging, …).
//!
//! Adapters: S3 (cluster mode) and local disk under `<data_dir>/blobs` (embedded mode and
//! `ABBOTIK_SINGLE_NODE`). Keys are made by the server, never taken verbatim from a client, but
//! they are still validated here so that no adapter can be tricked into leaving its root
//! (`..`, absolute paths, empty segments).

use crate::{Error, Result};

/// Longest key accepted (S3 allows 1024 bytes; we keep the same bound everywhere).
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated blob key: `/`-separated segments of `[A-Za-z0-9._=-]`, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates `raw`. A bad key is a server bug (keys are built by the server), so the error
    /// is `INTERNAL` with the reason kept for the log.
    pub fn parse(raw: &str) -> Result<BlobKey> {
        if raw.is_empty() || raw.len() > MAX_KEY_BYTES {
            return Err(Error::internal(format!(
                "blob key must be 1..={MAX_KEY_BYTES} bytes"
            )));
        }
        for seg in raw.split('/') {
            let ok_chars = seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'='));
            if seg.is_empty() || seg == "." || seg == ".." || !ok_chars {
                return Err(Error::internal(format!("invalid blob key segment {seg:?}")));
            }
        }
        Ok(BlobKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, for adapters that map keys onto directories.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `head` and `put` report about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    /// Store-specific version tag (S3 ETag); `None` when the store has none.
    pub etag: Option<String>,
}

/// Opaque bytes by key. Every operation is idempotent: `delete` of a missing key succeeds, and
/// `get`/`head` of a missing key answer `None`. An unreachable store is `SERVICE_UNAVAILABLE`.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing any previous value atomically (readers see the old
    /// or the new bytes, never a mix).
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>) -> Result<BlobMeta>;
    async fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>>;
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>>;
    async fn delete(&self, key: &BlobKey) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in ["a", "t/acme/blobs/0c3e.bin", "x=1/y_2-3.z"] {
            assert_eq!(BlobKey::parse(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../x",
            "a/./b",
            "a b",
            "a\\b",
            "é",
            long.as_str(),
        ] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
