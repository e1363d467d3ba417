//! Fleet metrics (migration 0006): series ids (`metric_series`), raw
//! samples packed one row per server per round (`metric_samples`), 5-minute
//! rollups per series (`metric_rollups`) and the alerts firing
//! (`metric_alerts`). Rolling up and expiring are done a little at a time
//! (`housekeep`, a few short transactions per round), never as one long
//! write that would hold an apply up. A round that read nothing of a
//! server is a sample row whose `packed` is the reason, as TEXT
//! (`record_unread`): readers of values skip it as empty.

pub mod pack;

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::metrics::{Figure, Point, ROLLUP_SECONDS, Reading, Subject};

/// Rollup buckets made per server per `housekeep` call.
const BUCKETS_PER_CALL: i64 = 12;
/// Raw samples deleted per server per call, at most (about 1h at 30s... and more).
const EXPIRE_ROWS_PER_CALL: i64 = 500;

/// A series: its id, subject and figure.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    pub id: i64,
    pub subject: Subject,
    pub figure: Figure,
}

/// What one `housekeep` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Housekeeping {
    pub buckets_rolled: i64,
    pub samples_expired: usize,
    pub rollups_expired: usize,
}

/// A firing alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub rule: String,
    pub series: i64,
    pub value: f64,
    pub since: i64,
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn series_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<SeriesRow>> {
    let figure: String = r.get(5)?;
    let Some(figure) = Figure::parse(&figure) else { return Ok(None) };
    let subject = Subject {
        server: r.get(1)?,
        app: opt(&r.get::<_, String>(2)?),
        service: opt(&r.get::<_, String>(3)?),
        device: opt(&r.get::<_, String>(4)?),
    };
    Ok(Some(SeriesRow { id: r.get(0)?, subject, figure }))
}

type Key = (Subject, Figure);

/// A sample's time and its (series id, scaled value) pairs.
pub type Latest = (i64, Vec<(i64, i64)>);

impl Store {
    /// Every series (a few hundred per server).
    pub fn metric_series(&self) -> Result<Vec<SeriesRow>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT id, server, app, service, device, figure FROM metric_series ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], series_row).map_err(|e| self.err(e))?;
        Ok(rows.filter_map(|r| r.ok().flatten()).collect())
    }

    /// Records one server's readings of a round (one row).
    pub fn record_metrics(&self, server: &str, at: i64, readings: &[Reading]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut ids: HashMap<Key, i64> = HashMap::new();
        {
            let mut st = tx
                .prepare_cached("SELECT id, server, app, service, device, figure FROM metric_series WHERE server = ?1")
                .map_err(|e| self.err(e))?;
            let rows = st.query_map([server], series_row).map_err(|e| self.err(e))?;
            for r in rows.filter_map(|r| r.ok().flatten()) {
                ids.insert((r.subject, r.figure), r.id);
            }
        }
        let mut values = Vec::with_capacity(readings.len());
        for r in readings.iter().filter(|r| r.subject.server == server) {
            let key = (r.subject.clone(), r.figure);
            let id = match ids.get(&key) {
                Some(id) => *id,
                None => {
                    let s = &r.subject;
                    tx.execute(
                        "INSERT INTO metric_series (server, app, service, device, figure) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            s.server,
                            s.app.as_deref().unwrap_or(""),
                            s.service.as_deref().unwrap_or(""),
                            s.device.as_deref().unwrap_or(""),
                            r.figure.name()
                        ],
                    )
                    .map_err(|e| self.err(e))?;
                    let id = tx.last_insert_rowid();
                    ids.insert(key, id);
                    id
                }
            };
            values.push((id, pack::to_int(r.figure, r.value)));
        }
        let packed = pack::pack(&mut values);
        tx.execute(
            "INSERT OR REPLACE INTO metric_samples (server, at, packed) VALUES (?1, ?2, ?3)",
            params![server, at, packed],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records a round in which nothing of `server` could be read, with
    /// why: the row's `packed` holds the reason as TEXT instead of a BLOB
    /// of values (readers of values see an empty round).
    pub fn record_unread(&self, server: &str, at: i64, reason: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO metric_samples (server, at, packed) VALUES (?1, ?2, ?3)",
            params![server, at, reason],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Why nothing of `server` was read in its round at `at`, if that round
    /// was stored by `record_unread`.
    pub fn unread_reason(&self, server: &str, at: i64) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT packed FROM metric_samples WHERE server = ?1 AND at = ?2 AND typeof(packed) = 'text'",
            params![server, at],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// The servers that have series or samples (a server never reached has
    /// only empty samples).
    pub fn metric_servers(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT server FROM metric_series UNION SELECT server FROM metric_samples ORDER BY 1")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    /// Raw points of the series `wanted` (ids with their figures) of one
    /// server, `since..=until`, oldest first.
    pub fn raw_points(
        &self,
        server: &str,
        wanted: &HashMap<i64, Figure>,
        since: i64,
        until: i64,
    ) -> Result<HashMap<i64, Vec<Point>>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT at, packed FROM metric_samples WHERE server = ?1 AND at BETWEEN ?2 AND ?3 ORDER BY at",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query(params![server, since, until]).map_err(|e| self.err(e))?;
        let mut out: HashMap<i64, Vec<Point>> = HashMap::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let at: i64 = r.get(0).map_err(|e| self.err(e))?;
            let packed = r.get_ref(1).map_err(|e| self.err(e))?.as_blob().unwrap_or_default();
            for (id, v) in pack::unpack(packed) {
                if let Some(f) = wanted.get(&id) {
                    out.entry(id).or_default().push(Point::raw(at, pack::from_int(*f, v)));
                }
            }
        }
        Ok(out)
    }

    /// The newest sample of a server: its time and values by series id.
    pub fn latest_metrics(&self, server: &str) -> Result<Option<Latest>, StoreError> {
        let conn = self.conn();
        let row: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT at, CASE typeof(packed) WHEN 'blob' THEN packed ELSE x'' END FROM metric_samples
                 WHERE server = ?1 ORDER BY at DESC LIMIT 1",
                [server],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(at, p)| (at, pack::unpack(&p))))
    }

    /// Rollup points of one series, `since..=until`, oldest first.
    pub fn rollup_points(&self, series: i64, figure: Figure, since: i64, until: i64) -> Result<Vec<Point>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT at, min, avg, max FROM metric_rollups WHERE series = ?1 AND at BETWEEN ?2 AND ?3 ORDER BY at",
            )
            .map_err(|e| self.err(e))?;
        let f = |v: i64| pack::from_int(figure, v);
        let rows = st
            .query_map(params![series, since, until], |r| {
                Ok(Point { at: r.get(0)?, min: f(r.get(1)?), avg: f(r.get(2)?), max: f(r.get(3)?) })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Rolls up a server's complete 5-minute buckets not yet rolled up (a
    /// few per call), and deletes raw samples older than `raw_before`
    /// (only those rolled up) and rollups older than `rollup_before` (a
    /// bounded number per call).
    pub fn housekeep_metrics(
        &self,
        server: &str,
        now: i64,
        raw_before: i64,
        rollup_before: i64,
    ) -> Result<Housekeeping, StoreError> {
        let mut done = Housekeeping::default();
        let current = now - now.rem_euclid(ROLLUP_SECONDS);
        let figures: HashMap<i64, Figure> = self
            .metric_series()?
            .into_iter()
            .filter(|s| s.subject.server == server)
            .map(|s| (s.id, s.figure))
            .collect();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let upto: Option<i64> = tx
            .query_row("SELECT upto FROM metric_rolled WHERE server = ?1", [server], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let next: Option<i64> = tx
            .query_row(
                "SELECT min(at) FROM metric_samples WHERE server = ?1 AND at >= ?2",
                params![server, upto.unwrap_or(i64::MIN)],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let mut bucket = match next {
            Some(at) => at - at.rem_euclid(ROLLUP_SECONDS),
            None => upto.unwrap_or(current),
        };
        while bucket < current && done.buckets_rolled < BUCKETS_PER_CALL {
            roll_bucket(&tx, server, bucket, &figures).map_err(|e| self.err(e))?;
            bucket += ROLLUP_SECONDS;
            done.buckets_rolled += 1;
        }
        tx.execute(
            "INSERT INTO metric_rolled (server, upto) VALUES (?1, ?2) ON CONFLICT (server) DO UPDATE SET upto = excluded.upto",
            params![server, bucket.min(current)],
        )
        .map_err(|e| self.err(e))?;
        let expire_before = raw_before.min(bucket);
        done.samples_expired = tx
            .execute(
                "DELETE FROM metric_samples WHERE server = ?1 AND at < ?2 AND at <= (SELECT at FROM metric_samples
                 WHERE server = ?1 ORDER BY at LIMIT 1 OFFSET ?3)",
                params![server, expire_before, EXPIRE_ROWS_PER_CALL - 1],
            )
            .map_err(|e| self.err(e))?;
        if done.samples_expired == 0 {
            // Fewer rows than a batch: the offset found none.
            done.samples_expired = tx
                .execute("DELETE FROM metric_samples WHERE server = ?1 AND at < ?2", params![server, expire_before])
                .map_err(|e| self.err(e))?;
        }
        let mut st =
            tx.prepare_cached("DELETE FROM metric_rollups WHERE series = ?1 AND at < ?2").map_err(|e| self.err(e))?;
        for id in figures.keys() {
            done.rollups_expired += st.execute(params![id, rollup_before]).map_err(|e| self.err(e))?;
        }
        drop(st);
        tx.commit().map_err(|e| self.err(e))?;
        Ok(done)
    }

    /// Deletes samples and rollups older than `before` (unix seconds), for
    /// `tomo logs purge --metrics`; returns the rows deleted.
    pub fn purge_metrics(&self, before: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let a = conn.execute("DELETE FROM metric_samples WHERE at < ?1", [before]).map_err(|e| self.err(e))?;
        let b = conn.execute("DELETE FROM metric_rollups WHERE at < ?1", [before]).map_err(|e| self.err(e))?;
        Ok(a + b)
    }

    /// The alerts firing now.
    pub fn firing_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT rule, series, value, since FROM metric_alerts ORDER BY since, rule")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok(AlertRow { rule: r.get(0)?, series: r.get(1)?, value: r.get(2)?, since: r.get(3)? }))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Replaces the firing alerts with `firing` (one transaction).
    pub fn set_firing_alerts(&self, firing: &[AlertRow]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM metric_alerts", []).map_err(|e| self.err(e))?;
        for a in firing {
            tx.execute(
                "INSERT OR REPLACE INTO metric_alerts (rule, series, value, since) VALUES (?1, ?2, ?3, ?4)",
                params![a.rule, a.series, a.value, a.since],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Bytes the metrics take: (samples, rollups) rows, for benchmarks and `metrics_system`.
    pub fn metric_row_counts(&self) -> Result<(i64, i64), StoreError> {
        let conn = self.conn();
        let n = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        Ok((
            n("SELECT count(*) FROM metric_samples").map_err(|e| self.err(e))?,
            n("SELECT count(*) FROM metric_rollups").map_err(|e| self.err(e))?,
        ))
    }
}

/// Min, mean and max per series of one server's samples in one bucket.
fn roll_bucket(
    tx: &rusqlite::Transaction<'_>,
    server: &str,
    bucket: i64,
    figures: &HashMap<i64, Figure>,
) -> rusqlite::Result<()> {
    let mut acc: HashMap<i64, (i64, i64, i128, i64)> = HashMap::new();
    {
        let mut st =
            tx.prepare_cached("SELECT packed FROM metric_samples WHERE server = ?1 AND at >= ?2 AND at < ?3")?;
        let mut rows = st.query(params![server, bucket, bucket + ROLLUP_SECONDS])?;
        while let Some(r) = rows.next()? {
            let packed = r.get_ref(0)?.as_blob().unwrap_or_default();
            for (id, v) in pack::unpack(packed) {
                let e = acc.entry(id).or_insert((v, v, 0, 0));
                e.0 = e.0.min(v);
                e.1 = e.1.max(v);
                e.2 += i128::from(v);
                e.3 += 1;
            }
        }
    }
    let known: HashSet<&i64> = figures.keys().collect();
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO metric_rollups (series, at, min, avg, max) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, (min, max, sum, n)) in acc.into_iter().filter(|(id, _)| known.contains(id)) {
        let avg = (sum / i128::from(n.max(1))) as i64;
        st.execute(params![id, bucket, min, avg, max])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
