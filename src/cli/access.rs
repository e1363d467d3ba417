//! Long-running commands and what goes with them: `watch`, `serve` (MCP),
//! `user`, `token` and `proposal`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use super::args::{ProposalApproveArgs, ProposalCommand, ServeArgs, TokenCommand, UserCommand, WatchArgs};
use super::commands::read_value;
use super::plan_view::{self, LineSink};
use super::{out, out_json, runtime};
use crate::auth::{Identity, Role};
use crate::engine::{AuditEvent, Decided, Engine, LogLevel, Plan, Proposal, ProposalDecision, ProposalStatus, syslog};
use crate::error::{Error, Result, Usage};
use crate::model::Duration;

/// Who runs the CLI: the local user, with every permission (they can edit
/// the files and the store anyway).
pub(super) fn local_admin() -> Identity {
    Identity { user: std::env::var("USER").unwrap_or_else(|_| "cli".into()), role: Role::Admin, session: None }
}

/// The runtime of a long-running command: two workers (these are small
/// machines; requests are I/O-bound).
fn daemon_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(Error::Runtime)
}

pub fn serve(engine: Engine, a: &ServeArgs) -> Result<i32> {
    let engine = Arc::new(engine);
    let rt = daemon_runtime()?;
    if let Some(addr) = &a.metrics {
        rt.block_on(crate::watch::serve_metrics(addr, None, engine.clone()))?;
    }
    let (what, done) = if a.stdio {
        let who = Identity { user: format!("stdio:{}", a.role.as_str()), role: a.role, session: None };
        daemon_started(&engine, "serve", "stdio");
        ("stdio", rt.block_on(crate::mcp::serve_stdio(engine, who)))
    } else {
        let addr = match a.http.as_deref() {
            Some("") | None => engine.config().mcp_http.clone(),
            Some(addr) => addr.to_string(),
        };
        daemon_started(&engine, "serve", &addr);
        // The HTTP server is the long-running one: it collects metrics.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let collector = rt.spawn(engine.clone().metrics_loop(stop.clone()));
        let served = rt.block_on(crate::mcp::serve_http(engine, &addr));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        collector.abort();
        ("http", served)
    };
    daemon_stopped("serve", what, &done);
    done?;
    Ok(0)
}

/// A daemon's start as one of tomo's stored events (the store opened first,
/// so the event is written; a store that cannot open is the daemon's to report).
fn daemon_started(engine: &Engine, daemon: &str, on: &str) {
    let _ = engine.check_store();
    syslog::record(
        LogLevel::Info,
        daemon,
        &format!("tomo {daemon} started ({on}), version {}", env!("CARGO_PKG_VERSION")),
        serde_json::json!({ "pid": std::process::id(), "on": on }),
    );
}

fn daemon_stopped<T>(daemon: &str, on: &str, done: &Result<T>) {
    match done {
        Ok(_) => {
            syslog::record(LogLevel::Info, daemon, &format!("tomo {daemon} stopped"), serde_json::json!({ "on": on }))
        }
        Err(e) => syslog::record(
            LogLevel::Error,
            daemon,
            &format!("tomo {daemon} stopped: {e}"),
            serde_json::json!({ "on": on }),
        ),
    }
}

pub fn watch(engine: Engine, a: &WatchArgs) -> Result<i32> {
    let duration = |flag: &str, v: &str| {
        Duration::parse(v).map(|d| d.to_std()).map_err(|e| Usage::invalid(format!("--{flag}"), v, e))
    };
    let opts = crate::watch::WatchOptions {
        debounce: duration("debounce", &a.debounce)?,
        git_pull: a.git_pull.clone(),
        git_interval: duration("git-interval", &a.git_interval)?,
        metrics: a.metrics.clone(),
    };
    let engine = Arc::new(engine);
    daemon_started(&engine, "watch", &engine.config().manifests.display().to_string());
    let done = daemon_runtime()?.block_on(crate::watch::run(engine, opts));
    daemon_stopped("watch", "", &done);
    done?;
    Ok(0)
}

pub fn user(engine: &Engine, c: UserCommand) -> Result<i32> {
    match c {
        UserCommand::Add(a) => {
            let pw = read_value(None, &format!("password for {}: ", a.name))?;
            engine.add_user(&a.name, a.role, &pw)?;
            let event = AuditEvent::new("auth", "user-add").target(&a.name);
            engine.audit(&local_admin(), event.arguments(serde_json::json!({"role": a.role})));
            out(&format!("added user {} ({})\n", a.name, a.role.as_str()))?;
        }
        UserCommand::List(a) => {
            let users = engine.users()?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&users).expect("JSON"))?;
            } else if users.is_empty() {
                out("no users; add one with `tomo user add NAME --role admin`\n")?;
            } else {
                let w = users.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
                let mut text = format!("{:w$}  {:8}  CREATED\n", "NAME", "ROLE");
                for u in &users {
                    let role = if u.disabled { format!("{} (disabled)", u.role) } else { u.role.clone() };
                    text.push_str(&format!("{:w$}  {role:8}  {}\n", u.name, u.created_at));
                }
                out(&text)?;
            }
        }
        UserCommand::Passwd(a) => {
            let pw = read_value(None, &format!("new password for {}: ", a.name))?;
            engine.set_password(&a.name, &pw)?;
            engine.audit(&local_admin(), AuditEvent::new("auth", "user-passwd").target(&a.name));
            out(&format!("password of {} changed; their tokens were revoked\n", a.name))?;
        }
        UserCommand::Rm(a) => {
            engine.remove_user(&a.name)?;
            engine.audit(&local_admin(), AuditEvent::new("auth", "user-rm").target(&a.name));
            out(&format!("removed user {}\n", a.name))?;
        }
    }
    Ok(0)
}

pub fn token(engine: &Engine, c: TokenCommand) -> Result<i32> {
    match c {
        TokenCommand::Create(a) => {
            let ttl = Duration::parse(&a.ttl).map_err(|e| Usage::invalid("--ttl", &a.ttl, e))?;
            let t = engine.issue_token(&a.user, ttl.to_std(), "cli")?;
            let event = AuditEvent::new("auth", "token-create").target(&a.user);
            engine.audit(&local_admin(), event.arguments(serde_json::json!({"ttl": a.ttl})));
            out(&format!("{}\n", t.token))?;
        }
    }
    Ok(0)
}

pub fn proposal(engine: &Engine, c: ProposalCommand) -> Result<i32> {
    match c {
        ProposalCommand::List(a) => {
            let status = a
                .status
                .as_deref()
                .map(|s| {
                    ProposalStatus::parse(s)
                        .map_err(|_| Usage::invalid("--status", s, format!("use one of: {}", ProposalStatus::names())))
                })
                .transpose()?;
            let rows = engine.proposals(status)?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&rows).expect("JSON"))?;
            } else if rows.is_empty() {
                out("no proposals\n")?;
            } else {
                let mut text = format!("{:10}  {:8}  {:16}  {:24}  TITLE\n", "ID", "STATUS", "BY", "CREATED");
                for p in &rows {
                    text.push_str(&format!(
                        "{:10}  {:8}  {:16}  {:24}  {}\n",
                        p.id,
                        p.status,
                        format!("{} ({})", p.created_by, p.role),
                        p.created_at,
                        crate::term::line(&p.title)
                    ));
                }
                out(&text)?;
            }
            Ok(0)
        }
        ProposalCommand::Show(a) => {
            let (row, _, plan) = engine.proposal(&a.id)?;
            if a.json {
                let doc = serde_json::json!({"proposal": row, "plan": plan});
                out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
            } else {
                out(&describe(&row, &plan))?;
            }
            Ok(0)
        }
        ProposalCommand::Approve(a) => approve(engine, &a),
        ProposalCommand::Reject(a) => {
            let decision = ProposalDecision::Reject { id: a.id.clone(), reason: a.reason.clone() };
            let rt = runtime()?;
            let row = match rt.block_on(engine.decide(decision, &local_admin(), &crate::engine::TracingSink))? {
                Decided::Rejected { proposal } | Decided::Approved { proposal, .. } => proposal,
                Decided::Restored(done) => done.proposal,
            };
            out(&format!("proposal {} rejected; nothing was written\n", row.id))?;
            Ok(0)
        }
    }
}

/// `tomo proposal approve`: shows the proposal, asks (unless `--yes`), approves.
fn approve(engine: &Engine, a: &ProposalApproveArgs) -> Result<i32> {
    let (row, _, plan) = engine.proposal(&a.id)?;
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Usage::NeedsFlag {
                flag: "--yes",
                review: format!("review with `tomo proposal show {}`", a.id),
            }
            .into());
        }
        out(&describe(&row, &plan))?;
        let ask = match row.restore {
            Some(_) => "Approve and restore this archive?",
            None => "Approve, write these files and apply this plan?",
        };
        let _ = write!(std::io::stdout(), "{ask} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            out("Not approved; nothing changed.\n")?;
            return Ok(1);
        }
    }
    let rt = runtime()?;
    let sink = LineSink::new(plan.actions.len(), a.json);
    let decision = ProposalDecision::Approve { id: a.id.clone() };
    let result = rt.block_on(engine.decide(decision, &local_admin(), &sink));
    sink.finish();
    let (row, report) = match result? {
        Decided::Approved { proposal, report, .. } => (proposal, report),
        Decided::Restored(done) => return restored(&done, a.json),
        Decided::Rejected { .. } => {
            return Err(
                Usage::NotApplicable { what: format!("proposal {}", a.id), why: "it was not approved".into() }.into()
            );
        }
    };
    if a.json {
        let doc = serde_json::json!({"proposal": row, "report": report});
        out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
    } else {
        out(&format!("proposal {} {}\n", row.id, row.status))?;
        out(&plan_view::report(&plan, &report))?;
    }
    Ok(if report.succeeded() { 0 } else { 1 })
}

fn describe(row: &Proposal, plan: &Plan) -> String {
    format!(
        "proposal {} ({}): {}\nby {} ({}) at {}\n\n{}\n{}",
        row.id,
        row.status,
        crate::term::line(&row.title),
        row.created_by,
        row.role,
        row.created_at,
        crate::term::text(&row.diff),
        // A restore's proposal changes no manifest or server: its text says it all.
        if row.restore.is_some() { String::new() } else { crate::engine::plan_text(plan) }
    )
}

/// An approved restore proposal's outcome.
fn restored(done: &crate::engine::restore_proposal::RestoreApproved, json: bool) -> Result<i32> {
    if json {
        out_json(&serde_json::to_string_pretty(done).expect("JSON"))?;
        return Ok(0);
    }
    let mut text = format!("proposal {} {}\n", done.proposal.id, done.proposal.status);
    text.push_str(&super::backup::outcome_text(done.restored.as_ref(), &done.apps));
    out(&text)?;
    Ok(0)
}
