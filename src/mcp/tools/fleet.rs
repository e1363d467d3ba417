//! Server, Docker and health tools. Server changes edit Server manifests;
//! the rest read each server's Docker Engine, or prune its unused images.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ChangeOut, ServerArg, ServersArg, bad_arg, names};
use crate::auth::Identity;
use crate::engine::{
    Check, ContainerRow, DocKind, EngineFacts, ImageRow, PerServer, Pruned, Scope, ServerAuth, ServerEdit, ServerFields,
};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerRow {
    pub name: String,
    /// `local`, or `user@address:port`
    pub host: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerListOut {
    pub servers: Vec<ServerRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameArg {
    /// The server's name.
    pub name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerGetOut {
    pub name: String,
    /// The Server manifest as JSON (empty for the implicit `local` server).
    pub manifest: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// How tomo logs in.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthArg {
    /// `key_file` (with `path`), `agent`, `password` or `key` (with `secret`, a vault secret's name).
    pub method: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerArgs {
    /// The server's name.
    pub name: String,
    /// Address or host name (`local` for this machine). Required for `server_add`.
    #[serde(default)]
    pub host: Option<String>,
    /// SSH port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    /// SSH user.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub auth: Option<AuthArg>,
    /// Pinned host key fingerprint, `SHA256:…`.
    #[serde(default)]
    pub host_key: Option<String>,
    /// Run Docker through `sudo -n`.
    #[serde(default)]
    pub sudo: Option<bool>,
    /// The Docker socket path on the server.
    #[serde(default)]
    pub docker_socket: Option<String>,
}

impl AuthArg {
    fn parse(self) -> Result<ServerAuth, ToolError> {
        let secret = |s: Option<String>, method: &str| {
            s.ok_or_else(|| bad_arg("auth.secret", format!("required with method `{method}`")))
        };
        match self.method.as_str() {
            "agent" => Ok(ServerAuth::Agent),
            "key_file" => Ok(ServerAuth::KeyFile {
                path: self.path.ok_or_else(|| bad_arg("auth.path", "required with method `key_file`"))?,
            }),
            "password" => Ok(ServerAuth::Password { secret: secret(self.secret, "password")? }),
            "key" => Ok(ServerAuth::Key { secret: secret(self.secret, "key")? }),
            other => Err(bad_arg("auth.method", format!("`{other}` is not one of: key_file, agent, password, key"))),
        }
    }
}

impl ServerArgs {
    /// The server's name and the fields to set.
    fn parse(self) -> Result<(String, ServerFields), ToolError> {
        let fields = ServerFields {
            host: self.host,
            port: self.port,
            user: self.user,
            auth: self.auth.map(AuthArg::parse).transpose()?,
            host_key: self.host_key,
            sudo: self.sudo,
            docker_socket: self.docker_socket,
            docker: None,
        };
        Ok((self.name, fields))
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChecksOut {
    pub ok: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InfoOut {
    pub servers: Vec<PerServer<EngineFacts>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainersOut {
    pub server: String,
    pub containers: Vec<ContainerRow>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ImagesOut {
    pub server: String,
    pub images: Vec<ImageRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneArgs {
    /// Only these servers (all when empty).
    #[serde(default)]
    pub servers: Vec<String>,
    /// Also remove tagged images no container uses (default: only dangling ones).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PruneOut {
    pub servers: Vec<PerServer<Pruned>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HealthOut {
    /// Whether every check on every server passed.
    pub healthy: bool,
    pub servers: Vec<PerServer<Vec<Check>>>,
    /// Metric alerts firing (`Settings.metrics.alerts`), as of the last collection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<crate::model::alert::AlertState>,
}

/// The one result of a single-server call, or its error.
fn one<T>(mut per: Vec<PerServer<T>>) -> Result<(String, T), ToolError> {
    let p = per.pop().ok_or_else(|| ToolError("no such server".into()))?;
    match p.result {
        Some(v) => Ok((p.server, v)),
        None => Err(ToolError(format!("server `{}`: {}", p.server, p.error.unwrap_or_default()))),
    }
}

#[tool_router(router = fleet_tools, vis = "pub(super)")]
impl Tomo {
    /// Lists the declared servers with a quick probe of each (reachable, Docker version, OS, uptime), all in parallel.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn server_list(&self) -> Result<Json<ServerListOut>, ToolError> {
        let facts = self.engine().server_facts(&Scope::default()).await?;
        Ok(Json(ServerListOut {
            servers: facts
                .into_iter()
                .map(|f| ServerRow {
                    name: f.name.to_string(),
                    host: f.host,
                    reachable: f.reachable,
                    error: f.error,
                    docker_version: f.docker_version,
                    os: f.os,
                    uptime_seconds: f.uptime_seconds,
                })
                .collect(),
        }))
    }

    /// One server's manifest, as JSON.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn server_get(&self, Parameters(a): Parameters<NameArg>) -> Result<Json<ServerGetOut>, ToolError> {
        let desired = self.engine().desired()?;
        if !desired.servers.contains_key(a.name.as_str()) {
            let known: Vec<&str> = desired.servers.keys().map(|n| n.as_str()).collect();
            return Err(bad_arg("name", format!("there is no server `{}`; servers: {}", a.name, known.join(", "))));
        }
        let doc = self.engine().document(DocKind::Server, &a.name)?;
        Ok(Json(ServerGetOut {
            name: a.name,
            file: doc.as_ref().map(|d| d.0.clone()),
            manifest: doc.map_or(Value::Object(Map::new()), |d| d.2),
        }))
    }

    /// Declares a new server (a Server manifest in `servers/<name>.yaml`); returns the diff and plan, or a proposal. Trust its host key with `tomo server trust` before use.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn server_add(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<ServerArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        let (name, fields) = a.parse()?;
        Ok(Json(self.engine().edit_server(ServerEdit::Add { name, fields }, &who).await?.into()))
    }

    /// Changes fields of a declared server (host, port, user, auth, host key, sudo, Docker socket); returns the diff and plan, or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn server_update(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<ServerArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        let (name, fields) = a.parse()?;
        Ok(Json(self.engine().edit_server(ServerEdit::Update { name, fields }, &who).await?.into()))
    }

    /// Removes a server's manifest. Refused while apps still run on it (move or remove them first); containers on it are not touched.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn server_remove(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<NameArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        Ok(Json(self.engine().edit_server(ServerEdit::Remove { name: a.name }, &who).await?.into()))
    }

    /// Checks one server step by step: SSH, login, sudo, Docker socket, Docker version, free disk, load.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn server_test(&self, Parameters(a): Parameters<NameArg>) -> Result<Json<ChecksOut>, ToolError> {
        let checks = self.engine().test_server(&a.name).await?;
        Ok(Json(ChecksOut { ok: checks.iter().all(|c| c.ok), checks }))
    }

    /// Docker Engine facts per server: version, OS, CPUs, memory, container and image counts, image disk use.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn docker_info(&self, Parameters(a): Parameters<ServersArg>) -> Result<Json<InfoOut>, ToolError> {
        Ok(Json(InfoOut { servers: self.engine().docker_facts(names("servers", &a.servers)?).await? }))
    }

    /// Every container on a server, managed by tomo or not.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn docker_containers(&self, Parameters(a): Parameters<ServerArg>) -> Result<Json<ContainersOut>, ToolError> {
        let (server, containers) = one(self.engine().docker_containers(names("server", &[a.server])?).await?)?;
        Ok(Json(ContainersOut { server, containers }))
    }

    /// The images on a server, with sizes and how many containers use each.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn docker_images(&self, Parameters(a): Parameters<ServerArg>) -> Result<Json<ImagesOut>, ToolError> {
        let (server, images) = one(self.engine().docker_images(names("server", &[a.server])?).await?)?;
        Ok(Json(ImagesOut { server, images }))
    }

    /// Removes unused images (dangling ones, or all unused with `all`) and the build cache, now. Never touches volumes or containers.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn docker_prune(&self, Parameters(a): Parameters<PruneArgs>) -> Result<Json<PruneOut>, ToolError> {
        Ok(Json(PruneOut { servers: self.engine().docker_prune(names("servers", &a.servers)?, a.all).await? }))
    }

    /// Health of each server (all in parallel): SSH, Docker, disk, load.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn health_check(&self, Parameters(a): Parameters<ServersArg>) -> Result<Json<HealthOut>, ToolError> {
        let servers = self.engine().health(names("servers", &a.servers)?).await?;
        let alerts = self.engine().alerts()?;
        let healthy =
            alerts.is_empty() && servers.iter().all(|s| s.result.as_ref().is_some_and(|c| c.iter().all(|c| c.ok)));
        Ok(Json(HealthOut { healthy, servers, alerts }))
    }
}
