//! The stand-in image: one tiny image with a `CMD`, loaded once under every
//! image name the fixture apps use (no registry is reachable).
//!
//! The image is built byte for byte the same in every run (a `docker load`
//! archive written here, fixed timestamps), so its id is always the same:
//! runs in parallel, even in separate processes, load the same image and
//! tags. A shared lock on a file in /tmp is held while a run uses the tags;
//! the last run out (the one that gets the lock exclusively) removes the image.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::fleet::docker_try;

const LOCK: &str = "/tmp/tomo-equiv-images.lock";

/// The stand-in image's command (it never runs: containers are only created).
pub const CMD: &[&str] = &["standin", "--serve"];

/// The stand-in image, loaded under some names; removed on drop when no other
/// run still uses it.
pub struct StandIn {
    pub id: String,
    lock: File,
}

fn sh(script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the `docker load` archive of the stand-in image tagged `tags` in
/// `dir`; returns the archive's path and the image id.
fn archive(dir: &Path, tags: &[String]) -> (std::path::PathBuf, String) {
    let (root, img) = (dir.join("root"), dir.join("img"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&img).unwrap();
    std::fs::write(root.join("standin"), "a stand-in: containers of this image are created, never started\n").unwrap();
    let layer = img.join("layer.tar");
    sh(&format!(
        "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C '{}' -cf '{}' .",
        root.display(),
        layer.display()
    ));
    let diff_id = sha256_hex(&std::fs::read(&layer).unwrap());
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "created": "2000-01-01T00:00:00Z",
        "config": {"Cmd": CMD},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    })
    .to_string();
    let id = sha256_hex(config.as_bytes());
    std::fs::write(img.join(format!("{id}.json")), &config).unwrap();
    let manifest = serde_json::json!([{"Config": format!("{id}.json"), "RepoTags": tags, "Layers": ["layer.tar"]}]);
    std::fs::write(img.join("manifest.json"), manifest.to_string()).unwrap();
    let tar = dir.join("standin.tar");
    sh(&format!("tar -C '{}' -cf '{}' .", img.display(), tar.display()));
    (tar, format!("sha256:{id}"))
}

/// `docker.io/library/x:1` and `x:1` name the same image.
fn normalize(tag: &str) -> String {
    let t = tag.strip_prefix("docker.io/").unwrap_or(tag);
    t.strip_prefix("library/").unwrap_or(t).to_string()
}

/// Refuses to take over a name that another image (not an earlier stand-in)
/// already has on this Engine.
fn check_foreign(tags: &[String], id: &str) {
    let listed =
        docker_try(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).unwrap_or_default();
    for line in listed.lines() {
        let Some((tag, other)) = line.split_once(' ') else { continue };
        let foreign = other != id && tags.iter().any(|t| normalize(t) == normalize(tag));
        assert!(!foreign, "image {tag} exists on this Engine ({other}); the equivalence test would retag it");
    }
}

impl StandIn {
    /// Loads the stand-in image under `tags` (all of them, in one load).
    pub fn load(tags: &[String]) -> StandIn {
        let lock = File::options().create(true).append(true).open(LOCK).expect("lock file");
        lock.lock_shared().expect("shared lock on the stand-in image");
        let dir = tempfile::tempdir().unwrap();
        let (tar, id) = archive(dir.path(), tags);
        check_foreign(tags, &id);
        let out = Command::new("docker").arg("load").arg("-q").arg("-i").arg(&tar).output().expect("docker load");
        assert!(out.status.success(), "docker load: {}", String::from_utf8_lossy(&out.stderr));
        StandIn { id, lock }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Only when no other run holds the lock (shared → exclusive).
        if self.lock.try_lock().is_ok() {
            let _ = docker_try(&["rmi", "-f", &self.id]);
        }
        let _ = self.lock.unlock();
    }
}
