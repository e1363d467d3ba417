//! What rollouts read back from the journal: how long each service's
//! stop-first recreates took (the downtime estimate of `plan::risk`).

use std::collections::BTreeMap;

use super::{Store, StoreError};

/// Durations (ms), newest first, by `(server, app, service)`.
pub type Durations = BTreeMap<(String, String, String), Vec<u64>>;

/// How many recent recreates of a service the estimate looks at.
pub const RECREATE_SAMPLES: usize = 5;

impl Store {
    /// The latest finished run, when it applied the manifests whose
    /// fingerprint is `desired` and failed a verification: `watch` does not
    /// apply that manifest revision again (no rollback loop) until it changes.
    pub fn failed_verification(&self, desired: &str) -> Result<Option<i64>, StoreError> {
        let rows: Vec<i64> = self.rows(
            "SELECT r.id FROM apply_runs r
             WHERE r.id = (SELECT MAX(id) FROM apply_runs WHERE status != 'running')
               AND r.status = 'failed'
               AND substr(r.plan_fingerprint, 1, length(?1) + 1) = ?1 || ':'
               AND EXISTS (SELECT 1 FROM apply_actions a
                           WHERE a.run_id = r.id AND a.error LIKE '%verification failed within%')",
            [desired],
            |r| r.get(0),
        )?;
        Ok(rows.into_iter().next())
    }

    /// The durations (ms) of each service's last succeeded stop-first
    /// recreates of a running container, newest first, by `(server, app,
    /// service)`: from the stop request to the new container running (or
    /// healthy) and the old one removed.
    pub fn recreate_durations(&self) -> Result<Durations, StoreError> {
        let rows: Vec<(String, String, String, i64)> = self.rows(
            "SELECT server, app, service,
                    CAST(ROUND((julianday(finished_at) - julianday(started_at)) * 86400000.0) AS INTEGER)
             FROM apply_actions
             WHERE action = 'recreate' AND status = 'succeeded' AND app IS NOT NULL AND service IS NOT NULL
               AND started_at IS NOT NULL AND finished_at IS NOT NULL
               AND json_extract(detail_json, '$.order') = 'stop-first'
               AND json_extract(detail_json, '$.start') = 1
             ORDER BY id DESC LIMIT 5000",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let mut out = Durations::new();
        for (server, app, service, ms) in rows {
            let samples = out.entry((server, app, service)).or_default();
            if samples.len() < RECREATE_SAMPLES {
                samples.push(ms.max(0) as u64);
            }
        }
        Ok(out)
    }
}
