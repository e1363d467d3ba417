//! `Settings.backup`: when `tomo watch` writes a system backup, where it goes,
//! which apps' data it holds and which archives the keep rules leave; an
//! app's own `backup:` (consistency mode, `pre` hook). `next_due` is the
//! pure schedule.

use serde::{Deserialize, Serialize};

use super::Name;
use super::values::Duration;

/// How an app's data is kept consistent while it is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataMode {
    /// Stop the app's containers during the copy, then start them again.
    #[default]
    Stop,
    /// Copy while the app runs.
    Live,
}

/// An app's `backup:`: how its data is kept consistent in backups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppBackup {
    /// The app's mode; `tomo backup create --mode` overrides it, and it
    /// wins over `Settings.backup.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DataMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<PreHook>,
}

/// A command run in a service's running container before the app's data is
/// copied (e.g. a database dump into a volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreHook {
    pub service: Name,
    /// The argv (a string in the manifest is `sh -c STRING`).
    pub command: Vec<String>,
    /// How long the command may run.
    pub timeout: Duration,
}

/// How long a `pre` hook may run unless its `timeout` says otherwise.
pub const PRE_TIMEOUT: Duration = Duration::from_secs(300);

/// The apps whose data scheduled runs hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupApps {
    /// System data only.
    #[default]
    None,
    /// Every declared app.
    All,
    /// These apps.
    List(Vec<Name>),
}

impl BackupApps {
    pub fn is_none(&self) -> bool {
        *self == BackupApps::None
    }
}

/// A backup schedule run by `tomo watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    pub every: Every,
    /// The folder archives go to; `None`: `<data>/backups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The server whose folder `path` is (over its SSH connection); `None`:
    /// a folder on the machine running tomo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "KeepRules::is_none")]
    pub keep: KeepRules,
    /// Apps whose data each run holds.
    #[serde(default, skip_serializing_if = "BackupApps::is_none")]
    pub apps: BackupApps,
    /// The mode of apps without their own `backup.mode` [default: live].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DataMode>,
}

impl BackupSchedule {
    /// The folder its archives go to (`server:NAME:/DIR` for a server's);
    /// `None`: `<data>/backups`.
    pub fn folder(&self) -> Option<std::path::PathBuf> {
        match (&self.server, &self.path) {
            (Some(server), Some(path)) => Some(format!("server:{server}:{path}").into()),
            (_, path) => path.as_ref().map(std::path::PathBuf::from),
        }
    }
}

/// How often a scheduled backup runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Once this long after the previous run.
    Interval(Duration),
    /// Every day at this many seconds after midnight UTC.
    Daily(u32),
}

/// Keep rules (as restic's `forget`): the newest `last` archives and the
/// newest of each of the newest `daily` days, `weekly` weeks, `monthly` months.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepRules {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl KeepRules {
    pub fn is_none(&self) -> bool {
        *self == KeepRules::default()
    }
}

/// Parses `daily HH:MM` into seconds after midnight.
pub fn parse_daily(s: &str) -> Option<u32> {
    let rest = s.trim().strip_prefix("daily")?.trim();
    let (h, m) = rest.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && rest.len() <= 5).then_some(h * 3600 + m * 60)
}

/// When the next scheduled backup is due (Unix seconds), from the start of
/// the last run (`None`: never ran) and now. A time at or before `now` is
/// due now; runs missed while nothing was watching thus run once, since that
/// run becomes the last.
pub fn next_due(every: Every, last: Option<i64>, now: i64) -> i64 {
    match every {
        Every::Interval(d) => {
            let secs = (d.as_millis() / 1000).max(1) as i64;
            match last {
                None => now,
                Some(l) => l.saturating_add(secs),
            }
        }
        Every::Daily(at) => {
            let at = i64::from(at);
            // The first HH:MM strictly after `from`.
            let after = |from: i64| {
                let day = from.div_euclid(86_400) * 86_400;
                if day + at > from { day + at } else { day + 86_400 + at }
            };
            match last {
                // Never ran: the next HH:MM.
                None => after(now),
                // The slot after the last run (past: due now, and once, since
                // that run becomes the last).
                Some(l) => after(l),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn interval_runs_now_when_never_ran_then_after_the_interval() {
        let e = Every::Interval(Duration::from_secs(3600));
        assert_eq!(next_due(e, None, 1000), 1000);
        assert_eq!(next_due(e, Some(1000), 1500), 4600);
        // Missed many intervals while down: due now, once.
        assert!(next_due(e, Some(1000), 100_000) <= 100_000);
        assert_eq!(next_due(e, Some(100_000), 100_000), 103_600);
    }

    #[test]
    fn daily_waits_for_the_time_and_catches_up_once() {
        let e = Every::Daily(3 * 3600);
        // Never ran, 01:00: today 03:00.
        assert_eq!(next_due(e, None, 10 * DAY + 3600), 10 * DAY + 3 * 3600);
        // Never ran, 04:00: tomorrow 03:00.
        assert_eq!(next_due(e, None, 10 * DAY + 4 * 3600), 11 * DAY + 3 * 3600);
        // Ran today at 03:00, now 12:00: tomorrow 03:00.
        assert_eq!(next_due(e, Some(10 * DAY + 3 * 3600), 10 * DAY + 12 * 3600), 11 * DAY + 3 * 3600);
        // Last ran three days ago: the missed slot is in the past, so due (<= now).
        let now = 13 * DAY + 12 * 3600;
        assert!(next_due(e, Some(10 * DAY + 3 * 3600), now) <= now);
        // That catch-up run at 12:00 is the last: next is tomorrow 03:00.
        assert_eq!(next_due(e, Some(now), now), 14 * DAY + 3 * 3600);
    }

    #[test]
    fn daily_parses_hours_and_minutes() {
        assert_eq!(parse_daily("daily 03:00"), Some(3 * 3600));
        assert_eq!(parse_daily("daily 23:59"), Some(23 * 3600 + 59 * 60));
        assert_eq!(parse_daily("daily 24:00"), None);
        assert_eq!(parse_daily("weekly 03:00"), None);
        assert_eq!(parse_daily("daily 3"), None);
    }
}
