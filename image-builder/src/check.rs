//! Checks every image must pass after a build: a user that resolves to a
//! non-zero UID (names through the image's own `/etc/passwd` and
//! `/etc/group`), and a size within budget. Also reports size and layer count.

use bollard::models::ImageInspect;

use crate::error::{Error, Result};
use crate::plan::Plan;

/// Facts about a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub size_bytes: u64,
    pub layers: usize,
    /// The `USER` as the image's config writes it.
    pub user: String,
    pub run_as: RunAs,
}

/// The numeric, non-root identity a built image runs as: what the pod's
/// `runAsUser`/`runAsGroup` must say for `runAsNonRoot` to be verifiable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// The image's `/etc/passwd` and `/etc/group` as text (empty when the image
/// has no such file): what a named `USER` is resolved against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub passwd: String,
    pub group: String,
}

/// Whether resolving `user` needs the image's account files: some part of
/// it is a name.
pub fn names_someone(user: &str) -> bool {
    user.trim()
        .split(':')
        .any(|p| !p.is_empty() && !p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a `USER` cannot run as a verifiable non-root identity, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub fix: String,
}

/// Resolve a `USER` value to numbers, names through `accounts` (the
/// image's own files). A numeric user without a group gets the group of the
/// same number, as images built here have it; a named user without a group
/// gets its primary group from `/etc/passwd`.
pub fn resolve(user: &str, accounts: &Accounts) -> std::result::Result<RunAs, Refusal> {
    let user = user.trim();
    let numbers = "add `USER 1001:1001` (a numeric, non-zero UID:GID) as the last USER line of the final stage";
    if user.is_empty() {
        return Err(Refusal {
            reason: "the image sets no USER, so it runs as root (UID 0)".into(),
            fix: numbers.into(),
        });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let not_found = |what: &str, name: &str, file: &str| Refusal {
        reason: format!(
            "USER `{user}` names the {what} `{name}`, which the image's {file} does not have"
        ),
        fix: format!(
            "create it in the final stage before the USER line (e.g. `RUN addgroup -g 1001 {name} && adduser -D -u 1001 -G {name} {name}`), or write numbers: `USER 1001:1001`"
        ),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => {
            let entry =
                entry(&accounts.passwd, u).ok_or_else(|| not_found("user", u, "/etc/passwd"))?;
            let uid = entry
                .first()
                .and_then(|f| f.parse::<u32>().ok())
                .ok_or_else(|| not_found("user", u, "/etc/passwd"))?;
            (uid, entry.get(1).and_then(|f| f.parse::<u32>().ok()))
        }
    };
    if uid == 0 {
        return Err(Refusal {
            reason: format!("USER `{user}` is root (UID 0)"),
            fix: numbers.into(),
        });
    }
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entry(&accounts.group, g)
                .and_then(|f| f.first().and_then(|f| f.parse::<u32>().ok()))
                .ok_or_else(|| not_found("group", g, "/etc/group"))?,
        },
    };
    Ok(RunAs { uid, gid })
}

/// The fields after the password of the `name:x:...` line of an account
/// file (`/etc/passwd`: UID, GID, ...; `/etc/group`: GID, members).
fn entry<'a>(file: &'a str, name: &str) -> Option<Vec<&'a str>> {
    file.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.skip(1).collect())
    })
}

/// The `USER` an inspected image runs as, as written.
pub fn user_of(img: &ImageInspect) -> String {
    img.config
        .as_ref()
        .and_then(|c| c.user.clone())
        .unwrap_or_default()
}

/// Where a refused user is to be fixed, as messages name it.
fn fixed_in(plan: &Plan) -> String {
    match &plan.dockerfile_path {
        Some(p) => format!("{}", plan.dir.join(p).display()),
        None => {
            "the generated Dockerfile (pass a runtime base image that does not reset USER)".into()
        }
    }
}

/// [`resolve`], as the image's check failure.
pub fn run_as(reference: &str, plan: &Plan, user: &str, accounts: &Accounts) -> Result<RunAs> {
    resolve(user, accounts).map_err(|r| Error::Check {
        image: reference.to_string(),
        reason: r.reason,
        fix: format!("{} in {}", r.fix, fixed_in(plan)),
    })
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

/// Check an inspected image whose user resolved to `run_as`.
pub fn check(
    reference: &str,
    img: &ImageInspect,
    run_as: RunAs,
    max_size: Option<u64>,
) -> Result<ImageFacts> {
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
        user: user_of(img),
        run_as,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts {
            passwd: "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nnextjs:x:1001:65533::/home/nextjs:/sbin/nologin\nappuser:x:10001:10001::/app:/bin/sh\n".into(),
            group: "root:x:0:\nnogroup:x:65533:\nappgroup:x:10002:appuser\n".into(),
        }
    }

    fn ids(uid: u32, gid: u32) -> RunAs {
        RunAs { uid, gid }
    }

    #[test]
    fn numbers_and_names_resolve() {
        let a = accounts();
        assert_eq!(resolve("1001:1001", &a).unwrap(), ids(1001, 1001));
        assert_eq!(
            resolve("1001", &Accounts::default()).unwrap(),
            ids(1001, 1001)
        );
        assert_eq!(resolve("nextjs", &a).unwrap(), ids(1001, 65533));
        assert_eq!(resolve("appuser:appgroup", &a).unwrap(), ids(10001, 10002));
        assert_eq!(resolve("nextjs:1001", &a).unwrap(), ids(1001, 1001));
        assert_eq!(resolve("1001:appgroup", &a).unwrap(), ids(1001, 10002));
        assert!(names_someone("nextjs") && names_someone("1001:app"));
        assert!(!names_someone("1001:1001") && !names_someone("1001") && !names_someone(""));
    }

    #[test]
    fn root_and_unknown_names_are_refused() {
        let a = accounts();
        for user in ["", "0", "0:0", "root", "toor", "root:appgroup"] {
            assert!(resolve(user, &a).is_err(), "{user}");
        }
        let r = resolve("nextjs", &Accounts::default()).unwrap_err();
        assert_eq!(
            r.reason,
            "USER `nextjs` names the user `nextjs`, which the image's /etc/passwd does not have"
        );
        assert!(r.fix.contains("`USER 1001:1001`"), "{}", r.fix);
        let r = resolve("appuser:staff", &a).unwrap_err();
        assert!(r.reason.contains("the group `staff`"), "{}", r.reason);
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
            "[0-9a-z]{0,25}(:[0-9a-z]{0,25})?",
        ]) {
            if let Ok(ids) = resolve(&user, &accounts()) {
                proptest::prop_assert_ne!(ids.uid, 0);
            }
        }
    }
}
