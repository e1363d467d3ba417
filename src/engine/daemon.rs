//! tomo's daemons as `metrics_system` reports them: how long this process has
//! run (from `mark_process_start`, the first thing `cli::run` does), and
//! whether a `tomo watch` runs on this data folder. A watch holds an
//! exclusive `flock` on `<data_dir>/watch.lock` for its life, with its pid,
//! host and start written inside; the kernel drops the lock when the process
//! ends, even by `kill -9`, so a lock that can be shared means no watch runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Engine;
use crate::error::{Error, Result};

/// When this process started (as `mark_process_start` saw it).
static STARTED: OnceLock<Instant> = OnceLock::new();

/// How long a new watch waits for a reader's brief shared lock.
const TAKE_FOR: Duration = Duration::from_secs(2);

const FILE: &str = "watch.lock";

/// Notes the process start; later calls change nothing.
pub fn mark_process_start() {
    STARTED.get_or_init(Instant::now);
}

/// Time since the process started (since the first call when it was never marked).
pub fn process_uptime() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

/// Whether a `tomo watch` runs on this data folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct WatchState {
    pub running: bool,
    /// Its process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The machine it runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Unix seconds of its start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// Held by a running `tomo watch`; released on drop or when the process dies.
#[derive(Debug)]
pub struct WatchMark {
    _file: File,
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::read(path.display(), source)
}

/// Marks a watch running on `data_dir`; `None` when another one already does.
fn mark(data_dir: &Path) -> Result<Option<WatchMark>> {
    let path = data_dir.join(FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    let deadline = Instant::now() + TAKE_FOR;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                // A reader's shared lock lasts microseconds; another watch's, its life.
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(&path, e)),
        }
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let info = serde_json::json!({"pid": std::process::id(), "host": host.trim(), "since": crate::auth::now_unix()});
    file.set_len(0).map_err(|e| io(&path, e))?;
    file.rewind().map_err(|e| io(&path, e))?;
    file.write_all(info.to_string().as_bytes()).map_err(|e| io(&path, e))?;
    Ok(Some(WatchMark { _file: file }))
}

/// The watch on `data_dir`, from its lock.
fn state(data_dir: &Path) -> WatchState {
    let Ok(mut file) = File::open(data_dir.join(FILE)) else { return WatchState::default() };
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            WatchState {
                running: true,
                pid: v["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
                host: v["host"].as_str().map(String::from),
                since: v["since"].as_i64(),
            }
        }
        // Locked by nobody (released when `file` closes), or not lockable: no watch to see.
        Ok(()) | Err(TryLockError::Error(_)) => WatchState::default(),
    }
}

impl Engine {
    /// Marks this process as the data folder's `tomo watch` (its store open
    /// first); `None`, with a warning, when another watch already runs there.
    pub fn mark_watch(&self) -> Result<Option<WatchMark>> {
        self.check_store()?;
        let marked = mark(&self.config().data_dir)?;
        if marked.is_none() {
            let other = state(&self.config().data_dir);
            tracing::warn!(pid = ?other.pid, "another tomo watch runs on this data folder");
        }
        Ok(marked)
    }

    /// Whether a `tomo watch` runs on this data folder.
    pub fn watch_state(&self) -> WatchState {
        state(&self.config().data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_watch_is_seen_until_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state(dir.path()), WatchState::default(), "no file: no watch");
        let first = mark(dir.path()).unwrap().expect("marked");
        let seen = state(dir.path());
        assert!(seen.running, "{seen:?}");
        assert_eq!(seen.pid, Some(std::process::id()));
        assert!(seen.since.is_some_and(|s| s > 0), "{seen:?}");
        // Reading took a shared lock for a moment only: the state is unchanged.
        assert!(state(dir.path()).running);
        // A second watch is told another one runs (after waiting a little).
        assert!(mark(dir.path()).unwrap().is_none());
        drop(first);
        assert!(!state(dir.path()).running, "released: no watch");
        assert!(mark(dir.path()).unwrap().is_some(), "and a new watch may mark itself");
    }

    #[test]
    fn uptime_counts_from_the_marked_start() {
        mark_process_start();
        let before = process_uptime();
        std::thread::sleep(Duration::from_millis(20));
        assert!(process_uptime() >= before + Duration::from_millis(20));
        // A later mark does not restart the clock.
        mark_process_start();
        assert!(process_uptime() >= before + Duration::from_millis(20));
    }
}
