//! `tomo plan`, `apply`, `graph` and `status`: requests to the engine, results
//! rendered by `plan_view`.

use super::{out, out_json, runtime};
use std::io::{BufRead, IsTerminal, Write};

use super::args::{ApplyArgs, PlanArgs, ScopeArgs, StatusArgs};
use super::plan_view::{self, LineSink};
use crate::engine::{ApplyReport, ApplyRequest, Engine, Plan, PlanOptions, Scope};
use crate::error::{Error, Result, Usage};
use crate::model::{Duration, Name};

fn names(kind: &str, values: &[String]) -> Result<Vec<Name>> {
    values.iter().map(|v| Name::parse(v).map_err(|e| Usage::invalid(format!("--{kind}"), v, e).into())).collect()
}

fn options(s: &ScopeArgs) -> Result<PlanOptions> {
    Ok(PlanOptions {
        scope: Scope { servers: names("server", &s.servers)?, apps: names("app", &s.apps)?, held: Vec::new() },
        prune: s.prune,
        prune_volumes: s.prune_volumes.clone(),
    })
}

/// Exit code of a plan that was shown: 1 when a server was not reached.
fn plan_exit(p: &Plan, detailed: bool) -> i32 {
    if !p.unreachable.is_empty() {
        1
    } else if detailed && (p.has_changes() || !p.conflicts.is_empty()) {
        2
    } else {
        0
    }
}

pub fn plan(engine: &Engine, a: &PlanArgs) -> Result<i32> {
    let opts = options(&a.scope)?;
    let p = runtime()?.block_on(engine.plan(&opts))?;
    for r in engine.abandoned_runs().unwrap_or_default() {
        let _ = writeln!(
            std::io::stderr(),
            "note: apply run {} (started {} by {}) was interrupted; the next `tomo apply` recovers from what the servers show",
            r.id,
            r.started_at,
            r.actor.as_deref().unwrap_or("?")
        );
    }
    if let Some(path) = &a.out {
        let text = serde_json::to_string_pretty(&p).expect("plan serializes");
        write_private(path, &(text + "\n"))?;
    }
    if a.json {
        out_json(&serde_json::to_string_pretty(&p).expect("plan serializes"))?;
    } else {
        out(&crate::engine::plan_text_with(&p, a.verbose))?;
        if let Some(path) = &a.out {
            out(&format!(
                "Saved the plan to {}; `tomo apply {}` carries out exactly this plan.\n",
                path.display(),
                path.display()
            ))?;
        }
    }
    Ok(plan_exit(&p, a.detailed_exitcode))
}

pub fn graph(engine: &Engine, s: &ScopeArgs) -> Result<i32> {
    let p = runtime()?.block_on(engine.plan(&options(s)?))?;
    out(&crate::engine::to_dot(&p))?;
    Ok(0)
}

pub fn status(engine: &Engine, a: &StatusArgs) -> Result<i32> {
    let (desired, observed, p) = runtime()?.block_on(engine.status(&options(&a.scope)?))?;
    // Metric alerts firing (none before the first collection).
    let alerts = engine.alerts().unwrap_or_default();
    if a.json {
        let doc = serde_json::json!({ "observed": observed, "drift": p, "alerts": alerts });
        out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
    } else {
        out(&plan_view::status(&p, &observed, &desired))?;
        out(&super::metrics::alerts_text(&alerts))?;
    }
    Ok(if p.unreachable.is_empty() { 0 } else { 1 })
}

pub fn apply(engine: &Engine, a: &ApplyArgs) -> Result<i32> {
    let lock_timeout =
        Duration::parse(&a.lock_timeout).map_err(|e| Usage::invalid("--lock-timeout", &a.lock_timeout, e))?.to_std();
    let req = ApplyRequest {
        parallelism: a.parallelism,
        lock_timeout,
        actor: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        source: "cli".into(),
        stop: None,
    };
    let rt = runtime()?;
    if let Some(path) = &a.plan_file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::read(path.display(), source))?;
        let p: Plan = serde_json::from_str(&text).map_err(|e| {
            Usage::invalid(
                "plan file",
                path.display().to_string(),
                format!("not a plan saved by `tomo plan --out`: {e}"),
            )
        })?;
        let sink = LineSink::new(p.actions.len(), a.json);
        let report = rt.block_on(engine.apply_saved(&p, &req, &sink));
        sink.finish();
        let report = report?;
        return finish(&p, &report, a.json);
    }
    let opts = options(&a.scope)?;
    let interactive = std::io::stdin().is_terminal();
    let mut refused = false;
    let mut confirm = |p: &Plan| {
        if !p.has_changes() {
            return true;
        }
        if a.auto_approve {
            if !a.json {
                let _ = out(&plan_view::plan(p));
            }
            return true;
        }
        if !interactive {
            refused = true;
            return false;
        }
        let _ = out(&plan_view::plan(p));
        let _ = out("\nApply these changes? Only `yes` is accepted: ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        answer.trim() == "yes"
    };
    let sink = LineSink::new(0, a.json);
    let result = rt.block_on(engine.apply_current(
        &opts,
        &req,
        |p| {
            let ok = confirm(p);
            if ok {
                sink.begin(p.actions.len());
            }
            ok
        },
        &sink,
    ));
    sink.finish();
    let result = result?;
    match result {
        None if refused => Err(Usage::NeedsFlag {
            flag: "--auto-approve",
            review: "review `tomo plan` (or apply a saved plan file instead)".into(),
        }
        .into()),
        None => {
            out("Apply cancelled; nothing was changed.\n")?;
            Ok(1)
        }
        Some((p, report)) if !p.has_changes() => {
            if a.json {
                finish(&p, &report, true)
            } else {
                out(&plan_view::plan(&p))?;
                Ok(plan_exit(&p, false).max(i32::from(!p.conflicts.is_empty())))
            }
        }
        Some((p, report)) => finish(&p, &report, a.json),
    }
}

fn finish(p: &Plan, report: &ApplyReport, json: bool) -> Result<i32> {
    if json {
        let doc = serde_json::json!({ "plan": p, "report": report });
        out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
    } else {
        out(&plan_view::report(p, report))?;
    }
    let ok = report.succeeded() && p.conflicts.is_empty() && p.unreachable.is_empty();
    Ok(if ok { 0 } else { 1 })
}

/// Writes a file readable by its owner only (a plan holds every plain env
/// value): a new file is made 0600, an existing regular file is made 0600
/// first (a pipe or device is written as it is).
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let w = |source| Error::write(path.display(), source);
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(w)?;
    if f.metadata().map_err(w)?.is_file() {
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(w)?;
        f.set_len(0).map_err(w)?;
    }
    f.write_all(text.as_bytes()).map_err(w)
}
