//! Apply history: runs, their actions (also the journal: each action is
//! recorded before and after it runs), and what is installed where.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{RunStatus, Store, StoreError};

/// One row of `installations`, whole: what a service's container was
/// before a recreate replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationRecord {
    pub container_id: Option<String>,
    pub image: Option<String>,
    pub spec_hash: Option<String>,
    pub spec_json: Option<String>,
    pub run_id: Option<i64>,
    pub deployed_at: String,
}

/// A recorded run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub plan_fingerprint: Option<String>,
    pub actor: Option<String>,
    pub source: Option<String>,
    pub summary: Option<serde_json::Value>,
}

/// A recorded action of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActionRow {
    pub seq: i64,
    pub server: String,
    pub app: Option<String>,
    pub service: Option<String>,
    pub action: String,
    pub status: String,
    pub error: Option<String>,
    /// When the action started and ended (RFC 3339, UTC, ms): the order
    /// actions ran in (`seq` is their place in the plan).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl Store {
    pub fn begin_run(&self, fingerprint: &str, actor: &str, source: &str) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO apply_runs (status, plan_fingerprint, actor, source, pid) VALUES ('running', ?1, ?2, ?3, ?4)",
            params![fingerprint, actor, source, std::process::id()],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Marks runs still `running` as `interrupted` (call it holding the apply
    /// lock: such a run's process is gone), with their unfinished actions;
    /// returns them.
    pub fn interrupt_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let runs = self.rows(
            &format!("SELECT {RUN_COLUMNS} FROM apply_runs r WHERE status = 'running' ORDER BY id"),
            [],
            |r| run_row(r, 0),
        )?;
        let conn = self.conn();
        for r in &runs {
            conn.execute(
                "UPDATE apply_actions SET status = 'failed', error = 'interrupted: tomo stopped during this action',
                     finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE run_id = ?1 AND status = 'running'",
                [r.id],
            )
            .map_err(|e| self.err(e))?;
            conn.execute(
                "UPDATE apply_runs SET status = 'interrupted', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1",
                [r.id],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(runs)
    }

    /// Runs recorded as `running` whose process is gone (without taking the lock).
    pub fn abandoned_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let pids: Vec<(i64, Option<i64>)> =
            self.rows("SELECT id, pid FROM apply_runs WHERE status = 'running'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let gone: Vec<i64> = pids
            .into_iter()
            .filter(|(_, pid)| pid.is_none_or(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()))
            .map(|(id, _)| id)
            .collect();
        Ok(self.runs(1000)?.into_iter().filter(|r| gone.contains(&r.id)).collect())
    }

    /// Recreates the journal shows cut short, newest run first, as (run,
    /// server, app, service): started and never finished (or failed once
    /// their run was found interrupted), in a run still `running` or
    /// `interrupted`.
    pub fn interrupted_recreates(&self) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        self.rows(
            "SELECT a.run_id, a.server, a.app, a.service FROM apply_actions a JOIN apply_runs r ON r.id = a.run_id
             WHERE a.action = 'recreate' AND a.app IS NOT NULL AND a.service IS NOT NULL
               AND a.status IN ('running', 'failed') AND r.status IN ('running', 'interrupted')
             ORDER BY a.run_id DESC",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    }

    pub fn finish_run(&self, run: i64, status: RunStatus, summary: &serde_json::Value) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE apply_runs SET status = ?2, summary_json = ?3,
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                params![run, status, summary.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Journals an action as it starts (`running`).
    #[allow(clippy::too_many_arguments)]
    pub fn action_started(
        &self,
        run: i64,
        seq: usize,
        server: &str,
        app: Option<&str>,
        service: Option<&str>,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO apply_actions (run_id, seq, server, app, service, action, status, started_at, detail_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?7)",
                params![run, seq as i64, server, app, service, action, detail.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records how an action ended: `succeeded`, `failed` or `skipped`.
    pub fn action_finished(&self, run: i64, seq: usize, status: &str, error: Option<&str>) -> Result<(), StoreError> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE apply_actions SET status = ?3, error = ?4, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE run_id = ?1 AND seq = ?2",
                params![run, seq as i64, status, error],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            conn.execute(
                "INSERT INTO apply_actions (run_id, seq, server, action, status, error, finished_at)
                 VALUES (?1, ?2, '', '', ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                params![run, seq as i64, status, error],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records an action skipped before it started (a prerequisite failed):
    /// where it would have run and why not; no start time.
    #[allow(clippy::too_many_arguments)]
    pub fn action_skipped(
        &self,
        run: i64,
        seq: usize,
        server: &str,
        app: Option<&str>,
        service: Option<&str>,
        action: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO apply_actions (run_id, seq, server, app, service, action, status, error, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'skipped', ?7, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                params![run, seq as i64, server, app, service, action, why],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records what a service's container is after a successful create or recreate.
    #[allow(clippy::too_many_arguments)]
    pub fn set_installation(
        &self,
        server: &str,
        app: &str,
        service: &str,
        container_id: &str,
        image: &str,
        spec_hash: &str,
        spec: &serde_json::Value,
        run: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO installations (server, app, service, container_id, image, spec_hash, spec_json, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (server, app, service) DO UPDATE SET container_id = excluded.container_id,
                 image = excluded.image, spec_hash = excluded.spec_hash, spec_json = excluded.spec_json,
                 run_id = excluded.run_id, deployed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                params![server, app, service, container_id, image, spec_hash, spec.to_string(), run],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_installation(&self, server: &str, app: &str, service: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM installations WHERE server = ?1 AND app = ?2 AND service = ?3",
                params![server, app, service],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `(server, app, service, container id)` of every installation.
    pub fn installations(&self) -> Result<Vec<(String, String, String, String)>, StoreError> {
        self.rows(
            "SELECT server, app, service, container_id FROM installations ORDER BY server, app, service",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    }

    /// The newest runs first.
    pub fn runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        self.rows(&format!("SELECT {RUN_COLUMNS} FROM apply_runs r ORDER BY id DESC LIMIT ?1"), [limit], |r| {
            run_row(r, 0)
        })
    }

    pub fn run_actions(&self, run: i64) -> Result<Vec<ActionRow>, StoreError> {
        self.rows(&format!("SELECT {ACTION_COLUMNS} FROM apply_actions a WHERE run_id = ?1 ORDER BY seq"), [run], |r| {
            action_row(r, 0)
        })
    }

    /// A service's whole installation record, to be put back later with
    /// `put_installation_back` (a recreate undone by a rollout).
    pub fn installation_record(
        &self,
        server: &str,
        app: &str,
        service: &str,
    ) -> Result<Option<InstallationRecord>, StoreError> {
        self.conn()
            .query_row(
                "SELECT container_id, image, spec_hash, spec_json, run_id, deployed_at FROM installations
                 WHERE server = ?1 AND app = ?2 AND service = ?3",
                params![server, app, service],
                |r| {
                    Ok(InstallationRecord {
                        container_id: r.get(0)?,
                        image: r.get(1)?,
                        spec_hash: r.get(2)?,
                        spec_json: r.get(3)?,
                        run_id: r.get(4)?,
                        deployed_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Makes a service's installation record `previous` again (none: no record).
    pub fn put_installation_back(
        &self,
        server: &str,
        app: &str,
        service: &str,
        previous: Option<&InstallationRecord>,
    ) -> Result<(), StoreError> {
        let Some(p) = previous else { return self.remove_installation(server, app, service) };
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO installations
                 (server, app, service, container_id, image, spec_hash, spec_json, run_id, deployed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    server,
                    app,
                    service,
                    p.container_id,
                    p.image,
                    p.spec_hash,
                    p.spec_json,
                    p.run_id,
                    p.deployed_at
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The container id recorded for a service, if any.
    pub fn installation(&self, server: &str, app: &str, service: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT container_id FROM installations WHERE server = ?1 AND app = ?2 AND service = ?3",
                params![server, app, service],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records an App document after an apply changed the app, unless it
    /// equals the last one recorded.
    pub fn record_app_revision(&self, app: &str, run: i64, doc: &serde_json::Value) -> Result<(), StoreError> {
        let text = doc.to_string();
        let conn = self.conn();
        let last: Option<String> = conn
            .query_row("SELECT doc_json FROM app_revisions WHERE app = ?1 ORDER BY id DESC LIMIT 1", [app], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if last.as_deref() != Some(text.as_str()) {
            conn.execute(
                "INSERT INTO app_revisions (app, run_id, doc_json) VALUES (?1, ?2, ?3)",
                params![app, run, text],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// An app's recorded documents, newest first: `(run, at, document)`.
    pub fn app_revisions(
        &self,
        app: &str,
        limit: u32,
    ) -> Result<Vec<(Option<i64>, String, serde_json::Value)>, StoreError> {
        self.rows(
            "SELECT run_id, at, doc_json FROM app_revisions WHERE app = ?1 ORDER BY id DESC LIMIT ?2",
            params![app, limit],
            |r| {
                let doc: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&doc).unwrap_or_default()))
            },
        )
    }

    /// The actions of runs that touched `app`, newest first.
    pub fn app_actions(&self, app: &str, limit: u32) -> Result<Vec<(RunRow, ActionRow)>, StoreError> {
        self.rows(
            &format!(
                "SELECT {RUN_COLUMNS}, {ACTION_COLUMNS} FROM apply_actions a JOIN apply_runs r ON r.id = a.run_id
                 WHERE a.app = ?1 ORDER BY r.id DESC, a.seq LIMIT ?2"
            ),
            params![app, limit],
            |r| Ok((run_row(r, 0)?, action_row(r, RUN_COLUMN_COUNT)?)),
        )
    }
}

const RUN_COLUMNS: &str =
    "r.id, r.started_at, r.finished_at, r.status, r.plan_fingerprint, r.actor, r.source, r.summary_json";
const RUN_COLUMN_COUNT: usize = 8;
const ACTION_COLUMNS: &str =
    "a.seq, a.server, a.app, a.service, a.action, a.status, a.error, a.started_at, a.finished_at";

/// A run from `RUN_COLUMNS`, starting at column `at`.
fn run_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RunRow> {
    let summary: Option<String> = r.get(at + 7)?;
    Ok(RunRow {
        id: r.get(at)?,
        started_at: r.get(at + 1)?,
        finished_at: r.get(at + 2)?,
        status: r.get(at + 3)?,
        plan_fingerprint: r.get(at + 4)?,
        actor: r.get(at + 5)?,
        source: r.get(at + 6)?,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

/// An action from `ACTION_COLUMNS`, starting at column `at`.
fn action_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ActionRow> {
    Ok(ActionRow {
        seq: r.get(at)?,
        server: r.get(at + 1)?,
        app: r.get(at + 2)?,
        service: r.get(at + 3)?,
        action: r.get(at + 4)?,
        status: r.get(at + 5)?,
        error: r.get(at + 6)?,
        started_at: r.get(at + 7)?,
        finished_at: r.get(at + 8)?,
    })
}
