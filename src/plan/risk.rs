//! What a plan costs before anyone says yes: per action, how long the
//! service will be down (`downtime`) and what can happen to data
//! (`data_risk`); per plan, a summary line and whether the downtime is over
//! `Settings.rollout.max_downtime`.
//!
//! Downtime: none for a create, a start or a start-first recreate (the old
//! container serves until the new one took over). A stop-first recreate of
//! a container that will run is down from the stop request until the new
//! container runs (or is healthy): that is the duration of the recreate
//! action, which the journal records. The estimate is the median of the
//! service's last recorded stop-first recreates on that server (`History`,
//! read from the store by the engine), or `DEFAULT_DOWNTIME` before any.
//!
//! **Invariant:** pure, like the rest of `plan`: the history comes in as a value.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Action, Op, Plan};
use crate::model::UpdateOrder;

/// The estimate for a stop-first recreate of a service with no recorded one.
pub const DEFAULT_DOWNTIME_MS: u64 = 5_000;

/// Recorded durations (ms) of a service's stop-first recreates, newest
/// first, by `(server, app, service)`.
pub type History = BTreeMap<(String, String, String), Vec<u64>>;

/// Where a downtime estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Estimate {
    /// The median of this many recorded stop-first recreates.
    History { samples: usize },
    /// No recreate of the service was recorded yet.
    Default,
}

/// What can happen to data, worst last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataRisk {
    #[default]
    #[serde(rename = "none")]
    None,
    /// A host folder of a bind mount is made (never deleted later).
    #[serde(rename = "bind folder created")]
    BindFolderCreated,
    /// A volume or bind is no longer mounted: its data stays on disk, the
    /// service no longer sees it.
    #[serde(rename = "data mount dropped")]
    DataMountDropped,
    /// A named volume is deleted (only ever when named by `--prune-volumes`).
    #[serde(rename = "volume removed")]
    VolumeRemoved,
}

impl DataRisk {
    pub fn as_str(self) -> &'static str {
        match self {
            DataRisk::None => "none",
            DataRisk::BindFolderCreated => "bind folder created",
            DataRisk::DataMountDropped => "data mount dropped",
            DataRisk::VolumeRemoved => "volume removed",
        }
    }
}

/// The risk of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// How long the service is expected to be down, in ms (0: not at all).
    #[serde(default)]
    pub downtime_ms: u64,
    /// Where `downtime_ms` comes from, when there is downtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    #[serde(default)]
    pub data_risk: DataRisk,
}

impl Risk {
    pub fn is_none(&self) -> bool {
        *self == Risk::default()
    }
}

/// The plan's risk as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskSummary {
    /// The longest downtime of a service, in ms.
    pub downtime_ms: u64,
    /// The services that will be down (`service`, or `service on server`
    /// when the plan touches it on several servers).
    pub down: Vec<String>,
    /// Each kind of data risk with what it touches (`container: mount`).
    pub data: BTreeMap<String, Vec<String>>,
    /// `Settings.rollout.max_downtime` (ms), when the downtime is over it:
    /// the plan needs approval (MCP) or `--allow-downtime` (CLI); watch holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_limit_ms: Option<u64>,
}

/// The risk of `a`, given the recorded history.
pub fn of(a: &Action, history: &History) -> Risk {
    let data_risk = match &a.op {
        Op::RemoveVolume { .. } => DataRisk::VolumeRemoved,
        Op::Recreate { drops, .. } | Op::Remove { drops, .. } if !drops.is_empty() => DataRisk::DataMountDropped,
        Op::CreateDir { .. } => DataRisk::BindFolderCreated,
        _ => DataRisk::None,
    };
    let (downtime_ms, estimate) = match &a.op {
        Op::Recreate { order: UpdateOrder::StopFirst, start: true, .. } => estimate(a, history),
        _ => (0, None),
    };
    Risk { downtime_ms, estimate, data_risk }
}

fn estimate(a: &Action, history: &History) -> (u64, Option<Estimate>) {
    let key = (
        a.server.to_string(),
        a.app.as_ref().map(|n| n.to_string()).unwrap_or_default(),
        a.service.as_ref().map(|n| n.to_string()).unwrap_or_default(),
    );
    match history.get(&key).filter(|s| !s.is_empty()) {
        Some(samples) => {
            let mut s = samples.clone();
            s.sort_unstable();
            (s[s.len() / 2].max(1), Some(Estimate::History { samples: s.len() }))
        }
        None => (DEFAULT_DOWNTIME_MS, Some(Estimate::Default)),
    }
}

/// The downtime a plan may cause without approval, in ms:
/// `Settings.rollout.max_downtime`, and an app's own `rollout.max_downtime`
/// for that app's services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DowntimeLimits {
    pub fleet: Option<u64>,
    pub apps: BTreeMap<crate::model::Name, u64>,
}

impl DowntimeLimits {
    /// Only the fleet's limit.
    pub fn fleet(ms: Option<u64>) -> DowntimeLimits {
        DowntimeLimits { fleet: ms, apps: BTreeMap::new() }
    }

    /// The limits the manifests set.
    pub fn of(desired: &crate::model::Desired) -> DowntimeLimits {
        let apps = desired
            .apps
            .values()
            .filter_map(|a| a.rollout.max_downtime.map(|d| (a.name.clone(), d.as_millis())))
            .collect();
        DowntimeLimits { fleet: desired.settings.max_downtime.map(|d| d.as_millis()), apps }
    }

    fn for_action(&self, a: &Action) -> Option<u64> {
        a.app.as_ref().and_then(|n| self.apps.get(n).copied()).or(self.fleet)
    }
}

/// Gives every action of `plan` its risk and the plan its summary.
pub fn assess(plan: &mut Plan, history: &History, limits: &DowntimeLimits) {
    for a in &mut plan.actions {
        a.risk = of(a, history);
    }
    plan.risk = summarize(plan, limits);
}

fn summarize(plan: &Plan, limits: &DowntimeLimits) -> RiskSummary {
    let down: Vec<&Action> = plan.actions.iter().filter(|a| a.risk.downtime_ms > 0).collect();
    let servers_of = |name: &str| -> BTreeSet<&str> {
        down.iter().filter(|a| service_name(a) == name).map(|a| a.server.as_str()).collect()
    };
    let mut names: Vec<String> = Vec::new();
    for a in &down {
        let name = service_name(a);
        let shown = if servers_of(name).len() > 1 { format!("{name} on {}", a.server) } else { name.to_string() };
        if !names.contains(&shown) {
            names.push(shown);
        }
    }
    let downtime_ms = down.iter().map(|a| a.risk.downtime_ms).max().unwrap_or(0);
    let mut data: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in plan.actions.iter().filter(|a| a.risk.data_risk != DataRisk::None) {
        let what: Vec<String> = match &a.op {
            Op::Recreate { drops, .. } | Op::Remove { drops, .. } => {
                drops.iter().map(|d| format!("{}: {d}", a.op.object())).collect()
            }
            other => vec![other.object().to_string()],
        };
        data.entry(a.risk.data_risk.as_str().to_string()).or_default().extend(what);
    }
    // The tightest limit an action's downtime goes over.
    let over_limit_ms = down.iter().filter_map(|a| limits.for_action(a).filter(|max| a.risk.downtime_ms > *max)).min();
    RiskSummary { downtime_ms, down: names, data, over_limit_ms }
}

fn service_name(a: &Action) -> &str {
    a.service.as_ref().map_or(a.op.object(), |s| s.as_str())
}

/// `~3 s`, `<1 s`, `~2 min`.
pub fn human(ms: u64) -> String {
    match ms {
        0..=999 => "<1 s".into(),
        1000..=119_999 => format!("~{} s", (ms + 500) / 1000),
        _ => format!("~{} min", (ms + 30_000) / 60_000),
    }
}

/// `downtime: ~3 s for 2 services (web, api); data at risk: none`.
pub fn summary_line(s: &RiskSummary) -> String {
    let downtime = match s.down.len() {
        0 => "downtime: none".to_string(),
        1 => format!("downtime: {} for 1 service ({})", human(s.downtime_ms), s.down[0]),
        n => format!("downtime: {} for {n} services ({})", human(s.downtime_ms), s.down.join(", ")),
    };
    let data = if s.data.is_empty() {
        "none".to_string()
    } else {
        let parts: Vec<String> = s.data.iter().map(|(kind, what)| format!("{kind} ({})", what.join(", "))).collect();
        parts.join(", ")
    };
    let mut line = format!("{downtime}; data at risk: {data}");
    if let Some(max) = s.over_limit_ms {
        line.push_str(&format!(
            "; over `rollout.max_downtime` ({}): needs `--allow-downtime` or an approval",
            human(max)
        ));
    }
    line
}

/// One line for an action with downtime, for the human plan.
pub fn action_line(r: &Risk) -> Option<String> {
    if r.downtime_ms == 0 {
        return None;
    }
    let from = match r.estimate {
        Some(Estimate::History { samples: 1 }) => " (the last recorded recreate)".to_string(),
        Some(Estimate::History { samples }) => format!(" (median of {samples} recorded recreates)"),
        Some(Estimate::Default) | None => " (default: no recreate recorded yet)".to_string(),
    };
    Some(format!("downtime {}{from}: stop-first recreate", human(r.downtime_ms)))
}
