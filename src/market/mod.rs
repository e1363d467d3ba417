//! App stores (`kind: Marketplace`): a store's folder, as synced into the
//! data folder, read into catalog entries. Pure but for reading the store's
//! files; fetching is `transport`'s, the catalog is `store`'s, and the engine
//! (`engine/market*.rs`) joins them.
//!
//! **Invariants:**
//! - One broken app never hides the others: it becomes an [`InvalidApp`]
//!   with its `file:line` reason; only a store that cannot be read at all is
//!   an error.
//! - Nothing outside the store's root is read (a symlink that escapes it
//!   makes that app invalid).

pub mod install;
pub mod layout;
pub mod merge;

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::model::MarketplaceFormat;

/// One app of a store, as the catalog keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppEntry {
    /// The app's key within its store (its folder name): `STORE/ID`.
    pub id: String,
    pub title: String,
    pub tagline: String,
    pub description: String,
    pub category: String,
    pub author: String,
    pub developer: String,
    pub icon: String,
    pub screenshots: Vec<String>,
    /// The image tag of the main service.
    pub version: String,
    pub architectures: Vec<String>,
    /// Host ports the app publishes.
    pub ports: Vec<u16>,
    /// The main service (CasaOS `main`, else the first).
    pub main: Option<String>,
    /// The app's definition file, relative to the store's root, `/`-separated.
    pub source: String,
    /// SHA-256 (hex) of the app folder's files, names and contents.
    pub checksum: String,
    /// What was read leniently (e.g. a locale that is not a mapping).
    pub notes: Vec<String>,
}

/// An app that could not be read, and why (`file:line: message`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidApp {
    pub id: String,
    pub source: String,
    pub reason: String,
}

/// A category a store declares (`category-list.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub name: String,
    pub description: String,
}

/// A whole store, read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scan {
    pub apps: Vec<AppEntry>,
    pub invalid: Vec<InvalidApp>,
    pub categories: Vec<Category>,
    /// App ids the store features (`featured-apps.json`, `recommend-list.json`).
    pub featured: Vec<String>,
}

/// Reads the store rooted at `root` in `format`.
pub fn scan(root: &Path, format: MarketplaceFormat) -> Result<Scan> {
    let _ = (root, format);
    Ok(Scan::default())
}
