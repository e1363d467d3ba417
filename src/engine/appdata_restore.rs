//! Restoring an app's data from an archive: the whole archive is read and
//! checked first (passphrase, every member's checksum, the contents list),
//! and nothing is touched when any of it fails. Then the app's running
//! containers on each server are stopped (dependents first), each volume
//! (created with tomo's labels when missing) and bind folder has its
//! contents replaced by the member's tar, and the containers are started
//! again, whatever the outcome. `--to-server` puts the data on another
//! declared server than the one it was read from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::Engine;
use super::appdata::{data_error, data_of, stop_all, stop_list};
use super::batchpipe::{self, BatchSource};
use super::ops::{AppContainer, containers_of};
use crate::backup::{ArchiveReader, BackupError, MemberKind, MemberMeta, PinnedArchive, Unlocked};
use crate::error::{Error, Result};
use crate::model::secret::SecretString;
use crate::model::{App, Desired, Name};
use crate::transport::datastream::TarIn;
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;

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
    /// The fingerprint of the archive read (`backup::fingerprint`).
    pub archive: String,
    /// How long reading and checking the whole archive took (nothing was
    /// touched meanwhile).
    pub check_ms: u64,
    pub downtime_ms: Option<u64>,
}

/// A restore's targets: each member's target server.
struct Targets {
    items: Vec<RestoreItem>,
    by_member: BTreeMap<String, RestoreItem>,
}

impl Engine {
    /// Restores the data of `app` from the archive `file` (see the module).
    pub async fn restore_app_data(
        &self,
        file: &Path,
        passphrase: &SecretString,
        app_name: &str,
        to_server: Option<&str>,
        expect: Option<&str>,
        dry_run: bool,
    ) -> Result<AppRestoreReport> {
        let desired = self.desired()?;
        let app = self.app(&desired, app_name)?;
        // The servers are connected and the copies opened while the archive
        // is checked; nothing on a server is touched before it passed.
        let checking = check(file.to_path_buf(), passphrase.clone(), expect.map(str::to_string));
        let ahead = std::pin::pin!(self.open_ahead(&desired, &app, to_server, dry_run));
        let (checked, mut ahead) = match futures_util::future::select(std::pin::pin!(checking), ahead).await {
            futures_util::future::Either::Left((checked, ahead)) => (checked, ahead.await),
            futures_util::future::Either::Right((ahead, checking)) => (checking.await, ahead),
        };
        let Checked { pinned, contents, key, archive, check_ms } = match checked {
            Ok(c) => c,
            Err(Unchecked::Changed) => return Err(BackupError::Changed(file.display().to_string()).into()),
            Err(Unchecked::Failed(e)) => return Err(data_error(app_name, to_server.unwrap_or("-"), e)),
        };
        let targets = targets(app_name, to_server, contents.members.iter().map(|e| (&e.meta, e.size)))?;
        let servers: Vec<Name> = {
            let mut s: Vec<Name> = targets.items.iter().filter_map(|i| Name::parse(&i.server).ok()).collect();
            s.dedup();
            s
        };
        for s in &servers {
            if !desired.servers.contains_key(s) {
                return Err(data_error(app_name, s.as_str(), "no such server is declared"));
            }
            // Not tried again: its connection just failed.
            if let Some(e) = ahead.unreachable.remove(s.as_str()) {
                return Err(data_error(app_name, s.as_str(), e));
            }
        }
        let clients = self.docker_clients(&desired, servers).await?;
        let mut stop: BTreeMap<String, (DockerClient, Vec<AppContainer>)> = BTreeMap::new();
        for ((server, client), (per, _)) in clients.iter().zip(containers_of(&app, &clients).await) {
            let client = match client {
                Ok(c) => c.clone(),
                Err(e) => return Err(data_error(app_name, server.as_str(), e.to_string())),
            };
            let list =
                per.result.ok_or_else(|| data_error(app_name, server.as_str(), per.error.unwrap_or_default()))?;
            stop.insert(server.to_string(), (client, stop_list(&app, &list)));
        }
        let mut report = AppRestoreReport {
            app: app_name.to_string(),
            items: targets.items.clone(),
            stopped: stop.values().flat_map(|(_, l)| l.iter().map(|c| c.container.clone())).collect(),
            dry_run,
            archive,
            check_ms,
            downtime_ms: None,
        };
        if dry_run {
            return Ok(report);
        }
        let down = Instant::now();
        let mut result = Ok(());
        for (server, (client, list)) in &stop {
            if let Err(e) = stop_all(client, list).await {
                result = Err(data_error(app_name, server, e));
                break;
            }
        }
        if result.is_ok() {
            let clients: BTreeMap<String, DockerClient> =
                stop.iter().map(|(s, (c, _))| (s.clone(), c.clone())).collect();
            result = self.stream_back(&pinned, key, app_name, &targets, &clients, &mut ahead.opened).await;
        }
        for (server, (client, list)) in &stop {
            let name = Name::parse(server).map_err(|e| data_error(app_name, server, e))?;
            if let Err(e) = self.start_again(&desired, &name, client, list).await
                && result.is_ok()
            {
                result = Err(data_error(app_name, server, e));
            }
        }
        report.downtime_ms = Some(down.elapsed().as_millis() as u64);
        result.map(|_| report)
    }

    /// Reads the archive again (the file verified, with the key its reading
    /// derived: every tag is checked again, the members are not hashed
    /// again) and streams each chosen member into its target.
    async fn stream_back(
        &self,
        pinned: &PinnedArchive,
        key: Unlocked,
        app: &str,
        targets: &Targets,
        clients: &BTreeMap<String, DockerClient>,
        opened: &mut Opened,
    ) -> Result<()> {
        let (tx, rx) = tokio::sync::mpsc::channel::<(MemberMeta, BatchSource)>(1);
        let wanted: Vec<String> = targets.by_member.keys().cloned().collect();
        let input = pinned.reading();
        let reader = tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
            let archive =
                ArchiveReader::reopen_verified(std::io::BufReader::new(input), &key).map_err(|e| e.to_string())?;
            archive
                .for_each_member(|meta, data| {
                    if !wanted.contains(&meta.name) {
                        return Ok(());
                    }
                    let (filler, source) = batchpipe::pipe_back();
                    if tx.blocking_send((meta.clone(), source)).is_err() {
                        return Err(std::io::Error::other("the restore stopped").into());
                    }
                    filler.copy_from(data)?;
                    Ok(())
                })
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        // `rx` is the writing's own: when a copy fails, it is dropped with
        // what is queued in it, and the reading stops instead of waiting.
        let writing = async {
            let mut rx = rx;
            while let Some((meta, mut stream)) = rx.recv().await {
                let Some(item) = targets.by_member.get(&meta.name) else { continue };
                let Some(client) = clients.get(&item.server) else { continue };
                let path = target_path(client, app, item).await?;
                let tar = match opened.remove(&(item.server.clone(), path.clone())) {
                    Some(tar) => tar,
                    None => client.host_fs().open_tar_in(&path).await.map_err(|e| data_error(app, &item.server, e))?,
                };
                tar.run(&mut stream).await.map_err(|e| data_error(app, &item.server, e))?;
            }
            Ok::<(), Error>(())
        };
        let (read, written) = tokio::join!(reader, writing);
        written?;
        read.map_err(|e| data_error(app, "-", e.to_string()))?.map_err(|e| data_error(app, "-", e))
    }
}

impl Engine {
    /// Connects to the servers and (unless `dry_run`) opens ahead
    /// (`HostFs::open_tar_in`) the copies a restore of `app` is expected to
    /// make: into each of its volumes (those that exist) and bind folders on
    /// each of its servers (`to_server` instead), at most `AHEAD` in all. Best effort: a copy that is not opened here is opened,
    /// and its failure reported, in its turn.
    async fn open_ahead(&self, desired: &Desired, app: &App, to_server: Option<&str>, dry_run: bool) -> Ahead {
        let servers: Vec<Name> = match to_server {
            Some(s) => Name::parse(s).ok().into_iter().collect(),
            None => app.servers.clone(),
        };
        let servers = servers.into_iter().filter(|s| desired.servers.contains_key(s)).collect();
        let mut ahead = Ahead::default();
        let Ok(clients) = self.docker_clients(desired, servers).await else { return ahead };
        let (volumes, binds) = data_of(app);
        for (server, client) in clients {
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    ahead.unreachable.insert(server.to_string(), e.to_string());
                    continue;
                }
            };
            if dry_run {
                continue;
            }
            let mut paths = Vec::new();
            for v in &volumes {
                if let Ok(Some(p)) = client.volume_mountpoint(v).await {
                    paths.push(p);
                }
            }
            paths.extend(binds.iter().cloned());
            for path in paths {
                if ahead.opened.len() >= AHEAD {
                    break;
                }
                if let Ok(tar) = client.host_fs().open_tar_in(&path).await {
                    ahead.opened.insert((server.to_string(), path), tar);
                }
            }
        }
        ahead
    }
}

/// What a restore prepares while the archive is checked.
#[derive(Default)]
struct Ahead {
    /// Copies opened ahead, by server and path.
    opened: Opened,
    /// The servers that could not be connected, and why.
    unreachable: BTreeMap<String, String>,
}

/// Copies opened ahead, by server and path.
type Opened = BTreeMap<(String, String), TarIn>;

/// The most copies opened ahead (each a session of its server's connection:
/// sshd allows 10 by default).
const AHEAD: usize = 4;

/// Where a member's tar goes on its server: a volume's mountpoint (the
/// volume created, labelled as tomo's, when missing) or the bind folder.
async fn target_path(client: &DockerClient, app: &str, item: &RestoreItem) -> Result<String> {
    if item.kind == MemberKind::Bind {
        return Ok(item.target.clone());
    }
    let err = |e: String| data_error(app, &item.server, e);
    if let Some(p) = client.volume_mountpoint(&item.target).await.map_err(|e| err(e.to_string()))? {
        return Ok(p);
    }
    client.create_volume_once(&item.target, Some(app), &item.server).await.map_err(|e| err(e.to_string()))?;
    client
        .volume_mountpoint(&item.target)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("volume {} is missing after it was created", item.target)))
}

/// An archive read whole and checked.
struct Checked {
    /// The file read: checked and streamed from one opened file, what is
    /// streamed is what was checked, whatever is renamed onto its path.
    pinned: PinnedArchive,
    contents: crate::backup::Contents,
    key: Unlocked,
    /// Its fingerprint (`backup::fingerprint`).
    archive: String,
    /// The milliseconds the check took.
    check_ms: u64,
}

/// Why an archive was not checked.
enum Unchecked {
    /// It is another archive than the fingerprint expected.
    Changed,
    Failed(String),
}

/// Opens `file` and reads it whole, checking everything; with `expect`,
/// only when its fingerprint (known from its envelope, before the rest is
/// read) is that one.
async fn check(
    file: PathBuf,
    passphrase: SecretString,
    expect: Option<String>,
) -> std::result::Result<Checked, Unchecked> {
    let failed = |e: String| Unchecked::Failed(e);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let pinned = PinnedArchive::open(&file).map_err(|e| failed(format!("open {}: {e}", file.display())))?;
        let input = std::io::BufReader::new(pinned.reading());
        let archive = ArchiveReader::open_pipelined(input, &passphrase).map_err(|e| failed(e.to_string()))?;
        let fingerprint = archive.fingerprint().to_string();
        if expect.is_some_and(|want| want != fingerprint) {
            return Err(Unchecked::Changed);
        }
        let (contents, key) = archive.verify_keeping_key().map_err(|e| failed(e.to_string()))?;
        let check_ms = started.elapsed().as_millis() as u64;
        Ok(Checked { pinned, contents, key, archive: fingerprint, check_ms })
    })
    .await
    .map_err(|e| failed(e.to_string()))?
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
    let by_member = items.iter().map(|i| (i.member.clone(), i.clone())).collect();
    Ok(Targets { items, by_member })
}
