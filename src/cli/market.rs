//! `tomo market`: the app stores. This file holds the dispatch and the
//! store commands (`list`, `sync`); the catalog and install commands live
//! in their own files.

use std::io::IsTerminal;

use super::args::{MarketCommand, MarketListArgs, MarketSyncArgs};
use super::{out, out_json, runtime};
use crate::engine::{Engine, StoreRow, SyncOptions, SyncReport};
use crate::error::Result;
use crate::term;

pub fn run(engine: &Engine, c: MarketCommand) -> Result<i32> {
    match c {
        MarketCommand::List(a) => list(engine, &a),
        MarketCommand::Sync(a) => sync(engine, &a),
        MarketCommand::Search(a) => super::market_catalog::search(engine, &a),
        MarketCommand::Show(a) => super::market_catalog::show(engine, &a),
    }
}

fn list(engine: &Engine, a: &MarketListArgs) -> Result<i32> {
    let rows = engine.market_list()?;
    if a.json {
        out_json(&serde_json::to_string_pretty(&serde_json::json!({ "stores": rows })).expect("JSON"))?;
    } else {
        out(&list_text(&rows))?;
    }
    Ok(0)
}

fn list_text(rows: &[StoreRow]) -> String {
    if rows.is_empty() {
        return "No stores declared: add a `kind: Marketplace` manifest (url or path), then `tomo market sync`.\n"
            .into();
    }
    let mut text = format!(
        "{:<20} {:<6} {:>5} {:>7}  {:<24} {:<9} {}\n",
        "NAME", "KIND", "APPS", "INVALID", "LAST SYNC", "COMMIT", "SOURCE"
    );
    for r in rows {
        let name = if r.declared { r.name.clone() } else { format!("{} (undeclared)", r.name) };
        text.push_str(&format!(
            "{:<20} {:<6} {:>5} {:>7}  {:<24} {:<9} {}\n",
            term::field(&name),
            r.kind,
            r.apps,
            r.invalid,
            term::field(r.last_sync_at.as_deref().unwrap_or("never")),
            term::head(r.last_commit.as_deref().unwrap_or("-"), 8),
            term::field(&if r.kind == "git" { format!("{} @ {}", r.source, r.git_ref) } else { r.source.clone() }),
        ));
        if let Some(e) = &r.last_error {
            text.push_str(&format!("  last sync failed: {}\n", term::line(e)));
        }
    }
    text
}

fn sync(engine: &Engine, a: &MarketSyncArgs) -> Result<i32> {
    let opts = SyncOptions { progress: !a.json && std::io::stderr().is_terminal(), ..SyncOptions::default() };
    let report = runtime()?.block_on(engine.market_sync_with(a.name.as_deref(), &opts))?;
    if a.json {
        out_json(&serde_json::to_string_pretty(&report).expect("JSON"))?;
    } else {
        out(&sync_text(&report))?;
    }
    Ok(if report.succeeded() { 0 } else { 1 })
}

fn sync_text(r: &SyncReport) -> String {
    let mut text = String::new();
    if r.stores.is_empty() {
        text.push_str("No stores declared: add a `kind: Marketplace` manifest (url or path).\n");
    }
    for s in &r.stores {
        let secs = s.elapsed_ms as f64 / 1000.0;
        match &s.error {
            None => {
                let commit = s.commit.as_deref().map(|c| format!(" at {}", term::head(c, 8))).unwrap_or_default();
                text.push_str(&format!(
                    "{}: {} apps, {} invalid{commit} ({secs:.1}s)\n",
                    term::field(&s.store),
                    s.apps,
                    s.invalid
                ));
            }
            Some(e) => text.push_str(&format!(
                "{}: sync failed, previous catalog kept: {}\n",
                term::field(&s.store),
                term::line(e)
            )),
        }
    }
    for f in &r.forgotten {
        text.push_str(&format!("{}: no longer declared, forgotten\n", term::field(f)));
    }
    text
}
