//! Observation of one server: a few list calls (`EngineApi::inventory`),
//! after pulling the images of its `pull: always` services so that tags are
//! seen as they point now. A server that cannot be reached is recorded as
//! such; the engine observes all servers at once, so it never blocks the others.
//! Each server has one [`Deadline`] for connecting and listing (pulls, which
//! can rightly take long, do not count): past it the server is unreachable,
//! with the step it was in and the real wait. Its length is
//! `Engine::server_timeout` (`Settings.server_timeout`, else `SSH_TIMEOUT`);
//! the SSH connect retries of every command share one such deadline too.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::ConnectError;
use crate::model::{AppState, Desired, Name, PullPolicy, Scope, ServerState};
use crate::transport::engine::EngineApi;

/// Observes `server` through `client` (or records why it is unreachable).
pub async fn observe_server(
    desired: &Desired,
    scope: &Scope,
    server: &Name,
    client: Result<impl EngineApi, ConnectError>,
    deadline: &mut Deadline,
) -> ServerState {
    let client = match client {
        Ok(c) => c,
        Err(why) => return ServerState::Unreachable(why.to_string()),
    };
    let pulls = Instant::now();
    for image in always_pulled(desired, scope, server) {
        if let Err(error) = client.pull(&image).await {
            tracing::warn!(%server, %image, %error, "pull failed; planning with the image on the server");
        }
    }
    deadline.end += pulls.elapsed();
    let paths = bind_sources(desired, scope, server);
    let listing = async {
        let (inv, missing) = tokio::join!(client.inventory(), client.missing_paths(&paths));
        let mut inv = inv?;
        inv.missing_paths = missing?;
        Ok::<_, crate::transport::docker::DockerError>(inv)
    };
    match deadline.run("listing its containers, networks, volumes, images and host folders", listing).await {
        Ok(Ok(inv)) => ServerState::Reached(inv),
        Ok(Err(e)) => ServerState::Unreachable(e.to_string()),
        Err(late) => ServerState::Unreachable(late.to_string()),
    }
}

/// A server whose Engine is missing or silent while tomo manages it
/// (`docker.ensure`): nothing of Docker's is there to list, so the plan
/// creates everything after the Engine's action; the host folders of its
/// bind mounts are still looked at (they need no Engine).
pub async fn without_engine(
    desired: &Desired,
    scope: &Scope,
    server: &Name,
    client: &impl EngineApi,
    deadline: &Deadline,
) -> ServerState {
    let paths = bind_sources(desired, scope, server);
    match deadline.run("looking for host folders", client.missing_paths(&paths)).await {
        Ok(Ok(missing)) => {
            ServerState::Reached(crate::model::Inventory { missing_paths: missing, ..Default::default() })
        }
        Ok(Err(e)) => ServerState::Unreachable(e.to_string()),
        Err(late) => ServerState::Unreachable(late.to_string()),
    }
}

/// Host paths of the bind mounts of the services on `server` that should
/// have a container: whether each exists is observed in the same pass.
fn bind_sources(desired: &Desired, scope: &Scope, server: &Name) -> Vec<String> {
    let mut paths: Vec<String> = desired
        .apps
        .values()
        .filter(|a| scope.has_app(&a.name) && a.state != AppState::Absent && a.servers.contains(server))
        .flat_map(|a| a.services.values())
        .filter(|s| s.state != crate::model::ServiceState::Absent)
        .flat_map(|s| s.mounts.iter())
        .filter_map(|m| match &m.source {
            crate::model::MountSource::Bind(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// A server that did not answer within its deadline: the step it was in,
/// the limit and the real wait.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no answer within the server timeout of {limit} while {step} (waited {waited_secs:.1}s)")]
pub struct Overdue {
    pub step: String,
    pub limit: crate::model::Duration,
    pub waited_secs: f64,
}

/// One server's time for connecting and being listed.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
    limit: Duration,
}

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        let start = Instant::now();
        Deadline { start, end: start + limit, limit }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.end
    }

    /// `work` if it ends before the deadline; else why not, as the server's
    /// reason for being unreachable.
    pub async fn run<T>(&self, step: &str, work: impl Future<Output = T>) -> Result<T, Overdue> {
        tokio::time::timeout_at(self.end, work).await.map_err(|_| Overdue {
            step: step.to_string(),
            limit: crate::model::Duration::from_millis(self.limit.as_millis() as u64),
            waited_secs: self.start.elapsed().as_secs_f64(),
        })
    }
}

/// Images of running services on `server` declared `pull: always`.
fn always_pulled(desired: &Desired, scope: &Scope, server: &Name) -> Vec<String> {
    let mut images: Vec<String> = desired
        .apps
        .values()
        .filter(|a| scope.has_app(&a.name) && a.state != AppState::Absent && a.servers.contains(server))
        .flat_map(|a| a.services.values())
        .filter(|s| s.pull == PullPolicy::Always && s.state != crate::model::ServiceState::Absent)
        .map(|s| s.image.reference.clone())
        .collect();
    images.sort();
    images.dedup();
    images
}
