//! How a rolling update (`rollout.strategy: one-at-a-time`) ended on each
//! of its servers, in the order it went through them: for the report, so a
//! failure on one server says which servers stay on the new release and
//! which were not reached.

use serde::Serialize;

use super::{ActionResult, Outcome};
use crate::model::Name;
use crate::plan::Plan;

/// Where one server of a rolling update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollingState {
    /// Every action succeeded: the server runs the new release.
    Updated,
    /// An action failed (its own rollback, if any, is in its failure).
    Failed,
    /// Not started after an earlier server failed: the previous release runs.
    NotReached,
    /// Updated, then put back on the previous release with the rest of the
    /// rollout (`on_failure: rollback-all`).
    RolledBack,
}

impl RollingState {
    pub fn describe(self) -> &'static str {
        match self {
            RollingState::Updated => "on the new release",
            RollingState::Failed => "failed",
            RollingState::NotReached => "not reached (still on the previous release)",
            RollingState::RolledBack => "rolled back to the previous release",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollingServer {
    pub server: Name,
    pub state: RollingState,
}

/// One app's rolling update, its servers in rollout order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollingResult {
    pub app: Name,
    pub servers: Vec<RollingServer>,
}

impl RollingResult {
    /// `a on the new release → b failed → c not reached (…)`.
    pub fn describe(&self) -> String {
        let steps: Vec<String> = self.servers.iter().map(|s| format!("{} {}", s.server, s.state.describe())).collect();
        format!("rolling {}: {}", self.app, steps.join(" → "))
    }
}

/// Each rolling app of `plan` with where each of its servers ended.
pub fn outcome(plan: &Plan, results: &[ActionResult]) -> Vec<RollingResult> {
    plan.rolling
        .iter()
        .map(|r| RollingResult {
            app: r.app.clone(),
            servers: r
                .servers
                .iter()
                .map(|s| RollingServer { server: s.clone(), state: state(plan, results, &r.app, s) })
                .collect(),
        })
        .collect()
}

fn state(plan: &Plan, results: &[ActionResult], app: &Name, server: &Name) -> RollingState {
    let mine = results
        .iter()
        .filter(|r| plan.actions.get(r.id).is_some_and(|a| a.server == *server && a.app.as_ref() == Some(app)));
    let mut state = RollingState::Updated;
    for r in mine {
        match r.outcome {
            Outcome::Failed(_) => return RollingState::Failed,
            Outcome::Skipped(_) => state = RollingState::NotReached,
            Outcome::Succeeded => {}
        }
    }
    state
}
