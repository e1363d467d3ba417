//! `tomo metrics [--server S]... [--app A]... [--since 6h] [--json] [--plot FILE]`:
//! the stored fleet figures as a table with sparklines, as JSON series, or
//! as a chart.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::metrics_view::{Unread, table};
use super::{out, out_json};
use crate::engine::Engine;
use crate::error::{Error, NotFound, Noun, Result, Usage};
use crate::model::metrics::{MetricsQuery, Series};
use crate::model::values::Duration;

#[derive(Debug, Args)]
pub struct MetricsShowArgs {
    /// Only this server (repeatable)
    #[arg(long = "server", value_name = "S")]
    pub servers: Vec<String>,
    /// Only this app's containers (repeatable)
    #[arg(long = "app", value_name = "A")]
    pub apps: Vec<String>,
    /// The period shown, back from now
    #[arg(long, value_name = "DURATION", default_value = "6h")]
    pub since: String,
    /// Print the series as JSON
    #[arg(long)]
    pub json: bool,
    /// Also draw the series as a chart into FILE (.svg or .png)
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct SeriesOut<'a> {
    /// Unix seconds of the period's start.
    since: i64,
    series: &'a [Series],
}

/// Checks the names asked for against the manifests (unknown: NotFound).
pub fn check_names(engine: &Engine, servers: &[String], apps: &[String]) -> Result<()> {
    let desired = engine.desired()?;
    for s in servers {
        if !desired.servers.keys().any(|k| k.as_str() == s) {
            return Err(NotFound::among(Noun::Server, s, "servers", desired.servers.keys().map(|k| k.as_str())).into());
        }
    }
    for a in apps {
        if !desired.apps.keys().any(|k| k.as_str() == a) {
            return Err(NotFound::among(Noun::App, a, "apps", desired.apps.keys().map(|k| k.as_str())).into());
        }
    }
    Ok(())
}

/// `--since` as seconds (a usage error naming the argument when nonsense).
pub fn since_seconds(arg: &str, value: &str) -> Result<i64> {
    let d = Duration::parse(value).map_err(|e| Usage::invalid(arg, value, e))?;
    Ok((d.as_millis() / 1000).max(1) as i64)
}

pub fn show(engine: &Engine, a: &MetricsShowArgs) -> Result<i32> {
    let period = since_seconds("--since", &a.since)?;
    if let Some(p) = &a.plot {
        super::metrics_plot::Format::of(p)?;
    }
    check_names(engine, &a.servers, &a.apps)?;
    let since = crate::auth::now_unix() - period;
    let query = MetricsQuery { since, servers: a.servers.clone(), apps: a.apps.clone(), ..MetricsQuery::default() };
    let series = engine.metrics_series(&query)?;
    if let Some(p) = &a.plot {
        super::metrics_plot::write(&series, p)?;
    }
    if a.json {
        let text = serde_json::to_string_pretty(&SeriesOut { since, series: &series }).map_err(json_error)?;
        out_json(&text)?;
    } else {
        let latest = MetricsQuery { servers: a.servers.clone(), apps: a.apps.clone(), ..MetricsQuery::default() };
        let unread: Vec<Unread> = engine
            .metrics_latest(&latest)?
            .into_iter()
            .filter_map(|s| s.error.map(|error| Unread { server: s.server, error }))
            .collect();
        out(&table(&series, a.since.trim(), &unread))?;
        if let Some(p) = &a.plot {
            out(&format!("chart written to {}\n", p.display()))?;
        }
    }
    Ok(0)
}

fn json_error(e: serde_json::Error) -> Error {
    Error::write("standard output", std::io::Error::other(e))
}
