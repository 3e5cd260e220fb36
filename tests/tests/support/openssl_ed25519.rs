//! An Ed25519 client made of the `openssl` command line (a separate program, not the server's
//! code): key generation, public PEM/DER export, and signing exactly as the contract shows
//! (A3.4 step 4): `printf %s "$NONCE" | openssl pkeyutl -sign -inkey key.pem -rawin |
//! basenc --base64url | tr -d '=\n'`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private key in a temporary directory (removed on drop).
pub struct OpensslKey {
    dir: PathBuf,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sh(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8(run(&mut c)).expect("utf-8 output")
}

impl OpensslKey {
    /// `openssl genpkey -algorithm ED25519`.
    pub fn generate() -> OpensslKey {
        Self::generate_with(&["-algorithm", "ED25519"])
    }

    /// An RSA key (for "not an Ed25519 key" tests).
    pub fn generate_rsa() -> OpensslKey {
        Self::generate_with(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
    }

    fn generate_with(args: &[&str]) -> OpensslKey {
        let dir = std::env::temp_dir().join(format!("abbotik-ed25519-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        run(Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(dir.join("key.pem")));
        OpensslKey { dir }
    }

    /// The SPKI PEM of the public key (`openssl pkey -pubout`), LF-terminated.
    pub fn public_pem(&self) -> String {
        String::from_utf8(run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(self.dir.join("key.pem"))))
        .expect("pem is text")
    }

    /// The SPKI DER of the public key.
    pub fn public_der(&self) -> Vec<u8> {
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(self.dir.join("key.pem")))
    }

    /// `"fp_"` + the first 32 hex chars of SHA-256(SPKI DER), computed by `openssl dgst`.
    pub fn fingerprint(&self) -> String {
        let hex = sh(
            "openssl pkey -pubout -outform DER -in key.pem | openssl dgst -sha256 -r",
            &self.dir,
            &[],
        );
        format!("fp_{}", &hex[..32])
    }

    /// Standard, padded base64 of the SPKI DER (`openssl base64 -A`).
    pub fn der_base64(&self) -> String {
        sh(
            "openssl pkey -pubout -outform DER -in key.pem | openssl base64 -A",
            &self.dir,
            &[],
        )
        .trim()
        .to_owned()
    }

    /// Signs the nonce STRING exactly as the contract's one-liner does. OpenSSL 3.0/3.1 cannot
    /// read `-rawin` input from a pipe for Ed25519 ("unable to determine file size for oneshot
    /// operation", no output); there the same bytes are signed from a file instead.
    pub fn sign(&self, nonce: &str) -> String {
        let piped = sh(
            r#"printf %s "$NONCE" | openssl pkeyutl -sign -inkey key.pem -rawin 2>/dev/null | basenc --base64url | tr -d '=\n'"#,
            &self.dir,
            &[("NONCE", nonce)],
        );
        if !piped.is_empty() {
            return piped;
        }
        sh(
            r#"printf %s "$NONCE" > nonce.txt && openssl pkeyutl -sign -inkey key.pem -rawin -in nonce.txt | basenc --base64url | tr -d '=\n'"#,
            &self.dir,
            &[("NONCE", nonce)],
        )
    }

    /// Signs arbitrary bytes (e.g. the base64url-DECODED nonce, which is the wrong message).
    pub fn sign_bytes(&self, bytes: &[u8]) -> String {
        let msg = self.dir.join("msg.bin");
        std::fs::write(&msg, bytes).expect("write message");
        sh(
            r#"openssl pkeyutl -sign -inkey key.pem -rawin -in msg.bin | basenc --base64url | tr -d '=\n'"#,
            &self.dir,
            &[],
        )
    }

    /// Base64url-decodes `text` with `basenc` (padding restored), for the wrong-message test.
    pub fn decode_base64url(&self, text: &str) -> Vec<u8> {
        let mut padded = text.to_owned();
        while !padded.len().is_multiple_of(4) {
            padded.push('=');
        }
        let f = self.dir.join("b64.txt");
        std::fs::write(&f, padded).expect("write text");
        run(Command::new("basenc").args(["--base64url", "-d"]).arg(&f))
    }
}

impl Drop for OpensslKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
