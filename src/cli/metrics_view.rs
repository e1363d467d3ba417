//! What `tomo metrics` prints: a table of the newest value of each figure per
//! server, container and mount, with its range and a Unicode sparkline of
//! the period; human units. Pure: series in, text out. Names from servers
//! pass `term::field`.

use std::collections::BTreeMap;

use crate::model::metrics::{Figure, Series, Subject, Unit};
use crate::term;

/// The sparkline's levels, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Characters of a table's sparkline.
pub const SPARK_WIDTH: usize = 24;

/// `values` as at most `width` bars (averaged into `width` buckets when
/// longer), scaled between their minimum and maximum. A flat series is a
/// flat line at the lowest bar when zero, else mid-height; values that are
/// not finite are skipped.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets: Vec<f64> = if values.len() <= width {
        values
    } else {
        (0..width)
            .map(|i| {
                let (a, b) =
                    (i * values.len() / width, ((i + 1) * values.len() / width).max(i * values.len() / width + 1));
                values[a..b].iter().sum::<f64>() / (b - a) as f64
            })
            .collect()
    };
    let (lo, hi) = buckets.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    buckets
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                if *v == 0.0 { BARS[0] } else { BARS[3] }
            } else {
                let level = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round() as usize;
                BARS[level.min(BARS.len() - 1)]
            }
        })
        .collect()
}

/// `value` in `unit` for people: `12.5%`, `1.2 GiB`, `340 KiB/s`, `3d 4h`.
pub fn human(value: f64, unit: Unit) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    match unit {
        Unit::Ratio => format!("{:.1}%", value * 100.0),
        Unit::Count => {
            let s = format!("{value:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Unit::Bytes => bytes(value),
        Unit::BytesPerSecond => format!("{}/s", bytes(value)),
        Unit::Seconds => duration(value),
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A figure's short name in the table (the subject says host or container).
pub fn label(f: Figure) -> &'static str {
    match f {
        Figure::HostCpuRatio | Figure::ContainerCpuRatio => "cpu",
        Figure::HostLoad1 => "load1",
        Figure::HostLoad5 => "load5",
        Figure::HostLoad15 => "load15",
        Figure::HostMemoryUsedBytes | Figure::ContainerMemoryBytes => "memory",
        Figure::HostMemoryAvailableBytes => "memory avail",
        Figure::HostSwapUsedBytes => "swap",
        Figure::HostFilesystemUsedBytes => "disk used",
        Figure::HostFilesystemAvailBytes => "disk avail",
        Figure::HostNetworkReceiveBytesPerSecond | Figure::ContainerNetworkReceiveBytesPerSecond => "net rx",
        Figure::HostNetworkTransmitBytesPerSecond | Figure::ContainerNetworkTransmitBytesPerSecond => "net tx",
        Figure::HostUptimeSeconds => "uptime",
        Figure::ContainerMemoryLimitBytes => "memory limit",
        Figure::ContainerBlockReadBytesPerSecond => "block read",
        Figure::ContainerBlockWriteBytesPerSecond => "block write",
        Figure::ContainerRestarts => "restarts",
        Figure::ContainerHealthy => "healthy",
    }
}

/// How a subject is named in the table: `server`, `server app/service`,
/// `server mount`; escaped and bounded.
pub fn subject_name(s: &Subject) -> String {
    let mut name = term::field(&s.server).into_owned();
    match (&s.app, &s.service) {
        (Some(a), Some(svc)) => name.push_str(&format!(" {}/{}", term::field(a), term::field(svc))),
        (Some(a), None) => name.push_str(&format!(" {}", term::field(a))),
        (None, Some(svc)) => name.push_str(&format!(" {}", term::field(svc))),
        (None, None) => {}
    }
    if let Some(d) = &s.device {
        name.push_str(&format!(" {}", term::field(d)));
    }
    name
}

/// One server that could not be read, shown under the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub server: String,
    pub error: String,
}

/// The table: one row per subject and figure (servers first, then their
/// containers, each in figure order), with the newest value, the period's
/// minimum and maximum and a sparkline; servers that could not be read
/// follow, with why.
pub fn table(series: &[Series], period: &str, unread: &[Unread]) -> String {
    let mut rows: BTreeMap<(&str, bool, &Subject, Figure), &Series> = BTreeMap::new();
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        rows.insert((s.subject.server.as_str(), s.subject.app.is_some(), &s.subject, s.figure), s);
    }
    let names: Vec<String> = rows.keys().map(|k| subject_name(k.2)).collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max("SUBJECT".len());
    let mut text =
        format!("{:w$}  {:12}  {:>11}  {:>11}  {:>11}  LAST {period}\n", "SUBJECT", "FIGURE", "NOW", "MIN", "MAX");
    let mut last = String::new();
    for (name, ((_, _, _, figure), s)) in names.iter().zip(&rows) {
        let unit = figure.unit();
        let min = s.points.iter().map(|p| p.min).fold(f64::MAX, f64::min);
        let max = s.points.iter().map(|p| p.max).fold(f64::MIN, f64::max);
        let now = s.latest().map_or("-".into(), |v| human(v, unit));
        let avgs: Vec<f64> = s.points.iter().map(|p| p.avg).collect();
        let shown = if *name == last { String::new() } else { name.clone() };
        let pad = w.saturating_sub(shown.chars().count());
        text.push_str(&format!(
            "{shown}{:pad$}  {:12}  {now:>11}  {:>11}  {:>11}  {}\n",
            "",
            label(*figure),
            human(min, unit),
            human(max, unit),
            sparkline(&avgs, SPARK_WIDTH)
        ));
        last.clone_from(name);
    }
    if rows.is_empty() {
        text.push_str("(no figures in this period: run `tomo metrics collect`, or `tomo watch` collects them)\n");
    }
    for u in unread {
        text.push_str(&format!("{}: not read: {}\n", term::field(&u.server), term::line(&u.error)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::Point;

    fn subject(server: &str, app: Option<&str>, service: Option<&str>, device: Option<&str>) -> Subject {
        Subject {
            server: server.into(),
            app: app.map(Into::into),
            service: service.map(Into::into),
            device: device.map(Into::into),
        }
    }

    fn series(subject: Subject, figure: Figure, values: &[f64]) -> Series {
        let points = values.iter().enumerate().map(|(i, v)| Point::raw(1000 + 30 * i as i64, *v)).collect();
        Series { subject, figure, points }
    }

    #[test]
    fn sparkline_scales_between_min_and_max() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[5.0, 5.0, 5.0], 8), "▄▄▄");
        assert_eq!(sparkline(&[0.0, 0.0], 8), "▁▁");
        assert_eq!(sparkline(&[], 8), "");
        assert_eq!(sparkline(&[1.0, f64::NAN, 2.0], 8), "▁█");
        // Longer series are averaged into `width` buckets.
        let long: Vec<f64> = (0..100).map(|i| if i < 50 { 0.0 } else { 10.0 }).collect();
        assert_eq!(sparkline(&long, 4), "▁▁██");
        assert_eq!(sparkline(&long, 24).chars().count(), 24);
        let odd: Vec<f64> = (0..7).map(f64::from).collect();
        assert_eq!(sparkline(&odd, 3).chars().count(), 3);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(0.125, Unit::Ratio), "12.5%");
        assert_eq!(human(1.5, Unit::Ratio), "150.0%");
        assert_eq!(human(512.0, Unit::Bytes), "512 B");
        assert_eq!(human(1536.0, Unit::Bytes), "1.5 KiB");
        assert_eq!(human(3.0 * 1024.0 * 1024.0 * 1024.0, Unit::Bytes), "3.0 GiB");
        assert_eq!(human(2048.0, Unit::BytesPerSecond), "2.0 KiB/s");
        assert_eq!(human(0.5, Unit::Count), "0.5");
        assert_eq!(human(3.0, Unit::Count), "3");
        assert_eq!(human(1.25, Unit::Count), "1.25");
        assert_eq!(human(93784.0, Unit::Seconds), "1d 2h");
        assert_eq!(human(125.0, Unit::Seconds), "2m 5s");
        assert_eq!(human(f64::NAN, Unit::Bytes), "-");
    }

    #[test]
    fn table_rows_per_subject_and_figure() {
        let all = vec![
            series(subject("web1", Some("blog"), Some("db"), None), Figure::ContainerCpuRatio, &[0.5, 0.9]),
            series(subject("web1", None, None, None), Figure::HostCpuRatio, &[0.1, 0.2, 0.3]),
            series(subject("web1", None, None, Some("/")), Figure::HostFilesystemAvailBytes, &[2048.0]),
            series(subject("web1", None, None, None), Figure::HostMemoryUsedBytes, &[1024.0 * 1024.0]),
            series(subject("web1", None, None, None), Figure::HostLoad1, &[]),
        ];
        let t = table(&all, "6h", &[Unread { server: "web2".into(), error: "connection refused".into() }]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SUBJECT") && lines[0].ends_with("LAST 6h"), "{t}");
        // Host rows first (the server once), then mounts, then containers.
        assert!(lines[1].starts_with("web1 ") && lines[1].contains("cpu") && lines[1].contains("30.0%"), "{t}");
        assert!(lines[1].contains("10.0%") && lines[1].ends_with("▁▅█"), "{t}");
        assert!(lines[2].starts_with("     ") && lines[2].contains("memory") && lines[2].contains("1.0 MiB"), "{t}");
        assert!(lines[3].starts_with("web1 /") && lines[3].contains("disk avail") && lines[3].contains("2.0 KiB"));
        assert!(lines[4].starts_with("web1 blog/db") && lines[4].contains("90.0%"), "{t}");
        assert_eq!(lines[5], "web2: not read: connection refused");
        assert_eq!(lines.len(), 6, "{t}");
        assert!(!t.contains("load1"), "a figure without points has no row: {t}");
    }

    #[test]
    fn table_escapes_server_names_and_says_when_empty() {
        let evil = series(subject("web1", Some("a\u{1b}[31m"), Some("s"), None), Figure::ContainerRestarts, &[1.0]);
        let t = table(&[evil], "1h", &[]);
        assert!(!t.contains('\u{1b}') && t.contains("a\\u{1b}[31m/s"), "{t}");
        assert!(table(&[], "1h", &[]).contains("no figures"));
    }
}
