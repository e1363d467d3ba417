//! Noticing change, for the front ends that act on it (`watch`) or tell
//! clients about it (the MCP server's resource subscriptions): a watch on the
//! manifest folder, and fingerprints of what a client can subscribe to (each
//! manifest file, each app as declared and as running, the fleet, each
//! proposal's status), which the caller compares with the previous ones.
//! Fingerprints are short hashes; nothing here keeps state between calls.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Engine;
use crate::error::{Error, IoOp, Result};
use crate::model::spec::hex;
use crate::model::{ContainerObs, Name, labels};
use crate::transport::engine::EngineApi;

/// A watch on a folder, alive while this value is.
pub struct FolderWatch(#[allow(dead_code)] notify::RecommendedWatcher);

/// Watches `dir` recursively and calls `on_change` for every created,
/// modified or removed path that can change the manifests (`relevant`).
/// The callback runs on notify's thread: it should only send a signal.
pub fn watch_folder(dir: &Path, on_change: impl Fn() + Send + 'static) -> Result<FolderWatch> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if !matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)) {
            return;
        }
        if ev.paths.iter().any(|p| relevant(p)) {
            tracing::debug!(paths = ?ev.paths, "file event");
            on_change();
        }
    })
    .map_err(|e| watch_failed(dir, e))?;
    watcher.watch(dir, RecursiveMode::Recursive).map_err(|e| watch_failed(dir, e))?;
    Ok(FolderWatch(watcher))
}

/// A folder that cannot be watched (the watch limit reached, the folder gone).
pub fn watch_failed(dir: &Path, e: notify::Error) -> Error {
    let source = match e.kind {
        notify::ErrorKind::Io(io) => io,
        _ => std::io::Error::other(e),
    };
    Error::Io { op: IoOp::Watch, path: dir.display().to_string(), source }
}

/// Whether a changed path can change the manifests (`.git` and editor
/// temporaries cannot).
pub fn relevant(p: &Path) -> bool {
    if p.components().any(|c| c.as_os_str() == ".git") {
        return false;
    }
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    !(name.ends_with('~') || name.ends_with(".swp") || name.ends_with(".tomo-tmp") || name.starts_with(".#"))
}

/// The manifests' fingerprints at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestSnapshot {
    /// Each manifest file (path relative to the folder) → a hash of its text.
    pub files: BTreeMap<String, String>,
    /// Each declared app → a hash of its declaration; empty while the folder
    /// does not load (`valid` false).
    pub apps: BTreeMap<String, String>,
    /// Whether the folder loaded.
    pub valid: bool,
}

/// What runs, per app, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// Each app asked for → a hash of its containers (name, id, state,
    /// health, image, per server) and of the servers that could not be listed.
    pub apps: BTreeMap<String, String>,
}

fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..12])
}

impl Engine {
    /// The fingerprints of the manifest files and the declared apps (no
    /// network; the vault is not opened).
    pub fn manifest_snapshot(&self) -> Result<ManifestSnapshot> {
        let sources = self.sources()?;
        let files =
            sources.relative.iter().zip(&sources.files).map(|(rel, f)| (rel.clone(), short_hash(&f.text))).collect();
        let desired = crate::manifest::load(
            &sources,
            &crate::manifest::LoadOptions {
                secrets: &crate::manifest::SecretCheck::Unavailable("not needed".into()),
                inline_check: crate::vault::check_inline_format,
            },
        )
        .desired;
        let apps = desired.as_ref().map_or_else(BTreeMap::new, |d| {
            d.apps
                .values()
                .map(|a| (a.name.to_string(), short_hash(&serde_json::to_string(a).unwrap_or_default())))
                .collect()
        });
        Ok(ManifestSnapshot { files, apps, valid: desired.is_some() })
    }

    /// The live fingerprints of `apps` (declared ones only; others are left
    /// out): one container listing per server they run on, in parallel.
    pub async fn live_snapshot(&self, apps: &[String]) -> Result<LiveSnapshot> {
        let desired = self.desired()?;
        let wanted: Vec<&crate::model::App> =
            apps.iter().filter_map(|a| Name::parse(a).ok()).filter_map(|n| desired.apps.get(&n)).collect();
        let mut servers: Vec<Name> = wanted.iter().flat_map(|a| a.servers.iter().cloned()).collect();
        servers.sort();
        servers.dedup();
        if servers.is_empty() {
            return Ok(LiveSnapshot::default());
        }
        let clients = self.docker_clients(&desired, servers).await?;
        let lists = clients.iter().map(|(server, client)| async move {
            let listed = match client {
                Ok(c) => c.inventory().await.map(|inv| inv.containers).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (server.clone(), listed)
        });
        let per_server = futures_util::future::join_all(lists).await;
        Ok(LiveSnapshot { apps: wanted.iter().map(|a| (a.name.to_string(), live_hash(a, &per_server))).collect() })
    }

    /// The status of each proposal in `ids` that exists (`pending`, `applied`, …).
    pub fn proposal_states(&self, ids: &[String]) -> Result<BTreeMap<String, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut out = BTreeMap::new();
        for id in ids {
            if let Some((p, _, _)) = self.proposal_row(id)? {
                out.insert(id.clone(), p.status.as_str().to_string());
            }
        }
        Ok(out)
    }

    /// Whether a proposal `id` exists (a store that does not exist yet holds none, and is not made).
    pub fn has_proposal(&self, id: &str) -> Result<bool> {
        if !self.config().data_dir.join("tomo.db").exists() {
            return Ok(false);
        }
        Ok(self.proposal_row(id)?.is_some())
    }
}

/// One app's containers on every server, as a hash.
fn live_hash(app: &crate::model::App, per_server: &[(Name, std::result::Result<Vec<ContainerObs>, String>)]) -> String {
    let mut text = String::new();
    for (server, listed) in per_server.iter().filter(|(s, _)| app.servers.contains(s)) {
        match listed {
            Ok(containers) => {
                let mut mine: Vec<String> = containers
                    .iter()
                    .filter(|c| c.ours && c.label(labels::APP) == Some(app.name.as_str()))
                    .map(|c| {
                        format!(
                            "{}|{}|{}|{}|{}",
                            c.name,
                            c.id,
                            c.state.as_str(),
                            c.health.map_or("none", |h| h.as_str()),
                            c.image
                        )
                    })
                    .collect();
                mine.sort();
                text.push_str(&format!("{server}: {}\n", mine.join(",")));
            }
            Err(e) => text.push_str(&format!("{server}: unreachable: {e}\n")),
        }
    }
    short_hash(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_git_and_editor_files() {
        assert!(relevant(Path::new("state/apps/web.yaml")));
        assert!(!relevant(Path::new("state/.git/index")));
        assert!(!relevant(Path::new("state/apps/.web.yaml.swp")));
        assert!(!relevant(Path::new("state/apps/web.yaml~")));
        assert!(!relevant(Path::new("state/apps/web.yaml.tomo-tmp")));
    }

    #[test]
    fn snapshots_follow_file_and_app_changes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("apps")).unwrap();
        let app =
            |env: &str| format!("kind: App\nname: web\nserver: local\nimage: nginx:1.27\nenv: {{A: \"{env}\"}}\n");
        std::fs::write(state.join("apps/web.yaml"), app("1")).unwrap();
        let args = crate::config::ConfigArgs { config: None, dir: Some(state.clone()) };
        let config = crate::config::Config::load(&args, &BTreeMap::new()).unwrap();
        let engine = Engine::new(config);
        let a = engine.manifest_snapshot().unwrap();
        assert!(a.valid);
        assert_eq!(a.files.keys().collect::<Vec<_>>(), ["apps/web.yaml"]);
        assert!(a.apps.contains_key("web"));
        std::fs::write(state.join("apps/web.yaml"), app("2")).unwrap();
        let b = engine.manifest_snapshot().unwrap();
        assert_ne!(a.files["apps/web.yaml"], b.files["apps/web.yaml"]);
        assert_ne!(a.apps["web"], b.apps["web"]);
        std::fs::write(state.join("apps/web.yaml"), "kind: App\nname: [\n").unwrap();
        let c = engine.manifest_snapshot().unwrap();
        assert!(!c.valid && c.apps.is_empty());
        assert_eq!(c.files.len(), 1);
    }
}
