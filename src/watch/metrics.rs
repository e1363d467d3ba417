//! Prometheus metrics of `tomo watch` and `tomo serve` (text format 0.0.4)
//! and `/healthz`: the watch counters (watch only) and the newest fleet
//! figures as gauges (`gauges.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;

use super::gauges::{self, Firing};
use crate::engine::Engine;
use crate::error::{Error, IoOp, Result};

/// Counters since start.
#[derive(Debug, Default)]
pub struct Metrics {
    runs_applied: AtomicU64,
    runs_in_sync: AtomicU64,
    runs_held: AtomicU64,
    runs_failed: AtomicU64,
    runs_invalid: AtomicU64,
    runs_error: AtomicU64,
    actions_succeeded: AtomicU64,
    actions_failed: AtomicU64,
    actions_skipped: AtomicU64,
    actions_held: AtomicU64,
    drift_found: AtomicU64,
    /// Unix seconds of the last run that ended without a failure.
    last_success: AtomicU64,
    /// Microseconds, last run and the sum over runs.
    last_duration_us: AtomicU64,
    duration_sum_us: AtomicU64,
}

impl Metrics {
    #[allow(clippy::too_many_arguments)]
    pub fn record_run(
        &self,
        outcome: &str,
        secs: f64,
        succeeded: usize,
        failed: usize,
        skipped: usize,
        held: usize,
        drift: bool,
    ) {
        let counter = match outcome {
            "applied" => &self.runs_applied,
            "in_sync" => &self.runs_in_sync,
            "held" => &self.runs_held,
            "failed" => &self.runs_failed,
            "invalid" => &self.runs_invalid,
            _ => &self.runs_error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.actions_succeeded.fetch_add(succeeded as u64, Ordering::Relaxed);
        self.actions_failed.fetch_add(failed as u64, Ordering::Relaxed);
        self.actions_skipped.fetch_add(skipped as u64, Ordering::Relaxed);
        self.actions_held.fetch_add(held as u64, Ordering::Relaxed);
        if drift {
            self.drift_found.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(outcome, "applied" | "in_sync" | "held") {
            self.last_success.store(crate::auth::now_unix() as u64, Ordering::Relaxed);
        }
        let us = (secs * 1e6) as u64;
        self.last_duration_us.store(us, Ordering::Relaxed);
        self.duration_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let runs = [
            ("applied", g(&self.runs_applied)),
            ("in_sync", g(&self.runs_in_sync)),
            ("held", g(&self.runs_held)),
            ("failed", g(&self.runs_failed)),
            ("invalid", g(&self.runs_invalid)),
            ("error", g(&self.runs_error)),
        ];
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let mut out = String::from(
            "# HELP tomo_watch_runs_total Reconcile runs by outcome.\n# TYPE tomo_watch_runs_total counter\n",
        );
        for (k, v) in runs {
            out.push_str(&format!("tomo_watch_runs_total{{outcome=\"{k}\"}} {v}\n"));
        }
        out.push_str("# HELP tomo_watch_actions_total Actions by result.\n# TYPE tomo_watch_actions_total counter\n");
        for (k, v) in [
            ("succeeded", g(&self.actions_succeeded)),
            ("failed", g(&self.actions_failed)),
            ("skipped", g(&self.actions_skipped)),
            ("held", g(&self.actions_held)),
        ] {
            out.push_str(&format!("tomo_watch_actions_total{{result=\"{k}\"}} {v}\n"));
        }
        out.push_str(&format!(
            "# HELP tomo_watch_drift_found_total Drift checks that found the servers out of line.\n\
             # TYPE tomo_watch_drift_found_total counter\ntomo_watch_drift_found_total {}\n\
             # HELP tomo_watch_last_success_timestamp_seconds When a run last ended without a failure.\n\
             # TYPE tomo_watch_last_success_timestamp_seconds gauge\ntomo_watch_last_success_timestamp_seconds {}\n\
             # HELP tomo_watch_run_duration_seconds Duration of reconcile runs.\n\
             # TYPE tomo_watch_run_duration_seconds summary\n\
             tomo_watch_run_duration_seconds_sum {}\ntomo_watch_run_duration_seconds_count {total}\n\
             # HELP tomo_watch_last_run_duration_seconds Duration of the last run.\n\
             # TYPE tomo_watch_last_run_duration_seconds gauge\ntomo_watch_last_run_duration_seconds {}\n",
            g(&self.drift_found),
            g(&self.last_success),
            g(&self.duration_sum_us) as f64 / 1e6,
            g(&self.last_duration_us) as f64 / 1e6,
        ));
        out
    }
}

/// The newest fleet figures and the alerts firing, as gauges; nothing (and
/// a warning in the log) when the store cannot be read.
fn fleet(engine: &Engine) -> String {
    let latest = match engine.metrics_latest(&crate::model::metrics::MetricsQuery::default()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "no fleet figures for /metrics");
            return String::new();
        }
    };
    let readings: Vec<_> = latest.into_iter().flat_map(|s| s.readings).collect();
    let firing: Vec<Firing> = engine
        .alerts()
        .unwrap_or_default()
        .into_iter()
        .map(|a| Firing { alert: a.rule, server: a.subject.server })
        .collect();
    gauges::render(&readings, &firing)
}

/// Serves `/metrics` and `/healthz` at `addr` in the background: the watch
/// counters when given, and the fleet gauges.
pub async fn serve(addr: &str, metrics: Option<Arc<Metrics>>, engine: Arc<Engine>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Io {
        op: IoOp::Listen,
        path: addr.to_string(),
        source,
    })?;
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let (m, engine) = (metrics.clone(), engine.clone());
                async move {
                    let mut text = m.map(|m| m.render()).unwrap_or_default();
                    text.push_str(&fleet(&engine));
                    ([("content-type", "text/plain; version=0.0.4")], text)
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    tracing::info!(address = %local, "metrics at /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.record_run("applied", 1.5, 3, 1, 0, 2, true);
        m.record_run("invalid", 0.01, 0, 0, 0, 0, false);
        let text = m.render();
        assert!(text.contains("tomo_watch_runs_total{outcome=\"applied\"} 1\n"), "{text}");
        assert!(text.contains("tomo_watch_runs_total{outcome=\"invalid\"} 1\n"), "{text}");
        assert!(text.contains("tomo_watch_actions_total{result=\"held\"} 2\n"), "{text}");
        assert!(text.contains("tomo_watch_drift_found_total 1\n"), "{text}");
        assert!(text.contains("tomo_watch_run_duration_seconds_count 2\n"), "{text}");
    }
}
