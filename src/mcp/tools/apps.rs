//! App tools. Declarative ones (deploy, update, remove, start, stop,
//! rollback) edit the App manifest and return the plan, or a proposal; direct
//! ones (restart, logs, stats) act at once.

use std::collections::BTreeMap;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AppArg, ChangeOut, bad_arg};
use crate::auth::Identity;
use crate::engine::{
    AppAction, AppContainer, AppEdit, AppRevision, ContainerLogs, DeployApp, DocKind, EnvInput, PerServer, Release,
    ServiceEdit, Stats,
};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::model::{AppState, Duration, Name};

/// Declares an argument struct with the service fields shared by
/// `app_deploy` and `app_update` appended.
macro_rules! with_service_fields {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            /// Image reference, e.g. `nginx:1.27` or `ghcr.io/org/app@sha256:…`.
            #[serde(default)]
            pub image: Option<String>,
            /// Published ports, `[IP:]HOST:CONTAINER[/udp]`, e.g. `127.0.0.1:8080:80`.
            #[serde(default)]
            pub ports: Option<Vec<String>>,
            /// Environment variables. In `app_update`, the given ones are set and the others kept.
            #[serde(default)]
            pub env: Option<BTreeMap<String, EnvInput>>,
            /// Mounts: `VOLUME:/path`, `/host/path:/path[:ro]`.
            #[serde(default)]
            pub volumes: Option<Vec<String>>,
            /// The command, as a list of arguments.
            #[serde(default)]
            pub command: Option<Vec<String>>,
            /// `no`, `always`, `unless-stopped` or `on-failure[:N]`.
            #[serde(default)]
            pub restart: Option<String>,
            #[serde(default)]
            pub labels: Option<BTreeMap<String, String>>,
            /// Any other service field of the App manifest (see `tomo schema`), e.g. `{"healthcheck": {...}}`; null removes a field.
            #[serde(default)]
            pub extra: Option<Map<String, Value>>,
        }

        impl $name {
            /// The service fields as the engine takes them (`null` in `extra` removes a field).
            fn service_fields(&mut self) -> ServiceEdit {
                ServiceEdit {
                    image: self.image.take(),
                    ports: self.ports.take(),
                    env: self.env.take(),
                    volumes: self.volumes.take(),
                    command: self.command.take(),
                    restart: self.restart.take(),
                    labels: self.labels.take(),
                    extra: self
                        .extra
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, Some(v).filter(|v| !v.is_null())))
                        .collect(),
                }
            }
        }
    };
}

with_service_fields! {
    #[derive(Debug, Deserialize, JsonSchema)]
    pub struct DeployArgs {
        /// The app's name: lowercase letters, digits and '-'.
        pub name: String,
        /// The servers it runs on (default: `local`).
        #[serde(default)]
        pub servers: Vec<String>,
        /// For an app of several containers: each service's fields by service name
        /// (as in the App manifest's `services`). Leave the top-level service fields empty then.
        #[serde(default)]
        pub services: Option<Map<String, Value>>,
    }
}

with_service_fields! {
    #[derive(Debug, Deserialize, JsonSchema)]
    pub struct UpdateArgs {
        /// The app's name.
        pub name: String,
        /// Which service to change, for an app of several services.
        #[serde(default)]
        pub service: Option<String>,
        /// Move the app to these servers.
        #[serde(default)]
        pub servers: Option<Vec<String>>,
        /// Remove these environment variables.
        #[serde(default)]
        pub unset_env: Vec<String>,
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppListArgs {
    /// Only apps on this server.
    #[serde(default)]
    pub server: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppSummary {
    pub name: String,
    pub servers: Vec<String>,
    /// running | stopped | absent
    pub state: String,
    /// Service name → image.
    pub services: BTreeMap<String, String>,
    /// The manifest file, relative to the manifest folder.
    pub file: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppListOut {
    pub apps: Vec<AppSummary>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppGetOut {
    pub name: String,
    pub file: String,
    pub line: u64,
    /// The App manifest document as JSON (secrets appear as `{"secret": NAME}`).
    pub manifest: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartArgs {
    pub name: String,
    /// Only this service's containers.
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RestartOut {
    pub restarted: Vec<String>,
    /// `server: error` for each failure.
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppStatusOut {
    pub containers: Vec<AppContainer>,
    /// `server: error` for servers that could not be reached.
    pub errors: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    pub name: String,
    #[serde(default)]
    pub service: Option<String>,
    /// Lines from the end, per container (default 100, at most 5000).
    #[serde(default)]
    pub tail: Option<u32>,
    /// Only lines newer than this, e.g. `10m`, `2h`.
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogsOut {
    pub logs: Vec<ContainerLogs>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatsOut {
    pub stats: Vec<Stats>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryOut {
    pub actions: Vec<AppAction>,
    /// Recorded manifest revisions, newest first.
    pub revisions: Vec<AppRevision>,
    /// Releases, newest first: who applied, the outcome, what changed and the image digest each service ran (`app_rollback` with `to` goes back to one).
    pub releases: Vec<Release>,
}

/// Arguments of `app_rollback`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackArg {
    /// The app's name.
    pub name: String,
    /// The release number to go back to (`app_history`); by default the newest successful one before the last.
    #[serde(default)]
    pub to: Option<i64>,
}

fn split<T>(per: Vec<PerServer<T>>) -> (Vec<T>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for p in per {
        match (p.result, p.error) {
            (Some(v), _) => ok.push(v),
            (None, e) => errors.push(format!("{}: {}", p.server, e.unwrap_or_default())),
        }
    }
    (ok, errors)
}

impl Tomo {
    async fn change_state(&self, who: &Identity, name: String, state: AppState) -> Result<Json<ChangeOut>, ToolError> {
        Ok(Json(self.engine().edit_app(AppEdit::state(name, state), who).await?.into()))
    }
}

#[tool_router(router = app_tools, vis = "pub(super)")]
impl Tomo {
    /// Lists the declared apps: servers, state, services and images, and the manifest file of each.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_list(&self, Parameters(a): Parameters<AppListArgs>) -> Result<Json<AppListOut>, ToolError> {
        let desired = self.engine().desired()?;
        if let Some(s) = &a.server
            && !desired.servers.contains_key(s.as_str())
        {
            let known: Vec<&str> = desired.servers.keys().map(Name::as_str).collect();
            return Err(bad_arg("server", format!("there is no server `{s}`; servers: {}", known.join(", "))));
        }
        let apps = desired
            .apps
            .values()
            .filter(|app| a.server.as_ref().is_none_or(|s| app.servers.iter().any(|x| x.as_str() == s)))
            .map(|app| AppSummary {
                name: app.name.to_string(),
                servers: app.servers.iter().map(ToString::to_string).collect(),
                state: serde_json::to_value(app.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                services: app.services.values().map(|s| (s.name.to_string(), s.image.to_string())).collect(),
                file: app.origin.file.clone(),
            })
            .collect();
        Ok(Json(AppListOut { apps }))
    }

    /// The App manifest of one app, as JSON, with its file and line.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_get(&self, Parameters(a): Parameters<AppArg>) -> Result<Json<AppGetOut>, ToolError> {
        let desired = self.engine().desired()?;
        self.engine().app(&desired, &a.name)?;
        let (file, line, manifest) = self
            .engine()
            .document(DocKind::App, &a.name)?
            .ok_or_else(|| ToolError(format!("the manifest of `{}` could not be read", a.name)))?;
        Ok(Json(AppGetOut { name: a.name, file, line: line as u64, manifest }))
    }

    /// Creates or replaces an App manifest (a new app goes to `apps/<name>.yaml`) and returns the diff and plan, or a proposal. Nothing runs until the plan is applied.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_deploy(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(mut a): Parameters<DeployArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        let fields = a.service_fields();
        let req = DeployApp::new(a.name, a.servers, fields, a.services)?;
        Ok(Json(self.engine().deploy_app(req, &who).await?.into()))
    }

    /// Changes fields of an existing app (image, env, ports, volumes, command, restart, labels, servers) and returns the diff and plan, or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_update(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(mut a): Parameters<UpdateArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        let fields = a.service_fields();
        let UpdateArgs { name, service, servers, unset_env, .. } = a;
        let req = AppEdit { name, service, servers, state: None, fields, unset_env };
        Ok(Json(self.engine().edit_app(req, &who).await?.into()))
    }

    /// Declares the app absent (`state: absent`): its containers are removed when the plan is applied; its data volumes are kept.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_remove(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<AppArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        self.change_state(&who, a.name, AppState::Absent).await
    }

    /// Declares the app running (`state: running`); returns the plan, or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_start(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<AppArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        self.change_state(&who, a.name, AppState::Running).await
    }

    /// Declares the app stopped (`state: stopped`): containers are kept but not running; returns the plan, or a proposal.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_stop(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<AppArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        self.change_state(&who, a.name, AppState::Stopped).await
    }

    /// Restarts the app's containers now (direct; the manifests do not change).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn app_restart(&self, Parameters(a): Parameters<RestartArgs>) -> Result<Json<RestartOut>, ToolError> {
        let (restarted, errors) = split(self.engine().restart_app(&a.name, a.service.as_deref()).await?);
        if restarted.is_empty() && errors.is_empty() {
            return Err(ToolError(format!(
                "app `{}` has no containers to restart; is it deployed (see `status`)?",
                a.name
            )));
        }
        Ok(Json(RestartOut { restarted, errors }))
    }

    /// The app's containers as they are now: state, health, image.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn app_status(&self, Parameters(a): Parameters<AppArg>) -> Result<Json<AppStatusOut>, ToolError> {
        let (found, errors) = split(self.engine().app_containers(&a.name).await?);
        Ok(Json(AppStatusOut { containers: found.into_iter().flatten().collect(), errors }))
    }

    /// The newest log lines of the app's containers (at most 64 KiB each). Secret values (the app's and the vault's, 4 bytes or longer) are masked as written and in base64, hex and percent-encoding; a container can still reveal a secret transformed otherwise (reversed, spaced out, split), so masking is a safety net, not a boundary.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn app_logs(&self, Parameters(a): Parameters<LogsArgs>) -> Result<Json<LogsOut>, ToolError> {
        let tail = a.tail.unwrap_or(100);
        if tail == 0 || tail > 5000 {
            return Err(bad_arg("tail", format!("{tail} is out of range; give 1 to 5000 lines")));
        }
        let since = match &a.since {
            Some(s) => {
                let d = Duration::parse(s).map_err(|e| bad_arg("since", e))?;
                crate::auth::now_unix() - d.to_std().as_secs() as i64
            }
            None => 0,
        };
        let (logs, errors) = split(self.engine().app_logs(&a.name, a.service.as_deref(), tail, since).await?);
        Ok(Json(LogsOut { logs, errors }))
    }

    /// CPU, memory and network of the app's running containers (one sample, about a second).
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn app_stats(&self, Parameters(a): Parameters<AppArg>) -> Result<Json<StatsOut>, ToolError> {
        let (stats, errors) = split(self.engine().app_stats(&a.name).await?);
        Ok(Json(StatsOut { stats, errors }))
    }

    /// The app's applies (who, when, which actions, results) and its recorded manifest revisions.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn app_history(&self, Parameters(a): Parameters<AppArg>) -> Result<Json<HistoryOut>, ToolError> {
        let desired = self.engine().desired()?;
        self.engine().app(&desired, &a.name)?;
        let actions = self.engine().app_actions(&a.name, 200)?;
        let revisions = self.engine().app_revisions(&a.name, 20)?;
        let releases = self.engine().releases(&a.name, 50)?;
        Ok(Json(HistoryOut { actions, revisions, releases }))
    }

    /// Proposes a release of the app back (always a proposal an admin approves): release `to` (see `app_history`), else the newest successful one before the last, its images pinned by the digests that ran.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn app_rollback(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<RollbackArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        Ok(Json(self.engine().rollback_app(&a.name, a.to, &who).await?.into()))
    }
}
