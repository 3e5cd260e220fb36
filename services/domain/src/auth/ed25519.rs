//! Ed25519 material of machine auth (A3.4), pure and synchronous: public-key parsing (SPKI
//! PEM or base64 of the 44-byte SPKI DER), fingerprints, nonces, signature decoding and
//! strict verification. No I/O; every failure is the contract's code and never echoes input.

use crate::{Error, ErrorCode, Result};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The DER header of an Ed25519 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID 1.3.101.112 },
/// BIT STRING (0 unused bits) } — followed by the 32 key bytes.
pub const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Length of the whole SPKI DER.
pub const SPKI_LEN: usize = 44;
/// The only algorithm accepted (`algorithm` in request bodies).
pub const ALGORITHM: &str = "ed25519";

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// A parsed Ed25519 public key with its SPKI DER (what is stored) and fingerprint.
#[derive(Clone)]
pub struct PublicKey {
    der: [u8; SPKI_LEN],
    key: VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

fn key_invalid() -> Error {
    Error::msg(
        ErrorCode::KeyPublicKeyInvalid,
        "The public key is not an Ed25519 SPKI PEM or base64 SPKI DER",
    )
    .with_data(serde_json::json!({"field": "public_key"}))
}

/// Checks the optional `algorithm` of a request: absent or `ed25519` (ASCII case-insensitive).
pub fn check_algorithm(algorithm: Option<&str>) -> Result<()> {
    match algorithm {
        None => Ok(()),
        Some(a) if a.eq_ignore_ascii_case(ALGORITHM) => Ok(()),
        Some(_) => Err(Error::msg(
            ErrorCode::KeyAlgorithmUnsupported,
            "Only the ed25519 algorithm is supported",
        )
        .with_data(serde_json::json!({"field": "algorithm", "expected": ALGORITHM}))),
    }
}

/// Decodes base64 in either alphabet, padded or not. Whitespace anywhere is ignored (PEM
/// bodies and wrapped base64 carry line breaks). Mixed alphabets are rejected.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let body = compact.trim_end_matches('=');
    // At most two padding characters, and only where padding can be.
    if compact.len() - body.len() > 2 || body.is_empty() {
        return None;
    }
    let url = body.contains(['-', '_']);
    let std = body.contains(['+', '/']);
    match (url, std) {
        (true, true) => None,
        (true, false) => URL_SAFE_NO_PAD.decode(body).ok(),
        _ => STANDARD_NO_PAD.decode(body).ok(),
    }
}

impl PublicKey {
    /// Parses what a client sends as `public_key` / `new_public_key` (A3.4 step 1).
    pub fn parse(input: &str) -> Result<PublicKey> {
        let text = input.trim();
        let b64 = if let Some(rest) = text.strip_prefix(PEM_BEGIN) {
            rest.strip_suffix(PEM_END).ok_or_else(key_invalid)?
        } else if text.starts_with("-----") {
            // Another PEM label (RSA, EC, a private key …): never an Ed25519 SPKI.
            return Err(key_invalid());
        } else {
            text
        };
        let der = decode_b64(b64).ok_or_else(key_invalid)?;
        Self::from_der(&der)
    }

    /// Accepts exactly the 44-byte Ed25519 SPKI DER of a valid, non-weak point.
    pub fn from_der(der: &[u8]) -> Result<PublicKey> {
        let der: [u8; SPKI_LEN] = der.try_into().map_err(|_| key_invalid())?;
        if der[..SPKI_PREFIX.len()] != SPKI_PREFIX {
            return Err(key_invalid());
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&der[SPKI_PREFIX.len()..]);
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| key_invalid())?;
        // A small-order key would let any signature verify under the non-strict rules; strict
        // verification refuses it anyway, so it could never authenticate: refuse it up front.
        if key.is_weak() {
            return Err(key_invalid());
        }
        Ok(PublicKey { der, key })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `"fp_"` + the first 32 lowercase hex chars of SHA-256(SPKI DER) (A3.4 step 2).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }

    /// Strict Ed25519 (RFC 8032, no prehash, no context) over `message`: rejects
    /// non-canonical signatures and small-order components.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = Signature::from_bytes(signature);
        self.key.verify_strict(message, &sig).is_ok()
    }
}

/// The fingerprint of an SPKI DER.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    format!("fp_{}", &hex::encode(digest)[..32])
}

/// A challenge nonce: 32 bytes from the OS CSPRNG, base64url without padding (43 chars).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a signature sent as base64url or standard base64, padded or not; `None` unless it
/// is exactly 64 bytes (the caller answers `AUTH_SIGNATURE_INVALID`).
pub fn decode_signature(text: &str) -> Option<[u8; 64]> {
    let bytes = decode_b64(text.trim())?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signing() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn der_of(sk: &SigningKey) -> Vec<u8> {
        let mut d = SPKI_PREFIX.to_vec();
        d.extend_from_slice(sk.verifying_key().as_bytes());
        d
    }

    fn pem(der: &[u8], width: usize, eol: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("{PEM_BEGIN}{eol}{}{eol}{PEM_END}{eol}", lines.join(eol))
    }

    #[test]
    fn pem_with_any_line_breaks() {
        let der = der_of(&signing());
        let want = fingerprint(&der);
        for (w, eol) in [
            (64, "\n"),
            (64, "\r\n"),
            (7, "\n"),
            (1, "\r\n"),
            (100, "\n"),
        ] {
            let k = PublicKey::parse(&pem(&der, w, eol)).expect("pem parses");
            assert_eq!(k.fingerprint(), want);
            assert_eq!(k.der(), &der[..]);
        }
        // No trailing newline, leading whitespace.
        let p = pem(&der, 64, "\n");
        assert!(PublicKey::parse(&format!("  {}", p.trim_end())).is_ok());
    }

    #[test]
    fn base64_alphabets_and_padding() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        // Pick a key whose encodings differ between the alphabets.
        let mut seed = 0u8;
        let (der, std_text) = loop {
            let der = der_of(&SigningKey::from_bytes(&[seed; 32]));
            let t = STANDARD.encode(&der);
            if t.contains(['+', '/']) {
                break (der, t);
            }
            seed += 1;
        };
        let want = fingerprint(&der);
        for text in [
            std_text.clone(),
            STANDARD_NO_PAD.encode(&der),
            URL_SAFE.encode(&der),
            URL_SAFE_NO_PAD.encode(&der),
        ] {
            assert_eq!(
                PublicKey::parse(&text).unwrap().fingerprint(),
                want,
                "{text}"
            );
        }
        let mixed = std_text.replacen('+', "-", 1);
        if mixed.contains(['+', '/']) {
            assert!(PublicKey::parse(&mixed).is_err());
        }
    }

    #[test]
    fn refuses_everything_else() {
        let der = der_of(&signing());
        let code = |s: &str| PublicKey::parse(s).unwrap_err().code;
        assert_eq!(code(""), ErrorCode::KeyPublicKeyInvalid);
        assert_eq!(code("not base64 !!"), ErrorCode::KeyPublicKeyInvalid);
        // Raw 32-byte key without the SPKI header.
        let raw = URL_SAFE_NO_PAD.encode(signing().verifying_key().as_bytes());
        assert_eq!(code(&raw), ErrorCode::KeyPublicKeyInvalid);
        // X25519 OID (1.3.101.110) with the same layout.
        let mut x = der.clone();
        x[8] = 0x6e;
        assert_eq!(
            code(&STANDARD_NO_PAD.encode(&x)),
            ErrorCode::KeyPublicKeyInvalid
        );
        // Truncated / extended DER.
        assert_eq!(
            code(&STANDARD_NO_PAD.encode(&der[..43])),
            ErrorCode::KeyPublicKeyInvalid
        );
        let mut long = der.clone();
        long.push(0);
        assert_eq!(
            code(&STANDARD_NO_PAD.encode(&long)),
            ErrorCode::KeyPublicKeyInvalid
        );
        // Other PEM labels, and a PEM without its END line.
        let body = STANDARD_NO_PAD.encode(&der);
        assert_eq!(
            code(&format!(
                "-----BEGIN RSA PUBLIC KEY-----\n{body}\n-----END RSA PUBLIC KEY-----\n"
            )),
            ErrorCode::KeyPublicKeyInvalid
        );
        assert_eq!(
            code(&format!("{PEM_BEGIN}\n{body}\n")),
            ErrorCode::KeyPublicKeyInvalid
        );
        // Small-order point (the identity, y = 1).
        let mut weak = SPKI_PREFIX.to_vec();
        let mut y = [0u8; 32];
        y[0] = 1;
        weak.extend_from_slice(&y);
        assert_eq!(
            code(&STANDARD_NO_PAD.encode(&weak)),
            ErrorCode::KeyPublicKeyInvalid
        );
        // The message never echoes the input.
        let e = PublicKey::parse("secret-looking-input").unwrap_err();
        assert!(!e.message.unwrap_or_default().contains("secret"));
    }

    #[test]
    fn algorithm_rule() {
        assert!(check_algorithm(None).is_ok());
        assert!(check_algorithm(Some("ed25519")).is_ok());
        assert!(check_algorithm(Some("Ed25519")).is_ok());
        assert_eq!(
            check_algorithm(Some("rsa")).unwrap_err().code,
            ErrorCode::KeyAlgorithmUnsupported
        );
    }

    #[test]
    fn fingerprint_shape() {
        let fp = fingerprint(&der_of(&signing()));
        assert_eq!(fp.len(), 35);
        assert!(fp.starts_with("fp_"));
        assert!(fp[3..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn nonce_shape() {
        let a = new_nonce();
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn signatures_over_the_nonce_string() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let sk = signing();
        let key = PublicKey::from_der(&der_of(&sk)).unwrap();
        let nonce = new_nonce();
        let sig = sk.sign(nonce.as_bytes()).to_bytes();
        for text in [
            URL_SAFE_NO_PAD.encode(sig),
            URL_SAFE.encode(sig),
            STANDARD.encode(sig),
            STANDARD_NO_PAD.encode(sig),
        ] {
            let decoded = decode_signature(&text).expect("64 bytes");
            assert!(key.verify(nonce.as_bytes(), &decoded));
        }
        // Signing the decoded nonce bytes instead of the string does not verify.
        let raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        let wrong = sk.sign(&raw).to_bytes();
        assert!(!key.verify(nonce.as_bytes(), &wrong));
        // Another key's signature does not verify.
        let other = SigningKey::from_bytes(&[9u8; 32]).sign(nonce.as_bytes());
        assert!(!key.verify(nonce.as_bytes(), &other.to_bytes()));
        // Not 64 bytes, not base64.
        assert!(decode_signature(&URL_SAFE_NO_PAD.encode([0u8; 63])).is_none());
        assert!(decode_signature(&URL_SAFE_NO_PAD.encode([0u8; 65])).is_none());
        assert!(decode_signature("***").is_none());
        assert!(decode_signature("").is_none());
    }

    #[test]
    fn non_canonical_signature_is_refused() {
        // s >= L (the group order): strict verification must refuse it even if the
        // non-strict rule might reduce it.
        let sk = signing();
        let key = PublicKey::from_der(&der_of(&sk)).unwrap();
        let msg = b"hello";
        let mut sig = sk.sign(msg).to_bytes();
        assert!(key.verify(msg, &sig));
        // L = 2^252 + 27742317777372353535851937790883648493 (little endian); add L to s.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!key.verify(msg, &sig));
    }
}
