//! The apply journal kept in the store: each action before and after it
//! runs, and `installations` (what each service's container is) kept current,
//! also when a rollout puts a previous container back.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::apply::{Journal, Outcome};
use crate::model::Name;
use crate::model::logs::LogLevel;
use crate::plan::{Action, Op};
use crate::store::{InstallationRecord, Store};

use super::syslog;

/// Journals actions in the store and keeps `installations` current.
pub(super) struct StoreJournal {
    store: Arc<Store>,
    run: i64,
    /// Set when the store file is found deleted or replaced.
    stop: Arc<AtomicBool>,
    /// Per recreate that succeeded: the service's record before it (none:
    /// there was none), put back if a rollout undoes the recreate.
    replaced: Mutex<BTreeMap<usize, Option<InstallationRecord>>>,
}

impl StoreJournal {
    pub(super) fn new(store: Arc<Store>, run: i64, stop: Arc<AtomicBool>) -> StoreJournal {
        StoreJournal { store, run, stop, replaced: Mutex::new(BTreeMap::new()) }
    }

    /// Keeps the service's record as it is before a recreate overwrites it.
    fn keep_previous(&self, a: &Action, app: &Name, service: &Name) {
        match self.store.installation_record(a.server.as_str(), app.as_str(), service.as_str()) {
            Ok(previous) => {
                self.replaced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(a.id, previous);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read an installation record"),
        }
    }
}

impl Journal for StoreJournal {
    fn started(&self, a: &Action) {
        if let Err(e) = self.store.check_file() {
            tracing::error!(error = %e, "the store is gone: no further action starts");
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let mut detail = serde_json::json!({"op": a.op.verb(), "object": a.op.object(), "reasons": a.reasons});
        // What the downtime estimate of later plans reads back (`Store::recreate_durations`).
        if let Op::Recreate { order, start, .. } = &a.op {
            detail["order"] = serde_json::json!(order);
            detail["start"] = serde_json::json!(start);
        }
        if let Err(e) = self.store.action_started(
            self.run,
            a.id,
            a.server.as_str(),
            a.app.as_ref().map(Name::as_str),
            a.service.as_ref().map(Name::as_str),
            a.op.verb(),
            &detail,
        ) {
            tracing::warn!(error = %e, "cannot journal an action");
        }
    }

    fn finished(&self, a: &Action, outcome: &Outcome, container: Option<&str>) {
        let error = match outcome {
            Outcome::Failed(e) | Outcome::Skipped(e) => Some(e.as_str()),
            Outcome::Succeeded => None,
        };
        let mut result = match outcome {
            Outcome::Skipped(why) => self.store.action_skipped(
                self.run,
                a.id,
                a.server.as_str(),
                a.app.as_ref().map(Name::as_str),
                a.service.as_ref().map(Name::as_str),
                a.op.verb(),
                why,
            ),
            _ => self.store.action_finished(self.run, a.id, outcome.as_str(), error),
        };
        let level = if error.is_some() { LogLevel::Warn } else { LogLevel::Info };
        syslog::record(
            level,
            "apply",
            &format!("run {}: {} {} on {}: {}", self.run, a.op.verb(), a.op.object(), a.server, outcome.as_str()),
            serde_json::json!({
                "run": self.run, "seq": a.id, "server": a.server.as_str(), "app": a.app.as_ref().map(Name::as_str),
                "service": a.service.as_ref().map(Name::as_str), "op": a.op.verb(), "error": error,
            }),
        );
        if *outcome == Outcome::Succeeded
            && let (Some(app), Some(service)) = (&a.app, &a.service)
        {
            if matches!(a.op, Op::Recreate { .. }) {
                self.keep_previous(a, app, service);
            }
            result = result.and_then(|_| match (&a.op, container) {
                (Op::Create { spec, hash, redacted, .. } | Op::Recreate { spec, hash, redacted, .. }, Some(id)) => {
                    self.store.set_installation(
                        a.server.as_str(),
                        app.as_str(),
                        service.as_str(),
                        id,
                        &spec.image,
                        hash,
                        redacted,
                        self.run,
                    )
                }
                (Op::Start { again: Some(r), .. }, Some(id)) => self.store.set_installation(
                    a.server.as_str(),
                    app.as_str(),
                    service.as_str(),
                    id,
                    &r.spec.image,
                    &r.hash,
                    &r.redacted,
                    self.run,
                ),
                (Op::Remove { .. }, _) => {
                    self.store.remove_installation(a.server.as_str(), app.as_str(), service.as_str())
                }
                _ => Ok(()),
            });
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot journal an action");
        }
    }

    fn rolled_back(&self, a: &Action, outcome: &Outcome) {
        self.finished(a, outcome, None);
        let (Some(app), Some(service)) = (&a.app, &a.service) else { return };
        let kept = self.replaced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&a.id);
        let Some(previous) = kept else { return };
        if let Err(e) =
            self.store.put_installation_back(a.server.as_str(), app.as_str(), service.as_str(), previous.as_ref())
        {
            tracing::warn!(error = %e, "cannot put an installation record back");
        }
    }
}
