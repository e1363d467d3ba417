//! Docker Engine on the servers, engine side: the probe of a server's OS
//! and Docker (one command over its connection, parsed by
//! `model::host::HostFacts::parse`) for every server whose `docker` block
//! tomo manages, taken before its Engine is listed; an Engine missing or
//! silent is not listed (the plan creates what the server should run, after
//! the Engine's action).

use crate::error::ConnectError;
use crate::model::host::{HostFacts, PROBE};
use crate::model::{Desired, DockerEnsure, Server, ServerState};
use crate::observe::{Deadline, observe_server, without_engine};
use crate::plan::PlanOptions;
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;

use super::Engine;

/// Runs the probe on the server (as the SSH user, no sudo) and reads it.
pub(super) async fn probe(c: &DockerClient, socket: &str, timeout: std::time::Duration) -> Result<HostFacts, String> {
    let argv = ["sh", "-c", PROBE, "tomo-facts", socket].map(String::from);
    let out = c.host_command(&argv, false, timeout).await.map_err(|e| format!("probing the OS: {e}"))?;
    if !out.success() || !out.stdout.starts_with("tomo-facts 1") {
        return Err(format!(
            "probing the OS: the probe failed (status {:?}): {}",
            out.status,
            crate::term::field(out.stderr.trim())
        ));
    }
    Ok(HostFacts::parse(&out.stdout))
}

impl Engine {
    /// Observes one server; one whose `docker` block tomo manages is probed
    /// first, and its Engine listed only when installed and answering.
    pub(super) async fn observe_one(
        &self,
        desired: &Desired,
        opts: &PlanOptions,
        server: &Server,
        client: Result<DockerClient, ConnectError>,
        deadline: &mut Deadline,
    ) -> (ServerState, Option<HostFacts>) {
        if server.docker.ensure == DockerEnsure::Unmanaged {
            return (observe_server(desired, &opts.scope, &server.name, client, deadline).await, None);
        }
        let c = match client {
            Ok(c) => c,
            Err(why) => return (ServerState::Unreachable(why.to_string()), None),
        };
        let timeout = self.server_timeout(desired);
        let mut facts = match deadline.run("probing its OS and Docker", probe(&c, &server.docker.socket, timeout)).await
        {
            Ok(Ok(f)) => f,
            Ok(Err(why)) => return (ServerState::Unreachable(why), None),
            Err(late) => return (ServerState::Unreachable(late.to_string()), None),
        };
        if !facts.docker_installed() || !facts.socket {
            return (without_engine(desired, &opts.scope, &server.name, &c, deadline).await, Some(facts));
        }
        let state = observe_server(desired, &opts.scope, &server.name, Ok(c.clone()), deadline).await;
        facts.daemon = matches!(state, ServerState::Reached(_));
        if facts.daemon || deadline.passed() {
            return (state, Some(facts));
        }
        (without_engine(desired, &opts.scope, &server.name, &c, deadline).await, Some(facts))
    }
}
