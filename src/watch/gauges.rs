//! The newest fleet figures as Prometheus gauges (text format 0.0.4): one
//! family per figure, `tomo_<figure>` (`tomo_host_cpu_ratio{server}`,
//! `tomo_host_filesystem_avail_bytes{server,mount}`,
//! `tomo_container_memory_bytes{server,app,service}`, …), and the alerts
//! firing. Label values escaped as the format says. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::metrics::{Figure, Reading};

/// An alert that is firing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The alert's rule as written (`disk_used > 90%`).
    pub alert: String,
    pub server: String,
}

/// What the family of `f` measures (its HELP line).
fn help(f: Figure) -> &'static str {
    match f {
        Figure::HostCpuRatio => "Busy share of the server's CPU time (1 = every core busy).",
        Figure::HostLoad1 => "Load average over 1 minute.",
        Figure::HostLoad5 => "Load average over 5 minutes.",
        Figure::HostLoad15 => "Load average over 15 minutes.",
        Figure::HostMemoryUsedBytes => "Memory in use (total less available).",
        Figure::HostMemoryAvailableBytes => "Memory available for new work (MemAvailable).",
        Figure::HostSwapUsedBytes => "Swap in use.",
        Figure::HostFilesystemUsedBytes => "Bytes used on the filesystem mounted at `mount`.",
        Figure::HostFilesystemAvailBytes => "Bytes available to users on the filesystem mounted at `mount`.",
        Figure::HostNetworkReceiveBytesPerSecond => "Bytes received per second over every interface but loopback.",
        Figure::HostNetworkTransmitBytesPerSecond => "Bytes sent per second over every interface but loopback.",
        Figure::HostUptimeSeconds => "Seconds since the server booted.",
        Figure::ContainerCpuRatio => "CPU used by the container (1 = one core).",
        Figure::ContainerMemoryBytes => "Memory used by the container (less page cache).",
        Figure::ContainerMemoryLimitBytes => "The container's memory limit (the host's memory without one).",
        Figure::ContainerNetworkReceiveBytesPerSecond => "Bytes the container received per second.",
        Figure::ContainerNetworkTransmitBytesPerSecond => "Bytes the container sent per second.",
        Figure::ContainerBlockReadBytesPerSecond => "Bytes the container read from block devices per second.",
        Figure::ContainerBlockWriteBytesPerSecond => "Bytes the container wrote to block devices per second.",
        Figure::ContainerRestarts => "Times the Engine restarted the container.",
        Figure::ContainerHealthy => "1 when the container's healthcheck passes, 0 when it fails.",
    }
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value in the text format (`NaN`, `+Inf`, `-Inf` spelled so).
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn labels(r: &Reading) -> String {
    let s = &r.subject;
    let mut pairs = vec![("server", s.server.as_str())];
    if let Some(a) = &s.app {
        pairs.push(("app", a));
    }
    if let Some(svc) = &s.service {
        pairs.push(("service", svc));
    }
    if let Some(d) = &s.device {
        pairs.push(("mount", d));
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// The gauges of `readings` (the newest collection round) and `firing`.
pub fn render(readings: &[Reading], firing: &[Firing]) -> String {
    let mut by_figure: BTreeMap<Figure, Vec<&Reading>> = BTreeMap::new();
    for r in readings {
        by_figure.entry(r.figure).or_default().push(r);
    }
    let mut out = String::new();
    for (figure, rs) in by_figure {
        let name = format!("tomo_{}", figure.name());
        let _ = write!(out, "# HELP {name} {}\n# TYPE {name} gauge\n", help(figure));
        let mut lines: BTreeMap<String, f64> = BTreeMap::new();
        for r in rs {
            // One line per label set (the newest reading wins).
            lines.insert(labels(r), r.value);
        }
        for (l, v) in lines {
            let _ = writeln!(out, "{name}{l} {}", value(v));
        }
    }
    let _ = write!(
        out,
        "# HELP tomo_alerts_firing Alerts of Settings.metrics.alerts firing now.\n\
         # TYPE tomo_alerts_firing gauge\ntomo_alerts_firing {}\n",
        firing.len()
    );
    if !firing.is_empty() {
        out.push_str(
            "# HELP tomo_alert_firing 1 for each alert firing now, by rule and server.\n# TYPE tomo_alert_firing gauge\n",
        );
        let mut seen: Vec<String> = firing
            .iter()
            .map(|f| {
                format!(
                    "tomo_alert_firing{{alert=\"{}\",server=\"{}\"}} 1\n",
                    escape_label(&f.alert),
                    escape_label(&f.server)
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        out.extend(seen);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::Subject;

    fn reading(server: &str, app: Option<&str>, device: Option<&str>, figure: Figure, value: f64) -> Reading {
        let subject = Subject {
            server: server.into(),
            app: app.map(Into::into),
            service: app.map(|_| "web".into()),
            device: device.map(Into::into),
        };
        Reading { subject, figure, value, at: 1000 }
    }

    #[test]
    fn one_family_per_figure_with_labels() {
        let text = render(
            &[
                reading("b", None, None, Figure::HostCpuRatio, 0.25),
                reading("a", None, None, Figure::HostCpuRatio, 0.5),
                reading("a", None, Some("/"), Figure::HostFilesystemAvailBytes, 1e10),
                reading("a", Some("blog"), None, Figure::ContainerMemoryBytes, 1048576.0),
                reading("a", Some("blog"), None, Figure::ContainerHealthy, f64::NAN),
            ],
            &[Firing { alert: "disk_used > 90%".into(), server: "a".into() }],
        );
        let expected = "# HELP tomo_host_cpu_ratio Busy share of the server's CPU time (1 = every core busy).\n\
             # TYPE tomo_host_cpu_ratio gauge\n\
             tomo_host_cpu_ratio{server=\"a\"} 0.5\n\
             tomo_host_cpu_ratio{server=\"b\"} 0.25\n";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("tomo_host_filesystem_avail_bytes{server=\"a\",mount=\"/\"} 10000000000\n"), "{text}");
        assert!(text.contains("tomo_container_memory_bytes{server=\"a\",app=\"blog\",service=\"web\"} 1048576\n"));
        assert!(text.contains("tomo_container_healthy{server=\"a\",app=\"blog\",service=\"web\"} NaN\n"));
        assert!(text.contains("tomo_alerts_firing 1\n"));
        assert!(text.contains("tomo_alert_firing{alert=\"disk_used > 90%\",server=\"a\"} 1\n"), "{text}");
        assert_eq!(text.matches("# TYPE tomo_host_cpu_ratio gauge").count(), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let text = render(&[reading("x\"}\nevil 1", None, None, Figure::HostLoad1, 1.0)], &[]);
        assert!(text.contains("tomo_host_load1{server=\"x\\\"}\\nevil 1\"} 1\n"), "{text}");
        assert!(text.ends_with("tomo_alerts_firing 0\n"));
    }
}
