//! Content digests of build inputs, with a per-file hash cache.
//!
//! The input digest is SHA-256 over, in order: every context entry (sorted by path:
//! kind, path, executable bit and the SHA-256 of the file's bytes; a symlink's
//! target), the Dockerfile text, the build arguments (sorted), the target stage and
//! the platform. Every string is length-prefixed, so no two input sets collide by
//! concatenation. Owners, mtimes and walk order do not enter it.
//!
//! The cache remembers each file's hash keyed by path, size, mtime, ctime and inode.
//! It follows git's racy-clean rule: an entry whose mtime or ctime is not older than
//! the moment the cache was written could have changed again within the same
//! timestamp tick, so it is re-hashed instead of trusted.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::context::{Entry, EntryKind};
use crate::error::{Error, Result};

/// Changing this changes every digest: bump only when the composition changes.
const DIGEST_VERSION: &[u8] = b"image-builder input digest v1";
const CACHE_MAGIC: &[u8; 8] = b"IBHC\x00\x00\x00\x01";
/// Timestamps within this margin of the cache's write time count as racy (covers
/// the coarse clock the kernel stamps files with).
const RACY_MARGIN_NS: i128 = 100_000_000;

/// A context entry with what the digest needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedEntry {
    pub rel: String,
    pub kind: EntryKind,
    pub exec: bool,
    pub size: u64,
    /// SHA-256 of the file's bytes (zero for directories and symlinks).
    pub hash: [u8; 32],
    pub link_target: Option<String>,
}

/// The hashed context of one component.
#[derive(Debug, Clone, Default)]
pub struct HashedContext {
    pub entries: Vec<HashedEntry>,
    /// Files whose hash came from the cache.
    pub cache_hits: usize,
    /// Files that were read and hashed.
    pub hashed_files: usize,
    pub total_bytes: u64,
}

/// Everything besides the context that enters the digest.
#[derive(Debug, Clone)]
pub struct DigestInputs<'a> {
    pub dockerfile: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// The hex SHA-256 of the CA bundle the build trusts ([`crate::ca`]).
    pub ca_cert: Option<&'a str>,
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The full input digest, lowercase hex (64 digits).
pub fn input_digest(ctx: &HashedContext, inputs: &DigestInputs<'_>) -> String {
    let mut h = Sha256::new();
    put(&mut h, DIGEST_VERSION);
    put(&mut h, b"context");
    h.update((ctx.entries.len() as u64).to_le_bytes());
    for e in &ctx.entries {
        match e.kind {
            EntryKind::File => {
                put(&mut h, if e.exec { b"fx" } else { b"f-" });
                put(&mut h, e.rel.as_bytes());
                h.update(e.hash);
            }
            EntryKind::Dir => {
                put(&mut h, b"d");
                put(&mut h, e.rel.as_bytes());
            }
            EntryKind::Symlink => {
                put(&mut h, b"l");
                put(&mut h, e.rel.as_bytes());
                put(&mut h, e.link_target.as_deref().unwrap_or("").as_bytes());
            }
        }
    }
    put(&mut h, b"dockerfile");
    put(&mut h, inputs.dockerfile.as_bytes());
    put(&mut h, b"build-args");
    h.update((inputs.build_args.len() as u64).to_le_bytes());
    for (k, v) in inputs.build_args {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    put(&mut h, b"target");
    put(&mut h, inputs.target.unwrap_or("").as_bytes());
    put(&mut h, b"platform");
    put(&mut h, inputs.platform.unwrap_or("").as_bytes());
    // Only when set, so that digests without a bundle stay what they were.
    if let Some(ca) = inputs.ca_cert {
        put(&mut h, b"ca-cert");
        put(&mut h, ca.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The image tag for a digest: its first 16 hex digits.
pub fn tag_of(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// Stat data that keys a cached hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatKey {
    size: u64,
    mtime_s: i64,
    mtime_ns: u32,
    ctime_s: i64,
    ctime_ns: u32,
    ino: u64,
    exec: bool,
}

impl StatKey {
    fn of(m: &fs::Metadata) -> Self {
        StatKey {
            size: m.size(),
            mtime_s: m.mtime(),
            mtime_ns: m.mtime_nsec() as u32,
            ctime_s: m.ctime(),
            ctime_ns: m.ctime_nsec() as u32,
            ino: m.ino(),
            exec: m.mode() & 0o111 != 0,
        }
    }
    fn newest_ns(&self) -> i128 {
        let m = self.mtime_s as i128 * 1_000_000_000 + self.mtime_ns as i128;
        let c = self.ctime_s as i128 * 1_000_000_000 + self.ctime_ns as i128;
        m.max(c)
    }
}

/// A per-directory cache of file hashes, stored under the user's cache directory.
#[derive(Debug, Default)]
pub struct HashCache {
    path: Option<PathBuf>,
    /// When the loaded cache was written (ns since the epoch), for the racy rule.
    written_ns: i128,
    entries: HashMap<String, (StatKey, [u8; 32])>,
}

/// Where caches live: `$IMAGE_BUILDER_CACHE_DIR`, else `$XDG_CACHE_HOME/image-builder`,
/// else `~/.cache/image-builder`.
pub fn cache_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMAGE_BUILDER_CACHE_DIR") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(p).join("image-builder"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("image-builder"))
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl HashCache {
    /// A cache that keeps nothing.
    pub fn disabled() -> Self {
        HashCache::default()
    }

    /// Load the cache for context directory `dir` (absolute). A missing or corrupt
    /// cache file is treated as empty: it only ever saves work.
    pub fn load_for(dir: &Path) -> Self {
        let Some(root) = cache_root() else {
            return HashCache::disabled();
        };
        let key = hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()));
        let path = root.join("files").join(format!("{}.bin", &key[..32]));
        let mut cache = HashCache {
            path: Some(path.clone()),
            ..Default::default()
        };
        if let Ok(bytes) = fs::read(&path)
            && let Some((written, entries)) = parse_cache(&bytes)
        {
            cache.written_ns = written;
            cache.entries = entries;
        }
        cache
    }

    fn lookup(&self, rel: &str, key: &StatKey) -> Option<[u8; 32]> {
        let (k, h) = self.entries.get(rel)?;
        if k != key {
            return None;
        }
        // racy-clean: too close to (or after) the moment the cache was written
        if key.newest_ns() >= self.written_ns - RACY_MARGIN_NS {
            return None;
        }
        Some(*h)
    }

    fn save(&self, started_ns: i128, items: &[(String, StatKey, [u8; 32])]) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().expect("cache path has a parent");
        fs::create_dir_all(dir)?;
        let mut out = Vec::with_capacity(64 + items.len() * 96);
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&(started_ns as i64).to_le_bytes());
        out.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for (rel, k, h) in items {
            out.extend_from_slice(&(rel.len() as u32).to_le_bytes());
            out.extend_from_slice(rel.as_bytes());
            out.extend_from_slice(&k.size.to_le_bytes());
            out.extend_from_slice(&k.mtime_s.to_le_bytes());
            out.extend_from_slice(&k.mtime_ns.to_le_bytes());
            out.extend_from_slice(&k.ctime_s.to_le_bytes());
            out.extend_from_slice(&k.ctime_ns.to_le_bytes());
            out.extend_from_slice(&k.ino.to_le_bytes());
            out.push(k.exec as u8);
            out.extend_from_slice(h);
        }
        remove_stale_temporaries(dir);
        let (tmp, mut file) = tempfile_in(dir)?;
        let written = file.write_all(&out).and_then(|()| {
            file.sync_data().ok();
            fs::rename(&tmp, path)
        });
        // A full disk fails the write after the file was made: leave nothing behind.
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// Temporaries older than this are left over from a run that died while
/// writing; younger ones may be another run's, being written now.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        if stale && entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn tempfile_in(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        now_ns() as u64 ^ (dir.as_os_str().len() as u64)
    );
    let p = dir.join(name);
    let f = fs::File::create(&p)?;
    Ok((p, f))
}

type CacheMap = HashMap<String, (StatKey, [u8; 32])>;

fn parse_cache(b: &[u8]) -> Option<(i128, CacheMap)> {
    let mut r = b;
    fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if r.len() < n {
            return None;
        }
        let (a, rest) = r.split_at(n);
        *r = rest;
        Some(a)
    }
    fn u32_(r: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(r, 4)?.try_into().ok()?))
    }
    fn u64_(r: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(r, 8)?.try_into().ok()?))
    }
    if take(&mut r, 8)? != CACHE_MAGIC {
        return None;
    }
    let written = u64_(&mut r)? as i64 as i128;
    let n = u64_(&mut r)? as usize;
    let mut map = HashMap::with_capacity(n.min(1 << 22));
    for _ in 0..n {
        let len = u32_(&mut r)? as usize;
        let rel = std::str::from_utf8(take(&mut r, len)?).ok()?.to_string();
        let size = u64_(&mut r)?;
        let mtime_s = u64_(&mut r)? as i64;
        let mtime_ns = u32_(&mut r)?;
        let ctime_s = u64_(&mut r)? as i64;
        let ctime_ns = u32_(&mut r)?;
        let ino = u64_(&mut r)?;
        let exec = take(&mut r, 1)?[0] != 0;
        let h: [u8; 32] = take(&mut r, 32)?.try_into().ok()?;
        map.insert(
            rel,
            (
                StatKey {
                    size,
                    mtime_s,
                    mtime_ns,
                    ctime_s,
                    ctime_ns,
                    ino,
                    exec,
                },
                h,
            ),
        );
    }
    Some((written, map))
}

/// Hash the bytes of a file.
pub fn hash_file(path: &Path, buf: &mut [u8]) -> io::Result<([u8; 32], u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match f.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((h.finalize().into(), total))
}

struct Work {
    entry: HashedEntry,
    key: Option<StatKey>,
    from_cache: bool,
}

/// Stat and hash `entries` of `root` using every core, consulting and then updating
/// `cache`.
pub fn hash_entries(root: &Path, entries: &[Entry], cache: &HashCache) -> Result<HashedContext> {
    let started = now_ns();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let next = AtomicUsize::new(0);
    const BATCH: usize = 32;
    let results: Vec<Result<Vec<(usize, Work)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Vec<(usize, Work)>> {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut out = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= entries.len() {
                            break;
                        }
                        let end = (start + BATCH).min(entries.len());
                        for (i, e) in entries.iter().enumerate().take(end).skip(start) {
                            out.push((i, hash_one(root, e, cache, &mut buf)?));
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("hash worker panicked"))
            .collect()
    });
    let mut slots: Vec<Option<Work>> = (0..entries.len()).map(|_| None).collect();
    for r in results {
        for (i, w) in r? {
            slots[i] = Some(w);
        }
    }
    let mut ctx = HashedContext::default();
    let mut to_save = Vec::with_capacity(entries.len());
    for w in slots.into_iter().flatten() {
        if w.entry.kind == EntryKind::File {
            if w.from_cache {
                ctx.cache_hits += 1;
            } else {
                ctx.hashed_files += 1;
            }
            ctx.total_bytes += w.entry.size;
            if let Some(k) = w.key {
                to_save.push((w.entry.rel.clone(), k, w.entry.hash));
            }
        }
        ctx.entries.push(w.entry);
    }
    // Only rewrite the cache when something was (re)hashed or files disappeared.
    if (ctx.hashed_files > 0 || cache.entries.len() != to_save.len())
        && let Err(e) = cache.save(started, &to_save)
    {
        tracing::debug!("could not write the hash cache: {e}");
    }
    Ok(ctx)
}

fn hash_one(root: &Path, e: &Entry, cache: &HashCache, buf: &mut [u8]) -> Result<Work> {
    let abs = root.join(&e.rel);
    let meta = fs::symlink_metadata(&abs).map_err(|err| Error::io(&abs, err))?;
    let mut entry = HashedEntry {
        rel: e.rel.clone(),
        kind: e.kind,
        exec: false,
        size: 0,
        hash: [0; 32],
        link_target: None,
    };
    match e.kind {
        EntryKind::Dir => Ok(Work {
            entry,
            key: None,
            from_cache: false,
        }),
        EntryKind::Symlink => {
            let t = fs::read_link(&abs).map_err(|err| Error::io(&abs, err))?;
            entry.link_target = Some(t.to_string_lossy().into_owned());
            Ok(Work {
                entry,
                key: None,
                from_cache: false,
            })
        }
        EntryKind::File => {
            let key = StatKey::of(&meta);
            entry.exec = key.exec;
            entry.size = key.size;
            if let Some(h) = cache.lookup(&e.rel, &key) {
                entry.hash = h;
                return Ok(Work {
                    entry,
                    key: Some(key),
                    from_cache: true,
                });
            }
            let (h, n) = hash_file(&abs, buf).map_err(|err| Error::io(&abs, err))?;
            entry.hash = h;
            entry.size = n;
            // If the file changed while we read it, do not cache the result.
            let key = if n == key.size { Some(key) } else { None };
            Ok(Work {
                entry,
                key,
                from_cache: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{load_matcher, walk};

    fn digest_of(dir: &Path, cache: &HashCache) -> (String, HashedContext) {
        let m = load_matcher(dir, &[]).unwrap();
        let entries = walk(dir, &m).unwrap();
        let ctx = hash_entries(dir, &entries, cache).unwrap();
        let args = BTreeMap::new();
        let d = input_digest(
            &ctx,
            &DigestInputs {
                dockerfile: "FROM scratch\n",
                build_args: &args,
                target: None,
                platform: None,
                ca_cert: None,
            },
        );
        (d, ctx)
    }

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    #[test]
    fn digest_ignores_mtime_and_order_but_sees_content_mode_and_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(&a.path().join("x/1.txt"), "one");
        write(&a.path().join("y.txt"), "two");
        // created in the other order
        write(&b.path().join("y.txt"), "two");
        write(&b.path().join("x/1.txt"), "one");
        let off = HashCache::disabled();
        let (da, _) = digest_of(a.path(), &off);
        let (db, _) = digest_of(b.path(), &off);
        assert_eq!(da, db);
        assert_eq!(da.len(), 64);
        assert_eq!(tag_of(&da).len(), 16);

        write(&b.path().join("y.txt"), "two!");
        assert_ne!(digest_of(b.path(), &off).0, da);
        write(&b.path().join("y.txt"), "two");
        assert_eq!(digest_of(b.path(), &off).0, da);

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(b.path().join("y.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(digest_of(b.path(), &off).0, da);
        fs::set_permissions(b.path().join("y.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(digest_of(b.path(), &off).0, da, "only the exec bit counts");

        fs::rename(b.path().join("y.txt"), b.path().join("z.txt")).unwrap();
        assert_ne!(digest_of(b.path(), &off).0, da);
    }

    #[test]
    fn other_inputs_change_the_digest() {
        let ctx = HashedContext::default();
        let mut args = BTreeMap::new();
        let base = DigestInputs {
            dockerfile: "FROM a\n",
            build_args: &args,
            target: None,
            platform: None,
            ca_cert: None,
        };
        let d0 = input_digest(&ctx, &base);
        let d1 = input_digest(
            &ctx,
            &DigestInputs {
                dockerfile: "FROM b\n",
                ..base.clone()
            },
        );
        let d2 = input_digest(
            &ctx,
            &DigestInputs {
                target: Some("runtime"),
                ..base.clone()
            },
        );
        let d3 = input_digest(
            &ctx,
            &DigestInputs {
                platform: Some("linux/arm64"),
                ..base.clone()
            },
        );
        let d5 = input_digest(
            &ctx,
            &DigestInputs {
                ca_cert: Some("0f1e"),
                ..base.clone()
            },
        );
        args.insert("A".into(), "1".into());
        let d4 = input_digest(
            &ctx,
            &DigestInputs {
                dockerfile: "FROM a\n",
                build_args: &args,
                target: None,
                platform: None,
                ca_cert: None,
            },
        );
        let all = [d0, d1, d2, d3, d4, d5];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn cache_hits_when_unchanged_and_notices_changes() {
        let cache_dir = tempfile::tempdir().unwrap();
        // SAFETY: this test is the only one touching this variable's value pattern;
        // other tests use HashCache::disabled().
        let dir = tempfile::tempdir().unwrap();
        for i in 0..50 {
            write(
                &dir.path().join(format!("f{i}.txt")),
                &format!("content {i}"),
            );
        }
        // make the files old enough not to be racy
        let old = SystemTime::now() - std::time::Duration::from_secs(10);
        for i in 0..50 {
            let f = fs::File::options()
                .write(true)
                .open(dir.path().join(format!("f{i}.txt")))
                .unwrap();
            f.set_modified(old).unwrap();
        }
        let mut c = HashCache {
            path: Some(cache_dir.path().join("c.bin")),
            ..Default::default()
        };
        let (d1, ctx1) = digest_of(dir.path(), &c);
        assert_eq!(ctx1.hashed_files, 50);
        let bytes = fs::read(cache_dir.path().join("c.bin")).unwrap();
        let (w, e) = parse_cache(&bytes).unwrap();
        c.written_ns = w;
        c.entries = e;
        // ctime is "now" (set_modified changed it), so entries are racy right after
        // the write; pretend the cache was written later to test the hit path.
        c.written_ns += 5_000_000_000;
        let (d2, ctx2) = digest_of(dir.path(), &c);
        assert_eq!(d1, d2);
        assert_eq!(ctx2.cache_hits, 50);
        // a change with the same size: mtime/ctime differ, so it is re-hashed
        write(&dir.path().join("f3.txt"), "CONTENT 3");
        let (d3, ctx3) = digest_of(dir.path(), &c);
        assert_ne!(d1, d3);
        assert_eq!(ctx3.hashed_files, 1);
    }

    #[test]
    fn a_failed_cache_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The cache file's place is taken by a directory: the final rename fails.
        fs::create_dir_all(dir.path().join("c.bin/x")).unwrap();
        let stale = dir.path().join(".tmp-1-2");
        fs::write(&stale, "").unwrap();
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let fresh = dir.path().join(".tmp-3-4");
        fs::write(&fresh, "").unwrap();
        let c = HashCache {
            path: Some(dir.path().join("c.bin")),
            ..Default::default()
        };
        assert!(c.save(now_ns(), &[]).is_err());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // The stale temporary of a dead run goes; another run's current one stays.
        assert_eq!(left, [".tmp-3-4", "c.bin"]);
    }

    #[test]
    fn racy_entries_are_rehashed() {
        let c = HashCache {
            path: None,
            written_ns: 1_000_000_000_000,
            entries: HashMap::from([(
                "a".to_string(),
                (
                    StatKey {
                        size: 1,
                        mtime_s: 1000,
                        mtime_ns: 0,
                        ctime_s: 1000,
                        ctime_ns: 0,
                        ino: 1,
                        exec: false,
                    },
                    [7; 32],
                ),
            )]),
        };
        let k = c.entries["a"].0;
        // mtime == write time: racy
        assert_eq!(c.lookup("a", &k), None);
        let c2 = HashCache {
            written_ns: 2_000_000_000_000,
            ..c
        };
        assert_eq!(c2.lookup("a", &k), Some([7; 32]));
    }
}
