//! Apply: walks a plan's DAG, running every action whose prerequisites
//! succeeded, at most `parallelism` at a time. A failed action skips its
//! dependents (transitively) and lets independent work finish. Each action is
//! journalled before and after it runs. What a failure says passes
//! `redact::Redactor` with every secret value of the plan first: a server's
//! error may echo what it was sent, and the text is printed, logged,
//! journalled and returned to agents.

mod engine;
mod exec;
#[cfg(test)]
mod fake;
pub mod lock;
pub mod rolling;
#[cfg(test)]
mod rolling_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::model::Name;
use crate::model::secret::Secrets;
use crate::plan::{Action, Plan};
use crate::redact::Redactor;
use crate::transport::engine::EngineApi;

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed(String),
    Skipped(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub id: usize,
    pub outcome: Outcome,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub run_id: Option<i64>,
    pub results: Vec<ActionResult>,
    pub elapsed_ms: u64,
    /// Stopped on request (a stop flag, a cancelled call) before every
    /// action ran: those not started are `skipped`.
    pub cancelled: bool,
    /// Apps updated server by server: where each server ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolling: Vec<rolling::RollingResult>,
}

impl ApplyReport {
    pub fn count(&self, status: &str) -> usize {
        self.results.iter().filter(|r| r.outcome.as_str() == status).count()
    }
    pub fn succeeded(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Succeeded)
    }
}

/// How far an apply is: `done` of `total` actions have ended (succeeded,
/// failed or skipped), the last being `action` (`recreate web on nas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyEvent {
    pub done: usize,
    pub total: usize,
    pub action: String,
}

impl ApplyEvent {
    /// `verb object on server`, as progress messages name an action.
    pub fn describe(a: &Action) -> String {
        format!("{} {} on {}", a.op.verb(), a.op.object(), a.server)
    }
}

/// Receives progress; front ends render it. The sink of one call may also
/// stop it: once `cancelled` is true no further action starts (those
/// running finish), as with `ApplyOptions::stop`.
pub trait ApplySink: Send + Sync {
    fn started(&self, action: &Action);
    fn finished(&self, action: &Action, outcome: &Outcome, elapsed: Duration);
    /// After each action ended, in order: `done` only grows.
    fn progress(&self, _event: &ApplyEvent) {}
    /// Whether the caller asked to stop.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Two sinks as one (the process log and a caller's own, say); cancelled
/// when either is.
pub struct Both<'a>(pub &'a dyn ApplySink, pub &'a dyn ApplySink);

impl ApplySink for Both<'_> {
    fn started(&self, a: &Action) {
        self.0.started(a);
        self.1.started(a);
    }
    fn finished(&self, a: &Action, outcome: &Outcome, elapsed: Duration) {
        self.0.finished(a, outcome, elapsed);
        self.1.finished(a, outcome, elapsed);
    }
    fn progress(&self, e: &ApplyEvent) {
        self.0.progress(e);
        self.1.progress(e);
    }
    fn cancelled(&self) -> bool {
        self.0.cancelled() || self.1.cancelled()
    }
}

/// Progress as log lines (`tracing`), for front ends without a terminal.
pub struct TracingSink;

impl ApplySink for TracingSink {
    fn started(&self, a: &Action) {
        tracing::debug!(server = %a.server, action = a.op.verb(), object = a.op.object(), "started");
    }
    fn finished(&self, a: &Action, outcome: &Outcome, elapsed: Duration) {
        let (server, verb, object, ms) = (a.server.as_str(), a.op.verb(), a.op.object(), elapsed.as_millis() as u64);
        match outcome {
            Outcome::Succeeded => {
                tracing::info!(server, action = verb, object, outcome = "succeeded", elapsed_ms = ms, "action finished")
            }
            // A failure or skip says why, in the same line.
            Outcome::Failed(error) | Outcome::Skipped(error) => tracing::warn!(
                server,
                action = verb,
                object,
                outcome = outcome.as_str(),
                error = error.as_str(),
                elapsed_ms = ms,
                "action finished"
            ),
        }
    }
}

/// Receives the journal: before and after each action.
pub trait Journal: Send + Sync {
    fn started(&self, action: &Action);
    fn finished(&self, action: &Action, outcome: &Outcome, container_id: Option<&str>);
    /// A recreate that had succeeded was undone (its previous container put
    /// back by a `rollback-all` rollout): `outcome` replaces its success,
    /// and what it recorded of the service goes back to what it was.
    fn rolled_back(&self, action: &Action, outcome: &Outcome) {
        self.finished(action, outcome, None);
    }
}

pub struct ApplyOptions {
    pub parallelism: usize,
    pub health_timeout: Duration,
    /// How long each created or recreated container is watched after it
    /// started and what a failure does (`rollout:` of Settings, app and
    /// service; zero: not at all).
    pub verify: crate::model::VerifyPolicies,
    /// Once set, no further action starts; those running finish.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Executes `plan` through each server's engine. Actions on servers without
/// one fail with the reason.
pub async fn run<E: EngineApi + Clone + 'static>(
    plan: &Plan,
    clients: &BTreeMap<Name, Result<E, crate::error::ConnectError>>,
    secrets: Arc<dyn Secrets>,
    opts: &ApplyOptions,
    sink: &dyn ApplySink,
    journal: &dyn Journal,
) -> ApplyReport {
    let started = Instant::now();
    let n = plan.actions.len();
    let (mut waiting, dependents, followers) = links(plan);
    let mut outcomes: Vec<Option<(Outcome, u64)>> = vec![None; n];
    let mut ready: VecDeque<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut running: JoinSet<(usize, Result<Option<String>, String>, u64)> = JoinSet::new();
    let parallelism = opts.parallelism.max(1);
    let redact = Arc::new(plan_secrets(plan, secrets.as_ref()));
    let keep_old = rolling::keeping_old(plan);
    let mut made: Vec<Option<String>> = vec![None; n];

    let stopped = || opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) || sink.cancelled();
    let mut done = 0;
    let mut ended = |action: &Action| {
        done += 1;
        sink.progress(&ApplyEvent { done, total: n, action: ApplyEvent::describe(action) });
    };
    loop {
        while running.len() < parallelism && !stopped() {
            let Some(id) = ready.pop_front() else { break };
            let action = plan.actions[id].clone();
            let client = clients.get(&action.server).map(|c| c.as_ref().cloned().map_err(|e| e.to_string()));
            let secrets = secrets.clone();
            let redact = redact.clone();
            let (health_timeout, verify, keep) = (
                opts.health_timeout,
                opts.verify.get(action.app.as_ref(), action.service.as_ref()),
                keep_old.contains(&id),
            );
            sink.started(&action);
            journal.started(&action);
            // In the caller's span: what the action logs is the call's (`mcp::events`).
            running.spawn(tracing::Instrument::in_current_span(async move {
                let t = Instant::now();
                let work = async {
                    match client {
                        Some(Ok(c)) => {
                            let c = c.redacting(redact);
                            exec::execute(&action, &c, secrets.as_ref(), health_timeout, verify, keep).await
                        }
                        Some(Err(why)) => Err(format!("server `{}` is unreachable: {why}", action.server)),
                        None => Err(format!("server `{}` has no connection", action.server)),
                    }
                };
                let r = std::panic::AssertUnwindSafe(work)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err("internal error (a panic in tomo); please report it as a bug".to_string()));
                (action.id, r, t.elapsed().as_millis() as u64)
            }));
        }
        let Some(joined) = running.join_next().await else { break };
        let Ok((id, result, ms)) = joined else { continue };
        let action = &plan.actions[id];
        let (outcome, container) = match result {
            Ok(c) => (Outcome::Succeeded, c),
            Err(e) => (Outcome::Failed(redact.apply(&e)), None),
        };
        sink.finished(action, &outcome, Duration::from_millis(ms));
        journal.finished(action, &outcome, container.as_deref());
        made[id] = container;
        ended(action);
        let ok = outcome == Outcome::Succeeded;
        outcomes[id] = Some((outcome, ms));
        let mut finished = vec![id];
        if ok {
            release(&dependents[id], &mut waiting, &outcomes, &mut ready);
        } else {
            let skipped = skip_dependents(plan, action, id, &dependents, &mut outcomes, sink, journal);
            skipped.iter().for_each(|d| ended(&plan.actions[*d]));
            finished.extend(skipped);
        }
        for f in finished {
            release(&followers[f], &mut waiting, &outcomes, &mut ready);
        }
    }
    let stop = match (stopped(), sink.cancelled()) {
        (true, true) => Some("not started: the call was cancelled"),
        (true, false) => Some("not started: tomo was stopping"),
        _ => None,
    };
    let walked = rolling::Walked { outcomes: &mut outcomes, made: &made, journal, redact: &redact };
    let rolled_back = rolling::settle_kept(plan, clients, walked).await;
    report(plan, outcomes, stop, started, &rolled_back)
}

/// Per action: how many actions it waits for, the actions that need it to
/// succeed (`after`), and those waiting for it to finish in any way
/// (`after_any`, `required: false`).
type Links = (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>);

fn links(plan: &Plan) -> Links {
    let n = plan.actions.len();
    let waiting: Vec<usize> = plan.actions.iter().map(|a| a.after.len() + a.after_any.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut followers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for a in &plan.actions {
        for b in &a.after {
            dependents[*b].push(a.id);
        }
        for b in &a.after_any {
            followers[*b].push(a.id);
        }
    }
    (waiting, dependents, followers)
}

/// The report of a walk: actions without an outcome were not started,
/// because of `stop` (`cancelled`) or not reached.
fn report(
    plan: &Plan,
    outcomes: Vec<Option<(Outcome, u64)>>,
    stop: Option<&str>,
    started: Instant,
    rolled_back: &std::collections::BTreeSet<usize>,
) -> ApplyReport {
    let cancelled = stop.is_some() && outcomes.iter().any(Option::is_none);
    let why = stop.unwrap_or("not reached");
    let mut report = ApplyReport {
        run_id: None,
        results: outcomes
            .into_iter()
            .enumerate()
            .map(|(id, o)| {
                let (outcome, elapsed_ms) = o.unwrap_or((Outcome::Skipped(why.into()), 0));
                ActionResult { id, outcome, elapsed_ms }
            })
            .collect(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        cancelled,
        rolling: Vec::new(),
    };
    report.rolling = rolling::outcome(plan, &report.results, rolled_back);
    report
}

/// One wait less for each of `next`; those waiting for nothing more are ready.
fn release(next: &[usize], waiting: &mut [usize], outcomes: &[Option<(Outcome, u64)>], ready: &mut VecDeque<usize>) {
    for d in next {
        waiting[*d] -= 1;
        if waiting[*d] == 0 && outcomes[*d].is_none() {
            ready.push_back(*d);
        }
    }
}

/// Skips everything that depends on the failed action `id`, transitively;
/// returns the actions skipped.
fn skip_dependents(
    plan: &Plan,
    action: &Action,
    id: usize,
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<(Outcome, u64)>],
    sink: &dyn ApplySink,
    journal: &dyn Journal,
) -> Vec<usize> {
    let mut skipped_ids = Vec::new();
    let mut stack = dependents[id].clone();
    while let Some(d) = stack.pop() {
        if outcomes[d].is_some() {
            continue;
        }
        skipped_ids.push(d);
        let why = format!("{} {} did not succeed", action.op.verb(), action.op.object());
        let skipped = Outcome::Skipped(why);
        sink.finished(&plan.actions[d], &skipped, Duration::ZERO);
        journal.finished(&plan.actions[d], &skipped, None);
        outcomes[d] = Some((skipped, 0));
        stack.extend(dependents[d].iter().copied());
    }
    skipped_ids
}

/// Every secret value the plan sends to a server (vault and inline
/// encrypted env values of the containers it creates).
fn plan_secrets(plan: &Plan, secrets: &dyn Secrets) -> Redactor {
    let revealed: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| a.op.creates())
        .flat_map(|(spec, _)| spec.secret_values())
        .filter_map(|v| secrets.reveal(&v).ok())
        .collect();
    Redactor::new(revealed.iter().map(|s| s.expose()))
}
