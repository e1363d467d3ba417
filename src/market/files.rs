//! Reading a store's files without leaving its root, and the content
//! checksum of an app's folder.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The largest file a store may hold that tomo reads or hashes.
pub const MAX_FILE: u64 = 4 << 20;
/// The most files hashed per app folder, and how deep.
const MAX_FILES: usize = 2_000;
const MAX_DEPTH: usize = 12;

/// `path` resolved, when it stays inside `root` (which is canonical).
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot be read: {e}"))?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(format!("leads outside the store folder (to `{}`); it was not read", real.display()))
    }
}

/// The text of `path`, a file inside `root`.
pub fn read_text(root: &Path, path: &Path) -> Result<String, String> {
    let real = inside(root, path)?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a file".to_string());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("is larger than {} MiB", MAX_FILE >> 20));
    }
    let bytes = std::fs::read(&real).map_err(|e| format!("cannot be read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

/// SHA-256 (hex) of the folder `dir` inside `root`: every file's path
/// relative to `dir` and its contents, in name order. A symbolic link is
/// hashed as its target, and must stay inside `root`.
pub fn checksum(root: &Path, dir: &Path) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut count = 0;
    walk(root, dir, "", 0, &mut h, &mut count)?;
    Ok(crate::model::spec::hex(&h.finalize()))
}

fn walk(root: &Path, dir: &Path, rel: &str, depth: usize, h: &mut Sha256, count: &mut usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("`{rel}` is nested more than {MAX_DEPTH} folders deep"));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("`{}` cannot be read: {e}", dir.display()))?;
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        *count += 1;
        if *count > MAX_FILES {
            return Err(format!("the app folder holds more than {MAX_FILES} files"));
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("`{rel}` cannot be read: {e}"))?;
        if meta.file_type().is_symlink() {
            inside(root, &path).map_err(|why| format!("`{rel}` is a symbolic link that {why}"))?;
            let target = std::fs::read_link(&path).map_err(|e| format!("`{rel}` cannot be read: {e}"))?;
            h.update(format!("l\0{rel}\0{}\0", target.display()).as_bytes());
        } else if meta.is_dir() {
            h.update(format!("d\0{rel}\0").as_bytes());
            walk(root, &path, &rel, depth + 1, h, count)?;
        } else if meta.is_file() {
            if meta.len() > MAX_FILE {
                return Err(format!("`{rel}` is larger than {} MiB", MAX_FILE >> 20));
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("`{rel}` cannot be read: {e}"))?;
            h.update(format!("f\0{rel}\0{}\0", bytes.len()).as_bytes());
            h.update(&bytes);
        }
    }
    Ok(())
}
