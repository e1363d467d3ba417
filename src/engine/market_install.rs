//! Installing store apps as App manifests (`tomo market install`), listing
//! them (`installed`), and upgrading them by a three-way merge (`updates`,
//! `upgrade`).
//!
//! **Invariants:**
//! - An install that is refused (unknown store or app, name taken, host port
//!   taken) writes nothing and stores no secret.
//! - An upgrade never overwrites a user's edit: a value both the store and
//!   the user changed is a conflict, reported with both versions.
//! - The store's own manifest of each installed version (its "pristine"
//!   form, the base of the merge) is kept in the data folder,
//!   `market-installs/<app>.json`, with the variables it was made with.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::changes::{Change, FileEdit, Submitted};
use super::{ApplyRequest, Engine};
use crate::apply::{ApplyReport, ApplySink};
use crate::auth::Identity;
use crate::compose::{self, Entry, Status};
use crate::diag::SourceFile;
use crate::error::{Error, Result, Usage};
use crate::manifest::raw::{RawApp, RawDocument, RawMarketSource};
use crate::market::{install, merge};
use crate::model::secret::SecretString;
use crate::model::{Desired, MarketDefaults, MarketSource, Name, PortRange};

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    pub store: String,
    /// The app's id in the store.
    pub app: String,
    /// The app's name (default: the store app's own, made a tomo name).
    pub name: Option<String>,
    /// The server (default: the only declared server, else `local`).
    pub server: Option<String>,
    /// `--set KEY=VALUE`: variables first, before the defaults; a numeric
    /// `KEY` is a host port to publish as `VALUE` instead.
    pub set: Vec<(String, String)>,
    /// Apply the plan once the manifest is written.
    pub yes: bool,
}

/// An install done (or proposed).
#[derive(Debug, Serialize)]
pub struct Install {
    pub name: String,
    /// The manifest file, relative to the manifest folder.
    pub path: String,
    pub source: MarketSource,
    /// What the user should know (a `--set` the app does not use, keys dropped).
    pub warnings: Vec<String>,
    /// Secrets generated into the vault.
    pub secrets: Vec<String>,
    pub report: Vec<Entry>,
    pub submitted: Submitted,
    /// With `yes`: the apply of the written plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<ApplyReport>,
}

/// An app installed from a store.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledApp {
    pub name: String,
    pub servers: Vec<String>,
    #[serde(flatten)]
    pub source: MarketSource,
}

/// What upgrading an installed app would change.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    pub name: String,
    pub store: String,
    pub app: String,
    pub installed_version: String,
    pub available_version: String,
    pub installed_checksum: String,
    pub available_checksum: String,
    /// The manifest diff the upgrade writes (the user's edits kept).
    pub diff: String,
    /// Values both the store and the user changed: the user's stays.
    pub conflicts: Vec<merge::Conflict>,
}

/// The record of an install, kept in the data folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) store: String,
    pub(super) app: String,
    pub(super) name: String,
    pub(super) server: String,
    pub(super) set: Vec<(String, String)>,
    pub(super) defaults: Option<MarketDefaults>,
    /// The store's manifest (as JSON) of each version installed, by checksum.
    pub(super) pristine: BTreeMap<String, Value>,
}

/// A store app converted to a manifest.
pub(super) struct Converted {
    pub(super) doc: RawDocument,
    report: Vec<Entry>,
    pub(super) secrets: Vec<(String, SecretString)>,
    /// Variables the compose file asked for.
    used: BTreeSet<String>,
    /// Host ports `--set` moved.
    moved: BTreeSet<u16>,
    pub(super) source: MarketSource,
}

/// Where a store app's files are.
pub(super) struct Located {
    store: String,
    app: String,
    root: PathBuf,
    source: String,
    version: Option<String>,
    checksum: Option<String>,
}

fn invalid(arg: &str, value: &str, problem: impl std::fmt::Display) -> Error {
    Usage::invalid(arg, value, problem).into()
}

impl Engine {
    fn records_dir(&self) -> PathBuf {
        self.config().data_dir.join("market-installs")
    }

    pub(super) fn read_record(&self, name: &str) -> Result<Option<Record>> {
        let path = self.records_dir().join(format!("{name}.json"));
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| invalid("install record", &path.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::read(path.display(), e)),
        }
    }

    pub(super) fn write_record(&self, r: &Record) -> Result<()> {
        let dir = self.records_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(dir.display(), e))?;
        let path = dir.join(format!("{}.json", r.name));
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(r).expect("records serialise");
        std::fs::write(&tmp, text).map_err(|e| Error::write(tmp.display(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::write(path.display(), e))
    }

    /// The folder of store `store` and the compose file of its app `app`.
    pub(super) fn locate(&self, desired: &Desired, store: &str, app: &str) -> Result<Located> {
        let Some(m) = Name::parse(store).ok().and_then(|n| desired.marketplaces.get(&n)) else {
            let known: Vec<String> = desired.marketplaces.keys().map(|n| n.to_string()).collect();
            let known = if known.is_empty() { "none".into() } else { known.join(", ") };
            return Err(invalid(
                "store",
                store,
                format!("no Marketplace of that name is declared (declared: {known})"),
            ));
        };
        let root = self.market_root(m);
        let row = self.store()?.market_app(store, app)?;
        let (source, version, checksum) = match row {
            Some(r) => (r.entry.source, Some(r.entry.version), Some(r.entry.checksum)),
            None => match install::locate(&root, app) {
                Some(s) => (s, None, None),
                None => {
                    return Err(invalid(
                        "app",
                        &format!("{store}/{app}"),
                        format!("store `{store}` has no such app (see `tomo market search --store {store}`)"),
                    ));
                }
            },
        };
        Ok(Located { store: store.into(), app: app.into(), root, source, version, checksum })
    }

    /// Converts a store app with the variables `set`, then `defaults`.
    pub(super) fn convert_app(
        &self,
        loc: &Located,
        name: Option<&str>,
        server: &str,
        set: &[(String, String)],
        d: &MarketDefaults,
    ) -> Result<Converted> {
        let (store, app) = (loc.store.as_str(), loc.app.as_str());
        let path = install::within_store(&loc.root, &loc.source).map_err(|e| invalid("app", app, e))?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(path.display(), e))?;
        let text = install::fill_data_root(&text, &d.data_root);
        let (ports, vars): (Vec<_>, Vec<_>) = set.iter().cloned().partition(|(k, _)| k.parse::<u16>().is_ok());
        let mut table: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in vars {
            table.entry(k).or_insert(v);
        }
        for (k, v) in [("TZ", d.tz.clone()), ("PUID", d.puid.to_string()), ("PGID", d.pgid.to_string())] {
            table.entry(k.into()).or_insert(v);
        }
        let used = RefCell::new(BTreeSet::new());
        let lookup = |n: &str| {
            used.borrow_mut().insert(n.to_string());
            table.get(n).cloned()
        };
        let options = compose::Options {
            name: name.map(str::to_string),
            server: Some(server.to_string()),
            vars: &lookup,
            profiles: Vec::new(),
            secrets: true,
            folder: path.parent().map(std::path::Path::to_path_buf),
        };
        let file = Arc::new(SourceFile { path: path.clone(), text });
        let imported = compose::import(&file, &options).map_err(Error::Invalid)?;
        let mut doc = imported.document;
        let mut map = BTreeMap::new();
        for (k, v) in ports {
            let new = v.parse::<u16>().map_err(|e| invalid("--set", &format!("{k}={v}"), e))?;
            map.insert(k.parse::<u16>().unwrap_or_default(), new);
        }
        let moved = install::remap_ports(&mut doc, &map);
        let version = loc.version.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| install::version(&doc, None));
        let checksum = match &loc.checksum {
            Some(c) if !c.is_empty() => c.clone(),
            _ => path
                .parent()
                .map(install::folder_checksum)
                .transpose()
                .map_err(|e| Error::read(path.display(), e))?
                .unwrap_or_default(),
        };
        let source = MarketSource { store: store.into(), app: app.into(), version, checksum };
        set_source(&mut doc, &source);
        let used = used.into_inner();
        Ok(Converted { doc, report: imported.report, secrets: imported.secrets, used, moved, source })
    }
}

fn set_source(doc: &mut RawDocument, s: &MarketSource) {
    let raw = RawMarketSource {
        store: s.store.clone(),
        app: s.app.clone(),
        version: s.version.clone(),
        checksum: s.checksum.clone(),
    };
    match doc {
        RawDocument::App(RawApp::Single(a)) => a.source = Some(raw),
        RawDocument::App(RawApp::Multi(a)) => a.source = Some(raw),
        _ => {}
    }
}

fn doc_name(doc: &RawDocument) -> String {
    match doc {
        RawDocument::App(RawApp::Single(a)) => a.name.clone(),
        RawDocument::App(RawApp::Multi(a)) => a.name.clone(),
        _ => String::new(),
    }
}

/// The manifest file's text.
fn manifest_yaml(doc: &RawDocument) -> String {
    let v = serde_json::to_value(doc).unwrap_or_default();
    format!(
        "# yaml-language-server: $schema=../../schemas/app.json\n# Installed by `tomo market install`; `tomo market updates` merges the store's changes with yours.\n{}",
        compose::emit::to_yaml(&v)
    )
}

/// Host ports of `doc` that apps declared on `server` publish already, each
/// with the next free port.
fn port_conflicts(desired: &Desired, server: &str, doc: &RawDocument) -> Vec<String> {
    let mut taken: Vec<(PortRange, crate::model::Protocol, String)> = Vec::new();
    for app in desired.apps.values().filter(|a| a.servers.iter().any(|s| s.as_str() == server)) {
        for (svc, s) in &app.services {
            for p in s.ports.iter() {
                if let Some(h) = p.host {
                    taken.push((h, p.protocol, format!("app `{}` (service `{svc}`)", app.name)));
                }
            }
        }
    }
    let mine = install::host_ports(doc);
    let all: Vec<PortRange> = taken.iter().map(|t| t.0).chain(mine.iter().filter_map(|(_, m)| m.host)).collect();
    let mut out = Vec::new();
    for (svc, m) in &mine {
        let Some(h) = m.host else { continue };
        if let Some((_, _, by)) = taken.iter().find(|(r, p, _)| *p == m.protocol && r.overlaps(&h)) {
            let hint = match install::next_free(&all, h.end.saturating_add(1)) {
                Some(free) if h.start == h.end => format!("; the next free port is {free}: --set {}={free}", h.start),
                _ => String::new(),
            };
            out.push(format!(
                "host port {h} (service `{svc}`) on server `{server}` is already published by {by}{hint}"
            ));
        }
    }
    out
}

impl Engine {
    /// Installs store app `req.store/req.app` as `apps/<name>.yaml`: written
    /// (an admin, the CLI) or proposed (a role that proposes), and with
    /// `req.yes` the written plan applied.
    pub async fn market_install(&self, req: &InstallRequest, who: &Identity, sink: &dyn ApplySink) -> Result<Install> {
        self.market_install_as(req, who, None, sink).await
    }

    /// `market_install`, always as a proposal when `propose` gives a reason
    /// (an agent's install).
    pub async fn market_install_as(
        &self,
        req: &InstallRequest,
        who: &Identity,
        propose: Option<String>,
        sink: &dyn ApplySink,
    ) -> Result<Install> {
        let desired = self.desired()?;
        let loc = self.locate(&desired, &req.store, &req.app)?;
        let server = req.server.clone().unwrap_or_else(|| default_server(&desired));
        let d = desired.settings.market_defaults.clone();
        if let Some(n) = &req.name {
            Name::parse(n).map_err(|e| invalid("--name", n, e))?;
        }
        let name = req.name.clone().unwrap_or_else(|| req.app.to_ascii_lowercase());
        let name = compose_name(&name);
        let c = self.convert_app(&loc, Some(&name), &server, &req.set, &d)?;
        let name = doc_name(&c.doc);
        let path = format!("apps/{name}.yaml");
        if desired.apps.keys().any(|n| n.as_str() == name) || self.config().manifests.join(&path).exists() {
            return Err(Usage::Exists {
                what: format!("app `{name}`"),
                help: "choose another name with --name".into(),
            }
            .into());
        }
        let conflicts = port_conflicts(&desired, &server, &c.doc);
        if !conflicts.is_empty() {
            return Err(Usage::NotApplicable { what: format!("installing `{name}`"), why: conflicts.join("; ") }.into());
        }
        let warnings = warnings(req, &c);
        let yaml = manifest_yaml(&c.doc);
        let (secrets, created) = self.store_generated(&c.secrets, &req.set)?;
        let change = Change {
            title: format!("install {}/{} {} as app {name}", req.store, req.app, c.source.version),
            edits: vec![FileEdit { path: path.clone(), before: None, after: Some(yaml) }],
        };
        let submitted = match self.submit_as(change, who, propose).await {
            Ok(s) => s,
            Err(e) => {
                if let Ok(v) = self.vault() {
                    for s in &created {
                        let _ = v.remove(s);
                    }
                }
                return Err(e);
            }
        };
        let pristine = serde_json::to_value(&c.doc).unwrap_or_default();
        let mut record = Record {
            store: req.store.clone(),
            app: req.app.clone(),
            name: name.clone(),
            server: server.clone(),
            set: req.set.clone(),
            defaults: Some(d),
            pristine: BTreeMap::new(),
        };
        record.pristine.insert(c.source.checksum.clone(), pristine);
        self.write_record(&record)?;
        let applied = match (&submitted, req.yes) {
            (Submitted::Written { plan, .. }, true) => {
                let areq = ApplyRequest {
                    parallelism: None,
                    lock_timeout: std::time::Duration::from_secs(60),
                    actor: who.user.clone(),
                    source: "cli".into(),
                    stop: None,
                };
                Some(self.apply_saved(plan, &areq, sink).await?)
            }
            _ => None,
        };
        Ok(Install { name, path, source: c.source, warnings, secrets, report: c.report, submitted, applied })
    }

    /// Puts the credentials of a conversion in the vault: a value given
    /// with `--set` as given, a value the store leaves to the user replaced
    /// by a random one (equal store values stay equal). Returns the secrets
    /// and those newly created.
    pub(super) fn store_generated(
        &self,
        secrets: &[(String, SecretString)],
        set: &[(String, String)],
    ) -> Result<(Vec<String>, Vec<String>)> {
        if secrets.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let vault = self.vault()?;
        let existing: BTreeSet<String> = vault.list()?.into_iter().map(|r| r.name).collect();
        let mut generated: BTreeMap<String, String> = BTreeMap::new();
        let (mut all, mut created) = (Vec::new(), Vec::new());
        for (name, value) in secrets {
            all.push(name.clone());
            if existing.contains(name) {
                continue;
            }
            let given = value.expose();
            let v = if set.iter().any(|(_, v)| v == given) {
                given.to_string()
            } else {
                generated.entry(given.to_string()).or_insert_with(random_password).clone()
            };
            let n = Name::parse(name).map_err(|e| invalid("secret", name, e))?;
            vault.set(&n, &SecretString::new(v))?;
            created.push(name.clone());
        }
        Ok((all, created))
    }
}

/// A random password: 32 characters of letters and digits.
fn random_password() -> String {
    let mut s = String::new();
    while s.len() < 32 {
        s.extend(crate::auth::random_id().chars().filter(char::is_ascii_alphanumeric));
    }
    s.truncate(32);
    s
}

fn compose_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(63).collect::<String>().trim_end_matches('-').to_string()
}

fn default_server(desired: &Desired) -> String {
    let declared: Vec<&Name> = desired.servers.iter().filter(|(_, s)| !s.implicit).map(|(n, _)| n).collect();
    match declared.as_slice() {
        [one] => one.to_string(),
        _ => "local".into(),
    }
}

fn warnings(req: &InstallRequest, c: &Converted) -> Vec<String> {
    let mut out = Vec::new();
    for (k, _) in &req.set {
        match k.parse::<u16>() {
            Ok(p) if !c.moved.contains(&p) => out.push(format!("--set {k}=…: the app publishes no host port {p}")),
            Ok(_) => {}
            Err(_) if !c.used.contains(k) => {
                out.push(format!("--set {k}=…: the app does not use the variable `{k}`; it has no effect"))
            }
            Err(_) => {}
        }
    }
    for e in c.report.iter().filter(|e| e.status == Status::Dropped) {
        let at = if e.service.is_empty() { String::new() } else { format!("service `{}`: ", e.service) };
        out.push(format!("{at}`{}` dropped: {}", e.key, e.note));
    }
    out
}
