//! The local-disk [`BlobStore`]: the S3 twin for embedded mode and `ABBOTIK_SINGLE_NODE`.
//!
//! Blobs live under `<data_dir>/blobs/<key>`. A put writes a temporary file in
//! `<root>/.tmp` and renames it over the target, so a reader sees the old or the new bytes,
//! never a partial file. Keys are validated [`BlobKey`]s, so no path can leave the root.

use abbotik_domain::ports::blob::{BlobKey, BlobMeta, BlobStore};
use abbotik_domain::{Error, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Blobs as files under one root directory.
#[derive(Debug, Clone)]
pub struct LocalDiskBlobStore {
    root: PathBuf,
}

impl LocalDiskBlobStore {
    /// The store for a data dir: `<data_dir>/blobs`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("blobs"))
    }

    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root (and its temp dir) and checks that it is writable: the readiness probe.
    pub async fn ensure_ready(&self) -> Result<()> {
        let tmp = self.root.join(".tmp");
        tokio::fs::create_dir_all(&tmp).await.map_err(io_err)?;
        let probe = tmp.join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&probe, b"ok").await.map_err(io_err)?;
        tokio::fs::remove_file(&probe).await.map_err(io_err)?;
        Ok(())
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        let mut p = self.root.clone();
        for seg in key.segments() {
            p.push(seg);
        }
        p
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::unavailable(format!("blob store (local disk): {e}"))
}

#[async_trait::async_trait]
impl BlobStore for LocalDiskBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>) -> Result<BlobMeta> {
        let target = self.path_of(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
        }
        let tmp_dir = self.root.join(".tmp");
        tokio::fs::create_dir_all(&tmp_dir).await.map_err(io_err)?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        let size = bytes.len() as u64;
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&bytes).await?;
            // Durable before it becomes visible under its key.
            f.sync_all().await?;
            drop(f);
            tokio::fs::rename(&tmp, &target).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_err(e));
        }
        Ok(BlobMeta { size, etag: None })
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                size: m.len(),
                etag: None,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root() -> PathBuf {
        std::env::temp_dir().join(format!("abbotik-blobs-{}", uuid::Uuid::new_v4().simple()))
    }

    #[tokio::test]
    async fn put_get_head_delete_roundtrip() {
        let root = temp_root();
        let store = LocalDiskBlobStore::new(root.clone());
        store.ensure_ready().await.unwrap();
        let key = BlobKey::parse("t/acme/obj-1.bin").unwrap();

        assert_eq!(store.get(&key).await.unwrap(), None);
        assert_eq!(store.head(&key).await.unwrap(), None);

        let meta = store.put(&key, b"hello".to_vec()).await.unwrap();
        assert_eq!(meta.size, 5);
        assert_eq!(
            store.get(&key).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(store.head(&key).await.unwrap().map(|m| m.size), Some(5));

        // Replace: the new bytes win, no temp file is left behind.
        store.put(&key, vec![0u8; 1000]).await.unwrap();
        assert_eq!(store.head(&key).await.unwrap().map(|m| m.size), Some(1000));
        let mut tmp = tokio::fs::read_dir(root.join(".tmp")).await.unwrap();
        assert!(tmp.next_entry().await.unwrap().is_none());

        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);

        // A directory named like a key is not a blob.
        let dir_key = BlobKey::parse("t/acme").unwrap();
        assert_eq!(store.head(&dir_key).await.unwrap(), None);

        tokio::fs::remove_dir_all(&root).await.unwrap();
    }

    #[test]
    fn data_dir_layout() {
        let s = LocalDiskBlobStore::for_data_dir(Path::new("/var/lib/abbotik"));
        assert_eq!(s.root(), Path::new("/var/lib/abbotik/blobs"));
    }
}
