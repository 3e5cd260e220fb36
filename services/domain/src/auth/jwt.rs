//! JWT (A3.2): HS256 with a `kid` header; a key ring signs with its first key and verifies
//! with any key still in it, so a secret rotates without logging anyone out.

use crate::{Error, ErrorCode};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Claims of every token. Optional claims are omitted when unset (clients read types strictly).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub user_id: String,
    pub username: String,
    pub tenant: String,
    pub tenant_id: String,
    pub access: String,
    pub auth_type: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sudo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fake: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faked_by_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faked_by_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faked_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
}

impl Claims {
    /// The claims every token carries, issued now for `ttl` seconds with a fresh `jti`;
    /// optional claims unset.
    pub fn issue(
        user_id: Uuid,
        username: &str,
        tenant: &str,
        tenant_id: Uuid,
        access: &str,
        auth_type: &str,
        ttl: i64,
    ) -> Claims {
        let iat = chrono::Utc::now().timestamp();
        Claims {
            iss: "abbotik".into(),
            sub: user_id.to_string(),
            user_id: user_id.to_string(),
            username: username.to_owned(),
            tenant: tenant.to_owned(),
            tenant_id: tenant_id.to_string(),
            access: access.to_owned(),
            auth_type: auth_type.to_owned(),
            iat,
            exp: iat + ttl,
            jti: Uuid::new_v4().to_string(),
            key_id: None,
            key_fingerprint: None,
            api_key_id: None,
            is_sudo: None,
            elevated_at: None,
            elevation_reason: None,
            is_fake: None,
            faked_by_user_id: None,
            faked_by_username: None,
            faked_at: None,
            token_use: None,
        }
    }

    pub fn tenant_uuid(&self) -> Result<Uuid, Error> {
        Uuid::parse_str(&self.tenant_id).map_err(|_| Error::new(ErrorCode::AuthTokenInvalid))
    }
    pub fn user_uuid(&self) -> Result<Uuid, Error> {
        Uuid::parse_str(&self.sub).map_err(|_| Error::new(ErrorCode::AuthTokenInvalid))
    }
}

/// The key ring: `(kid, secret)`, first one signs.
pub struct KeyRing {
    keys: Vec<(String, EncodingKey, DecodingKey)>,
}

impl KeyRing {
    pub fn new(keys: &[(String, Vec<u8>)]) -> Result<KeyRing, Error> {
        if keys.is_empty() {
            return Err(Error::internal("empty JWT key ring"));
        }
        Ok(KeyRing {
            keys: keys
                .iter()
                .map(|(kid, secret)| {
                    (
                        kid.clone(),
                        EncodingKey::from_secret(secret),
                        DecodingKey::from_secret(secret),
                    )
                })
                .collect(),
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let (kid, enc, _) = &self.keys[0];
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        encode(&header, claims, enc).map_err(Error::internal)
    }

    /// Verifies signature, `kid` and expiry. Errors: AUTH_TOKEN_INVALID / AUTH_TOKEN_EXPIRED.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let invalid = || Error::new(ErrorCode::AuthTokenInvalid);
        let header = decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::HS256 {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let (_, _, dec) = self
            .keys
            .iter()
            .find(|(k, _, _)| *k == kid)
            .ok_or_else(invalid)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_issuer(&["abbotik"]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        match decode::<Claims>(token, dec, &v) {
            Ok(d) => Ok(d.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Err(Error::new(ErrorCode::AuthTokenExpired))
                }
                _ => Err(invalid()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        let mut c = Claims::issue(
            Uuid::nil(),
            "alice",
            "acme",
            Uuid::nil(),
            "root",
            "username",
            0,
        );
        c.iat = 1;
        c.exp = exp;
        c
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = KeyRing::new(&[("k1".into(), b"a".repeat(32))]).unwrap();
        let t = old.sign(&claims(i64::MAX / 2)).unwrap();
        let rotated = KeyRing::new(&[
            ("k2".into(), b"b".repeat(32)),
            ("k1".into(), b"a".repeat(32)),
        ])
        .unwrap();
        assert!(rotated.verify(&t).is_ok());
        let gone = KeyRing::new(&[("k2".into(), b"b".repeat(32))]).unwrap();
        assert_eq!(
            gone.verify(&t).unwrap_err().code,
            ErrorCode::AuthTokenInvalid
        );
    }

    #[test]
    fn expired_and_tampered() {
        let ring = KeyRing::new(&[("k1".into(), b"a".repeat(32))]).unwrap();
        let t = ring.sign(&claims(10)).unwrap();
        assert_eq!(
            ring.verify(&t).unwrap_err().code,
            ErrorCode::AuthTokenExpired
        );
        let good = ring.sign(&claims(i64::MAX / 2)).unwrap();
        let mut bad = good.clone();
        bad.pop();
        bad.push('x');
        assert_eq!(
            ring.verify(&bad).unwrap_err().code,
            ErrorCode::AuthTokenInvalid
        );
        assert_eq!(
            ring.verify("nope").unwrap_err().code,
            ErrorCode::AuthTokenInvalid
        );
        // payload segment has no padding and exp/iat are integers
        let payload = good.split('.').nth(1).unwrap();
        assert!(!payload.contains('='));
    }
}
