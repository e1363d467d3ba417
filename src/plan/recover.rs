//! Leftovers of an interrupted recreate, as actions of the plan.
//!
//! A recreate cut short (tomo killed, the machine rebooted) leaves at most one
//! extra container beside the declared one: `<name>-tomo-old-<id>` (the
//! previous container, stopped and renamed aside: stop-first) or
//! `<name>-tomo-new` (the replacement, not yet renamed: start-first). One
//! rule puts it right: keep the container that last ran. Each leftover
//! becomes a `Restore` action, and the rest of the plan is computed against
//! the inventory as it will be after the restores, so one apply restores and
//! then converges (the restore comes before every other action on that
//! service, see `graph`). Nothing here touches a server: a restore is shown,
//! approved and applied like every other action.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Conflict, Op, Recovery, Scope};
use crate::model::labels;
use crate::model::observed::{Leftover, leftover};
use crate::model::{ContainerObs, Inventory, Name, RunState};

/// One restore, for the diff to push.
pub(super) struct Restore {
    pub app: Option<Name>,
    pub service: Option<Name>,
    pub op: Op,
    pub reason: String,
}

/// The restores of one server, and its inventory as they leave it.
pub(super) struct Recovered<'a> {
    pub inventory: Cow<'a, Inventory>,
    pub restores: Vec<Restore>,
    pub conflicts: Vec<Conflict>,
}

/// Plans a restore for every leftover of this installation on `server`
/// whose app is in scope. `interrupted` (from the journal) names the run
/// each was left by.
pub(super) fn leftovers<'a>(
    server: &Name,
    inv: &'a Inventory,
    interrupted: &BTreeMap<(Name, Name, Name), i64>,
    scope: &Scope,
) -> Recovered<'a> {
    let mut found: Vec<&ContainerObs> =
        inv.containers.iter().filter(|c| c.ours && leftover(&c.name).is_some()).collect();
    let mut out = Recovered { inventory: Cow::Borrowed(inv), restores: Vec::new(), conflicts: Vec::new() };
    if found.is_empty() {
        return out;
    }
    // The Engine lists in no fixed order.
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mut after = inv.clone();
    for c in found {
        let Some((base, kind)) = leftover(&c.name) else { continue };
        let app = c.label(labels::APP).and_then(|a| Name::parse(a).ok());
        let service = c.label(labels::SERVICE).and_then(|s| Name::parse(s).ok());
        let in_scope = match &app {
            Some(a) => scope.has_app(a),
            None => scope.apps.is_empty(),
        };
        if !in_scope {
            continue;
        }
        let current = after.container(base).cloned();
        if let Some(cur) = current.as_ref().filter(|cur| !cur.ours) {
            let message = format!(
                "left by an interrupted apply of `{base}`, but `{}` is not this installation's; rename or remove one of them, tomo will not",
                cur.name
            );
            out.conflicts.push(Conflict { server: server.clone(), object: c.name.clone(), message });
            continue;
        }
        let recovery = match (kind, current.as_ref().map(|cur| cur.state)) {
            (Leftover::Old, Some(RunState::Running)) | (Leftover::New, Some(_)) => Recovery::RemoveLeftover,
            (Leftover::Old, Some(_)) => Recovery::PutBack { replacement: current.as_ref().map(|cur| cur.id.clone()) },
            (Leftover::Old, None) => Recovery::PutBack { replacement: None },
            (Leftover::New, None) => Recovery::TakeName,
        };
        carry_out(&mut after, c, base, &recovery);
        let run = app.clone().zip(service.clone()).and_then(|(a, s)| interrupted.get(&(server.clone(), a, s)).copied());
        let reason = explain(&c.name, base, kind, &recovery);
        let op = Op::Restore {
            container: base.to_string(),
            leftover: c.name.clone(),
            leftover_id: c.id.clone(),
            recovery,
            run,
        };
        out.restores.push(Restore { app, service, op, reason });
    }
    out.inventory = Cow::Owned(after);
    out
}

/// The inventory as the restore leaves it: container ids stay, names and
/// states change.
fn carry_out(inv: &mut Inventory, c: &ContainerObs, base: &str, recovery: &Recovery) {
    match recovery {
        Recovery::RemoveLeftover => inv.containers.retain(|x| x.id != c.id),
        Recovery::PutBack { replacement } => {
            inv.containers.retain(|x| Some(&x.id) != replacement.as_ref());
            if let Some(x) = inv.containers.iter_mut().find(|x| x.id == c.id) {
                x.name = base.to_string();
                x.state = RunState::Running;
                x.health = None;
                x.exit_code = None;
            }
        }
        Recovery::TakeName => {
            if let Some(x) = inv.containers.iter_mut().find(|x| x.id == c.id) {
                x.name = base.to_string();
            }
        }
    }
}

fn explain(name: &str, base: &str, kind: Leftover, recovery: &Recovery) -> String {
    match (recovery, kind) {
        (Recovery::RemoveLeftover, Leftover::Old) => format!(
            "`{name}`, the previous container left by an interrupted apply, is removed (its volumes stay): its replacement runs as `{base}`"
        ),
        (Recovery::RemoveLeftover, Leftover::New) => format!(
            "`{name}`, a replacement left by an interrupted apply that never took over, is removed (its volumes stay): `{base}` is kept"
        ),
        (Recovery::PutBack { replacement: None }, _) => {
            format!(
                "`{name}`, the previous container renamed aside and left by an interrupted apply, gets its name back and starts"
            )
        }
        (Recovery::PutBack { replacement: Some(_) }, _) => format!(
            "`{name}`, the previous container renamed aside and left by an interrupted apply, gets its name back and starts; the replacement under the name never ran and is removed (its volumes stay)"
        ),
        (Recovery::TakeName, _) => format!(
            "`{name}`, the replacement left by an interrupted apply, takes the name (the previous container is gone)"
        ),
    }
}
