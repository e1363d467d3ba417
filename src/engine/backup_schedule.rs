//! Scheduled backups (`Settings.backup`, run by `tomo watch`): whether one is
//! due, and a run: a system backup into the target folder, then pruning by
//! the keep rules. Each run is recorded (trigger `watch`) and audited. A
//! failed last run is an alert (`backup_alert`, shown with the metric
//! alerts by `alerts()`: in `tomo status` and MCP `health_check`) until a
//! later run succeeds.

use super::Engine;
use super::backup::{BackupMade, BackupRequest};
use crate::backup::{Keep, time};
use crate::error::Result;
use crate::model::alert::AlertState;
use crate::model::backup::{BackupApps, BackupSchedule, next_due};
use crate::model::metrics::Subject;

/// The trigger scheduled runs are recorded under.
pub const TRIGGER: &str = "watch";

/// The rule text of the alert a failed scheduled backup raises.
pub const ALERT_RULE: &str = "scheduled backup failed";

/// What one scheduled run did.
#[derive(Debug, Clone)]
pub struct ScheduledBackup {
    pub made: BackupMade,
    /// Archives the keep rules removed.
    pub pruned: Vec<String>,
}

impl Engine {
    /// `Settings.backup` of the manifests, if any.
    pub fn backup_schedule(&self) -> Result<Option<BackupSchedule>> {
        Ok(self.desired()?.settings.backup)
    }

    /// When the next scheduled backup is due (Unix seconds): from the start
    /// of the last scheduled run recorded in the store.
    pub fn backup_next_due(&self, schedule: &BackupSchedule, now: i64) -> Result<i64> {
        let last = self.store()?.backup_last_started(TRIGGER)?;
        Ok(next_due(schedule.every, last.as_deref().and_then(time::parse_store_time), now))
    }

    /// Writes a backup (system data and the data of `Settings.backup.apps`,
    /// each app in its own `backup.mode`, else the schedule's `mode`) into
    /// the schedule's folder, then prunes that folder by the keep rules.
    pub fn backup_scheduled_run(&self, schedule: &BackupSchedule) -> Result<ScheduledBackup> {
        let dir = Some(schedule.folder().unwrap_or_else(|| self.backup_dir()));
        let req = BackupRequest {
            out: None,
            dir: dir.clone(),
            passphrase: None,
            trigger: TRIGGER.into(),
            actor: "watch".into(),
            apps: match &schedule.apps {
                BackupApps::List(list) => list.iter().map(|a| a.to_string()).collect(),
                _ => Vec::new(),
            },
            all_apps: schedule.apps == BackupApps::All,
            fallback_mode: schedule.mode,
            ..BackupRequest::default()
        };
        let made = self.backup_create(&req)?;
        let k = schedule.keep;
        let rules = Keep { last: k.last, daily: k.daily, weekly: k.weekly, monthly: k.monthly };
        let pruned = if rules.is_none() { Vec::new() } else { self.backup_prune(dir.as_deref(), &rules)? };
        Ok(ScheduledBackup { made, pruned })
    }

    /// The alert of a failed scheduled backup: the newest finished scheduled
    /// run failed. Its subject's server is the target server (`local` for a
    /// folder on this machine), its rule names the error; `since` is when
    /// the failed run started.
    pub fn backup_alert(&self) -> Result<Option<AlertState>> {
        let store = match self.existing_store() {
            Some(s) => s,
            None => return Ok(None),
        };
        let Some(run) = store.backup_last_finished(TRIGGER)? else { return Ok(None) };
        if run.outcome != "failed" {
            return Ok(None);
        }
        let server = self.backup_schedule().ok().flatten().and_then(|s| s.server).unwrap_or_else(|| "local".into());
        let error = run.error.unwrap_or_default();
        Ok(Some(AlertState {
            rule: format!("{ALERT_RULE}: {}", error.lines().next().unwrap_or_default()),
            subject: Subject { server, app: None, service: None, device: None },
            value: 1.0,
            since: time::parse_store_time(&run.started_at).unwrap_or(0),
        }))
    }
}
