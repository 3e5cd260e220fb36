//! User secrets (A3.8a): AES-256-GCM under a key-encryption-key ring, the body rules of the
//! `/api/user/secrets` routes, and the service that ties them to the [`SecretStore`] port.
//!
//! Every value is sealed with a fresh 96-bit nonce and the tenant id, user id and secret name
//! as associated data, so a ciphertext copied into another row (another user, tenant or
//! name) does not open. Rows remember the `kek_id` that sealed them; `rekey` re-seals the
//! rows that are not under the ring's first key. Values never reach logs or errors: the
//! only way out is [`SecretsService::reveal`].

use crate::ports::secrets::{NewSecret, SecretMeta, SecretPatch, SecretStore};
use crate::{ident, Error, ErrorCode, Result, TenantCtx};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Largest secret value, in bytes (A3.8a: 64 KiB).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// One key-encryption key: its id and the AES-256 key.
struct Kek {
    id: String,
    cipher: Aes256Gcm,
}

/// The KEK ring of `ABBOTIK_SECRETS_KEK`: the first key seals, every key opens.
pub struct KekRing {
    keys: Vec<Kek>,
}

impl std::fmt::Debug for KekRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "KekRing({ids:?})")
    }
}

/// A sealed value: which key, the nonce and the ciphertext (with its tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub kek_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl KekRing {
    /// Parses `kid:base64key[,kid:base64key…]` (each key exactly 32 bytes, standard or URL-safe
    /// base64, padded or not; kids unique). The message names the problem, never a key.
    pub fn parse(raw: &str) -> std::result::Result<KekRing, String> {
        let mut keys: Vec<Kek> = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kid, b64) = item
                .split_once(':')
                .ok_or("expected kid:base64key[,kid:base64key…]")?;
            let kid = kid.trim();
            if kid.is_empty()
                || !kid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return Err("a kid must be non-empty [A-Za-z0-9_.-]".into());
            }
            if keys.iter().any(|k| k.id == kid) {
                return Err(format!("kid {kid} appears twice"));
            }
            let bytes = decode_b64(b64.trim()).ok_or(format!("key {kid} is not base64"))?;
            if bytes.len() != 32 {
                return Err(format!("key {kid} must be 32 bytes, not {}", bytes.len()));
            }
            keys.push(Kek {
                id: kid.to_owned(),
                cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            });
        }
        if keys.is_empty() {
            return Err("no key given".into());
        }
        Ok(KekRing { keys })
    }

    /// A fresh ring value `kid:base64key` with 32 random bytes (embedded mode, once).
    pub fn generate(kid: &str) -> String {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        format!(
            "{kid}:{}",
            base64::engine::general_purpose::STANDARD.encode(k)
        )
    }

    /// The id of the sealing key.
    pub fn current(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `value` under the first key with a fresh nonce, bound to `aad`.
    pub fn seal(&self, value: &[u8], aad: &[u8]) -> Result<Sealed> {
        use rand::RngCore;
        let k = &self.keys[0];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = k
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: value, aad })
            .map_err(|_| Error::internal("secret encryption failed"))?;
        Ok(Sealed {
            kek_id: k.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens a sealed value; an unknown key, a wrong nonce length, tampering or an `aad` of
    /// another row all fail the same way (an internal error: the row cannot be trusted).
    pub fn open(&self, s: &Sealed, aad: &[u8]) -> Result<Vec<u8>> {
        let k = self.keys.iter().find(|k| k.id == s.kek_id).ok_or_else(|| {
            Error::internal(format!("secret sealed under unknown kek {}", s.kek_id))
        })?;
        if s.nonce.len() != 12 {
            return Err(Error::internal("secret row has a malformed nonce"));
        }
        k.cipher
            .decrypt(
                Nonce::from_slice(&s.nonce),
                Payload {
                    msg: &s.ciphertext,
                    aad,
                },
            )
            .map_err(|_| Error::internal("secret does not decrypt (wrong key or moved row)"))
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The associated data of one row: tenant, user and name, length-free but unambiguous
/// (UUIDs are fixed-length and names cannot contain the separator).
pub fn aad(tenant_id: Uuid, user_id: Uuid, name: &str) -> Vec<u8> {
    format!("abbotik-secret-v1\n{tenant_id}\n{user_id}\n{name}").into_bytes()
}

/// A secret name: the field name rule of A1.8, else `400 SECRET_NAME_INVALID`.
pub fn secret_name(s: &str) -> Result<String> {
    ident::field_name(s)
        .map(|i| i.as_str().to_owned())
        .map_err(|_| {
            Error::msg(
                ErrorCode::SecretNameInvalid,
                format!("Invalid secret name: {}", ident::clip(s)),
            )
            .with_data(json!({"name": ident::clip(s)}))
        })
}

/// The body keys of a create or update (`null` = absent, A1.1).
#[derive(Debug, Default)]
pub struct SecretBody {
    pub name: Option<String>,
    pub value: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

fn opt_string(b: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::field_invalid(key, "a string")),
    }
}

/// Parses a secrets body. `value` over [`MAX_VALUE_BYTES`] → `413 SECRET_TOO_LARGE`.
pub fn parse_body(body: Option<Value>) -> Result<SecretBody> {
    let b = match body {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::new(ErrorCode::ValidationBodyNotObject)),
    };
    let value = opt_string(&b, "value")?;
    if let Some(v) = &value {
        if v.len() > MAX_VALUE_BYTES {
            return Err(Error::msg(
                ErrorCode::SecretTooLarge,
                format!(
                    "Secret value is {} bytes; at most {MAX_VALUE_BYTES}",
                    v.len()
                ),
            )
            .with_data(json!({"limit_bytes": MAX_VALUE_BYTES})));
        }
    }
    let metadata = match b.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(Error::field_invalid("metadata", "a JSON object")),
    };
    Ok(SecretBody {
        name: opt_string(&b, "name")?,
        value,
        kind: opt_string(&b, "kind")?,
        description: opt_string(&b, "description")?,
        metadata,
    })
}

/// The metadata object of A3.8a (never the value).
pub fn meta_json(m: &SecretMeta) -> Value {
    json!({
        "name": m.name,
        "kind": m.kind,
        "description": m.description,
        "metadata": Value::Object(m.metadata.clone()),
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "last_used_at": m.last_used_at,
    })
}

fn not_found(name: &str) -> Error {
    Error::msg(ErrorCode::SecretNotFound, format!("No secret named {name}"))
        .with_data(json!({"name": name}))
}

/// What `rekey` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RekeyReport {
    pub tenants: usize,
    pub rekeyed: usize,
}

/// The `/api/user/secrets` rules over a [`SecretStore`]. Every route acts on the caller's
/// own secrets (`ctx.user_id`; for an impersonation token, the target's).
pub struct SecretsService {
    store: Arc<dyn SecretStore>,
    ring: Arc<KekRing>,
}

impl SecretsService {
    pub fn new(store: Arc<dyn SecretStore>, ring: Arc<KekRing>) -> Self {
        Self { store, ring }
    }

    /// `GET /api/user/secrets`: metadata, by name.
    pub async fn list(&self, ctx: &TenantCtx) -> Result<Value> {
        let rows = self.store.list(&ctx.schema, ctx.user_id).await?;
        Ok(Value::Array(rows.iter().map(meta_json).collect()))
    }

    /// `POST /api/user/secrets` → 201 metadata; a taken name → `409 SECRET_EXISTS`.
    pub async fn create(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        let b = parse_body(body)?;
        let raw_name = b
            .name
            .as_deref()
            .ok_or_else(|| Error::field_missing("name"))?;
        let name = secret_name(raw_name)?;
        let value = b.value.ok_or_else(|| Error::field_missing("value"))?;
        let sealed = self
            .ring
            .seal(value.as_bytes(), &aad(ctx.tenant_id, ctx.user_id, &name))?;
        let meta = self
            .store
            .insert(
                &ctx.schema,
                ctx.user_id,
                NewSecret {
                    name: name.clone(),
                    kind: b.kind,
                    description: b.description,
                    metadata: b.metadata.unwrap_or_default(),
                    sealed,
                },
            )
            .await?
            .ok_or_else(|| {
                Error::msg(
                    ErrorCode::SecretExists,
                    format!("A secret named {name} already exists"),
                )
                .with_data(json!({"name": name}))
            })?;
        Ok(meta_json(&meta))
    }

    /// `PUT /api/user/secrets/:name`: creates (needs `value`) or updates; sent keys replace,
    /// omitted keys are kept.
    pub async fn put(&self, ctx: &TenantCtx, raw_name: &str, body: Option<Value>) -> Result<Value> {
        let name = secret_name(raw_name)?;
        let b = parse_body(body)?;
        let sealed = match &b.value {
            Some(v) => Some(
                self.ring
                    .seal(v.as_bytes(), &aad(ctx.tenant_id, ctx.user_id, &name))?,
            ),
            None => None,
        };
        let patch = SecretPatch {
            kind: b.kind,
            description: b.description,
            metadata: b.metadata,
            sealed,
        };
        if let Some(meta) = self
            .store
            .update(&ctx.schema, ctx.user_id, &name, &patch)
            .await?
        {
            return Ok(meta_json(&meta));
        }
        // Not there yet: a create, which needs the value.
        let sealed = patch.sealed.ok_or_else(|| Error::field_missing("value"))?;
        let new = NewSecret {
            name: name.clone(),
            kind: patch.kind,
            description: patch.description,
            metadata: patch.metadata.unwrap_or_default(),
            sealed,
        };
        match self.store.insert(&ctx.schema, ctx.user_id, new).await? {
            Some(meta) => Ok(meta_json(&meta)),
            // Created concurrently by another request: this one wins as an update.
            None => {
                let again = SecretPatch {
                    kind: None,
                    description: None,
                    metadata: None,
                    sealed: None,
                };
                let meta = self
                    .store
                    .update(&ctx.schema, ctx.user_id, &name, &again)
                    .await?
                    .ok_or_else(|| not_found(&name))?;
                Ok(meta_json(&meta))
            }
        }
    }

    /// `DELETE /api/user/secrets/:name` → the metadata of the removed secret.
    pub async fn delete(&self, ctx: &TenantCtx, raw_name: &str) -> Result<Value> {
        let name = secret_name(raw_name)?;
        let meta = self
            .store
            .delete(&ctx.schema, ctx.user_id, &name)
            .await?
            .ok_or_else(|| not_found(&name))?;
        Ok(meta_json(&meta))
    }

    /// `POST /api/user/secrets/:name/reveal`: the owner's own token only (never an
    /// impersonation token); audited without the value.
    pub async fn reveal(&self, ctx: &TenantCtx, raw_name: &str) -> Result<Value> {
        if ctx.auth.is_fake {
            tracing::warn!(
                target: "audit",
                event = "secret_reveal_refused",
                tenant = %ctx.tenant,
                user_id = %ctx.user_id,
                faked_by = ?ctx.auth.faked_by,
                request_id = %ctx.request_id,
                "secret reveal refused for an impersonation token"
            );
            return Err(Error::msg(
                ErrorCode::SecretForbidden,
                "Secrets are revealed only with the owner's own token",
            ));
        }
        let name = secret_name(raw_name)?;
        let row = self
            .store
            .get(&ctx.schema, ctx.user_id, &name)
            .await?
            .ok_or_else(|| not_found(&name))?;
        let plain = self
            .ring
            .open(&row.sealed, &aad(ctx.tenant_id, ctx.user_id, &name))?;
        let value = String::from_utf8(plain).map_err(|_| Error::internal("secret is not UTF-8"))?;
        self.store.touch(&ctx.schema, ctx.user_id, &name).await?;
        tracing::info!(
            target: "audit",
            event = "secret_reveal",
            tenant = %ctx.tenant,
            user_id = %ctx.user_id,
            secret = %name,
            auth_type = ctx.auth.auth_type.as_str(),
            request_id = %ctx.request_id,
            "secret revealed"
        );
        Ok(json!({"name": name, "value": value}))
    }

    /// `abbot-api secrets rekey`: re-seals, under the ring's first key, every row of every
    /// tenant (or of the named tenants only) whose `kek_id` is another one.
    pub async fn rekey(&self, only: Option<&[String]>) -> Result<RekeyReport> {
        let current = self.ring.current().to_owned();
        let mut report = RekeyReport::default();
        for t in self.store.tenants().await? {
            if only.is_some_and(|names| !names.iter().any(|n| n == t.name.as_str())) {
                continue;
            }
            report.tenants += 1;
            let schema = ident::tenant_schema(&t.name);
            for row in self.store.stale(&schema, &current).await? {
                let aad = aad(t.id, row.user_id, &row.name);
                let plain = self.ring.open(&row.sealed, &aad)?;
                let sealed = self.ring.seal(&plain, &aad)?;
                if self
                    .store
                    .reseal(&schema, row.user_id, &row.name, &row.sealed, &sealed)
                    .await?
                {
                    report.rekeyed += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn ring_parses_and_rejects() {
        let r = KekRing::parse(K1).unwrap();
        assert_eq!(r.current(), "k1");
        let two = format!("{},{K1}", KekRing::generate("k2"));
        let r = KekRing::parse(&two).unwrap();
        assert_eq!(r.current(), "k2");
        assert!(KekRing::parse("").is_err());
        assert!(KekRing::parse("k1").is_err());
        assert!(KekRing::parse("k1:c2hvcnQ=")
            .unwrap_err()
            .contains("32 bytes"));
        assert!(KekRing::parse(&format!("{K1},{K1}")).is_err());
        assert!(KekRing::parse(":AAAA").is_err());
        assert!(!format!("{r:?}").contains("AAAA"));
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let r = KekRing::parse(&KekRing::generate("a")).unwrap();
        let (t, u) = (Uuid::new_v4(), Uuid::new_v4());
        let s = r.seal(b"ghp_secret", &aad(t, u, "github")).unwrap();
        assert_eq!(s.nonce.len(), 12);
        assert_ne!(s.ciphertext, b"ghp_secret");
        assert_eq!(r.open(&s, &aad(t, u, "github")).unwrap(), b"ghp_secret");
        // Another row's associated data does not open it.
        assert!(r.open(&s, &aad(t, u, "gitlab")).is_err());
        assert!(r.open(&s, &aad(t, Uuid::new_v4(), "github")).is_err());
        assert!(r.open(&s, &aad(Uuid::new_v4(), u, "github")).is_err());
        // Fresh nonce on every write.
        let s2 = r.seal(b"ghp_secret", &aad(t, u, "github")).unwrap();
        assert_ne!(s.nonce, s2.nonce);
        // Tampering fails.
        let mut bad = s.clone();
        bad.ciphertext[0] ^= 1;
        assert!(r.open(&bad, &aad(t, u, "github")).is_err());
    }

    #[test]
    fn old_keys_open_new_key_seals() {
        let old = KekRing::generate("old");
        let r1 = KekRing::parse(&old).unwrap();
        let r2 = KekRing::parse(&format!("{},{old}", KekRing::generate("new"))).unwrap();
        let a = aad(Uuid::nil(), Uuid::nil(), "x");
        let s = r1.seal(b"v", &a).unwrap();
        assert_eq!(r2.open(&s, &a).unwrap(), b"v");
        assert_eq!(r2.seal(b"v", &a).unwrap().kek_id, "new");
        let only_new = KekRing::parse(&KekRing::generate("new")).unwrap();
        assert!(only_new.open(&s, &a).is_err());
    }

    #[test]
    fn body_rules() {
        assert_eq!(secret_name("github_token").unwrap(), "github_token");
        assert_eq!(
            secret_name("Bad-Name").unwrap_err().code,
            ErrorCode::SecretNameInvalid
        );
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(
            parse_body(Some(json!({"value": big}))).unwrap_err().code,
            ErrorCode::SecretTooLarge
        );
        let ok = "x".repeat(MAX_VALUE_BYTES);
        assert!(parse_body(Some(json!({"value": ok}))).is_ok());
        assert_eq!(
            parse_body(Some(json!({"metadata": [1]}))).unwrap_err().code,
            ErrorCode::ValidationFieldInvalid
        );
        let b = parse_body(Some(json!({"kind": null, "metadata": {"a": 1}}))).unwrap();
        assert!(b.kind.is_none());
        assert_eq!(b.metadata.unwrap()["a"], 1);
        assert_eq!(
            parse_body(Some(json!([]))).unwrap_err().code,
            ErrorCode::ValidationBodyNotObject
        );
    }
}
