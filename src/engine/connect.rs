//! Connections to the servers, kept for the engine's life: one Docker
//! client per server, one SSH session per remote server (its host key
//! checked against the pinned or recorded one, its login from the manifest
//! or the vault). Connecting is limited in all and per host, and a kept
//! connection found dropped is made again on next use.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::engine::PlanOptions;
use crate::error::{ConnectError, Error};
use crate::model::{Desired, Host, Name};
use crate::transport::docker::DockerClient;
use crate::transport::ssh::{Credential, HostKeyPolicy, SshError, SshSession};

/// Connection attempts to an SSH server before its failure is reported.
const CONNECT_ATTEMPTS: u32 = 3;

/// sshd drops handshakes beyond its MaxStartups; a few at once per host is safe.
const HANDSHAKES_PER_HOST: usize = 4;

/// Limits and identity shared by the connections of one operation.
pub(super) struct Connector {
    installation: std::result::Result<String, Arc<Error>>,
    global: tokio::sync::Semaphore,
    per_host: BTreeMap<String, tokio::sync::Semaphore>,
    /// Each server's time to answer (`Engine::server_timeout`).
    pub(super) timeout: Duration,
}

/// `~/x` → `$HOME/x`.
fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

impl Engine {
    /// What connecting needs: this installation's id and the limits on
    /// connections at once (all servers, and handshakes per host).
    pub(super) fn connector(&self, desired: &Desired, opts: &PlanOptions) -> Connector {
        let installation = self.store().and_then(|s| Ok(s.installation_id()?)).map_err(Arc::new);
        self.connector_as(desired, opts, installation)
    }

    /// A connector that labels and recognises objects as `installation`'s.
    pub(super) fn connector_as(
        &self,
        desired: &Desired,
        opts: &PlanOptions,
        installation: std::result::Result<String, Arc<Error>>,
    ) -> Connector {
        let per_host = desired
            .servers
            .values()
            .filter(|s| opts.scope.has_server(&s.name))
            .filter_map(|s| match &s.host {
                Host::Ssh(t) => Some((t.address.clone(), tokio::sync::Semaphore::new(HANDSHAKES_PER_HOST))),
                Host::Local => None,
            })
            .collect();
        Connector {
            installation,
            global: tokio::sync::Semaphore::new(self.config.max_concurrent_connections as usize),
            per_host,
            timeout: self.server_timeout(desired),
        }
    }

    /// How long a server may take to answer: connecting and being observed
    /// as a whole, and each Docker call of apply. `Settings.server_timeout`
    /// when the manifests declare it (one value for every process that
    /// reads them), else `SSH_TIMEOUT` (default 30s).
    pub fn server_timeout(&self, desired: &Desired) -> Duration {
        desired.settings.server_timeout.unwrap_or(self.config.ssh_timeout).to_std()
    }

    /// The Docker client of one server (connected over SSH when remote, and
    /// kept for the engine's life), or why there is none.
    pub(super) async fn client(
        &self,
        server: &crate::model::Server,
        via: &Connector,
    ) -> Result<DockerClient, ConnectError> {
        if let Some(c) = self.cached(&server.name) {
            return Ok(c);
        }
        let installation = via.installation.as_deref().map_err(|e| ConnectError::Store(e.clone()))?;
        let client = match &server.host {
            Host::Local => {
                DockerClient::local(&server.docker.socket, installation, via.timeout).map_err(ConnectError::Docker)
            }
            Host::Ssh(t) => {
                let _g = via.global.acquire().await;
                let _h = match via.per_host.get(&t.address) {
                    Some(s) => Some(s.acquire().await),
                    None => None,
                };
                let session = self.ssh_session_with_retry(server, t, via.timeout).await?;
                DockerClient::over_ssh(session, &server.docker.socket, installation, via.timeout)
                    .map(|c| c.with_sudo(t.sudo))
                    .map_err(ConnectError::Docker)
            }
        };
        if let Ok(c) = &client {
            self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(server.name.clone(), c.clone());
        }
        client
    }

    /// A Docker client per declared server in scope, or why there is none;
    /// SSH servers are connected in parallel.
    pub(super) async fn clients(
        &self,
        desired: &Desired,
        opts: &PlanOptions,
    ) -> BTreeMap<Name, Result<DockerClient, ConnectError>> {
        let via = self.connector(desired, opts);
        let connect = desired
            .servers
            .values()
            .filter(|s| opts.scope.has_server(&s.name))
            .map(|server| async { (server.name.clone(), self.client(server, &via).await) });
        futures_util::future::join_all(connect).await.into_iter().collect()
    }

    pub(super) fn cached(&self, name: &Name) -> Option<DockerClient> {
        let alive = self.session(name).is_none_or(|s| !s.is_closed());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !alive {
            // The SSH connection dropped: connect again on next use.
            clients.remove(name);
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
            return None;
        }
        clients.get(name).cloned()
    }

    /// Drops a server's kept connection (it is made again on next use).
    pub(super) fn forget(&self, name: &Name) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// The open SSH connection of a server, if any.
    pub(super) fn session(&self, name: &Name) -> Option<Arc<SshSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// The host key to accept for a server: pinned in its manifest, else
    /// recorded by `tomo server trust`.
    fn host_key_policy(&self, server: &Name, target: &crate::model::SshTarget) -> Result<HostKeyPolicy, ConnectError> {
        if let Some(fp) = &target.host_key {
            return Ok(HostKeyPolicy::Expect(fp.clone()));
        }
        let store = |e: Error| ConnectError::Store(Arc::new(e));
        let recorded = self.store().map_err(store)?.trusted_host_key(server.as_str()).map_err(|e| store(e.into()))?;
        match recorded {
            Some(fp) => Ok(HostKeyPolicy::Expect(fp)),
            None => Err(ConnectError::Untrusted { server: server.to_string(), address: target.address.clone() }),
        }
    }

    fn credential(&self, auth: &crate::model::SshAuth) -> Result<Credential, ConnectError> {
        use crate::model::{EnvValue, SshAuth};
        let reveal =
            |secret: &Name| self.secrets().reveal(&EnvValue::Secret(secret.clone())).map_err(ConnectError::Credential);
        Ok(match auth {
            SshAuth::Agent => Credential::Agent,
            SshAuth::KeyFile(p) => Credential::KeyFile(expand_home(p)),
            SshAuth::Password { secret } => Credential::Password(reveal(secret)?),
            SshAuth::Key { secret } => Credential::Key(reveal(secret)?),
        })
    }

    /// Connects, retrying transient failures (refused, dropped, timed out) with
    /// exponential backoff and jitter, all attempts within one `timeout`; a
    /// refused key or login is final.
    async fn ssh_session_with_retry(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, ConnectError> {
        let deadline = crate::observe::Deadline::new(timeout);
        deadline.run("connecting", self.ssh_session_attempts(server, t, timeout)).await?
    }

    async fn ssh_session_attempts(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, ConnectError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=CONNECT_ATTEMPTS {
            match self.ssh_session(server, t, timeout).await {
                Ok(s) => return Ok(s),
                Err((e, transient)) if transient && attempt < CONNECT_ATTEMPTS => {
                    let jitter = Duration::from_millis(u64::from(std::process::id() % 7) * 10);
                    tracing::debug!(server = %server.name, attempt, error = %e, "retrying the SSH connection");
                    tokio::time::sleep(delay + jitter).await;
                    delay *= 2;
                }
                Err((e, _)) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    async fn ssh_session(
        &self,
        server: &crate::model::Server,
        t: &crate::model::SshTarget,
        timeout: Duration,
    ) -> Result<Arc<SshSession>, (ConnectError, bool)> {
        let policy = self.host_key_policy(&server.name, t).map_err(|e| (e, false))?;
        let credential = self.credential(&t.auth).map_err(|e| (e, false))?;
        let session =
            SshSession::connect(&t.address, t.port, &t.user, &credential, policy, timeout).await.map_err(|e| {
                let transient = e.is_transient();
                if let SshError::HostKeyChanged { expected, got, .. } = &e
                    && let Ok(store) = self.store()
                {
                    let _ = store.record_activity(&crate::store::Activity {
                        category: "server",
                        action: "host-key-changed",
                        target: Some(server.name.as_str()),
                        result: "refused",
                        detail: Some(&format!("expected {expected}, got {got}")),
                        ..Default::default()
                    });
                }
                (ConnectError::Ssh(e), transient)
            })?;
        let session = Arc::new(session);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(server.name.clone(), session.clone());
        Ok(session)
    }
}
