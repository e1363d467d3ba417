//! Docker Engine on the servers, declaratively: `docker_install` and
//! `docker_update` edit a Server manifest's `docker` block (through the
//! engine's `ServerEdit`) and return the diff and the plan, in which the
//! Engine's action shows with its commands; or a proposal.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ChangeOut, bad_arg};
use crate::auth::Identity;
use crate::engine::{DockerEdit, ServerEdit, ServerFields};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::model::{DockerEnsure, DockerSource};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallArgs {
    /// The declared server.
    pub server: String,
    /// The versions accepted, as leading version numbers: `27.*`, `24.0.*`, `27.3.1`. Any when left out.
    #[serde(default)]
    pub version: Option<String>,
    /// `distro` (the OS's own package, the default where it has one) or `upstream` (Docker's repository).
    #[serde(default)]
    pub source: Option<DockerSource>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The declared server.
    pub server: String,
    /// The versions accepted from now on, e.g. `27.*`: an older Engine is upgraded; tomo never downgrades.
    pub version: String,
}

#[tool_router(router = docker_tools, vis = "pub(super)")]
impl Tomo {
    /// Declares that Docker Engine be installed on a server (its Server manifest's `docker.ensure: present`, with an optional version constraint and source); returns the diff and the plan, whose `docker-engine` action lists the commands apply will run over SSH, or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn docker_install(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<InstallArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        let docker = DockerEdit { ensure: Some(DockerEnsure::Present), version: a.version, source: a.source };
        let fields = ServerFields { docker: Some(docker), ..ServerFields::default() };
        Ok(Json(self.engine().edit_server(ServerEdit::Update { name: a.server, fields }, &who).await?.into()))
    }

    /// Changes the Docker Engine version a server accepts (`docker.version` of its manifest, e.g. `27.*`; the server must declare `docker.ensure: present`); returns the diff and the plan (an upgrade action with its commands, or nothing when the installed Engine already matches), or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn docker_update(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<UpdateArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        if a.version.trim().is_empty() {
            return Err(bad_arg("version", "required: the versions accepted, e.g. `27.*`"));
        }
        let desired = self.engine().desired()?;
        let managed = desired.servers.get(a.server.as_str()).map(|s| s.docker.ensure);
        if managed.is_some_and(|e| e != DockerEnsure::Present) {
            return Err(bad_arg(
                "server",
                format!("server `{}` does not declare `docker.ensure: present`; use `docker_install`", a.server),
            ));
        }
        let docker = DockerEdit { version: Some(a.version), ..DockerEdit::default() };
        let fields = ServerFields { docker: Some(docker), ..ServerFields::default() };
        Ok(Json(self.engine().edit_server(ServerEdit::Update { name: a.server, fields }, &who).await?.into()))
    }
}
