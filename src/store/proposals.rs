//! Proposals: manifest edits waiting for a human, with the plan computed
//! from them and that plan's fingerprint; or a backup's restore
//! (`restore_json`), with the fingerprint of its archive.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{ProposalStatus, Store, StoreError};

/// A proposal as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProposalRow {
    pub id: String,
    pub created_at: String,
    pub created_by: String,
    pub role: String,
    pub title: String,
    /// Unified diff of the edits.
    pub diff: String,
    #[serde(skip)]
    pub edits_json: String,
    #[serde(skip)]
    pub plan_json: Option<String>,
    pub plan_fingerprint: Option<String>,
    pub status: ProposalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub run_id: Option<i64>,
    /// A restore's request (`None`: manifest edits).
    #[serde(skip)]
    pub restore_json: Option<String>,
}

/// A new proposal.
pub struct NewProposal<'a> {
    pub id: &'a str,
    pub created_by: &'a str,
    pub role: &'a str,
    pub title: &'a str,
    pub diff: &'a str,
    pub edits_json: &'a str,
    pub plan_json: &'a str,
    pub plan_fingerprint: &'a str,
    pub restore_json: Option<&'a str>,
}

const COLUMNS: &str = "id, created_at, created_by, role, title, diff, edits_json, plan_json, plan_fingerprint,
     status, decided_by, decided_at, reason, run_id, restore_json";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProposalRow> {
    Ok(ProposalRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        created_by: r.get(2)?,
        role: r.get(3)?,
        title: r.get(4)?,
        diff: r.get(5)?,
        edits_json: r.get(6)?,
        plan_json: r.get(7)?,
        plan_fingerprint: r.get(8)?,
        status: r.get(9)?,
        decided_by: r.get(10)?,
        decided_at: r.get(11)?,
        reason: r.get(12)?,
        run_id: r.get(13)?,
        restore_json: r.get(14)?,
    })
}

impl Store {
    pub fn add_proposal(&self, p: &NewProposal<'_>) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO proposals (id, created_by, role, title, diff, edits_json, plan_json, plan_fingerprint, status, restore_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
                params![
                    p.id,
                    p.created_by,
                    p.role,
                    p.title,
                    p.diff,
                    p.edits_json,
                    p.plan_json,
                    p.plan_fingerprint,
                    p.restore_json
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Proposals, newest first, optionally only those with `status`.
    pub fn proposals(&self, status: Option<ProposalStatus>) -> Result<Vec<ProposalRow>, StoreError> {
        self.rows(
            &format!("SELECT {COLUMNS} FROM proposals WHERE ?1 IS NULL OR status = ?1 ORDER BY created_at DESC, id"),
            [status],
            row,
        )
    }

    pub fn proposal(&self, id: &str) -> Result<Option<ProposalRow>, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM proposals WHERE id = ?1"), [id], row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Decides a pending proposal (`status`: approved, rejected, stale) in
    /// one statement; false when it is no longer pending (another decision
    /// came first), and then nothing is changed.
    pub fn decide_pending(
        &self,
        id: &str,
        status: ProposalStatus,
        decided_by: &str,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE proposals SET status = ?2, decided_by = ?3,
                     decided_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), reason = COALESCE(?4, reason)
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status, decided_by, reason],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    /// Records a decision or an outcome.
    pub fn set_proposal_status(
        &self,
        id: &str,
        status: ProposalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
        run_id: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE proposals SET status = ?2,
                     decided_by = COALESCE(?3, decided_by),
                     decided_at = CASE WHEN ?3 IS NULL THEN decided_at ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END,
                     reason = COALESCE(?4, reason), run_id = COALESCE(?5, run_id)
                 WHERE id = ?1",
                params![id, status, decided_by, reason, run_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(id: &str) -> NewProposal<'_> {
        NewProposal {
            id,
            created_by: "op",
            role: "operator",
            title: "restore",
            diff: "",
            edits_json: "[]",
            plan_json: "null",
            plan_fingerprint: "f",
            restore_json: Some("{}"),
        }
    }

    /// Two handles on one store (two processes, say) deciding the same
    /// proposals at once: each proposal is decided exactly once.
    #[test]
    fn of_decisions_racing_on_a_pending_proposal_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let ids: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        for id in &ids {
            store.add_proposal(&proposal(id)).unwrap();
        }
        let race = |who: &'static str| {
            let (path, ids) = (dir.path().to_path_buf(), ids.clone());
            std::thread::spawn(move || {
                let s = Store::open_in(&path).unwrap();
                ids.iter().filter(|id| s.decide_pending(id, ProposalStatus::Approved, who, None).unwrap()).count()
            })
        };
        let (a, b) = (race("a"), race("b"));
        assert_eq!(a.join().unwrap() + b.join().unwrap(), ids.len());
        for id in &ids {
            let row = store.proposal(id).unwrap().unwrap();
            assert_eq!(row.status, ProposalStatus::Approved);
            assert!(matches!(row.decided_by.as_deref(), Some("a" | "b")));
            assert_eq!(row.restore_json.as_deref(), Some("{}"));
        }
        assert!(!store.decide_pending("p0", ProposalStatus::Stale, "c", Some("late")).unwrap());
        assert_eq!(store.proposal("p0").unwrap().unwrap().status, ProposalStatus::Approved, "a decided proposal stays");
    }
}
