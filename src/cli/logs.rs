//! `tomo logs`: an app's container logs (interleaved by time, with a
//! compose-like `service | ` prefix, secrets masked, optionally followed
//! until the containers stop or Ctrl-C), tomo's own events (`--system`),
//! and `tomo logs purge`.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use tokio::sync::mpsc;

use super::args::{LogsArgs, LogsCommand, PurgeArgs};
use super::{out, out_json, runtime};
use crate::engine::{AppLogLine, AppLogsRequest, Engine, LogLevel, LogRow, PerServer, PurgeRequest, SystemLogsRequest};
use crate::error::{Result, Usage};
use crate::model::Duration;

/// How long lines of several containers wait to be put in time order when following.
const REORDER: StdDuration = StdDuration::from_millis(100);

pub fn run(engine: &Engine, a: LogsArgs) -> Result<i32> {
    if let Some(LogsCommand::Purge(p)) = &a.command {
        return purge(engine, p);
    }
    let since = a.since.as_deref().map(|v| seconds("--since", v)).transpose()?;
    if a.system {
        return system(engine, &a, since);
    }
    let Some(app) = a.app.clone().or(a.app_flag.clone()) else {
        return Err(Usage::invalid("APP", "", "name an app (`tomo logs APP`), or use `--system` or `purge`").into());
    };
    let req = AppLogsRequest {
        app,
        service: a.service.clone(),
        since_secs: since,
        tail: a.tail,
        follow: a.follow,
        grep: a.grep.clone(),
    };
    runtime()?.block_on(app_logs(engine, &a, req))
}

/// A duration flag in seconds (a usage error when it is not one).
fn seconds(flag: &str, v: &str) -> Result<u64> {
    Duration::parse(v).map(|d| d.as_millis() / 1000).map_err(|e| Usage::invalid(flag, v, e).into())
}

fn system(engine: &Engine, a: &LogsArgs, since: Option<u64>) -> Result<i32> {
    let min_level =
        a.level.as_deref().map(|l| l.parse::<LogLevel>().map_err(|e| Usage::invalid("--level", l, e))).transpose()?;
    let rows =
        engine.system_logs(&SystemLogsRequest { since_secs: since, min_level, grep: a.grep.clone(), limit: None })?;
    if a.json {
        return out_json(&serde_json::to_string(&rows).expect("rows serialise")).map(|_| 0);
    }
    let mut text = String::new();
    for r in &rows {
        text.push_str(&system_line(r));
    }
    out(&text)?;
    Ok(0)
}

fn system_line(r: &LogRow) -> String {
    let fields: Vec<String> = r
        .fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    let fields = if fields.is_empty() { String::new() } else { format!("  {}", fields.join(" ")) };
    crate::term::line(&format!("{} {:<5} {:<8} {}{fields}", r.at, r.level.as_str(), r.source, r.message)).into_owned()
        + "\n"
}

async fn app_logs(engine: &Engine, a: &LogsArgs, req: AppLogsRequest) -> Result<i32> {
    let (tx, rx) = mpsc::channel(1024);
    let follow = a.follow;
    let printer = print_lines(rx, follow, a.timestamps, a.json);
    let stream = engine.stream_app_logs(&req, tx);
    let per = tokio::select! {
        (per, printed) = async { tokio::join!(stream, printer) } => { printed?; per? }
        _ = crate::shutdown::requested() => return Ok(130),
    };
    let failed = report_failures(&per);
    Ok(if failed > 0 && failed == per.len() { 1 } else { 0 })
}

/// Servers or containers whose logs could not be read, on stderr; how many.
fn report_failures(per: &[PerServer<u64>]) -> usize {
    let mut n = 0;
    for p in per.iter().filter(|p| p.error.is_some()) {
        n += 1;
        let e = p.error.as_deref().unwrap_or_default();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("{}\n", crate::term::line(&format!("server {}: {e}", p.server))).as_bytes(),
        );
    }
    n
}

/// Prints lines in time order: all at the end without `follow`; with it,
/// what arrived within each `REORDER` span, sorted.
async fn print_lines(mut rx: mpsc::Receiver<AppLogLine>, follow: bool, timestamps: bool, json: bool) -> Result<()> {
    let mut pending: Vec<AppLogLine> = Vec::new();
    let mut width = 0usize;
    let mut servers: BTreeMap<String, ()> = BTreeMap::new();
    let mut tick = tokio::time::interval(REORDER);
    loop {
        let open = tokio::select! {
            line = rx.recv() => match line {
                Some(l) => { pending.push(l); true }
                None => false,
            },
            _ = tick.tick(), if follow => {
                flush(&mut pending, &mut width, &mut servers, timestamps, json)?;
                true
            }
        };
        if !open {
            return flush(&mut pending, &mut width, &mut servers, timestamps, json);
        }
    }
}

fn flush(
    pending: &mut Vec<AppLogLine>,
    width: &mut usize,
    servers: &mut BTreeMap<String, ()>,
    timestamps: bool,
    json: bool,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    pending.sort_by(|a, b| a.at.cmp(&b.at));
    for l in pending.iter() {
        servers.insert(l.server.clone(), ());
    }
    let label = |l: &AppLogLine| {
        if servers.len() > 1 { format!("{}@{}", l.service, l.server) } else { l.service.clone() }
    };
    *width = pending.iter().map(|l| label(l).chars().count()).fold(*width, usize::max);
    let mut text = String::new();
    for l in pending.drain(..) {
        if json {
            text.push_str(&crate::term::json(&serde_json::to_string(&l).expect("lines serialise")));
            text.push('\n');
            continue;
        }
        let stamp = if timestamps && !l.at.is_empty() { format!("{} ", l.at) } else { String::new() };
        let line = format!("{:<w$} | {stamp}{}", label(&l), l.text, w = *width);
        text.push_str(&crate::term::line(&line));
        text.push('\n');
    }
    out(&text)
}

fn purge(engine: &Engine, p: &PurgeArgs) -> Result<i32> {
    if !p.system && !p.metrics {
        return Err(Usage::invalid("tomo logs purge", "", "say what to delete: --system and/or --metrics").into());
    }
    let before_secs = p.before.as_deref().map(|v| seconds("--before", v)).transpose()?;
    let who = super::access::local_admin();
    let done = engine.purge(&who, &PurgeRequest { before_secs, system: p.system, metrics: p.metrics })?;
    let mut text = String::new();
    if p.system {
        text.push_str(&format!("deleted {} event row(s)\n", done.system_rows));
    }
    if p.metrics {
        text.push_str(&format!("deleted {} metric row(s)\n", done.metric_rows));
    }
    out(&text)?;
    Ok(0)
}
