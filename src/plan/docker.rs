//! Docker Engine on the servers: what a Server's `docker` block asks of
//! the Engine against what the probe found (`model::host::HostFacts`), as
//! one server-level action (`+ docker-engine`, `~`, `-`) whose steps are
//! argument lists, chosen per OS by a pure function (`steps`): apt on
//! Debian and Ubuntu (`docker.io`, or Docker's repository with its signed
//! key), dnf on the RHEL family (Docker's repository) and Fedora
//! (`moby-engine` or `docker-ce`), apk on Alpine, pacman on Arch; then the
//! service enabled and started, the SSH user added to the `docker` group,
//! the socket awaited and the Engine's version checked. An OS or
//! architecture tomo cannot install on is a plan error naming what was
//! found and what is supported.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::model::host::{HostFacts, Init, SudoRight, VersionConstraint, short_version};
use crate::model::{DockerEnsure, DockerSource, Host, Server};

/// The object name of the action.
pub const OBJECT: &str = "docker-engine";

/// What the action does to the Engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineChange {
    Install,
    Upgrade {
        from: String,
    },
    /// Installed but not answering: enable and start it.
    Start,
    Remove,
}

/// One step of the action, carried out in order; the first failure ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A command on the server.
    Run {
        argv: Vec<String>,
        sudo: bool,
        /// A package manager's: retried with backoff while another process holds its lock.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        package: bool,
    },
    /// Wait (bounded poll with backoff) until the socket exists; if it never
    /// does, the failure carries the output of `status`.
    WaitSocket { path: String, status: Vec<String>, sudo: bool },
    /// The Engine answers on the socket at a version the constraint accepts.
    /// When the API is not reachable by the SSH user yet (it joined the
    /// `docker` group in this very action), `docker version` is asked
    /// through a command (behind `sudo` when `sudo`) instead.
    Verify {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<VersionConstraint>,
        #[serde(default)]
        sudo: bool,
    },
}

impl Step {
    /// The step as a line, as `plan --verbose` and the expect files show it.
    pub fn line(&self) -> String {
        match self {
            Step::Run { argv, sudo, .. } => crate::model::host::command_line(argv, *sudo),
            Step::WaitSocket { path, .. } => format!("(wait for the socket {path})"),
            Step::Verify { version: Some(v), .. } => format!("(check that the Engine answers, at version {v})"),
            Step::Verify { version: None, .. } => "(check that the Engine answers)".into(),
        }
    }
}

/// A server-level change of Docker Engine, as the plan holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineAction {
    pub change: EngineChange,
    /// The version shown: the constraint, the installed one, or `latest`.
    pub version: String,
    /// How: `apt: docker.io`, `dnf: docker-ce (download.docker.com)`.
    pub method: String,
    pub steps: Vec<Step>,
}

/// Why Docker cannot be brought to what a server declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerProblem {
    #[error("cannot manage Docker on {found}: supported are {SUPPORTED}")]
    UnsupportedOs { found: String },
    #[error("cannot install Docker on {found}: {family} is supported on {supported}")]
    UnsupportedArch { found: String, family: &'static str, supported: String },
    #[error("cannot install Docker on {found}: {family} {minimum} or later is supported")]
    TooOld { found: String, family: &'static str, minimum: &'static str },
    #[error("{found} has no package of Docker Engine of its own: use `docker.source: upstream` (Docker's repository)")]
    NoDistroPackage { found: String },
    #[error("Docker publishes no repository for {family}: use its own package (`docker.source: distro`, the default)")]
    NoUpstream { family: &'static str },
    #[error("no init system tomo can start services with was found on {found}: systemd or OpenRC is needed")]
    NoInit { found: String },
    #[error("{os} has no `{codename_field}` in /etc/os-release, needed to name Docker's apt suite")]
    NoCodename { os: String, codename_field: &'static str },
    #[error(
        "the SSH user `{user}` is not root and the server does not say `sudo: true`: managing Docker needs root; log in as root or set `sudo: true`"
    )]
    NeedsRoot { user: String },
    #[error(
        "the SSH user `{user}` has no right to run `sudo -n` (without a password){detail}: managing Docker needs it"
    )]
    NoSudo { user: String, detail: &'static str },
    #[error(
        "Docker {installed} is installed, newer than `version: {constraint}`; tomo does not downgrade the Engine: widen the constraint, or remove Docker first (`ensure: absent`)"
    )]
    Downgrade { installed: String, constraint: String },
    #[error(
        "Docker on this server was not installed by its package manager (dockerd {version} without a package tomo knows); remove it by hand"
    )]
    UnknownInstall { version: String },
    #[error(
        "`ensure: absent` would remove Docker under running apps ({}): remove them in the same change (`state: absent`, or their documents with `--prune`)",
        containers.join(", ")
    )]
    AppsRunning { containers: Vec<String> },
}

/// The supported systems, as errors name them.
pub const SUPPORTED: &str =
    "Debian 11+, Ubuntu 20.04+, RHEL/CentOS Stream/Rocky/AlmaLinux 8+, Fedora 40+, Alpine 3.19+ and Arch Linux";

/// The OS families tomo installs Docker on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Debian,
    Ubuntu,
    /// RHEL, CentOS Stream, Rocky, Alma; `repo` is Docker's folder for it.
    Rhel {
        repo: &'static str,
    },
    Fedora,
    Alpine,
    Arch,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Debian => "Debian",
            Family::Ubuntu => "Ubuntu",
            Family::Rhel { .. } => "the RHEL family",
            Family::Fedora => "Fedora",
            Family::Alpine => "Alpine",
            Family::Arch => "Arch Linux",
        }
    }

    /// `uname -m` values supported (by the OS's package, or Docker's repository).
    fn arches(self) -> &'static [&'static str] {
        match self {
            Family::Debian | Family::Ubuntu => &["x86_64", "aarch64", "armv7l", "ppc64le", "s390x"],
            Family::Rhel { .. } => &["x86_64", "aarch64", "s390x", "ppc64le"],
            Family::Fedora => &["x86_64", "aarch64"],
            Family::Alpine => &["x86_64", "aarch64", "armv7l", "ppc64le", "s390x"],
            Family::Arch => &["x86_64"],
        }
    }

    /// The oldest release supported (as numbers), and as shown.
    fn minimum(self) -> (&'static [u32], &'static str) {
        match self {
            Family::Debian => (&[11], "11"),
            Family::Ubuntu => (&[20, 4], "20.04"),
            Family::Rhel { .. } => (&[8], "8"),
            Family::Fedora => (&[40], "40"),
            Family::Alpine => (&[3, 19], "3.19"),
            Family::Arch => (&[], ""),
        }
    }

    /// The source used when the block names none.
    fn default_source(self) -> DockerSource {
        match self {
            Family::Rhel { .. } => DockerSource::Upstream,
            _ => DockerSource::Distro,
        }
    }
}

/// The OS family of `facts` (by `ID`, then `ID_LIKE`), its release and
/// architecture checked.
pub fn family(facts: &HostFacts) -> Result<Family, DockerProblem> {
    let found = facts.os_summary();
    let by_id = |id: &str| -> Option<Family> {
        Some(match id {
            "debian" | "raspbian" => Family::Debian,
            "ubuntu" => Family::Ubuntu,
            "rhel" => Family::Rhel { repo: "rhel" },
            "centos" | "rocky" | "almalinux" | "alma" => Family::Rhel { repo: "centos" },
            "fedora" => Family::Fedora,
            "alpine" => Family::Alpine,
            "arch" => Family::Arch,
            _ => return None,
        })
    };
    let fam = by_id(&facts.os_id)
        .or_else(|| facts.os_like.iter().find_map(|l| by_id(l)))
        .ok_or_else(|| DockerProblem::UnsupportedOs { found: found.clone() })?;
    if !fam.arches().contains(&facts.arch.as_str()) {
        return Err(DockerProblem::UnsupportedArch { found, family: fam.name(), supported: fam.arches().join(", ") });
    }
    let (min, shown) = fam.minimum();
    // Only a release of the family itself is checked (a derivative numbers its own).
    if by_id(&facts.os_id) == Some(fam) && !min.is_empty() {
        let have = crate::model::host::numbers(&facts.version_id);
        if have.is_empty() || have.as_slice().cmp(min) == Ordering::Less {
            return Err(DockerProblem::TooOld { found, family: fam.name(), minimum: shown });
        }
    }
    Ok(fam)
}

/// What a server's `docker` block asks, against what its probe found: no
/// action, one, or why it cannot be done.
pub fn engine_action(server: &Server, facts: &HostFacts) -> Result<Option<EngineAction>, DockerProblem> {
    let want = &server.docker;
    match want.ensure {
        DockerEnsure::Unmanaged => Ok(None),
        DockerEnsure::Absent if !facts.docker_installed() => Ok(None),
        DockerEnsure::Absent => {
            let ctx = Ctx::new(server, facts)?;
            removal(&ctx, facts, want.purge).map(Some)
        }
        DockerEnsure::Present => {
            let change = match (&facts.docker_version, &want.version) {
                _ if !facts.docker_installed() => EngineChange::Install,
                (Some(v), Some(c)) if c.compare(v) == Ordering::Greater => {
                    return Err(DockerProblem::Downgrade { installed: v.clone(), constraint: c.to_string() });
                }
                (Some(v), Some(c)) if c.compare(v) == Ordering::Less => EngineChange::Upgrade { from: v.clone() },
                _ if facts.daemon => return Ok(None),
                _ => EngineChange::Start,
            };
            let ctx = Ctx::new(server, facts)?;
            let fam = family(facts)?;
            let source = want.source.unwrap_or(fam.default_source());
            let (method, mut steps) = match change {
                EngineChange::Start => (format!("{}: installed", ctx.service_manager()), Vec::new()),
                _ => install_steps(&ctx, facts, fam, source, want.version.as_ref())?,
            };
            if matches!(change, EngineChange::Upgrade { .. }) {
                steps.extend(ctx.restart());
            }
            steps.extend(ctx.enable_and_start());
            steps.extend(ctx.join_group(fam));
            steps.push(ctx.wait_socket());
            steps.push(Step::Verify { version: want.version.clone(), sudo: ctx.sudo });
            let version = match (&change, &want.version, &facts.docker_version) {
                (EngineChange::Start, _, Some(v)) => short_version(v),
                (_, Some(c), _) => c.to_string(),
                _ => "latest".into(),
            };
            Ok(Some(EngineAction { change, version, method, steps }))
        }
    }
}

/// What every method needs: privilege, the init system, the socket.
struct Ctx {
    sudo: bool,
    init: Init,
    user: String,
    root: bool,
    socket: String,
}

impl Ctx {
    fn new(server: &Server, facts: &HostFacts) -> Result<Ctx, DockerProblem> {
        let (user, declared_sudo) = match &server.host {
            Host::Ssh(t) => (t.user.clone(), t.sudo),
            Host::Local => (facts.user.clone(), false),
        };
        let root = facts.is_root() || (facts.uid.is_none() && user == "root");
        // This machine: sudo when tomo does not run as root.
        let sudo = !root && (declared_sudo || matches!(server.host, Host::Local));
        if !root && !sudo {
            return Err(DockerProblem::NeedsRoot { user });
        }
        if sudo {
            match facts.sudo {
                SudoRight::No => return Err(DockerProblem::NoSudo { user, detail: "" }),
                SudoRight::Missing => {
                    return Err(DockerProblem::NoSudo { user, detail: " (`sudo` is not installed)" });
                }
                SudoRight::Yes | SudoRight::NotNeeded => {}
            }
        }
        if facts.init == Init::Unknown {
            return Err(DockerProblem::NoInit { found: facts.os_summary() });
        }
        Ok(Ctx { sudo, init: facts.init, user, root, socket: server.docker.socket.clone() })
    }

    fn run(&self, argv: &[&str]) -> Step {
        Step::Run { argv: argv.iter().map(|a| a.to_string()).collect(), sudo: self.sudo, package: false }
    }

    fn package(&self, argv: &[&str]) -> Step {
        Step::Run { argv: argv.iter().map(|a| a.to_string()).collect(), sudo: self.sudo, package: true }
    }

    fn service_manager(&self) -> &'static str {
        if self.init == Init::Openrc { "openrc" } else { "systemd" }
    }

    fn enable_and_start(&self) -> Vec<Step> {
        match self.init {
            Init::Openrc => {
                vec![self.run(&["rc-update", "add", "docker", "default"]), self.run(&["rc-service", "docker", "start"])]
            }
            _ => vec![self.run(&["systemctl", "enable", "--now", "docker.service"])],
        }
    }

    fn restart(&self) -> Vec<Step> {
        match self.init {
            Init::Openrc => vec![self.run(&["rc-service", "docker", "restart"])],
            _ => vec![self.run(&["systemctl", "restart", "docker.service"])],
        }
    }

    fn join_group(&self, fam: Family) -> Vec<Step> {
        if self.root {
            return Vec::new();
        }
        match fam {
            Family::Alpine => vec![self.run(&["addgroup", &self.user, "docker"])],
            _ => vec![self.run(&["usermod", "-aG", "docker", &self.user])],
        }
    }

    fn wait_socket(&self) -> Step {
        let status = status_command(self.init == Init::Openrc);
        Step::WaitSocket { path: self.socket.clone(), status, sudo: self.sudo }
    }
}

/// The command that tells what the service manager knows of the daemon.
fn status_command(openrc: bool) -> Vec<String> {
    if openrc {
        ["rc-service", "docker", "status"].map(String::from).to_vec()
    } else {
        ["systemctl", "status", "docker.service", "--no-pager", "--lines=20"].map(String::from).to_vec()
    }
}

/// When `argv` enables, starts or restarts the Docker service: the command
/// whose output a failure of it quotes (the service's status).
pub fn service_status(argv: &[String]) -> Option<Vec<String>> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["systemctl", verb, rest @ ..]
            if ["enable", "start", "restart"].contains(verb) && rest.iter().any(|a| a.starts_with("docker")) =>
        {
            Some(status_command(false))
        }
        ["rc-service", "docker", "start" | "restart"] => Some(status_command(true)),
        _ => None,
    }
}

/// apt's architecture name of `uname -m`.
fn dpkg_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" => "armhf",
        "ppc64le" => "ppc64el",
        other => other,
    }
}

const APT: [&str; 3] = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];

fn apt(ctx: &Ctx, args: &[&str]) -> Step {
    let argv: Vec<&str> = APT.iter().chain(args).copied().collect();
    ctx.package(&argv)
}

/// The package manager's steps that install (or upgrade to) the Engine,
/// and how they are described.
fn install_steps(
    ctx: &Ctx,
    facts: &HostFacts,
    fam: Family,
    source: DockerSource,
    version: Option<&VersionConstraint>,
) -> Result<(String, Vec<Step>), DockerProblem> {
    let prefix = version.map(VersionConstraint::prefix);
    let ce = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"];
    Ok(match (fam, source) {
        (Family::Debian | Family::Ubuntu, DockerSource::Distro) => {
            let pkg = match &prefix {
                Some(p) => format!("docker.io={p}*"),
                None => "docker.io".into(),
            };
            let steps = vec![apt(ctx, &["update"]), apt(ctx, &["install", "-y", "--no-install-recommends", &pkg])];
            ("apt: docker.io".into(), steps)
        }
        (Family::Debian | Family::Ubuntu, DockerSource::Upstream) => apt_upstream(ctx, facts, fam, prefix.as_deref())?,
        (Family::Rhel { .. }, DockerSource::Distro) => {
            return Err(DockerProblem::NoDistroPackage { found: facts.os_summary() });
        }
        (Family::Rhel { repo }, DockerSource::Upstream) => {
            let url = format!("https://download.docker.com/linux/{repo}/docker-ce.repo");
            let mut steps = vec![
                ctx.package(&["dnf", "-y", "install", "dnf-plugins-core"]),
                ctx.run(&["dnf", "config-manager", "--add-repo", &url]),
            ];
            steps.push(dnf_install(ctx, &ce, prefix.as_deref()));
            ("dnf: docker-ce (download.docker.com)".into(), steps)
        }
        (Family::Fedora, DockerSource::Distro) => {
            ("dnf: moby-engine".into(), vec![dnf_install(ctx, &["moby-engine"], prefix.as_deref())])
        }
        (Family::Fedora, DockerSource::Upstream) => {
            let url = "https://download.docker.com/linux/fedora/docker-ce.repo";
            // Fedora 41 moved to dnf5, whose config-manager speaks otherwise.
            let dnf5 = crate::model::host::numbers(&facts.version_id).first().is_some_and(|v| *v >= 41);
            let add = if dnf5 {
                ctx.run(&["dnf", "config-manager", "addrepo", &format!("--from-repofile={url}"), "--overwrite"])
            } else {
                ctx.run(&["dnf", "config-manager", "--add-repo", url])
            };
            let steps = vec![
                ctx.package(&["dnf", "-y", "install", "dnf-plugins-core"]),
                add,
                dnf_install(ctx, &ce, prefix.as_deref()),
            ];
            ("dnf: docker-ce (download.docker.com)".into(), steps)
        }
        (Family::Alpine | Family::Arch, DockerSource::Upstream) => {
            return Err(DockerProblem::NoUpstream { family: fam.name() });
        }
        (Family::Alpine, DockerSource::Distro) => {
            let pkg = match &prefix {
                Some(p) => format!("docker~{p}"),
                None => "docker".into(),
            };
            ("apk: docker".into(), vec![ctx.package(&["apk", "update"]), ctx.package(&["apk", "add", &pkg])])
        }
        (Family::Arch, DockerSource::Distro) => {
            ("pacman: docker".into(), vec![ctx.package(&["pacman", "-S", "--noconfirm", "--needed", "docker"])])
        }
    })
}

/// Docker's apt repository (its signed key, its suite for the release),
/// then `docker-ce` and its companions.
fn apt_upstream(
    ctx: &Ctx,
    facts: &HostFacts,
    fam: Family,
    prefix: Option<&str>,
) -> Result<(String, Vec<Step>), DockerProblem> {
    let ce = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"];
    let os = if fam == Family::Ubuntu { "ubuntu" } else { "debian" };
    if facts.codename.is_empty() {
        return Err(DockerProblem::NoCodename { os: facts.os_summary(), codename_field: "VERSION_CODENAME" });
    }
    let line = format!(
        "deb [arch={} signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/{os} {} stable",
        dpkg_arch(&facts.arch),
        facts.codename
    );
    let pinned: Vec<String> = ce
        .iter()
        .map(|p| match (prefix, *p) {
            (Some(v), "docker-ce" | "docker-ce-cli") => format!("{p}=5:{v}*"),
            _ => p.to_string(),
        })
        .collect();
    let mut install = vec!["install", "-y"];
    install.extend(pinned.iter().map(String::as_str));
    let gpg = format!("https://download.docker.com/linux/{os}/gpg");
    let steps = vec![
        apt(ctx, &["update"]),
        apt(ctx, &["install", "-y", "ca-certificates", "curl"]),
        ctx.run(&["install", "-m", "0755", "-d", "/etc/apt/keyrings"]),
        ctx.run(&["curl", "-fsSL", "--retry", "3", &gpg, "-o", "/etc/apt/keyrings/docker.asc"]),
        ctx.run(&["chmod", "a+r", "/etc/apt/keyrings/docker.asc"]),
        ctx.run(&["sh", "-c", r#"printf '%s\n' "$1" > /etc/apt/sources.list.d/docker.list"#, "tomo-repo", &line]),
        apt(ctx, &["update"]),
        apt(ctx, &install),
    ];
    Ok(("apt: docker-ce (download.docker.com)".into(), steps))
}

/// `dnf -y install` of `packages`, the Engine's pinned to `prefix`.
fn dnf_install(ctx: &Ctx, packages: &[&str], prefix: Option<&str>) -> Step {
    let names: Vec<String> = packages
        .iter()
        .map(|p| match (prefix, *p) {
            (Some(v), "docker-ce" | "docker-ce-cli" | "moby-engine") => format!("{p}-{v}*"),
            _ => p.to_string(),
        })
        .collect();
    let mut argv = vec!["dnf", "-y", "install"];
    argv.extend(names.iter().map(String::as_str));
    ctx.package(&argv)
}

/// The steps that remove the Engine (and its data with `purge`).
fn removal(ctx: &Ctx, facts: &HostFacts, purge: bool) -> Result<EngineAction, DockerProblem> {
    let names: Vec<&str> = facts.packages.iter().map(|p| p.name.as_str()).collect();
    if names.is_empty() {
        return Err(DockerProblem::UnknownInstall { version: facts.docker_version.clone().unwrap_or_default() });
    }
    let pm = facts.package_managers.first().copied();
    let mut steps = match ctx.init {
        Init::Openrc => {
            vec![ctx.run(&["rc-service", "docker", "stop"]), ctx.run(&["rc-update", "del", "docker", "default"])]
        }
        _ => vec![ctx.run(&["systemctl", "disable", "--now", "docker.service", "docker.socket"])],
    };
    use crate::model::host::PackageManager as P;
    let mut argv: Vec<&str> = match pm {
        Some(P::Apt) => APT.iter().copied().chain([if purge { "purge" } else { "remove" }, "-y"]).collect(),
        Some(P::Dnf) => vec!["dnf", "-y", "remove"],
        Some(P::Yum) => vec!["yum", "-y", "remove"],
        Some(P::Apk) => vec!["apk", "del"],
        Some(P::Pacman) => vec!["pacman", "-Rns", "--noconfirm"],
        None => return Err(DockerProblem::UnsupportedOs { found: facts.os_summary() }),
    };
    argv.extend(names.iter().copied());
    steps.push(ctx.package(&argv));
    if purge {
        steps.push(ctx.run(&["rm", "-rf", "--one-file-system", "/var/lib/docker", "/var/lib/containerd"]));
    }
    let method =
        format!("{}: {}{}", pm.map_or("?", |p| p.command()), names.join(" "), if purge { ", purge data" } else { "" });
    let version = facts.docker_version.as_deref().map(short_version).unwrap_or_default();
    Ok(EngineAction { change: EngineChange::Remove, version, method, steps })
}

/// Pushes the Engine actions of the servers in scope whose `docker` block
/// asks for a change (first, so that they read first in the plan); a
/// server's block that cannot be carried out is the plan's error.
pub(super) fn plan_engines(
    desired: &crate::model::Desired,
    observed: &crate::model::Observed,
    opts: &super::PlanOptions,
    plan: &mut super::Plan,
) -> Result<(), super::PlanError> {
    let managed = desired
        .servers
        .values()
        .filter(|s| opts.scope.has_server(&s.name) && s.docker.ensure != DockerEnsure::Unmanaged);
    for server in managed {
        let reached = matches!(observed.servers.get(&server.name), Some(crate::model::ServerState::Reached(_)));
        let Some(facts) = observed.hosts.get(&server.name).filter(|_| reached) else { continue };
        let action = engine_action(server, facts)
            .map_err(|problem| super::PlanError::Docker { server: server.name.clone(), problem })?;
        let Some(action) = action else { continue };
        let reasons = vec![reason(server, facts, &action)];
        plan.actions.push(super::Action {
            id: plan.actions.len(),
            server: server.name.clone(),
            app: None,
            service: None,
            op: super::Op::DockerEngine(action),
            reasons,
            diff: None,
            after: Vec::new(),
            after_any: Vec::new(),
            risk: Default::default(),
        });
    }
    Ok(())
}

fn reason(server: &Server, facts: &HostFacts, action: &EngineAction) -> String {
    let os = facts.os_summary();
    match (&action.change, &server.docker.version) {
        (EngineChange::Install, _) => format!("not installed on {os}; `ensure: present`"),
        (EngineChange::Upgrade { from }, Some(c)) => format!("{from} installed; `version: {c}` asks for newer"),
        (EngineChange::Upgrade { from }, None) => format!("{from} installed"),
        (EngineChange::Start, _) => format!("installed, not answering on {}", server.docker.socket),
        (EngineChange::Remove, _) if server.docker.purge => {
            "`ensure: absent`, `purge: true`: its data is deleted".into()
        }
        (EngineChange::Remove, _) => "`ensure: absent` (data under /var/lib/docker is kept)".into(),
    }
}

/// Refuses removing the Engine of a server whose containers of this
/// installation this plan does not remove.
pub(super) fn check_absent(
    desired: &crate::model::Desired,
    observed: &crate::model::Observed,
    plan: &super::Plan,
) -> Result<(), super::PlanError> {
    let removing =
        plan.actions.iter().filter(|a| matches!(&a.op, super::Op::DockerEngine(e) if e.change == EngineChange::Remove));
    for a in removing {
        let Some(crate::model::ServerState::Reached(inv)) = observed.servers.get(&a.server) else { continue };
        let removed: std::collections::BTreeSet<&str> = plan
            .actions
            .iter()
            .filter(|b| b.server == a.server)
            .filter_map(|b| match &b.op {
                super::Op::Remove { target, .. } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        let left: Vec<String> = inv
            .containers
            .iter()
            .filter(|c| c.ours && !removed.contains(c.id.as_str()))
            .map(|c| c.name.clone())
            .collect();
        if !left.is_empty() && desired.servers.contains_key(&a.server) {
            return Err(super::PlanError::Docker {
                server: a.server.clone(),
                problem: DockerProblem::AppsRunning { containers: left },
            });
        }
    }
    Ok(())
}

/// Whether a package manager's failure says another process holds its lock
/// (apt/dpkg, dnf, apk, pacman word it so): such a step is tried again.
pub fn package_locked(stderr: &str) -> bool {
    const SIGNS: [&str; 6] = [
        "Could not get lock",
        "Unable to acquire the dpkg frontend lock",
        "Unable to lock database",
        "unable to lock database",
        "Waiting for process with pid",
        "database is locked",
    ];
    SIGNS.iter().any(|s| stderr.contains(s))
}

#[cfg(test)]
#[path = "docker_tests.rs"]
mod tests;
