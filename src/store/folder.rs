//! The data folder on disk: made private (0700, its files 0600), looser modes
//! tightened on open with a warning, the record that tells a folder which has
//! held a store from a fresh one, and the store file's identity (device and
//! inode), so that a store deleted or replaced under a running tomo is noticed.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The store's file name in the data folder.
pub const STORE_FILE: &str = "tomo.db";
/// Written once the folder holds a store: the installation id, one line. Its
/// presence without a store means the store was lost, not that this is a
/// fresh machine.
pub const RECORD_FILE: &str = "installation";
/// Files of the data folder that hold secrets or say where they are.
const PRIVATE_FILES: &[&str] = &["tomo.db", "tomo.db-wal", "tomo.db-shm", "apply.lock", RECORD_FILE];

/// What the data folder holds, as far as the store goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No store and no sign of one: a fresh start.
    Fresh,
    /// A store file with content.
    Store,
    /// The folder has held a store, which is gone.
    Missing { previous: Option<String> },
    /// The store file is there but empty (0 bytes).
    Empty { previous: Option<String> },
}

/// Makes `dir` (and its parents) when missing; the folder itself is 0700. An
/// existing folder open to others is made 0700 with a warning.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Folder { path: dir.display().to_string(), source };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() && m.permissions().mode() & 0o077 != 0 && !is_tomos(dir) => {
            // A folder shared with other programs (say `/var/lib`): its mode is
            // not tomo's to change; tomo's own files in it are still 0600.
            tracing::warn!(
                path = %dir.display(),
                "the data folder `{}` is open to other users (mode {:04o}) and holds files that are not tomo's; tomo leaves its mode alone. Give tomo a folder of its own",
                dir.display(),
                m.permissions().mode() & 0o7777
            );
            Ok(())
        }
        Ok(m) if m.is_dir() => tighten(dir, m.permissions().mode()),
        Ok(_) => Err(io(std::io::Error::new(ErrorKind::AlreadyExists, "it exists and is not a folder"))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(io)?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(()),
                // Another tomo made it at the same moment.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => ensure_private_dir(dir),
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Whether the folder is tomo's own: empty, or holding a store or its record.
fn is_tomos(dir: &Path) -> bool {
    let empty = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    empty || dir.join(STORE_FILE).exists() || dir.join(RECORD_FILE).exists()
}

/// Tightens every file of the data folder that holds secrets to 0600 (at
/// most), with a warning for each one that was looser.
pub fn tighten_files(dir: &Path) -> Result<(), StoreError> {
    for name in PRIVATE_FILES {
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => tighten(&path, m.permissions().mode())?,
            _ => {}
        }
    }
    Ok(())
}

/// Takes group and other permissions away from `path`, warning when it had any.
fn tighten(path: &Path, mode: u32) -> Result<(), StoreError> {
    let mode = mode & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let private = mode & 0o700;
    fs::set_permissions(path, fs::Permissions::from_mode(private)).map_err(|source| StoreError::Permissions {
        path: path.display().to_string(),
        mode,
        source,
    })?;
    tracing::warn!(
        path = %path.display(),
        "`{}` was open to other users (mode {mode:04o}); tomo made it {private:04o}, as it holds secrets",
        path.display()
    );
    Ok(())
}

/// What the data folder holds (it exists).
pub fn inspect(dir: &Path) -> Result<Found, StoreError> {
    let db = dir.join(STORE_FILE);
    let previous = || read_record(dir);
    match fs::metadata(&db) {
        Ok(m) if m.len() == 0 => Ok(Found::Empty { previous: previous() }),
        Ok(_) => Ok(Found::Store),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let used = [RECORD_FILE, "tomo.db-wal", "tomo.db-shm"].iter().any(|n| dir.join(n).exists());
            Ok(if used { Found::Missing { previous: previous() } } else { Found::Fresh })
        }
        Err(source) => Err(StoreError::Folder { path: db.display().to_string(), source }),
    }
}

/// The installation id the folder recorded, if any.
pub fn read_record(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(RECORD_FILE)).ok()?;
    let id = text.trim();
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_string())
}

/// Records the installation id in the folder (0600), replacing what was there.
pub fn write_record(dir: &Path, id: &str) -> Result<(), StoreError> {
    let path = dir.join(RECORD_FILE);
    let tmp = dir.join(format!("{RECORD_FILE}.new-{}", std::process::id()));
    let io = |source| StoreError::Folder { path: path.display().to_string(), source };
    let mut f = create_private(&tmp).map_err(io)?;
    f.write_all(format!("{id}\n").as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

/// Creates an empty file readable by its owner only; fails when it exists.
pub fn create_private(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Removes a file, if it is there.
pub fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The store file and its SQLite companions.
pub fn with_companions(db: &Path) -> [PathBuf; 3] {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    [db.to_path_buf(), PathBuf::from(wal), PathBuf::from(shm)]
}

/// Which file a path names now: (device, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let m = fs::metadata(path)?;
        Ok(FileId { dev: m.dev(), ino: m.ino() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folder_is_made_private_and_loose_modes_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/data");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(dir.join("tomo.db"), "x").unwrap();
        fs::set_permissions(dir.join("tomo.db"), fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_dir(&dir).unwrap();
        tighten_files(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("tomo.db")), 0o600);
        // A folder shared with others keeps its mode.
        let shared = root.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::write(shared.join("other-program.conf"), "").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755);
        let file = root.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(ensure_private_dir(&file), Err(StoreError::Folder { .. })));
    }

    #[test]
    fn a_used_folder_without_its_store_is_told_from_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(inspect(dir.path()).unwrap(), Found::Fresh);
        fs::write(dir.path().join("apply.lock"), "").unwrap();
        assert_eq!(inspect(dir.path()).unwrap(), Found::Fresh, "a lock alone is no store");
        write_record(dir.path(), "00ff").unwrap();
        assert_eq!(mode(&dir.path().join(RECORD_FILE)), 0o600);
        assert_eq!(inspect(dir.path()).unwrap(), Found::Missing { previous: Some("00ff".into()) });
        fs::write(dir.path().join(STORE_FILE), "").unwrap();
        assert_eq!(inspect(dir.path()).unwrap(), Found::Empty { previous: Some("00ff".into()) });
        fs::write(dir.path().join(STORE_FILE), "SQLite format 3\0").unwrap();
        assert_eq!(inspect(dir.path()).unwrap(), Found::Store);
        fs::write(dir.path().join(RECORD_FILE), "not an id\n").unwrap();
        assert_eq!(read_record(dir.path()), None);
    }
}
