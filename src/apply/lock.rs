//! One apply per data directory: an exclusive `flock` on `<data_dir>/apply.lock`.
//! The kernel releases it when its holder exits, even by `kill -9`, so a lock
//! left by a dead process is simply taken over. The file records who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another apply holds the lock {path} ({holder}); wait for it, or pass --lock-timeout to wait")]
    Held { path: String, holder: String },
    #[error("cannot use the lock file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Held while an apply runs; released on drop (or when the process dies).
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
}

impl ApplyLock {
    /// Takes the lock, waiting up to `timeout` (zero: fail at once).
    pub fn acquire(data_dir: &Path, timeout: Duration, what: &str) -> Result<ApplyLock, LockError> {
        let path: PathBuf = data_dir.join("apply.lock");
        let shown = path.display().to_string();
        let io = |source| LockError::Io { path: shown.clone(), source };
        // The data folder is the store's to make (private); a lock never makes it
        // again under a process whose folder was deleted.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    // Waiting for another process: there is no event to await.
                    std::thread::sleep(Duration::from_millis(50).min(deadline - Instant::now()));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(LockError::Held { path: shown, holder: describe(&holder) });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let info = serde_json::json!({"pid": std::process::id(), "host": host.trim(), "since": now, "what": what});
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(info.to_string().as_bytes()).map_err(io)?;
        Ok(ApplyLock { _file: file })
    }
}

fn describe(holder: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(holder) else {
        return "holder unknown".into();
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let since = v["since"].as_u64().map_or(String::new(), |s| format!(", for {}s", now.saturating_sub(s)));
    format!(
        "`{}` by pid {} on {}{since}",
        v["what"].as_str().unwrap_or("?"),
        v["pid"],
        v["host"].as_str().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_then_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let first = ApplyLock::acquire(dir.path(), Duration::ZERO, "tomo apply").unwrap();
        let err = ApplyLock::acquire(dir.path(), Duration::ZERO, "tomo apply").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("another apply holds the lock") && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        ApplyLock::acquire(dir.path(), Duration::ZERO, "tomo apply").unwrap();
    }
}
