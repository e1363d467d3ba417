//! The store: one SQLite database at `<data_dir>/tomo.db` (WAL mode) holding
//! users, sessions, observed server facts, apply history and journal,
//! installations, marketplace data, settings, logs, the audit log, metrics,
//! the secret vault's ciphertexts and proposals.
//!
//! Migrations are versioned SQL files applied at open, recorded in SQLite's
//! `user_version`. A damaged or newer database is refused with a message that
//! says how to recover; nothing is changed in that case.

mod audit;
mod proposals;
mod runs;
mod secrets;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use audit::{Activity, ActivityRow};
pub use proposals::{NewProposal, ProposalRow};
pub use runs::{ActionRow, RunRow};
pub use secrets::{Sealed, SecretRow, VaultMeta};
pub use users::{Admission, Failures, SessionRow, UserRow};

/// Migrations in order; the store's version is the number applied.
const MIGRATIONS: &[&str] =
    &[include_str!("migrations/0001_init.sql"), include_str!("migrations/0002_app_revisions.sql")];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store `{path}` is damaged ({detail}); tomo changed nothing.\n  To recover: move it aside (`mv {path} {path}.broken`) and run the command again to start an empty store, or restore it from a backup."
    )]
    Corrupt { path: String, detail: String },
    #[error(
        "the store `{path}` has schema version {found}, newer than this tomo understands ({supported}); tomo changed nothing.\n  Upgrade tomo, or point DATA_DIRECTORY at another folder."
    )]
    TooNew { path: String, found: i64, supported: i64 },
    #[error("cannot create the data folder `{path}`: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("the store `{path}` failed: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
}

/// A handle on the database. Cheap to share behind an `Arc`; calls are serialised.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when missing) `<data_dir>/tomo.db` and migrates it.
    pub fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::CreateDir { path: data_dir.display().to_string(), source })?;
        Store::open(&data_dir.join("tomo.db"))
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
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| classify(&shown, e))?;
        let store = Store { path: path.to_path_buf(), conn: Mutex::new(conn) };
        store.migrate(version)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = i as i64 + 1;
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            tx.execute_batch(sql).map_err(|e| self.err(e))?;
            tx.pragma_update(None, "user_version", version).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
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

    /// The host key fingerprint recorded for a server by `tomo server trust`.
    pub fn trusted_host_key(&self, server: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
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
            "metrics",
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
}
