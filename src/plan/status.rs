//! Status: each declared container as observed, with what apply would do
//! to it (its drift). One computation for `tomo status` and the MCP tool.

use super::{Plan, Scope};
use crate::model::{Desired, Observed, ServerState};

/// One declared container on a reached server.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub server: String,
    pub app: String,
    pub service: String,
    pub container: String,
    /// `running`, `exited`, … or `missing`.
    pub state: &'static str,
    /// `healthy`, `unhealthy`, `starting`, or `None` without a healthcheck.
    pub health: Option<&'static str>,
    /// What apply would do and why, and conflicts; empty when in sync.
    pub drift: Vec<String>,
}

/// The rows of the apps in `scope`, server by server.
pub fn rows(p: &Plan, observed: &Observed, desired: &Desired, scope: &Scope) -> Vec<StatusRow> {
    let mut out = Vec::new();
    for (server, state) in &observed.servers {
        let ServerState::Reached(inv) = state else { continue };
        for app in desired.apps.values().filter(|a| a.servers.contains(server) && scope.has_app(&a.name)) {
            for svc in app.services.values() {
                let name = app.container_name(&svc.name);
                let c = inv.container(&name);
                let drift = p
                    .actions
                    .iter()
                    .filter(|a| &a.server == server && a.op.object() == name)
                    .map(|a| format!("{} ({})", a.op.verb(), a.reasons.join("; ")))
                    .chain(
                        p.conflicts
                            .iter()
                            .filter(|c| &c.server == server && c.object == name)
                            .map(|c| c.message.clone()),
                    )
                    .collect();
                out.push(StatusRow {
                    server: server.to_string(),
                    app: app.name.to_string(),
                    service: svc.name.to_string(),
                    state: c.map_or(
                        if svc.state == crate::model::ServiceState::Absent { "absent" } else { "missing" },
                        |c| c.state.as_str(),
                    ),
                    health: c.and_then(|c| c.health).map(|h| h.as_str()),
                    drift,
                    container: name,
                });
            }
        }
    }
    out
}
