//! Archives in a server's folder (`Settings.backup.target: {server, path}`,
//! or a location written `server:NAME:/DIR`), over the server's SSH
//! connection. Writing streams the archive through a pipe into the remote
//! `cat` (never staged whole here), under a temporary name; it is read back
//! whole and verified, then renamed when its size matches what was sent
//! (0600). Listing is one command (sizes, names and each archive's envelope);
//! pruning removes the files the keep rules drop in one more. A restore
//! copies the archive into the data folder first (0600, removed afterwards),
//! since a restore reads it twice (verify, then restore).

use std::io::BufReader;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::Engine;
use super::backup::{BackupMade, BackupRequest, BackupRow};
use crate::backup::system::{self, SUFFIX, Sources};
use crate::backup::{ArchiveReader, BackupError, Keep, keep, read_envelope, time};
use crate::error::{Error, Result};
use crate::model::secret::SecretString;
use crate::transport::hostfs::HostFs;

/// How many leading bytes of each archive a listing reads (its envelope).
const HEAD: usize = 4096;

/// A folder (or file) on a server: `server:NAME:/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub server: String,
    pub path: String,
}

impl Remote {
    /// `server:NAME:/PATH`; `None` for anything else (a local path).
    pub fn parse(text: &str) -> Option<Remote> {
        let rest = text.strip_prefix("server:")?;
        let (server, path) = rest.split_once(':')?;
        (!server.is_empty() && path.starts_with('/'))
            .then(|| Remote { server: server.to_string(), path: path.trim_end_matches('/').to_string() })
    }

    /// A local path naming a remote place (`server:NAME:/PATH`).
    pub fn of_path(p: &Path) -> Option<Remote> {
        p.to_str().and_then(Remote::parse)
    }

    fn file(&self, name: &str) -> String {
        format!("server:{}:{}/{name}", self.server, self.path)
    }

    /// (folder, file name) of a remote file.
    fn split(&self) -> Result<(String, String)> {
        match self.path.rsplit_once('/') {
            Some((dir, name)) if !name.is_empty() => Ok((if dir.is_empty() { "/" } else { dir }.into(), name.into())),
            _ => Err(target_err(format!("`{}` names no file", self.path))),
        }
    }
}

fn target_err(text: impl Into<String>) -> Error {
    BackupError::Target(text.into()).into()
}

/// Runs futures for a synchronous caller: on the caller's runtime (from one
/// of its blocking threads), or on a runtime of its own, whose worker runs
/// spawned transfers while this thread writes or reads the archive.
enum Rt {
    Caller(tokio::runtime::Handle),
    Own(tokio::runtime::Runtime),
}

impl Rt {
    fn get() -> Result<Rt> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => Ok(Rt::Caller(h)),
            Err(_) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map(Rt::Own)
                .map_err(|e| target_err(e.to_string())),
        }
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match self {
            Rt::Caller(h) => h.clone(),
            Rt::Own(rt) => rt.handle().clone(),
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle().block_on(f)
    }
}

fn pipe() -> Result<(std::io::PipeReader, std::io::PipeWriter)> {
    std::io::pipe().map_err(|e| target_err(format!("a pipe: {e}")))
}

/// Reads the remote file `path` whole through a pipe and verifies every tag
/// and checksum with the passphrase.
fn verify_remote(rt: &Rt, fs: &HostFs, path: &str, pass: &SecretString) -> Result<crate::backup::Contents> {
    let (r, w) = pipe()?;
    let (fs2, path2) = (fs.clone(), path.to_string());
    let feed = rt.handle().spawn(async move {
        let mut sink = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(w)).map_err(|e| e.to_string())?;
        fs2.read_file(&path2, &mut sink).await
    });
    // The reader is dropped before waiting, so the feed never blocks on a
    // pipe nobody reads.
    let read = ArchiveReader::open(BufReader::new(std::fs::File::from(OwnedFd::from(r))), pass)
        .and_then(|a| a.verify_all())
        .map_err(BackupError::from);
    let fed = rt.block_on(feed).map_err(|e| target_err(e.to_string()))?;
    let contents = read?;
    fed.map_err(target_err)?;
    Ok(contents)
}

impl Engine {
    /// The filesystem of the declared server `name` (over its SSH connection).
    async fn server_fs(&self, name: &str) -> Result<HostFs> {
        let desired = self.desired()?;
        let server = desired
            .servers
            .values()
            .find(|s| s.name.as_str() == name)
            .ok_or_else(|| target_err(format!("server `{}` is not declared", name.escape_default())))?;
        let via = self.connector(&desired, &crate::plan::PlanOptions::default());
        let client =
            self.client(server, &via).await.map_err(|source| Error::Transport { server: name.to_string(), source })?;
        Ok(client.host_fs())
    }

    /// Writes a system backup into the folder `to` on a server, verifies it
    /// there, and renames it into place; records and audits the run.
    pub(super) fn backup_create_remote(&self, req: &BackupRequest, to: &Remote) -> Result<BackupMade> {
        let pass = self.backup_passphrase(req.passphrase.as_ref())?;
        let store = self.store()?;
        let created = crate::auth::now_unix();
        let run = store.backup_started(&req.trigger)?;
        let result = self.write_remote(req, to, &pass, created);
        let (file, size, contents) = match result {
            Ok(v) => v,
            Err(e) => {
                let text = e.to_string();
                let _ = store.backup_finished(run, None, None, None, &[], false, Some(&text));
                self.backup_audit(&req.actor, "create", &to.file(""), "error", Some(&text));
                tracing::warn!(error = %text, "backup failed");
                return Err(e);
            }
        };
        let apps = contents.apps();
        let members = contents.members.len() as u64;
        store.backup_finished(run, Some(&file), Some(size), Some(members), &apps, true, None)?;
        self.backup_audit(&req.actor, "create", &file, "ok", None);
        Ok(BackupMade {
            file,
            size,
            created: time::store_time(created),
            installation: contents.header.installation.clone(),
            members,
            apps,
            manifests_revision: contents.notes.get(system::NOTE_REVISION).cloned(),
            verified: true,
        })
    }

    fn write_remote(
        &self,
        req: &BackupRequest,
        to: &Remote,
        pass: &SecretString,
        created: i64,
    ) -> Result<(String, u64, crate::backup::Contents)> {
        let rt = Rt::get()?;
        let fs = rt.block_on(self.server_fs(&to.server))?;
        let taken: Vec<String> =
            rt.block_on(fs.list_files(&to.path, SUFFIX, 0)).map_err(target_err)?.into_iter().map(|f| f.name).collect();
        let stamp = time::file_stamp(created);
        let name = (0..)
            .map(|n| if n == 0 { format!("{stamp}{SUFFIX}") } else { format!("{stamp}-{n}{SUFFIX}") })
            .find(|n| !taken.contains(n))
            .unwrap_or_default();
        let (r, w) = pipe()?;
        let (fs2, dir, name2) = (fs.clone(), to.path.clone(), name.clone());
        let upload = rt.handle().spawn(async move {
            let mut source =
                tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(r)).map_err(|e| e.to_string())?;
            fs2.put_partial(&dir, &name2, &mut source).await
        });
        let src = Sources {
            store: self.store()?,
            data_dir: &self.config.data_dir,
            manifests: &self.config.manifests,
            salt: self.config.salt.as_ref(),
        };
        let apps = self.apps_to_back_up(req)?;
        let modes = (req.mode, req.fallback_mode.unwrap_or(super::appdata::DataMode::Live));
        let mut add_apps = |w| self.add_app_data(&apps, modes, w);
        // The write end is closed when `create_into` returns: the end of the upload.
        let written = system::create_into(&src, std::fs::File::from(OwnedFd::from(w)), pass, created, &mut add_apps);
        let sent = rt.block_on(upload).map_err(|e| target_err(e.to_string())).and_then(|r| r.map_err(target_err));
        let finished = written.map_err(Error::from).and_then(|c| sent.map(|n| (c, n))).and_then(|(c, n)| {
            let partial = format!("{}/.{name}.partial", to.path);
            let read = verify_remote(&rt, &fs, &partial, pass)?;
            if read != c {
                return Err(target_err("the archive read back differs from the one written"));
            }
            rt.block_on(fs.finish_put(&to.path, &name, n)).map_err(target_err)?;
            Ok((c, n))
        });
        match finished {
            Ok((c, n)) => Ok((to.file(&name), n, c)),
            Err(e) => {
                let _ = rt.block_on(fs.drop_partial(&to.path, &name));
                Err(e)
            }
        }
    }

    /// The archives in a server's folder, newest first (one listing command;
    /// with `verify`, each is read back whole).
    pub(super) fn backup_list_remote(&self, at: &Remote, pass: Option<&SecretString>) -> Result<Vec<BackupRow>> {
        let rt = Rt::get()?;
        let fs = rt.block_on(self.server_fs(&at.server))?;
        let listed = rt.block_on(fs.list_files(&at.path, SUFFIX, HEAD)).map_err(target_err)?;
        let store = self.existing_store();
        let mut rows = Vec::new();
        for f in listed {
            let file = at.file(&f.name);
            let mut row = BackupRow {
                file: file.clone(),
                created: String::new(),
                size: f.size,
                installation: String::new(),
                members: None,
                apps: Vec::new(),
                verified: None,
                problem: None,
            };
            match read_envelope(&mut &f.head[..]) {
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
            if let (Some(pass), None) = (pass, &row.problem) {
                match verify_remote(&rt, &fs, &format!("{}/{}", at.path, f.name), pass) {
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

    /// Removes the archives of this installation in a server's folder that
    /// the keep rules drop; returns them.
    pub(super) fn backup_prune_remote(&self, at: &Remote, rules: &Keep) -> Result<Vec<String>> {
        let ours = self.store()?.installation_id()?;
        let rt = Rt::get()?;
        let fs = rt.block_on(self.server_fs(&at.server))?;
        let listed = rt.block_on(fs.list_files(&at.path, SUFFIX, HEAD)).map_err(target_err)?;
        let found: Vec<(String, i64)> = listed
            .into_iter()
            .filter_map(|f| {
                let (env, _) = read_envelope(&mut &f.head[..]).ok()?;
                (env.header.installation == ours).then_some((f.name, env.header.created))
            })
            .collect();
        let times: Vec<i64> = found.iter().map(|(_, t)| *t).collect();
        let drop: Vec<String> =
            found.iter().zip(keep::decide(&times, rules)).filter(|(_, k)| !k).map(|((n, _), _)| n.clone()).collect();
        rt.block_on(fs.remove_files(&at.path, &drop)).map_err(target_err)?;
        let removed: Vec<String> = drop.iter().map(|n| at.file(n)).collect();
        if !removed.is_empty() {
            self.backup_audit(
                "tomo",
                "prune",
                &at.file(""),
                "ok",
                Some(&format!("{} archive(s) removed", removed.len())),
            );
        }
        Ok(removed)
    }

    /// The archive `file` at hand on this machine for a restore: one
    /// written `server:NAME:/PATH` is copied into the data folder (0600) and
    /// removed when the returned value is dropped; a local path is used as
    /// it is. Blocking (`backup_at_hand_async` in async code).
    pub fn backup_at_hand(&self, file: &Path) -> Result<ArchiveAtHand> {
        match Remote::of_path(file) {
            Some(_) => Rt::get()?.block_on(self.backup_at_hand_async(file)),
            None => Ok(ArchiveAtHand { path: file.to_path_buf(), fetched: false }),
        }
    }

    /// `backup_at_hand`, in async code.
    pub async fn backup_at_hand_async(&self, file: &Path) -> Result<ArchiveAtHand> {
        let Some(from) = Remote::of_path(file) else {
            return Ok(ArchiveAtHand { path: file.to_path_buf(), fetched: false });
        };
        let (_, name) = from.split()?;
        crate::store::folder::ensure_private_dir(&self.config.data_dir)?;
        // One name per fetch: two restores of one archive at once (a plan and
        // an approval in `tomo serve`) each have their own copy.
        static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let local = self.config.data_dir.join(format!(".fetched-{}-{n}-{name}", std::process::id()));
        let file_err = |source| Error::from(BackupError::File { path: local.display().to_string(), source });
        let created = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&local);
        // Held from here: the copy is removed whatever happens next.
        let at_hand = ArchiveAtHand { path: local.clone(), fetched: true };
        let mut sink = tokio::fs::File::from_std(created.map_err(file_err)?);
        let fs = self.server_fs(&from.server).await?;
        fs.read_file(&from.path, &mut sink).await.map_err(target_err)?;
        tokio::io::AsyncWriteExt::flush(&mut sink).await.map_err(file_err)?;
        sink.sync_all().await.map_err(file_err)?;
        Ok(at_hand)
    }
}

/// An archive on this machine for a restore (`Engine::backup_at_hand`): a
/// copy fetched from a server's folder is removed when this is dropped.
pub struct ArchiveAtHand {
    path: PathBuf,
    fetched: bool,
}

impl ArchiveAtHand {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ArchiveAtHand {
    fn drop(&mut self) {
        if self.fetched {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_locations_parse() {
        assert_eq!(
            Remote::parse("server:nas:/srv/backups/"),
            Some(Remote { server: "nas".into(), path: "/srv/backups".into() })
        );
        assert_eq!(Remote::parse("server:nas:relative"), None);
        assert_eq!(Remote::parse("server::/x"), None);
        assert_eq!(Remote::parse("/var/backups"), None);
        let f = Remote::parse("server:nas:/srv/a.tomo-backup").unwrap();
        assert_eq!(f.split().unwrap(), ("/srv".to_string(), "a.tomo-backup".to_string()));
        assert!(Remote::parse("server:nas:/").unwrap().split().is_err());
    }
}
