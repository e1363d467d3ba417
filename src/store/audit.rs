//! The audit log (`activities`): who did what to which target, with what
//! result. Callers pass arguments with secret values already redacted.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// One audit entry to record.
#[derive(Debug, Clone, Default)]
pub struct Activity<'a> {
    pub actor: Option<&'a str>,
    pub role: Option<&'a str>,
    /// auth | settings | manifest | apply | tool | secret | server
    pub category: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub arguments: Option<serde_json::Value>,
    /// ok | error | refused
    pub result: &'a str,
    pub detail: Option<&'a str>,
}

/// A recorded audit entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActivityRow {
    pub id: i64,
    pub at: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub category: String,
    pub action: String,
    pub target: Option<String>,
    pub arguments: Option<serde_json::Value>,
    pub result: String,
    pub detail: Option<String>,
}

impl Store {
    pub fn record_activity(&self, a: &Activity<'_>) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO activities (actor, role, category, action, target, arguments_json, result, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                a.actor,
                a.role,
                a.category,
                a.action,
                a.target,
                a.arguments.as_ref().map(|v| v.to_string()),
                a.result,
                a.detail
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest entries first, optionally of one category.
    pub fn activities(&self, category: Option<&str>, limit: u32) -> Result<Vec<ActivityRow>, StoreError> {
        self.rows(
            "SELECT id, at, actor, role, category, action, target, arguments_json, result, detail
             FROM activities WHERE ?1 IS NULL OR category = ?1 ORDER BY id DESC LIMIT ?2",
            params![category, limit],
            |r| {
                let args: Option<String> = r.get(7)?;
                Ok(ActivityRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    role: r.get(3)?,
                    category: r.get(4)?,
                    action: r.get(5)?,
                    target: r.get(6)?,
                    arguments: args.and_then(|a| serde_json::from_str(&a).ok()),
                    result: r.get(8)?,
                    detail: r.get(9)?,
                })
            },
        )
    }
}
