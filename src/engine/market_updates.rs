//! Installed store apps and their upgrades: the store's new manifest (the
//! same variables as at install) merged three ways with the store's old one
//! and the user's file (`market::merge`).

use serde_json::Value;

use super::Engine;
use super::changes::{Change, FileEdit, Submitted, edit_in_text};
use super::market_install::{InstalledApp, Update};
use crate::auth::Identity;
use crate::error::{Error, Result, Usage};
use crate::manifest::edit;
use crate::market::merge;
use crate::model::secret::SecretString;
use crate::model::{App, Desired};

/// An upgrade worked out: the update and the file edit that makes it.
struct Worked {
    update: Update,
    edit: FileEdit,
    new_checksum: String,
    new_pristine: Value,
    secrets: Vec<(String, SecretString)>,
}

impl Engine {
    /// Apps whose manifests carry `x-tomo-source`, by name.
    pub fn market_installed(&self) -> Result<Vec<InstalledApp>> {
        let desired = self.desired()?;
        Ok(installed(&desired)
            .map(|(a, s)| InstalledApp {
                name: a.name.to_string(),
                servers: a.servers.iter().map(|s| s.to_string()).collect(),
                source: s.clone(),
            })
            .collect())
    }

    /// Installed apps whose store version changed, each with the manifest
    /// diff an upgrade would write and its conflicts.
    pub fn market_updates(&self) -> Result<Vec<Update>> {
        let desired = self.desired()?;
        let mut out = Vec::new();
        for (app, _) in installed(&desired) {
            if let Some(w) = self.work_out(&desired, app)? {
                out.push(w.update);
            }
        }
        Ok(out)
    }

    /// Writes (or proposes, for an agent) the upgrade of installed app `name`;
    /// refused while it has conflicts.
    pub async fn market_upgrade(
        &self,
        name: &str,
        who: &Identity,
        propose: Option<String>,
    ) -> Result<(Update, Submitted)> {
        let desired = self.desired()?;
        let Some((app, _)) = installed(&desired).find(|(a, _)| a.name.as_str() == name) else {
            let known: Vec<String> = installed(&desired).map(|(a, _)| a.name.to_string()).collect();
            let known = if known.is_empty() { "none".into() } else { known.join(", ") };
            return Err(Usage::invalid("app", name, format!("not installed from a store (installed: {known})")).into());
        };
        let Some(w) = self.work_out(&desired, app)? else {
            return Err(Usage::NotApplicable {
                what: format!("upgrading `{name}`"),
                why: "it is up to date with its store".into(),
            }
            .into());
        };
        if !w.update.conflicts.is_empty() {
            let list: Vec<String> = w
                .update
                .conflicts
                .iter()
                .map(|c| format!("`{}`: yours {} / the store's {} (was {})", c.path, c.ours, c.theirs, c.base))
                .collect();
            return Err(Usage::NotApplicable {
                what: format!("upgrading `{name}`"),
                why: format!("you and the store changed the same values; edit them by hand first: {}", list.join("; ")),
            }
            .into());
        }
        let record = self.read_record(name)?.unwrap_or_default();
        self.store_generated(&w.secrets, &record.set)?;
        let title = format!("upgrade {name} to {}/{} {}", w.update.store, w.update.app, w.update.available_version);
        let submitted = self.submit_as(Change { title, edits: vec![w.edit] }, who, propose).await?;
        let mut record = record;
        record.pristine.insert(w.new_checksum, w.new_pristine);
        self.write_record(&record)?;
        Ok((w.update, submitted))
    }

    /// The upgrade of one installed app, `None` when its store's is the same.
    fn work_out(&self, desired: &Desired, app: &App) -> Result<Option<Worked>> {
        let Some(src) = &app.source else { return Ok(None) };
        let record = self.read_record(app.name.as_str())?.ok_or_else(|| Usage::NotApplicable {
            what: format!("app `{}`", app.name),
            why: "it names a store app but has no install record in the data folder (installed by another tomo?)"
                .into(),
        })?;
        let loc = self.locate(desired, &src.store, &src.app)?;
        let d = record.defaults.clone().unwrap_or_else(|| desired.settings.market_defaults.clone());
        let server = app.servers.first().map(|s| s.to_string()).unwrap_or(record.server.clone());
        let new = self.convert_app(&loc, Some(app.name.as_str()), &server, &record.set, &d)?;
        if new.source.checksum == src.checksum {
            return Ok(None);
        }
        let base = record.pristine.get(&src.checksum).cloned().ok_or_else(|| Usage::NotApplicable {
            what: format!("app `{}`", app.name),
            why: format!("the store's manifest of version {} (checksum {}) was not kept", src.version, src.checksum),
        })?;
        let theirs = serde_json::to_value(&new.doc).unwrap_or_default();
        let sources = self.sources()?;
        let file = &app.origin.file;
        let text = sources
            .relative
            .iter()
            .position(|r| r == file)
            .map(|i| sources.files[i].text.clone())
            .ok_or_else(|| Error::read(file, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        let ours = edit::document_json(&text, app.origin.line).unwrap_or(Value::Null);
        let merged = merge::merge(&base, &ours, &theirs);
        let value = merged.value.clone();
        let after = edit_in_text(&text, app.origin.line, |_| Ok(Some(value)))?;
        let edit = FileEdit { path: file.clone(), before: Some(text), after };
        let diff = Change { title: String::new(), edits: vec![edit.clone()] }.diff();
        let update = super::market_install::Update {
            name: app.name.to_string(),
            store: src.store.clone(),
            app: src.app.clone(),
            installed_version: src.version.clone(),
            available_version: new.source.version.clone(),
            installed_checksum: src.checksum.clone(),
            available_checksum: new.source.checksum.clone(),
            diff,
            conflicts: merged.conflicts,
        };
        Ok(Some(Worked { update, edit, new_checksum: new.source.checksum, new_pristine: theirs, secrets: new.secrets }))
    }
}

fn installed(desired: &Desired) -> impl Iterator<Item = (&App, &crate::model::MarketSource)> {
    desired.apps.values().filter_map(|a| a.source.as_ref().map(|s| (a, s)))
}
