//! Monitoring, read-only: `metrics_system` (tomo itself), `metrics_server`,
//! `metrics_app` (the newest figures), `metrics_history` (series) and
//! `metrics_summary` (fleet overview: top consumers, alerts firing). The
//! figures are the ones collection stored (`tomo watch`, `tomo serve`,
//! `tomo metrics collect`).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AppArg, ServerArg, bad_arg, names};
use crate::engine::{SystemFigures, WatchState, process_uptime};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::model::alert::AlertState;
use crate::model::metrics::{Figure, MetricsQuery, Reading, Series, Subject};
use crate::model::values::Duration;

/// Points a history returns at most per series (a wider `step` is chosen).
const MAX_POINTS: i64 = 500;

/// How many top consumers the summary lists per figure.
const TOP: usize = 5;

#[derive(Debug, Serialize, JsonSchema)]
pub struct SystemOut {
    #[serde(flatten)]
    pub figures: SystemFigures,
    /// Seconds since this tomo process started.
    pub uptime_seconds: u64,
    /// How tomo runs: this server, and the `tomo watch` on its data folder.
    pub daemon: Daemons,
    /// Unix seconds of the newest stored collection round, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_collection: Option<i64>,
    /// Alerts firing now.
    pub alerts_firing: usize,
}

/// tomo's daemons on this data folder.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Daemons {
    /// How this process serves MCP: `stdio` or `http`.
    pub serve: String,
    /// Whether a `tomo watch` runs on the same data folder (its pid, host and start when it does).
    pub watch: WatchState,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerOut {
    pub server: String,
    /// Unix seconds of the newest sample.
    pub at: i64,
    /// Why the server could not be read in the newest round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The host's figures and its containers' (each with its subject).
    pub readings: Vec<Reading>,
    pub alerts: Vec<AlertState>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppOut {
    pub app: String,
    /// The newest figures of the app's containers.
    pub readings: Vec<Reading>,
    pub alerts: Vec<AlertState>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// The figure, e.g. `host_cpu_ratio`, `container_memory_bytes`, `host_filesystem_used_bytes`.
    pub figure: String,
    /// How far back, e.g. `6h`, `7d` (default `6h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Width of a point, e.g. `5m`, `1h` (default: the period over at most 500 points).
    #[serde(default)]
    pub step: Option<String>,
    /// Only these servers (all when empty).
    #[serde(default)]
    pub servers: Vec<String>,
    /// Only these apps' containers (all when empty).
    #[serde(default)]
    pub apps: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryOut {
    /// Unix seconds of the period's start.
    pub since: i64,
    /// Seconds per point.
    pub step: i64,
    /// One series per subject, oldest point first (min, avg, max per point).
    pub series: Vec<Series>,
}

/// One subject's figure, in a ranking.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Consumer {
    pub subject: Subject,
    pub value: f64,
}

/// One server in the overview.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServerBrief {
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_available_bytes: Option<f64>,
    /// The fullest filesystem's used share (0..=1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_used_ratio: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SummaryOut {
    pub servers: Vec<ServerBrief>,
    /// Containers by CPU (1 = one core), highest first.
    pub top_cpu: Vec<Consumer>,
    /// Containers by memory in bytes, highest first.
    pub top_memory: Vec<Consumer>,
    /// Filesystems by used share (0..=1), fullest first.
    pub top_disk: Vec<Consumer>,
    pub alerts_firing: Vec<AlertState>,
}

fn period(arg: &str, value: Option<&str>, default: &str) -> Result<i64, ToolError> {
    let v = value.unwrap_or(default);
    let d = Duration::parse(v).map_err(|e| bad_arg(arg, e))?;
    Ok((d.as_millis() / 1000).max(1) as i64)
}

/// The highest `TOP` values of `figure` among `readings`.
fn top(readings: &[Reading], figure: Figure) -> Vec<Consumer> {
    let mut v: Vec<Consumer> = readings
        .iter()
        .filter(|r| r.figure == figure && r.value.is_finite())
        .map(|r| Consumer { subject: r.subject.clone(), value: r.value })
        .collect();
    v.sort_by(|a, b| b.value.total_cmp(&a.value));
    v.truncate(TOP);
    v
}

/// Each filesystem's used share, from its used and available bytes.
fn disk_shares(readings: &[Reading]) -> Vec<Consumer> {
    let avail = |s: &Subject| {
        readings.iter().find(|r| r.figure == Figure::HostFilesystemAvailBytes && &r.subject == s).map(|r| r.value)
    };
    readings
        .iter()
        .filter(|r| r.figure == Figure::HostFilesystemUsedBytes)
        .filter_map(|r| {
            let total = r.value + avail(&r.subject)?;
            (total > 0.0).then(|| Consumer { subject: r.subject.clone(), value: r.value / total })
        })
        .collect()
}

fn summary(samples: Vec<crate::model::metrics::ServerSample>, alerts: Vec<AlertState>) -> SummaryOut {
    let all: Vec<Reading> = samples.iter().flat_map(|s| s.readings.iter().cloned()).collect();
    let host = |server: &str, f: Figure| {
        all.iter().find(|r| r.figure == f && r.subject.server == server && r.subject.app.is_none()).map(|r| r.value)
    };
    let mut disks = disk_shares(&all);
    let servers = samples
        .iter()
        .map(|s| ServerBrief {
            server: s.server.clone(),
            error: s.error.clone(),
            cpu_ratio: host(&s.server, Figure::HostCpuRatio),
            memory_available_bytes: host(&s.server, Figure::HostMemoryAvailableBytes),
            disk_used_ratio: disks.iter().filter(|d| d.subject.server == s.server).map(|d| d.value).reduce(f64::max),
        })
        .collect();
    disks.sort_by(|a, b| b.value.total_cmp(&a.value));
    disks.truncate(TOP);
    SummaryOut {
        servers,
        top_cpu: top(&all, Figure::ContainerCpuRatio),
        top_memory: top(&all, Figure::ContainerMemoryBytes),
        top_disk: disks,
        alerts_firing: alerts,
    }
}

#[tool_router(router = metrics_tools, vis = "pub(super)")]
impl Tomo {
    /// Figures about tomo itself: version, how long this process has run, whether it serves over stdio or HTTP and whether a `tomo watch` runs on its data folder, the store's size on disk, apply runs by outcome, the newest metrics collection and the alerts firing.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn metrics_system(&self) -> Result<Json<SystemOut>, ToolError> {
        let figures = self.engine().system_figures()?;
        let latest = self.engine().metrics_latest(&MetricsQuery::default())?;
        let alerts = self.engine().alerts()?;
        Ok(Json(SystemOut {
            figures,
            uptime_seconds: process_uptime().as_secs(),
            daemon: Daemons { serve: self.serving().into(), watch: self.engine().watch_state() },
            last_collection: latest.iter().filter(|s| s.error.is_none()).map(|s| s.at).max(),
            alerts_firing: alerts.len(),
        }))
    }

    /// The newest figures of one server: CPU, load, memory, swap, each filesystem, network, uptime, and each of its containers' CPU, memory, network, block I/O, restarts and health; the alerts firing on it; or why it could not be read.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn metrics_server(&self, Parameters(a): Parameters<ServerArg>) -> Result<Json<ServerOut>, ToolError> {
        let server = names("server", std::slice::from_ref(&a.server))?;
        let wanted = vec![server[0].to_string()];
        let sample = self
            .engine()
            .metrics_latest(&MetricsQuery { servers: wanted, ..MetricsQuery::default() })?
            .into_iter()
            .find(|s| s.server == a.server);
        let alerts = self.engine().alerts()?.into_iter().filter(|x| x.subject.server == a.server).collect();
        let Some(s) = sample else {
            return Err(bad_arg("server", format!("no figures stored for server `{}` yet", a.server)));
        };
        Ok(Json(ServerOut { server: s.server, at: s.at, error: s.error, readings: s.readings, alerts }))
    }

    /// The newest figures of an app's containers (CPU, memory and its limit, network, block I/O, restarts, health), each naming its server and service, and the alerts firing on them.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn metrics_app(&self, Parameters(a): Parameters<AppArg>) -> Result<Json<AppOut>, ToolError> {
        names("name", std::slice::from_ref(&a.name))?;
        let desired = self.engine().desired()?;
        if !desired.apps.keys().any(|k| k.as_str() == a.name) {
            return Err(bad_arg("name", format!("there is no app `{}` (`app_list` shows the apps)", a.name)));
        }
        let of_app = |s: &Subject| s.app.as_deref() == Some(a.name.as_str());
        let readings: Vec<Reading> = self
            .engine()
            .metrics_latest(&MetricsQuery { apps: vec![a.name.clone()], ..MetricsQuery::default() })?
            .into_iter()
            .flat_map(|s| s.readings)
            .filter(|r| of_app(&r.subject))
            .collect();
        let alerts = self.engine().alerts()?.into_iter().filter(|x| of_app(&x.subject)).collect();
        Ok(Json(AppOut { app: a.name, readings, alerts }))
    }

    /// A figure's history as series (one per server, container or filesystem), over `since` (default 6h) in points `step` wide (min, avg, max each), at most 500 points per series.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn metrics_history(&self, Parameters(a): Parameters<HistoryArgs>) -> Result<Json<HistoryOut>, ToolError> {
        let figure = Figure::parse(&a.figure).ok_or_else(|| {
            let known: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
            bad_arg("figure", format!("unknown figure `{}`; one of: {}", a.figure, known.join(", ")))
        })?;
        let secs = period("since", a.since.as_deref(), "6h")?;
        let fitting = (secs + MAX_POINTS - 1) / MAX_POINTS;
        let step = match a.step.as_deref() {
            Some(s) => period("step", Some(s), "")?.max(fitting),
            None => fitting.max(1),
        };
        let servers = names("servers", &a.servers)?.iter().map(|n| n.to_string()).collect();
        let apps = names("apps", &a.apps)?.iter().map(|n| n.to_string()).collect();
        let since = crate::auth::now_unix() - secs;
        let query =
            MetricsQuery { since, step: Some(step), figures: vec![figure], servers, apps, ..MetricsQuery::default() };
        let series = self.engine().metrics_series(&query)?;
        Ok(Json(HistoryOut { since, step, series }))
    }

    /// Fleet overview from the newest figures: each server's CPU, available memory and fullest disk (or why it could not be read), the top containers by CPU and memory, the fullest filesystems, and the alerts firing.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn metrics_summary(&self) -> Result<Json<SummaryOut>, ToolError> {
        let samples = self.engine().metrics_latest(&MetricsQuery::default())?;
        let alerts = self.engine().alerts()?;
        Ok(Json(summary(samples, alerts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::ServerSample;

    fn r(server: &str, app: Option<&str>, device: Option<&str>, figure: Figure, value: f64) -> Reading {
        let subject = Subject {
            server: server.into(),
            app: app.map(Into::into),
            service: app.map(|_| "web".into()),
            device: device.map(Into::into),
        };
        Reading { subject, figure, value, at: 10 }
    }

    #[test]
    fn summary_ranks_consumers_and_disks() {
        let a = ServerSample {
            server: "a".into(),
            at: 10,
            readings: vec![
                r("a", None, None, Figure::HostCpuRatio, 0.4),
                r("a", None, Some("/"), Figure::HostFilesystemUsedBytes, 90.0),
                r("a", None, Some("/"), Figure::HostFilesystemAvailBytes, 10.0),
                r("a", None, Some("/data"), Figure::HostFilesystemUsedBytes, 10.0),
                r("a", None, Some("/data"), Figure::HostFilesystemAvailBytes, 90.0),
                r("a", Some("busy"), None, Figure::ContainerCpuRatio, 1.2),
                r("a", Some("idle"), None, Figure::ContainerCpuRatio, 0.01),
                r("a", Some("hog"), None, Figure::ContainerMemoryBytes, 5e8),
            ],
            error: None,
            warnings: vec![],
        };
        let b =
            ServerSample { server: "b".into(), at: 10, readings: vec![], error: Some("down".into()), warnings: vec![] };
        let s = summary(vec![a, b], vec![]);
        assert_eq!(s.servers.len(), 2);
        assert_eq!(s.servers[0].cpu_ratio, Some(0.4));
        assert_eq!(s.servers[0].disk_used_ratio, Some(0.9));
        assert_eq!(s.servers[1].error.as_deref(), Some("down"));
        assert_eq!(s.top_cpu[0].subject.app.as_deref(), Some("busy"));
        assert_eq!(s.top_cpu.len(), 2);
        assert_eq!(s.top_memory[0].value, 5e8);
        assert_eq!(s.top_disk[0].subject.device.as_deref(), Some("/"));
        assert!((s.top_disk[1].value - 0.1).abs() < 1e-9);
    }
}
