//! A test fleet on the real local Docker Engine: a temporary manifest folder
//! and data directory, app names unique to the test (so tests run in
//! parallel), a busybox image built locally (no registry), and cleanup of
//! every container, network and volume the test's apps left behind.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::{Run, Tomo};

/// The image every test service runs: busybox, imported without a registry.
pub const IMAGE: &str = "tomo-test/busybox:1";

static IMAGE_READY: Mutex<bool> = Mutex::new(false);
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs the docker CLI; panics with its output on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI runs (tests/run.sh installs it)");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Like `docker`, but returns None on failure.
pub fn docker_try(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Imports `tag` from the machine's static busybox (once per process).
pub fn ensure_image(tag: &str) {
    let mut ready = IMAGE_READY.lock().unwrap_or_else(|p| p.into_inner());
    if tag == IMAGE && *ready {
        return;
    }
    if docker_try(&["image", "inspect", tag]).is_none() {
        build_image(tag, "");
    }
    if tag == IMAGE {
        *ready = true;
    }
}

/// Builds a busybox image tagged `tag`; `marker` makes images with distinct ids.
pub fn build_image(tag: &str, marker: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox-static is installed (tests/run.sh installs it)");
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for app in ["sh", "httpd", "sleep", "wget", "echo", "cat", "true", "false", "mkdir", "ls", "env", "date"] {
        std::os::unix::fs::symlink("busybox", bin.join(app)).unwrap();
    }
    std::fs::write(dir.path().join("marker"), marker).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C '{}' -c . | docker import - '{tag}' >/dev/null", dir.path().display()))
        .status()
        .unwrap();
    assert!(status.success(), "cannot import {tag}");
}

/// A fleet for one test.
pub struct Fleet {
    pub tomo: Tomo,
    pub prefix: String,
}

impl Fleet {
    pub fn new() -> Fleet {
        ensure_image(IMAGE);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("t{}x{n}", std::process::id() % 100_000);
        let tomo = Tomo::new().env("DATA_DIRECTORY", "data").env("TOMO_LOG", "warn");
        Fleet { tomo, prefix }
    }

    /// An app name unique to this test.
    pub fn app(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Writes a manifest file (the text may use `{p}` for the prefix).
    pub fn manifest(&self, rel: &str, text: &str) {
        let text = text.replace("{p}", &self.prefix).replace("{image}", IMAGE);
        let path = self.tomo.path().join("state").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn remove_manifest(&self, rel: &str) {
        std::fs::remove_file(self.tomo.path().join("state").join(rel)).unwrap();
    }

    pub fn tomo(&self, args: &[&str]) -> Run {
        self.tomo.run(args)
    }

    /// `tomo apply --auto-approve`, asserting success.
    pub fn apply(&self) -> Run {
        let r = self.tomo(&["apply", "--auto-approve"]);
        assert_eq!(r.code, 0, "apply failed:\n{}", r.all());
        r
    }

    /// `tomo plan`, asserting it found nothing to do.
    pub fn assert_converged(&self) {
        let r = self.tomo(&["plan", "--detailed-exitcode"]);
        assert_eq!(r.code, 0, "expected no changes:\n{}", r.all());
        assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    }

    /// A container's field through `docker inspect -f`.
    pub fn inspect(&self, container: &str, format: &str) -> String {
        docker(&["inspect", "-f", format, container])
    }

    pub fn id(&self, container: &str) -> String {
        self.inspect(container, "{{.Id}}")
    }

    pub fn exists(&self, container: &str) -> bool {
        docker_try(&["inspect", "--type", "container", container]).is_some()
    }

    /// Removes this test's networks, by id (names may be ambiguous).
    pub fn remove_networks(&self) {
        if let Some(nets) = docker_try(&["network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}"]) {
            for (id, _) in nets.lines().filter_map(|l| l.split_once(' ')).filter(|(_, n)| n.starts_with(&self.prefix)) {
                let _ = docker_try(&["network", "rm", id]);
            }
        }
    }

    /// Names of this test's containers.
    pub fn containers(&self) -> Vec<String> {
        let all = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        let mut v: Vec<String> = all.lines().filter(|n| n.starts_with(&self.prefix)).map(String::from).collect();
        v.sort();
        v
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in self.containers() {
            let _ = docker_try(&["rm", "-f", "-v", &c]);
        }
        self.remove_networks();
        if let Some(vols) = docker_try(&["volume", "ls", "--format", "{{.Name}}"]) {
            for v in vols.lines().filter(|v| v.starts_with(&self.prefix)) {
                let _ = docker_try(&["volume", "rm", v]);
            }
        }
    }
}

/// A busybox web server answering with `body` (as a manifest command list).
pub fn httpd(body: &str) -> String {
    format!("[\"sh\", \"-c\", \"mkdir -p /w && echo {body} > /w/index.html && exec httpd -f -p 80 -h /w\"]")
}

/// A healthcheck that passes once the web server answers.
pub const HEALTHY: &str =
    "{test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"], interval: 1s, retries: 30}";
