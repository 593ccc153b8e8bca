//! `image-builder frontend-image`: the frontend's own image, made from this very
//! executable and the shared libraries it loads (no base image, no registry).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::build::{Engine, engine_error};
use crate::error::{Error, Result};
use crate::recipe::USER;

/// Repository of the frontend image.
pub const REPOSITORY: &str = "image-builder/frontend";
/// Where the executable sits in the image.
const EXE_IN_IMAGE: &str = "image-builder";

/// The frontend image this executable makes: tagged by the version and a hash of
/// the executable's identity (size, modification time, inode), so a rebuilt binary
/// gets a new image and an unchanged one is found again without reading 50 MB.
pub fn default_reference() -> Result<String> {
    let exe = current_exe()?;
    let m = std::fs::metadata(&exe).map_err(|e| Error::io(&exe, e))?;
    let mut h = Sha256::new();
    for n in [
        m.size(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ino(),
        m.dev(),
    ] {
        h.update(n.to_le_bytes());
    }
    let id = hex::encode(h.finalize());
    Ok(format!(
        "{REPOSITORY}:{}-{}",
        env!("CARGO_PKG_VERSION"),
        &id[..12]
    ))
}

fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))
}

/// The shared libraries `exe` loads, and its loader, as `ldd` lists them.
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(|e| Error::Invalid {
            what: "ldd".into(),
            reason: format!("it cannot run: {e}"),
            fix: "install ldd (Debian: `apt-get install libc-bin`)".into(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !text.contains("statically linked") {
        return Err(Error::Invalid {
            what: format!("{}", exe.display()),
            reason: format!(
                "ldd cannot list its libraries: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            fix: "run image-builder from a regular executable file".into(),
        });
    }
    let mut libs = BTreeSet::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.insert(PathBuf::from(p));
        }
    }
    Ok(libs.into_iter().collect())
}

fn dir_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty())
}

fn file_entry(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data)
}

/// The image's file system: the executable at `/image-builder`, each library at the
/// path the loader looks for it (links resolved to their files), `/tmp`.
pub fn rootfs(exe: &Path) -> Result<Vec<u8>> {
    let libs = shared_libraries(exe)?;
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    let tar_err = |e: std::io::Error| Error::io("<frontend image tar>", e);
    dir_entry(&mut b, "tmp", 0o1777).map_err(tar_err)?;
    let mut dirs = BTreeSet::new();
    for lib in &libs {
        let mut d = lib.parent();
        while let Some(p) = d.filter(|p| *p != Path::new("/")) {
            dirs.insert(p.to_path_buf());
            d = p.parent();
        }
    }
    for d in &dirs {
        let rel = d.to_string_lossy();
        dir_entry(&mut b, rel.trim_start_matches('/'), 0o755).map_err(tar_err)?;
    }
    for lib in &libs {
        let data = std::fs::read(lib).map_err(|e| Error::io(lib, e))?;
        let rel = lib.to_string_lossy();
        file_entry(&mut b, rel.trim_start_matches('/'), &data, 0o755).map_err(tar_err)?;
    }
    let data =
        stripped(exe).map_or_else(|| std::fs::read(exe).map_err(|e| Error::io(exe, e)), Ok)?;
    file_entry(&mut b, EXE_IN_IMAGE, &data, 0o755).map_err(tar_err)?;
    b.into_inner().map_err(tar_err)
}

/// The executable without symbols and debug information (`strip`), when binutils
/// are there: a smaller image starts faster, and BuildKit starts it on every build.
fn stripped(exe: &Path) -> Option<Vec<u8>> {
    let out = std::env::temp_dir().join(format!("image-builder-frontend-{}", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(exe)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let data = ok.then(|| std::fs::read(&out).ok()).flatten();
    let _ = std::fs::remove_file(&out);
    data
}

/// Build the frontend image as `reference` unless it exists (or `force`). Returns
/// whether it was built.
pub async fn ensure(engine: &Engine, reference: &str, force: bool) -> Result<bool> {
    if !force && engine.image(reference).await?.is_some() {
        return Ok(false);
    }
    let exe = current_exe()?;
    let tar = tokio::task::spawn_blocking(move || rootfs(&exe))
        .await
        .map_err(|e| Error::Invalid {
            what: "frontend image".into(),
            reason: format!("making its file system crashed: {e}"),
            fix: "report this bug".into(),
        })??;
    let (repo, tag) = match reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((r, t)) => (r.to_string(), t.to_string()),
        None => (reference.to_string(), "latest".to_string()),
    };
    let changes = vec![
        format!("USER {USER}"),
        format!("ENTRYPOINT [\"/{EXE_IN_IMAGE}\", \"frontend\"]"),
        "LABEL moby.buildkit.frontend.network.none=true".to_string(),
        format!(
            "LABEL org.opencontainers.image.title=image-builder-frontend org.opencontainers.image.version={}",
            env!("CARGO_PKG_VERSION")
        ),
    ];
    let mut stream = engine.docker.create_image(
        Some(CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo),
            tag: Some(tag),
            changes,
            ..Default::default()
        }),
        Some(bollard::body_full(tar.into())),
        None,
    );
    while let Some(item) = stream.next().await {
        item.map_err(|e| engine_error(&e))?;
    }
    if engine.image(reference).await?.is_none() {
        return Err(Error::Engine {
            reason: format!("the engine imported the frontend image but {reference} is missing"),
            fix: "check `docker images` and the engine's logs".into(),
        });
    }
    Ok(true)
}
