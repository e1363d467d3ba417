//! The apps' data in backups: each named volume and bind folder of an app,
//! on each of its servers, streamed as a tar member of the archive
//! (`app/<app>/<server>/volume/<name>.tar`, `app/<app>/<server>/bind<path>.tar`).
//! The tar is read on the server (`transport::datastream`) and written into
//! the archive on a blocking thread, through a bounded pipe (`batchpipe`): a volume is
//! never held whole in memory or staged on any disk.
//!
//! Consistency per app (`DataMode`): `stop` stops the app's running
//! containers on the server (dependents first), copies, and starts them
//! again in dependency order whatever the copy's outcome; `live` copies
//! while the app runs. The mode is the request's (`--mode`), else the app's
//! own `backup.mode`, else the request's fallback (`Settings.backup.mode`,
//! else live). An app's `backup.pre` hook runs first (`appdata_hook`).
//! Restoring is `appdata_restore`.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Engine;
use super::ops::{AppContainer, containers_of};
use crate::backup::{ArchiveWriter, MemberKind, MemberMeta};
use crate::error::{Error, Result};
use crate::model::{App, Desired, MountSource, Name};
use crate::transport::datastream::TarOut;
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;
use crate::transport::hostfs::HostFs;

/// How long starting an app again after a failed copy keeps trying to
/// reach its server.
const RESTART_WAIT: Duration = Duration::from_secs(60);

/// How long a container may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::model::backup::DataMode;

/// What one app's data on one server became in the archive.
#[derive(Debug, Clone, Serialize)]
pub struct AppDataReport {
    pub app: String,
    pub server: String,
    /// Member names and their sizes in bytes (tar streams).
    pub members: Vec<(String, u64)>,
    /// The containers stopped for the copy, in the order they were stopped.
    pub stopped: Vec<String>,
    /// How long the app was down (stop mode), in milliseconds.
    pub downtime_ms: Option<u64>,
    pub mode: DataMode,
    /// How long its `pre` hook ran, in milliseconds (when it has one).
    pub pre_ms: Option<u64>,
}

/// The mode `app`'s data is copied in: `given` (a request's `--mode`), else
/// the app's own `backup.mode`, else `fallback`.
pub fn mode_of(app: &App, given: Option<DataMode>, fallback: DataMode) -> DataMode {
    given.or(app.backup.as_ref().and_then(|b| b.mode)).unwrap_or(fallback)
}

/// The Docker names of an app's named volumes and the host folders it bind
/// mounts writable (read-only binds are the server's, not the app's data).
pub fn data_of(app: &App) -> (Vec<String>, Vec<String>) {
    let (mut volumes, mut binds) = (BTreeSet::new(), BTreeSet::new());
    for service in app.services.values() {
        for m in &service.mounts {
            match &m.source {
                MountSource::Volume(v) => {
                    volumes.insert(crate::model::spec::volume_name(app, v));
                }
                MountSource::Bind(p) if !m.read_only => {
                    binds.insert(p.trim_end_matches('/').to_string());
                }
                _ => {}
            }
        }
    }
    (volumes.into_iter().collect(), binds.into_iter().filter(|p| !p.is_empty()).collect())
}

/// The archive member of a volume or bind folder.
pub fn member_name(app: &str, server: &str, kind: MemberKind, name: &str) -> String {
    match kind {
        MemberKind::Bind => format!("app/{app}/{server}/bind{name}.tar"),
        _ => format!("app/{app}/{server}/volume/{name}.tar"),
    }
}

/// The app's services in start order (each after those it depends on);
/// stopping goes the other way.
pub fn start_order(app: &App) -> Vec<Name> {
    fn visit(app: &App, s: &Name, seen: &mut BTreeSet<Name>, out: &mut Vec<Name>) {
        if !seen.insert(s.clone()) {
            return;
        }
        if let Some(service) = app.services.get(s) {
            for dep in service.depends_on.keys() {
                visit(app, dep, seen, out);
            }
        }
        out.push(s.clone());
    }
    let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
    for s in app.services.keys() {
        visit(app, s, &mut seen, &mut out);
    }
    out
}

/// The running containers of `containers`, in stop order (dependents first).
pub(super) fn stop_list(app: &App, containers: &[AppContainer]) -> Vec<AppContainer> {
    let order = start_order(app);
    let rank = |c: &AppContainer| order.iter().position(|s| s.as_str() == c.service).unwrap_or(usize::MAX);
    let mut running: Vec<AppContainer> = containers.iter().filter(|c| c.state == "running").cloned().collect();
    running.sort_by_key(|c| std::cmp::Reverse(rank(c)));
    running
}

pub(super) fn data_error(app: &str, server: &str, problem: impl Into<String>) -> Error {
    Error::AppData { app: app.to_string(), server: server.to_string(), problem: problem.into() }
}

impl Engine {
    /// Adds the data of `apps` on each of their servers to `archive`, each
    /// app in its mode (`mode_of`) after its `pre` hook. Every copy or hook
    /// failing fails the whole (the archive is then unusable), after the app
    /// has been started again.
    pub async fn backup_app_data<W: Write + Send + 'static>(
        &self,
        apps: &[String],
        given: Option<DataMode>,
        fallback: DataMode,
        mut archive: ArchiveWriter<W>,
    ) -> Result<(ArchiveWriter<W>, Vec<AppDataReport>)> {
        let desired = self.desired()?;
        let mut reports = Vec::new();
        for name in apps {
            let app = self.app(&desired, name)?;
            let mode = mode_of(&app, given, fallback);
            let clients = self.docker_clients(&desired, app.servers.clone()).await?;
            let found = containers_of(&app, &clients).await;
            for ((server, client), (per, _)) in clients.into_iter().zip(found) {
                let client = client.map_err(|e| Error::Transport { server: server.to_string(), source: e })?;
                let containers = match (per.result, per.error) {
                    (Some(c), _) => c,
                    (None, e) => return Err(data_error(name, server.as_str(), e.unwrap_or_default())),
                };
                let pre_ms = self.run_pre_hook(&app, server.as_str(), &client, &containers).await?;
                let stop = if mode == DataMode::Stop { stop_list(&app, &containers) } else { Vec::new() };
                let (next, report) = self.copy_app_server(&desired, &app, &server, &client, &stop, archive).await?;
                archive = next;
                reports.push(AppDataReport { mode, pre_ms, ..report });
            }
        }
        Ok((archive, reports))
    }

    /// One app's data on one server: stops `stop`, copies, starts them again.
    async fn copy_app_server<W: Write + Send + 'static>(
        &self,
        desired: &Desired,
        app: &App,
        server: &Name,
        client: &DockerClient,
        stop: &[AppContainer],
        archive: ArchiveWriter<W>,
    ) -> Result<(ArchiveWriter<W>, AppDataReport)> {
        let (app_name, server_name) = (app.name.as_str(), server.as_str());
        let fs = client.host_fs();
        let (volumes, binds) = data_of(app);
        let mut items = Vec::new();
        for v in volumes {
            match client.volume_mountpoint(&v).await {
                Ok(Some(path)) => items.push((MemberKind::Volume, v, path)),
                Ok(None) => {
                    tracing::info!(app = app_name, volume = %v, "no such volume on the server; nothing to copy")
                }
                Err(e) => return Err(data_error(app_name, server_name, e.to_string())),
            }
        }
        items.extend(binds.into_iter().map(|p| (MemberKind::Bind, p.clone(), p)));
        let mut report = AppDataReport {
            app: app_name.to_string(),
            server: server_name.to_string(),
            members: Vec::new(),
            stopped: stop.iter().map(|c| c.container.clone()).collect(),
            downtime_ms: None,
            mode: DataMode::Live,
            pre_ms: None,
        };
        let ahead = Ahead::open(app_name, fs, items).await.map_err(|e| data_error(app_name, server_name, e))?;
        let down = Instant::now();
        let stopped = stop_all(client, stop).await;
        let copied = match &stopped {
            Ok(()) => copy_items(server_name, ahead, archive).await,
            Err(e) => Err(e.clone()),
        };
        let started = self.start_again(desired, server, client, stop).await;
        if !stop.is_empty() {
            report.downtime_ms = Some(down.elapsed().as_millis() as u64);
        }
        let (archive, members) = copied.map_err(|e| data_error(app_name, server_name, e))?;
        started.map_err(|e| data_error(app_name, server_name, e))?;
        report.members = members;
        Ok((archive, report))
    }
}

impl Engine {
    /// Starts `list` again on `server`; when its connection was lost (the
    /// copy failed for it), connects again, for up to `RESTART_WAIT`.
    pub(super) async fn start_again(
        &self,
        desired: &Desired,
        server: &Name,
        client: &DockerClient,
        list: &[AppContainer],
    ) -> std::result::Result<(), String> {
        let mut last = match start_all(client, list).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let until = Instant::now() + RESTART_WAIT;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.forget(server);
            let fresh = self.docker_clients(desired, vec![server.clone()]).await;
            let client = match fresh.map(|v| v.into_iter().next()) {
                Ok(Some((_, Ok(c)))) => c,
                Ok(Some((_, Err(e)))) => {
                    last = e.to_string();
                    continue;
                }
                Ok(None) => return Err(last),
                Err(e) => return Err(e.to_string()),
            };
            match start_all(&client, list).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        tracing::error!(server = %server, error = %last, "the app's containers could not be started again");
        Err(last)
    }
}

/// Stops `list` in order; the first failure ends it (what stopped is started again by the caller).
pub(super) async fn stop_all(client: &DockerClient, list: &[AppContainer]) -> std::result::Result<(), String> {
    for c in list {
        client.stop(&c.id, STOP_TIMEOUT).await.map_err(|e| format!("stop {}: {e}", c.container))?;
    }
    Ok(())
}

/// Starts `list` in reverse (dependencies first), trying every one.
pub(super) async fn start_all(client: &DockerClient, list: &[AppContainer]) -> std::result::Result<(), String> {
    let mut failed = Vec::new();
    for c in list.iter().rev() {
        if let Err(e) = client.start(&c.id).await {
            failed.push(format!("start {}: {e}", c.container));
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}

type Copied<W> = std::result::Result<(ArchiveWriter<W>, Vec<(String, u64)>), String>;

/// A volume or bind folder to copy: its kind, name and path on the server.
type Item = (MemberKind, String, String);

/// The copies of one server's items, each opened (`HostFs::open_tar_out`)
/// before its turn, so that the next copy's session (and its login shell)
/// starts while the one before it runs.
struct Ahead {
    app: String,
    fs: HostFs,
    waiting: std::vec::IntoIter<Item>,
    opened: std::collections::VecDeque<(Item, std::result::Result<TarOut, String>)>,
}

/// Copies opened and waiting for their turn, besides the running one (sshd
/// allows 10 sessions per connection by default).
const AHEAD: usize = 2;

impl Ahead {
    /// Opens the first copies and waits until each is in its folder, before
    /// the app is stopped: a bind folder that is not there is skipped (the
    /// next item opened instead), anything else that fails is an error.
    async fn open(app: &str, fs: HostFs, items: Vec<Item>) -> std::result::Result<Ahead, String> {
        let mut ahead = Ahead { app: app.to_string(), fs, waiting: items.into_iter(), opened: Default::default() };
        ahead.fill().await;
        let mut i = 0;
        while i < ahead.opened.len() {
            let ((kind, name, _), opened) = &mut ahead.opened[i];
            let tar = opened.as_mut().map_err(|e| e.clone())?;
            if tar.is_folder().await? {
                i += 1;
                continue;
            }
            skip_or_fail(app, *kind, name)?;
            ahead.opened.remove(i);
            ahead.fill().await;
        }
        Ok(ahead)
    }

    async fn fill(&mut self) {
        while self.opened.len() < AHEAD {
            let Some(item) = self.waiting.next() else { break };
            let opened = self.fs.open_tar_out(&item.2).await;
            self.opened.push_back((item, opened));
        }
    }

    /// The next item and its opened copy; opens the one after.
    async fn next(&mut self) -> Option<(Item, std::result::Result<TarOut, String>)> {
        let next = self.opened.pop_front();
        self.fill().await;
        next
    }
}

/// A copy that found no folder: a bind folder is left out, a volume's
/// mountpoint must be there.
fn skip_or_fail(app: &str, kind: MemberKind, name: &str) -> std::result::Result<(), String> {
    if kind == MemberKind::Volume {
        return Err(format!("volume {name}: its mountpoint is not a folder on the server"));
    }
    tracing::info!(app, folder = %name, "no such folder on the server; nothing to copy");
    Ok(())
}

/// Copies each item (a bind folder that is not a folder on the server is
/// skipped) into a member of `archive`.
async fn copy_items<W: Write + Send + 'static>(
    server: &str,
    mut ahead: Ahead,
    mut archive: ArchiveWriter<W>,
) -> Copied<W> {
    let app = ahead.app.clone();
    let mut members = Vec::new();
    while let Some(((kind, name, _), opened)) = ahead.next().await {
        let mut tar = opened?;
        if !tar.is_folder().await? {
            skip_or_fail(&app, kind, &name)?;
            continue;
        }
        let member = member_name(&app, server, kind, &name);
        let meta = MemberMeta {
            app: Some(app.clone()),
            server: Some(server.to_string()),
            path: Some(name.clone()),
            ..MemberMeta::new(member.clone(), kind)
        };
        let (next, size) = stream_member(archive, meta, tar).await?;
        archive = next;
        members.push((member, size));
    }
    Ok((archive, members))
}

/// Streams the opened tar into one new member of `archive`.
async fn stream_member<W: Write + Send + 'static>(
    archive: ArchiveWriter<W>,
    meta: MemberMeta,
    tar: TarOut,
) -> std::result::Result<(ArchiveWriter<W>, u64), String> {
    let (mut tx, rx) = super::batchpipe::pipe();
    let writer = tokio::task::spawn_blocking(move || {
        let mut archive = archive;
        let written = (|| {
            let mut member = archive.member(meta)?;
            rx.copy_to(&mut member)?;
            member.finish()
        })();
        (archive, written)
    });
    let read = tar.run(&mut tx).await;
    drop(tx);
    let (archive, written) = writer.await.map_err(|e| format!("writing the archive: {e}"))?;
    let entry = written.map_err(|e| format!("writing the archive: {e}"))?;
    read?;
    Ok((archive, entry.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> App {
        use crate::manifest::{LoadOptions, SecretCheck, Sources};
        let sources = Sources::from_texts([("apps/a.yaml", yaml)]);
        let secrets = SecretCheck::Known(Default::default());
        let loaded = crate::manifest::load(
            &sources,
            &LoadOptions { secrets: &secrets, inline_check: crate::vault::check_inline_format },
        );
        let desired = loaded.desired.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        desired.apps.into_values().next().unwrap()
    }

    #[test]
    fn data_is_named_volumes_and_writable_bind_folders_and_services_stop_dependents_first() {
        let a = app(
            "kind: App\nname: shop\nserver: local\nservices:\n  web:\n    image: busybox\n    depends_on: [db]\n    volumes: [\"files:/f\", \"/srv/shop/uploads/:/u\", \"/etc/localtime:/etc/localtime:ro\"]\n  db:\n    image: busybox\n    volumes: [\"pg:/var/lib/pg\"]\n  cache:\n    image: busybox\n    depends_on: [web]\n",
        );
        let (volumes, binds) = data_of(&a);
        assert_eq!(volumes, vec!["shop_files".to_string(), "shop_pg".to_string()]);
        assert_eq!(binds, vec!["/srv/shop/uploads".to_string()]);
        let order: Vec<String> = start_order(&a).iter().map(|n| n.to_string()).collect();
        assert_eq!(order, ["db", "web", "cache"]);
        let c = |service: &str, state: &str| AppContainer {
            server: "local".into(),
            service: service.into(),
            container: format!("shop-{service}"),
            id: service.into(),
            state: state.into(),
            health: "none".into(),
            image: "busybox".into(),
        };
        let list = stop_list(&a, &[c("db", "running"), c("web", "running"), c("cache", "running"), c("x", "exited")]);
        let names: Vec<&str> = list.iter().map(|c| c.service.as_str()).collect();
        assert_eq!(names, ["cache", "web", "db"]);
        assert_eq!(
            member_name("shop", "local", MemberKind::Bind, "/srv/shop/uploads"),
            "app/shop/local/bind/srv/shop/uploads.tar"
        );
        assert_eq!(member_name("shop", "h1", MemberKind::Volume, "shop_pg"), "app/shop/h1/volume/shop_pg.tar");
    }
}
