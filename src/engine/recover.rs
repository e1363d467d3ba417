//! Recovery after an interrupted apply (tomo killed, the machine rebooted).
//! The journal says which run was cut short; the containers say the rest:
//! every object carries tomo's labels, so a half-done action is recognised
//! on the server, not guessed from the journal. What an interrupted recreate
//! left (`-tomo-old-…`, `-tomo-new`) is put right by `Restore` actions of the
//! plan (`plan::recover`), shown and approved like every other action; here
//! the engine only marks runs cut short and tells the plan which run left a
//! leftover. Everything else a cut-short run leaves (a container created but
//! not started, a network without its containers) is ordinary drift.

use std::collections::BTreeMap;

use super::Engine;
use crate::error::Result;
use crate::model::observed::leftover;
use crate::model::{Name, Observed, ServerState};
use crate::store::{RunRow, Store};

impl Engine {
    /// Marks runs cut short as interrupted (holding the apply lock) and logs them.
    pub(super) fn interrupted_runs(&self) -> Result<Vec<RunRow>> {
        let runs = self.store()?.interrupt_runs()?;
        for r in &runs {
            tracing::warn!(
                run = r.id,
                started_at = %r.started_at,
                actor = r.actor.as_deref().unwrap_or("-"),
                "run {} was interrupted; recovering from what the servers show",
                r.id
            );
        }
        Ok(runs)
    }

    /// The run each interrupted recreate was cut short in, by (server, app,
    /// service), read from the journal only when a server shows a leftover.
    pub(super) fn interrupted_recreates(
        &self,
        store: &Store,
        observed: &Observed,
    ) -> BTreeMap<(Name, Name, Name), i64> {
        let found = observed.servers.values().any(|s| match s {
            ServerState::Reached(inv) => inv.containers.iter().any(|c| c.ours && leftover(&c.name).is_some()),
            ServerState::Unreachable(_) => false,
        });
        let mut runs = BTreeMap::new();
        if !found {
            return runs;
        }
        let rows = store.interrupted_recreates().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the journal of interrupted runs");
            Vec::new()
        });
        for (run, server, app, service) in rows {
            if let (Ok(server), Ok(app), Ok(service)) = (Name::parse(&server), Name::parse(&app), Name::parse(&service))
            {
                runs.entry((server, app, service)).or_insert(run);
            }
        }
        runs
    }
}
