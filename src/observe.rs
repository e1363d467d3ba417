//! Observation of one server: a few list calls (`DockerClient::inventory`),
//! after pulling the images of its `pull: always` services so that tags are
//! seen as they point now. A server that cannot be reached is recorded as
//! such; the engine observes all servers at once, so it never blocks the others.

use crate::model::{AppState, Desired, Name, PullPolicy, ServerState};
use crate::plan::Scope;
use crate::transport::docker::DockerClient;

/// Observes `server` through `client` (or records why it is unreachable).
pub async fn observe_server(
    desired: &Desired,
    scope: &Scope,
    server: &Name,
    client: Result<DockerClient, String>,
) -> ServerState {
    let client = match client {
        Ok(c) => c,
        Err(why) => return ServerState::Unreachable(why),
    };
    for image in always_pulled(desired, scope, server) {
        if let Err(error) = client.pull(&image).await {
            tracing::warn!(%server, %image, %error, "pull failed; planning with the image on the server");
        }
    }
    match client.inventory().await {
        Ok(inv) => ServerState::Reached(inv),
        Err(e) => ServerState::Unreachable(e.to_string()),
    }
}

/// Images of running services on `server` declared `pull: always`.
fn always_pulled(desired: &Desired, scope: &Scope, server: &Name) -> Vec<String> {
    let mut images: Vec<String> = desired
        .apps
        .values()
        .filter(|a| scope.has_app(&a.name) && a.state != AppState::Absent && a.servers.contains(server))
        .flat_map(|a| a.services.values())
        .filter(|s| s.pull == PullPolicy::Always)
        .map(|s| s.image.reference.clone())
        .collect();
    images.sort();
    images.dedup();
    images
}
