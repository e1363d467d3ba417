//! Marketplace install tools: an agent's install or upgrade is always a
//! proposal (its diff and plan) for a human to approve; `installed` and
//! `updates` read.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AppArg, ChangeOut, bad_arg};
use crate::auth::Identity;
use crate::engine::{InstallRequest, TracingSink};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallArgs {
    /// `STORE/APP`, e.g. `casaos/Jellyfin`.
    pub app: String,
    /// The app's name (default: the store app's).
    #[serde(default)]
    pub name: Option<String>,
    /// The server (default: the only declared server, else `local`).
    #[serde(default)]
    pub server: Option<String>,
    /// Variables, before `Settings.marketplace.defaults`; a numeric key is a
    /// host port to publish as the value instead (`{"8080": "8081"}`).
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InstallOut {
    pub name: String,
    /// The manifest file it writes.
    pub path: String,
    pub store: String,
    pub store_app: String,
    pub version: String,
    /// A `set` the app does not use, keys dropped in the conversion.
    pub warnings: Vec<String>,
    /// Secrets generated into the vault (names only).
    pub secrets: Vec<String>,
    pub change: ChangeOut,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InstalledOut {
    /// Apps installed from stores, with `store`, `app`, `version`, `checksum`.
    pub apps: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatesOut {
    /// Each with the manifest `diff` an upgrade writes and its `conflicts`
    /// (values both the store and the user changed; the user's stays).
    pub updates: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpgradeOut {
    pub conflicts: usize,
    pub change: ChangeOut,
}

const AGENT: &str = "an agent's marketplace change";

#[tool_router(router = market_install_tools, vis = "pub(super)")]
impl Tomo {
    /// Installs a store app as an App manifest: always a proposal with its diff and plan; `tomo proposal approve` writes and deploys it.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn market_install(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<InstallArgs>,
    ) -> Result<Json<InstallOut>, ToolError> {
        let (store, app) = a
            .app
            .split_once('/')
            .filter(|(s, p)| !s.is_empty() && !p.is_empty())
            .ok_or_else(|| bad_arg("app", "write `STORE/APP`"))?;
        let req = InstallRequest {
            store: store.into(),
            app: app.into(),
            name: a.name,
            server: a.server,
            set: a.set.into_iter().collect(),
            yes: false,
        };
        let done = self.engine().market_install_as(&req, &who, Some(AGENT.into()), &TracingSink).await?;
        Ok(Json(InstallOut {
            name: done.name,
            path: done.path,
            store: done.source.store,
            store_app: done.source.app,
            version: done.source.version,
            warnings: done.warnings,
            secrets: done.secrets,
            change: done.submitted.into(),
        }))
    }

    /// Lists the apps installed from stores, with their store, store app, version and checksum.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_installed(&self) -> Result<Json<InstalledOut>, ToolError> {
        let apps = self.engine().market_installed()?;
        Ok(Json(InstalledOut { apps: apps.iter().filter_map(|a| serde_json::to_value(a).ok()).collect() }))
    }

    /// Installed apps whose store version changed, each with the manifest diff an upgrade would write (the user's edits kept) and its conflicts.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_updates(&self) -> Result<Json<UpdatesOut>, ToolError> {
        let ups = self.engine().market_updates()?;
        Ok(Json(UpdatesOut { updates: ups.iter().filter_map(|u| serde_json::to_value(u).ok()).collect() }))
    }

    /// Proposes the upgrade of an installed app to its store's version (the user's edits kept); refused while it has conflicts.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn market_upgrade(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<AppArg>,
    ) -> Result<Json<UpgradeOut>, ToolError> {
        let (u, s) = self.engine().market_upgrade(&a.name, &who, Some(AGENT.into())).await?;
        Ok(Json(UpgradeOut { conflicts: u.conflicts.len(), change: s.into() }))
    }
}
