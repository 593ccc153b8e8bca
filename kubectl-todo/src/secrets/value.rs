//! A secret value and the only things kubectl-todo ever shows of it: its
//! length and a short fingerprint.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
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

/// Values shorter than this would blank out ordinary words.
const MIN_REDACTED: usize = 4;
/// A server message or a log line may cut a value short: any run of this
/// many leading characters of a value (in any of its forms) is redacted too.
pub const MIN_PREFIX: usize = 12;

/// Every form in which the values may show up in a quoted line (a
/// container's log in a diagnosis, an API message): see [`forms`].
pub fn redactions(data: &BTreeMap<String, ByteString>) -> Vec<String> {
    let mut out: Vec<String> = data.values().flat_map(|v| forms(&v.0)).collect();
    // Longest first, so that a longer form is replaced before a shorter one inside it.
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// A value as text, each of its lines (a PEM key is printed line by line),
/// base64 (standard and URL-safe, padded or not, of the value with and
/// without a trailing newline, as `echo | base64` makes it), hex (both
/// cases), JSON-escaped and URL-encoded.
pub fn forms(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(bytes).into_owned();
    out.extend(text.lines().map(|l| l.trim().to_string()));
    let mut with_newline = bytes.to_vec();
    with_newline.push(b'\n');
    for raw in [bytes, &with_newline[..]] {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            out.push(engine.encode(raw));
        }
    }
    let lower = hex(bytes);
    out.push(lower.to_uppercase());
    out.push(lower);
    if let Ok(json) = serde_json::to_string(&text) {
        out.push(json[1..json.len() - 1].to_string());
    }
    out.push(
        percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    out.push(text);
    out.retain(|f| f.len() >= MIN_REDACTED);
    out
}

/// Replaces in `line` every occurrence of the `forms`, and every run of at
/// least [`MIN_PREFIX`] characters that starts one of them (a truncated echo).
pub fn redact_forms(line: &str, forms: &[String]) -> String {
    let mut out = forms
        .iter()
        .fold(line.to_string(), |l, f| l.replace(f.as_str(), "[redacted]"));
    let mut start = 0;
    while start < out.len() {
        let rest = &out[start..];
        let longest = forms
            .iter()
            .map(|f| common_prefix(rest, f))
            .max()
            .unwrap_or(0);
        if longest >= MIN_PREFIX {
            out.replace_range(start..start + longest, "[redacted]");
            start += "[redacted]".len();
        } else {
            start += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// The length in bytes of the longest common prefix, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

/// Annotation of the Secret holding the random key of its [`checksum`]:
/// only those who can read the Secret have it.
pub const CHECKSUM_KEY_ANNOTATION: &str = "kubectl-todo/checksum-key";

/// A new random key for [`checksum`].
pub fn new_checksum_key() -> std::io::Result<String> {
    let key = Value::generate(32)?;
    Ok(key.text().unwrap_or_default().to_string())
}

/// The checksum of a Secret's data that Deployments carry in their pod
/// template (`labels::SECRET_CHECKSUM_ANNOTATION`): a change rolls their pods.
/// It is an HMAC keyed with the Secret's [`CHECKSUM_KEY_ANNOTATION`], so
/// that those who can read Deployments but not the Secret cannot confirm a
/// guess of a value offline; `None` for a Secret without the key.
pub fn checksum(secret: &Secret) -> Option<String> {
    let key = secret
        .metadata
        .annotations
        .as_ref()?
        .get(CHECKSUM_KEY_ANNOTATION)
        .filter(|k| !k.is_empty())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    for (k, value) in secret.data.iter().flatten() {
        // Lengths keep `a=bc` and `ab=c` apart.
        mac.update(&(k.len() as u64).to_be_bytes());
        mac.update(k.as_bytes());
        mac.update(&(value.0.len() as u64).to_be_bytes());
        mac.update(&value.0);
    }
    Some(hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces every form of the values (see [`forms`]) in a message that came
/// from outside, such as an API error.
pub fn redact<'a>(message: &str, values: impl IntoIterator<Item = &'a Value>) -> String {
    let data: BTreeMap<String, ByteString> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), ByteString(v.bytes().to_vec())))
        .collect();
    redact_forms(message, &redactions(&data))
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

    fn secret(key: Option<&str>, data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.annotations =
            key.map(|k| BTreeMap::from([(CHECKSUM_KEY_ANNOTATION.to_string(), k.to_string())]));
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        s
    }

    #[test]
    fn checksum_changes_with_any_key_or_value() {
        let sum = |k: &str, v: &str| checksum(&secret(Some("key"), &[(k, v)])).unwrap();
        assert_ne!(sum("a", "bc"), sum("ab", "c"));
        assert_ne!(sum("a", "b"), sum("a", "c"));
        assert_eq!(sum("a", "b"), sum("a", "b"));
    }

    #[test]
    fn checksum_cannot_be_confirmed_without_the_secrets_key() {
        let data = [("DATABASE_URL", "postgres://u:password1@db/app")];
        let a = checksum(&secret(Some(&new_checksum_key().unwrap()), &data)).unwrap();
        let b = checksum(&secret(Some(&new_checksum_key().unwrap()), &data)).unwrap();
        assert_ne!(a, b, "the same values under two keys");
        // The plain SHA-256 of the data, which anyone could recompute from a guess.
        let mut plain = Sha256::new();
        for (k, v) in data {
            plain.update((k.len() as u64).to_be_bytes());
            plain.update(k.as_bytes());
            plain.update((v.len() as u64).to_be_bytes());
            plain.update(v.as_bytes());
        }
        assert_ne!(a, hex(&plain.finalize()));
        assert_eq!(checksum(&secret(None, &data)), None);
        assert_eq!(checksum(&secret(Some(""), &data)), None);
    }

    #[test]
    fn redaction_covers_raw_and_base64_forms() {
        let v = Value::new(b"hunter2-canary".to_vec());
        let msg = "bad value hunter2-canary, body aHVudGVyMi1jYW5hcnk=";
        let out = redact(msg, [&v]);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("aHVudGVyMi1jYW5hcnk="), "{out}");
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----";

    fn redacted(value: &[u8], line: &str) -> String {
        let data = BTreeMap::from([("K".to_string(), ByteString(value.to_vec()))]);
        redact_forms(line, &redactions(&data))
    }

    #[test]
    fn every_line_of_a_multi_line_value_is_redacted() {
        for line in PEM.lines().skip(1).take(2) {
            let out = redacted(PEM.as_bytes(), &format!("app: key line {line} rejected"));
            assert_eq!(out, "app: key line [redacted] rejected");
        }
    }

    #[test]
    fn every_encoding_of_the_value_is_redacted() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        // Bytes whose base64 holds `+`, `/` and padding, so that the
        // URL-safe and unpadded forms differ from the standard one.
        let value = "s3cr3t?>~canary\"quote\" & more";
        let mut newline = value.as_bytes().to_vec();
        newline.push(b'\n');
        let mut shown = Vec::new();
        for raw in [value.as_bytes(), &newline[..]] {
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                shown.push(engine.encode(raw));
            }
        }
        shown.push(hex(value.as_bytes()));
        shown.push(hex(value.as_bytes()).to_uppercase());
        shown.push(serde_json::to_string(value).unwrap());
        shown.push(
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        for form in shown {
            let out = redacted(value.as_bytes(), &format!("got {form} here"));
            assert!(!out.contains(&form), "{form} survived: {out}");
            assert!(!out.contains("canary"), "{out}");
            assert!(out.starts_with("got ") && out.ends_with(" here"), "{out}");
        }
    }

    #[test]
    fn a_truncated_value_of_twelve_characters_or_more_is_redacted() {
        let value = b"canary-0123456789-abcdefghij";
        let out = redacted(value, "invalid value \"canary-012345...\" (truncated)");
        assert_eq!(out, "invalid value \"[redacted]...\" (truncated)");
        // Eleven characters may be an ordinary word shared by chance.
        let out = redacted(value, "see canary-01 there");
        assert_eq!(out, "see canary-01 there");
    }

    #[test]
    fn short_values_are_not_redacted_inside_words() {
        assert_eq!(redacted(b"abc", "abcdef"), "abcdef");
        assert_eq!(redacted(b"", "line"), "line");
    }
}
