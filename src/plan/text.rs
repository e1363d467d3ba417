//! Plans and status as text for people, Terraform-style: `+` create,
//! `~` recreate, `-` remove, `>` start, `.` stop, `!` conflict, grouped by
//! server and ending with a one-line summary. Shared by the CLI and MCP.

use std::collections::BTreeMap;

use super::{Action, Op, Plan};
use crate::model::{Name, Observed, ServerState};

/// The plan, as `tomo plan` shows it.
pub fn plan(p: &Plan) -> String {
    let mut out = String::new();
    let mut by_server: BTreeMap<&Name, Vec<&Action>> = BTreeMap::new();
    for a in &p.actions {
        by_server.entry(&a.server).or_default().push(a);
    }
    let mut servers: Vec<&Name> = by_server.keys().copied().collect();
    for c in &p.conflicts {
        if !servers.contains(&&c.server) {
            servers.push(&c.server);
        }
    }
    for o in &p.orphans {
        if !servers.contains(&&o.server) {
            servers.push(&o.server);
        }
    }
    servers.sort();
    for server in servers {
        out.push_str(&format!("server {server}\n"));
        for a in by_server.get(server).into_iter().flatten() {
            if matches!(a.op, Op::Start { fresh: true, .. }) {
                continue; // shown as part of its create
            }
            out.push_str(&action_line(a));
            if let Some(d) = &a.diff {
                for l in d.lines() {
                    out.push_str(&format!("        {l}\n"));
                }
            }
        }
        for c in p.conflicts.iter().filter(|c| &c.server == server) {
            out.push_str(&format!("  ! {:<28} {}\n", c.object, c.message));
        }
        for o in p.orphans.iter().filter(|o| &o.server == server && !o.removed) {
            out.push_str(&format!(
                "  ? {:<28} orphan of app `{}`: kept (`--prune` or `Settings.prune: true` removes it)\n",
                o.container, o.app
            ));
        }
    }
    for (s, why) in &p.unreachable {
        out.push_str(&format!("server {s}\n  ! unreachable: {why}\n"));
    }
    out.push_str(&summary_line(p));
    out
}

fn action_line(a: &Action) -> String {
    let what = match &a.op {
        Op::PullImage { .. } => "pull image".to_string(),
        Op::CreateNetwork { subnet: Some(s), .. } => format!("create network ({s})"),
        Op::CreateNetwork { .. } => "create network".into(),
        Op::CreateVolume { .. } => "create volume".into(),
        Op::Create { spec, .. } => format!("create from {}", spec.image),
        other => other.verb().to_string(),
    };
    format!("  {} {:<28} {what}: {}\n", a.op.symbol(), a.op.object(), a.reasons.join("; "))
}

pub fn summary_line(p: &Plan) -> String {
    if p.actions.is_empty() && p.conflicts.is_empty() && p.unreachable.is_empty() {
        return "No changes: the servers match the manifests.\n".into();
    }
    let s = p.summary();
    let mut line = format!(
        "Plan: {} to create, {} to recreate, {} to start, {} to stop, {} to remove",
        s.create, s.recreate, s.start, s.stop, s.remove
    );
    if s.other > 0 {
        line.push_str(&format!(", {} images/networks/volumes", s.other));
    }
    if s.conflicts > 0 {
        line.push_str(&format!("; {} conflict(s) left alone", s.conflicts));
    }
    if !p.unreachable.is_empty() {
        line.push_str(&format!("; {} server(s) unreachable", p.unreachable.len()));
    }
    line.push_str(".\n");
    line
}

/// What is deployed per server, and drift.
pub fn status(p: &Plan, observed: &Observed, desired: &crate::model::Desired) -> String {
    let rows = super::status::rows(p, observed, desired, &p.options.scope);
    let mut out = String::new();
    for (server, state) in &observed.servers {
        out.push_str(&format!("server {server}\n"));
        if let ServerState::Unreachable(why) = state {
            out.push_str(&format!("  unreachable: {why}\n"));
            continue;
        }
        out.push_str(&format!("  {:<28} {:<11} {:<10} {}\n", "CONTAINER", "STATE", "HEALTH", "DRIFT"));
        for r in rows.iter().filter(|r| r.server == server.as_str()) {
            let drift = if r.drift.is_empty() { "in sync".to_string() } else { r.drift.join("; ") };
            out.push_str(&format!("  {:<28} {:<11} {:<10} {drift}\n", r.container, r.state, r.health.unwrap_or("-")));
        }
        for o in p.orphans.iter().filter(|o| &o.server == server) {
            out.push_str(&format!("  {:<28} {:<11} {:<10} orphan of app `{}`\n", o.container, "-", "-", o.app));
        }
    }
    out
}
