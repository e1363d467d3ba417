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

pub mod casaos;
pub mod compose;
pub mod detail;
pub mod files;
mod folder;
pub mod layout;
mod template;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoOp, Result};
use crate::model::MarketplaceFormat;

/// One app of a store, as the catalog keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvalidApp {
    pub id: String,
    pub source: String,
    pub reason: String,
}

/// A category a store declares (`category-list.json`).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Category {
    pub name: String,
    pub description: String,
}

/// A whole store, read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Scan {
    pub apps: Vec<AppEntry>,
    pub invalid: Vec<InvalidApp>,
    pub categories: Vec<Category>,
    /// App ids the store features (`featured-apps.json`, `recommend-list.json`).
    pub featured: Vec<String>,
}

/// Reads the store rooted at `root` in `format` (`Auto`: as [`detect`] finds).
/// Apps come sorted by id.
pub fn scan(root: &Path, format: MarketplaceFormat) -> Result<Scan> {
    let real = std::fs::canonicalize(root).map_err(|source| Error::Io {
        op: IoOp::Read,
        path: root.display().to_string(),
        source,
    })?;
    let format = match format {
        MarketplaceFormat::Auto => detect(&real),
        f => f,
    };
    let scanned = match format {
        MarketplaceFormat::Casaos | MarketplaceFormat::Auto => casaos::scan(&real),
        MarketplaceFormat::Compose => folder::scan(&real),
        MarketplaceFormat::Tomo => template::scan(&real),
    };
    let mut scan = scanned.map_err(|why| Error::Io {
        op: IoOp::Read,
        path: root.display().to_string(),
        source: std::io::Error::other(why),
    })?;
    scan.apps.sort_by(|a, b| a.id.cmp(&b.id));
    scan.invalid.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(scan)
}

/// The format of the store at `root`: CasaOS when it has an `Apps/`
/// folder, tomo templates when its apps are `app.yaml` App manifests, else
/// compose folders.
pub fn detect(root: &Path) -> MarketplaceFormat {
    if root.join("Apps").is_dir() {
        return MarketplaceFormat::Casaos;
    }
    if template::looks_like(root) {
        return MarketplaceFormat::Tomo;
    }
    MarketplaceFormat::Compose
}

/// An app folder's name, and its path or why it may not be read.
pub(crate) type AppFolder = (String, std::result::Result<PathBuf, String>);

/// The app folders under `dir` (inside `root`, canonical), by name: hidden
/// entries and plain files are skipped; a symbolic link that leads outside
/// `root` is an error for that app.
pub(crate) fn app_folders(root: &Path, dir: &Path) -> std::result::Result<Vec<AppFolder>, String> {
    let real = files::inside(root, dir).map_err(|why| format!("`{}` {why}", dir.display()))?;
    let rd = std::fs::read_dir(&real).map_err(|e| format!("`{}` cannot be read: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            match files::inside(root, &path) {
                Ok(p) if p.is_dir() => out.push((name, Ok(path))),
                Ok(_) => {}
                Err(why) => out.push((name, Err(format!("is a symbolic link that {why}")))),
            }
        } else if meta.is_dir() {
            out.push((name, Ok(path)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
