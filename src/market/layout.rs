//! Where a store lives in the data folder.

use std::path::{Path, PathBuf};

/// The folder holding synced stores.
pub fn stores_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("market")
}

/// The checkout of store `name` (a git store is fetched here; a `path:` store
/// is read in place and has no checkout).
pub fn checkout(data_dir: &Path, name: &str) -> PathBuf {
    stores_dir(data_dir).join(name)
}
