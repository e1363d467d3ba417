//! Releases: one row per apply that changed an app (migration 0009), with
//! the image digest each service ran, for `tomo history` and `tomo rollback`.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{RunStatus, Store, StoreError};

/// A release to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelease {
    pub app: String,
    pub run: Option<i64>,
    pub actor: String,
    pub source: String,
    pub outcome: RunStatus,
    /// Content hash of the app's document.
    pub revision: String,
    pub git_commit: Option<String>,
    pub doc: serde_json::Value,
    /// What the apply changed, in one line.
    pub changes: String,
    pub services: Vec<ReleaseService>,
}

/// What one service ran on one server in a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseService {
    pub server: String,
    pub service: String,
    /// The spec hash of its container (none when it has no container).
    pub spec_hash: Option<String>,
    /// The image as the manifest writes it.
    pub image: String,
    /// The image the container ran, as `repository@sha256:…` (none for an
    /// image without a registry digest, e.g. built on the server).
    pub digest: Option<String>,
}

/// A recorded release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseRow {
    pub app: String,
    pub number: i64,
    pub run: Option<i64>,
    pub at: String,
    pub actor: String,
    pub source: String,
    pub outcome: RunStatus,
    pub revision: String,
    pub git_commit: Option<String>,
    pub doc: serde_json::Value,
    pub changes: String,
    pub services: Vec<ReleaseService>,
}

const COLUMNS: &str = "id, app, number, run_id, at, actor, source, outcome, revision, git_commit, doc_json, changes";

impl Store {
    /// Records a release as the app's next number; returns that number.
    pub fn record_release(&self, r: &NewRelease) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let number: i64 = tx
            .query_row("SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE app = ?1", [&r.app], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO releases (app, number, run_id, actor, source, outcome, revision, git_commit, doc_json, changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.app,
                number,
                r.run,
                r.actor,
                r.source,
                r.outcome,
                r.revision,
                r.git_commit,
                r.doc.to_string(),
                r.changes
            ],
        )
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        for s in &r.services {
            tx.execute(
                "INSERT OR REPLACE INTO release_services (release_id, server, service, spec_hash, image, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, s.server, s.service, s.spec_hash, s.image, s.digest],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(number)
    }

    /// An app's releases, newest first.
    pub fn releases(&self, app: &str, limit: u32) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = self.rows(
            &format!("SELECT {COLUMNS} FROM releases WHERE app = ?1 ORDER BY number DESC LIMIT ?2"),
            params![app, limit],
            release_row,
        )?;
        rows.into_iter().map(|(id, r)| self.with_services(id, r)).collect()
    }

    /// Release `number` of an app.
    pub fn release(&self, app: &str, number: i64) -> Result<Option<ReleaseRow>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM releases WHERE app = ?1 AND number = ?2"),
                params![app, number],
                release_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(id, r)| self.with_services(id, r)).transpose()
    }

    fn with_services(&self, id: i64, mut r: ReleaseRow) -> Result<ReleaseRow, StoreError> {
        r.services = self.rows(
            "SELECT server, service, spec_hash, image, digest FROM release_services WHERE release_id = ?1
             ORDER BY server, service",
            [id],
            |s| {
                Ok(ReleaseService {
                    server: s.get(0)?,
                    service: s.get(1)?,
                    spec_hash: s.get(2)?,
                    image: s.get(3)?,
                    digest: s.get(4)?,
                })
            },
        )?;
        Ok(r)
    }
}

fn release_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, ReleaseRow)> {
    let doc: String = r.get(10)?;
    Ok((
        r.get(0)?,
        ReleaseRow {
            app: r.get(1)?,
            number: r.get(2)?,
            run: r.get(3)?,
            at: r.get(4)?,
            actor: r.get(5)?,
            source: r.get(6)?,
            outcome: r.get(7)?,
            revision: r.get(8)?,
            git_commit: r.get(9)?,
            doc: serde_json::from_str(&doc).unwrap_or_default(),
            changes: r.get(11)?,
            services: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(app: &str, outcome: RunStatus, digest: Option<&str>) -> NewRelease {
        NewRelease {
            app: app.into(),
            run: None,
            actor: "ann".into(),
            source: "cli".into(),
            outcome,
            revision: "r1".into(),
            git_commit: Some("abc".into()),
            doc: serde_json::json!({"kind": "App", "name": app, "image": "x:1"}),
            changes: "create web".into(),
            services: vec![ReleaseService {
                server: "local".into(),
                service: "web".into(),
                spec_hash: Some("h".into()),
                image: "x:1".into(),
                digest: digest.map(String::from),
            }],
        }
    }

    #[test]
    fn releases_are_numbered_per_app_and_listed_newest_first_with_their_services() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("tomo.db")).unwrap();
        assert_eq!(store.record_release(&release("web", RunStatus::Succeeded, Some("x@sha256:1"))).unwrap(), 1);
        assert_eq!(store.record_release(&release("db", RunStatus::Succeeded, None)).unwrap(), 1);
        assert_eq!(store.record_release(&release("web", RunStatus::Failed, None)).unwrap(), 2);
        let web = store.releases("web", 10).unwrap();
        assert_eq!(web.iter().map(|r| r.number).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(web[0].outcome, RunStatus::Failed);
        assert_eq!(web[1].services[0].digest.as_deref(), Some("x@sha256:1"));
        assert_eq!(web[1].doc["image"], "x:1");
        let one = store.release("web", 1).unwrap().unwrap();
        assert_eq!(one, web[1]);
        assert!(store.release("web", 3).unwrap().is_none());
    }
}
