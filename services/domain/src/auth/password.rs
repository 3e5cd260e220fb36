//! Password hashing (A3.3): argon2id PHC strings, m=19456 KiB, t=2, p=1, 16-byte salt.
//! Unknown users and tenants are verified against a dummy hash so timing says nothing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;

fn argon() -> Argon2<'static> {
    let params = Params::new(19456, 2, 1, None).expect("static argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash("dummy password for timing").unwrap_or_default());

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String, crate::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(crate::Error::internal)
}

/// Verifies a password; `None` stands for "no such user" and burns the same time.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let (target, real) = match phc {
        Some(p) => (p, true),
        None => (DUMMY.as_str(), false),
    };
    let ok = PasswordHash::new(target)
        .map(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false);
    ok && real
}

/// 8–1024 characters (A3.3).
pub fn valid_length(password: &str) -> bool {
    (8..=1024).contains(&password.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("wrong", Some(&h)));
        assert!(!verify("dummy password for timing", None));
        assert!(!valid_length("short"));
        assert!(valid_length("12345678"));
    }
}
