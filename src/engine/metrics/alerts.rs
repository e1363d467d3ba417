//! Alerts after each round: every rule of `Settings.metrics.alerts` checked
//! against the round's readings (and, for `in WINDOW`, the stored samples
//! of the window); the firing set replaces the stored one, and each change
//! (fired, cleared) goes to the audit log and the logs. A server not
//! reached this round keeps its alerts as they were.

use std::collections::{HashMap, HashSet};

use super::Engine;
use crate::error::Result;
use crate::model::Desired;
use crate::model::alert::{AlertChange, AlertRule, AlertState, Cmp, Threshold, percent_of};
use crate::model::logs::LogLevel;
use crate::model::metrics::{Figure, Reading, ServerSample, Subject};
use crate::store::{Activity, AlertRow, Store, StoreError};

/// How a subject is shown in the audit log and the logs.
pub(crate) fn subject_text(s: &Subject) -> String {
    let mut t = s.server.clone();
    for part in [&s.app, &s.service].into_iter().flatten() {
        t.push('/');
        t.push_str(part);
    }
    if let Some(d) = &s.device {
        t.push(':');
        t.push_str(d);
    }
    t
}

impl Engine {
    pub(super) async fn evaluate_alerts(
        &self,
        desired: &Desired,
        samples: &[ServerSample],
    ) -> Result<Vec<AlertChange>> {
        let store = self.store()?.clone();
        let rules = desired.settings.metrics.alerts.clone();
        let samples = samples.to_vec();
        let now = super::now_ms() / 1000;
        let changes = tokio::task::spawn_blocking(move || evaluate(&store, &rules, &samples, now).map(|c| (store, c)))
            .await
            .map_err(|e| crate::error::Error::Runtime(std::io::Error::other(format!("evaluating alerts: {e}"))))?;
        let (store, changes) = changes?;
        for change in &changes {
            record(&store, change);
        }
        Ok(changes)
    }
}

/// Writes an alert's change to the audit log and the logs.
fn record(store: &Store, change: &AlertChange) {
    let (action, a) = match change {
        AlertChange::Fired(a) => ("alert-fired", a),
        AlertChange::Cleared(a) => ("alert-cleared", a),
    };
    let target = subject_text(&a.subject);
    let detail = format!("{} (value {})", a.rule, (a.value * 100.0).round() / 100.0);
    let entry = Activity {
        actor: Some("metrics"),
        category: "metrics",
        action,
        target: Some(&target),
        result: "ok",
        detail: Some(&detail),
        ..Default::default()
    };
    if let Err(e) = store.record_activity(&entry) {
        tracing::warn!(error = %e, "cannot write the audit log");
    }
    // The logs table (and stderr): both transitions, with the subject,
    // rule and value as fields; this is the one place alerts are logged.
    let (level, message) = match change {
        AlertChange::Fired(_) => (LogLevel::Warn, format!("alert fired: {} on {target}", a.rule)),
        AlertChange::Cleared(_) => (LogLevel::Info, format!("alert cleared: {} on {target}", a.rule)),
    };
    let fields = serde_json::json!({ "subject": target, "rule": a.rule, "value": a.value, "since": a.since });
    crate::engine::syslog::record(level, "metrics", &message, fields);
}

fn evaluate(
    store: &Store,
    rules: &[AlertRule],
    samples: &[ServerSample],
    now: i64,
) -> std::result::Result<Vec<AlertChange>, StoreError> {
    let series = store.metric_series()?;
    let ids: HashMap<(&Subject, Figure), i64> = series.iter().map(|s| ((&s.subject, s.figure), s.id)).collect();
    let subjects: HashMap<i64, &Subject> = series.iter().map(|s| (s.id, &s.subject)).collect();
    let old = store.firing_alerts()?;
    let unreached: HashSet<&str> = samples.iter().filter(|s| s.error.is_some()).map(|s| s.server.as_str()).collect();
    let rule_names: HashSet<&str> = rules.iter().map(|r| r.text.as_str()).collect();
    let mut firing: Vec<AlertRow> = old
        .iter()
        .filter(|a| rule_names.contains(a.rule.as_str()))
        .filter(|a| subjects.get(&a.series).is_some_and(|s| unreached.contains(s.server.as_str())))
        .cloned()
        .collect();
    for rule in rules {
        for sample in samples.iter().filter(|s| s.error.is_none()) {
            for r in sample.readings.iter().filter(|r| r.figure == rule.figure) {
                let Some(&id) = ids.get(&(&r.subject, r.figure)) else { continue };
                let Some((value, threshold)) = compared(store, rule, r, id, &sample.readings, now)? else { continue };
                if rule.op.holds(value, threshold) {
                    let since = old.iter().find(|a| a.rule == rule.text && a.series == id).map_or(r.at, |a| a.since);
                    firing.push(AlertRow { rule: rule.text.clone(), series: id, value, since });
                }
            }
        }
    }
    store.set_firing_alerts(&firing)?;
    let key = |a: &AlertRow| (a.rule.clone(), a.series);
    let was: HashSet<_> = old.iter().map(key).collect();
    let is: HashSet<_> = firing.iter().map(key).collect();
    let state = |a: &AlertRow| {
        subjects.get(&a.series).map(|s| AlertState {
            rule: a.rule.clone(),
            subject: (*s).clone(),
            value: a.value,
            since: a.since,
        })
    };
    let mut changes: Vec<AlertChange> =
        firing.iter().filter(|a| !was.contains(&key(a))).filter_map(state).map(AlertChange::Fired).collect();
    changes.extend(old.iter().filter(|a| !is.contains(&key(a))).filter_map(state).map(AlertChange::Cleared));
    Ok(changes)
}

/// The value a rule compares for one reading, and the threshold, in the
/// same terms (percentages for `%` rules); `None` when it cannot be had.
fn compared(
    store: &Store,
    rule: &AlertRule,
    r: &Reading,
    id: i64,
    round: &[Reading],
    now: i64,
) -> std::result::Result<Option<(f64, f64)>, StoreError> {
    let mut value = r.value;
    if let Some(window) = rule.window {
        let since = now - (window.as_millis() / 1000) as i64;
        let wanted = HashMap::from([(id, r.figure)]);
        let points = store.raw_points(&r.subject.server, &wanted, since, now)?.remove(&id).unwrap_or_default();
        let values = points.iter().map(|p| p.avg).chain([r.value]);
        value = if r.figure == Figure::ContainerRestarts {
            // A counter: its increase over the window.
            r.value - values.fold(f64::INFINITY, f64::min)
        } else if matches!(rule.op, Cmp::Gt | Cmp::Ge) {
            // Held throughout: the least favourable value of the window.
            values.fold(f64::INFINITY, f64::min)
        } else {
            values.fold(f64::NEG_INFINITY, f64::max)
        };
    }
    Ok(match rule.threshold {
        Threshold::Absolute(t) => Some((value, t)),
        Threshold::Percent(p) => percent(r, value, round).map(|v| (v, p)),
    })
}

/// `value` of `r` as a percentage of its whole (see `percent_of`).
fn percent(r: &Reading, value: f64, round: &[Reading]) -> Option<f64> {
    let Ok(companion) = percent_of(r.figure) else { return None };
    let Some(companion) = companion else { return Some(value * 100.0) };
    let other = round.iter().find(|o| o.figure == companion && o.subject == r.subject)?.value;
    let whole = if r.figure == Figure::ContainerMemoryBytes { other } else { value + other };
    (whole > 0.0).then(|| value / whole * 100.0)
}
