//! Reading a manifest folder: every `.yaml`/`.yml` file below it, in a stable
//! order, skipping hidden folders (`.git`). The only I/O of `manifest`.
//!
//! What is read is bounded: a symbolic link that leaves the folder, a file
//! that is not a regular file or not UTF-8 text, a file over
//! [`MAX_FILE_BYTES`], and the files past [`MAX_FOLDER_BYTES`] or
//! [`MAX_FILES`] are not read but kept as [`Refused`], which loading reports
//! as errors naming the file.
//!
//! The files services name, env files (`env_file`) and config files
//! (`files[].source`), are read here too, by [`Sources::resolve_inside`],
//! under the same bounds and one more rule ([`within`]): a relative path,
//! relative to its manifest, that stays inside the manifest folder, symbolic
//! links resolved. A manifest (an agent's proposal, say) can so never pull
//! another file of the machine tomo runs on into a container.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::SourceFile;

/// The most one manifest file may hold.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most all manifest files of a folder may hold together.
pub const MAX_FOLDER_BYTES: u64 = 16 << 20;
/// The most manifest files a folder may hold.
pub const MAX_FILES: usize = 4096;

/// The manifest files of a folder, read into memory.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The folder, as given.
    pub root: PathBuf,
    pub files: Vec<Arc<SourceFile>>,
    /// Each file's path relative to `root`, with `/` separators.
    pub relative: Vec<String>,
    /// Files found but not read, with the reason.
    pub refused: Vec<Refused>,
    /// Files beside the manifests given in memory (by relative path), read
    /// before the folder is (tests, previews).
    pub beside: BTreeMap<String, String>,
}

/// A manifest file that was found and not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    pub code: &'static str,
    pub message: String,
    pub help: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("manifest folder `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("`{}` is not a folder", .0.display())]
    NotADir(PathBuf),
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Sources {
    /// In-memory sources, for tests and for checking edits before writing them.
    pub fn from_texts<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Sources {
        let mut s = Sources::default();
        for (rel, text) in files {
            s.files.push(Arc::new(SourceFile { path: PathBuf::from(rel), text: text.to_string() }));
            s.relative.push(rel.to_string());
        }
        s
    }
}

/// An env file a service names: read, missing, or not read (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileRead {
    /// Its path relative to the manifest folder, and its text.
    Read { rel: String, text: String },
    /// There is no such file (its path relative to the manifest folder).
    Missing { rel: String },
    /// Not read: outside the folder, not a regular file, too large, not UTF-8.
    Refused(Refused),
}

/// Env files by (the manifest file naming it, relative to the folder; the path as written).
pub type EnvFiles = BTreeMap<(String, String), EnvFileRead>;

/// Why a file a manifest names (`env_file`, `files[].source`) was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inside {
    /// It leaves the manifest folder (path traversal): absolute, a leading
    /// `~`, a `..` above the folder, or a symbolic link leading out.
    Outside,
    /// There is no such file (its path relative to the manifest folder).
    Missing(String),
    /// It could not be read (its path relative to the folder, and why).
    Unreadable { rel: String, error: String },
    /// Found and not read: not a regular file, too large, not UTF-8 (`path`
    /// is relative to the folder).
    Refused(Refused),
}

/// The one rule for a path a manifest names: `path`, written in the folder
/// `base` (relative to the manifest folder, `/` separators, `""` for the
/// folder itself), as a path relative to the manifest folder, or `None` when
/// it leaves the folder. Lexical: relative only (no `/…`, no leading `~`, no
/// NUL); `.` is skipped; `..` removes the folder before it and may not climb
/// above the manifest folder. Symbolic links are for the reader to check.
pub fn within(base: &str, path: &str) -> Option<String> {
    if path.is_empty() || path.starts_with('~') || path.contains('\0') || Path::new(path).is_absolute() {
        return None;
    }
    let mut rel: Vec<&str> = Vec::new();
    for c in base.split('/').chain(path.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                rel.pop()?;
            }
            c => rel.push(c),
        }
    }
    Some(rel.join("/"))
}

impl Sources {
    /// Reads each env file named as (manifest file relative to the folder,
    /// path as written), by [`Sources::resolve_inside`].
    pub fn read_env_files<'a>(&self, wanted: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvFiles {
        let mut out = EnvFiles::new();
        for (manifest, path) in wanted {
            out.entry((manifest.to_string(), path.to_string())).or_insert_with(|| env_file_read(self, manifest, path));
        }
        out
    }

    /// The file `path` names, written in the manifest `manifest` (relative to
    /// the folder): its path relative to the folder and its text, read under
    /// the bounds of a manifest file. Relative to the manifest's folder and
    /// inside the manifest folder by [`within`], then, symbolic links
    /// resolved, still inside it. Files given in memory (`beside`) are read
    /// first.
    pub fn resolve_inside(&self, manifest: &str, path: &str) -> Result<(String, String), Inside> {
        let base = manifest.rsplit_once('/').map_or("", |(dir, _)| dir);
        let rel = within(base, path).ok_or(Inside::Outside)?;
        if let Some(text) = self.beside.get(&rel) {
            if text.len() as u64 > MAX_FILE_BYTES {
                return Err(Inside::Refused(Refused { path: PathBuf::from(&rel), ..too_large(text.len() as u64) }));
            }
            return Ok((rel, text.clone()));
        }
        let unreadable = |e: std::io::Error| Inside::Unreadable { rel: rel.clone(), error: e.to_string() };
        let real_root = self.root.canonicalize().map_err(|e| Inside::Unreadable {
            rel: rel.clone(),
            error: format!("the manifest folder cannot be read: {e}"),
        })?;
        let real = match self.root.join(&rel).canonicalize() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Inside::Missing(rel)),
            Err(e) => return Err(unreadable(e)),
        };
        // Symbolic links resolved, it must still be inside.
        if !real.starts_with(&real_root) {
            return Err(Inside::Outside);
        }
        match read_file(&real).map_err(unreadable)? {
            Ok(text) => Ok((rel, text)),
            Err(r) => Err(Inside::Refused(Refused { path: PathBuf::from(&rel), ..r })),
        }
    }
}

fn env_file_read(sources: &Sources, manifest: &str, path: &str) -> EnvFileRead {
    let refused = |code: &'static str, message: String, help: &str| {
        EnvFileRead::Refused(Refused { path: PathBuf::from(path), code, message, help: help.into() })
    };
    match sources.resolve_inside(manifest, path) {
        Ok((rel, text)) => EnvFileRead::Read { rel, text },
        Err(Inside::Missing(rel)) => EnvFileRead::Missing { rel },
        Err(Inside::Outside) => refused(
            "env-file-outside",
            format!("env file `{}` is outside the manifest folder; it is not read", path.escape_default()),
            "an env file is a path relative to the manifest, inside the manifest folder",
        ),
        Err(Inside::Unreadable { rel, error }) => refused(
            "env-file-unreadable",
            format!("env file `{}` cannot be read: {error}", rel.escape_default()),
            "check its permissions",
        ),
        Err(Inside::Refused(r)) => EnvFileRead::Refused(r),
    }
}

/// The reason text for a file over [`MAX_FILE_BYTES`], shared with the check
/// of in-memory sources.
pub fn too_large(bytes: u64) -> Refused {
    Refused {
        path: PathBuf::new(),
        code: "file-too-large",
        message: format!("this file holds {bytes} bytes; a manifest file may hold at most {MAX_FILE_BYTES} (1 MiB)"),
        help: "split it into several files".into(),
    }
}

/// Reads every manifest file below `dir`.
pub fn read_dir(dir: &Path) -> Result<Sources, ReadError> {
    if !dir.exists() {
        return Err(ReadError::Missing(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(ReadError::NotADir(dir.to_path_buf()));
    }
    let root = dir.canonicalize().map_err(|source| ReadError::Io { path: dir.to_path_buf(), source })?;
    let mut walker = Walker { root, found: Vec::new(), refused: Vec::new(), visited: HashSet::new() };
    walker.visited.insert(walker.root.clone());
    walker.walk(dir)?;
    walker.found.sort();
    let mut sources = Sources { root: dir.to_path_buf(), ..Sources::default() };
    let mut total: u64 = 0;
    for (i, (path, real)) in walker.found.iter().enumerate() {
        let size = std::fs::metadata(real).map_err(|source| ReadError::Io { path: path.clone(), source })?.len();
        if i >= MAX_FILES || total.saturating_add(size.min(MAX_FILE_BYTES + 1)) > MAX_FOLDER_BYTES {
            sources.refused.push(Refused {
                path: path.clone(),
                code: "folder-too-large",
                message: format!(
                    "the manifest folder holds more than {MAX_FILES} files or {MAX_FOLDER_BYTES} bytes (16 MiB) \
                     of manifests; this file and the {} after it are not read",
                    walker.found.len() - i - 1
                ),
                help: "remove the files the fleet does not need, or split the fleet into several folders".into(),
            });
            break;
        }
        match read_file(real).map_err(|source| ReadError::Io { path: path.clone(), source })? {
            Ok(text) => {
                total += text.len() as u64;
                sources.files.push(Arc::new(SourceFile { path: path.clone(), text }));
                sources.relative.push(relative(dir, path));
            }
            Err(r) => sources.refused.push(Refused { path: path.clone(), ..r }),
        }
    }
    sources.refused.extend(walker.refused);
    sources.refused.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sources)
}

/// Reads one regular file of at most [`MAX_FILE_BYTES`] bytes of UTF-8 text,
/// never holding more than that in memory.
fn read_file(path: &Path) -> std::io::Result<Result<String, Refused>> {
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Ok(Err(Refused {
            path: PathBuf::new(),
            code: "not-a-file",
            message: "this is not a regular file; it is not read".into(),
            help: "manifests are plain files".into(),
        }));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Err(too_large(meta.len())));
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Err(too_large(bytes.len() as u64)));
    }
    Ok(String::from_utf8(bytes).map_err(|e| Refused {
        path: PathBuf::new(),
        code: "not-utf8",
        message: format!("this file is not UTF-8 text (an invalid byte at offset {})", e.utf8_error().valid_up_to()),
        help: "save the file as UTF-8".into(),
    }))
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

struct Walker {
    /// The folder with every symbolic link resolved.
    root: PathBuf,
    /// Each manifest file: the path as found, and where it really is.
    found: Vec<(PathBuf, PathBuf)>,
    refused: Vec<Refused>,
    /// Folders already walked, resolved (a link to a parent does not loop).
    visited: HashSet<PathBuf>,
}

impl Walker {
    fn walk(&mut self, dir: &Path) -> Result<(), ReadError> {
        let io = |source| ReadError::Io { path: dir.to_path_buf(), source };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let ty = entry.file_type().map_err(io)?;
            let is_manifest = name.ends_with(".yaml") || name.ends_with(".yml");
            // Where the entry really is: symbolic links resolved (`None`: a dangling link).
            let real = if ty.is_symlink() { path.canonicalize().ok() } else { Some(path.clone()) };
            if ty.is_symlink() && !real.as_ref().is_some_and(|r| r.starts_with(&self.root)) {
                if is_manifest || path.is_dir() {
                    self.refused.push(Refused {
                        path: path.clone(),
                        code: "symlink-outside",
                        message: "this is a symbolic link that leaves the manifest folder (or leads nowhere); \
                                  it is not read"
                            .into(),
                        help: "put the file itself in the manifest folder, or link to a file inside it".into(),
                    });
                }
                continue;
            }
            let Some(real) = real else { continue };
            if real.is_dir() {
                let resolved = real.canonicalize().map_err(io)?;
                if self.visited.insert(resolved) {
                    self.walk(&path)?;
                }
            } else if is_manifest {
                self.found.push((path, real));
            }
        }
        Ok(())
    }
}

/// The commit checked out in `root` when it is (inside) a git repository:
/// `.git/HEAD` followed to its ref (loose, or in `packed-refs`). Read as
/// files, no git process; `None` for a folder outside a repository.
pub fn git_head(root: &Path) -> Option<String> {
    let root = root.canonicalize().ok()?;
    let git = root.ancestors().map(|d| d.join(".git")).find(|g| g.is_dir())?;
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref: ") else {
        return is_commit(head).then(|| head.to_string());
    };
    if let Ok(id) = std::fs::read_to_string(git.join(r)) {
        return is_commit(id.trim()).then(|| id.trim().to_string());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().filter_map(|l| l.split_once(' ')).find(|(_, name)| *name == r).map(|(id, _)| id.to_string())
}

fn is_commit(s: &str) -> bool {
    s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "kind: App\nname: web\nserver: local\nimage: nginx\n";

    fn codes(s: &Sources) -> Vec<(String, &'static str)> {
        s.refused.iter().map(|r| (relative(&s.root, &r.path), r.code)).collect()
    }

    #[test]
    fn the_git_commit_is_read_from_head_loose_or_packed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        assert_eq!(git_head(dir.path()), None);
        std::fs::create_dir_all(dir.path().join(".git/refs/heads")).unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(dir.path().join(".git/packed-refs"), format!("# pack-refs\n{b} refs/heads/main\n")).unwrap();
        assert_eq!(git_head(&dir.path().join("apps")), Some(b.clone()), "packed, from a subfolder");
        std::fs::write(dir.path().join(".git/refs/heads/main"), format!("{a}\n")).unwrap();
        assert_eq!(git_head(dir.path()), Some(a.clone()), "loose beats packed");
        std::fs::write(dir.path().join(".git/HEAD"), format!("{b}\n")).unwrap();
        assert_eq!(git_head(dir.path()), Some(b), "detached");
    }

    #[test]
    fn links_inside_the_folder_are_followed_and_links_out_of_it_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow"), "root:$6$TOPSECRET:19000:0:99999:7:::\n").unwrap();
        std::fs::create_dir(outside.path().join("etc")).unwrap();
        std::fs::write(outside.path().join("etc/app.yaml"), APP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join(".shared")).unwrap();
        std::fs::write(d.join(".shared/web.yaml"), APP).unwrap();
        std::os::unix::fs::symlink(".shared/web.yaml", d.join("web.yaml")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow"), d.join("x.yaml")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("etc"), d.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../..", d.join("up")).unwrap();
        std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
        std::os::unix::fs::symlink("nowhere.yaml", d.join("dangling.yaml")).unwrap();
        let s = read_dir(d).unwrap();
        assert_eq!(s.relative, ["web.yaml"]);
        assert_eq!(s.files[0].text, APP);
        assert_eq!(
            codes(&s),
            [
                ("dangling.yaml".to_string(), "symlink-outside"),
                ("etc".to_string(), "symlink-outside"),
                ("up".to_string(), "symlink-outside"),
                ("x.yaml".to_string(), "symlink-outside"),
            ]
        );
        assert!(s.refused.iter().all(|r| !r.message.contains("TOPSECRET") && !r.message.contains("shadow")));
    }

    #[test]
    fn files_over_the_limits_are_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.yaml"), APP).unwrap();
        let big = std::fs::File::create(d.join("big.yaml")).unwrap();
        big.set_len(100 << 20).unwrap();
        std::fs::write(d.join("bad.yaml"), b"kind: App\nname: \xff\xfe\n").unwrap();
        let s = read_dir(d).unwrap();
        assert_eq!(s.relative, ["a.yaml"]);
        assert_eq!(codes(&s), [("bad.yaml".to_string(), "not-utf8"), ("big.yaml".to_string(), "file-too-large")]);
        assert_eq!(
            s.refused[1].message,
            "this file holds 104857600 bytes; a manifest file may hold at most 1048576 (1 MiB)"
        );
        assert_eq!(s.refused[0].message, "this file is not UTF-8 text (an invalid byte at offset 16)");

        // Each file under the limit, together over it: the files past the limit are refused.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let filler = format!("# {}\n", "x".repeat(1000)).repeat(1000);
        for i in 0..18 {
            std::fs::write(d.join(format!("f{i:02}.yaml")), &filler).unwrap();
        }
        let s = read_dir(d).unwrap();
        assert_eq!(s.files.len(), 16);
        assert_eq!(codes(&s), [("f16.yaml".to_string(), "folder-too-large")]);
    }

    /// `env_file` and `files[].source` follow one rule: `..` that stays
    /// inside is fine, one above the folder, an absolute path or a leading
    /// `~` leaves it; a link leading out is refused; a missing file is
    /// `Missing`; files given in memory are read first, for both.
    #[test]
    fn env_files_and_config_sources_follow_one_path_rule() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow"), "TOPSECRET\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("apps/conf")).unwrap();
        std::fs::write(d.join("apps/a.conf"), "a\n").unwrap();
        std::fs::write(d.join("top.conf"), "top\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow"), d.join("apps/link.conf")).unwrap();
        let mut s = read_dir(d).unwrap();
        s.beside.insert("apps/mem.conf".into(), "mem\n".into());
        let read = |rel: &str, text: &str| Ok((rel.to_string(), text.to_string()));
        let abs = outside.path().join("shadow").display().to_string();
        type Found = Result<(String, String), Inside>;
        let cases: Vec<(&str, Found)> = vec![
            ("a.conf", read("apps/a.conf", "a\n")),
            ("conf/../a.conf", read("apps/a.conf", "a\n")),
            ("./conf/./../a.conf", read("apps/a.conf", "a\n")),
            ("../top.conf", read("top.conf", "top\n")),
            ("mem.conf", read("apps/mem.conf", "mem\n")),
            ("conf/../mem.conf", read("apps/mem.conf", "mem\n")),
            ("../../top.conf", Err(Inside::Outside)),
            ("conf/../../../x", Err(Inside::Outside)),
            (abs.as_str(), Err(Inside::Outside)),
            ("~/shadow", Err(Inside::Outside)),
            ("", Err(Inside::Outside)),
            ("link.conf", Err(Inside::Outside)),
            ("conf/../nothing.conf", Err(Inside::Missing("apps/nothing.conf".into()))),
        ];
        for (path, want) in cases {
            assert_eq!(s.resolve_inside("apps/web.yaml", path), want, "{path}");
            let env = s.read_env_files([("apps/web.yaml", path)]).into_values().next().unwrap();
            let env = match env {
                EnvFileRead::Read { rel, text } => Ok((rel, text)),
                EnvFileRead::Missing { rel } => Err(Inside::Missing(rel)),
                EnvFileRead::Refused(r) if r.code == "env-file-outside" => Err(Inside::Outside),
                EnvFileRead::Refused(r) => panic!("{path}: {r:?}"),
            };
            assert_eq!(env, s.resolve_inside("apps/web.yaml", path), "env_file {path}");
        }
        // A folder is not a file; in-memory files are held to the size limit.
        let r = s.resolve_inside("apps/web.yaml", "conf");
        assert!(matches!(&r, Err(Inside::Refused(r)) if r.code == "not-a-file"), "{r:?}");
        s.beside.insert("big.conf".into(), "x".repeat(MAX_FILE_BYTES as usize + 1));
        let r = s.resolve_inside("web.yaml", "big.conf");
        assert!(matches!(&r, Err(Inside::Refused(r)) if r.code == "file-too-large"), "{r:?}");
    }

    #[test]
    fn the_lexical_rule() {
        assert_eq!(within("", "a/./b/../c").as_deref(), Some("a/c"));
        assert_eq!(within("apps", "../x").as_deref(), Some("x"));
        assert_eq!(within("apps", "../../x"), None);
        assert_eq!(within("", "conf/.."), Some(String::new()));
        assert_eq!(within("", "~user/x"), None);
        assert_eq!(within("", "a\0b"), None);
        assert_eq!(within("", "/etc/passwd"), None);
    }

    #[test]
    fn a_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let ok = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        assert!(ok, "mkfifo is needed for this test");
        let s = read_dir(dir.path()).unwrap();
        assert_eq!(codes(&s), [("pipe.yaml".to_string(), "not-a-file")]);
    }
}
