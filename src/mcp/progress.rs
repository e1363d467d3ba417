//! One tool call's notifications and cancellation.
//!
//! - **Progress**: a call carrying `_meta.progressToken` gets
//!   `notifications/progress`: `0` when it starts, then, for the tools that
//!   apply (`apply`, `proposal_approve`), one per action ended
//!   (`progress` = actions done, `total` = actions, `message` =
//!   `recreate web on nas`, from the engine's `ApplySink::progress`), and a
//!   last `1` of `1` when nothing else was reported. Values only grow.
//! - **Logging**: the engine's events of this call (actions started and
//!   ended, failures, skips, a cancellation) as `notifications/message`
//!   at or above the level `logging.rs` gives the call. Their text comes
//!   from apply, which masks every secret value of the plan (`redact`).
//! - **Cancellation**: `notifications/cancelled` cancels the request's token
//!   (rmcp); the sink's `cancelled` reports it to apply, which starts no
//!   further action and lets the running ones finish, as the stop flag of a
//!   SIGTERM does; the run is recorded `cancelled`. This is per call: other
//!   calls and sessions go on.
//!
//! Notifications go through one queue per call, sent in order by one task
//! that is drained before the call's result is returned.
#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); 2025-11-25 clients use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, RequestMetaObject,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde_json::json;
use tokio::sync::mpsc;

use super::logging::{self, SessionLevel};
use crate::engine::{Action, ApplyEvent, ApplyReport, ApplySink, Outcome};

/// How long a finished call waits for its last notifications to be written.
const DRAIN: Duration = Duration::from_secs(5);

enum Note {
    Progress(ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
}

/// The notifications and cancellation of one tool call.
pub struct Call {
    token: Option<ProgressToken>,
    level: Option<LoggingLevel>,
    /// Whether the request's cancellation token (rmcp's) is cancelled.
    cancelled: Box<dyn Fn() -> bool + Send + Sync>,
    /// The last progress value sent (`u64::MAX`: none yet).
    last: AtomicU64,
    tx: Mutex<Option<mpsc::UnboundedSender<Note>>>,
}

/// The request's progress token; a `progressToken` that is neither a string
/// nor an integer is invalid params (the specification's type).
pub fn token(meta: &RequestMetaObject) -> Result<Option<ProgressToken>, ErrorData> {
    match (meta.get("progressToken"), meta.get_progress_token()) {
        (None, _) => Ok(None),
        (Some(_), Some(t)) => Ok(Some(t)),
        (Some(v), None) => Err(ErrorData::invalid_params(
            format!("`_meta.progressToken` must be a string or an integer, not `{v}`"),
            None,
        )),
    }
}

impl Call {
    /// The call of `context`, with its sender task when the caller asked
    /// for progress or logs.
    pub fn begin(
        context: &RequestContext<RoleServer>,
        session: &SessionLevel,
    ) -> Result<(Arc<Call>, Option<tokio::task::JoinHandle<()>>), ErrorData> {
        let token = token(&context.meta)?;
        let level = session.for_request(&context.meta);
        let (tx, task) = if token.is_some() || level.is_some() {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(tokio::spawn(forward(context.peer.clone(), rx))))
        } else {
            (None, None)
        };
        let ct = context.ct.clone();
        let cancelled = Box::new(move || ct.is_cancelled());
        let call = Call { token, level, cancelled, last: AtomicU64::new(u64::MAX), tx: Mutex::new(tx) };
        Ok((Arc::new(call), task))
    }

    fn send(&self, note: Note) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(note);
        }
    }

    /// Progress `done` (of `total`), sent only when it grows.
    pub fn progress(&self, done: u64, total: Option<u64>, message: &str) {
        let Some(token) = &self.token else { return };
        let grew = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| (last == u64::MAX || done > last).then_some(done))
            .is_ok();
        if grew {
            let mut p = ProgressNotificationParam::new(token.clone(), done as f64).with_message(message);
            p.total = total.map(|t| t as f64);
            self.send(Note::Progress(p));
        }
    }

    /// A log message, when `level` is at or above the call's.
    pub fn log(&self, level: LoggingLevel, data: serde_json::Value) {
        if self.level.is_some_and(|min| logging::rank(level) >= logging::rank(min)) {
            self.send(Note::Log(LoggingMessageNotificationParam::new(level, data).with_logger(logging::LOGGER)));
        }
    }

    /// Whether the client cancelled the call.
    pub fn cancelled(&self) -> bool {
        (self.cancelled)()
    }

    /// What apply reports to this call.
    pub fn sink(&self) -> CallSink<'_> {
        CallSink(self)
    }

    /// After the tool: the last progress (when nothing past the start was
    /// reported), then no more notifications.
    fn close(&self, tool: &str) {
        if self.last.load(Ordering::SeqCst) == 0 {
            self.progress(1, Some(1), &format!("{tool}: done"));
        }
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Says, when the client cancelled an apply, what ran and what did not.
    pub fn report(&self, report: &ApplyReport) {
        if report.cancelled {
            let not_started = report.results.iter().filter(|r| r.outcome == skipped()).count();
            let message = format!(
                "apply cancelled: {} action(s) ran, {not_started} not started{}",
                report.results.len() - not_started,
                report.run_id.map(|r| format!(" (run {r})")).unwrap_or_default()
            );
            self.log(LoggingLevel::Warning, json!({"message": message, "run": report.run_id}));
        }
    }
}

fn skipped() -> Outcome {
    Outcome::Skipped("not started: the call was cancelled".into())
}

/// Runs `tool` as `call`: progress `0` first, the closing notifications and
/// their delivery after.
pub async fn around<F: std::future::Future>(
    call: Arc<Call>,
    task: Option<tokio::task::JoinHandle<()>>,
    tool: &str,
    fut: F,
) -> F::Output {
    call.progress(0, None, &format!("{tool}: started"));
    let id = super::events::register(&call);
    let out = tracing::Instrument::instrument(fut, tracing::info_span!("mcp_call", call = id)).await;
    super::events::unregister(id);
    call.close(tool);
    if let Some(task) = task {
        let _ = tokio::time::timeout(DRAIN, task).await;
    }
    out
}

async fn forward(peer: Peer<RoleServer>, mut rx: mpsc::UnboundedReceiver<Note>) {
    while let Some(note) = rx.recv().await {
        let sent = match note {
            Note::Progress(p) => peer.notify_progress(p).await,
            Note::Log(m) => peer.notify_logging_message(m).await,
        };
        if sent.is_err() {
            // The client is gone; the call finishes without it.
            return;
        }
    }
}

/// Apply's events for one call.
pub struct CallSink<'a>(&'a Call);

impl ApplySink for CallSink<'_> {
    fn started(&self, a: &Action) {
        let action = ApplyEvent::describe(a);
        self.0.log(LoggingLevel::Info, json!({"message": format!("started {action}"), "action": action}));
    }

    fn finished(&self, a: &Action, outcome: &Outcome, elapsed: Duration) {
        let action = ApplyEvent::describe(a);
        let ms = elapsed.as_millis() as u64;
        let (level, error) = match outcome {
            Outcome::Succeeded => (LoggingLevel::Info, None),
            Outcome::Failed(e) => (LoggingLevel::Error, Some(e)),
            Outcome::Skipped(e) => (LoggingLevel::Warning, Some(e)),
        };
        let mut message = format!("{} {action}", outcome.as_str());
        if let Some(e) = error {
            message.push_str(&format!(": {e}"));
        }
        let data = json!({"message": message, "action": action, "outcome": outcome.as_str(), "error": error, "elapsed_ms": ms});
        self.0.log(level, data);
    }

    fn progress(&self, e: &ApplyEvent) {
        self.0.progress(e.done as u64, Some(e.total as u64), &e.action);
    }

    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}
