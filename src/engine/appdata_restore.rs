//! Restoring an app's data from an archive, in one reading of it: while
//! the whole archive is read and checked (passphrase, every tag, every
//! member's checksum, the contents list), each of the app's volumes
//! (created with tomo's labels when missing) and bind folders gets its
//! member's tar extracted into a new folder beside it, on its server; the
//! app keeps running and its data is not touched. When any check or copy
//! fails, the staged folders (and a volume created for them) are removed,
//! and nothing else changed. Then the app's running containers on each
//! server are stopped (dependents first), each target's contents are moved
//! aside and the staged ones moved in (renames: the downtime does not grow
//! with the data), the containers are started again whatever the outcome,
//! and the replaced data is removed. `--to-server` puts the data on another
//! declared server than the one it was read from. A dry run reads and
//! checks the whole archive and says what would be replaced and stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::Engine;
use super::appdata::{PIPE, data_error, stop_all, stop_list};
use super::ops::{AppContainer, containers_of};
use crate::backup::{ArchiveReader, MemberKind, MemberMeta};
use crate::error::Result;
use crate::model::secret::SecretString;
use crate::model::{App, Desired, Name};
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;
use crate::transport::hostfs::HostFs;

/// One volume or bind folder a restore replaces.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RestoreItem {
    pub member: String,
    /// The server it goes to.
    pub server: String,
    pub kind: MemberKind,
    /// The volume's Docker name or the bind folder's path.
    pub target: String,
    /// Bytes of tar stream.
    pub size: u64,
}

/// What a restore of app data replaces (and, when done, how long the app was down).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AppRestoreReport {
    pub app: String,
    pub items: Vec<RestoreItem>,
    /// The running containers stopped during the restore, per server.
    pub stopped: Vec<String>,
    pub dry_run: bool,
    pub downtime_ms: Option<u64>,
}

/// A restore's targets: each member's target server.
struct Targets {
    items: Vec<RestoreItem>,
}

impl Engine {
    /// Restores the data of `app` from the archive `file` (see the module).
    pub async fn restore_app_data(
        &self,
        file: &Path,
        passphrase: &SecretString,
        app_name: &str,
        to_server: Option<&str>,
        dry_run: bool,
    ) -> Result<AppRestoreReport> {
        let desired = self.desired()?;
        let app = self.app(&desired, app_name)?;
        if dry_run {
            let contents = verify(file.to_path_buf(), passphrase.clone())
                .await
                .map_err(|e| data_error(app_name, to_server.unwrap_or("-"), e))?;
            let targets = targets(app_name, to_server, contents.members.iter().map(|e| (&e.meta, e.size)))?;
            let stop = self.stop_lists(&desired, &app, &targets).await?;
            return Ok(report(app_name, &targets, &stop, true));
        }
        let staged = self.stage(file, passphrase, &desired, app_name, to_server).await?;
        let stop = match self.stop_lists(&desired, &app, &staged.targets).await {
            Ok(stop) => stop,
            Err(e) => {
                staged.discard(0).await;
                return Err(e);
            }
        };
        let mut report = report(app_name, &staged.targets, &stop, false);
        let down = Instant::now();
        let mut result = Ok(());
        for (server, (client, list)) in &stop {
            if let Err(e) = stop_all(client, list).await {
                result = Err(data_error(app_name, server, e));
                break;
            }
        }
        // Items whose volume (if created for the restore) now holds data: the
        // swapped ones and one whose swap failed half way.
        let (mut replaced, mut touched) = (Vec::new(), 0);
        for item in &staged.items {
            if result.is_err() {
                break;
            }
            touched += 1;
            let aside = beside(&item.target, "replaced");
            match item.fs.swap_in(&item.target, &item.staging, &aside).await {
                Ok(()) => replaced.push((item.fs.clone(), aside)),
                Err(e) => {
                    let kept = format!("{e}; what {} held is in {aside}", item.target);
                    result = Err(data_error(app_name, &item.server, kept));
                }
            }
        }
        let swapped = result.is_ok();
        // The app starts while the replaced data is removed.
        let starting = async {
            let mut failed = None;
            for (server, (client, list)) in &stop {
                let started = match Name::parse(server) {
                    Ok(name) => self.start_again(&desired, &name, client, list).await,
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = started {
                    failed.get_or_insert(data_error(app_name, server, e));
                }
            }
            (failed, down.elapsed())
        };
        let removing = async {
            for (fs, aside) in replaced.iter().filter(|_| swapped) {
                if let Err(e) = fs.remove_tree(aside).await {
                    tracing::warn!(app = app_name, folder = %aside, error = %e, "the replaced data was not removed");
                }
            }
        };
        let ((failed, downtime), ()) = tokio::join!(starting, removing);
        report.downtime_ms = Some(downtime.as_millis() as u64);
        if !swapped {
            staged.discard(touched).await;
        }
        if let (Some(e), true) = (failed, result.is_ok()) {
            result = Err(e);
        }
        result.map(|_| report)
    }

    /// The running containers of `app` to stop on each server of `targets`.
    async fn stop_lists(&self, desired: &Desired, app: &App, targets: &Targets) -> Result<StopLists> {
        let mut servers: Vec<Name> = targets.items.iter().filter_map(|i| Name::parse(&i.server).ok()).collect();
        servers.dedup();
        for s in &servers {
            if !desired.servers.contains_key(s) {
                return Err(data_error(app.name.as_str(), s.as_str(), "no such server is declared"));
            }
        }
        let clients = self.docker_clients(desired, servers).await?;
        let mut stop = StopLists::new();
        for ((server, client), (per, _)) in clients.iter().zip(containers_of(app, &clients).await) {
            let client = match client {
                Ok(c) => c.clone(),
                Err(e) => return Err(data_error(app.name.as_str(), server.as_str(), e.to_string())),
            };
            let list = per
                .result
                .ok_or_else(|| data_error(app.name.as_str(), server.as_str(), per.error.unwrap_or_default()))?;
            stop.insert(server.to_string(), (client, stop_list(app, &list)));
        }
        Ok(stop)
    }

    /// Reads the whole archive once, checking every tag, checksum and the
    /// contents list, and meanwhile streams each of the app's members into
    /// a new folder beside its target on its server. The targets
    /// themselves are not touched; when anything fails, what was staged
    /// (and a volume created for it) is removed.
    async fn stage(
        &self,
        file: &Path,
        passphrase: &SecretString,
        desired: &Desired,
        app: &str,
        to_server: Option<&str>,
    ) -> Result<Staged> {
        let (tx, rx) = tokio::sync::mpsc::channel::<(MemberMeta, tokio::io::DuplexStream)>(1);
        let reader = read_members(file.to_path_buf(), passphrase.clone(), app.to_string(), tx);
        let mut staged = Staged { targets: Targets { items: Vec::new() }, items: Vec::new() };
        let writing = self.stage_members(desired, app, to_server, rx, &mut staged.items);
        let (read, written) = tokio::join!(reader, writing);
        let checked = match (read, written) {
            (Ok(contents), Ok(())) => {
                targets(app, to_server, contents.members.iter().map(|e| (&e.meta, e.size))).map(|t| (contents, t))
            }
            (Err(e), _) => Err(data_error(app, to_server.unwrap_or("-"), e)),
            (_, Err(e)) => Err(e),
        };
        match checked {
            Ok((_, targets)) => {
                staged.targets = targets;
                Ok(staged)
            }
            Err(e) => {
                staged.discard(0).await;
                Err(e)
            }
        }
    }

    /// The async side of `stage`: each member that arrives goes into a new
    /// folder beside its target.
    async fn stage_members(
        &self,
        desired: &Desired,
        app: &str,
        to_server: Option<&str>,
        mut rx: tokio::sync::mpsc::Receiver<(MemberMeta, tokio::io::DuplexStream)>,
        items: &mut Vec<StagedItem>,
    ) -> Result<()> {
        let mut clients: BTreeMap<String, DockerClient> = BTreeMap::new();
        while let Some((meta, mut stream)) = rx.recv().await {
            let Some(item) = targets(app, to_server, std::iter::once((&meta, 0)))?.items.into_iter().next() else {
                continue;
            };
            let client = match clients.get(&item.server) {
                Some(c) => c.clone(),
                None => {
                    let c = self.client_of(desired, app, &item.server).await?;
                    clients.insert(item.server.clone(), c.clone());
                    c
                }
            };
            let (target, created_volume) = target_path(&client, app, &item).await?;
            let staging = beside(&target, "restoring");
            items.push(StagedItem {
                server: item.server.clone(),
                fs: client.host_fs(),
                target,
                staging: staging.clone(),
                created_volume: created_volume.then(|| (client.clone(), item.target.clone())),
            });
            client.host_fs().tar_in(&staging, &mut stream).await.map_err(|e| data_error(app, &item.server, e))?;
        }
        Ok(())
    }

    /// The Docker client of a declared server.
    async fn client_of(&self, desired: &Desired, app: &str, server: &str) -> Result<DockerClient> {
        let name = Name::parse(server)
            .ok()
            .filter(|n| desired.servers.contains_key(n))
            .ok_or_else(|| data_error(app, server, "no such server is declared"))?;
        let mut clients = self.docker_clients(desired, vec![name]).await?;
        match clients.pop() {
            Some((_, Ok(c))) => Ok(c),
            Some((_, Err(e))) => Err(data_error(app, server, e.to_string())),
            None => Err(data_error(app, server, "no connection")),
        }
    }
}

/// Each server's Docker client and the running containers to stop there.
type StopLists = BTreeMap<String, (DockerClient, Vec<AppContainer>)>;

fn report(app: &str, targets: &Targets, stop: &StopLists, dry_run: bool) -> AppRestoreReport {
    AppRestoreReport {
        app: app.to_string(),
        items: targets.items.clone(),
        stopped: stop.values().flat_map(|(_, l)| l.iter().map(|c| c.container.clone())).collect(),
        dry_run,
        downtime_ms: None,
    }
}

/// What `stage` put on the servers.
struct Staged {
    targets: Targets,
    items: Vec<StagedItem>,
}

struct StagedItem {
    server: String,
    fs: HostFs,
    /// The folder the data goes to: a volume's mountpoint or a bind folder.
    target: String,
    /// The new folder beside it holding the restored data.
    staging: String,
    /// The volume created for the restore (it was missing), with its client.
    created_volume: Option<(DockerClient, String)>,
}

impl Staged {
    /// Removes what was staged, and the volumes created for it except
    /// those of the first `touched` items (data was moved into them).
    async fn discard(&self, touched: usize) {
        for (i, item) in self.items.iter().enumerate() {
            if let Err(e) = item.fs.remove_tree(&item.staging).await {
                tracing::warn!(folder = %item.staging, error = %e, "a staged restore was not removed");
            }
            if let Some((client, volume)) = item.created_volume.as_ref().filter(|_| i >= touched)
                && let Err(e) = client.remove_volume(volume).await
            {
                tracing::warn!(volume = %volume, error = %e, "a volume created for the restore was not removed");
            }
        }
    }
}

/// A new folder's path beside `target` (same parent, so a rename moves it
/// in): `.tomo-<what>-<name>-<unique>`.
fn beside(target: &str, what: &str) -> String {
    let trimmed = target.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    let unique =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{parent}/.tomo-{what}-{name}-{unique:x}-{}", std::process::id())
}

/// The reading side of `stage`, on a blocking thread: the whole archive,
/// checked; each of `app`'s members is sent, with a pipe its data goes into.
async fn read_members(
    file: PathBuf,
    passphrase: SecretString,
    app: String,
    tx: tokio::sync::mpsc::Sender<(MemberMeta, tokio::io::DuplexStream)>,
) -> std::result::Result<crate::backup::Contents, String> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let input = std::fs::File::open(&file).map_err(|e| format!("open {}: {e}", file.display()))?;
        let archive =
            ArchiveReader::open_pipelined(std::io::BufReader::new(input), &passphrase).map_err(|e| e.to_string())?;
        archive
            .for_each_member(|meta, data| {
                if meta.app.as_deref() != Some(app.as_str())
                    || !matches!(meta.kind, MemberKind::Volume | MemberKind::Bind)
                {
                    return Ok(());
                }
                let (mut ours, theirs) = tokio::io::duplex(PIPE);
                if tx.blocking_send((meta.clone(), theirs)).is_err() {
                    return Err(std::io::Error::other("the restore stopped").into());
                }
                let mut sink = tokio_util::io::SyncIoBridge::new_with_handle(&mut ours, handle.clone());
                super::appdata::copy_large(data, &mut sink)?;
                sink.shutdown()?;
                Ok(())
            })
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Where a member's tar goes on its server: a volume's mountpoint (the
/// volume created, labelled as tomo's, when missing: then `true`) or the
/// bind folder.
async fn target_path(client: &DockerClient, app: &str, item: &RestoreItem) -> Result<(String, bool)> {
    if item.kind == MemberKind::Bind {
        return Ok((item.target.clone(), false));
    }
    let err = |e: String| data_error(app, &item.server, e);
    if let Some(p) = client.volume_mountpoint(&item.target).await.map_err(|e| err(e.to_string()))? {
        return Ok((p, false));
    }
    client.create_volume_once(&item.target, Some(app), &item.server).await.map_err(|e| err(e.to_string()))?;
    let path = client
        .volume_mountpoint(&item.target)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("volume {} is missing after it was created", item.target)))?;
    Ok((path, true))
}

/// Reads the whole archive, checking everything; its contents list.
async fn verify(file: PathBuf, passphrase: SecretString) -> std::result::Result<crate::backup::Contents, String> {
    tokio::task::spawn_blocking(move || {
        let input = std::fs::File::open(&file).map_err(|e| format!("open {}: {e}", file.display()))?;
        let archive =
            ArchiveReader::open_pipelined(std::io::BufReader::new(input), &passphrase).map_err(|e| e.to_string())?;
        archive.verify_all().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The app's data members of the archive, each with its target server.
fn targets<'a>(
    app: &str,
    to_server: Option<&str>,
    members: impl Iterator<Item = (&'a MemberMeta, u64)>,
) -> Result<Targets> {
    let mut items = Vec::new();
    for (meta, size) in members {
        if meta.app.as_deref() != Some(app) || !matches!(meta.kind, MemberKind::Volume | MemberKind::Bind) {
            continue;
        }
        let (Some(from), Some(target)) = (meta.server.as_deref(), meta.path.as_deref()) else {
            return Err(data_error(app, "-", format!("member {} names no server or path", meta.name)));
        };
        items.push(RestoreItem {
            member: meta.name.clone(),
            server: to_server.unwrap_or(from).to_string(),
            kind: meta.kind,
            target: target.to_string(),
            size,
        });
    }
    if items.is_empty() {
        return Err(data_error(app, to_server.unwrap_or("-"), "the archive holds no data of this app"));
    }
    items.sort_by(|a, b| (&a.server, &a.member).cmp(&(&b.server, &b.member)));
    Ok(Targets { items })
}
