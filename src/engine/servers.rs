//! Server operations of the engine: probing facts (`server list`), checking
//! one server step by step (`server test`), and trusting its host key
//! (`server trust`).

use std::time::Instant;

use serde::Serialize;

use super::Engine;
use crate::error::{ConnectError, Error, Noun, Result, Usage};
use crate::model::host::HostFacts;
use crate::model::{Desired, Host, Name, Server};
use crate::plan::{PlanOptions, Scope};
use crate::transport::docker::DockerClient;
use crate::transport::ssh::{ExecOptions, SshSession};

/// What one quick probe found out about a server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFacts {
    pub name: Name,
    pub host: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub docker_version: Option<String>,
    pub os: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// The OS and Docker as the probe found them (`/etc/os-release`,
    /// architecture, init system, package manager, Docker's state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<HostFacts>,
}

/// One step of `server test`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

const PROBE: &[&str] =
    &["sh", "-c", "uname -sr; cut -d' ' -f1 /proc/uptime; df -Pk / | tail -1; cut -d' ' -f1-3 /proc/loadavg"];

impl Engine {
    fn server(&self, desired: &Desired, name: &str) -> Result<Server> {
        let n = Name::parse(name).map_err(|e| Usage::invalid("server name", name, e))?;
        desired.servers.get(&n).cloned().ok_or_else(|| super::unknown(Noun::Server, &n, desired.servers.keys()).into())
    }

    /// The host key a server shows now (key exchange only, no login).
    pub async fn server_host_key(&self, name: &str) -> Result<(Server, String)> {
        let desired = self.desired()?;
        let server = self.server(&desired, name)?;
        let Host::Ssh(t) = &server.host else {
            return Err(Usage::NotApplicable {
                what: format!("server `{name}`"),
                why: "it is this machine (`host: local`); it has no SSH host key".into(),
            }
            .into());
        };
        let fp = SshSession::fetch_host_key(&t.address, t.port, self.server_timeout(&desired))
            .await
            .map_err(|e| Error::Transport { server: name.to_string(), source: e.into() })?;
        Ok((server, fp))
    }

    /// Records `fingerprint` as the trusted host key of `server` (and in the
    /// audit log); with `write`, pins it in the server's manifest too.
    pub fn trust_server(&self, server: &Server, fingerprint: &str, write: bool) -> Result<Option<String>> {
        let Host::Ssh(t) = &server.host else { return Ok(None) };
        let store = self.store()?;
        store.trust_host_key(server.name.as_str(), &t.address, fingerprint)?;
        store.record_activity(&crate::store::Activity {
            category: "server",
            action: "trust-host-key",
            target: Some(server.name.as_str()),
            result: "ok",
            detail: Some(fingerprint),
            ..Default::default()
        })?;
        if !write {
            return Ok(None);
        }
        let path = self.config.manifests.join(&server.origin.file);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::read(&shown, source))?;
        let edited = crate::manifest::edit::set_host_key(&text, server.origin.line, fingerprint)
            .map_err(|problem| Error::Edit { what: format!("`{shown}` to pin the key"), problem })?;
        // The edit must leave the whole fleet valid, or nothing is written.
        let mut sources = self.sources()?;
        if let Some(i) = sources.relative.iter().position(|r| *r == server.origin.file) {
            sources.files[i] =
                std::sync::Arc::new(crate::diag::SourceFile { path: path.clone(), text: edited.clone() });
        }
        let secrets = self.secret_check();
        let loaded = crate::manifest::load(
            &sources,
            &crate::manifest::LoadOptions { secrets: &secrets, inline_check: crate::vault::check_inline_format },
        );
        if loaded.diagnostics.has_errors() {
            return Err(Error::Invalid(loaded.diagnostics));
        }
        std::fs::write(&path, edited).map_err(|source| Error::write(&shown, source))?;
        Ok(Some(shown))
    }

    /// One quick probe of every declared server in scope, in parallel.
    pub async fn server_facts(&self, scope: &Scope) -> Result<Vec<ServerFacts>> {
        let desired = self.desired()?;
        let opts = PlanOptions { scope: scope.clone(), ..PlanOptions::default() };
        let clients = self.clients(&desired, &opts).await;
        let probes = desired.servers.values().filter(|s| scope.has_server(&s.name)).map(|server| {
            let client = clients.get(&server.name);
            let timeout = self.server_timeout(&desired);
            async move { self.probe(server, client, timeout).await }
        });
        let facts = futures_util::future::join_all(probes).await;
        let store = self.store()?;
        for f in &facts {
            store.record_server_facts(
                f.name.as_str(),
                &f.host,
                f.reachable,
                f.docker_version.as_deref(),
                f.os.as_deref(),
                f.uptime_seconds,
            )?;
            if let Some(system) = &f.system {
                store.record_server_system(f.name.as_str(), system)?;
            }
        }
        Ok(facts)
    }

    async fn probe(
        &self,
        server: &Server,
        client: Option<&std::result::Result<DockerClient, ConnectError>>,
        timeout: std::time::Duration,
    ) -> ServerFacts {
        let host = match &server.host {
            Host::Local => "local".to_string(),
            Host::Ssh(t) => format!("{}@{}:{}", t.user, t.address, t.port),
        };
        let mut facts = ServerFacts {
            name: server.name.clone(),
            host,
            reachable: false,
            error: None,
            docker_version: None,
            os: None,
            uptime_seconds: None,
            system: None,
        };
        let client = match client {
            Some(Ok(c)) => c.clone(),
            Some(Err(e)) => {
                facts.error = Some(e.to_string());
                return facts;
            }
            None => {
                facts.error = Some("no connection".into());
                return facts;
            }
        };
        facts.reachable = true;
        let probe = match &server.host {
            Host::Local => local_probe(),
            Host::Ssh(_) => match self.session(&server.name) {
                Some(s) => s
                    .exec(PROBE, ExecOptions { sudo: false, timeout })
                    .await
                    .map(|o| o.stdout)
                    .map_err(|e| e.to_string()),
                None => Err("no SSH session".into()),
            },
        };
        match probe {
            Ok(out) => {
                let mut lines = out.lines();
                facts.os = lines.next().map(str::to_string);
                facts.uptime_seconds = lines.next().and_then(|l| l.parse::<f64>().ok()).map(|s| s as u64);
            }
            Err(e) => facts.error = Some(e),
        }
        let system = super::docker::probe(&client, &server.docker.socket, timeout).await;
        match client.version().await {
            Ok(v) => facts.docker_version = Some(v),
            // A server without Docker says so, when tomo is to install it.
            Err(_) if system.as_ref().is_ok_and(|s| !s.docker_installed()) => {}
            Err(e) => facts.error = Some(e.to_string()),
        }
        match system {
            Ok(mut s) => {
                s.daemon = facts.docker_version.is_some();
                facts.system = Some(s);
            }
            Err(e) => facts.error = facts.error.take().or(Some(e)),
        }
        facts
    }

    /// Checks one server step by step: SSH, login, sudo, Docker socket, Docker
    /// version, free disk. Every step reports; a failed step stops the ones
    /// that need it.
    pub async fn test_server(&self, name: &str) -> Result<Vec<Check>> {
        let desired = self.desired()?;
        let server = self.server(&desired, name)?;
        let mut checks = Vec::new();
        let mut check = |name: &str, ok: bool, detail: String| checks.push(Check { name: name.into(), ok, detail });
        let timeout = self.server_timeout(&desired);
        let opts = PlanOptions {
            scope: Scope { servers: vec![server.name.clone()], ..Scope::default() },
            ..PlanOptions::default()
        };
        let t0 = Instant::now();
        let clients = self.clients(&desired, &opts).await;
        let client = match (&server.host, clients.get(&server.name)) {
            (_, Some(Ok(c))) => {
                if let Host::Ssh(t) = &server.host {
                    let key = self.session(&server.name).map(|s| s.host_key().to_string()).unwrap_or_default();
                    check(
                        "ssh",
                        true,
                        format!(
                            "connected to {}:{} in {} ms, host key {key}",
                            t.address,
                            t.port,
                            t0.elapsed().as_millis()
                        ),
                    );
                    check("login", true, format!("logged in as {}", t.user));
                }
                c.clone()
            }
            (Host::Ssh(_), Some(Err(e))) => {
                check("ssh", false, e.to_string());
                return Ok(checks);
            }
            (Host::Local, Some(Err(e))) => {
                check("docker socket", false, e.to_string());
                return Ok(checks);
            }
            (_, None) => {
                check("connection", false, "no connection".into());
                return Ok(checks);
            }
        };
        if let (Host::Ssh(t), Some(session)) = (&server.host, self.session(&server.name)) {
            if t.sudo {
                let r = session.exec(&["true"], ExecOptions { sudo: true, timeout }).await;
                match r {
                    Ok(o) if o.success() => check("sudo", true, "sudo works without a password".into()),
                    Ok(o) => check("sudo", false, format!("sudo -n failed: {}", o.stderr.trim())),
                    Err(e) => check("sudo", false, e.to_string()),
                }
            }
            match session.exec(PROBE, ExecOptions { sudo: false, timeout }).await {
                Ok(o) => {
                    check("free disk", true, free_disk(&o.stdout));
                    check("load", true, load(&o.stdout));
                }
                Err(e) => check("free disk", false, e.to_string()),
            }
        } else if let Ok(out) = local_probe() {
            check("free disk", true, free_disk(&out));
            check("load", true, load(&out));
        }
        let system = super::docker::probe(&client, &server.docker.socket, timeout).await;
        system_checks(&server, &system, &mut check);
        if let Ok(s) = &system
            && !s.docker_installed()
        {
            return Ok(checks);
        }
        let t1 = Instant::now();
        match client.version().await {
            Ok(v) => {
                check(
                    "docker socket",
                    true,
                    format!("{} answers in {} ms", server.docker.socket, t1.elapsed().as_millis()),
                );
                check("docker version", true, v);
            }
            Err(e) => check("docker socket", false, e.to_string()),
        }
        Ok(checks)
    }
}

/// The checks of what the probe found: the OS (and whether tomo can manage
/// Docker there, when the server asks it to), Docker installed, socket access.
fn system_checks(
    server: &Server,
    system: &std::result::Result<HostFacts, String>,
    check: &mut impl FnMut(&str, bool, String),
) {
    let s = match system {
        Ok(s) => s,
        Err(e) => return check("os", false, e.clone()),
    };
    let pm = s.package_managers.first().map_or("no known package manager", |p| p.command());
    let init = serde_json::to_value(s.init).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let managed = server.docker.ensure != crate::model::DockerEnsure::Unmanaged;
    let supported = crate::plan::docker::family(s);
    let os_ok = !managed || supported.is_ok();
    let mut detail = format!("{}, {init}, {pm}", s.os_summary());
    if let (true, Err(e)) = (managed, &supported) {
        detail.push_str(&format!(": {e}"));
    }
    check("os", os_ok, detail);
    let installed = s.docker_installed();
    let pkgs: Vec<String> = s.packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
    let version = s.docker_version.clone().unwrap_or_else(|| "installed".into());
    let detail = match (installed, pkgs.is_empty()) {
        (false, _) => "not installed".to_string(),
        (true, true) => version,
        (true, false) => format!("{version} ({})", pkgs.join(", ")),
    };
    check("docker engine", installed, detail);
    if installed && !s.is_root() {
        let detail = if s.socket_access {
            format!("{} may use {}", s.user, server.docker.socket)
        } else {
            format!("{} may not use {} (not in the `docker` group?)", s.user, server.docker.socket)
        };
        check("socket access", s.socket_access, detail);
    }
}

fn local_probe() -> std::result::Result<String, String> {
    let out = std::process::Command::new(PROBE[0]).args(&PROBE[1..]).output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `/proc/loadavg` fields → "load 0.10 0.20 0.30 (1, 5, 15 min)".
fn load(probe: &str) -> String {
    probe.lines().nth(3).map_or_else(|| "unknown".into(), |l| format!("load {} (1, 5, 15 min)", l.trim()))
}

/// `df -Pk` line → "12.3 GiB free of 40.0 GiB on /".
fn free_disk(probe: &str) -> String {
    let Some(line) = probe.lines().nth(2) else { return "unknown".into() };
    let f: Vec<&str> = line.split_whitespace().collect();
    match (f.get(1).and_then(|v| v.parse::<f64>().ok()), f.get(3).and_then(|v| v.parse::<f64>().ok())) {
        (Some(total), Some(avail)) => {
            let gib = |k: f64| k / 1024.0 / 1024.0;
            format!("{:.1} GiB free of {:.1} GiB on /", gib(avail), gib(total))
        }
        _ => "unknown".into(),
    }
}
