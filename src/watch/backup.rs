//! Scheduled backups beside the reconcile loop: `Settings.backup` is read
//! again before each wait (a change to the manifests takes effect within
//! `RECHECK`), a due backup runs on a blocking thread (it never holds up
//! reconcile), and a failed run is a warning (kept in the logs table) and a
//! failed run in the store; the next try waits for the next due time.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;

/// The longest wait before the schedule is read again.
const RECHECK: Duration = Duration::from_secs(30);

/// Runs scheduled backups until the task is dropped.
pub async fn every_due(engine: Arc<Engine>) {
    loop {
        let e = engine.clone();
        let wait = tokio::task::spawn_blocking(move || step(&e)).await.unwrap_or(RECHECK);
        tokio::time::sleep(wait.min(RECHECK)).await;
    }
}

/// Runs the scheduled backup when due; returns how long to wait.
fn step(engine: &Engine) -> Duration {
    let schedule = match engine.backup_schedule() {
        Ok(Some(s)) => s,
        Ok(None) => return RECHECK,
        Err(e) => {
            tracing::debug!(error = %e, "backup schedule not read");
            return RECHECK;
        }
    };
    let now = crate::auth::now_unix();
    let due = match engine.backup_next_due(&schedule, now) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "scheduled backup: cannot read the last run");
            return RECHECK;
        }
    };
    if due > now {
        return Duration::from_secs((due - now) as u64);
    }
    match engine.backup_scheduled_run(&schedule) {
        Ok(done) => {
            tracing::info!(
                file = %done.made.file,
                size = done.made.size,
                pruned = done.pruned.len(),
                "scheduled backup written"
            );
        }
        Err(e) => tracing::warn!(error = %e, "scheduled backup failed"),
    }
    engine
        .backup_next_due(&schedule, crate::auth::now_unix())
        .map_or(RECHECK, |d| Duration::from_secs(d.saturating_sub(crate::auth::now_unix()).max(1) as u64))
}
