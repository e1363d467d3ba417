//! Backups through the engine: `backup_create` (a system backup, recorded as
//! a run and in the audit log, verified after writing), `backup_list`,
//! `backup_restore_plan` / `backup_restore` (verify whole, say what is
//! replaced, then restore) and `backup_prune` (keep rules).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::Engine;
use super::appdata::DataMode;
use super::backup_remote::Remote;
use crate::apply::lock::ApplyLock;
use crate::backup::system::{self, SUFFIX, Sources, Target};
use crate::backup::{ArchiveWriter, BackupError, Keep, Part, RestorePlan, Restored, keep, read_envelope, time};
use crate::error::{Result, Usage};
use crate::model::secret::SecretString;
use crate::store::folder::{self, Found};
use crate::store::{Activity, Store};

/// A request for a system backup.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// The archive file [default: `<dir>/<time>.tomo-backup`].
    pub out: Option<PathBuf>,
    /// The folder of the archive when `out` is not given [default: the backup
    /// folder]; `server:NAME:/DIR` is a folder on that server.
    pub dir: Option<PathBuf>,
    /// The passphrase [default: `TOMO_MASTER_PASSWORD`].
    pub passphrase: Option<SecretString>,
    /// cli | watch | mcp
    pub trigger: String,
    /// Who asked (audit).
    pub actor: String,
    /// Apps whose data (named volumes, bind folders) goes into the archive too.
    pub apps: Vec<String>,
    /// Every declared app's data.
    pub all_apps: bool,
    /// How app data is kept consistent during the copy, over each app's
    /// own `backup.mode` (`--mode`).
    pub mode: Option<DataMode>,
    /// The mode of apps without their own `backup.mode` when `mode` is not
    /// given (`Settings.backup.mode`) [default: live].
    pub fallback_mode: Option<DataMode>,
}

/// A written and verified archive.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BackupMade {
    pub file: String,
    pub size: u64,
    pub created: String,
    pub installation: String,
    pub members: u64,
    pub apps: Vec<String>,
    pub manifests_revision: Option<String>,
    /// Read back whole after writing: every tag and checksum good.
    pub verified: bool,
}

/// One archive in the backup folder.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BackupRow {
    pub file: String,
    pub created: String,
    pub size: u64,
    pub installation: String,
    /// Known from the run that wrote it, or from `--verify`.
    pub members: Option<u64>,
    pub apps: Vec<String>,
    /// Whether the archive was read back whole and every checksum matched.
    pub verified: Option<bool>,
    /// Why it could not be read, when it could not.
    pub problem: Option<String>,
}

/// A restore to plan or carry out.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub file: PathBuf,
    /// Parts to restore [default: store, manifests and every app in the archive].
    pub only: Vec<Part>,
    pub passphrase: Option<SecretString>,
}

impl Engine {
    /// The data folder's `backups`: the backup folder when the manifests
    /// declare no `Settings.backup.target` (`backup_folder`).
    pub fn backup_dir(&self) -> PathBuf {
        self.config.data_dir.join("backups")
    }

    /// The backup folder: where archives go and are looked for when no
    /// folder is given. The target of `Settings.backup` when the manifests
    /// declare one (`server:NAME:/DIR` for a server's folder), else
    /// `<data>/backups` (also when the manifests do not load: a backup
    /// must still be possible then; a warning says so).
    pub fn backup_folder(&self) -> PathBuf {
        match self.backup_schedule() {
            Ok(schedule) => schedule.and_then(|s| s.folder()).unwrap_or_else(|| self.backup_dir()),
            Err(e) => {
                let dir = self.backup_dir();
                tracing::warn!(error = %e, folder = %dir.display(), "the manifests do not load: the backup folder is the data folder's");
                dir
            }
        }
    }

    pub(super) fn backup_passphrase(&self, given: Option<&SecretString>) -> Result<SecretString> {
        match given.or(self.config.master_password.as_ref()).filter(|p| !p.expose().is_empty()) {
            Some(p) => Ok(p.clone()),
            None => Err(Usage::Invalid {
                arg: "passphrase".into(),
                value: None,
                problem: "set TOMO_MASTER_PASSWORD or pass --passphrase-file".into(),
            }
            .into()),
        }
    }

    /// Writes a system backup, reads it back whole, records the run and audits it.
    /// A `dir` written `server:NAME:/DIR` is that server's folder (see `backup_remote`).
    pub fn backup_create(&self, req: &BackupRequest) -> Result<BackupMade> {
        let dir = match (&req.out, &req.dir) {
            (None, None) => Some(self.backup_folder()),
            (_, dir) => dir.clone(),
        };
        if let Some(remote) = dir.as_deref().and_then(Remote::of_path) {
            return self.backup_create_remote(req, &remote);
        }
        let pass = self.backup_passphrase(req.passphrase.as_ref())?;
        let store = self.store()?;
        let created = crate::auth::now_unix();
        let out = req.out.clone().unwrap_or_else(|| {
            // Two archives in one second: a counter keeps names apart.
            let stamp = time::file_stamp(created);
            let dir = dir.unwrap_or_else(|| self.backup_dir());
            (0..)
                .map(|n| dir.join(if n == 0 { format!("{stamp}{SUFFIX}") } else { format!("{stamp}-{n}{SUFFIX}") }))
                .find(|p| !p.exists())
                .unwrap_or_else(|| dir.join(format!("{stamp}{SUFFIX}")))
        });
        if out.exists() {
            return Err(Usage::invalid(
                "--out",
                out.display().to_string(),
                "the file exists; tomo does not overwrite an archive",
            )
            .into());
        }
        let run = store.backup_started(&req.trigger)?;
        let src = Sources {
            store,
            data_dir: &self.config.data_dir,
            manifests: &self.config.manifests,
            salt: self.config.salt.as_ref(),
        };
        let apps = self.apps_to_back_up(req)?;
        let modes = (req.mode, req.fallback_mode.unwrap_or(DataMode::Live));
        let mut add_apps = |w| self.add_app_data(&apps, modes, w);
        let result = system::create(&src, &out, &pass, created, &mut add_apps)
            .and_then(|w| system::verify(&w.file, &pass).map(|read| (read == w.contents, w)));
        let (verified, w) = match result {
            Ok(v) => v,
            Err(e) => {
                let text = e.to_string();
                let _ = store.backup_finished(run, None, None, None, &[], false, Some(&text));
                self.backup_audit(&req.actor, "create", &out.display().to_string(), "error", Some(&text));
                tracing::warn!(error = %text, "backup failed");
                return Err(e.into());
            }
        };
        let file = w.file.display().to_string();
        let apps = w.contents.apps();
        let members = w.contents.members.len() as u64;
        store.backup_finished(run, Some(&file), Some(w.size), Some(members), &apps, verified, None)?;
        self.backup_audit(&req.actor, "create", &file, if verified { "ok" } else { "error" }, None);
        Ok(BackupMade {
            file,
            size: w.size,
            created: time::store_time(created),
            installation: w.contents.header.installation.clone(),
            members,
            apps,
            manifests_revision: w.contents.notes.get(system::NOTE_REVISION).cloned(),
            verified,
        })
    }

    /// The apps named by the request (each must be declared), sorted.
    pub(super) fn apps_to_back_up(&self, req: &BackupRequest) -> Result<Vec<String>> {
        if !req.all_apps && req.apps.is_empty() {
            return Ok(Vec::new());
        }
        let desired = self.desired()?;
        let mut apps: Vec<String> = if req.all_apps {
            desired.apps.keys().map(|n| n.to_string()).collect()
        } else {
            for a in &req.apps {
                self.app(&desired, a)?;
            }
            req.apps.clone()
        };
        apps.sort();
        apps.dedup();
        Ok(apps)
    }

    /// Streams `apps`' data into the archive being written. Called on a
    /// thread outside the async workers: a blocking thread of the caller's
    /// runtime, or a plain thread (then a runtime of its own drives the copy).
    pub(super) fn add_app_data(
        &self,
        apps: &[String],
        (given, fallback): (Option<DataMode>, DataMode),
        w: ArchiveWriter<BufWriter<std::fs::File>>,
    ) -> std::result::Result<ArchiveWriter<BufWriter<std::fs::File>>, BackupError> {
        if apps.is_empty() {
            return Ok(w);
        }
        let fail = |e: crate::error::Error| BackupError::AppData(e.to_string());
        let copy = self.backup_app_data(apps, given, fallback, w);
        let (w, reports) = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.block_on(copy).map_err(fail)?,
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BackupError::AppData(e.to_string()))?
                .block_on(copy)
                .map_err(fail)?,
        };
        for r in &reports {
            tracing::info!(app = %r.app, server = %r.server, mode = ?r.mode, members = r.members.len(), downtime_ms = ?r.downtime_ms, pre_ms = ?r.pre_ms, "app data copied");
        }
        Ok(w)
    }

    pub(super) fn backup_audit(&self, actor: &str, action: &str, target: &str, result: &str, detail: Option<&str>) {
        let entry = Activity {
            actor: Some(actor),
            role: None,
            category: "backup",
            action,
            target: Some(target),
            arguments: None,
            result,
            detail,
        };
        if let Err(e) = self.store().and_then(|s| Ok(s.record_activity(&entry)?)) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }

    /// The store of the data folder when it holds one (never makes one).
    pub(super) fn existing_store(&self) -> Option<&std::sync::Arc<Store>> {
        match folder::inspect(&self.config.data_dir) {
            Ok(Found::Store) => self.store().ok(),
            _ => None,
        }
    }

    /// The archives in `dir` [default: the backup folder], newest first.
    /// With `verify`, each is read back whole with the passphrase.
    pub fn backup_list(
        &self,
        dir: Option<&Path>,
        verify: bool,
        passphrase: Option<&SecretString>,
    ) -> Result<Vec<BackupRow>> {
        let pass = if verify { Some(self.backup_passphrase(passphrase)?) } else { None };
        let dir = dir.map_or_else(|| self.backup_folder(), Path::to_path_buf);
        if let Some(remote) = Remote::of_path(&dir) {
            return self.backup_list_remote(&remote, pass.as_ref());
        }
        let store = self.existing_store();
        let mut rows = Vec::new();
        for path in archives_in(&dir)? {
            let file = path.display().to_string();
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            let mut row = BackupRow {
                file: file.clone(),
                created: String::new(),
                size,
                installation: String::new(),
                members: None,
                apps: Vec::new(),
                verified: None,
                problem: None,
            };
            match std::fs::File::open(&path)
                .map_err(crate::backup::ArchiveError::Io)
                .and_then(|mut f| read_envelope(&mut f))
            {
                Ok((env, _)) => {
                    row.created = time::store_time(env.header.created);
                    row.installation = env.header.installation;
                }
                Err(e) => row.problem = Some(e.to_string()),
            }
            if let Some(run) = store.and_then(|s| s.backup_run_for(&file).ok().flatten()) {
                row.members = run.members;
                row.apps = run.apps;
                row.verified = Some(run.verified);
            }
            if let (Some(pass), None) = (&pass, &row.problem) {
                match system::verify(&path, pass) {
                    Ok(c) => {
                        row.members = Some(c.members.len() as u64);
                        row.apps = c.apps();
                        row.verified = Some(true);
                    }
                    Err(e) => {
                        row.verified = Some(false);
                        row.problem = Some(e.to_string());
                    }
                }
            }
            rows.push(row);
        }
        rows.sort_by(|a, b| b.created.cmp(&a.created).then(b.file.cmp(&a.file)));
        Ok(rows)
    }

    /// Verifies the whole archive, then says what restoring it would replace.
    /// Nothing is changed.
    pub fn backup_restore_plan(&self, req: &RestoreRequest) -> Result<RestorePlan> {
        let pass = self.backup_passphrase(req.passphrase.as_ref())?;
        let (contents, fingerprint) = system::verify_fingerprinted(&req.file, &pass)?;
        let parts = if req.only.is_empty() { system::default_parts(&contents) } else { req.only.clone() };
        Ok(system::plan(&contents, &fingerprint, &parts, &self.target())?)
    }

    fn target(&self) -> Target<'_> {
        Target { data_dir: &self.config.data_dir, manifests: &self.config.manifests, salt: self.config.salt.as_ref() }
    }

    /// Restores as planned (`backup_restore_plan`), under the apply lock.
    pub fn backup_restore(&self, req: &RestoreRequest, plan: &RestorePlan, actor: &str) -> Result<Restored> {
        let pass = self.backup_passphrase(req.passphrase.as_ref())?;
        folder::ensure_private_dir(&self.config.data_dir)?;
        let _lock = ApplyLock::acquire(&self.config.data_dir, Duration::from_secs(30), "restoring a backup")?;
        let done = system::restore(&req.file, &pass, plan, &self.target(), None)?;
        // The store may have been replaced: audit through a fresh handle.
        if let Ok(store) = Store::open_in(&self.config.data_dir) {
            let parts: Vec<String> = plan.items.iter().map(|i| i.part.clone()).collect();
            let detail = format!("parts: {}", parts.join(", "));
            let entry = Activity {
                actor: Some(actor),
                role: None,
                category: "backup",
                action: "restore",
                target: Some(&req.file.display().to_string()),
                arguments: None,
                result: "ok",
                detail: Some(&detail),
            };
            let _ = store.record_activity(&entry);
        }
        Ok(done)
    }

    /// Restores (or with `dry_run` plans) the data of `app` from the archive
    /// of `req` as `plan` planned it: when the file is another archive than
    /// the plan's by now, nothing is changed.
    pub async fn backup_restore_app(
        &self,
        req: &RestoreRequest,
        plan: &RestorePlan,
        app: &str,
        to_server: Option<&str>,
        dry_run: bool,
        actor: &str,
    ) -> Result<super::appdata_restore::AppRestoreReport> {
        let pass = self.backup_passphrase(req.passphrase.as_ref())?;
        let file = req.file.as_path();
        let report = self.restore_app_data(file, &pass, app, to_server, Some(&plan.archive), dry_run).await?;
        if !dry_run {
            let detail = format!("app:{app}, downtime {} ms", report.downtime_ms.unwrap_or(0));
            self.backup_audit(actor, "restore", &file.display().to_string(), "ok", Some(&detail));
        }
        Ok(report)
    }

    /// Deletes the archives of this installation in `dir` that the keep rules
    /// do not keep; returns them. Archives of other installations, and files
    /// that are not archives, are left alone.
    pub fn backup_prune(&self, dir: Option<&Path>, rules: &Keep) -> Result<Vec<String>> {
        let dir = dir.map_or_else(|| self.backup_folder(), Path::to_path_buf);
        if let Some(remote) = Remote::of_path(&dir) {
            return self.backup_prune_remote(&remote, rules);
        }
        let ours = self.store()?.installation_id()?;
        let mut found = Vec::new();
        for path in archives_in(&dir)? {
            let Ok(mut f) = std::fs::File::open(&path) else { continue };
            if let Ok((env, _)) = read_envelope(&mut f)
                && env.header.installation == ours
            {
                found.push((path, env.header.created));
            }
        }
        let times: Vec<i64> = found.iter().map(|(_, t)| *t).collect();
        let mut removed = Vec::new();
        for ((path, _), kept) in found.iter().zip(keep::decide(&times, rules)) {
            if !kept {
                std::fs::remove_file(path)
                    .map_err(|source| BackupError::File { path: path.display().to_string(), source })?;
                removed.push(path.display().to_string());
            }
        }
        if !removed.is_empty() {
            self.backup_audit(
                "tomo",
                "prune",
                &dir.display().to_string(),
                "ok",
                Some(&format!("{} archive(s) removed", removed.len())),
            );
        }
        Ok(removed)
    }
}

/// The `*.tomo-backup` files of `dir` (none when it does not exist).
fn archives_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(BackupError::File { path: dir.display().to_string(), source }.into()),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() && path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(SUFFIX)) {
            out.push(path);
        }
    }
    Ok(out)
}
