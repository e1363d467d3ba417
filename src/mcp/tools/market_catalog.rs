//! Marketplace catalog tools: search, one app's detail, categories (read).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::{AppShown, CatalogRow, CategoryRow, SearchRequest};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketSearchArgs {
    /// Words to find in titles, taglines and descriptions (the last one may be a word's start); none lists every app.
    #[serde(default)]
    pub query: Option<String>,
    /// Only apps of this category (`market_categories` lists them).
    #[serde(default)]
    pub category: Option<String>,
    /// Only apps of this store.
    #[serde(default)]
    pub store: Option<String>,
    /// At most this many apps (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MarketSearchOut {
    /// Best first.
    pub apps: Vec<CatalogRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketAppArgs {
    /// The store's name.
    pub store: String,
    /// The app's id in its store (as `market_search` gives it).
    pub app: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketCategoriesArgs {
    /// Only this store's categories.
    #[serde(default)]
    pub store: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MarketCategoriesOut {
    pub categories: Vec<CategoryRow>,
}

#[tool_router(router = market_catalog_tools, vis = "pub(super)")]
impl Tomo {
    /// Searches the synced app stores (ranked by title, then tagline, then description), optionally by category and store.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_search(
        &self,
        Parameters(a): Parameters<MarketSearchArgs>,
    ) -> Result<Json<MarketSearchOut>, ToolError> {
        let req = SearchRequest { query: a.query, category: a.category, store: a.store, limit: a.limit };
        Ok(Json(MarketSearchOut { apps: self.engine().market_search(&req)? }))
    }

    /// One store app: its catalog entry, and its services with images, ports, volumes and environment (with the store's descriptions) and install tips.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_app_get(&self, Parameters(a): Parameters<MarketAppArgs>) -> Result<Json<AppShown>, ToolError> {
        Ok(Json(self.engine().market_show(&a.store, &a.app)?))
    }

    /// The categories of the synced stores' apps, with how many apps each has.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn market_categories(
        &self,
        Parameters(a): Parameters<MarketCategoriesArgs>,
    ) -> Result<Json<MarketCategoriesOut>, ToolError> {
        Ok(Json(MarketCategoriesOut { categories: self.engine().market_categories(a.store.as_deref())? }))
    }
}
