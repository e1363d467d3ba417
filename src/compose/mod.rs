//! Compose files as tomo reads them for `tomo import compose`: the Compose
//! Specification's interpolation (`interpolate.rs`), the conversion of a
//! compose file to one App manifest (`convert.rs`, `service.rs`) with a
//! report of what became of every key (`report.rs`), and the YAML it is
//! written as (`emit.rs`).
//!
//! Pure: the caller reads the files and gives the variables (command line,
//! process environment, `.env`, in that order) as a lookup. Every problem is
//! a `Diagnostic` naming the compose file and line.

mod convert;
mod deploy;
pub mod emit;
mod files;
pub mod interpolate;
mod network;
pub mod report;
mod service;
mod values;

use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::{Diagnostics, SourceFile};
use crate::manifest::raw::RawDocument;
pub use report::{Counts, Entry, Status};

/// CasaOS store files use these without defining them; `AppID` defaults to
/// the app's name (see `convert.rs`).
pub const CASAOS_APP_ID: &str = "AppID";

/// How to convert.
pub struct Options<'a> {
    /// The app's name (default: the file's `name`, else its folder's name).
    pub name: Option<String>,
    pub server: Option<String>,
    /// A variable's value, `None` when unset.
    pub vars: &'a dyn Fn(&str) -> Option<String>,
    /// Profiles whose services run; services of other profiles are kept
    /// with `state: absent`.
    pub profiles: Vec<String>,
    /// Credential-looking environment values become vault references.
    pub secrets: bool,
    /// The compose file's folder, absolute: relative bind sources are made
    /// absolute against it, and config files must lie inside it.
    pub folder: Option<PathBuf>,
}

/// A converted compose file.
#[derive(Debug)]
pub struct Imported {
    pub document: RawDocument,
    pub report: Vec<Entry>,
    /// Values for the vault, by secret name (with `Options::secrets`).
    pub secrets: Vec<(String, crate::model::secret::SecretString)>,
    /// The app's name.
    pub name: String,
}

impl Imported {
    /// The manifest as YAML: a `$schema` line, a comment naming `source`, the document.
    pub fn yaml(&self, source: &str) -> String {
        let doc = serde_json::to_value(&self.document).unwrap_or_default();
        format!(
            "# yaml-language-server: $schema=../../schemas/app.json\n# Imported from {} by `tomo import compose`.\n{}",
            source.replace(['\n', '\r'], " "),
            emit::to_yaml(&doc)
        )
    }

    pub fn counts(&self) -> Counts {
        report::counts(&self.report)
    }
}

/// Converts the compose file `file` to an App manifest.
pub fn import(file: &Arc<SourceFile>, options: &Options<'_>) -> Result<Imported, Diagnostics> {
    convert::run(file, options)
}
