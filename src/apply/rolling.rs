//! How a rolling update (`rollout.strategy: one-at-a-time`) ended on each
//! of its servers, in the order it went through them: for the report, so a
//! failure on one server says which servers stay on the new release and
//! which were not reached.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::{ActionResult, ApplyEvent, Journal, Outcome};
use crate::error::ConnectError;
use crate::model::Name;
use crate::plan::{Action, Op, Plan};
use crate::redact::Redactor;
use crate::transport::docker::short;
use crate::transport::engine::EngineApi;

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

/// Each rolling app of `plan` with where each of its servers ended
/// (`rolled_back`: the recreates `settle_kept` put back).
pub fn outcome(plan: &Plan, results: &[ActionResult], rolled_back: &BTreeSet<usize>) -> Vec<RollingResult> {
    plan.rolling
        .iter()
        .map(|r| RollingResult {
            app: r.app.clone(),
            servers: r
                .servers
                .iter()
                .map(|s| RollingServer { server: s.clone(), state: state(plan, results, rolled_back, &r.app, s) })
                .collect(),
        })
        .collect()
}

fn state(
    plan: &Plan,
    results: &[ActionResult],
    rolled_back: &BTreeSet<usize>,
    app: &Name,
    server: &Name,
) -> RollingState {
    let mine: Vec<&ActionResult> = results
        .iter()
        .filter(|r| plan.actions.get(r.id).is_some_and(|a| a.server == *server && a.app.as_ref() == Some(app)))
        .collect();
    if mine.iter().any(|r| rolled_back.contains(&r.id)) {
        return RollingState::RolledBack;
    }
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

/// The recreates that keep their old container aside once the new one took
/// over: those of apps rolled out with `on_failure: rollback-all`, so that
/// every server can go back until the whole rollout verified.
pub(super) fn keeping_old(plan: &Plan) -> BTreeSet<usize> {
    let all: Vec<&Name> = plan.rolling.iter().filter(|r| r.rollback_all).map(|r| &r.app).collect();
    plan.actions
        .iter()
        .filter(|a| matches!(a.op, Op::Recreate { .. }) && a.app.as_ref().is_some_and(|app| all.contains(&app)))
        .map(|a| a.id)
        .collect()
}

/// What the walk left of one `rollback-all` rollout to settle.
pub(super) struct Walked<'a> {
    pub outcomes: &'a mut [Option<(Outcome, u64)>],
    /// The container each action left in place (a recreate: the new one).
    pub made: &'a [Option<String>],
    pub journal: &'a dyn Journal,
    pub redact: &'a Redactor,
}

/// After the walk, each `rollback-all` rollout: when every action of the app
/// succeeded, the previous containers kept aside are removed; otherwise each
/// server already updated gets its previous container back (the recreate's
/// outcome becomes a failure saying so, in the report and the journal).
/// Returns the actions rolled back.
pub(super) async fn settle_kept<E: EngineApi>(
    plan: &Plan,
    clients: &BTreeMap<Name, Result<E, ConnectError>>,
    w: Walked<'_>,
) -> BTreeSet<usize> {
    let mut rolled_back = BTreeSet::new();
    let ok = |o: &Option<(Outcome, u64)>| matches!(o, Some((Outcome::Succeeded, _)));
    for r in plan.rolling.iter().filter(|r| r.rollback_all) {
        let mine: Vec<&Action> = plan.actions.iter().filter(|a| a.app.as_ref() == Some(&r.app)).collect();
        let failed = mine.iter().find(|a| !ok(&w.outcomes[a.id])).map(|f| ApplyEvent::describe(f));
        for a in &mine {
            let (Op::Recreate { spec, old_id, start, .. }, true) = (&a.op, ok(&w.outcomes[a.id])) else { continue };
            let Some(Ok(c)) = clients.get(&a.server) else { continue };
            let Some(failed) = &failed else {
                if let Err(e) = c.remove(old_id, Duration::from_secs(10)).await {
                    tracing::warn!(server = %a.server, container = %spec.container, error = %w.redact.apply(&e.to_string()), "the previous container kept aside could not be removed; the next plan removes it");
                }
                continue;
            };
            let new = w.made[a.id].as_deref().unwrap_or(&spec.container);
            let (back, done) = put_back(c, &spec.container, new, old_id, *start).await;
            let why =
                format!("rolled back with the rollout (`on_failure: rollback-all`; {failed} did not succeed): {done}");
            let outcome = Outcome::Failed(w.redact.apply(&why));
            if back {
                w.journal.rolled_back(a, &outcome);
            } else {
                w.journal.finished(a, &outcome, None);
            }
            if let Some((o, _)) = &mut w.outcomes[a.id] {
                *o = outcome;
            }
            rolled_back.insert(a.id);
        }
    }
    rolled_back
}

/// Removes the new container `new` and gives `name` back to the previous
/// one, kept aside by the recreate; starts it when the service runs.
/// Whether the previous container holds `name` again, and what happened.
async fn put_back<E: EngineApi>(c: &E, name: &str, new: &str, old: &str, start: bool) -> (bool, String) {
    let aside = format!("{name}-tomo-old-{}", short(old));
    if let Err(e) = c.remove(new, Duration::from_secs(10)).await {
        return (false, format!("removing the new container failed ({e}); the previous one is kept as `{aside}`"));
    }
    if let Err(e) = c.rename(old, name).await {
        return (false, format!("renaming the previous container back failed ({e}); it is kept as `{aside}`"));
    }
    if start && let Err(e) = c.start(old).await {
        return (true, format!("the previous container was put back but did not start: {e}"));
    }
    (true, "the previous container was put back".into())
}
