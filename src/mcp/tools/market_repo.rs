//! Store tools: the declared app stores (`market_repo_list`), adding and
//! removing one (`market_repo_add`, `market_repo_remove`: Marketplace
//! manifests edited through `engine::MarketplaceEdit`, so an agent's change
//! is a proposal where the rules say so), and syncing them (`market_sync`).

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ChangeOut, bad_arg};
use crate::auth::Identity;
use crate::engine::{MarketplaceEdit, MarketplaceFields, StoreRow, SyncReport};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::model::MarketplaceFormat;

#[derive(Debug, Serialize, JsonSchema)]
pub struct StoreListOut {
    pub stores: Vec<StoreRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreAddArgs {
    /// The store's name: lowercase letters, digits and '-'.
    pub name: String,
    /// Git URL of the repository (https://, ssh://, git@host:path). Never put
    /// credentials in it: store them in the vault and name the secret in `auth_secret`.
    #[serde(default)]
    pub url: Option<String>,
    /// A local folder of app definitions (instead of `url`).
    #[serde(default)]
    pub path: Option<String>,
    /// Branch, tag or commit (default `main`).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// `casaos` (default), `compose`, `tomo` or `auto`.
    #[serde(default)]
    pub format: Option<MarketplaceFormat>,
    /// How often daemons refresh it, e.g. `6h` (default).
    #[serde(default)]
    pub sync: Option<String>,
    /// A vault secret's name: a token (https) or an SSH private key (ssh).
    #[serde(default)]
    pub auth_secret: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreNameArg {
    /// The store's name.
    pub name: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncArgs {
    /// Only this store (all declared stores when absent).
    #[serde(default)]
    pub name: Option<String>,
}

#[tool_router(router = market_repo_tools, vis = "pub(super)")]
impl Tomo {
    /// Lists the declared app stores with their catalog: apps, invalid apps, last sync, last commit and the last sync's error.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_repo_list(&self) -> Result<Json<StoreListOut>, ToolError> {
        Ok(Json(StoreListOut { stores: self.engine().market_list()? }))
    }

    /// Declares an app store (a Marketplace manifest in `marketplaces/<name>.yaml`): a git `url` or a local `path`; returns the diff, or a proposal. Then `market_sync` fetches it.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn market_repo_add(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<StoreAddArgs>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        if a.url.is_some() == a.path.is_some() {
            return Err(bad_arg("url", "give either `url` (a git repository) or `path` (a local folder)"));
        }
        let fields = MarketplaceFields {
            url: a.url,
            path: a.path,
            git_ref: a.git_ref,
            format: a.format,
            sync: a.sync,
            auth_secret: a.auth_secret,
        };
        Ok(Json(self.engine().edit_marketplace(MarketplaceEdit::Add { name: a.name, fields }, &who).await?.into()))
    }

    /// Removes an app store's manifest; its catalog is forgotten by the next full sync. Installed apps are not touched.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_repo_remove(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<StoreNameArg>,
    ) -> Result<Json<ChangeOut>, ToolError> {
        Ok(Json(self.engine().edit_marketplace(MarketplaceEdit::Remove { name: a.name }, &who).await?.into()))
    }

    /// Fetches the declared stores (or one) and indexes them into the catalog. A store that fails keeps its previous catalog; its error is in the result.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn market_sync(&self, Parameters(a): Parameters<SyncArgs>) -> Result<Json<SyncReport>, ToolError> {
        Ok(Json(self.engine().market_sync(a.name.as_deref()).await?))
    }
}
