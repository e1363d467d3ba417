//! Reading a manifest folder: every `.yaml`/`.yml` file below it, in a stable
//! order, skipping hidden folders (`.git`). The only I/O of `manifest`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::SourceFile;

/// The manifest files of a folder, read into memory.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The folder, as given.
    pub root: PathBuf,
    pub files: Vec<Arc<SourceFile>>,
    /// Each file's path relative to `root`, with `/` separators.
    pub relative: Vec<String>,
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

/// Reads every manifest file below `dir`.
pub fn read_dir(dir: &Path) -> Result<Sources, ReadError> {
    if !dir.exists() {
        return Err(ReadError::Missing(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(ReadError::NotADir(dir.to_path_buf()));
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths)?;
    paths.sort();
    let mut sources = Sources { root: dir.to_path_buf(), ..Sources::default() };
    for path in paths {
        let bytes = std::fs::read(&path).map_err(|source| ReadError::Io { path: path.clone(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| ReadError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is not UTF-8 text"),
        })?;
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        sources.files.push(Arc::new(SourceFile { path, text }));
        sources.relative.push(rel);
    }
    Ok(sources)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
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
        if ty.is_dir() || (ty.is_symlink() && path.is_dir()) {
            walk(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}
