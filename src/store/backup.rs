//! The store's part in backups: a consistent copy through SQLite's online
//! backup API (one step, under a read transaction: writers in other
//! processes go on, and the copy is one point in time), what a restore would
//! replace (records newer than a time), moving the vault between stores, and
//! the record of backup runs.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, classify};

/// Records of a store newer than a point in time: what restoring an older
/// copy over it would lose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Newer {
    pub runs: u64,
    pub audit_events: u64,
    pub secrets: u64,
    pub proposals: u64,
}

impl Newer {
    pub fn is_empty(&self) -> bool {
        *self == Newer::default()
    }
}

/// One recorded backup run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupRunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub trigger: String,
    pub file: Option<String>,
    pub size: Option<u64>,
    pub members: Option<u64>,
    pub apps: Vec<String>,
    pub verified: bool,
    pub outcome: String,
    pub error: Option<String>,
}

impl Store {
    /// Copies the whole database into a new file `dest` (0600), consistent as
    /// of one moment even while other processes write.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let shown = dest.display().to_string();
        super::folder::create_private(dest).map_err(|source| StoreError::Folder { path: shown.clone(), source })?;
        let mut to = Connection::open(dest).map_err(|e| classify(&shown, e))?;
        let conn = self.conn();
        let backup = rusqlite::backup::Backup::new(&conn, &mut to).map_err(|e| self.err(e))?;
        // All pages in one step: the source is read under one read
        // transaction, so the copy is a single snapshot.
        loop {
            match backup.step(-1).map_err(|e| self.err(e))? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        drop(backup);
        to.execute_batch("PRAGMA journal_mode = DELETE;").map_err(|e| classify(&shown, e))?;
        Ok(())
    }

    /// Counts records made or changed after `since` (`%Y-%m-%dT%H:%M:%fZ`).
    pub fn newer_than(&self, since: &str) -> Result<Newer, StoreError> {
        let conn = self.conn();
        let count = |sql: &str| -> Result<u64, StoreError> {
            conn.query_row(sql, [since], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64).map_err(|e| self.err(e))
        };
        Ok(Newer {
            runs: count("SELECT count(*) FROM apply_runs WHERE started_at > ?1")?,
            audit_events: count("SELECT count(*) FROM activities WHERE at > ?1")?,
            secrets: count("SELECT count(*) FROM secrets WHERE updated_at > ?1")?,
            proposals: count("SELECT count(*) FROM proposals WHERE created_at > ?1")?,
        })
    }

    /// Replaces this store's vault (secrets and key check) with the one in
    /// the database file `from`, in one transaction.
    pub fn replace_vault_from(&self, from: &Path) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        conn.execute("ATTACH DATABASE ?1 AS restored", [from.display().to_string()]).map_err(|e| self.err(e))?;
        let done = (|| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM secrets", [])?;
            let n = tx.execute("INSERT INTO secrets SELECT * FROM restored.secrets", [])?;
            tx.execute("DELETE FROM vault_meta", [])?;
            tx.execute("INSERT INTO vault_meta SELECT * FROM restored.vault_meta", [])?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>(n as u64)
        })();
        let detached = conn.execute("DETACH DATABASE restored", []);
        let n = done.map_err(|e| self.err(e))?;
        detached.map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Starts recording a backup run; returns its id.
    pub fn backup_started(&self, trigger: &str) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute("INSERT INTO backup_runs (trigger) VALUES (?1)", [trigger]).map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records how a backup run ended.
    #[allow(clippy::too_many_arguments)]
    pub fn backup_finished(
        &self,
        id: i64,
        file: Option<&str>,
        size: Option<u64>,
        members: Option<u64>,
        apps: &[String],
        verified: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let apps = serde_json::to_string(apps).unwrap_or_else(|_| "[]".into());
        let outcome = if error.is_some() { "failed" } else { "ok" };
        self.conn()
            .execute(
                "UPDATE backup_runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), file = ?2, size = ?3,
                 members = ?4, apps_json = ?5, verified = ?6, outcome = ?7, error = ?8 WHERE id = ?1",
                params![id, file, size.map(|s| s as i64), members.map(|m| m as i64), apps, verified, outcome, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The recorded run that wrote `file`, if any.
    pub fn backup_run_for(&self, file: &str) -> Result<Option<BackupRunRow>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT id, started_at, finished_at, trigger, file, size, members, apps_json, verified, outcome, error
             FROM backup_runs WHERE file = ?1 ORDER BY id DESC LIMIT 1",
            [file],
            backup_row,
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// When the newest run of `trigger` started (store time text), if any.
    pub fn backup_last_started(&self, trigger: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT started_at FROM backup_runs WHERE trigger = ?1 ORDER BY id DESC LIMIT 1",
                [trigger],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest finished run of `trigger` (a run still going is skipped).
    pub fn backup_last_finished(&self, trigger: &str) -> Result<Option<BackupRunRow>, StoreError> {
        self.conn()
            .query_row(
                "SELECT id, started_at, finished_at, trigger, file, size, members, apps_json, verified, outcome, error
                 FROM backup_runs WHERE trigger = ?1 AND outcome != 'running' ORDER BY id DESC LIMIT 1",
                [trigger],
                backup_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The most recent backup runs, newest first.
    pub fn backup_runs(&self, limit: u32) -> Result<Vec<BackupRunRow>, StoreError> {
        self.rows(
            "SELECT id, started_at, finished_at, trigger, file, size, members, apps_json, verified, outcome, error
             FROM backup_runs ORDER BY id DESC LIMIT ?1",
            [limit],
            backup_row,
        )
    }
}

fn backup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackupRunRow> {
    let apps: Option<String> = r.get(7)?;
    Ok(BackupRunRow {
        id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        trigger: r.get(3)?,
        file: r.get(4)?,
        size: r.get::<_, Option<i64>>(5)?.map(|s| s.max(0) as u64),
        members: r.get::<_, Option<i64>>(6)?.map(|s| s.max(0) as u64),
        apps: apps.and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default(),
        verified: r.get(8)?,
        outcome: r.get(9)?,
        error: r.get(10)?,
    })
}

/// The installation id recorded in a store file, read only.
pub fn installation_of(db: &Path) -> Result<Option<String>, StoreError> {
    let shown = db.display().to_string();
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| classify(&shown, e))?;
    let v: Option<String> = conn
        .query_row("SELECT value_json FROM settings WHERE user = '' AND key = 'installation_id'", [], |r| r.get(0))
        .optional()
        .map_err(|e| classify(&shown, e))?;
    Ok(v.and_then(|j| serde_json::from_str::<String>(&j).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_the_records_and_the_installation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let id = store.installation_id().unwrap();
        let run = store.backup_started("cli").unwrap();
        store.backup_finished(run, Some("/x.tomo-backup"), Some(10), Some(2), &["web".into()], true, None).unwrap();
        let copy = dir.path().join("copy.db");
        store.backup_to(&copy).unwrap();
        assert_eq!(installation_of(&copy).unwrap(), Some(id));
        let other = Store::open(&copy).unwrap();
        let row = other.backup_run_for("/x.tomo-backup").unwrap().unwrap();
        assert_eq!((row.verified, row.apps, row.outcome.as_str()), (true, vec!["web".to_string()], "ok"));
        assert!(store.newer_than("1970-01-01T00:00:00.000Z").unwrap().audit_events == 0);
    }
}
