//! Recovery after an interrupted apply (tomo killed, the machine rebooted).
//! The journal says which run was cut short; the containers say the rest:
//! every object carries tomo's labels, so a half-done action is recognised
//! on the server, not guessed from the journal. A recreate leaves at most one
//! extra container, named `<name>-tomo-old-<id>` (stop-first) or
//! `<name>-tomo-new` (start-first); it is put back or removed here, before
//! planning, so the plan then converges with no duplicate and no lost
//! container. Everything else a cut-short run leaves (a container created but
//! not started, a network without its containers) is ordinary drift for the
//! plan.

use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::model::observed::{Leftover, leftover};
use crate::model::{Desired, Observed, RunState, ServerState};
use crate::plan::PlanOptions;
use crate::store::{Activity, RunRow};
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;

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

    /// Puts back or removes what interrupted recreates left on the servers in
    /// `observed`; returns what it did (empty when there was nothing).
    pub(super) async fn repair_leftovers(
        &self,
        desired: &Desired,
        opts: &PlanOptions,
        observed: &Observed,
    ) -> Vec<String> {
        let mut done = Vec::new();
        let found = observed.servers.iter().any(|(_, s)| match s {
            ServerState::Reached(inv) => inv.containers.iter().any(|c| c.ours && leftover(&c.name).is_some()),
            ServerState::Unreachable(_) => false,
        });
        if !found {
            return done;
        }
        let clients = self.clients(desired, opts).await;
        for (server, state) in &observed.servers {
            let (ServerState::Reached(inv), Some(Ok(client))) = (state, clients.get(server)) else { continue };
            for c in inv.containers.iter().filter(|c| c.ours) {
                let Some((base, kind)) = leftover(&c.name) else { continue };
                let current = inv.container(base);
                let repaired =
                    repair(client, &c.id, &c.name, base, kind, current.map(|b| (b.id.as_str(), b.state))).await;
                let result = if repaired.is_ok() { "ok" } else { "error" };
                let what = repaired.unwrap_or_else(|e| format!("recovering `{}` failed: {e}", c.name));
                let line = format!("{server}: {what}");
                tracing::warn!(server = %server, container = %c.name, "{what}");
                let _ = self.store().map(|s| {
                    s.record_activity(&Activity {
                        actor: Some("tomo"),
                        category: "apply",
                        action: "recover",
                        target: Some(&c.name),
                        result,
                        detail: Some(&line),
                        ..Activity::default()
                    })
                });
                done.push(line);
            }
        }
        done
    }
}

/// Resolves one leftover container. The rule: keep the container that was
/// working. The replacement wins only when it runs; otherwise the previous
/// container goes back under its name (and is started).
async fn repair(
    c: &DockerClient,
    id: &str,
    name: &str,
    base: &str,
    kind: Leftover,
    current: Option<(&str, RunState)>,
) -> Result<String, crate::transport::docker::DockerError> {
    let grace = Duration::from_secs(10);
    match (kind, current) {
        // The replacement under the real name runs: the old one can go.
        (Leftover::Old, Some((_, RunState::Running))) | (Leftover::New, Some(_)) => {
            c.remove(id, grace).await.map(|_| format!("removed `{name}`, left by an interrupted recreate of `{base}`"))
        }
        // A replacement that never ran: drop it, put the old one back.
        (Leftover::Old, Some((new_id, _))) => {
            async {
                c.remove(new_id, grace).await?;
                c.rename(id, base).await?;
                c.start(id).await?;
                Ok(format!("put `{base}` back from `{name}` (its replacement never ran)"))
            }
            .await
        }
        // Cut short before the replacement existed: put the old one back.
        (Leftover::Old, None) => {
            async {
                c.rename(id, base).await?;
                c.start(id).await?;
                Ok(format!("put `{base}` back from `{name}`"))
            }
            .await
        }
        // Start-first cut short after the old one was removed: the new one takes the name.
        (Leftover::New, None) => c.rename(id, base).await.map(|_| format!("renamed `{name}` to `{base}`")),
    }
}
