//! Metric alerts: the small expression language of `Settings.metrics.alerts`
//! (`FIGURE OP VALUE[unit|%] [in WINDOW]`, e.g. `disk_used > 90%`,
//! `memory_available < 256m`, `container_restarts > 3 in 10m`), parsed once
//! into an `AlertRule`, and the state of an alert. Pure.

use serde::{Deserialize, Serialize};

use super::metrics::{Figure, Subject, Unit};
use super::values::{ByteSize, Duration};

/// The comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Cmp {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Cmp {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Gt => value > threshold,
            Cmp::Ge => value >= threshold,
            Cmp::Lt => value < threshold,
            Cmp::Le => value <= threshold,
        }
    }

    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            _ => return None,
        })
    }
}

/// What a rule's value is compared with: the figure itself, or (`%`) its
/// share of a whole (a filesystem's size, the memory, a container's limit;
/// a ratio figure times 100).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    Absolute(f64),
    Percent(f64),
}

/// One parsed alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertRule {
    /// As written, which also names the alert.
    pub text: String,
    pub figure: Figure,
    pub op: Cmp,
    pub threshold: Threshold,
    /// `in WINDOW`: a counter's increase over the window (restarts), or for
    /// any other figure the condition holding at every sample of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

/// An alert firing for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertState {
    /// The rule as written.
    pub rule: String,
    pub subject: Subject,
    /// The value compared (a percentage for `%` rules).
    pub value: f64,
    /// Unix seconds when it began firing.
    pub since: i64,
}

/// A change of an alert after a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertChange {
    Fired(AlertState),
    Cleared(AlertState),
}

/// Short names users may write for figures, besides the full names.
const ALIASES: &[(&str, Figure)] = &[
    ("cpu", Figure::HostCpuRatio),
    ("load1", Figure::HostLoad1),
    ("load5", Figure::HostLoad5),
    ("load15", Figure::HostLoad15),
    ("memory_used", Figure::HostMemoryUsedBytes),
    ("memory_available", Figure::HostMemoryAvailableBytes),
    ("swap_used", Figure::HostSwapUsedBytes),
    ("disk_used", Figure::HostFilesystemUsedBytes),
    ("disk_free", Figure::HostFilesystemAvailBytes),
    ("disk_avail", Figure::HostFilesystemAvailBytes),
    ("net_rx", Figure::HostNetworkReceiveBytesPerSecond),
    ("net_tx", Figure::HostNetworkTransmitBytesPerSecond),
    ("container_cpu", Figure::ContainerCpuRatio),
    ("container_memory", Figure::ContainerMemoryBytes),
    ("container_restarts", Figure::ContainerRestarts),
    ("container_healthy", Figure::ContainerHealthy),
];

/// The figure a user's name means (a short alias or a full name).
pub fn figure_named(s: &str) -> Option<Figure> {
    ALIASES.iter().find(|(a, _)| *a == s).map(|(_, f)| *f).or_else(|| Figure::parse(s))
}

/// The figure a `%` rule of `figure` is a share of, with the figure itself
/// (`used / (used + avail)`); `None` for a ratio figure (value × 100), or
/// `Err` when `%` means nothing for it.
pub fn percent_of(figure: Figure) -> Result<Option<Figure>, String> {
    Ok(Some(match figure {
        Figure::HostFilesystemUsedBytes => Figure::HostFilesystemAvailBytes,
        Figure::HostFilesystemAvailBytes => Figure::HostFilesystemUsedBytes,
        Figure::HostMemoryUsedBytes => Figure::HostMemoryAvailableBytes,
        Figure::HostMemoryAvailableBytes => Figure::HostMemoryUsedBytes,
        Figure::ContainerMemoryBytes => Figure::ContainerMemoryLimitBytes,
        f if f.unit() == Unit::Ratio => return Ok(None),
        f => return Err(format!("`%` has no meaning for `{}`; give a plain value", f.name())),
    }))
}

impl AlertRule {
    /// Parses `FIGURE OP VALUE[unit|%] [in WINDOW]`.
    pub fn parse(text: &str) -> Result<AlertRule, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (figure, op, value, window) = match words.as_slice() {
            [f, op, v] => (*f, *op, *v, None),
            [f, op, v, "in", w] => (*f, *op, *v, Some(*w)),
            _ => {
                return Err(format!(
                    "`{}` is not an alert; write `FIGURE OP VALUE [in WINDOW]`",
                    text.escape_default()
                ));
            }
        };
        let figure = figure_named(figure).ok_or_else(|| {
            let names: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
            format!(
                "unknown figure `{}`; use one of {} or a full figure name",
                figure.escape_default(),
                names.join(", ")
            )
        })?;
        let op =
            Cmp::parse(op).ok_or_else(|| format!("unknown operator `{}`; use >, >=, < or <=", op.escape_default()))?;
        let threshold = match value.strip_suffix('%') {
            Some(p) => {
                percent_of(figure)?;
                let n: f64 = p.parse().map_err(|_| format!("`{}` is not a percentage", value.escape_default()))?;
                if !(0.0..=100.0).contains(&n) && figure.unit() != Unit::Ratio {
                    return Err(format!("`{value}` is not a percentage from 0 to 100"));
                }
                Threshold::Percent(n)
            }
            None => Threshold::Absolute(parse_value(figure, value)?),
        };
        let window = window.map(Duration::parse).transpose()?;
        if window.is_some_and(|w| w.as_millis() < 1000) {
            return Err("the window must be at least 1s".into());
        }
        Ok(AlertRule { text: words.join(" "), figure, op, threshold, window })
    }
}

fn parse_value(figure: Figure, v: &str) -> Result<f64, String> {
    if let Ok(n) = v.parse::<f64>()
        && n.is_finite()
    {
        return Ok(n);
    }
    match figure.unit() {
        Unit::Bytes | Unit::BytesPerSecond => ByteSize::parse(v).map(|b| b.bytes() as f64),
        Unit::Seconds => Duration::parse(v).map(|d| d.as_millis() as f64 / 1000.0),
        _ => Err(format!("`{}` is not a number", v.escape_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_parse() {
        let r = AlertRule::parse("disk_used > 90%").unwrap();
        assert_eq!(
            (r.figure, r.op, r.threshold, r.window),
            (Figure::HostFilesystemUsedBytes, Cmp::Gt, Threshold::Percent(90.0), None)
        );
        let r = AlertRule::parse("memory_available < 256m").unwrap();
        assert_eq!(r.threshold, Threshold::Absolute(256.0 * 1024.0 * 1024.0));
        let r = AlertRule::parse("container_restarts  >  3 in 10m").unwrap();
        assert_eq!(
            (r.figure, r.threshold, r.window),
            (Figure::ContainerRestarts, Threshold::Absolute(3.0), Some(Duration::from_secs(600)))
        );
        assert_eq!(r.text, "container_restarts > 3 in 10m");
        assert_eq!(AlertRule::parse("cpu >= 80%").unwrap().threshold, Threshold::Percent(80.0));
    }

    #[test]
    fn bad_rules_say_why() {
        for (text, says) in [
            ("disk_full > 9", "unknown figure"),
            ("disk_used => 9", "unknown operator"),
            ("load1 > 9%", "no meaning"),
            ("disk_used > 190%", "0 to 100"),
            ("memory_available < lots", "not a size"),
            ("container_restarts > 3 in soon", "duration"),
            ("disk_used >", "not an alert"),
            ("", "not an alert"),
        ] {
            let e = AlertRule::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn comparisons() {
        assert!(Cmp::Gt.holds(2.0, 1.0) && !Cmp::Gt.holds(1.0, 1.0) && Cmp::Ge.holds(1.0, 1.0));
        assert!(Cmp::Lt.holds(0.0, 1.0) && Cmp::Le.holds(1.0, 1.0) && !Cmp::Lt.holds(1.0, 1.0));
    }
}
