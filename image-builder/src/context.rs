//! The build context: which files go to the engine, and the deterministic tar that
//! carries them.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::{HashedContext, HashedEntry};
use crate::error::{Error, Result};
use crate::ignore::{Matcher, ParentInfo};

/// Name under which a generated Dockerfile travels in the context. The synthetic
/// `.dockerignore` sent with it makes the engine drop it (and itself) before `COPY`.
pub const GENERATED_DOCKERFILE: &str = ".image-builder.Dockerfile";

/// Modification time written for every tar entry: 1980-01-02T00:00:00Z (after the ZIP
/// epoch, so Python wheels built from the context still work).
pub const NORMALISED_MTIME: u64 = 315_619_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// A path in the context, relative to its root, with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rel: String,
    pub kind: EntryKind,
}

/// Read `.dockerignore` (if any) of `dir` and compile it after the built-in defaults
/// and before `stack`'s own excludes ([`crate::ignore::stack_excludes`]).
pub fn load_matcher(dir: &Path, stack: &[&str]) -> Result<Matcher> {
    let path = dir.join(".dockerignore");
    let text = match fs::read(&path) {
        Ok(b) => String::from_utf8(b).map_err(|_| Error::Ignore {
            pattern: "(whole file)".into(),
            reason: format!("{} is not valid UTF-8", path.display()),
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    Matcher::for_stack(&text, true, stack)
}

/// Walk `root`, honouring `matcher`, and return the included entries sorted by path.
/// The user's `.dockerignore` itself is not part of the context (a synthetic one is
/// sent instead).
pub fn walk(root: &Path, matcher: &Matcher) -> Result<Vec<Entry>> {
    let mut out = Vec::with_capacity(1024);
    walk_dir(root, "", matcher, &ParentInfo::default(), &mut out)?;
    out.sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(out)
}

fn walk_dir(
    abs: &Path,
    rel: &str,
    matcher: &Matcher,
    parent: &ParentInfo,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let rd = fs::read_dir(abs).map_err(|e| Error::io(abs, e))?;
    for de in rd {
        let de = de.map_err(|e| Error::io(abs, e))?;
        let name = de.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::Invalid {
                what: format!("file name {:?} in {}", name, abs.display()),
                reason: "it is not valid UTF-8".into(),
                fix: "rename the file or exclude it in .dockerignore".into(),
            });
        };
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if rel.is_empty() && name == ".dockerignore" {
            continue;
        }
        let ft = de.file_type().map_err(|e| Error::io(de.path(), e))?;
        let (excluded, info) = matcher.matches_with_parent(&child_rel, parent);
        if ft.is_dir() {
            if excluded && !matcher.may_reinclude_below(&child_rel) {
                continue;
            }
            if !excluded {
                out.push(Entry {
                    rel: child_rel.clone(),
                    kind: EntryKind::Dir,
                });
            }
            walk_dir(&de.path(), &child_rel, matcher, &info, out)?;
        } else if !excluded {
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_file() {
                EntryKind::File
            } else {
                // sockets, fifos, devices: Docker skips them too
                continue;
            };
            out.push(Entry {
                rel: child_rel,
                kind,
            });
        }
    }
    Ok(())
}

/// Extra files added to the tar after the context (e.g. the generated Dockerfile).
#[derive(Debug, Clone)]
pub struct ExtraFile {
    pub name: String,
    pub content: Vec<u8>,
}

/// The synthetic files that go with a build: the Dockerfile when it is generated (or
/// excluded from the context by the user's `.dockerignore`) and a `.dockerignore`
/// naming it, so the engine removes both from the context before any `COPY`, just as
/// the Docker CLI arranges it.
pub fn extra_files(dockerfile_name: &str, text: &str, present_in_context: bool) -> Vec<ExtraFile> {
    if present_in_context {
        return Vec::new();
    }
    vec![
        ExtraFile {
            name: dockerfile_name.to_string(),
            content: text.as_bytes().to_vec(),
        },
        ExtraFile {
            name: ".dockerignore".into(),
            content: format!("{dockerfile_name}\n.dockerignore\n").into_bytes(),
        },
    ]
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(NORMALISED_MTIME);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

/// Write the deterministic tar of `ctx` (plus `extra`) to `w`. Every file's bytes are
/// checked against the hash the digest was computed from, so a file changed during
/// the build cannot end up in an image under the wrong tag.
pub fn write_tar<W: Write>(
    root: &Path,
    ctx: &HashedContext,
    extra: &[ExtraFile],
    w: W,
) -> Result<W> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Deterministic);
    let tar_err = |e: io::Error| Error::io(PathBuf::from("<build context tar>"), e);
    let mut buf = Vec::new();
    for e in &ctx.entries {
        append_entry(&mut b, root, e, &mut buf).map_err(|err| match err {
            TarErr::Io(p, e) => Error::io(p, e),
            TarErr::Changed(p) => Error::Invalid {
                what: format!("context file {}", p.display()),
                reason: "it changed while the image was being built".into(),
                fix: "run the build again once the file is no longer being written".into(),
            },
        })?;
    }
    for x in extra {
        let mut h = header(tar::EntryType::Regular, 0o644, x.content.len() as u64);
        b.append_data(&mut h, &x.name, &x.content[..])
            .map_err(tar_err)?;
    }
    b.into_inner().map_err(tar_err)
}

enum TarErr {
    Io(PathBuf, io::Error),
    Changed(PathBuf),
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    e: &HashedEntry,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), TarErr> {
    let abs = root.join(&e.rel);
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |err| TarErr::Io(p, err)
    };
    match e.kind {
        EntryKind::Dir => {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, format!("{}/", e.rel), io::empty())
                .map_err(io_err(&abs))?;
        }
        EntryKind::Symlink => {
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            b.append_link(&mut h, &e.rel, e.link_target.as_deref().unwrap_or(""))
                .map_err(io_err(&abs))?;
        }
        EntryKind::File => {
            buf.clear();
            let mut f = fs::File::open(&abs).map_err(io_err(&abs))?;
            f.read_to_end(buf).map_err(io_err(&abs))?;
            let sum: [u8; 32] = Sha256::digest(&buf[..]).into();
            if sum != e.hash {
                return Err(TarErr::Changed(abs));
            }
            let mode = if e.exec { 0o755 } else { 0o644 };
            let mut h = header(tar::EntryType::Regular, mode, buf.len() as u64);
            b.append_data(&mut h, &e.rel, &buf[..])
                .map_err(io_err(&abs))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_honours_defaults_and_dockerignore() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for p in [
            "src/a.js",
            "src/b.js",
            ".env",
            ".env.local",
            "node_modules/x/index.js",
            ".git/HEAD",
            "docs/keep.md",
            "docs/drop.md",
            "app/__pycache__/m.pyc",
            ".next/cache/x",
        ] {
            let p = r.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        fs::write(r.join(".dockerignore"), "docs\n!docs/keep.md\n").unwrap();
        let m = load_matcher(r, &[]).unwrap();
        let rels: Vec<String> = walk(r, &m).unwrap().into_iter().map(|e| e.rel).collect();
        assert_eq!(
            rels,
            vec!["app", "docs/keep.md", "src", "src/a.js", "src/b.js"]
        );
    }
}
