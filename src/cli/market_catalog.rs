//! `tomo market search` and `tomo market show`: the catalog as a table, and
//! one app's detail.

use std::fmt::Write as _;

use clap::Args;

use super::{out, out_json};
use crate::engine::{AppShown, CatalogRow, Engine, SearchRequest, split_app};
use crate::error::Result;
use crate::term;

#[derive(Debug, Args)]
pub struct MarketSearchArgs {
    /// Words to find in titles, taglines and descriptions (the last one may be
    /// the start of a word: `nextc` finds Nextcloud); none lists every app
    pub query: Vec<String>,
    /// Only apps of this category
    #[arg(long)]
    pub category: Option<String>,
    /// Only apps of this store
    #[arg(long)]
    pub store: Option<String>,
    /// At most this many apps [default: 50]
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MarketShowArgs {
    /// The app, as STORE/APP
    pub app: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn search(engine: &Engine, a: &MarketSearchArgs) -> Result<i32> {
    let query = a.query.join(" ");
    let req = SearchRequest {
        query: Some(query).filter(|q| !q.trim().is_empty()),
        category: a.category.clone(),
        store: a.store.clone(),
        limit: a.limit,
    };
    let rows = engine.market_search(&req)?;
    if a.json {
        return out_json(&serde_json::to_string_pretty(&rows).expect("JSON")).map(|()| 0);
    }
    out(&table(&rows))?;
    Ok(0)
}

/// STORE/APP, version, category, tagline: one app a line.
pub fn table(rows: &[CatalogRow]) -> String {
    if rows.is_empty() {
        return "no apps match\n".to_string();
    }
    let name = |r: &CatalogRow| format!("{}/{}", r.store, r.entry.id);
    let w = rows.iter().map(|r| name(r).chars().count()).max().unwrap_or(0).clamp(9, 48);
    let mut s = format!("{:<w$}  {:<16}  {:<13}  TAGLINE\n", "STORE/APP", "VERSION", "CATEGORY");
    for r in rows {
        let _ = writeln!(
            s,
            "{:<w$}  {:<16}  {:<13}  {}",
            term::field(&name(r)),
            term::field(term::head(&r.entry.version, 16)),
            term::field(term::head(&r.entry.category, 13)),
            term::line(term::head(&r.entry.tagline, 80)),
        );
    }
    s
}

pub fn show(engine: &Engine, a: &MarketShowArgs) -> Result<i32> {
    let (store, app) = split_app(&a.app)?;
    let shown = engine.market_show(store, app)?;
    if a.json {
        return out_json(&serde_json::to_string_pretty(&shown).expect("JSON")).map(|()| 0);
    }
    out(&term::text(&detail_text(&shown)))?;
    Ok(0)
}

fn detail_text(shown: &AppShown) -> String {
    let e = &shown.app.entry;
    let mut s = format!("{}/{}: {}", shown.app.store, e.id, e.title);
    if !e.version.is_empty() {
        let _ = write!(s, " {}", e.version);
    }
    s.push('\n');
    for (label, v) in
        [("tagline", &e.tagline), ("category", &e.category), ("author", &e.author), ("developer", &e.developer)]
    {
        if !v.is_empty() {
            let _ = writeln!(s, "{label}: {v}");
        }
    }
    if !e.architectures.is_empty() {
        let _ = writeln!(s, "architectures: {}", e.architectures.join(", "));
    }
    let _ = writeln!(s, "source: {}  checksum: {}", e.source, term::head(&e.checksum, 12));
    if !e.description.is_empty() {
        let _ = writeln!(s, "\n{}", e.description.trim_end());
    }
    if let Some(d) = &shown.detail {
        if !d.tips.is_empty() {
            let _ = writeln!(s, "\nBefore installing:\n{}", d.tips.trim_end());
        }
        for svc in &d.services {
            let main = if e.main.as_deref() == Some(svc.name.as_str()) { " (main)" } else { "" };
            let _ = writeln!(s, "\nservice {}{main}: {}", svc.name, svc.image);
            for p in &svc.ports {
                let host = p.published.as_deref().unwrap_or("-");
                let _ = writeln!(s, "  port   {host} -> {}/{}{}", p.target, p.protocol, described(&p.description));
            }
            for v in &svc.volumes {
                let _ = writeln!(s, "  volume {} -> {}{}", v.source, v.target, described(&v.description));
            }
            for env in &svc.env {
                let _ = writeln!(s, "  env    {}={}{}", env.name, env.value, described(&env.description));
            }
        }
    } else {
        let _ = writeln!(s, "\n(the store's folder is not here: `tomo market sync` fetches it)");
    }
    if !e.notes.is_empty() {
        let _ = writeln!(s, "\nread leniently:");
        for n in &e.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    s
}

fn described(d: &str) -> String {
    if d.is_empty() { String::new() } else { format!("  # {}", d.lines().next().unwrap_or_default()) }
}
