//! Reading a manifest folder: every `.yaml`/`.yml` file below it, in a stable
//! order, skipping hidden folders (`.git`). The only I/O of `manifest`.
//!
//! What is read is bounded: a symbolic link that leaves the folder, a file
//! that is not a regular file or not UTF-8 text, a file over
//! [`MAX_FILE_BYTES`], and the files past [`MAX_FOLDER_BYTES`] or
//! [`MAX_FILES`] are not read but kept as [`Refused`], which loading reports
//! as errors naming the file.
//!
//! Env files that services name (`env_file`) are read here too, by
//! [`Sources::read_env_files`], under the same bounds and one more rule: an
//! env file is a relative path that stays inside the manifest folder, symbolic
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

impl Sources {
    /// Reads each env file named as (manifest file relative to the folder,
    /// path as written): relative to that manifest file's folder, and only
    /// inside the manifest folder.
    pub fn read_env_files<'a>(&self, wanted: impl IntoIterator<Item = (&'a str, &'a str)>) -> EnvFiles {
        let mut out = EnvFiles::new();
        for (manifest, path) in wanted {
            out.entry((manifest.to_string(), path.to_string()))
                .or_insert_with(|| read_env_file(&self.root, manifest, path));
        }
        out
    }
}

fn read_env_file(root: &Path, manifest: &str, path: &str) -> EnvFileRead {
    let refused = |code: &'static str, message: String, help: &str| {
        EnvFileRead::Refused(Refused { path: PathBuf::from(path), code, message, help: help.into() })
    };
    let outside = || {
        refused(
            "env-file-outside",
            format!("env file `{}` is outside the manifest folder; it is not read", path.escape_default()),
            "an env file is a path relative to the manifest, inside the manifest folder",
        )
    };
    if path.is_empty() || path.contains('\0') || Path::new(path).is_absolute() {
        return outside();
    }
    // Lexically first: `..` may not climb above the folder.
    let mut rel: Vec<String> = Vec::new();
    let written = Path::new(manifest).parent().unwrap_or(Path::new("")).join(path);
    for c in written.components() {
        match c {
            std::path::Component::Normal(n) => rel.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir if rel.pop().is_some() => {}
            std::path::Component::CurDir => {}
            _ => return outside(),
        }
    }
    let rel_text = rel.join("/");
    let Ok(real_root) = root.canonicalize() else {
        return refused(
            "env-file-unreadable",
            format!("env file `{}` cannot be read: the manifest folder cannot be found", path.escape_default()),
            "env files are read from the manifest folder",
        );
    };
    let real = match root.join(&rel_text).canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return EnvFileRead::Missing { rel: rel_text },
        Err(e) => {
            return refused(
                "env-file-unreadable",
                format!("env file `{rel_text}` cannot be read: {e}"),
                "check its permissions",
            );
        }
    };
    // Symbolic links resolved, it must still be inside.
    if !real.starts_with(&real_root) {
        return outside();
    }
    match read_file(&real) {
        Ok(Ok(text)) => EnvFileRead::Read { rel: rel_text, text },
        Ok(Err(r)) => EnvFileRead::Refused(Refused { path: PathBuf::from(&rel_text), ..r }),
        Err(e) => refused(
            "env-file-unreadable",
            format!("env file `{rel_text}` cannot be read: {e}"),
            "check its permissions",
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "kind: App\nname: web\nserver: local\nimage: nginx\n";

    fn codes(s: &Sources) -> Vec<(String, &'static str)> {
        s.refused.iter().map(|r| (relative(&s.root, &r.path), r.code)).collect()
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
