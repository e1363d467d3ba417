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
    /// Apps installed from stores.
    pub apps: Vec<InstalledItem>,
}

/// An app installed from a store (its `x-tomo-source`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct InstalledItem {
    pub name: String,
    pub servers: Vec<String>,
    pub store: String,
    /// The app's id in its store.
    pub app: String,
    pub version: String,
    pub checksum: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatesOut {
    /// Installed apps whose store version changed.
    pub updates: Vec<UpdateItem>,
}

/// What upgrading an installed app would change.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateItem {
    pub name: String,
    pub store: String,
    pub app: String,
    pub installed_version: String,
    pub available_version: String,
    pub installed_checksum: String,
    pub available_checksum: String,
    /// The manifest diff an upgrade writes (the user's edits kept).
    pub diff: String,
    /// Values both the store and the user changed; the user's stays.
    pub conflicts: Vec<ConflictItem>,
}

/// A value both the store and the user changed, each as JSON text (`null`: absent).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConflictItem {
    /// Dotted path, e.g. `services.web.image`.
    pub path: String,
    /// The store's old value.
    pub base: String,
    /// The user's.
    pub ours: String,
    /// The store's new one.
    pub theirs: String,
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
        let apps = apps
            .into_iter()
            .map(|a| InstalledItem {
                name: a.name,
                servers: a.servers,
                store: a.source.store,
                app: a.source.app,
                version: a.source.version,
                checksum: a.source.checksum,
            })
            .collect();
        Ok(Json(InstalledOut { apps }))
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
        let updates = ups
            .into_iter()
            .map(|u| UpdateItem {
                name: u.name,
                store: u.store,
                app: u.app,
                installed_version: u.installed_version,
                available_version: u.available_version,
                installed_checksum: u.installed_checksum,
                available_checksum: u.available_checksum,
                diff: u.diff,
                conflicts: u
                    .conflicts
                    .into_iter()
                    .map(|c| ConflictItem {
                        path: c.path,
                        base: c.base.to_string(),
                        ours: c.ours.to_string(),
                        theirs: c.theirs.to_string(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Json(UpdatesOut { updates }))
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
