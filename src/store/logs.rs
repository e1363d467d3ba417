//! tomo's own events (`logs`): structured rows written by the log writer
//! (`crate::observe::syslog`) and by explicit calls (alerts, runs), read by
//! `tomo logs --system` and `logs_system`, deleted by `tomo logs purge`.
//! Messages and fields are capped so one event cannot grow the store.

use rusqlite::params;

use super::{Store, StoreError};
use crate::model::logs::{LogLevel, LogRow};

/// The longest stored message, in bytes (longer ones are cut with a note).
pub const MAX_MESSAGE: usize = 4096;
/// The longest stored fields document, in bytes (a bigger one is replaced by a note).
pub const MAX_FIELDS: usize = 16 * 1024;
/// The most rows one read returns.
pub const MAX_ROWS: u32 = 10_000;
/// Rows deleted per statement by a purge, so it never holds the write lock long.
const PURGE_BATCH: u32 = 5_000;

/// One event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub source: String,
    pub message: String,
    /// A JSON object (anything else is stored under `value`); secrets already masked.
    pub fields: serde_json::Value,
}

/// Which stored events to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only events of the last this many seconds.
    pub since_secs: Option<u64>,
    /// Only events at least this serious.
    pub min_level: Option<LogLevel>,
    /// Only events whose source starts with this.
    pub source: Option<String>,
    /// At most this many rows (the newest), capped at `MAX_ROWS`.
    pub limit: Option<u32>,
}

/// Cuts `s` to at most `max` bytes on a character boundary, noting the cut.
fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

fn fields_text(fields: &serde_json::Value) -> Option<String> {
    let object = match fields {
        serde_json::Value::Null => return None,
        serde_json::Value::Object(m) if m.is_empty() => return None,
        serde_json::Value::Object(_) => fields.clone(),
        other => serde_json::json!({ "value": other }),
    };
    let text = object.to_string();
    if text.len() <= MAX_FIELDS {
        Some(text)
    } else {
        Some(serde_json::json!({ "truncated": format!("fields of {} bytes not kept", text.len()) }).to_string())
    }
}

impl Store {
    /// Records one of tomo's own events (an alert, a run's start or end, a
    /// daemon start). `fields` is a JSON object or `null`; callers pass
    /// secret values already masked. Returns the row id.
    pub fn log_event(
        &self,
        level: LogLevel,
        source: &str,
        message: &str,
        fields: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO logs (level, source, message, fields_json) VALUES (?1, ?2, ?3, ?4)",
            params![level.as_str(), cap(source, 200), cap(message, MAX_MESSAGE), fields_text(fields)],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records several events in one transaction (the log writer's batches).
    pub fn log_events(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO logs (level, source, message, fields_json) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| self.err(e))?;
            for e in entries {
                stmt.execute(params![
                    e.level.as_str(),
                    cap(&e.source, 200),
                    cap(&e.message, MAX_MESSAGE),
                    fields_text(&e.fields)
                ])
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Stored events, oldest first (the newest `limit` of those that match).
    pub fn logs(&self, q: &LogQuery) -> Result<Vec<LogRow>, StoreError> {
        let levels: Vec<&str> =
            LogLevel::ALL.iter().filter(|l| q.min_level.is_none_or(|m| **l >= m)).map(|l| l.as_str()).collect();
        let levels = serde_json::to_string(&levels).expect("strings serialise");
        let since = q.since_secs.map(|s| format!("-{} seconds", s.min(i64::MAX as u64 / 2)));
        let limit = q.limit.unwrap_or(MAX_ROWS).min(MAX_ROWS);
        let mut rows = self.rows(
            "SELECT id, at, level, source, message, fields_json FROM logs
             WHERE (?1 IS NULL OR at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1))
               AND level IN (SELECT value FROM json_each(?2))
               AND (?3 IS NULL OR substr(source, 1, length(?3)) = ?3)
             ORDER BY at DESC, id DESC LIMIT ?4",
            params![since, levels, q.source, limit],
            |r| {
                let level: String = r.get(2)?;
                let fields: Option<String> = r.get(5)?;
                Ok(LogRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    level: LogLevel::parse(&level).unwrap_or(LogLevel::Info),
                    source: r.get(3)?,
                    message: r.get(4)?,
                    fields: fields
                        .and_then(|f| serde_json::from_str::<serde_json::Map<_, _>>(&f).ok())
                        .unwrap_or_default(),
                })
            },
        )?;
        rows.reverse();
        Ok(rows)
    }

    /// Deletes events older than `before_secs` seconds (all when `None`), in
    /// batches so an apply waiting for the store is not held up. Returns how
    /// many rows went.
    pub fn purge_logs(&self, before_secs: Option<u64>) -> Result<u64, StoreError> {
        let cutoff = before_secs.map(|s| format!("-{} seconds", s.min(i64::MAX as u64 / 2)));
        let mut total = 0u64;
        loop {
            let n = self
                .conn()
                .execute(
                    "DELETE FROM logs WHERE id IN (SELECT id FROM logs
                     WHERE ?1 IS NULL OR at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) LIMIT ?2)",
                    params![cutoff, PURGE_BATCH],
                )
                .map_err(|e| self.err(e))?;
            total += n as u64;
            if n < PURGE_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// How many events are stored.
    pub fn log_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row("SELECT count(*) FROM logs", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn events_are_stored_read_back_filtered_and_capped() {
        let (_d, s) = store();
        s.log_event(LogLevel::Info, "apply", "run 1 started", &json!({"run": 1})).unwrap();
        s.log_event(LogLevel::Warn, "metrics", "alert disk_used fired", &json!(null)).unwrap();
        let long = "é".repeat(MAX_MESSAGE);
        s.log_events(&[LogEntry {
            level: LogLevel::Error,
            source: "tomo::transport".into(),
            message: long,
            fields: json!({"big": "x".repeat(MAX_FIELDS)}),
        }])
        .unwrap();
        let all = s.logs(&LogQuery::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].message, "run 1 started");
        assert_eq!(all[0].fields["run"], 1);
        assert!(all[2].message.len() < MAX_MESSAGE + 40 && all[2].message.ends_with("bytes cut)"));
        assert!(all[2].fields["truncated"].as_str().unwrap().contains("not kept"));
        let warn = s.logs(&LogQuery { min_level: Some(LogLevel::Warn), ..Default::default() }).unwrap();
        assert_eq!(warn.iter().map(|r| r.level).collect::<Vec<_>>(), [LogLevel::Warn, LogLevel::Error]);
        let src = s.logs(&LogQuery { source: Some("tomo::".into()), ..Default::default() }).unwrap();
        assert_eq!(src.len(), 1);
        let newest = s.logs(&LogQuery { limit: Some(1), ..Default::default() }).unwrap();
        assert_eq!(newest[0].level, LogLevel::Error);
    }

    #[test]
    fn since_and_purge_go_by_age_in_batches() {
        let (_d, s) = store();
        s.log_event(LogLevel::Info, "apply", "new", &json!({})).unwrap();
        {
            let conn = s.conn();
            conn.execute(
                "INSERT INTO logs (at, level, source, message)
                 SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days'), 'info', 'old', 'old ' || value
                 FROM generate_series(1, 12000)",
                [],
            )
            .or_else(|_| {
                // Without the series extension: a recursive CTE.
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
                     INSERT INTO logs (at, level, source, message)
                     SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days'), 'info', 'old', 'old ' || i FROM n",
                    [],
                )
            })
            .unwrap();
        }
        let recent = s.logs(&LogQuery { since_secs: Some(3600), ..Default::default() }).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(s.purge_logs(Some(86_400)).unwrap(), 12_000);
        assert_eq!(s.log_count().unwrap(), 1);
        assert_eq!(s.purge_logs(None).unwrap(), 1);
        assert_eq!(s.log_count().unwrap(), 0);
    }
}
