//! The store: one SQLite database at `<data_dir>/tomo.db` (WAL mode) holding
//! users, sessions, observed server facts, apply history and journal,
//! installations, marketplace data, settings, logs, the audit log, metrics,
//! the secret vault's ciphertexts and proposals.
//!
//! Migrations are versioned SQL files applied at open, recorded in SQLite's
//! `user_version`. A damaged or newer database is refused with a message that
//! says how to recover; nothing is changed in that case. So is a store that is
//! missing or empty in a data folder that has held one (`folder.rs`): only
//! `reinit_in` makes a new store there.

mod audit;
mod backup;
mod counts;
pub mod folder;
mod logs;
mod market;
mod metrics;
mod proposals;
mod releases;
mod rollout;
mod runs;
mod secrets;
mod status;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use folder::{FileId, Found, STORE_FILE};

pub use audit::{Activity, ActivityRow};
pub use backup::{BackupRunRow, Newer, installation_of as store_installation_of};
pub use logs::{LogEntry, LogQuery};
pub use market::{CatalogRow, CategoryRow, RepoRow, SearchQuery};
pub use metrics::pack::from_int as metric_value;
pub use metrics::{AlertRow, Housekeeping, SeriesRow};
pub use proposals::{NewProposal, ProposalRow};
pub use releases::{NewRelease, ReleaseRow, ReleaseService};
pub use runs::{ActionRow, InstallationRecord, RunRow};
pub use secrets::{Sealed, SecretRow, VaultMeta};
pub use status::{ProposalStatus, RunStatus, UnknownStatus};
pub use users::{Admission, Failures, SessionRow, UserRow};

/// Migrations in order; the store's version is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_app_revisions.sql"),
    include_str!("migrations/0003_marketplace.sql"),
    include_str!("migrations/0004_run_cancelled.sql"),
    include_str!("migrations/0005_server_os.sql"),
    include_str!("migrations/0006_metrics.sql"),
    include_str!("migrations/0007_logs.sql"),
    include_str!("migrations/0008_backup_runs.sql"),
    include_str!("migrations/0009_releases.sql"),
    include_str!("migrations/0010_restore_proposals.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store `{path}` is damaged ({detail}); tomo changed nothing.\n  To recover: restore it from a backup, or move it aside (`mv {path} {path}.broken`) and run the command again with `--reinit` to make a new store that adopts the installation of the servers' containers."
    )]
    Corrupt { path: String, detail: String },
    #[error(
        "the store `{path}` has schema version {found}, newer than this tomo understands ({supported}); tomo changed nothing.\n  Upgrade tomo, or point DATA_DIRECTORY at another folder."
    )]
    TooNew { path: String, found: i64, supported: i64 },
    #[error(
        "the data folder `{dir}` has held a store{}, but `{path}` is missing; tomo changed nothing.\n  {RECOVER}",
        installation_note(.previous)
    )]
    Missing { dir: String, path: String, previous: Option<String> },
    #[error(
        "the store `{path}` is empty (0 bytes){}; tomo changed nothing.\n  {RECOVER}",
        installation_note(.previous)
    )]
    Empty { path: String, previous: Option<String> },
    /// The store file this process opened was deleted or replaced under it.
    #[error(
        "the store `{path}` was {how} while tomo had it open; stopping so as not to write to a store nobody will read, or to make a second installation.\n  Restore the data folder from a backup, or start tomo again with `--reinit` to make a new store that adopts the installation of the servers' containers."
    )]
    Lost { path: String, how: &'static str },
    /// A store this process made finds the declared servers running the
    /// fleet's objects under another installation id: the store that managed
    /// them is gone (a deleted data folder, another working directory).
    #[error(
        "there was no store at `{path}`, but server {server} runs this fleet's objects made by installation {installation} ({}): the store that managed them is gone. tomo changed nothing and did not keep a new store.\n  {RECOVER}",
        objects.join(", ")
    )]
    Orphaned { path: String, server: String, installation: String, objects: Vec<String> },
    #[error("the data folder `{path}` cannot be used: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error(
        "`{path}` is open to other users (mode {mode:04o}) and tomo cannot make it private: {source}; run `chmod go-rwx {path}` as its owner"
    )]
    Permissions { path: String, mode: u32, source: std::io::Error },
    #[error("the store `{path}` failed: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
}

/// The recovery hint for a lost or emptied store.
const RECOVER: &str = "To recover: restore `tomo.db` from a backup, or run the command again with `--reinit` to make a new store that adopts the installation id found on the declared servers' containers (their `tomo.installation` label).";

fn installation_note(previous: &Option<String>) -> String {
    previous.as_ref().map_or(String::new(), |id| format!(" (installation {id})"))
}

/// A handle on the database. Cheap to share behind an `Arc`; calls are serialised.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The file opened, to notice it being deleted or replaced.
    file: Option<FileId>,
    /// This process made the store (the data folder had none, nor a record
    /// of one): nothing says yet that the fleet is not another store's.
    created: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Switches to WAL. Another process switching a new store at the same moment
/// makes the switch answer BUSY at once (SQLite's busy handler does not wait
/// for it): then wait for that process's lock (`BEGIN IMMEDIATE` does, through
/// the busy handler) and switch again, which finds WAL set or sets it.
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut attempts = 0;
    loop {
        match conn.execute_batch("PRAGMA journal_mode = WAL;") {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy && attempts < 3 => {
                attempts += 1;
                conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")?;
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens `<data_dir>/tomo.db` and migrates it. A fresh folder gets a new
    /// store (the folder 0700, the files 0600); a folder that has held a
    /// store which is now missing or empty is refused (`Missing`, `Empty`).
    pub fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        folder::ensure_private_dir(data_dir)?;
        let mut created = false;
        match folder::inspect(data_dir)? {
            Found::Store => {}
            Found::Fresh => {
                created = Store::create(data_dir, None)?;
            }
            Found::Missing { previous } => {
                return Err(StoreError::Missing {
                    dir: data_dir.display().to_string(),
                    path: data_dir.join(STORE_FILE).display().to_string(),
                    previous,
                });
            }
            Found::Empty { previous } => {
                return Err(StoreError::Empty { path: data_dir.join(STORE_FILE).display().to_string(), previous });
            }
        }
        let mut store = Store::open_existing(data_dir)?;
        store.created = created;
        Ok(store)
    }

    /// Whether this process made the store in a data folder that had none.
    pub fn created_here(&self) -> bool {
        self.created
    }

    /// Removes the store this process made, and the folder's record of it,
    /// so that the next run finds the data folder as fresh as this one did.
    /// Does nothing to a store this process did not make.
    pub fn discard_created(&self) -> Result<(), StoreError> {
        if !self.created {
            return Ok(());
        }
        let Some(dir) = self.path.parent() else { return Ok(()) };
        let mut files = folder::with_companions(&self.path).to_vec();
        files.push(dir.join(folder::RECORD_FILE));
        for f in files {
            folder::remove_if_there(&f)
                .map_err(|source| StoreError::Folder { path: f.display().to_string(), source })?;
        }
        Ok(())
    }

    /// Replaces a missing or empty store with a new one whose installation id
    /// is `installation` (or a new one). What was there is set aside as
    /// `tomo.db.before-reinit-<time>`, never deleted. Refused when the store
    /// is present.
    pub fn reinit_in(data_dir: &Path, installation: Option<&str>) -> Result<Store, StoreError> {
        folder::ensure_private_dir(data_dir)?;
        let db = data_dir.join(STORE_FILE);
        if folder::inspect(data_dir)? == Found::Store {
            return Err(StoreError::Folder {
                path: db.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the store is there"),
            });
        }
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for from in folder::with_companions(&db) {
            if from.exists() {
                let mut to = from.as_os_str().to_owned();
                to.push(format!(".before-reinit-{stamp}"));
                std::fs::rename(&from, &to)
                    .map_err(|source| StoreError::Folder { path: from.display().to_string(), source })?;
            }
        }
        if !Store::create(data_dir, installation)? {
            return Err(StoreError::Folder {
                path: db.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "another tomo made a store meanwhile"),
            });
        }
        Store::open_existing(data_dir)
    }

    /// Opens the store of a data folder that holds one: modes tightened, the
    /// installation recorded in the folder.
    fn open_existing(data_dir: &Path) -> Result<Store, StoreError> {
        folder::tighten_files(data_dir)?;
        let mut store = Store::open(&data_dir.join(STORE_FILE))?;
        store.file = FileId::of(&store.path).ok();
        if folder::read_record(data_dir).is_none() {
            folder::write_record(data_dir, &store.installation_id()?)?;
        }
        Ok(store)
    }

    /// Makes a complete store under a temporary name and links it into place,
    /// so that `tomo.db` is either absent or whole; returns false when another
    /// process linked its store first.
    fn create(data_dir: &Path, installation: Option<&str>) -> Result<bool, StoreError> {
        let db = data_dir.join(STORE_FILE);
        let tmp = data_dir.join(format!("{STORE_FILE}.new-{}", std::process::id()));
        let io = |source| StoreError::Folder { path: tmp.display().to_string(), source };
        for f in folder::with_companions(&tmp) {
            folder::remove_if_there(&f).map_err(io)?;
        }
        // SQLite gives the WAL and shared-memory files the mode of the database file.
        folder::create_private(&tmp).map_err(io)?;
        let made = Store::open(&tmp).and_then(|s| {
            let id = match installation {
                Some(id) => {
                    s.set_installation_id(id)?;
                    id.to_string()
                }
                None => s.installation_id()?,
            };
            s.close()?;
            Ok(id)
        });
        let linked = made.and_then(|id| match std::fs::hard_link(&tmp, &db) {
            Ok(()) => Ok(Some(id)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            // A file system without hard links: a rename, which a racing
            // process could overwrite; still never a partial store.
            Err(_) if !db.exists() => std::fs::rename(&tmp, &db)
                .map(|()| Some(id))
                .map_err(|source| StoreError::Folder { path: db.display().to_string(), source }),
            Err(source) => Err(StoreError::Folder { path: db.display().to_string(), source }),
        });
        for f in folder::with_companions(&tmp) {
            let _ = folder::remove_if_there(&f);
        }
        match linked? {
            Some(id) => {
                folder::write_record(data_dir, &id)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Checkpoints the WAL into the database file and closes it.
    fn close(self) -> Result<(), StoreError> {
        let conn = self.conn.into_inner().unwrap_or_else(|p| p.into_inner());
        let shown = self.path.display().to_string();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(|e| classify(&shown, e))?;
        conn.close().map_err(|(_, e)| classify(&shown, e))
    }

    /// Opens the database file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(&shown, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| classify(&shown, e))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| classify(&shown, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: shown, found: version, supported: SCHEMA_VERSION });
        }
        wal(&conn).map_err(|e| classify(&shown, e))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| classify(&shown, e))?;
        let store = Store { path: path.to_path_buf(), conn: Mutex::new(conn), file: None, created: false };
        store.migrate(version)?;
        Ok(store)
    }

    /// Fails when the store file this handle opened (through `open_in`) was
    /// deleted or replaced since: writes would go to a file nobody reads.
    pub fn check_file(&self) -> Result<(), StoreError> {
        let Some(opened) = self.file else { return Ok(()) };
        let lost = |how| StoreError::Lost { path: self.path.display().to_string(), how };
        match FileId::of(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(lost("replaced")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(lost("deleted")),
            Err(source) => Err(StoreError::Folder { path: self.path.display().to_string(), source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        if from as usize >= MIGRATIONS.len() {
            return Ok(());
        }
        let mut conn = self.conn();
        // A step may rebuild a table others refer to (SQLite's procedure for
        // what ALTER TABLE cannot do): foreign keys are off while it runs
        // (the pragma is a no-op inside a transaction) and checked before it
        // commits.
        conn.execute_batch("PRAGMA foreign_keys = OFF").map_err(|e| self.err(e))?;
        let done = Self::migrate_steps(&mut conn, from).map_err(|e| self.err(e));
        let on = conn.execute_batch("PRAGMA foreign_keys = ON").map_err(|e| self.err(e));
        done.and(on)
    }

    fn migrate_steps(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = i as i64 + 1;
            // One process migrates at a time (IMMEDIATE takes the write lock
            // first); one that opened the same new store meanwhile finds the
            // step done once it gets the lock.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now >= version {
                continue;
            }
            tx.execute_batch(sql)?;
            let dangling: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
            if dangling > 0 {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                    Some(format!("migration {version} left {dangling} row(s) referring to nothing")),
                ));
            }
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// This installation's id (random, made on first use): it marks the
    /// objects this store's applies create.
    pub fn installation_id(&self) -> Result<String, StoreError> {
        let conn = self.conn();
        let fresh = {
            let mut bytes = [0u8; 8];
            getrandom_fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        conn.execute(
            "INSERT OR IGNORE INTO settings (user, key, value_json) VALUES ('', 'installation_id', ?1)",
            [serde_json::Value::String(fresh).to_string()],
        )
        .map_err(|e| self.err(e))?;
        let v: String = conn
            .query_row("SELECT value_json FROM settings WHERE user = '' AND key = 'installation_id'", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(serde_json::from_str::<String>(&v).unwrap_or(v))
    }

    /// Sets this installation's id (a new store adopting the id found on
    /// the servers' containers).
    pub fn set_installation_id(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO settings (user, key, value_json) VALUES ('', 'installation_id', ?1)
                 ON CONFLICT (user, key) DO UPDATE SET value_json = excluded.value_json",
                [serde_json::Value::String(id.to_string()).to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The host key fingerprint recorded for a server by `tomo server trust`.
    pub fn trusted_host_key(&self, server: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row("SELECT host_key FROM servers WHERE name = ?1", [server], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Records what a probe found out about a server.
    pub fn record_server_facts(
        &self,
        server: &str,
        host: &str,
        reachable: bool,
        docker_version: Option<&str>,
        os: Option<&str>,
        uptime_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO servers (name, host, reachable, docker_version, os, uptime_seconds, observed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, reachable = excluded.reachable,
                 docker_version = excluded.docker_version, os = excluded.os,
                 uptime_seconds = excluded.uptime_seconds, observed_at = excluded.observed_at",
                rusqlite::params![server, host, reachable, docker_version, os, uptime_seconds.map(|u| u as i64)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records what the probe found of a server's OS and Docker.
    pub fn record_server_system(&self, server: &str, facts: &crate::model::host::HostFacts) -> Result<(), StoreError> {
        let json = serde_json::to_string(facts).unwrap_or_default();
        let os = format!("{} {}", facts.os_id, facts.version_id);
        let init = serde_json::to_value(facts.init).ok().and_then(|v| v.as_str().map(str::to_string));
        let pm = facts.package_managers.first().map(|p| p.command());
        let root_or_access = facts.is_root() || facts.socket_access;
        self.conn()
            .execute(
                "UPDATE servers SET facts_json = ?2, os_release = ?3, arch = ?4, init_system = ?5,
                 package_manager = ?6, docker_installed = ?7, docker_answers = ?8, socket_access = ?9
                 WHERE name = ?1",
                rusqlite::params![
                    server,
                    json,
                    os.trim(),
                    facts.arch,
                    init,
                    pm,
                    facts.docker_installed(),
                    facts.daemon,
                    root_or_access
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// What the probe last found of a server's OS and Docker.
    pub fn server_system(&self, server: &str) -> Result<Option<crate::model::host::HostFacts>, StoreError> {
        let json: Option<Option<String>> = self
            .conn()
            .query_row("SELECT facts_json FROM servers WHERE name = ?1", [server], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(json.flatten().and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Records a server's trusted host key fingerprint.
    pub fn trust_host_key(&self, server: &str, host: &str, fingerprint: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO servers (name, host, host_key, host_key_at) VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, host_key = excluded.host_key, host_key_at = excluded.host_key_at",
                rusqlite::params![server, host, fingerprint],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Names of the tables, for checks and diagnostics.
    pub fn tables(&self) -> Result<Vec<String>, StoreError> {
        self.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", [], |r| r.get(0))
    }

    /// Every row of a query, mapped by `f`.
    fn rows<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, f).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back the open transaction.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        classify(&self.path.display().to_string(), e)
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    use chacha20poly1305::aead::Generate;
    let nonce = chacha20poly1305::XNonce::generate();
    for (b, n) in buf.iter_mut().zip(nonce.iter()) {
        *b = *n;
    }
}

fn classify(path: &str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path: path.to_string(), detail: e.to_string() }
        }
        _ => StoreError::Sqlite { path: path.to_string(), source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installation_record_is_put_back_whole_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let run = store.begin_run("fp", "me", "cli").unwrap();
        assert_eq!(store.installation_record("s", "a", "web").unwrap(), None);
        store.set_installation("s", "a", "web", "old", "img:1", "h1", &serde_json::json!({"x": 1}), run).unwrap();
        let before = store.installation_record("s", "a", "web").unwrap().unwrap();
        assert_eq!(before.container_id.as_deref(), Some("old"));
        store.set_installation("s", "a", "web", "new", "img:2", "h2", &serde_json::json!({"x": 2}), run).unwrap();
        store.put_installation_back("s", "a", "web", Some(&before)).unwrap();
        assert_eq!(store.installation_record("s", "a", "web").unwrap(), Some(before));
        store.put_installation_back("s", "a", "web", None).unwrap();
        assert_eq!(store.installation("s", "a", "web").unwrap(), None);
    }

    #[test]
    fn creates_every_table_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let tables = store.tables().unwrap();
        for t in [
            "users",
            "sessions",
            "servers",
            "installations",
            "apply_runs",
            "apply_actions",
            "marketplace_repos",
            "marketplace_apps",
            "settings",
            "logs",
            "activities",
            "metric_series",
            "metric_samples",
            "metric_rollups",
            "releases",
            "backup_runs",
            "secrets",
            "proposals",
            "locks",
        ] {
            assert!(tables.iter().any(|x| x == t), "missing table {t}");
        }
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        drop(store);
        let again = Store::open_in(dir.path()).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = again.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    /// A store of version 2 with history keeps every run and every row that
    /// refers to one when the runs table is rebuilt for `cancelled`, and
    /// the references still cascade.
    #[test]
    fn the_cancelled_status_migration_keeps_history_and_its_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tomo.db");
        {
            let c = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..2] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 2).unwrap();
            c.execute_batch(
                "PRAGMA foreign_keys = ON;
                 INSERT INTO apply_runs (id, status, actor, source) VALUES (7, 'succeeded', 'ann', 'mcp');
                 INSERT INTO apply_actions (run_id, seq, server, action, status) VALUES (7, 0, 'nas', 'create', 'succeeded');
                 INSERT INTO app_revisions (app, run_id, doc_json) VALUES ('web', 7, '{}');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let runs = store.runs(10).unwrap();
        assert_eq!((runs.len(), runs[0].id, runs[0].status), (1, 7, RunStatus::Succeeded));
        assert_eq!(store.run_actions(7).unwrap().len(), 1);
        let run = store.begin_run("f", "ann", "mcp").unwrap();
        store.finish_run(run, RunStatus::Cancelled, &serde_json::json!({})).unwrap();
        assert_eq!(store.runs(1).unwrap()[0].status, RunStatus::Cancelled);
        let conn = store.conn();
        let target: String =
            conn.query_row("SELECT \"table\" FROM pragma_foreign_key_list('apply_actions')", [], |r| r.get(0)).unwrap();
        assert_eq!(target, "apply_runs");
        conn.execute("DELETE FROM apply_runs WHERE id = 7", []).unwrap();
        let left: i64 = conn.query_row("SELECT count(*) FROM apply_actions", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "deleting a run still deletes its actions");
        let kept: Option<i64> = conn.query_row("SELECT run_id FROM app_revisions", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, None, "and unlinks its revisions");
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1, "foreign keys are on again after migrating");
    }

    #[test]
    fn corrupt_file_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tomo.db");
        let junk =
            b"this is not a database, but it is 100 bytes long so sqlite reads the header and complains......".to_vec();
        std::fs::write(&path, &junk).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("damaged") && msg.contains("mv "), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), junk);
    }

    #[test]
    fn processes_opening_a_new_store_at_once_all_succeed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tomo.db");
            let opened: Vec<Result<i64, String>> = std::thread::scope(|s| {
                let all: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| Store::open(&path).and_then(|st| st.schema_version()).map_err(|e| e.to_string()))
                    })
                    .collect();
                all.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in opened {
                assert_eq!(r, Ok(SCHEMA_VERSION));
            }
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tomo.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 5).unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 5), "{err}");
        assert!(err.to_string().contains("Upgrade tomo"));
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_store_and_its_wal_and_shm_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let store = Store::open_in(&dir).unwrap();
        store.record_server_facts("s", "h", true, None, None, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in ["tomo.db", "tomo.db-wal", "tomo.db-shm", folder::RECORD_FILE] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        assert_eq!(folder::read_record(&dir), Some(store.installation_id().unwrap()));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_lost_or_emptied_store_is_refused_and_reinit_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let id = Store::open_in(dir.path()).unwrap().installation_id().unwrap();
        let db = dir.path().join(STORE_FILE);
        std::fs::File::create(&db).unwrap();
        let err = Store::open_in(dir.path()).unwrap_err();
        assert!(matches!(&err, StoreError::Empty { previous: Some(p), .. } if *p == id), "{err}");
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
        std::fs::remove_file(&db).unwrap();
        let err = Store::open_in(dir.path()).unwrap_err();
        assert!(matches!(&err, StoreError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("--reinit"), "{err}");
        assert!(!db.exists());
        let store = Store::reinit_in(dir.path(), Some("abc123")).unwrap();
        assert_eq!(store.installation_id().unwrap(), "abc123");
        assert_eq!(folder::read_record(dir.path()).as_deref(), Some("abc123"));
        assert!(matches!(Store::reinit_in(dir.path(), None), Err(StoreError::Folder { .. })));
        assert_eq!(Store::open_in(dir.path()).unwrap().installation_id().unwrap(), "abc123");
    }

    #[test]
    fn a_store_deleted_or_replaced_under_an_open_handle_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        store.check_file().unwrap();
        let db = dir.path().join(STORE_FILE);
        std::fs::rename(&db, dir.path().join("moved")).unwrap();
        assert!(matches!(store.check_file(), Err(StoreError::Lost { how: "deleted", .. })));
        std::fs::copy(dir.path().join("moved"), &db).unwrap();
        assert!(matches!(store.check_file(), Err(StoreError::Lost { how: "replaced", .. })));
    }
}
