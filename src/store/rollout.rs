//! What rollouts read back from the journal: how long each service's
//! stop-first recreates took (the downtime estimate of `plan::risk`).

use std::collections::BTreeMap;

use super::{Store, StoreError};

/// Durations (ms), newest first, by `(server, app, service)`.
pub type Durations = BTreeMap<(String, String, String), Vec<u64>>;

/// How many recent recreates of a service the estimate looks at.
pub const RECREATE_SAMPLES: usize = 5;

impl Store {
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
