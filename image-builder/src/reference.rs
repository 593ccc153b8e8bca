//! The image-reference rule, the one kubectl-todo and image-builder check
//! every reference a user gives against (`--image`, `--base-image`,
//! `baseImages:`, a build file's `base_images:`, `--push`).

/// Why a reference is refused, worded to follow it: "`REF` {why}".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReference(String);

/// Checks an image reference as the Docker Engine and the kubelet read it:
/// `[host[:port]/]path[:tag][@algorithm:digest]`, the path in lowercase.
pub fn check(s: &str) -> Result<(), BadReference> {
    static REFERENCE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let label = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
        let host = format!(r"(?:{label}(?:\.{label})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?");
        let part = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        regex::Regex::new(&format!(
            r"^(?:{host}/)?{part}(?:/{part})*(?::{tag})?(?:@{digest})?$"
        ))
        .expect("a valid pattern")
    });
    if s.len() > 255 {
        return Err(BadReference("is longer than 255 characters".into()));
    }
    let repository = s.split(['@']).next().unwrap_or_default();
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    if repository
        .rsplit('/')
        .next()
        .is_some_and(|last| last.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(BadReference(
            "has uppercase letters in its repository name (only the tag may have them)".into(),
        ));
    }
    if let Some((_, digest)) = s.split_once('@') {
        digest_of_its_length(digest)?;
    }
    if REFERENCE.is_match(s) {
        Ok(())
    } else {
        Err(BadReference(
            "is not `[host[:port]/]name[:tag][@sha256:digest]` (lowercase name)".into(),
        ))
    }
}

/// A digest as the engines and registries check it (OCI image spec): an
/// algorithm they know, and exactly its length in lowercase hex. The
/// reference grammar alone lets `sha256:` with 32 hex digits through.
fn digest_of_its_length(digest: &str) -> Result<(), BadReference> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let Some(length) = [("sha256", 64), ("sha384", 96), ("sha512", 128)]
        .iter()
        .find_map(|(a, n)| (*a == algorithm).then_some(*n))
    else {
        return Err(BadReference(format!(
            "has the digest `{digest}`, whose algorithm is not sha256, sha384 or sha512"
        )));
    };
    if hex.len() != length || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(BadReference(format!(
            "has the digest `{digest}`: a {algorithm} digest is {length} lowercase hex digits (this one has {} characters)",
            hex.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_engines_grammar() {
        for ok in [
            "todo-backend:0123abc",
            "localhost:5000/todo-backend:1.2.3",
            "registry.example/team/app_v2:Latest-1",
            "ghcr.io/me/app@sha256:6905a4ec6905a4ec6905a4ec6905a4ec6905a4ec6905a4ec6905a4ec6905a4ec",
            &format!("app:1@sha384:{}", "0a".repeat(48)),
            &format!("app@sha512:{}", "f".repeat(128)),
            "[::1]:5000/app",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, rule) in [
            (
                "app@sha256:abc",
                "a sha256 digest is 64 lowercase hex digits (this one has 3",
            ),
            (
                &format!("app@sha256:{}", "A".repeat(64)),
                "a sha256 digest is 64 lowercase hex",
            ),
            (
                &format!("app@sha256:{}", "a".repeat(32)),
                "(this one has 32 characters)",
            ),
            (
                &format!("app@sha512:{}", "a".repeat(64)),
                "a sha512 digest is 128",
            ),
            (
                &format!("app@sha384:{}", "a".repeat(64)),
                "a sha384 digest is 96",
            ),
            (
                &format!("app@md5:{}", "a".repeat(32)),
                "is not sha256, sha384 or sha512",
            ),
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains(rule), "{bad}: {err}");
        }
        assert!(
            check("UPPER:tag")
                .unwrap_err()
                .to_string()
                .contains("uppercase")
        );
        for bad in [
            "",
            "app:",
            ":tag",
            "app:-x",
            "a//b",
            "app@sha256:12",
            "app tag",
            "app/",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
