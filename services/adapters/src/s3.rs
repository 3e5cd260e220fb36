//! S3 (cluster mode): the [`BlobStore`] for `/fs` file bytes and transfer staging, on AWS or
//! any S3-compatible server (MinIO, s3s, R2 …).
//!
//! Object calls go through `object_store` (SigV4, retries, the standard `AWS_*` credential
//! chain including web identity / IRSA). Readiness is a real `HeadBucket`, signed with the
//! same credentials: `object_store` has no bucket-level call, and a `HEAD` on an object cannot
//! tell a missing bucket from a missing key.
//!
//! Addressing: virtual-hosted style only on AWS's own endpoint (no `ABBOTIK_S3_ENDPOINT`) when
//! `ABBOTIK_S3_FORCE_PATH_STYLE` is false; with a custom endpoint requests are path-style,
//! which every S3-compatible server accepts.

use abbotik_domain::ports::blob::{BlobKey, BlobMeta, BlobStore};
use abbotik_domain::{Error, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use std::time::Duration;

/// Where the bucket is and how to reach it (from `ABBOTIK_S3_*`; credentials from `AWS_*`
/// unless given here).
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` = AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub force_path_style: bool,
    /// Static credentials; `None` = the standard AWS chain (`AWS_ACCESS_KEY_ID`, IRSA, …).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl S3Config {
    fn virtual_hosted(&self) -> bool {
        self.endpoint.is_none() && !self.force_path_style
    }

    /// The URL `HeadBucket` is sent to.
    fn bucket_url(&self) -> String {
        match (&self.endpoint, self.virtual_hosted()) {
            (Some(ep), _) => format!("{}/{}", ep.trim_end_matches('/'), self.bucket),
            (None, true) => format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region),
            (None, false) => format!("https://s3.{}.amazonaws.com/{}", self.region, self.bucket),
        }
    }
}

/// A bucket as a [`BlobStore`].
#[derive(Clone)]
pub struct S3BlobStore {
    store: AmazonS3,
    cfg: S3Config,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3BlobStore({})", self.cfg.bucket)
    }
}

impl S3BlobStore {
    /// Builds the client; does not contact the server (an outage only degrades `/ready`).
    pub fn new(cfg: S3Config) -> anyhow::Result<S3BlobStore> {
        let allow_http = cfg
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(cfg.virtual_hosted())
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
                ..RetryConfig::default()
            });
        if let Some(ep) = &cfg.endpoint {
            b = b.with_endpoint(ep.trim_end_matches('/'));
        }
        if let (Some(k), Some(s)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        let store = b
            .build()
            .map_err(|e| anyhow::anyhow!("S3 configuration: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(S3BlobStore { store, cfg, http })
    }

    pub fn bucket(&self) -> &str {
        &self.cfg.bucket
    }

    /// Readiness: a signed `HeadBucket` answers 2xx (bucket exists and the credentials may use it).
    pub async fn head_bucket(&self) -> Result<()> {
        let cred = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| Error::unavailable(format!("s3: credentials: {e}")))?;
        let url = self.cfg.bucket_url();
        let mut req = http::Request::builder()
            .method(http::Method::HEAD)
            .uri(&url)
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| Error::unavailable(format!("s3: bucket url: {e}")))?;
        AwsAuthorizer::new(&cred, "s3", &self.cfg.region).authorize(&mut req, None);
        let mut rb = self.http.head(&url);
        for (name, value) in req.headers() {
            rb = rb.header(name.as_str(), value.as_bytes());
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| Error::unavailable(format!("s3: HeadBucket: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "s3: HeadBucket {} answered {status}",
                self.cfg.bucket
            )))
        }
    }
}

fn path(key: &BlobKey) -> ObjPath {
    // BlobKey segments are already safe; `from` keeps them verbatim.
    ObjPath::from(key.as_str())
}

fn s3_err(op: &str, e: object_store::Error) -> Error {
    Error::unavailable(format!("s3: {op}: {e}"))
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>) -> Result<BlobMeta> {
        let size = bytes.len() as u64;
        let r = self
            .store
            .put(&path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| s3_err("put", e))?;
        Ok(BlobMeta {
            size,
            etag: r.e_tag,
        })
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>> {
        match self.store.get(&path(key)).await {
            Ok(r) => {
                let b = r.bytes().await.map_err(|e| s3_err("get", e))?;
                Ok(Some(b.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err("get", e)),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        match self.store.head(&path(key)).await {
            Ok(m) => Ok(Some(BlobMeta {
                size: m.size,
                etag: m.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err("head", e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        match self.store.delete(&path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_err("delete", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: Option<&str>, force: bool) -> S3Config {
        S3Config {
            bucket: "files".into(),
            endpoint: endpoint.map(str::to_owned),
            region: "eu-west-1".into(),
            force_path_style: force,
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("very-secret".into()),
        }
    }

    #[test]
    fn bucket_urls_follow_the_addressing_style() {
        assert_eq!(
            cfg(None, false).bucket_url(),
            "https://files.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            cfg(None, true).bucket_url(),
            "https://s3.eu-west-1.amazonaws.com/files"
        );
        assert_eq!(
            cfg(Some("http://127.0.0.1:9000/"), false).bucket_url(),
            "http://127.0.0.1:9000/files"
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = cfg(Some("http://127.0.0.1:9000"), true);
        assert!(!format!("{c:?}").contains("very-secret"));
        let s = S3BlobStore::new(c).unwrap();
        assert_eq!(format!("{s:?}"), "S3BlobStore(files)");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_unavailable() {
        let s = S3BlobStore::new(cfg(Some("http://127.0.0.1:1"), true)).unwrap();
        let e = s.head_bucket().await.unwrap_err();
        assert_eq!(e.code, abbotik_domain::ErrorCode::ServiceUnavailable);
    }
}
