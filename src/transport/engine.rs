//! What observation and apply need from one server's Docker Engine, as a
//! trait: `DockerClient` (bollard, the local socket or over SSH) implements it
//! for real, and apply's unit tests with an in-memory engine.
//!
//! Implementors provide single attempts (`*_once`) and the few calls that are
//! one step each; the policy above them is written once, here: transient
//! failures are retried (`retrying`), ids are checked before they become a
//! URL path segment, a removal stops first, and what "ready" means for a
//! started container.

use std::future::Future;
use std::time::Duration;

use super::docker::{DockerError, NotReady, retrying, segment};
use crate::model::observed::DataMount;
use crate::model::secret::Secrets;
use crate::model::spec::ContainerSpec;
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::{Health, Inventory, NetworkOptions, RunState};

/// Whether a container's (state, health, exit code) is final for a wait:
/// `Some(Ok)` reached, `Some(Err(why))` never will be, `None` not yet.
pub type Ready = dyn Fn(RunState, Option<Health>, i64) -> Option<Result<(), NotReady>> + Send + Sync;

/// One server's Docker Engine, as observe and apply use it.
pub trait EngineApi: Send + Sync {
    /// A container's create request, made once per create (not per attempt).
    type Prepared: Send + Sync;

    /// The secret values masked in this engine's errors (retry warnings too).
    fn redactor(&self) -> &crate::redact::Redactor;

    /// This engine, masking the values of `redact` in its errors.
    fn redacting(&self, redact: std::sync::Arc<crate::redact::Redactor>) -> Self
    where
        Self: Sized;

    /// One attempt at listing everything observation needs.
    fn inventory_once(&self) -> impl Future<Output = Result<Inventory, DockerError>> + Send;

    /// Pulls `image` (a stream; not retried).
    fn pull(&self, image: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Creates this installation's network `name` (or adopts it) with
    /// `options` and `subnet` or, when that was taken meanwhile, the next free one of `pool`.
    fn create_network(
        &self,
        name: &str,
        app: Option<&str>,
        server: &str,
        subnet: Option<Subnet>,
        pool: Option<NetworkPool>,
        options: &NetworkOptions,
    ) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Removes a network by id (or name); one already gone is fine.
    fn remove_network(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    fn create_volume_once(
        &self,
        name: &str,
        app: Option<&str>,
        server: &str,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Which of `paths` do not exist on the server (host folders of bind mounts).
    fn missing_paths(&self, paths: &[String]) -> impl Future<Output = Result<Vec<String>, DockerError>> + Send;

    /// Creates a host folder and its missing parents, with `owner` and
    /// `mode` when given. Folders are never removed.
    fn create_dir(
        &self,
        path: &str,
        owner: Option<(u32, Option<u32>)>,
        mode: Option<u32>,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Writes a config file on the server atomically (temporary file, rename).
    fn write_file(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Writes the config files of `spec` where its container mounts them from.
    fn write_files(
        &self,
        spec: &ContainerSpec,
        redacted: &serde_json::Value,
        secrets: &dyn Secrets,
    ) -> impl Future<Output = Result<(), DockerError>> + Send {
        let mut files = Vec::new();
        for (path, f) in spec.file_paths(redacted) {
            let content = match &f.content {
                crate::model::files::FileContent::Text(t) => Ok(t.clone().into_bytes()),
                crate::model::files::FileContent::Secret(n) => secrets
                    .reveal(&crate::model::EnvValue::Secret(n.clone()))
                    .map(|v| v.expose().as_bytes().to_vec())
                    .map_err(DockerError::Spec),
            };
            files.push((path, content, f.mode, f.uid, f.gid));
        }
        async move {
            for (path, content, mode, uid, gid) in files {
                self.write_file(&path, &content?, mode, uid, gid).await?;
            }
            Ok(())
        }
    }

    /// Runs one command on the server itself (not in a container): over
    /// its SSH connection, or on this machine for `local`; behind `sudo -n`
    /// when `sudo`. Its output and status, whatever the status.
    fn host_command(
        &self,
        argv: &[String],
        sudo: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<super::ssh::ExecOutput, DockerError>> + Send;

    /// The version of the Engine answering on the socket (one attempt).
    fn engine_version(&self) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// The create request for `spec` (secrets revealed, the app's network
    /// looked up), mounting the volumes of `keeps` at their targets.
    fn prepare_container(
        &self,
        spec: &ContainerSpec,
        hash: &str,
        redacted: &serde_json::Value,
        secrets: &dyn Secrets,
        keeps: &[DataMount],
    ) -> impl Future<Output = Result<Self::Prepared, DockerError>> + Send;

    /// One attempt at creating the container `name`; a container of that
    /// name with exactly the spec `hash` (an earlier attempt's) is adopted.
    fn create_container_once(
        &self,
        name: &str,
        prepared: &Self::Prepared,
        hash: &str,
    ) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Joins the container to the spec's further networks.
    fn connect_networks(&self, id: &str, spec: &ContainerSpec) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// One attempt at starting; already running is fine.
    fn start_once(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// One attempt at stopping within `timeout`; already stopped is fine.
    fn stop_once(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// One attempt at removing a (stopped) container, never its volumes.
    fn remove_once(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    fn rename_once(&self, id: &str, new_name: &str) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// The state, health and exit code of one container.
    fn state(&self, id: &str) -> impl Future<Output = Result<(RunState, Option<Health>, i64), DockerError>> + Send;

    /// Whether the container was never started.
    fn never_started(&self, id: &str) -> impl Future<Output = Result<bool, DockerError>> + Send;

    /// The last `lines` lines of the container's log, stdout and stderr
    /// interleaved, each led by its timestamp.
    fn last_logs(&self, id: &str, lines: u32) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Waits (on the Engine's events, never by sleeping) until `ready`
    /// decides, or fails when `timeout` passes.
    fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        ready: &Ready,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Everything observation needs, retried on transient failures.
    fn inventory(&self) -> impl Future<Output = Result<Inventory, DockerError>> + Send {
        retrying(self.redactor(), "list", || self.inventory_once())
    }

    fn create_volume(
        &self,
        name: &str,
        app: Option<&str>,
        server: &str,
    ) -> impl Future<Output = Result<(), DockerError>> + Send {
        retrying(self.redactor(), "create-volume", move || self.create_volume_once(name, app, server))
    }

    /// Creates the container of `spec` under `name`, mounting the volumes of
    /// `keeps` (a replaced container's anonymous ones) at their targets;
    /// returns its id.
    fn create_container(
        &self,
        name: &str,
        spec: &ContainerSpec,
        hash: &str,
        redacted: &serde_json::Value,
        secrets: &dyn Secrets,
        keeps: &[DataMount],
    ) -> impl Future<Output = Result<String, DockerError>> + Send {
        async move {
            self.write_files(spec, redacted, secrets).await?;
            let prepared = self.prepare_container(spec, hash, redacted, secrets, keeps).await?;
            retrying(self.redactor(), "create", || self.create_container_once(name, &prepared, hash)).await
        }
    }

    fn start(&self, id: &str) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            segment("start", "id", id)?;
            retrying(self.redactor(), "start", || self.start_once(id)).await
        }
    }

    fn stop(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            segment("stop", "id", id)?;
            retrying(self.redactor(), "stop", || self.stop_once(id, timeout)).await
        }
    }

    /// Stops (within `timeout`) and removes a container. Its volumes, also
    /// anonymous ones, are kept: tomo deletes only volumes the user named.
    fn remove(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            segment("remove", "id", id)?;
            self.stop(id, timeout).await.or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
            retrying(self.redactor(), "remove", || async {
                self.remove_once(id).await.or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
            })
            .await
        }
    }

    fn rename(&self, id: &str, new_name: &str) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            segment("rename", "id", id)?;
            retrying(self.redactor(), "rename", || self.rename_once(id, new_name)).await
        }
    }

    /// Waits until the container is healthy (or, without a healthcheck,
    /// running). Fails when it becomes unhealthy, exits, or `timeout` passes.
    fn wait_healthy(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            self.wait_for(id, timeout, &|run, health, _| match (run, health) {
                (_, Some(Health::Healthy)) => Some(Ok(())),
                (_, Some(Health::Unhealthy)) => Some(Err(NotReady::Unhealthy)),
                (RunState::Running, None) => Some(Ok(())),
                (RunState::Exited | RunState::Dead, _) => Some(Err(NotReady::ExitedUnhealthy)),
                _ => None,
            })
            .await
        }
    }

    /// Waits until the container runs (and, when it has a healthcheck, is not
    /// unhealthy); fails when it exits first.
    fn wait_running(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            self.wait_for(id, timeout, &|run, _, code| match run {
                RunState::Running => Some(Ok(())),
                RunState::Exited | RunState::Dead => Some(Err(NotReady::Exited(code))),
                _ => None,
            })
            .await
        }
    }

    /// Waits until the container exits with status 0.
    fn wait_completed(&self, id: &str, timeout: Duration) -> impl Future<Output = Result<(), DockerError>> + Send {
        async move {
            self.wait_for(id, timeout, &|run, _, code| match run {
                RunState::Exited if code == 0 => Some(Ok(())),
                RunState::Exited | RunState::Dead => Some(Err(NotReady::Exited(code))),
                _ => None,
            })
            .await
        }
    }
}
