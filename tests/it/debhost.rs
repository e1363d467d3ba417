//! The booted Debian test server: a minimal Debian 12 root (built once by
//! tests/beds/debian-root.sh and cached under target/testbed/), booted with
//! systemd-nspawn in its own network namespace, on a copy-on-write overlay so
//! every test starts from the same fresh system. sshd answers on the guest's
//! address with a test key for root; apt reaches the mirror through an
//! apt-cacher-ng run on the host side of the veth (the namespace has no route
//! out). Torn down on drop: the guest (SIGTERM to nspawn's PID shuts it
//! down), apt-cacher-ng by PID, the overlay, the namespace, the folder.
//!
//! The guest runs a real systemd, so a package's service really gets enabled
//! and started; it cannot start containers (cgroup v1 under nspawn is read
//! only), so app deployment is proven on the ordinary namespace hosts.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tomo::transport::ssh::{Credential, ExecOptions, ExecOutput, HostKeyPolicy, SshSession};

use crate::harness::repo;
use crate::hosts::wait_until;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Address block of the Debian test servers (`10.234.N.1` host side, `.2` guest).
const NET: &str = "10.234";

pub struct DebianHost {
    pub ns: String,
    /// The guest's address (sshd on port 22).
    pub addr: String,
    /// The host side of the veth, where apt-cacher-ng listens.
    pub proxy_addr: String,
    pub dir: tempfile::TempDir,
    /// root's private key.
    pub key: PathBuf,
    pub fingerprint: String,
    /// How long building (or finding) the cached root and booting took.
    pub boot_time: Duration,
    nspawn: Option<Child>,
    acng: Option<Child>,
    merged: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The cached Debian root, built on first use (about 3 minutes).
pub fn debian_root() -> PathBuf {
    let script = repo().join("tests/beds/debian-root.sh");
    let cache = repo().join("target/testbed");
    PathBuf::from(run(&script.display().to_string(), &[&cache.display().to_string()]))
}

/// The mirror this machine's apt uses (the guest's apt reaches it through the proxy).
fn mirror() -> String {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    sources
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

impl DebianHost {
    /// Boots a fresh Debian server and waits until its sshd answers.
    pub fn boot() -> DebianHost {
        let start = Instant::now();
        let root = debian_root();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let octet = 10 + (pid.wrapping_mul(11) + n * 7) % 240;
        let ns = format!("td{}x{n}", pid % 100_000);
        let dir = tempfile::Builder::new().prefix("tomo-debhost").tempdir_in("/tmp").unwrap();
        let d = dir.path().to_path_buf();
        let addr = format!("{NET}.{octet}.2");
        let proxy_addr = format!("{NET}.{octet}.1");
        // The network namespace and its veth.
        run("ip", &["netns", "add", &ns]);
        let (host_if, guest_if) = (format!("{ns}h"), format!("{ns}n"));
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &guest_if]);
        run("ip", &["link", "set", &guest_if, "netns", &ns]);
        run("ip", &["addr", "add", &format!("{proxy_addr}/24"), "dev", &host_if]);
        run("ip", &["link", "set", &host_if, "up"]);
        run("ip", &["netns", "exec", &ns, "ip", "addr", "add", &format!("{addr}/24"), "dev", &guest_if]);
        run("ip", &["netns", "exec", &ns, "ip", "link", "set", &guest_if, "up"]);
        run("ip", &["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        // A copy-on-write view of the cached root.
        let merged = d.join("root");
        for sub in ["upper", "work", "root", "docker-data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!("lowerdir={},upperdir={}/upper,workdir={}/work", root.display(), d.display(), d.display()),
                &merged.display().to_string(),
            ],
        );
        let mut host = DebianHost {
            ns,
            addr,
            proxy_addr,
            key: d.join("userkey"),
            fingerprint: String::new(),
            boot_time: Duration::ZERO,
            nspawn: None,
            acng: None,
            merged,
            dir,
        };
        host.prepare_guest();
        host.start_proxy();
        host.start_guest();
        host.boot_time = start.elapsed();
        host
    }

    /// Host key, root's authorised key, apt's proxy: written into the guest before it boots.
    fn prepare_guest(&mut self) {
        let d = self.dir.path().display().to_string();
        let m = &self.merged;
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/userkey")]);
        let etc_ssh = m.join("etc/ssh").display().to_string();
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &format!("{etc_ssh}/ssh_host_ed25519_key")]);
        self.fingerprint = run("ssh-keygen", &["-lf", &format!("{etc_ssh}/ssh_host_ed25519_key.pub")])
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let ssh_dir = m.join("root/.ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(format!("{d}/userkey.pub"), ssh_dir.join("authorized_keys")).unwrap();
        run("chmod", &["700", &ssh_dir.display().to_string()]);
        std::fs::write(
            m.join("etc/apt/apt.conf.d/01proxy"),
            format!("Acquire::http::Proxy \"http://{}:3150\";\n", self.proxy_addr),
        )
        .unwrap();
    }

    /// apt-cacher-ng on the host side of the veth, with a configuration and
    /// cache of its own (nothing under /etc or /var of this machine), on a
    /// port of its own (3150: the package's own service, if it runs, holds 3142).
    pub fn start_proxy(&mut self) {
        let c = self.dir.path().join("acng");
        for sub in ["cache", "log"] {
            std::fs::create_dir_all(c.join(sub)).unwrap();
        }
        std::fs::write(c.join("backends_debian"), format!("{}/\n", mirror())).unwrap();
        let conf = format!(
            "CacheDir: {c}/cache\nLogDir: {c}/log\nSupportDir: /usr/lib/apt-cacher-ng\n\
             Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n\
             BindAddress: {addr}\nPort: 3150\nPidFile: {c}/pid\nSocketPath: {c}/socket\nForeGround: 1\n\
             ExThreshold: 4\n",
            c = c.display(),
            addr = self.proxy_addr
        );
        std::fs::write(c.join("acng.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/apt-cacher-ng")
            .args(["-c", &c.display().to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(c.join("stderr.log")).unwrap())
            .spawn()
            .expect("apt-cacher-ng starts (tests/run.sh installs it)");
        self.acng = Some(child);
        let a = format!("{}:3150", self.proxy_addr);
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(a.as_str()).is_ok())
            .unwrap_or_else(|_| panic!("apt-cacher-ng does not listen on {a}; see {}", c.display()));
    }

    /// Stops the package proxy (the guest then has no way to the mirror).
    pub fn stop_proxy(&mut self) {
        if let Some(mut c) = self.acng.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn start_guest(&mut self) {
        // nspawn keeps its runtime state here; this machine's PID 1 is not systemd.
        std::fs::create_dir_all("/run/systemd/nspawn").unwrap();
        let mounted =
            Command::new("mountpoint").args(["-q", "/run/systemd/nspawn"]).status().is_ok_and(|s| s.success());
        if !mounted {
            let _ = Command::new("mount").args(["-t", "tmpfs", "tmpfs", "/run/systemd/nspawn"]).status();
        }
        let d = self.dir.path();
        let child = Command::new("systemd-nspawn")
            .args([
                "--keep-unit",
                "--register=no",
                "--capability=all",
                "--console=passive",
                "-b",
                "-D",
                &self.merged.display().to_string(),
                &format!("--network-namespace-path=/var/run/netns/{}", self.ns),
                "-M",
                &self.ns,
                // Docker's data on the host's file system (overlay2 cannot sit on the overlay root).
                &format!("--bind={}:/var/lib/docker", d.join("docker-data").display()),
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("nspawn.log")).unwrap())
            .stderr(Stdio::from(std::fs::File::create(d.join("nspawn.err")).unwrap()))
            .spawn()
            .expect("systemd-nspawn starts (tests/run.sh installs systemd-container)");
        self.nspawn = Some(child);
        let ns = self.ns.clone();
        let addr = self.addr.clone();
        // sshd listens inside the namespace: probe it from there, then from the host.
        wait_until(Duration::from_secs(60), || std::net::TcpStream::connect((addr.as_str(), 22)).is_ok())
            .unwrap_or_else(|_| panic!("the Debian guest {ns} did not start sshd; see {}", d.display()));
    }

    /// A root SSH session to the guest.
    pub fn session(&self, rt: &tokio::runtime::Runtime) -> SshSession {
        let policy = HostKeyPolicy::Expect(self.fingerprint.clone());
        let cred = Credential::KeyFile(self.key.clone());
        rt.block_on(SshSession::connect(&self.addr, 22, "root", &cred, policy, Duration::from_secs(20)))
            .expect("root logs in to the Debian guest")
    }

    /// Runs a shell command in the guest as root over SSH.
    pub fn sh(&self, rt: &tokio::runtime::Runtime, script: &str, timeout: Duration) -> ExecOutput {
        let s = self.session(rt);
        rt.block_on(s.exec(&["sh", "-c", script], ExecOptions { sudo: false, timeout })).expect("exec in the guest")
    }

    #[allow(dead_code)] // the install tests use it
    /// A Server manifest for this guest (root, key file, pinned host key).
    pub fn server_yaml(&self, name: &str, docker: &str) -> String {
        format!(
            "kind: Server\nname: {name}\nhost: {}\nuser: root\nauth: {{key_file: {}}}\nhost_key: \"{}\"\ndocker: {docker}\n",
            self.addr,
            self.key.display(),
            self.fingerprint,
        )
    }
}

impl Drop for DebianHost {
    fn drop(&mut self) {
        if let Some(mut c) = self.nspawn.take() {
            // SIGTERM asks systemd in the guest to shut down.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            if wait_until(Duration::from_secs(20), || c.try_wait().is_ok_and(|s| s.is_some())).is_err() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.stop_proxy();
        // Mounts left below the guest's root (and the root itself).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip").args(["link", "del", &format!("{}h", self.ns)]).stderr(Stdio::null()).status();
    }
}

#[test]
fn the_debian_bed_boots_with_systemd_sshd_and_apt_through_the_proxy() {
    let h = DebianHost::boot();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let out = h.sh(
        &rt,
        "systemctl is-system-running --wait; . /etc/os-release; echo \"$ID $VERSION_ID\"; \
         apt-get update -o Acquire::Retries=0 >/dev/null && apt-cache policy docker.io | grep -c Candidate",
        Duration::from_secs(120),
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "running\ndebian 12\n1\n", "{out:?}");
    // apt went through the proxy on the host side (nothing else is routable).
    let log = std::fs::read_to_string(h.dir.path().join("acng/log/apt-cacher.log")).unwrap_or_default();
    assert!(log.contains("InRelease"), "apt-cacher-ng saw no index request: {log}");
    // No Docker on the fresh server.
    let out = h.sh(
        &rt,
        "command -v docker dockerd; systemctl list-unit-files docker.service | grep -c docker",
        Duration::from_secs(20),
    );
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
}
