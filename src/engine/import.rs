//! `tomo import compose`: read a compose file and its variables, convert it
//! (`compose`), and put credentials in the vault when asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Engine;
use crate::compose::{self, Counts, Entry};
use crate::diag::SourceFile;
use crate::error::{Error, Result};
use crate::model::Name;

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// The compose file.
    pub path: PathBuf,
    /// The app's name (default: the file's `name`, else its folder's).
    pub name: Option<String>,
    pub server: Option<String>,
    /// `--set KEY=VALUE`, first in the variable lookup.
    pub set: Vec<(String, String)>,
    /// `--env-file`s, after `set` (an earlier file wins).
    pub env_files: Vec<PathBuf>,
    /// Read the process environment after those (before `.env`).
    pub process_env: bool,
    /// Profiles whose services run.
    pub profiles: Vec<String>,
    /// Move credential-looking environment values to the vault.
    pub secrets_vault: bool,
    /// Convert even when keys are dropped.
    pub lossy: bool,
    /// Write the manifest here (its folder is created), before any secret is stored.
    pub out: Option<PathBuf>,
}

/// A conversion.
#[derive(Debug)]
pub struct ImportResult {
    pub name: String,
    /// The manifest as YAML (a `$schema` line and a comment naming the source first).
    pub yaml: String,
    /// The same manifest as JSON.
    pub manifest: serde_json::Value,
    pub report: Vec<Entry>,
    pub counts: Counts,
    /// Keys would be dropped and `lossy` was not given: nothing is to be
    /// written, and no secret was stored.
    pub refused: bool,
    /// Secrets put in the vault.
    pub stored: Vec<String>,
}

impl ImportResult {
    /// The report as aligned text, one key a line, with the counts last.
    pub fn report_text(&self) -> String {
        compose::report::text(&self.report)
    }
}

impl Engine {
    /// Converts a compose file to an App manifest (nothing is written but
    /// vault secrets, with `secrets_vault`, when the conversion is not refused).
    pub fn import_compose(&self, req: &ImportRequest) -> Result<ImportResult> {
        let text = std::fs::read_to_string(&req.path).map_err(|e| Error::read(req.path.display(), e))?;
        let folder = std::path::absolute(&req.path).ok().and_then(|p| p.parent().map(Path::to_path_buf));
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let mut layer = |pairs: Vec<(String, String)>| {
            for (k, v) in pairs {
                vars.entry(k).or_insert(v);
            }
        };
        layer(req.set.clone());
        for f in &req.env_files {
            layer(read_env_file(f, true)?);
        }
        if req.process_env {
            layer(std::env::vars().collect());
        }
        if let Some(dir) = &folder {
            layer(read_env_file(&dir.join(".env"), false)?);
        }
        let lookup = |n: &str| vars.get(n).cloned();
        let options = compose::Options {
            name: req.name.clone(),
            server: req.server.clone(),
            vars: &lookup,
            profiles: req.profiles.clone(),
            secrets: req.secrets_vault,
            folder,
        };
        let file = Arc::new(SourceFile { path: req.path.clone(), text });
        let imported = compose::import(&file, &options).map_err(Error::Invalid)?;
        let counts = imported.counts();
        let refused = counts.dropped > 0 && !req.lossy;
        let yaml = imported.yaml(&req.path.display().to_string());
        if let Some(out) = req.out.as_ref().filter(|_| !refused) {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::write(dir.display(), e))?;
            }
            std::fs::write(out, &yaml).map_err(|e| Error::write(out.display(), e))?;
        }
        let mut stored = Vec::new();
        if !refused && !imported.secrets.is_empty() {
            let vault = self.vault()?;
            for (name, value) in &imported.secrets {
                let n = Name::parse(name).map_err(|e| Error::Edit { what: format!("secret {name}"), problem: e })?;
                vault.set(&n, value)?;
                stored.push(name.clone());
            }
        }
        Ok(ImportResult {
            name: imported.name.clone(),
            yaml,
            manifest: serde_json::to_value(&imported.document).unwrap_or_default(),
            counts,
            report: imported.report,
            refused,
            stored,
        })
    }
}

/// `KEY=VALUE` lines (`.env` syntax); a missing optional file is empty.
fn read_env_file(path: &Path, required: bool) -> Result<Vec<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::read(path.display(), e)),
    };
    dotenvy::from_read_iter(text.as_bytes())
        .map(|r| r.map_err(|e| Error::Edit { what: format!("env file {}", path.display()), problem: e.to_string() }))
        .collect()
}
