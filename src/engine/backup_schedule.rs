//! Scheduled backups (`Settings.backup`, run by `tomo watch`): whether one is
//! due, and a run: a system backup into the target folder, then pruning by
//! the keep rules. Each run is recorded (trigger `watch`) and audited.

use std::path::PathBuf;

use super::Engine;
use super::backup::{BackupMade, BackupRequest};
use crate::backup::{Keep, time};
use crate::error::Result;
use crate::model::backup::{BackupApps, BackupSchedule, next_due};

/// The trigger scheduled runs are recorded under.
pub const TRIGGER: &str = "watch";

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
        let dir = schedule.path.as_ref().map(PathBuf::from);
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
}
