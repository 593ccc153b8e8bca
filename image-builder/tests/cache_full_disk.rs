//! On a full disk the hash cache cannot be written: the build goes on (the
//! cache only saves work) and no zero-byte `.tmp-*` file is left behind.
//! The full disk is a real one: a 16 KiB tmpfs, filled up.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

use std::path::Path;
use std::process::Command;

struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_no_temporary_files_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&cache)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "this test mounts a tmpfs: run it as root"
    );
    let _unmount = Mounted(&cache);
    std::fs::create_dir_all(cache.join("files")).unwrap();
    // Fill the file system to the last block.
    let fill = std::fs::write(cache.join("fill"), vec![0u8; 64 * 1024]);
    assert!(fill.is_err(), "the tmpfs is not full");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    for i in 0..20 {
        std::fs::write(app.join(format!("f{i}.txt")), format!("content {i}")).unwrap();
    }
    std::fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY . /\nUSER 1001:1001\n",
    )
    .unwrap();
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_image-builder"))
            .arg("hash")
            .arg(&app)
            .env("IMAGE_BUILDER_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left: Vec<String> = std::fs::read_dir(cache.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| !n.starts_with(".tmp-")),
        "temporary files left: {left:?}"
    );
}
