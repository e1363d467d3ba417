//! One level-triggered reconcile, as `watch` runs it: load, plan (restores
//! of interrupted recreates included), hold what the rules hold, apply the
//! rest. The caller says only why it
//! runs (a file change, the drift timer); what to do comes from comparing the
//! manifests with the servers, every time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{ApplyRequest, Engine};
use crate::apply::{ApplyReport, ApplySink};
use crate::error::Result;
use crate::model::WatchDestructive;
use crate::plan::{Plan, PlanOptions};

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first run after start.
    Start,
    /// The manifests changed (or a git pull brought changes).
    Files,
    /// The periodic drift check.
    Drift,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Files => "files",
            Trigger::Drift => "drift",
        }
    }
}

/// What a reconcile found and did.
#[derive(Debug)]
pub struct Reconciled {
    pub plan: Plan,
    /// Actions left for `tomo apply` or an approval (`verb object on server: why`).
    pub held: Vec<String>,
    /// The apply of what was not held (`None`: nothing to apply).
    pub report: Option<ApplyReport>,
    /// The watch settings in effect (they may have just changed).
    pub interval: Duration,
}

impl Engine {
    /// Plans against the servers and applies what the watch rules allow:
    /// destructive actions wait when `Settings.watch.destructive` is `hold`,
    /// recreates down longer than `Settings.rollout.max_downtime` wait, and
    /// nothing of a manifest revision whose last apply failed verification
    /// runs again until the manifests change;
    /// drift found by the timer is only reported when `watch.self_heal` is
    /// off. An invalid manifest folder is an error and nothing is applied.
    pub async fn reconcile(&self, trigger: Trigger, stop: Arc<AtomicBool>, sink: &dyn ApplySink) -> Result<Reconciled> {
        let req = ApplyRequest {
            parallelism: None,
            lock_timeout: Duration::from_secs(30),
            actor: "watch".into(),
            source: "watch".into(),
            stop: Some(stop),
        };
        let (_lock, desired) = self.begin_apply(&req)?;
        let opts = PlanOptions::default();
        let plan = self.plan_for(&desired, &opts).await?;
        let settings = &desired.settings;
        let report_only = trigger == Trigger::Drift && !settings.watch_self_heal;
        let hold_destructive =
            |a: &crate::plan::Action| settings.watch_destructive == WatchDestructive::Hold && a.op.is_destructive();
        // Over `rollout.max_downtime`: the recreates that take that long wait.
        let too_long = |a: &crate::plan::Action| plan.risk.over_limit_ms.is_some_and(|max| a.risk.downtime_ms > max);
        // A revision that failed its verification is not retried until it changes.
        let failed = self.store()?.failed_verification(&plan.basis.desired)?;
        let held_ids: BTreeSet<usize> = plan
            .actions
            .iter()
            .filter(|a| failed.is_some() || report_only || hold_destructive(a) || too_long(a))
            .map(|a| a.id)
            .collect();
        let (to_apply, held) = plan.without(&held_ids);
        let held = held
            .into_iter()
            .map(|i| {
                let a = &plan.actions[i];
                let why = if let Some(run) = failed {
                    format!(
                        "these manifests failed verification in run {run}; watch applies again when they change (`tomo apply` retries now)"
                    )
                } else if report_only {
                    "drift is reported only (`watch.self_heal: false`)".to_string()
                } else if held_ids.contains(&i) && hold_destructive(a) {
                    "destructive (`watch.destructive: hold`)".to_string()
                } else if held_ids.contains(&i) {
                    format!(
                        "down {}, over `rollout.max_downtime` (`tomo apply --allow-downtime` applies it)",
                        crate::plan::risk::human(a.risk.downtime_ms)
                    )
                } else {
                    "waits for a held action".to_string()
                };
                let drops: Vec<String> = a.op.drops().iter().map(|d| format!("; drops {d}")).collect();
                format!("{} {} on {}: {why}{}", a.op.verb(), a.op.object(), a.server, drops.concat())
            })
            .collect();
        let report =
            if to_apply.has_changes() { Some(self.execute(&desired, &to_apply, &req, sink).await?) } else { None };
        Ok(Reconciled { plan, held, report, interval: settings.watch_interval.to_std() })
    }
}
