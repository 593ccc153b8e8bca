//! Checks every image must pass after a build: a numeric non-zero user, and a size
//! within budget. Also reports size and layer count.

use bollard::models::ImageInspect;

use crate::error::{Error, Result};
use crate::plan::Plan;

/// Facts about a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub size_bytes: u64,
    pub layers: usize,
    pub user: String,
}

/// Parse a `USER` value: the numeric UID (and GID), or why it is not acceptable.
pub fn numeric_user(user: &str) -> std::result::Result<(u32, Option<u32>), String> {
    let user = user.trim();
    if user.is_empty() {
        return Err("the image sets no USER, so it runs as root (UID 0)".into());
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid: u32 = u.parse().map_err(|_| {
        format!("USER `{user}` is a name, not a number; Kubernetes' runAsNonRoot can only verify numeric users")
    })?;
    let gid = match g {
        Some(g) => Some(
            g.parse::<u32>()
                .map_err(|_| format!("the group in USER `{user}` is a name, not a number"))?,
        ),
        None => None,
    };
    if uid == 0 {
        return Err(format!("USER `{user}` is root (UID 0)"));
    }
    Ok((uid, gid))
}

/// Parse sizes like `300MB`, `250MiB`, `1.5G`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad_size(s))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad_size(s)),
    };
    Ok((n * mult) as u64)
}

fn bad_size(s: &str) -> Error {
    Error::Invalid {
        what: format!("size `{s}`"),
        reason: "expected a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)".into(),
        fix: "write e.g. `--max-size 200MB`".into(),
    }
}

/// Human-readable size.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Check an inspected image.
pub fn check(
    reference: &str,
    plan: &Plan,
    img: &ImageInspect,
    max_size: Option<u64>,
) -> Result<ImageFacts> {
    let user = img
        .config
        .as_ref()
        .and_then(|c| c.user.clone())
        .unwrap_or_default();
    let where_ = match &plan.dockerfile_path {
        Some(p) => format!("{}", plan.dir.join(p).display()),
        None => {
            "the generated Dockerfile (pass a runtime base image that does not reset USER)".into()
        }
    };
    if let Err(reason) = numeric_user(&user) {
        return Err(Error::Check {
            image: reference.to_string(),
            reason,
            fix: format!(
                "add `USER 1001:1001` (a numeric, non-zero UID:GID) as the last USER line of the final stage in {where_}"
            ),
        });
    }
    let size_bytes = img.size.unwrap_or(0).max(0) as u64;
    let layers = img
        .root_fs
        .as_ref()
        .and_then(|r| r.layers.as_ref())
        .map(|l| l.len())
        .unwrap_or(0);
    if let Some(max) = max_size
        && size_bytes > max
    {
        return Err(Error::Check {
            image: reference.to_string(),
            reason: format!(
                "it is {} ({size_bytes} bytes), over the --max-size budget of {} ({max} bytes)",
                human(size_bytes),
                human(max)
            ),
            fix: format!(
                "make the image smaller (a slimmer runtime base, fewer dependencies, a tighter .dockerignore) or raise --max-size; `docker history {reference}` shows which layers are big"
            ),
        });
    }
    Ok(ImageFacts {
        id: img.id.clone().unwrap_or_default(),
        size_bytes,
        layers,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(numeric_user("1001:1001").unwrap(), (1001, Some(1001)));
        assert_eq!(numeric_user("1001").unwrap(), (1001, None));
        assert!(numeric_user("").is_err());
        assert!(numeric_user("0").is_err());
        assert!(numeric_user("0:0").is_err());
        assert!(numeric_user("node").unwrap_err().contains("name"));
        assert!(numeric_user("1001:app").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The USER an image's Dockerfile sets is read from outside: any
        /// text gives a user or a reason, never a panic; root never passes.
        #[test]
        fn any_user_is_read_or_refused(user in proptest::prop_oneof![
            proptest::prelude::any::<String>(),
            "[0-9]{0,25}(:[0-9a-z]{0,25})?",
        ]) {
            if let Ok((uid, _)) = numeric_user(&user) {
                proptest::prop_assert_ne!(uid, 0);
            }
        }
    }
}
