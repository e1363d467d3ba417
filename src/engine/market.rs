//! The declared app stores and their sync: each store's files fetched (git)
//! or read in place (`path:`), scanned (`market::scan`, off the async
//! workers) and indexed into the catalog in one transaction.
//!
//! **Invariants:**
//! - A store that fails to fetch or scan keeps its previous catalog and
//!   records why; stores are synced independently of each other.
//! - No credential reaches an error, a log or a catalog row: URLs with
//!   credentials are refused when loading, a token or key from the vault
//!   goes to git only (`transport::git`), and every error text is masked
//!   with that secret's value before it is kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use super::Engine;
use crate::error::{NotFound, Noun, Result};
use crate::market::{self, layout};
use crate::model::secret::SecretString;
use crate::model::{Marketplace, MarketplaceFormat, StoreSource};
use crate::redact::Redactor;
use crate::store::RepoRow;
use crate::transport::git::{self, FetchRequest, GitAuth};

/// A store as `market list` shows it: its declaration joined with its catalog row.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoreRow {
    pub name: String,
    /// `git` or `path`.
    pub kind: String,
    /// The git URL or the local folder.
    pub source: String,
    pub git_ref: String,
    pub format: String,
    /// How often daemons refresh it, in seconds.
    pub sync_seconds: u64,
    /// Whether a Marketplace manifest declares it (an undeclared store is
    /// forgotten by the next full sync).
    pub declared: bool,
    /// Apps in the catalog.
    pub apps: i64,
    /// Apps that could not be read.
    pub invalid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_commit: Option<String>,
    /// Why the last sync failed (the catalog is the one before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What one store's sync did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoreSynced {
    pub store: String,
    pub ok: bool,
    /// The commit fetched (git stores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub apps: usize,
    pub invalid: usize,
    /// Why it failed; the store keeps its previous catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// What `market_sync` did: each store, and the stores forgotten (no longer declared).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SyncReport {
    pub stores: Vec<StoreSynced>,
    pub forgotten: Vec<String>,
}

impl SyncReport {
    pub fn succeeded(&self) -> bool {
        self.stores.iter().all(|s| s.ok)
    }
}

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Let git show its progress on standard error (a terminal).
    pub progress: bool,
    /// How long one fetch may take.
    pub timeout: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { progress: false, timeout: git::FETCH_TIMEOUT }
    }
}

fn format_name(f: MarketplaceFormat) -> String {
    serde_json::to_value(f).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn source_kind(s: &StoreSource) -> &'static str {
    match s {
        StoreSource::Git { .. } => "git",
        StoreSource::Path { .. } => "path",
    }
}

impl Engine {
    /// The declared stores with their catalog state (apps, invalid apps, last
    /// sync, last error), and catalog stores no longer declared.
    pub fn market_list(&self) -> Result<Vec<StoreRow>> {
        let desired = self.desired()?;
        let mut rows: BTreeMap<String, RepoRow> =
            self.store()?.market_repos()?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let mut out = Vec::new();
        for m in desired.marketplaces.values() {
            let row = rows.remove(m.name.as_str());
            out.push(StoreRow {
                name: m.name.to_string(),
                kind: source_kind(&m.source).into(),
                source: m.source.shown().to_string(),
                git_ref: m.git_ref.clone(),
                format: format_name(m.format),
                sync_seconds: m.sync.as_millis() / 1000,
                declared: true,
                apps: row.as_ref().map_or(0, |r| r.apps),
                invalid: row.as_ref().map_or(0, |r| r.invalid),
                last_sync_at: row.as_ref().and_then(|r| r.last_sync_at.clone()),
                last_commit: row.as_ref().and_then(|r| r.last_commit.clone()),
                last_error: row.and_then(|r| r.last_error),
            });
        }
        out.extend(rows.into_values().map(|r| StoreRow {
            name: r.name,
            kind: "git".into(),
            source: r.url,
            git_ref: r.git_ref,
            format: r.format,
            sync_seconds: 0,
            declared: false,
            apps: r.apps,
            invalid: r.invalid,
            last_sync_at: r.last_sync_at,
            last_commit: r.last_commit,
            last_error: r.last_error,
        }));
        Ok(out)
    }

    /// Syncs every declared store (or only `only`) and forgets the stores no
    /// longer declared (on a full sync).
    pub async fn market_sync(&self, only: Option<&str>) -> Result<SyncReport> {
        self.market_sync_with(only, &SyncOptions::default()).await
    }

    /// `market_sync` with options (progress on a terminal, the fetch timeout).
    pub async fn market_sync_with(&self, only: Option<&str>, opts: &SyncOptions) -> Result<SyncReport> {
        let desired = self.desired()?;
        let stores: Vec<&Marketplace> = match only {
            Some(name) => {
                let m = desired.marketplaces.get(name).ok_or_else(|| {
                    NotFound::among(
                        Noun::MarketStore,
                        name,
                        "declared",
                        desired.marketplaces.keys().map(|n| n.as_str()),
                    )
                })?;
                vec![m]
            }
            None => desired.marketplaces.values().collect(),
        };
        let mut report = SyncReport { stores: Vec::new(), forgotten: Vec::new() };
        for m in stores {
            let synced = self.sync_store(m, opts).await;
            note_sync(&synced);
            report.stores.push(synced);
        }
        if only.is_none() {
            report.forgotten = self.forget_undeclared(&desired.marketplaces.keys().map(|n| n.to_string()).collect())?;
        }
        Ok(report)
    }

    /// Syncs each declared store whose `sync` interval has passed since
    /// `last` says it was last tried (never tried: now), for the daemons.
    /// A failure is in the result, never an error of the call.
    pub async fn market_sync_due(&self, last: &mut BTreeMap<String, Instant>) -> Result<Vec<StoreSynced>> {
        let desired = self.desired()?;
        last.retain(|name, _| desired.marketplaces.contains_key(name.as_str()));
        let mut done = Vec::new();
        for m in desired.marketplaces.values() {
            let due = last.get(m.name.as_str()).is_none_or(|t| t.elapsed() >= m.sync.to_std());
            if due {
                last.insert(m.name.to_string(), Instant::now());
                let synced = self.sync_store(m, &SyncOptions::default()).await;
                note_sync(&synced);
                done.push(synced);
            }
        }
        Ok(done)
    }

    /// Keeps the declared stores synced, each on its `sync` interval
    /// (checked every minute; every store once at the start), for `watch`
    /// and `serve`. Never returns; a failure is logged, never fatal.
    pub async fn market_keep_synced(&self) {
        let mut last = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.market_sync_due(&mut last).await {
                Ok(done) => {
                    for s in done.iter().filter(|s| !s.ok) {
                        tracing::debug!(store = %s.store, "store sync will be tried again at its interval");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot sync the stores: the manifests did not load"),
            }
        }
    }

    /// One store: fetch (or find its folder), scan, index; a failure is
    /// recorded in the catalog, which keeps the store's previous apps.
    async fn sync_store(&self, m: &Marketplace, opts: &SyncOptions) -> StoreSynced {
        let started = Instant::now();
        let name = m.name.to_string();
        let (redactor, result) = self.fetch_and_scan(m, opts).await;
        let mut out = StoreSynced {
            store: name.clone(),
            ok: false,
            commit: None,
            apps: 0,
            invalid: 0,
            error: None,
            elapsed_ms: 0,
        };
        let indexed = match result {
            Ok((commit, scan)) => {
                let row = RepoRow {
                    name: name.clone(),
                    url: m.source.shown().to_string(),
                    git_ref: m.git_ref.clone(),
                    format: format_name(m.format),
                    last_sync_at: None,
                    last_commit: commit.clone(),
                    last_error: None,
                    apps: scan.apps.len() as i64,
                    invalid: scan.invalid.len() as i64,
                };
                out.commit = commit;
                out.apps = scan.apps.len();
                out.invalid = scan.invalid.len();
                self.store().and_then(|s| Ok(s.market_replace(&row, &scan)?)).map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        match indexed {
            Ok(()) => {
                out.ok = true;
                tracing::info!(store = %name, apps = out.apps, invalid = out.invalid, "store synced");
            }
            Err(e) => {
                let e = redactor.apply(&e);
                tracing::warn!(store = %name, error = %e, "store sync failed; its previous catalog is kept");
                if let Err(err) = self.store().and_then(|s| Ok(s.market_sync_failed(&name, &e)?)) {
                    tracing::warn!(store = %name, error = %err, "cannot record the failed sync");
                }
                (out.apps, out.invalid, out.commit) = (0, 0, None);
                out.error = Some(e);
            }
        }
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        out
    }

    /// The store's folder (fetched for a git store) and its scan; the
    /// redactor masks the store's secret in any error.
    async fn fetch_and_scan(
        &self,
        m: &Marketplace,
        opts: &SyncOptions,
    ) -> (Redactor, std::result::Result<(Option<String>, market::Scan), String>) {
        let secret = match &m.auth {
            Some(s) => match self.vault().and_then(|v| Ok(v.get(s.as_str())?)) {
                Ok(v) => Some(v),
                Err(e) => return (Redactor::default(), Err(format!("auth secret `{s}`: {e}"))),
            },
            None => None,
        };
        let redactor = Redactor::new(secret.as_ref().map(SecretString::expose));
        let (root, commit) = match &m.source {
            StoreSource::Path { .. } => {
                let root = self.market_root(m);
                if !root.is_dir() {
                    return (redactor, Err(format!("`{}` is not a folder", root.display())));
                }
                (root, None)
            }
            StoreSource::Git { url } => {
                let auth = secret.map(|s| if git::is_ssh(url) { GitAuth::SshKey(s) } else { GitAuth::Token(s) });
                let dest = layout::checkout(&self.config().data_dir, m.name.as_str());
                let req = FetchRequest {
                    url,
                    git_ref: &m.git_ref,
                    dest: &dest,
                    auth: auth.as_ref(),
                    timeout: opts.timeout,
                    known_hosts: Some(layout::stores_dir(&self.config().data_dir).join("known_hosts")),
                    progress: opts.progress,
                };
                if let Err(e) = self.store() {
                    // The data folder (and its mode) comes with the store.
                    return (redactor, Err(e.to_string()));
                }
                match git::fetch(&req).await {
                    Ok(f) => (dest, Some(f.commit)),
                    Err(e) => return (redactor, Err(e.to_string())),
                }
            }
        };
        let format = m.format;
        let scanned = tokio::task::spawn_blocking(move || market::scan(&root, format)).await;
        let scan = match scanned {
            Ok(Ok(scan)) => Ok((commit, scan)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("the scan stopped: {e}")),
        };
        (redactor, scan)
    }

    /// The folder a store is read from: its `path:` (relative to the
    /// manifest folder unless absolute), or its checkout in the data folder.
    pub fn market_root(&self, m: &Marketplace) -> PathBuf {
        match &m.source {
            StoreSource::Path { path } => {
                let p = PathBuf::from(path);
                if p.is_absolute() { p } else { self.config().manifests.join(p) }
            }
            StoreSource::Git { .. } => layout::checkout(&self.config().data_dir, m.name.as_str()),
        }
    }

    /// Forgets the catalog's stores not in `declared` and removes their checkouts.
    fn forget_undeclared(&self, declared: &std::collections::BTreeSet<String>) -> Result<Vec<String>> {
        let store = self.store()?;
        let mut gone = Vec::new();
        for r in store.market_repos()? {
            if declared.contains(&r.name) {
                continue;
            }
            store.market_forget(&r.name)?;
            if crate::model::Name::parse(&r.name).is_ok() {
                let dir = layout::checkout(&self.config().data_dir, &r.name);
                if dir.is_dir() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            tracing::info!(store = %r.name, "store no longer declared: forgotten");
            gone.push(r.name);
        }
        Ok(gone)
    }
}

/// A store sync as one of tomo's events (`tomo logs --system`).
fn note_sync(s: &StoreSynced) {
    use crate::model::logs::LogLevel;
    let (level, what) = match &s.error {
        None => (LogLevel::Info, format!("synced: {} app(s), {} invalid", s.apps, s.invalid)),
        Some(e) => (LogLevel::Warn, format!("sync failed: {e}")),
    };
    super::syslog::record(
        level,
        "market",
        &format!("market store {} {what}", s.store),
        serde_json::json!({ "store": s.store, "commit": s.commit, "apps": s.apps, "elapsed_ms": s.elapsed_ms }),
    );
}
