//! Plans and status as text for people, Terraform-style: `+` create,
//! `~` recreate, `-` remove, `>` start, `.` stop, `!` conflict, grouped by
//! server and ending with a one-line summary. Shared by the CLI and MCP.
//! Every line goes through `term::line`: names, reasons and diff lines come
//! from manifests and servers, and reach a terminal only escaped and bounded;
//! values a server named (an orphan's app, each reason) pass `term::field`
//! first, so that one long value leaves the rest of its line readable.

use std::collections::BTreeMap;

use super::{Action, Op, Plan};
use crate::model::{Name, Observed, ServerState};
use crate::term;

/// Appends one line, escaped, and its line break.
fn push_line(out: &mut String, line: &str) {
    out.push_str(&term::line(line));
    out.push('\n');
}

/// The plan, as `tomo plan` shows it.
pub fn plan(p: &Plan) -> String {
    plan_with(p, false)
}

/// The plan; `verbose` adds the commands of the Docker Engine actions.
pub fn plan_with(p: &Plan, verbose: bool) -> String {
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
        push_line(&mut out, &format!("server {server}"));
        for a in by_server.get(server).into_iter().flatten() {
            if matches!(a.op, Op::Start { fresh: true, .. }) {
                continue; // shown as part of its create
            }
            push_line(&mut out, &action_line(a));
            if let (true, Op::DockerEngine(e)) = (verbose, &a.op) {
                for step in &e.steps {
                    push_line(&mut out, &format!("        $ {}", step.line()));
                }
            }
            for l in data_lines(&a.op).lines() {
                push_line(&mut out, l);
            }
            if let Some(l) = super::risk::action_line(&a.risk) {
                push_line(&mut out, &format!("        {l}"));
            }
            if let Some(d) = &a.diff {
                for l in d.lines() {
                    push_line(&mut out, &format!("        {l}"));
                }
            }
        }
        for c in p.conflicts.iter().filter(|c| &c.server == server) {
            push_line(&mut out, &format!("  ! {:<28} {}", term::field(&c.object), c.message));
        }
        for o in p.orphans.iter().filter(|o| &o.server == server && o.held) {
            push_line(
                &mut out,
                &format!(
                    "  = {:<28} held: failed its verification (`on_failure: hold`), kept stopped for inspection; never removed by tomo (`docker rm` it when done)",
                    term::field(&o.container)
                ),
            );
        }
        for o in p.orphans.iter().filter(|o| &o.server == server && !o.removed && !o.held) {
            push_line(
                &mut out,
                &format!(
                    "  ? {:<28} orphan of app `{}`: kept (`--prune` or `Settings.prune: true` removes it)",
                    term::field(&o.container),
                    term::field(&o.app)
                ),
            );
        }
    }
    for (s, why) in &p.unreachable {
        push_line(&mut out, &format!("server {s}"));
        push_line(&mut out, &format!("  ! unreachable: {why}"));
    }
    for r in &p.rolling {
        let order: Vec<&str> = r.servers.iter().map(|s| s.as_str()).collect();
        push_line(&mut out, &format!("rolling {}: {}", r.app, order.join(" → ")));
    }
    out.push_str(&summary_line(p));
    out
}

fn action_line(a: &Action) -> String {
    let what = match &a.op {
        Op::CreateDir { path, owner, mode } => {
            let mut line = format!("  + dir {} on {}", term::field(path), a.server);
            if let Some((u, g)) = owner {
                line.push_str(&format!(" (owner {u}{})", g.map(|g| format!(":{g}")).unwrap_or_default()));
            }
            if let Some(m) = mode {
                line.push_str(&format!(" (mode {m:04o})"));
            }
            let reasons: Vec<_> = a.reasons.iter().map(|r| term::field(r)).collect();
            return format!("{line}: {}", reasons.join("; "));
        }
        Op::Restore { run, .. } => {
            let from = run.map(|r| format!(" from interrupted run {r}")).unwrap_or_default();
            let reasons: Vec<_> = a.reasons.iter().map(|r| term::field(r)).collect();
            return format!("  ~ restore {}{from}: {}", term::field(a.op.object()), reasons.join("; "));
        }
        Op::DockerEngine(e) => {
            use super::docker::EngineChange;
            let version = match &e.change {
                EngineChange::Upgrade { from } => {
                    format!("{} → {}", crate::model::host::short_version(from), e.version)
                }
                _ => e.version.clone(),
            };
            let verb = match e.change {
                EngineChange::Start => "start ",
                _ => "",
            };
            let reasons: Vec<_> = a.reasons.iter().map(|r| term::field(r)).collect();
            return format!(
                "  {} {} {verb}{} ({}) on {}: {}",
                a.op.symbol(),
                super::docker::OBJECT,
                term::field(&version),
                term::field(&e.method),
                a.server,
                reasons.join("; ")
            );
        }
        Op::PullImage { .. } => "pull image".to_string(),
        Op::CreateNetwork { subnet, options, .. } => {
            let mut parts: Vec<String> = subnet.iter().map(|s| s.to_string()).collect();
            if options.driver.is_some() {
                parts.push(format!("driver {}", options.driver()));
            }
            if options.internal {
                parts.push("internal".into());
            }
            parts.extend(options.driver_opts.iter().map(|(k, v)| format!("{k}={v}")));
            if parts.is_empty() { "create network".into() } else { format!("create network ({})", parts.join(", ")) }
        }
        Op::CreateVolume { .. } => "create volume".into(),
        Op::Create { spec, .. } => format!("create from {}", spec.image),
        other => other.verb().to_string(),
    };
    let reasons: Vec<_> = a.reasons.iter().map(|r| term::field(r)).collect();
    format!("  {} {:<28} {}: {}", a.op.symbol(), term::field(a.op.object()), term::field(&what), reasons.join("; "))
}

/// What a recreate or removal keeps and drops of the container's data.
fn data_lines(op: &Op) -> String {
    let mut out = String::new();
    if let Op::Recreate { keeps, .. } = op {
        for k in keeps {
            out.push_str(&format!("        keeps {k}\n"));
        }
    }
    for d in op.drops() {
        out.push_str(&format!("        drops {d}\n"));
    }
    if !op.drops().is_empty() {
        out.push_str(
            "        (dropped volumes stay on the server; tomo deletes a volume only when named by --prune-volumes)\n",
        );
    }
    out
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
    if s.restore > 0 {
        line.push_str(&format!(", {} to restore", s.restore));
    }
    if s.engine > 0 {
        line.push_str(&format!(", {} Docker Engine change(s)", s.engine));
    }
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
    if p.has_changes() {
        line.push_str(&format!("Risk: {}.\n", super::risk::summary_line(&p.risk)));
    }
    line
}

/// What is deployed per server, and drift.
pub fn status(p: &Plan, observed: &Observed, desired: &crate::model::Desired) -> String {
    let rows = super::status::rows(p, observed, desired, &p.options.scope);
    let mut out = String::new();
    for (server, state) in &observed.servers {
        push_line(&mut out, &format!("server {server}"));
        if let ServerState::Unreachable(why) = state {
            push_line(&mut out, &format!("  unreachable: {why}"));
            continue;
        }
        push_line(&mut out, &format!("  {:<28} {:<11} {:<10} DRIFT", "CONTAINER", "STATE", "HEALTH"));
        for r in rows.iter().filter(|r| r.server == server.as_str()) {
            let drift: Vec<_> = r.drift.iter().map(|d| term::field(d)).collect();
            let drift = if drift.is_empty() { "in sync".to_string() } else { drift.join("; ") };
            push_line(
                &mut out,
                &format!("  {:<28} {:<11} {:<10} {drift}", r.container, r.state, r.health.unwrap_or("-")),
            );
        }
        for o in p.orphans.iter().filter(|o| &o.server == server) {
            let (name, app) = (term::field(&o.container), term::field(&o.app));
            let what = if o.held { "held (failed verification)".to_string() } else { format!("orphan of app `{app}`") };
            push_line(&mut out, &format!("  {name:<28} {:<11} {:<10} {what}", "-", "-"));
        }
    }
    out
}
