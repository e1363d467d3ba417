//! Human rendering of plans, apply progress and status, Terraform-style:
//! `+` create, `~` recreate, `-` remove, `>` start, `.` stop, `!` conflict,
//! grouped by server, ending with a one-line summary.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::apply::{ApplyReport, ApplySink, Outcome};
use crate::model::{Name, Observed, ServerState};
use crate::plan::{Action, Op, Plan};

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

/// Apply progress: a progress bar on a terminal (indicatif), one line per
/// finished action otherwise, nothing when quiet (`--json`).
pub struct LineSink {
    total: AtomicUsize,
    done: AtomicUsize,
    quiet: bool,
    /// Made once the plan is accepted (never over a confirmation prompt).
    bar: OnceLock<indicatif::ProgressBar>,
}

impl LineSink {
    /// A sink for `total` actions; with `total` 0, call `begin` once known.
    pub fn new(total: usize, quiet: bool) -> LineSink {
        let sink = LineSink { total: AtomicUsize::new(0), done: AtomicUsize::new(0), quiet, bar: OnceLock::new() };
        if total > 0 {
            sink.begin(total);
        }
        sink
    }

    /// Starts showing progress for `total` actions.
    pub fn begin(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        if !self.quiet && total > 0 && std::io::stdout().is_terminal() {
            self.bar.get_or_init(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed:>4} {wide_msg}")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
        }
    }

    /// Clears the progress bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

impl ApplySink for LineSink {
    fn started(&self, a: &Action) {
        if let Some(b) = self.bar.get() {
            b.set_message(format!("{} {} on {}", a.op.verb(), a.op.object(), a.server));
        }
    }

    fn finished(&self, a: &Action, outcome: &Outcome, elapsed: Duration) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.quiet {
            return;
        }
        let status = match outcome {
            Outcome::Succeeded => format!("done in {:.2}s", elapsed.as_secs_f64()),
            Outcome::Failed(e) => format!("FAILED: {e}"),
            Outcome::Skipped(why) => format!("skipped: {why}"),
        };
        let total = self.total.load(Ordering::Relaxed);
        let line =
            format!("[{done}/{total}] {} {} {} on {}: {status}\n", a.op.symbol(), a.op.verb(), a.op.object(), a.server);
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

pub fn report(p: &Plan, r: &ApplyReport) -> String {
    let mut out = format!(
        "Apply {}: {} succeeded, {} failed, {} skipped in {:.2}s",
        if r.succeeded() { "complete" } else { "failed" },
        r.count("succeeded"),
        r.count("failed"),
        r.count("skipped"),
        r.elapsed_ms as f64 / 1000.0
    );
    if let Some(id) = r.run_id {
        out.push_str(&format!(" (run {id})"));
    }
    out.push_str(".\n");
    for res in &r.results {
        if let Outcome::Failed(e) = &res.outcome {
            let a = &p.actions[res.id];
            out.push_str(&format!("  failed: {} {} on {}: {e}\n", a.op.verb(), a.op.object(), a.server));
        }
    }
    if !p.conflicts.is_empty() {
        out.push_str(&format!("  {} conflict(s) were left alone; see `tomo plan`.\n", p.conflicts.len()));
    }
    for (s, why) in &p.unreachable {
        out.push_str(&format!("  server {s} was not reached: {why}\n"));
    }
    out
}

/// What is deployed per server, and drift.
pub fn status(p: &Plan, observed: &Observed, desired: &crate::model::Desired) -> String {
    let mut out = String::new();
    for (server, state) in &observed.servers {
        out.push_str(&format!("server {server}\n"));
        let inv = match state {
            ServerState::Reached(inv) => inv,
            ServerState::Unreachable(why) => {
                out.push_str(&format!("  unreachable: {why}\n"));
                continue;
            }
        };
        out.push_str(&format!("  {:<28} {:<11} {:<10} {}\n", "CONTAINER", "STATE", "HEALTH", "DRIFT"));
        for app in desired.apps.values().filter(|a| a.servers.contains(server)) {
            for svc in app.services.values() {
                let name = app.container_name(&svc.name);
                let c = inv.container(&name);
                let state = c.map_or("missing", |c| c.state.as_str());
                let health = c.and_then(|c| c.health).map_or("-", |h| match h {
                    crate::model::Health::Starting => "starting",
                    crate::model::Health::Healthy => "healthy",
                    crate::model::Health::Unhealthy => "unhealthy",
                });
                let drift: Vec<String> = p
                    .actions
                    .iter()
                    .filter(|a| &a.server == server && a.op.object() == name)
                    .map(|a| format!("{} ({})", a.op.verb(), a.reasons.join("; ")))
                    .chain(
                        p.conflicts
                            .iter()
                            .filter(|c| &c.server == server && c.object == name)
                            .map(|c| c.message.clone()),
                    )
                    .collect();
                let drift = if drift.is_empty() { "in sync".to_string() } else { drift.join("; ") };
                out.push_str(&format!("  {name:<28} {state:<11} {health:<10} {drift}\n"));
            }
        }
        for o in p.orphans.iter().filter(|o| &o.server == server) {
            out.push_str(&format!("  {:<28} {:<11} {:<10} orphan of app `{}`\n", o.container, "-", "-", o.app));
        }
    }
    out
}
