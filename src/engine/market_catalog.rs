//! The marketplace catalog as front ends see it: search, one app's detail
//! (its catalog entry, and its services, ports, volumes and environment
//! read from the store's folder), and the categories.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Engine;
use crate::error::{Known, NotFound, Noun, Result, Usage};
use crate::market::detail::{self, AppDetail};
use crate::market::{InvalidApp, files, layout};
use crate::store::SearchQuery;
pub use crate::store::{CatalogRow, CategoryRow};

/// How many apps a search returns unless told.
pub const DEFAULT_LIMIT: usize = 50;

/// A catalog search; every field is optional.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SearchRequest {
    /// Words to find in the title, tagline and description (the last one a prefix).
    pub query: Option<String>,
    /// Only apps of this category (case ignored).
    pub category: Option<String>,
    /// Only apps of this store.
    pub store: Option<String>,
    /// At most this many apps (default 50).
    pub limit: Option<usize>,
}

/// One app with what `market show` tells about it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppShown {
    #[serde(flatten)]
    pub app: CatalogRow,
    /// Services, ports, volumes and environment, read from the store's
    /// folder (`None` when it is not there).
    pub detail: Option<AppDetail>,
}

impl Engine {
    /// Apps of the catalog matching `req`, best first.
    pub fn market_search(&self, req: &SearchRequest) -> Result<Vec<CatalogRow>> {
        let store = self.store()?;
        if let Some(name) = req.store.as_deref().filter(|s| !s.is_empty()) {
            self.known_store(name)?;
        }
        let q = SearchQuery {
            text: req.query.clone(),
            category: req.category.clone(),
            store: req.store.clone(),
            limit: Some(req.limit.unwrap_or(DEFAULT_LIMIT)),
        };
        Ok(store.market_search(&q)?)
    }

    /// App `store/app`: its catalog entry and its detail.
    pub fn market_show(&self, store_name: &str, app: &str) -> Result<AppShown> {
        self.known_store(store_name)?;
        let store = self.store()?;
        let Some(row) = store.market_app(store_name, app)? else {
            let ids = store.market_app_ids(Some(store_name))?;
            let mut nf = NotFound::among(Noun::MarketApp, app, "its apps", ids.iter().map(String::as_str));
            nf.within = Some(format!("store `{store_name}`"));
            return Err(nf.into());
        };
        let detail = self.market_folder(store_name).and_then(|root| {
            let root = std::fs::canonicalize(root).ok()?;
            let text = files::read_text(&root, &root.join(&row.entry.source)).ok()?;
            detail::read(&text)
        });
        Ok(AppShown { app: row, detail })
    }

    /// The categories of the catalog, with their app counts.
    pub fn market_categories(&self, store: Option<&str>) -> Result<Vec<CategoryRow>> {
        if let Some(name) = store {
            self.known_store(name)?;
        }
        Ok(self.store()?.market_categories(store)?)
    }

    /// The apps stores list as invalid, with their `file:line` reasons.
    pub fn market_invalid(&self, store: Option<&str>) -> Result<Vec<(String, InvalidApp)>> {
        Ok(self.store()?.market_invalid(store)?)
    }

    /// Fails with the names of the stores when `name` is none of them.
    fn known_store(&self, name: &str) -> Result<()> {
        let repos = self.store()?.market_repos()?;
        if repos.iter().any(|r| r.name == name) {
            return Ok(());
        }
        let mut names: Vec<String> = repos.into_iter().map(|r| r.name).collect();
        if let Ok(desired) = self.desired() {
            names.extend(desired.marketplaces.keys().map(|n| n.to_string()));
        }
        names.sort();
        names.dedup();
        if names.iter().any(|n| n == name) {
            // Declared, never synced: nothing in the catalog yet.
            return Err(NotFound::new(
                Noun::MarketStore,
                name,
                Known::Hint("it has not been synced yet (`tomo market sync`)"),
            )
            .into());
        }
        Err(NotFound::among(Noun::MarketStore, name, "stores", names.iter().map(String::as_str)).into())
    }

    /// The folder store `name` is read from: its `path:` when the manifest
    /// gives a local folder, else its checkout in the data folder.
    fn market_folder(&self, name: &str) -> Option<PathBuf> {
        let desired = self.desired().ok();
        match desired.as_ref().and_then(|d| d.marketplaces.iter().find(|(n, _)| n.as_str() == name)) {
            Some((_, m)) => Some(self.market_root(m)).filter(|p| p.is_dir()),
            None => Some(layout::checkout(&self.config().data_dir, name)).filter(|p| p.is_dir()),
        }
    }
}

/// `STORE/APP` split, or a usage error.
pub fn split_app(arg: &str) -> Result<(&str, &str)> {
    match arg.split_once('/') {
        Some((s, a)) if !s.is_empty() && !a.is_empty() && !a.contains('/') => Ok((s, a)),
        _ => Err(Usage::invalid("app", arg, "write it STORE/APP (`tomo market search` lists them)").into()),
    }
}
