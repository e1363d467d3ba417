//! `tomo metrics collect`: one collection round, printed (or as JSON);
//! `tomo metrics` without a subcommand shows the stored figures
//! (`metrics_show.rs`).

use std::fmt::Write as _;

use clap::{Args, Subcommand};

use super::{out, out_json, runtime};
use crate::engine::{CollectScope, Collected, Engine};
use crate::error::Result;
use crate::model::alert::AlertChange;
use crate::term;

/// `tomo metrics`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: Option<MetricsCommand>,
    #[command(flatten)]
    pub show: super::metrics_show::MetricsShowArgs,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Sample every server (or those named) once, store it and check alerts
    Collect(CollectArgs),
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Only this server (repeatable)
    #[arg(long = "server")]
    pub servers: Vec<String>,
    /// Print the samples as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(engine: &Engine, a: MetricsArgs) -> Result<i32> {
    match a.command {
        Some(MetricsCommand::Collect(c)) => collect(engine, &c),
        None => super::metrics_show::show(engine, &a.show),
    }
}

fn collect(engine: &Engine, a: &CollectArgs) -> Result<i32> {
    let scope = CollectScope { servers: a.servers.clone() };
    let collected = runtime()?.block_on(engine.metrics_collect(&scope))?;
    let failed = collected.samples.iter().any(|s| s.error.is_some());
    if a.json {
        out_json(&serde_json::to_string_pretty(&collected).expect("JSON"))?;
    } else {
        out(&summary(&collected))?;
    }
    Ok(if failed { 1 } else { 0 })
}

/// A line per server (readings, or why none), warnings and alert changes.
fn summary(c: &Collected) -> String {
    let mut t = String::new();
    for s in &c.samples {
        match &s.error {
            Some(e) => writeln!(t, "{}: not sampled: {}", term::field(&s.server), term::field(e)),
            None => writeln!(t, "{}: {} readings", term::field(&s.server), s.readings.len()),
        }
        .expect("string");
        for w in &s.warnings {
            writeln!(t, "  warning: {}", term::field(w)).expect("string");
        }
    }
    for a in &c.alerts {
        let (what, a) = match a {
            AlertChange::Fired(a) => ("fired", a),
            AlertChange::Cleared(a) => ("cleared", a),
        };
        writeln!(
            t,
            "alert {what}: {} on {} (value {:.2})",
            term::field(&a.rule),
            term::field(&a.subject.server),
            a.value
        )
        .expect("string");
    }
    t
}

/// The alerts firing, for `tomo status` (nothing when none).
pub fn alerts_text(alerts: &[crate::model::alert::AlertState]) -> String {
    let mut t = String::new();
    if !alerts.is_empty() {
        writeln!(t, "\nalerts firing:").expect("string");
    }
    for a in alerts {
        let s = &a.subject;
        let what = [Some(&s.server), s.app.as_ref(), s.service.as_ref(), s.device.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| term::field(p).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(t, "  {}: {what} (value {:.2}, since {})", term::field(&a.rule), a.value, a.since).expect("string");
    }
    t
}
