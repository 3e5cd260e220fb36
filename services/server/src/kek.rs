//! The user-secrets key ring (A3.8a, B10): `ABBOTIK_SECRETS_KEK` when set (required in
//! cluster mode), else — embedded mode — one key generated on first start into
//! `<data_dir>/secrets.kek` (mode 0600) and reused on every start. Key bytes never print.

use crate::config::Config;
use abbotik_domain::secrets::KekRing;
use anyhow::Context;

/// The ring the server encrypts secrets with.
pub fn ring(cfg: &Config) -> anyhow::Result<KekRing> {
    let raw = match &cfg.secrets_kek {
        Some(s) => s.0.clone(),
        None => embedded_key(cfg)?,
    };
    KekRing::parse(&raw).map_err(|problem| anyhow::anyhow!("ABBOTIK_SECRETS_KEK: {problem}"))
}

fn embedded_key(cfg: &Config) -> anyhow::Result<String> {
    let path = cfg.data_dir.join("secrets.kek");
    match std::fs::read_to_string(&path) {
        Ok(s) if KekRing::parse(s.trim()).is_ok() => return Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!(
            "{} is not a valid key ring (kid:base64key); restore it from a backup",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let value = KekRing::generate("e1");
    std::fs::create_dir_all(&cfg.data_dir)?;
    // create_new: two processes starting at once never overwrite each other's key.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(value.as_bytes())?;
    f.sync_all()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn embedded_key_is_generated_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("abbotik-kek-{}", uuid::Uuid::new_v4()));
        let env: HashMap<String, String> =
            [("ABBOTIK_DATA_DIR".to_owned(), dir.display().to_string())].into();
        let cfg = Config::from_map(&env).unwrap();
        let a = ring(&cfg).unwrap();
        let file = dir.join("secrets.kek");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read_to_string(&file).unwrap();
        let b = ring(&cfg).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
        assert_eq!(a.current(), b.current());
        // Sealed by one start, opened by the next.
        let s = a.seal(b"v", b"aad").unwrap();
        assert_eq!(b.open(&s, b"aad").unwrap(), b"v");
        std::fs::write(&file, "garbage").unwrap();
        assert!(ring(&cfg).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
