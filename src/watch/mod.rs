//! `tomo watch`: a GitOps loop. It reconciles at start, after every change
//! to the manifest folder (debounced: a burst of writes gives one run), on
//! the drift timer (`Settings.watch.interval`), and after a `git pull` that
//! brought changes. Triggers carry no payload: each run compares the whole
//! manifest folder with the servers (`engine::reconcile`).
//!
//! **Invariants:**
//! - One reconcile at a time. Changes that arrive during a run make exactly
//!   one more run after it.
//! - An invalid manifest folder is reported (file, line) and nothing is
//!   applied; what runs keeps running until the folder is valid again.
//! - SIGINT/SIGTERM: no new action starts, the ones running finish (at most
//!   `SHUTDOWN_GRACE`), the run is recorded, the process exits 0.
//! - The store is opened at start and must stay the same file: when it is
//!   deleted or replaced (seen by a watch on the data folder, and checked
//!   before every run and action), no new action starts and the process exits
//!   3 with the reason, rather than write to a store nobody reads.
//! - `Settings.backup` runs beside reconcile (`backup`), never holding it up.

mod backup;
mod gauges;
mod git;
mod metrics;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use metrics::{Metrics, serve as serve_metrics};

use crate::engine::{Engine, FolderWatch, TracingSink, Trigger, watch_failed};
use crate::error::{Error, Result};

/// How long a shutdown waits for the actions in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// How `tomo watch` runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Quiet time after the last file event before a run (default 500 ms).
    pub debounce: Duration,
    /// `git pull --ff-only` this remote or URL into the manifest folder every `git_interval`.
    pub git_pull: Option<String>,
    pub git_interval: Duration,
    /// Serve Prometheus metrics and `/healthz` here.
    pub metrics: Option<String>,
}

/// What wakes the loop.
#[derive(Debug)]
enum Input {
    /// Something in the manifest folder changed.
    Files,
    /// A git pull brought new commits.
    Pulled,
    /// Something in the data folder was removed or renamed.
    DataFolder,
    Shutdown,
}

/// A background task, stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(engine: Arc<Engine>, opts: WatchOptions) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = &opts.metrics {
        metrics::serve(addr, Some(metrics.clone()), engine.clone()).await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    // The data folder exists and the store is open from here on.
    engine.check_store()?;
    // `metrics_system` tells from this mark that a watch runs here.
    let _mark = engine.mark_watch()?;
    let _data = watch_data_folder(&engine.config().data_dir, tx.clone())?;
    let dir = engine.config().manifests.clone();
    let _watcher = watch_folder(&dir, tx.clone())?;
    tokio::spawn(signals(tx.clone()));
    let _beside = beside(&engine);
    if let Some(remote) = &opts.git_pull {
        git::check_remote(remote)?;
        tokio::spawn(git::pull_every(dir.clone(), remote.clone(), opts.git_interval, tx.clone()));
    }
    tracing::info!(manifests = %dir.display(), debounce_ms = opts.debounce.as_millis() as u64, "watching");
    let stop = Arc::new(AtomicBool::new(false));
    let mut interval = Duration::from_secs(300);
    let mut due: Option<(Instant, Trigger)> = Some((Instant::now(), Trigger::Start));
    let mut next_drift = Instant::now() + interval;
    loop {
        let (wake, trigger) = match due {
            Some((at, t)) if at <= next_drift => (at, t),
            _ => (next_drift, Trigger::Drift),
        };
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Files) | Some(Input::Pulled) => {
                    due = Some((Instant::now() + opts.debounce, Trigger::Files));
                }
                Some(Input::DataFolder) => store_intact(&engine)?,
                Some(Input::Shutdown) | None => break,
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                if trigger == Trigger::Drift {
                    next_drift = Instant::now() + interval;
                } else {
                    due = None;
                }
                let run = one_run(&engine, trigger, stop.clone(), &metrics);
                tokio::pin!(run);
                let mut stopping: Option<Instant> = None;
                let mut lost = false;
                loop {
                    let grace = stopping.map_or(Duration::MAX, |t| SHUTDOWN_GRACE.saturating_sub(t.elapsed()));
                    tokio::select! {
                        r = &mut run => {
                            if let Some(i) = r? {
                                if i != interval {
                                    next_drift = Instant::now() + i;
                                }
                                interval = i;
                            }
                            break;
                        }
                        input = rx.recv(), if stopping.is_none() => match input {
                            Some(Input::Files) | Some(Input::Pulled) => {
                                due = Some((Instant::now() + opts.debounce, Trigger::Files));
                            }
                            Some(Input::DataFolder) => {
                                if engine.check_store().is_err_and(|e| e.is_store_lost()) {
                                    // No new action; the daemon stops when the run ends.
                                    stop.store(true, Ordering::SeqCst);
                                    lost = true;
                                }
                            }
                            Some(Input::Shutdown) | None => {
                                tracing::info!("stopping: letting the actions in flight finish");
                                stop.store(true, Ordering::SeqCst);
                                stopping = Some(Instant::now());
                            }
                        },
                        _ = tokio::time::sleep(grace), if stopping.is_some() => {
                            tracing::warn!("actions still running after {} s; exiting (the next run recovers)", SHUTDOWN_GRACE.as_secs());
                            break;
                        }
                    }
                }
                if lost {
                    store_intact(&engine)?;
                }
                if stopping.is_some() {
                    break;
                }
            }
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// What runs beside reconciling, stopped when the daemon stops: app stores
/// re-syncing on their own intervals (a failure is logged only), fleet
/// metrics at `Settings.metrics.interval`, scheduled backups (`Settings.backup`).
fn beside(engine: &Arc<Engine>) -> [AbortOnDrop; 3] {
    let stores = engine.clone();
    let collector = engine.clone().metrics_loop(Arc::new(AtomicBool::new(false)));
    [
        AbortOnDrop(tokio::spawn(async move { stores.market_keep_synced().await })),
        AbortOnDrop(tokio::spawn(collector)),
        AbortOnDrop(tokio::spawn(backup::every_due(engine.clone()))),
    ]
}

/// Fails (logged) when the store was deleted or replaced: the daemon stops.
fn store_intact(engine: &Engine) -> Result<()> {
    match engine.check_store() {
        Err(e) if e.is_store_lost() => {
            tracing::error!("stopping: {e}");
            Err(e)
        }
        // Another problem shows in the next run's result.
        _ => Ok(()),
    }
}

/// One reconcile, logged and counted; returns the drift interval in effect
/// (`None` when the manifests could not be read), or the error that stops
/// the daemon (the store was lost).
async fn one_run(
    engine: &Engine,
    trigger: Trigger,
    stop: Arc<AtomicBool>,
    metrics: &Metrics,
) -> Result<Option<Duration>> {
    let t = Instant::now();
    tracing::debug!(trigger = trigger.as_str(), "run started");
    let result = engine.reconcile(trigger, stop, &TracingSink).await;
    let secs = t.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            let (ok, failed, skipped) = r
                .report
                .as_ref()
                .map_or((0, 0, 0), |rep| (rep.count("succeeded"), rep.count("failed"), rep.count("skipped")));
            let outcome = match (&r.report, r.held.is_empty()) {
                _ if failed > 0 => "failed",
                (Some(_), _) => "applied",
                (None, false) => "held",
                (None, true) => "in_sync",
            };
            for h in &r.held {
                tracing::warn!(action = %h, "held");
            }
            for (s, why) in &r.plan.unreachable {
                tracing::warn!(server = %s, "unreachable: {why}");
            }
            tracing::info!(
                trigger = trigger.as_str(),
                outcome,
                actions = r.plan.actions.len(),
                succeeded = ok,
                failed,
                skipped,
                held = r.held.len(),
                conflicts = r.plan.conflicts.len(),
                unreachable = r.plan.unreachable.len(),
                run = r.report.as_ref().and_then(|x| x.run_id),
                duration_ms = (secs * 1000.0) as u64,
                "run finished"
            );
            metrics.record_run(
                outcome,
                secs,
                ok,
                failed,
                skipped,
                r.held.len(),
                trigger == Trigger::Drift && r.plan.has_changes(),
            );
            Ok(Some(r.interval))
        }
        Err(e) if e.is_store_lost() => {
            metrics.record_run("error", secs, 0, 0, 0, 0, false);
            tracing::error!(trigger = trigger.as_str(), outcome = "error", "stopping: {e}");
            Err(e)
        }
        Err(e) => {
            let outcome = if matches!(e, Error::Invalid(_)) { "invalid" } else { "error" };
            if let Some(d) = e.diagnostics() {
                for d in d.iter().filter(|d| d.is_error()) {
                    tracing::error!(location = %d.location(), "{d}");
                }
            }
            tracing::error!(
                trigger = trigger.as_str(),
                outcome,
                duration_ms = (secs * 1000.0) as u64,
                "run finished: {e}; nothing was applied, what runs keeps running"
            );
            metrics.record_run(outcome, secs, 0, 0, 0, 0, false);
            Ok(None)
        }
    }
}

/// Watches the manifest folder (recursively); `.git` and editor temporaries are ignored.
fn watch_folder(dir: &Path, tx: mpsc::UnboundedSender<Input>) -> Result<FolderWatch> {
    crate::engine::watch_folder(dir, move || {
        let _ = tx.send(Input::Files);
    })
}

/// Watches the data folder itself: a removal or rename in it (or of it) is
/// checked against the open store at once, not at the next run.
fn watch_data_folder(dir: &Path, tx: mpsc::UnboundedSender<Input>) -> Result<notify::RecommendedWatcher> {
    use notify::event::ModifyKind;
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))) {
            let _ = tx.send(Input::DataFolder);
        }
    })
    .map_err(|e| watch_failed(dir, e))?;
    watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| watch_failed(dir, e))?;
    Ok(watcher)
}

async fn signals(tx: mpsc::UnboundedSender<Input>) {
    crate::shutdown::requested().await;
    let _ = tx.send(Input::Shutdown);
}
