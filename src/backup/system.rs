//! A system backup: what goes into the archive (a consistent copy of the
//! store, which holds the vault's ciphertexts and the trusted host keys; the
//! vault's salt; every file of the manifest folder and its git commit) and
//! how it comes back (verified whole first; the store swapped in by rename,
//! the one it replaces set aside; manifest files written by rename).

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::archive::{ArchiveError, ArchiveReader, ArchiveWriter, Contents, Header, MemberKind, MemberMeta};
use super::time;
use crate::model::secret::SecretString;
use crate::store::folder::{self, STORE_FILE};
use crate::store::{Newer, Store, StoreError};

/// The archive file name suffix.
pub const SUFFIX: &str = ".tomo-backup";
/// Note naming the manifest folder's git commit.
pub const NOTE_REVISION: &str = "manifests_revision";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{path}`: {source}")]
    File { path: String, source: io::Error },
    #[error(
        "the archive is of installation {archive}, but this data folder holds installation {here}; nothing was changed. Restore into a fresh data folder, or use the archive of this installation"
    )]
    OtherInstallation { archive: String, here: String },
    #[error("the archive holds no {0}")]
    Missing(String),
    #[error("the archive names the file `{0}`, which is outside the manifest folder; nothing was changed")]
    UnsafePath(String),
    #[error("{0}")]
    Refused(String),
    #[error("app data: {0}")]
    AppData(String),
    #[error("backup target: {0}")]
    Target(String),
    #[error("`{0}` is now another archive than the one planned (its fingerprint differs); nothing was changed")]
    Changed(String),
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::File { path: path.display().to_string(), source }
}

/// Adds members (an app's data) to an archive being written.
/// It takes the writer and gives it back (app data streams on other threads).
pub type AddMembers<'a> =
    dyn FnMut(ArchiveWriter<BufWriter<fs::File>>) -> Result<ArchiveWriter<BufWriter<fs::File>>, BackupError> + 'a;
/// Restores one member of an app's data: (app, member, data).
pub type RestoreApp<'a> = dyn FnMut(&str, &MemberMeta, &mut dyn Read) -> Result<(), BackupError> + 'a;

/// What a system backup reads.
pub struct Sources<'a> {
    pub store: &'a Store,
    pub data_dir: &'a Path,
    pub manifests: &'a Path,
    pub salt: Option<&'a SecretString>,
}

/// A written archive.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub file: PathBuf,
    pub size: u64,
    pub contents: Contents,
}

/// Writes a system backup to `out` (a new file, 0600, written under a
/// temporary name and renamed when whole), then `more` may add members (an
/// app's data).
pub fn create(
    src: &Sources<'_>,
    out: &Path,
    passphrase: &SecretString,
    created: i64,
    more: &mut AddMembers<'_>,
) -> Result<Written, BackupError> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(file_err(parent))?;
    let partial = partial_name(out);
    let file =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial).map_err(file_err(&partial))?;
    let result = write_members(src, BufWriter::new(file), passphrase, created, more).and_then(|(c, file)| {
        file.sync_all().map_err(|source| BackupError::File { path: "archive".into(), source })?;
        Ok(c)
    });
    let contents = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, out).map_err(file_err(out))?;
    let size = fs::metadata(out).map_err(file_err(out))?.len();
    Ok(Written { file: out.to_path_buf(), size, contents })
}

/// Writes a system backup into `out` (the write end of a pipe to another
/// place, e.g. a server's folder), then `more` may add members. `out` is
/// closed when this returns.
pub fn create_into(
    src: &Sources<'_>,
    out: fs::File,
    passphrase: &SecretString,
    created: i64,
    more: &mut AddMembers<'_>,
) -> Result<Contents, BackupError> {
    write_members(src, BufWriter::new(out), passphrase, created, more).map(|(c, _)| c)
}

fn partial_name(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(p)
}

fn write_members(
    src: &Sources<'_>,
    out: BufWriter<fs::File>,
    passphrase: &SecretString,
    created: i64,
    more: &mut AddMembers<'_>,
) -> Result<(Contents, fs::File), BackupError> {
    let header = Header::new(src.store.installation_id()?, created);
    let mut w = ArchiveWriter::create(out, passphrase, header)?;
    // The store: a snapshot beside it, streamed in, then removed.
    let snap = src.data_dir.join(format!(".backup-{}.db", std::process::id()));
    let _ = folder::remove_if_there(&snap);
    let copied = src.store.backup_to(&snap).map_err(BackupError::from).and_then(|()| {
        let mut f = fs::File::open(&snap).map_err(file_err(&snap))?;
        w.append(MemberMeta::new(STORE_FILE, MemberKind::Store), &mut f)?;
        Ok(())
    });
    let _ = folder::remove_if_there(&snap);
    copied?;
    if let Some(salt) = src.salt {
        w.append(MemberMeta::new("TOMO_SALT", MemberKind::VaultSalt), &mut salt.expose().as_bytes())?;
    }
    add_manifests(&mut w, src.manifests)?;
    if let Some(rev) = git_revision(src.manifests) {
        w.note(NOTE_REVISION, rev);
    }
    let w = more(w)?;
    let (out, contents) = w.finish()?;
    let file = out.into_inner().map_err(|e| BackupError::File { path: "archive".into(), source: e.into_error() })?;
    Ok((contents, file))
}

/// Every regular file under the manifest folder (not `.git`), sorted.
fn manifest_files(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir == root => return Ok(out),
            Err(e) => return Err(file_err(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(file_err(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(file_err(&path))?;
            if kind.is_dir() && entry.file_name() != ".git" {
                todo.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn add_manifests(w: &mut ArchiveWriter<BufWriter<fs::File>>, root: &Path) -> Result<(), BackupError> {
    for path in manifest_files(root)? {
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let rel = rel.to_string_lossy().to_string();
        let mut f = fs::File::open(&path).map_err(file_err(&path))?;
        let mode = f.metadata().map_err(file_err(&path))?.permissions().mode() & 0o7777;
        let meta = MemberMeta {
            path: Some(rel.clone()),
            mode: Some(mode),
            ..MemberMeta::new(format!("manifests/{rel}"), MemberKind::Manifest)
        };
        w.append(meta, &mut f)?;
    }
    Ok(())
}

/// The commit checked out in `dir`, when it is a git repository.
pub fn git_revision(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}

/// Opens and verifies the whole archive: every tag and checksum. Nothing is written.
pub fn verify(file: &Path, passphrase: &SecretString) -> Result<Contents, BackupError> {
    verify_fingerprinted(file, passphrase).map(|(contents, _)| contents)
}

/// `verify`, and the archive's fingerprint (`archive::fingerprint`).
pub fn verify_fingerprinted(file: &Path, passphrase: &SecretString) -> Result<(Contents, String), BackupError> {
    let f = fs::File::open(file).map_err(file_err(file))?;
    let reader = ArchiveReader::open_pipelined(BufReader::new(f), passphrase)?;
    let fingerprint = reader.fingerprint().to_string();
    Ok((reader.verify_all()?, fingerprint))
}

/// A part of an archive to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Store,
    Vault,
    Manifests,
    App(String),
}

impl Part {
    /// `store`, `vault`, `manifests` or `app:NAME`.
    pub fn parse(text: &str) -> Result<Part, String> {
        match text {
            "store" => Ok(Part::Store),
            "vault" => Ok(Part::Vault),
            "manifests" => Ok(Part::Manifests),
            _ => match text.strip_prefix("app:") {
                Some(app) if !app.is_empty() => Ok(Part::App(app.to_string())),
                _ => Err(format!("`{text}` is not a part: use store, vault, manifests or app:NAME")),
            },
        }
    }
}

/// One thing a restore replaces.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Replaces {
    /// store | vault | manifests | app:NAME
    pub part: String,
    /// What is written.
    pub what: String,
    /// What is there now and is replaced (or `nothing`).
    pub replaces: String,
}

/// How a plan's item names the data of `app`.
fn app_label(app: &str) -> String {
    format!("app:{app}")
}

impl RestorePlan {
    /// Takes the apps' data out of the plan, their parts and items, and
    /// names those apps: app data is restored by the engine's app restore
    /// (the app's containers stopped meanwhile), the rest by `restore`.
    pub fn take_apps(&mut self) -> Vec<String> {
        let apps: Vec<String> =
            self.parts.iter().filter_map(|p| if let Part::App(a) = p { Some(a.clone()) } else { None }).collect();
        self.parts.retain(|p| !matches!(p, Part::App(_)));
        self.items.retain(|i| !apps.iter().any(|a| i.part == app_label(a)));
        apps
    }
}

/// What a restore would do, decided before anything changes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RestorePlan {
    /// The fingerprint of the archive planned (the SHA-256 of its
    /// envelope): the restore reads that archive or changes nothing.
    pub archive: String,
    pub installation: String,
    /// The archive's time (`YYYY-MM-DDTHH:MM:SS.000Z`).
    pub created: String,
    pub manifests_revision: Option<String>,
    pub items: Vec<Replaces>,
    /// Records of the current store newer than the archive, which restoring
    /// the store drops.
    pub newer: Option<Newer>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    #[schemars(skip)]
    pub parts: Vec<Part>,
    #[serde(skip)]
    #[schemars(skip)]
    pub contents: Option<Contents>,
}

/// Where a restore writes.
pub struct Target<'a> {
    pub data_dir: &'a Path,
    pub manifests: &'a Path,
    pub salt: Option<&'a SecretString>,
}

/// The parts restored when none is named: everything tomo's own.
pub fn default_parts(contents: &Contents) -> Vec<Part> {
    let mut parts = vec![Part::Store, Part::Manifests];
    parts.extend(contents.apps().into_iter().map(Part::App));
    parts
}

/// Decides what restoring `parts` of the verified `contents` into `to` replaces.
pub fn plan(
    contents: &Contents,
    fingerprint: &str,
    parts: &[Part],
    to: &Target<'_>,
) -> Result<RestorePlan, BackupError> {
    check_installation(contents, to.data_dir)?;
    let created = time::store_time(contents.header.created);
    let mut plan = RestorePlan {
        archive: fingerprint.to_string(),
        installation: contents.header.installation.clone(),
        created: created.clone(),
        manifests_revision: contents.notes.get(NOTE_REVISION).cloned(),
        items: Vec::new(),
        newer: None,
        warnings: Vec::new(),
        parts: parts.to_vec(),
        contents: Some(contents.clone()),
    };
    let db = to.data_dir.join(STORE_FILE);
    let have_store = folder::inspect(to.data_dir).ok() == Some(folder::Found::Store) || db.exists();
    for part in parts {
        match part {
            Part::Store | Part::Vault => {
                let member = contents.members.iter().find(|m| m.meta.kind == MemberKind::Store);
                let member = member.ok_or_else(|| BackupError::Missing("store".into()))?;
                let (label, what) = if *part == Part::Store {
                    ("store", format!("the store ({} bytes)", member.size))
                } else {
                    ("vault", "the vault's secrets and key check".to_string())
                };
                let replaces = if have_store {
                    let current = Store::open(&db)?;
                    // Records of the archive's second may be in it or not: count
                    // from the next second (times are whole seconds).
                    let newer = current.newer_than(&time::store_time(contents.header.created + 1))?;
                    let text = describe_newer(&newer, *part == Part::Vault);
                    if *part == Part::Store {
                        plan.newer = Some(newer);
                    }
                    text
                } else {
                    "nothing (no store here)".to_string()
                };
                plan.items.push(Replaces { part: label.into(), what, replaces });
                salt_warning(contents, to.salt, &mut plan.warnings);
            }
            Part::Manifests => plan.items.push(manifest_item(contents, to.manifests)?),
            Part::App(app) => {
                if !contents.members.iter().any(|m| m.meta.app.as_deref() == Some(app.as_str())) {
                    return Err(BackupError::Missing(format!("data of app `{app}`")));
                }
                plan.items.push(Replaces {
                    part: app_label(app),
                    what: format!("the data of app `{app}`"),
                    replaces: "its volumes and bind folders".into(),
                });
            }
        }
    }
    plan.warnings.dedup();
    Ok(plan)
}

fn describe_newer(n: &Newer, vault_only: bool) -> String {
    if vault_only {
        return if n.secrets == 0 {
            "the current vault (no secret changed since the archive)".into()
        } else {
            format!("the current vault, including {} secret(s) set since the archive", n.secrets)
        };
    }
    if n.is_empty() {
        return "the current store (nothing recorded since the archive)".into();
    }
    format!(
        "the current store, which has newer records the restore drops: {} apply run(s), {} audit event(s), {} secret change(s), {} proposal(s) (the current store is kept aside as tomo.db.before-restore-<time>)",
        n.runs, n.audit_events, n.secrets, n.proposals
    )
}

fn salt_warning(contents: &Contents, salt: Option<&SecretString>, warnings: &mut Vec<String>) {
    if !contents.members.iter().any(|m| m.meta.kind == MemberKind::VaultSalt) {
        return;
    }
    if salt.is_none() {
        warnings.push(format!(
            "TOMO_SALT is not set: the restored vault needs the salt it was made with; it is written to `{SALT_FILE}` in the data folder (0600)"
        ));
    }
}

/// Where the archived salt goes when this environment's differs.
pub const SALT_FILE: &str = "TOMO_SALT.restored";

fn manifest_item(contents: &Contents, root: &Path) -> Result<Replaces, BackupError> {
    let (mut new, mut changed, mut same) = (0, 0, 0);
    for m in contents.members.iter().filter(|m| m.meta.kind == MemberKind::Manifest) {
        let rel = safe_rel(m.meta.path.as_deref().unwrap_or(""))?;
        match fs::read(root.join(rel)) {
            Ok(bytes) if crate::model::spec::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)) == m.sha256 => {
                same += 1
            }
            Ok(_) => changed += 1,
            Err(_) => new += 1,
        }
    }
    Ok(Replaces {
        part: "manifests".into(),
        what: format!("{} manifest file(s) into `{}`", new + changed + same, root.display()),
        replaces: format!("{changed} changed file(s); {new} new, {same} unchanged; other files there are left alone"),
    })
}

/// A relative path with no `..`, root or prefix.
fn safe_rel(rel: &str) -> Result<&Path, BackupError> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok { Ok(p) } else { Err(BackupError::UnsafePath(rel.to_string())) }
}

/// Refuses an archive of another installation when the data folder holds one.
fn check_installation(contents: &Contents, data_dir: &Path) -> Result<(), BackupError> {
    let here = match folder::read_record(data_dir) {
        Some(id) => Some(id),
        None if data_dir.join(STORE_FILE).exists() => crate::store::store_installation_of(&data_dir.join(STORE_FILE))?,
        None => None,
    };
    match here {
        Some(here) if here != contents.header.installation => {
            Err(BackupError::OtherInstallation { archive: contents.header.installation.clone(), here })
        }
        _ => Ok(()),
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Restored {
    pub store: bool,
    pub secrets: Option<u64>,
    pub manifest_files: u64,
    /// Where the replaced store was kept.
    pub set_aside: Option<String>,
    pub salt_file: Option<String>,
    pub apps: Vec<String>,
}

/// Restores a verified archive as planned. `app` receives the members of
/// each app part (an app's data); without it app parts are refused.
pub fn restore(
    file: &Path,
    passphrase: &SecretString,
    plan: &RestorePlan,
    to: &Target<'_>,
    app: Option<&mut RestoreApp<'_>>,
) -> Result<Restored, BackupError> {
    let wants = |p: &Part| plan.parts.contains(p);
    let apps: Vec<String> =
        plan.parts.iter().filter_map(|p| if let Part::App(a) = p { Some(a.clone()) } else { None }).collect();
    let mut app = app;
    if !apps.is_empty() && app.is_none() {
        return Err(BackupError::Refused(
            "restoring app data is not available in this build; nothing was changed".into(),
        ));
    }
    let f = fs::File::open(file).map_err(file_err(file))?;
    let reader = ArchiveReader::open_pipelined(BufReader::new(f), passphrase)?;
    if reader.fingerprint() != plan.archive {
        return Err(BackupError::Changed(file.display().to_string()));
    }
    folder::ensure_private_dir(to.data_dir)?;
    let staged = to.data_dir.join(format!(".restore-{}.db", std::process::id()));
    let _ = folder::remove_if_there(&staged);
    let mut done = Restored { apps: apps.clone(), ..Restored::default() };
    let mut salt: Option<String> = None;
    let mut manifests: Vec<StagedFile> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    let pass = reader.for_each_member(|meta, data| {
        let bad = |e: BackupError| ArchiveError::Format(e.to_string());
        match meta.kind {
            MemberKind::Store if wants(&Part::Store) || wants(&Part::Vault) => {
                let mut out = folder::create_private(&staged).map_err(ArchiveError::Io)?;
                io::copy(data, &mut out)?;
                out.sync_all()?;
            }
            MemberKind::VaultSalt => {
                let mut s = String::new();
                data.read_to_string(&mut s)?;
                salt = Some(s);
            }
            MemberKind::Manifest if wants(&Part::Manifests) => {
                manifests.push(write_manifest(to.manifests, meta, data, &mut made).map_err(bad)?);
                done.manifest_files += 1;
            }
            MemberKind::Volume | MemberKind::Bind => {
                if let (Some(name), Some(f)) =
                    (meta.app.as_deref().filter(|a| apps.iter().any(|x| x == a)), app.as_mut())
                {
                    f(name, meta, data).map_err(bad)?;
                }
            }
            _ => {}
        }
        Ok(())
    });
    if let Err(e) = pass {
        let _ = folder::remove_if_there(&staged);
        unstage(&manifests, &made);
        return Err(e.into());
    }
    // The whole archive passed (every tag, checksum and the contents list):
    // the manifest files take their places.
    for (i, f) in manifests.iter().enumerate() {
        if let Err(e) = fs::rename(&f.tmp, &f.path) {
            let _ = folder::remove_if_there(&staged);
            unstage(&manifests[i..], &[]);
            return Err(file_err(&f.path)(e));
        }
    }
    let swapped = finish_store(plan, to, &staged, &mut done);
    let _ = folder::remove_if_there(&staged);
    swapped?;
    if (wants(&Part::Store) || wants(&Part::Vault))
        && let Some(salt) = salt
        && to.salt.is_none_or(|s| s.expose() != salt)
    {
        let path = to.data_dir.join(SALT_FILE);
        let _ = folder::remove_if_there(&path);
        let mut f = folder::create_private(&path).map_err(file_err(&path))?;
        f.write_all(salt.as_bytes()).map_err(file_err(&path))?;
        done.salt_file = Some(path.display().to_string());
    }
    Ok(done)
}

/// Swaps the staged store in (whole store) or copies its vault (vault only).
fn finish_store(plan: &RestorePlan, to: &Target<'_>, staged: &Path, done: &mut Restored) -> Result<(), BackupError> {
    let db = to.data_dir.join(STORE_FILE);
    if plan.parts.contains(&Part::Store) {
        // Bring the staged copy to this build's schema before it goes live.
        drop(Store::open(staged)?);
        for f in folder::with_companions(staged).iter().skip(1) {
            let _ = folder::remove_if_there(f);
        }
        let stamp = time::file_stamp(crate::auth::now_unix());
        let mut aside = db.as_os_str().to_owned();
        aside.push(format!(".before-restore-{stamp}"));
        let aside = PathBuf::from(aside);
        // The write-ahead log and its index go aside under the names SQLite
        // pairs with the store set aside (`<store>-wal`): what a connection
        // still open has not checkpointed stays part of that store.
        for (from, to) in folder::with_companions(&db).into_iter().zip(folder::with_companions(&aside)) {
            if from.exists() {
                fs::rename(&from, &to).map_err(file_err(&from))?;
                if from == db {
                    done.set_aside = Some(aside.display().to_string());
                }
            }
        }
        fs::rename(staged, &db).map_err(file_err(&db))?;
        folder::write_record(to.data_dir, &plan.installation)?;
        done.store = true;
    } else if plan.parts.contains(&Part::Vault) {
        let current = Store::open_in(to.data_dir)?;
        drop(Store::open(staged)?);
        done.secrets = Some(current.replace_vault_from(staged)?);
    }
    Ok(())
}

/// A manifest file written beside its place (`tmp`), renamed onto `path`
/// once the whole archive has passed.
struct StagedFile {
    tmp: PathBuf,
    path: PathBuf,
}

/// Writes one manifest file under `root`, under a temporary name; the
/// folders it had to make are added to `made`, in the order made.
fn write_manifest(
    root: &Path,
    meta: &MemberMeta,
    data: &mut dyn Read,
    made: &mut Vec<PathBuf>,
) -> Result<StagedFile, BackupError> {
    let rel = safe_rel(meta.path.as_deref().unwrap_or(""))?;
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        let missing: Vec<PathBuf> = parent.ancestors().take_while(|d| !d.exists()).map(Path::to_path_buf).collect();
        let created = fs::create_dir_all(parent);
        // Those it made before failing too.
        made.extend(missing.into_iter().rev().filter(|d| created.is_ok() || d.exists()));
        created.map_err(file_err(parent))?;
    }
    let tmp = partial_name(&path);
    let mode = meta.mode.unwrap_or(0o644) & 0o777;
    let mut out =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(file_err(&tmp))?;
    let written = io::copy(data, &mut out).map_err(file_err(&tmp));
    drop(out);
    let done =
        written.and_then(|_| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(file_err(&tmp)));
    if let Err(e) = done {
        let _ = folder::remove_if_there(&tmp);
        return Err(e);
    }
    Ok(StagedFile { tmp, path })
}

/// Undoes the manifests' staging after a failure: the temporary files, then
/// the folders made for them (deepest first; only those still empty).
fn unstage(manifests: &[StagedFile], made: &[PathBuf]) {
    for f in manifests {
        let _ = folder::remove_if_there(&f.tmp);
    }
    for dir in made.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}
