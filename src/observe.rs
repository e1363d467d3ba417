//! Observation: one pass per server in scope, all servers at once, each a few
//! list calls (`DockerClient::inventory`). A server that cannot be reached is
//! recorded as such; it never blocks the others.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use crate::model::{Desired, Name, Observed, ServerState};
use crate::plan::Scope;
use crate::transport::docker::DockerClient;

/// Observes every declared server in `scope` through `clients` (a server
/// without a client is unreachable for the given reason).
pub async fn observe(
    desired: &Desired,
    scope: &Scope,
    clients: &BTreeMap<Name, Result<DockerClient, String>>,
) -> Observed {
    let servers: Vec<&Name> = desired.servers.keys().filter(|s| scope.has_server(s)).collect();
    let passes = servers.iter().map(|name| async move {
        let state = match clients.get(*name) {
            Some(Ok(c)) => match c.inventory().await {
                Ok(inv) => ServerState::Reached(inv),
                Err(e) => ServerState::Unreachable(e.to_string()),
            },
            Some(Err(why)) => ServerState::Unreachable(why.clone()),
            None => ServerState::Unreachable("no connection".into()),
        };
        ((*name).clone(), state)
    });
    Observed { servers: join_all(passes).await.into_iter().collect() }
}

/// Pulls the images of running services declared `pull: always`, so that
/// observation sees what their tags point to now. Returns the pulls that
/// failed (the plan then works from the image already on the server).
pub async fn refresh_images(
    desired: &Desired,
    scope: &Scope,
    clients: &BTreeMap<Name, Result<DockerClient, String>>,
) -> Vec<(Name, String, String)> {
    let mut pulls = Vec::new();
    for app in desired.apps.values().filter(|a| scope.has_app(&a.name) && a.state != crate::model::AppState::Absent) {
        for server in app.servers.iter().filter(|s| scope.has_server(s)) {
            for svc in app.services.values().filter(|s| s.pull == crate::model::PullPolicy::Always) {
                if let Some(Ok(c)) = clients.get(server) {
                    let key = (server.clone(), svc.image.reference.clone());
                    if !pulls.iter().any(|(k, _)| *k == key) {
                        pulls.push((key, c.clone()));
                    }
                }
            }
        }
    }
    let results = join_all(pulls.into_iter().map(|((server, image), c)| async move {
        let r = c.pull(&image).await;
        (server, image, r)
    }))
    .await;
    results.into_iter().filter_map(|(s, i, r)| r.err().map(|e| (s, i, e.to_string()))).collect()
}
