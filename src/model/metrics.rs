//! Fleet metrics: the figures tomo collects from servers and containers, as
//! the values that collection, storage and every front end (table,
//! sparkline, plot, Prometheus, MCP) share. Pure data: no I/O here.

use serde::{Deserialize, Serialize};

/// One measured quantity. Ratios are 0..=1 (a container's CPU may exceed 1
/// on several cores: 1 = one core); sizes in bytes, rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    HostCpuRatio,
    HostLoad1,
    HostLoad5,
    HostLoad15,
    HostMemoryUsedBytes,
    HostMemoryAvailableBytes,
    HostSwapUsedBytes,
    /// Per mount (`Subject::device`).
    HostFilesystemUsedBytes,
    /// Per mount (`Subject::device`).
    HostFilesystemAvailBytes,
    HostNetworkReceiveBytesPerSecond,
    HostNetworkTransmitBytesPerSecond,
    HostUptimeSeconds,
    ContainerCpuRatio,
    ContainerMemoryBytes,
    ContainerMemoryLimitBytes,
    ContainerNetworkReceiveBytesPerSecond,
    ContainerNetworkTransmitBytesPerSecond,
    ContainerBlockReadBytesPerSecond,
    ContainerBlockWriteBytesPerSecond,
    ContainerRestarts,
    /// 1 healthy, 0 unhealthy; absent without a healthcheck.
    ContainerHealthy,
}

impl Figure {
    pub const ALL: [Figure; 21] = [
        Figure::HostCpuRatio,
        Figure::HostLoad1,
        Figure::HostLoad5,
        Figure::HostLoad15,
        Figure::HostMemoryUsedBytes,
        Figure::HostMemoryAvailableBytes,
        Figure::HostSwapUsedBytes,
        Figure::HostFilesystemUsedBytes,
        Figure::HostFilesystemAvailBytes,
        Figure::HostNetworkReceiveBytesPerSecond,
        Figure::HostNetworkTransmitBytesPerSecond,
        Figure::HostUptimeSeconds,
        Figure::ContainerCpuRatio,
        Figure::ContainerMemoryBytes,
        Figure::ContainerMemoryLimitBytes,
        Figure::ContainerNetworkReceiveBytesPerSecond,
        Figure::ContainerNetworkTransmitBytesPerSecond,
        Figure::ContainerBlockReadBytesPerSecond,
        Figure::ContainerBlockWriteBytesPerSecond,
        Figure::ContainerRestarts,
        Figure::ContainerHealthy,
    ];

    /// The name users write (`--figure`, alerts) and JSON carries.
    pub fn name(self) -> &'static str {
        match self {
            Figure::HostCpuRatio => "host_cpu_ratio",
            Figure::HostLoad1 => "host_load1",
            Figure::HostLoad5 => "host_load5",
            Figure::HostLoad15 => "host_load15",
            Figure::HostMemoryUsedBytes => "host_memory_used_bytes",
            Figure::HostMemoryAvailableBytes => "host_memory_available_bytes",
            Figure::HostSwapUsedBytes => "host_swap_used_bytes",
            Figure::HostFilesystemUsedBytes => "host_filesystem_used_bytes",
            Figure::HostFilesystemAvailBytes => "host_filesystem_avail_bytes",
            Figure::HostNetworkReceiveBytesPerSecond => "host_network_receive_bytes_per_second",
            Figure::HostNetworkTransmitBytesPerSecond => "host_network_transmit_bytes_per_second",
            Figure::HostUptimeSeconds => "host_uptime_seconds",
            Figure::ContainerCpuRatio => "container_cpu_ratio",
            Figure::ContainerMemoryBytes => "container_memory_bytes",
            Figure::ContainerMemoryLimitBytes => "container_memory_limit_bytes",
            Figure::ContainerNetworkReceiveBytesPerSecond => "container_network_receive_bytes_per_second",
            Figure::ContainerNetworkTransmitBytesPerSecond => "container_network_transmit_bytes_per_second",
            Figure::ContainerBlockReadBytesPerSecond => "container_block_read_bytes_per_second",
            Figure::ContainerBlockWriteBytesPerSecond => "container_block_write_bytes_per_second",
            Figure::ContainerRestarts => "container_restarts",
            Figure::ContainerHealthy => "container_healthy",
        }
    }

    pub fn parse(s: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn unit(self) -> Unit {
        match self {
            Figure::HostCpuRatio | Figure::ContainerCpuRatio => Unit::Ratio,
            Figure::HostLoad1 | Figure::HostLoad5 | Figure::HostLoad15 => Unit::Count,
            Figure::ContainerRestarts | Figure::ContainerHealthy => Unit::Count,
            Figure::HostUptimeSeconds => Unit::Seconds,
            Figure::HostNetworkReceiveBytesPerSecond
            | Figure::HostNetworkTransmitBytesPerSecond
            | Figure::ContainerNetworkReceiveBytesPerSecond
            | Figure::ContainerNetworkTransmitBytesPerSecond
            | Figure::ContainerBlockReadBytesPerSecond
            | Figure::ContainerBlockWriteBytesPerSecond => Unit::BytesPerSecond,
            _ => Unit::Bytes,
        }
    }

    pub fn is_host(self) -> bool {
        self.name().starts_with("host_")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ratio,
    Count,
    Bytes,
    BytesPerSecond,
    Seconds,
}

/// What a figure is about: a server, or one of its containers (app and
/// service), and for per-mount / per-interface figures the mount point.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subject {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// A mount point for filesystem figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// One point of a series: a raw sample (min = avg = max) or a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Point {
    /// Unix seconds (a bucket's start for rollups).
    pub at: i64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

impl Point {
    pub fn raw(at: i64, value: f64) -> Point {
        Point { at, min: value, avg: value, max: value }
    }
}

/// A figure of one subject over time, oldest point first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Series {
    pub subject: Subject,
    pub figure: Figure,
    pub points: Vec<Point>,
}

impl Series {
    /// The newest value, if any.
    pub fn latest(&self) -> Option<f64> {
        self.points.last().map(|p| p.avg)
    }
}

/// One value of the newest collection round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reading {
    pub subject: Subject,
    pub figure: Figure,
    pub value: f64,
    /// Unix seconds of the sample.
    pub at: i64,
}

/// How one server's collection went: its readings, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerSample {
    pub server: String,
    pub at: i64,
    pub readings: Vec<Reading>,
    /// Set when the server could not be read (unreachable, no Engine); the
    /// other servers' samples are unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lines of the server's answer that could not be parsed (skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `Settings.metrics`: how often servers are sampled, how long samples are
/// kept, and the alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSettings {
    pub interval: super::values::Duration,
    /// Raw samples are kept this long (default 48h).
    pub raw_retention: super::values::Duration,
    /// 5-minute rollups are kept this long (default 30d).
    pub rollup_retention: super::values::Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<super::alert::AlertRule>,
}

/// The width of a rollup bucket, in seconds.
pub const ROLLUP_SECONDS: i64 = 300;

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            interval: super::values::Duration::from_secs(30),
            raw_retention: super::values::Duration::from_secs(48 * 3600),
            rollup_retention: super::values::Duration::from_secs(30 * 86_400),
            alerts: Vec::new(),
        }
    }
}

impl MetricsSettings {
    pub fn is_default(&self) -> bool {
        *self == MetricsSettings::default()
    }
}

/// Which series to read, over which period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricsQuery {
    /// Unix seconds; the oldest point wanted.
    pub since: i64,
    /// Unix seconds; the newest point wanted (`None`: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Seconds per point: points are merged into buckets this wide (min of
    /// mins, mean, max of maxes). `None`: as stored (raw samples when the
    /// period is within the raw retention, else 5-minute rollups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// Empty: every figure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
    /// Empty: every server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Empty: hosts and every app. Given: only these apps' containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Empty: every service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

impl MetricsQuery {
    /// Whether a subject/figure is wanted.
    pub fn wants(&self, subject: &Subject, figure: Figure) -> bool {
        let has = |list: &[String], v: Option<&String>| list.is_empty() || v.is_some_and(|v| list.contains(v));
        (self.figures.is_empty() || self.figures.contains(&figure))
            && (self.servers.is_empty() || self.servers.contains(&subject.server))
            && has(&self.apps, subject.app.as_ref())
            && has(&self.services, subject.service.as_ref())
    }
}

/// Merges points into buckets `step` seconds wide (aligned on multiples of it).
pub fn bucket(points: &[Point], step: i64) -> Vec<Point> {
    let mut out: Vec<(Point, f64)> = Vec::new();
    for p in points {
        let at = p.at - p.at.rem_euclid(step.max(1));
        match out.last_mut() {
            Some((b, n)) if b.at == at => {
                b.min = b.min.min(p.min);
                b.max = b.max.max(p.max);
                b.avg += p.avg;
                *n += 1.0;
            }
            _ => out.push((Point { at, ..*p }, 1.0)),
        }
    }
    out.into_iter()
        .map(|(mut p, n)| {
            p.avg /= n;
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_name_parses_back() {
        for f in Figure::ALL {
            assert_eq!(Figure::parse(f.name()), Some(f));
        }
        assert_eq!(Figure::parse("nonsense"), None);
    }

    #[test]
    fn buckets_merge_points() {
        let pts = [Point::raw(0, 1.0), Point::raw(30, 3.0), Point::raw(300, 5.0)];
        let b = bucket(&pts, 300);
        assert_eq!(b, vec![Point { at: 0, min: 1.0, avg: 2.0, max: 3.0 }, Point::raw(300, 5.0)]);
    }

    #[test]
    fn a_query_filters_subjects() {
        let host = Subject { server: "a".into(), ..Default::default() };
        let web = Subject { app: Some("web".into()), service: Some("web".into()), ..host.clone() };
        let q = MetricsQuery { apps: vec!["web".into()], ..Default::default() };
        assert!(q.wants(&web, Figure::ContainerCpuRatio) && !q.wants(&host, Figure::HostCpuRatio));
        let q = MetricsQuery { servers: vec!["b".into()], ..Default::default() };
        assert!(!q.wants(&web, Figure::ContainerCpuRatio));
    }
}
