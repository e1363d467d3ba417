//! The marketplace catalog: stores (`marketplace_repos`) and their apps
//! (`marketplace_apps`, searched with FTS5). A sync replaces one store's
//! catalog in one transaction, so a failed sync leaves the previous one.

use serde::Serialize;

use super::{Store, StoreError};
use crate::market::{AppEntry, InvalidApp, Scan};

/// A store as the catalog knows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RepoRow {
    pub name: String,
    /// The URL with any credentials removed.
    pub url: String,
    pub git_ref: String,
    pub format: String,
    pub last_sync_at: Option<String>,
    pub last_commit: Option<String>,
    /// Why the last sync failed (the catalog is the one before it).
    pub last_error: Option<String>,
    pub apps: i64,
    pub invalid: i64,
}

/// An app in the catalog.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogRow {
    pub store: String,
    #[serde(flatten)]
    pub entry: AppEntry,
}

/// What to search for; `None` is no filter.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Full-text query (FTS5, ranked title > tagline > description).
    pub text: Option<String>,
    pub category: Option<String>,
    pub store: Option<String>,
    pub limit: Option<usize>,
}

impl Store {
    /// Replaces store `store`'s catalog with `scan`, recording the sync
    /// (time, commit, no error), in one transaction.
    pub fn market_replace(&self, store: &RepoRow, scan: &Scan) -> Result<(), StoreError> {
        let _ = (store, scan);
        Ok(())
    }

    /// Records that syncing `store` failed; its catalog stays as it was.
    pub fn market_sync_failed(&self, store: &str, error: &str) -> Result<(), StoreError> {
        let _ = (store, error);
        Ok(())
    }

    /// Every store in the catalog, by name.
    pub fn market_repos(&self) -> Result<Vec<RepoRow>, StoreError> {
        Ok(Vec::new())
    }

    /// Drops a store and its apps from the catalog.
    pub fn market_forget(&self, store: &str) -> Result<(), StoreError> {
        let _ = store;
        Ok(())
    }

    /// Apps matching `q`, best first.
    pub fn market_search(&self, q: &SearchQuery) -> Result<Vec<CatalogRow>, StoreError> {
        let _ = q;
        Ok(Vec::new())
    }

    /// One app, `STORE/ID`.
    pub fn market_app(&self, store: &str, id: &str) -> Result<Option<CatalogRow>, StoreError> {
        let _ = (store, id);
        Ok(None)
    }

    /// The apps a store lists as invalid, with their reasons.
    pub fn market_invalid(&self, store: Option<&str>) -> Result<Vec<(String, InvalidApp)>, StoreError> {
        let _ = store;
        Ok(Vec::new())
    }
}
