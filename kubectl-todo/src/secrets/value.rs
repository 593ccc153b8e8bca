//! A secret value and the only things kubectl-todo ever shows of it: its
//! length and a short fingerprint.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};

/// The bytes of one value. `Debug` is redacted so that a stray `{:?}` or a
/// panic message cannot print it, and there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Value(Vec<u8>);

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value([redacted, {} bytes])", self.0.len())
    }
}

impl Value {
    pub fn new(bytes: Vec<u8>) -> Value {
        Value(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// `sha256:` and the first 8 hex digits: enough to tell two values apart,
    /// too short to confirm a guess of a strong value offline.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.0);
        format!("sha256:{}", hex(&digest[..4]))
    }

    /// `n` bytes from the operating system's random source, base64url without padding.
    pub fn generate(n: usize) -> std::io::Result<Value> {
        let mut raw = vec![0u8; n];
        getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        Ok(Value(text.into_bytes()))
    }

    /// Removes one trailing newline, which `echo` and editors add to files
    /// and which would otherwise end up inside an environment variable.
    pub fn without_final_newline(mut bytes: Vec<u8>) -> Value {
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n") {
            bytes.truncate(bytes.len() - 1);
        }
        Value(bytes)
    }
}

/// The values no quoted line (a container's log in a diagnosis) may show;
/// shorter ones would blank out ordinary words.
pub fn redactions(data: &BTreeMap<String, ByteString>) -> Vec<String> {
    data.values()
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .filter(|v| v.len() >= 4)
        .collect()
}

/// The checksum of a Secret's data that Deployments carry in their pod
/// template (`labels::SECRET_CHECKSUM_ANNOTATION`): a change rolls their pods.
/// `up` must compute it with this same function.
pub fn checksum(data: &BTreeMap<String, ByteString>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        // Lengths keep `a=bc` and `ab=c` apart.
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.0.len() as u64).to_be_bytes());
        hasher.update(&value.0);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces every occurrence of the values (raw or base64, as they travel in
/// request bodies) in a message that came from outside, such as an API error.
pub fn redact<'a>(message: &str, values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = message.to_string();
    for value in values {
        let Some(text) = value.text() else { continue };
        if text.is_empty() {
            continue;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.bytes());
        out = out
            .replace(text, "[redacted]")
            .replace(&encoded, "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = Value::new(b"canary-debug-1234".to_vec());
        assert_eq!(format!("{v:?}"), "Value([redacted, 17 bytes])");
    }

    #[test]
    fn generated_values_are_base64url_of_the_requested_size() {
        let a = Value::generate(32).unwrap();
        let b = Value::generate(32).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(a.bytes())
            .unwrap();
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn only_one_final_newline_is_removed() {
        assert_eq!(
            Value::without_final_newline(b"x\n\n".to_vec()).bytes(),
            b"x\n"
        );
        assert_eq!(
            Value::without_final_newline(b"x\r\n".to_vec()).bytes(),
            b"x"
        );
        assert_eq!(Value::without_final_newline(b"x".to_vec()).bytes(), b"x");
    }

    #[test]
    fn checksum_changes_with_any_key_or_value() {
        let data = |k: &str, v: &str| BTreeMap::from([(k.to_string(), ByteString(v.into()))]);
        assert_ne!(checksum(&data("a", "bc")), checksum(&data("ab", "c")));
        assert_ne!(checksum(&data("a", "b")), checksum(&data("a", "c")));
        assert_eq!(checksum(&data("a", "b")), checksum(&data("a", "b")));
    }

    #[test]
    fn redaction_covers_raw_and_base64_forms() {
        let v = Value::new(b"hunter2-canary".to_vec());
        let msg = "bad value hunter2-canary, body aHVudGVyMi1jYW5hcnk=";
        let out = redact(msg, [&v]);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("aHVudGVyMi1jYW5hcnk="), "{out}");
    }
}
