//! The audit log (`activities`): who did what to which target, with what
//! result. Callers pass arguments with secret values already redacted.
//! Also per-user settings (`settings`), which the audit log records changes of.

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
        self.activities_in(category.map(|c| vec![c]).as_deref(), limit)
    }

    /// The newest entries first, of any of `categories` (all when `None`).
    pub fn activities_in(&self, categories: Option<&[&str]>, limit: u32) -> Result<Vec<ActivityRow>, StoreError> {
        let list = categories.map(|c| serde_json::to_string(c).expect("strings serialise"));
        self.rows(
            "SELECT id, at, actor, role, category, action, target, arguments_json, result, detail
             FROM activities WHERE ?1 IS NULL OR category IN (SELECT value FROM json_each(?1))
             ORDER BY id DESC LIMIT ?2",
            params![list, limit],
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

    /// A user's own settings (`''` is installation-wide).
    pub fn user_settings(&self, user: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let rows = self.rows("SELECT key, value_json FROM settings WHERE user = ?1 ORDER BY key", [user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        Ok(rows.into_iter().map(|(k, v)| (k, serde_json::from_str(&v).unwrap_or(serde_json::Value::Null))).collect())
    }

    /// Sets (or, with `null`, removes) one of a user's settings.
    pub fn set_user_setting(&self, user: &str, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let conn = self.conn();
        if value.is_null() {
            conn.execute("DELETE FROM settings WHERE user = ?1 AND key = ?2", params![user, key])
        } else {
            conn.execute(
                "INSERT INTO settings (user, key, value_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user, key) DO UPDATE SET value_json = excluded.value_json,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                params![user, key, value.to_string()],
            )
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}
