//! Releases: every apply that changes an app records what it ran (the
//! app's document and its content hash, the manifest folder's git commit,
//! each service's spec hash and the registry digest of the image its
//! container runs, who, how it ended, what changed). `releases` lists them
//! (`tomo history`); `rollback` writes the document of one of them back
//! with every image pinned by that digest (`image: name@sha256:…`), after
//! checking that each digest is still on the server or in its registry.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Engine;
use super::changes::{Change, DocKind};
use crate::apply::{ApplyReport, Outcome};
use crate::error::{Error, Known, NotFound, Noun, Result, Usage};
use crate::model::{App, Desired, Inventory, Name, labels};
use crate::plan::{Op, Plan};
use crate::store::{NewRelease, ReleaseRow, ReleaseService, RunStatus};
use crate::transport::engine::EngineApi;

/// A recorded release of an app.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Release {
    /// Counts the app's releases from 1 (`rollback --to`).
    pub number: i64,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Who applied: the user (CLI or MCP), or `watch`.
    pub actor: String,
    /// cli | mcp | watch | proposal
    pub source: String,
    pub outcome: RunStatus,
    /// Content hash of the app's manifest document.
    pub revision: String,
    /// The manifest folder's commit, when it is a git repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// What the apply changed, in one line.
    pub changes: String,
    pub services: Vec<ReleaseImage>,
}

/// What one service ran on one server.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReleaseImage {
    pub server: String,
    pub service: String,
    /// The image as the manifest writes it.
    pub image: String,
    /// The image that ran, `repository@sha256:…` (none for an image without
    /// a registry digest, e.g. built on the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
}

impl From<ReleaseRow> for Release {
    fn from(r: ReleaseRow) -> Release {
        Release {
            number: r.number,
            at: r.at,
            run_id: r.run,
            actor: r.actor,
            source: r.source,
            outcome: r.outcome,
            revision: r.revision,
            git_commit: r.git_commit,
            changes: r.changes,
            services: r
                .services
                .into_iter()
                .map(|s| ReleaseImage {
                    server: s.server,
                    service: s.service,
                    image: s.image,
                    digest: s.digest,
                    spec_hash: s.spec_hash,
                })
                .collect(),
        }
    }
}

/// Who applied, as the run records it.
pub(super) struct Applier<'a> {
    pub actor: &'a str,
    pub source: &'a str,
}

impl Engine {
    /// An app's releases, newest first (the app need not be declared any more).
    pub fn releases(&self, app: &str, limit: u32) -> Result<Vec<Release>> {
        Ok(self.store()?.releases(app, limit)?.into_iter().map(Release::from).collect())
    }

    /// Records a release of every app the apply changed (an action of it
    /// ran, whatever its outcome), with the digests its containers run now:
    /// one image listing per server the apps are on. Failures are logged,
    /// never fatal.
    pub(super) async fn record_releases(
        &self,
        desired: &Desired,
        plan: &Plan,
        report: &ApplyReport,
        run: i64,
        who: Applier<'_>,
    ) {
        let changed = changed_apps(plan, report);
        if changed.is_empty() {
            return;
        }
        let servers: BTreeSet<&Name> =
            changed.keys().filter_map(|a| desired.apps.get(*a)).flat_map(|a| a.servers.iter()).collect();
        let inventories = self.inventories(servers).await;
        let commit = crate::manifest::sources::git_head(&self.config.manifests);
        for (name, (outcome, changes)) in changed {
            let Some(app) = desired.apps.get(name) else { continue };
            let doc = match self.document(DocKind::App, name.as_str()) {
                Ok(Some((_, _, doc))) => doc,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(app = %name, error = %e, "cannot record the release");
                    continue;
                }
            };
            let release = NewRelease {
                app: name.to_string(),
                run: Some(run),
                actor: who.actor.to_string(),
                source: who.source.to_string(),
                outcome,
                revision: revision(&doc),
                git_commit: commit.clone(),
                doc,
                changes,
                services: ran(app, &inventories),
            };
            if let Err(e) = self.store().and_then(|s| Ok(s.record_release(&release)?)) {
                tracing::warn!(app = %name, error = %e, "cannot record the release");
            }
        }
    }

    /// The inventory of each server (those that answer), listed at once.
    async fn inventories(&self, servers: BTreeSet<&Name>) -> BTreeMap<Name, Inventory> {
        let lists =
            servers.into_iter().filter_map(|s| self.cached(s).map(|c| (s.clone(), c))).map(|(s, c)| async move {
                match c.inventory().await {
                    Ok(inv) => Some((s, inv)),
                    Err(e) => {
                        tracing::warn!(server = %s, error = %e, "cannot list the images the release ran");
                        None
                    }
                }
            });
        futures_util::future::join_all(lists).await.into_iter().flatten().collect()
    }

    /// The change that writes release `to` (by default the newest
    /// successful one before the last) back, its images pinned by digest;
    /// `None` when the app has no release at all (and no `to`).
    pub(super) async fn release_rollback(
        &self,
        desired: &Desired,
        name: &str,
        to: Option<i64>,
    ) -> Result<Option<Change>> {
        let releases = self.store()?.releases(name, u32::MAX)?;
        if releases.is_empty() && to.is_none() {
            return Ok(None);
        }
        let target = match to {
            Some(n) => releases.iter().find(|r| r.number == n).ok_or_else(|| unknown_release(name, n, &releases))?,
            None => releases.iter().skip(1).find(|r| r.outcome == RunStatus::Succeeded).ok_or_else(|| {
                Error::from(Usage::NotApplicable {
                    what: format!("app `{name}`"),
                    why: "there is no earlier successful release to roll back to (see `tomo history`)".into(),
                })
            })?,
        };
        self.check_digests(desired, target).await?;
        let (doc, unpinned) = pinned(&target.doc, &target.services);
        let mut title = format!("roll back app {name} to release {}", target.number);
        if !unpinned.is_empty() {
            title.push_str(&format!(" ({} kept as written: no registry digest)", unpinned.join(", ")));
        }
        Ok(Some(self.edit_document(DocKind::App, name, title, move |_| Ok(Some(doc)))?))
    }

    /// Refuses a release whose image digest is neither on a server it ran on
    /// nor in the registry (asked through that server's Engine).
    async fn check_digests(&self, desired: &Desired, release: &ReleaseRow) -> Result<()> {
        let servers: BTreeSet<&Name> = release
            .services
            .iter()
            .filter(|s| s.digest.is_some())
            .filter_map(|s| desired.servers.keys().find(|n| n.as_str() == s.server))
            .collect();
        let opts = crate::plan::PlanOptions {
            scope: crate::plan::Scope { servers: servers.iter().map(|s| (*s).clone()).collect(), ..Default::default() },
            ..Default::default()
        };
        if servers.is_empty() {
            return Ok(());
        }
        let clients = self.clients(desired, &opts).await;
        let inventories = self.inventories(servers).await;
        for s in &release.services {
            let (Some(digest), Ok(server)) = (&s.digest, Name::parse(&s.server)) else { continue };
            if inventories.get(&server).is_some_and(|inv| inv.has_image(digest)) {
                continue;
            }
            let client = match clients.get(&server) {
                Some(Ok(c)) => c,
                Some(Err(e)) => return Err(missing(release, s, &format!("server {server} cannot be reached: {e}"))),
                None => continue,
            };
            if let Err(e) = client.registry_has(digest).await {
                return Err(missing(release, s, &format!("it is not on server {server}, and the registry says: {e}")));
            }
        }
        Ok(())
    }
}

fn missing(release: &ReleaseRow, s: &ReleaseService, why: &str) -> Error {
    Usage::NotApplicable {
        what: format!("release {} of app `{}`", release.number, release.app),
        why: format!(
            "service `{}` ran `{}`; {why}. Nothing was changed",
            s.service,
            s.digest.as_deref().unwrap_or_default()
        ),
    }
    .into()
}

fn unknown_release(app: &str, n: i64, releases: &[ReleaseRow]) -> Error {
    let names: Vec<String> = releases.iter().rev().map(|r| r.number.to_string()).collect();
    NotFound {
        kind: Noun::Release,
        name: n.to_string(),
        within: Some(format!("app `{app}`")),
        known: Known::List { label: "its releases", names },
    }
    .into()
}

/// The content hash of an app's document.
pub(super) fn revision(doc: &Value) -> String {
    crate::model::spec::hex(&Sha256::digest(doc.to_string().as_bytes())[..8])
}

/// For each app with an action that ran: its outcome (failed when any of
/// its actions failed, cancelled when the run stopped before some of them)
/// and what changed, e.g. `recreate web (image: a → b); create db`.
fn changed_apps<'a>(plan: &'a Plan, report: &ApplyReport) -> BTreeMap<&'a Name, (RunStatus, String)> {
    let mut out: BTreeMap<&Name, (RunStatus, Vec<String>)> = BTreeMap::new();
    for r in &report.results {
        let a = &plan.actions[r.id];
        let Some(app) = &a.app else { continue };
        let entry = out.entry(app).or_insert((RunStatus::Succeeded, Vec::new()));
        match (&r.outcome, report.cancelled) {
            (Outcome::Failed(_), _) => entry.0 = RunStatus::Failed,
            (Outcome::Skipped(_), true) if entry.0 == RunStatus::Succeeded => entry.0 = RunStatus::Cancelled,
            _ => {}
        }
        if matches!(a.op, Op::Start { fresh: true, .. }) {
            continue;
        }
        let what = a.service.as_ref().map_or_else(|| a.op.object().to_string(), |s| s.to_string());
        let why = match (&a.op, a.reasons.first()) {
            (Op::Recreate { .. }, Some(reason)) => format!(" ({reason})"),
            _ => String::new(),
        };
        entry.1.push(format!("{} {what}{why}", a.op.verb()));
    }
    let ran = |app: &&Name| {
        report
            .results
            .iter()
            .any(|r| plan.actions[r.id].app.as_ref() == Some(*app) && !matches!(r.outcome, Outcome::Skipped(_)))
    };
    out.into_iter()
        .filter(|(app, _)| ran(app))
        .map(|(app, (status, changes))| (app, (status, changes.join("; "))))
        .collect()
}

/// What each service of `app` runs on each of its servers.
fn ran(app: &App, inventories: &BTreeMap<Name, Inventory>) -> Vec<ReleaseService> {
    let mut out = Vec::new();
    for server in &app.servers {
        let inv = inventories.get(server);
        for svc in app.services.values() {
            let image = svc.image.to_string();
            let c = inv.and_then(|i| i.container(&app.container_name(&svc.name)));
            out.push(ReleaseService {
                server: server.to_string(),
                service: svc.name.to_string(),
                spec_hash: c.and_then(|c| c.label(labels::SPEC_HASH)).map(String::from),
                digest: c.and_then(|c| inv?.repo_digest(&c.image_id, &image)).map(String::from),
                image,
            });
        }
    }
    out
}

/// The document with each service's image replaced by the digest it ran
/// (the first server's, when servers differ); the services without a
/// digest, whose image stays as written.
fn pinned(doc: &Value, services: &[ReleaseService]) -> (Value, Vec<String>) {
    let mut digests: BTreeMap<&str, &str> = BTreeMap::new();
    let mut unpinned = BTreeSet::new();
    for s in services {
        match &s.digest {
            Some(d) => {
                digests.entry(s.service.as_str()).or_insert(d);
            }
            None => {
                unpinned.insert(s.service.clone());
            }
        }
    }
    unpinned.retain(|s| !digests.contains_key(s.as_str()));
    let mut doc = doc.clone();
    if let Some(map) = doc.get_mut("services").and_then(Value::as_object_mut) {
        for (name, svc) in map.iter_mut() {
            if let (Some(d), Some(obj)) = (digests.get(name.as_str()), svc.as_object_mut()) {
                obj.insert("image".into(), Value::String((*d).to_string()));
            }
        }
    } else if let (Some(obj), Some(d)) = (doc.as_object_mut(), digests.values().next()) {
        // The one-service form: the image is the document's.
        obj.insert("image".into(), Value::String((*d).to_string()));
    }
    (doc, unpinned.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(service: &str, digest: Option<&str>) -> ReleaseService {
        ReleaseService {
            server: "local".into(),
            service: service.into(),
            spec_hash: None,
            image: "x:1".into(),
            digest: digest.map(String::from),
        }
    }

    #[test]
    fn a_release_is_pinned_by_the_digests_it_ran() {
        let d = format!("reg:5000/x@sha256:{}", "a".repeat(64));
        let one = serde_json::json!({"kind": "App", "name": "web", "image": "reg:5000/x:1", "env": {"A": "1"}});
        let (doc, unpinned) = pinned(&one, &[svc("web", Some(&d))]);
        assert_eq!(doc["image"], d.as_str());
        assert_eq!(doc["env"]["A"], "1");
        assert!(unpinned.is_empty());
        let many = serde_json::json!({"kind": "App", "name": "shop", "services": {
            "web": {"image": "reg:5000/x:1"}, "db": {"image": "postgres:16"}}});
        let (doc, unpinned) = pinned(&many, &[svc("web", Some(&d)), svc("db", None)]);
        assert_eq!(doc["services"]["web"]["image"], d.as_str());
        assert_eq!(doc["services"]["db"]["image"], "postgres:16");
        assert_eq!(unpinned, vec!["db".to_string()]);
        // The pinned reference is one the manifests accept.
        assert!(crate::model::ImageRef::parse(&d).unwrap().digest.is_some());
    }

    #[test]
    fn the_revision_is_the_documents_content_hash() {
        let a = serde_json::json!({"kind": "App", "name": "web", "image": "x:1"});
        let b = serde_json::json!({"kind": "App", "name": "web", "image": "x:2"});
        assert_eq!(revision(&a), revision(&a.clone()));
        assert_ne!(revision(&a), revision(&b));
        assert_eq!(revision(&a).len(), 16);
    }
}
