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
