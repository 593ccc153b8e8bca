//! A CA bundle the build trusts (`--ca-cert FILE`, `build.caCert` in todo.yaml):
//! for users whose package downloads go through a TLS-intercepting proxy.
//!
//! The bundle is read and checked when planning, so a wrong file fails before
//! anything is built. While building, BuildKit asks the build's session for it
//! ([`crate::session`]) and mounts it, as a secret, into the steps that download
//! packages only: it is never written into a layer. Its hash is part of the input
//! digest, so a changed bundle makes a new tag.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The secret's id in the build's session and in the generated mounts.
pub const SECRET_ID: &str = "image-builder-ca";

/// Where the bundle is mounted in the steps that download packages.
pub const TARGET: &str = "/run/secrets/image-builder-ca.pem";

/// What the package managers read the bundle from, set for those steps only. pip,
/// uv and Poetry's requests each have their own variable; Node's tools (npm, pnpm,
/// yarn, corepack) all honour `NODE_EXTRA_CA_CERTS`, and npm and pnpm verify the
/// registry with `npm_config_cafile`; Go and OpenSSL read `SSL_CERT_FILE`.
pub const ENV: &[&str] = &[
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "npm_config_cafile",
];

/// BuildKit refuses larger secrets.
pub const MAX_BYTES: usize = 500 * 1024;

/// A checked PEM bundle, held in memory from planning to the end of the build.
#[derive(Clone)]
pub struct CaBundle {
    pub path: PathBuf,
    bytes: Arc<[u8]>,
    /// Hex SHA-256 of the file: what the input digest holds of it.
    pub sha256: String,
    pub certificates: usize,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("certificates", &self.certificates)
            .finish()
    }
}

impl PartialEq for CaBundle {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256
    }
}

impl CaBundle {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::Invalid {
        what: format!("CA bundle {}", path.display()),
        reason,
        fix: format!(
            "pass a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----` blocks), e.g. the system bundle `/etc/ssl/certs/ca-certificates.crt`; a DER certificate converts with `openssl x509 -inform der -in {} -out ca.pem`",
            path.display()
        ),
    }
}

/// Read `path` and check that it is a PEM bundle of certificates.
pub fn load(path: &Path) -> Result<CaBundle> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let certificates = check_pem(&bytes).map_err(|reason| invalid(path, reason))?;
    if bytes.len() > MAX_BYTES {
        return Err(Error::Invalid {
            what: format!("CA bundle {}", path.display()),
            reason: format!(
                "it is {} bytes and BuildKit takes secrets of at most {MAX_BYTES} bytes",
                bytes.len()
            ),
            fix: "pass a bundle with only the CAs the build needs (your proxy's CA and the public roots it re-signs for)".into(),
        });
    }
    Ok(CaBundle {
        path: path.to_path_buf(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.into(),
        certificates,
    })
}

/// The number of certificates in a PEM bundle, or why it is not one. Text between
/// blocks (comments, as in certifi's bundle) is allowed, as OpenSSL allows it.
pub fn check_pem(bytes: &[u8]) -> std::result::Result<usize, String> {
    const BEGIN: &str = "-----BEGIN ";
    let text = std::str::from_utf8(bytes).map_err(|_| {
        "it is not text (a DER-encoded certificate or some other binary file?)".to_string()
    })?;
    let mut certificates = 0;
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        let after = &rest[at + BEGIN.len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| "a `-----BEGIN` line is not closed".to_string())?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start
            .find(&end_marker)
            .ok_or_else(|| format!("the `{label}` block has no `{end_marker}` line"))?;
        if label != "CERTIFICATE" && label != "TRUSTED CERTIFICATE" {
            return Err(format!(
                "it holds a `{label}` block; a CA bundle holds certificates only"
            ));
        }
        let b64: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|e| format!("certificate {} is not valid base64: {e}", certificates + 1))?;
        certificates += 1;
        rest = &body_start[body_end + end_marker.len()..];
    }
    if certificates == 0 {
        return Err("it holds no `-----BEGIN CERTIFICATE-----` block".into());
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_bundle_with_comments_between_certificates_is_accepted() {
        let text = format!("# Issuer: Example\n{CERT}\n# another\n{CERT}");
        assert_eq!(check_pem(text.as_bytes()), Ok(2));
    }

    #[test]
    fn what_is_not_a_certificate_bundle_is_refused_with_the_reason() {
        for (bytes, why) in [
            (b"\x30\x82\x01\x0a\xff\xfe".to_vec(), "not text"),
            (b"hello\n".to_vec(), "no `-----BEGIN CERTIFICATE-----`"),
            (
                b"-----BEGIN CERTIFICATE-----\nTUlJQg==\n".to_vec(),
                "has no `-----END CERTIFICATE-----`",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n".to_vec(),
                "not valid base64",
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nTUlJQg==\n-----END PRIVATE KEY-----\n".to_vec(),
                "`PRIVATE KEY` block",
            ),
        ] {
            let e = check_pem(&bytes).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn load_names_the_file_and_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ca.der");
        std::fs::write(&p, b"\x30\x82\x01\x0a\xff").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("ca.der"), "{e}");
        assert!(e.contains("openssl x509 -inform der"), "{e}");

        let p = t.path().join("ca.pem");
        std::fs::write(&p, CERT).unwrap();
        let b = load(&p).unwrap();
        assert_eq!(b.certificates, 1);
        assert_eq!(b.bytes(), CERT.as_bytes());
        assert!(
            !format!("{b:?}").contains("BEGIN"),
            "Debug shows no content"
        );
    }
}
