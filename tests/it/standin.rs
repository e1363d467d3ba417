//! Stand-in servers of other systems: an ordinary namespace test host (its
//! own sshd and dockerd, `hosts::TestHost`) whose sshd runs in a private
//! mount namespace in which `/etc/os-release` says Alpine, Fedora or Arch,
//! the package and service tools (`apk`, `dnf`, `pacman`, `rc-update`,
//! `rc-service`, `systemctl`, `usermod`, …) are stand-ins that record their
//! arguments, and the Docker binaries are hidden until a stand-in package
//! manager "installs" them. Every SSH session inherits that view; the real
//! machine's /etc, /usr and /run are untouched (the mounts exist only in the
//! namespace and end with its sshd).
//!
//! What a stand-in does, besides recording `tool<TAB>user[ sudo:USER]<TAB>args`
//! to `calls.log`:
//! - a package manager installing a docker package un-hides the real `docker`
//!   and `dockerd` binaries;
//! - starting the docker service (`systemctl start|enable --now|restart`,
//!   `rc-service docker start`) links the server's socket path to the host's
//!   running Engine, so the API answers from then on; `systemctl is-active`,
//!   `systemctl status`, `rc-service docker status` report on that link;
//! - `fail-TOOL` in the stand-in folder: the tool prints that file and fails;
//! - `locked-TOOL` holding a count N: the next N calls fail as a locked
//!   package database does (the tool's own message);
//! - `nostart`: starting the service succeeds but no daemon comes up (its
//!   socket never appears) and its status says failed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::hosts::{PW_USER, TestHost, wait_until};

/// The system a stand-in host claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distro {
    Alpine,
    Fedora,
    Arch,
}

impl Distro {
    fn os_release(self) -> &'static str {
        match self {
            Distro::Alpine => {
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n\
                 HOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n"
            }
            Distro::Fedora => {
                "NAME=\"Fedora Linux\"\nVERSION=\"40 (Server Edition)\"\nID=fedora\nVERSION_ID=40\n\
                 VERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f40\"\nPRETTY_NAME=\"Fedora Linux 40 (Server Edition)\"\n\
                 ANSI_COLOR=\"0;38;2;60;110;180\"\nCPE_NAME=\"cpe:/o:fedoraproject:fedora:40\"\nVARIANT=\"Server Edition\"\nVARIANT_ID=server\n"
            }
            Distro::Arch => {
                "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\nANSI_COLOR=\"38;2;23;147;209\"\n\
                 HOME_URL=\"https://archlinux.org/\"\nLOGO=archlinux-logo\n"
            }
        }
    }

    /// The stand-in tools on this system's PATH.
    fn tools(self) -> &'static [&'static str] {
        match self {
            Distro::Alpine => &["apk", "rc-update", "rc-service", "openrc", "addgroup", "adduser", "usermod"],
            Distro::Fedora => &["dnf", "rpm", "systemctl", "usermod", "gpasswd", "groupadd"],
            Distro::Arch => &["pacman", "systemctl", "usermod", "gpasswd", "groupadd"],
        }
    }

    fn systemd(self) -> bool {
        self != Distro::Alpine
    }
}

/// The real binaries hidden in the namespace: the Docker ones until the
/// stand-in installs them, the package tools of this machine always.
const DOCKER_BINS: &[&str] = &["/usr/bin/docker", "/usr/local/bin/docker", "/usr/sbin/dockerd", "/usr/bin/containerd"];
const HIDDEN: &[&str] =
    &["/usr/bin/apt-get", "/usr/bin/apt", "/usr/bin/dpkg", "/usr/bin/dpkg-query", "/usr/bin/rpm", "/usr/bin/systemctl"];

const STANDIN: &str = r#"#!/bin/sh
# A stand-in for a system tool: records its arguments, then acts as the test set up.
S=@DIR@
name=${0##*/}
who=$(id -un)
[ -n "$SUDO_USER" ] && who="$who sudo:$SUDO_USER"
printf '%s\t%s\t%s\n' "$name" "$who" "$*" >>"$S/calls.log"
# Switches act on the privileged calls only (the probe's queries run as the user).
if [ "$(id -u)" = 0 ] && [ -f "$S/locked-$name" ]; then
    n=$(cat "$S/locked-$name")
    if [ "$n" -gt 0 ]; then
        echo $((n - 1)) >"$S/locked-$name"
        case "$name" in
        apk) echo "ERROR: Unable to lock database: Resource temporarily unavailable" >&2
             echo "ERROR: Failed to open apk database: Resource temporarily unavailable" >&2; exit 99 ;;
        dnf) echo "error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Resource temporarily unavailable)" >&2; exit 1 ;;
        pacman) echo "error: failed to init transaction (unable to lock database)" >&2
                echo "error: could not lock database: File exists" >&2; exit 1 ;;
        *) echo "$name: locked" >&2; exit 1 ;;
        esac
    fi
fi
if [ "$(id -u)" = 0 ] && [ -f "$S/fail-$name" ]; then
    cat "$S/fail-$name" >&2
    exit 1
fi
case "$*" in *docker*|*moby*) mentions=1 ;; *) mentions=0 ;; esac
up() { [ -S "@SOCKET@" ]; }
case "$name $1" in
"apk info"|"pacman -Q"|"rpm -q")
    # The package database's answer: the Engine's package once installed.
    if [ -f "$S/installed" ]; then
        case "$name" in
        apk) echo "docker-25.0.5-r1" ;;
        pacman) echo "docker 1:25.0.5-1" ;;
        rpm) echo "pkg=moby-engine 25.0.5 ii" ;;
        esac
        exit 0
    fi
    # As the real tools answer for a package not installed.
    case "$name" in
    apk) exit 0 ;;
    pacman) echo "error: package 'docker' was not found" >&2; exit 1 ;;
    rpm) echo "package docker-ce is not installed"; exit 1 ;;
    esac ;;
esac
case "$name" in
apk|dnf|pacman)
    case " $* " in
    *" del "*|*" remove "*|*" -R"*)
        if [ $mentions = 1 ]; then
            for b in @DOCKER_BINS@; do mount --bind /dev/null "$b" 2>/dev/null; done
            rm -f "$S/installed"
        fi ;;
    *" add "*|*" install "*|*" -S "*|*" -Sy "*|*" -Syu "*|*" --sync "*)
        if [ $mentions = 1 ]; then
            for b in @DOCKER_BINS@; do umount "$b" 2>/dev/null; done
            touch "$S/installed"
            echo "installed docker (stand-in)"
        fi ;;
    esac ;;
systemctl|rc-service)
    case " $* " in
    *" is-active "*) if up; then echo active; else echo failed; exit 3; fi ;;
    *" is-enabled "*) echo enabled ;;
    *" status "*)
        if up; then echo "* docker.service - Docker Application Container Engine"; echo "     Active: active (running)"
        else echo "x docker.service - Docker Application Container Engine"
             echo "     Active: failed (Result: exit-code) since Mon 2026-12-07 10:00:00 UTC"
             echo "    Process: 4242 ExecStart=/usr/bin/dockerd (code=exited, status=1/FAILURE)"; exit 3; fi ;;
    *" stop "*) [ $mentions = 1 ] && rm -f "@SOCKET@" ;;
    *" start "*|*" --now "*|*" restart "*)
        if [ $mentions = 1 ] && [ ! -f "$S/nostart" ]; then ln -sf "@ENGINE@" "@SOCKET@"; fi ;;
    esac ;;
esac
exit 0
"#;

pub struct StandinHost {
    pub host: TestHost,
    pub distro: Distro,
    /// The stand-in folder: `calls.log`, and the `fail-*`/`locked-*`/`nostart` switches.
    pub dir: PathBuf,
    /// The socket path the Server points at (linked to the Engine when "started").
    pub socket: String,
    sshd: Option<Child>,
    registry: Option<Child>,
    no_sudo: bool,
}

/// The test image as the stand-in's registry serves it (on the namespace's loopback).
pub const REGISTRY_IMAGE: &str = "127.0.0.1:5000/tomo-test/busybox:1";

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl StandinHost {
    pub fn new(distro: Distro) -> StandinHost {
        StandinHost::build(distro, false)
    }

    /// A stand-in host whose SSH user has no `sudo` right (its sudoers
    /// rule hidden in the namespace).
    pub fn without_sudo(distro: Distro) -> StandinHost {
        StandinHost::build(distro, true)
    }

    fn build(distro: Distro, no_sudo: bool) -> StandinHost {
        let mut host = TestHost::new(true);
        host.stop_sshd();
        let d = host.dir.path().to_path_buf();
        // The SSH user (not root) reaches the engine's socket through its folder.
        run("chmod", &["711", &d.display().to_string()]);
        run("chmod", &["666", &host.socket]);
        let dir = d.join("standin");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        run("chmod", &["755", &dir.display().to_string()]);
        std::fs::write(dir.join("calls.log"), "").unwrap();
        run("chmod", &["666", &dir.join("calls.log").display().to_string()]);
        let socket = d.join("run-docker.sock").display().to_string();
        let script = STANDIN
            .replace("@DIR@", &dir.display().to_string())
            .replace("@SOCKET@", &socket)
            .replace("@ENGINE@", &host.socket)
            .replace("@DOCKER_BINS@", &DOCKER_BINS.join(" "));
        let tool = dir.join("standin.sh");
        std::fs::write(&tool, script).unwrap();
        run("chmod", &["755", &tool.display().to_string()]);
        for t in distro.tools() {
            std::os::unix::fs::symlink(&tool, bin.join(t)).unwrap();
        }
        std::fs::write(dir.join("os-release"), distro.os_release()).unwrap();
        std::fs::write(dir.join("no-rules"), "").unwrap();
        let mut s = StandinHost { host, distro, dir, socket, sshd: None, registry: None, no_sudo };
        s.start_sshd();
        s
    }

    /// The namespace's mounts, then sshd (the same PID: each step `exec`s the next).
    fn setup_script(&self) -> String {
        let dir = self.dir.display();
        let mut sh = String::from("set -e\nmount --make-rprivate /\n");
        sh += &format!("mount --bind {dir}/os-release /etc/os-release\n");
        sh += &format!("mount --bind {dir}/bin /usr/local/sbin\nmount --bind {dir}/bin /usr/local/bin\n");
        for b in DOCKER_BINS.iter().chain(HIDDEN) {
            sh += &format!("if [ -e {b} ]; then mount --bind /dev/null {b}; fi\n");
        }
        if self.no_sudo {
            sh += &format!("mount --bind {dir}/no-rules /etc/sudoers.d/{PW_USER}\n");
        }
        // A /run of its own: the init system's marks, sshd's privilege separation folder.
        sh += "mount -t tmpfs -o mode=755 tmpfs /run\nmkdir -p /run/sshd /run/lock\n";
        if self.distro.systemd() {
            sh += "mkdir -p /run/systemd/system\n";
        } else {
            sh += "mkdir -p /run/openrc && touch /run/openrc/softlevel\n";
        }
        sh += &format!("exec /usr/sbin/sshd -D -e -f {}/sshd_config\n", self.host.dir.path().display());
        sh
    }

    pub fn start_sshd(&mut self) {
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.host.ns))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c", &self.setup_script()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts in its mount namespace");
        self.sshd = Some(child);
        let addr = (self.host.addr.clone(), self.host.port);
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((addr.0.as_str(), addr.1)).is_ok())
            .unwrap_or_else(|_| panic!("stand-in sshd does not listen; see {}/sshd.log", self.dir.display()));
    }

    /// A registry on the namespace's loopback serving `REGISTRY_IMAGE`, so
    /// that an app planned before the Engine was there (and so pulled)
    /// really pulls. Loopback registries need no TLS.
    pub fn with_registry(mut self) -> StandinHost {
        let d = self.host.dir.path().join("registry");
        std::fs::create_dir_all(&d).unwrap();
        let config = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:5000}}\n",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.host.ns))
            .args(["docker-registry", "serve", &d.join("config.yml").display().to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry starts (tests/run.sh installs it)");
        self.registry = Some(child);
        let h = &self.host;
        wait_until(Duration::from_secs(10), || {
            Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{}", h.ns))
                .args(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|_| panic!("the registry does not listen; see {}", d.display()));
        h.docker(&["tag", crate::fleet::IMAGE, REGISTRY_IMAGE]);
        h.docker(&["push", "-q", REGISTRY_IMAGE]);
        h.docker(&["rmi", REGISTRY_IMAGE]);
        self
    }

    /// The recorded calls, one `tool<TAB>user<TAB>args` per line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Makes TOOL fail with this output.
    pub fn fail(&self, tool: &str, output: &str) {
        std::fs::write(self.dir.join(format!("fail-{tool}")), output).unwrap();
    }

    /// Makes the next `times` calls of TOOL fail as a locked package database.
    pub fn lock(&self, tool: &str, times: u32) {
        let p = self.dir.join(format!("locked-{tool}"));
        std::fs::write(&p, times.to_string()).unwrap();
        run("chmod", &["666", &p.display().to_string()]);
    }

    /// Starting the docker service fails from now on.
    pub fn no_start(&self) {
        std::fs::write(self.dir.join("nostart"), "").unwrap();
    }

    #[allow(dead_code)] // the install tests use it
    /// A Server manifest: a non-root user with `sudo: true`.
    pub fn server_yaml(&self, name: &str, docker: &str) -> String {
        let h = &self.host;
        format!(
            "kind: Server\nname: {name}\nhost: {}\nuser: {PW_USER}\nauth: {{key_file: {}}}\nhost_key: \"{}\"\nsudo: true\ndocker: {{socket: {}, {docker}}}\n",
            h.addr,
            h.key.display(),
            h.fingerprint,
            self.socket
        )
    }
}

impl Drop for StandinHost {
    fn drop(&mut self) {
        for mut c in [self.sshd.take(), self.registry.take()].into_iter().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Sessions still open die with the namespace's network; TestHost's drop does the rest.
    }
}

#[test]
fn the_standin_beds_claim_their_system_record_calls_and_leave_this_machine_alone() {
    use tomo::transport::ssh::{Credential, ExecOptions, HostKeyPolicy, SshSession};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for distro in [Distro::Alpine, Distro::Fedora, Distro::Arch] {
        let h = StandinHost::new(distro);
        let policy = HostKeyPolicy::Expect(h.host.fingerprint.clone());
        let cred = Credential::KeyFile(h.host.key.clone());
        let s = rt
            .block_on(SshSession::connect(&h.host.addr, 22, PW_USER, &cred, policy, Duration::from_secs(10)))
            .expect("the SSH user logs in");
        let exec = |script: &str, sudo: bool| {
            rt.block_on(s.exec(&["sh", "-c", script], ExecOptions { sudo, timeout: Duration::from_secs(20) })).unwrap()
        };
        let (pm, start) = match distro {
            Distro::Alpine => ("apk add docker", "rc-service docker start"),
            Distro::Fedora => ("dnf install -y moby-engine", "systemctl enable --now docker"),
            Distro::Arch => ("pacman -S --noconfirm docker", "systemctl enable --now docker"),
        };
        let before = exec(
            ". /etc/os-release; echo $ID; for b in docker dockerd apt-get; do command -v $b; done; echo none",
            false,
        );
        let id = match distro {
            Distro::Alpine => "alpine",
            Distro::Fedora => "fedora",
            Distro::Arch => "arch",
        };
        assert_eq!(before.stdout, format!("{id}\nnone\n"), "{before:?}");
        let init =
            exec("test -d /run/systemd/system && echo systemd; test -e /run/openrc/softlevel && echo openrc", false);
        assert_eq!(init.stdout.trim(), if distro.systemd() { "systemd" } else { "openrc" });
        // As the user, the package manager is found but no right is used.
        let out = exec(pm, true);
        assert!(out.success(), "{out:?}");
        assert!(!std::path::Path::new(&h.socket).exists());
        let out = exec(&format!("{start} && command -v docker && command -v dockerd"), true);
        assert_eq!(out.stdout, "/usr/bin/docker\n/usr/sbin/dockerd\n", "{out:?}");
        let out = exec(&format!("docker -H unix://{} version --format '{{{{.Server.Version}}}}'", h.socket), false);
        assert!(out.success() && !out.stdout.trim().is_empty(), "{out:?}");
        let calls = h.calls();
        let pm_tool = pm.split(' ').next().unwrap();
        let start_tool = start.split(' ').next().unwrap();
        assert_eq!(
            calls,
            vec![
                format!("{pm_tool}\troot sudo:{PW_USER}\t{}", pm.split_once(' ').unwrap().1),
                format!("{start_tool}\troot sudo:{PW_USER}\t{}", start.split_once(' ').unwrap().1),
            ]
        );
        // Failures and locks as the switches say.
        h.lock(pm_tool, 1);
        let out = exec(pm, true);
        assert!(!out.success() && out.stderr.contains("lock"), "{out:?}");
        assert!(exec(pm, true).success());
        h.fail(pm_tool, "network unreachable\n");
        let out = exec(pm, true);
        assert!(!out.success() && out.stderr.contains("network unreachable"), "{out:?}");
        h.no_start();
        let (stop, status) = match distro {
            Distro::Alpine => ("rc-service docker stop", "rc-service docker status"),
            _ => ("systemctl stop docker", "systemctl status docker"),
        };
        let out = exec(&format!("{stop}; {start}"), true);
        assert!(out.success() && !std::path::Path::new(&h.socket).exists(), "{out:?}");
        let out = exec(status, true);
        assert!(out.status == Some(3) && out.stdout.contains("Active: failed"), "{out:?}");
    }
    // This machine's own view is untouched.
    let os = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(os.contains("ID=debian"), "{os}");
    assert!(std::path::Path::new("/usr/bin/apt-get").metadata().unwrap().len() > 1000);
}
