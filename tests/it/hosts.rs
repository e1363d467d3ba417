//! Test servers: each a network namespace with its own address, its own
//! OpenSSH server and (optionally) its own Docker Engine, built from scratch
//! and torn down on drop (processes by PID, the namespace, the folder).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::fleet::{IMAGE, ensure_image};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A user with a password, for password-auth tests.
pub const PW_USER: &str = "tomotest";
pub const PW: &str = "pw-for-tomo-tests-1";

pub struct TestHost {
    pub ns: String,
    pub addr: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The root user's private key.
    pub key: PathBuf,
    pub fingerprint: String,
    pub socket: String,
    sshd: Option<Child>,
    dockerd: Option<Child>,
    octet: u32,
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestHost {
    /// A host with sshd, and with its own dockerd when `docker` is set.
    pub fn new(docker: bool) -> TestHost {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // Held until this host's route exists: another host of this process
        // started at the same time does not take the same subnet.
        static CHOOSING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let choosing = CHOOSING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let octet = free_octet(pid.wrapping_mul(7) + n * 3);
        let ns = format!("tt{}x{n}", pid % 100_000);
        let host_if = format!("{ns}h");
        let dir = tempfile::Builder::new().prefix("tomo-host").tempdir_in("/tmp").unwrap();
        let d = dir.path().display().to_string();
        run("ip", &["netns", "add", &ns]);
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &format!("{ns}n")]);
        run("ip", &["link", "set", &format!("{ns}n"), "netns", &ns]);
        run("ip", &["addr", "add", &format!("10.232.{octet}.1/24"), "dev", &host_if]);
        run("ip", &["link", "set", &host_if, "up"]);
        drop(choosing);
        run(
            "ip",
            &["netns", "exec", &ns, "ip", "addr", "add", &format!("10.232.{octet}.2/24"), "dev", &format!("{ns}n")],
        );
        run("ip", &["netns", "exec", &ns, "ip", "link", "set", &format!("{ns}n"), "up"]);
        run("ip", &["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        let addr = format!("10.232.{octet}.2");
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/hostkey")]);
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/userkey")]);
        std::fs::copy(format!("{d}/userkey.pub"), format!("{d}/authorized_keys")).unwrap();
        let fingerprint =
            run("ssh-keygen", &["-lf", &format!("{d}/hostkey.pub")]).split_whitespace().nth(1).unwrap().to_string();
        ensure_password_user();
        let config = format!(
            "ListenAddress {addr}\nPort 22\nHostKey {d}/hostkey\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication yes\nAllowStreamLocalForwarding yes\nMaxStartups 100:30:200\n"
        );
        std::fs::write(format!("{d}/sshd_config"), config).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut host = TestHost {
            ns,
            addr,
            port: 22,
            key: dir.path().join("userkey"),
            fingerprint,
            socket: format!("{d}/docker.sock"),
            dir,
            sshd: None,
            dockerd: None,
            octet,
        };
        host.start_sshd();
        if docker {
            host.start_dockerd(octet);
        }
        host
    }

    fn nsenter(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/var/run/netns/{}", self.ns)).arg(program);
        c
    }

    pub fn start_sshd(&mut self) {
        let d = self.dir.path().display().to_string();
        let log = std::fs::File::create(format!("{d}/sshd.log")).unwrap();
        let child = self
            .nsenter("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &format!("{d}/sshd_config")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts (tests/run.sh installs openssh-server)");
        self.sshd = Some(child);
        // Generous: under the suite's parallel load sshd has taken over 10 s.
        let listening = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect((self.addr.as_str(), self.port)).is_ok()
        });
        if listening.is_err() {
            let exited = self.sshd.as_mut().and_then(|c| c.try_wait().ok().flatten());
            let log = std::fs::read_to_string(format!("{d}/sshd.log")).unwrap_or_default();
            panic!("sshd on {} does not listen (exited: {exited:?}); its log:\n{log}", self.addr);
        }
    }

    /// Stops sshd (the server becomes unreachable).
    pub fn stop_sshd(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every sshd process of the host, the connections' too (`kill -9`).
    /// The PIDs of the processes named `comm` that this host's sshd runs
    /// (its sessions' commands), however deep.
    pub fn session_processes(&self, comm: &str) -> Vec<u32> {
        let Some(root) = self.sshd.as_ref().map(Child::id) else { return Vec::new() };
        let (mut todo, mut found) = (vec![root], Vec::new());
        while let Some(pid) = todo.pop() {
            let kids = Command::new("pgrep").args(["-P", &pid.to_string()]).output().unwrap();
            for kid in String::from_utf8_lossy(&kids.stdout).split_whitespace().filter_map(|k| k.parse::<u32>().ok()) {
                let name = std::fs::read_to_string(format!("/proc/{kid}/comm")).unwrap_or_default();
                if name.trim() == comm {
                    found.push(kid);
                }
                todo.push(kid);
            }
        }
        found
    }

    /// Limits the host's link to `rate` (`tc` rate, e.g. `1gbit`) each way:
    /// a token bucket on both ends of its veth pair.
    pub fn shape_link(&self, rate: &str) {
        let shape = ["qdisc", "add", "dev", "", "root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms"];
        let host_if = format!("{}h", self.ns);
        let mut args = shape;
        args[3] = &host_if;
        run("tc", &args);
        let ns_if = format!("{}n", self.ns);
        args[3] = &ns_if;
        run("ip", &[&["netns", "exec", &self.ns, "tc"][..], &args].concat());
    }

    pub fn kill_sshd(&mut self) {
        for pid in run("ip", &["netns", "pids", &self.ns]).lines() {
            if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sshd") {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        if let Some(mut c) = self.sshd.take() {
            let _ = c.wait();
        }
    }

    /// Stops this host's dockerd (SIGTERM, as a service restart does) and starts it again.
    pub fn restart_dockerd(&mut self) {
        if let Some(mut c) = self.dockerd.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        self.start_dockerd(self.octet);
    }

    fn start_dockerd(&mut self, octet: u32) {
        let d = self.dir.path().display().to_string();
        let child = self
            .nsenter("dockerd")
            .args([
                "--data-root",
                &format!("{d}/data"),
                "--exec-root",
                &format!("{d}/exec"),
                "--pidfile",
                &format!("{d}/docker.pid"),
                "-H",
                &format!("unix://{}", self.socket),
                "--bip",
                &format!("172.31.{octet}.1/24"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(format!("{d}/dockerd.log")).unwrap())
            .spawn()
            .expect("dockerd starts");
        self.dockerd = Some(child);
        let sock = self.socket.clone();
        wait_until(Duration::from_secs(30), || {
            Command::new("docker")
                .args(["-H", &format!("unix://{sock}"), "version"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|_| panic!("dockerd in {} did not start; see {d}/dockerd.log", self.ns));
        ensure_image(IMAGE);
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("docker save {IMAGE} | docker -H unix://{sock} load -q >/dev/null"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot load the test image");
    }

    /// The docker CLI against this host's engine.
    pub fn docker(&self, args: &[&str]) -> String {
        let mut all = vec!["-H".to_string(), format!("unix://{}", self.socket)];
        all.extend(args.iter().map(|a| a.to_string()));
        run("docker", &all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A Server manifest for this host (root, key file, pinned host key).
    pub fn server_yaml(&self, name: &str) -> String {
        format!(
            "kind: Server\nname: {name}\nhost: {}\nuser: root\nauth: {{key_file: {}}}\nhost_key: \"{}\"\ndocker: {{socket: {}}}\n",
            self.addr,
            self.key.display(),
            self.fingerprint,
            self.socket
        )
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop_sshd();
        if let Some(mut c) = self.dockerd.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            if wait_until(Duration::from_secs(15), || c.try_wait().is_ok_and(|s| s.is_some())).is_err() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip").args(["link", "del", &format!("{}h", self.ns)]).stderr(Stdio::null()).status();
        // Leftover overlay mounts of a hard-killed dockerd would block removal.
        // Only mount points (the second field) under the folder: overlay
        // options name its paths too.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "awk -v d='{}' 'index($2, d) == 1 {{ print $2 }}' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `ready` until it holds: for waiting on a separate daemon to come up,
/// which offers no event to wait on.
/// A `10.232.X.0/24` subnet no route of this machine uses yet, searched
/// from `seed`: a host left behind by a killed run keeps its route, and a
/// new host on the same subnet would be unreachable.
fn free_octet(seed: u32) -> u32 {
    let routes = run("ip", &["-4", "route", "show"]);
    let used: Vec<&str> = routes.lines().filter_map(|l| l.split_whitespace().next()).collect();
    (0..200)
        .map(|i| 20 + (seed + i) % 200)
        .find(|o| !used.contains(&format!("10.232.{o}.0/24").as_str()))
        .expect("a free 10.232.X.0/24 subnet for a test host")
}

pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(())
}

fn ensure_password_user() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        if Command::new("id").arg(PW_USER).output().is_ok_and(|o| !o.status.success()) {
            run("useradd", &["-m", "-s", "/bin/sh", PW_USER]);
        }
        // Passwordless sudo for the test user (test machines are disposable).
        std::fs::write(format!("/etc/sudoers.d/{PW_USER}"), format!("{PW_USER} ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
        let mut c = Command::new("chpasswd").stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(format!("{PW_USER}:{PW}\n").as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
    });
}
