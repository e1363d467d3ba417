//! tomo's own events as stored rows (`tomo logs --system`, `logs_system`):
//! the level, and a row as read back.

use serde::{Deserialize, Serialize};

/// How serious an event is, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 4] = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// The level of a word (`warning` is `warn`), case-insensitive.
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogLevel::parse(s).ok_or_else(|| format!("`{s}` is not a level (debug, info, warn, error)"))
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogRow {
    pub id: i64,
    /// RFC 3339 UTC.
    pub at: String,
    pub level: LogLevel,
    /// What wrote it: `apply`, `watch`, `serve`, `store`, `metrics`, or a module path.
    pub source: String,
    pub message: String,
    /// Structured detail (a JSON object), secrets masked.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// One line of an app's container log, as `tomo logs APP` and `logs_app` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppLogLine {
    /// The Engine's timestamp (RFC 3339 UTC, nanoseconds always 9 digits, so
    /// text order is time order); empty when the Engine gave none.
    pub at: String,
    pub server: String,
    pub service: String,
    pub container: String,
    /// The line, secret values masked.
    pub text: String,
}

/// Splits the Engine's timestamp off a log line (`2026-01-02T03:04:05.5Z text`)
/// and pads its fraction to 9 digits; a line without one keeps its text.
pub fn split_timestamp(line: &str) -> (String, &str) {
    let Some((stamp, rest)) = line.split_once(' ') else {
        return if looks_like_stamp(line) { (fixed(line), "") } else { (String::new(), line) };
    };
    if looks_like_stamp(stamp) { (fixed(stamp), rest) } else { (String::new(), line) }
}

fn looks_like_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b.len() <= 40
        && b[4] == b'-'
        && b[10] == b'T'
        && s.ends_with('Z')
        && b[..4].iter().all(u8::is_ascii_digit)
}

fn fixed(stamp: &str) -> String {
    let body = &stamp[..stamp.len() - 1];
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac: String = frac.chars().filter(char::is_ascii_digit).take(9).collect();
    format!("{secs}.{frac:0<9}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_off_and_order_as_text() {
        let (a, t) = split_timestamp("2026-12-02T21:00:00.5Z hello world");
        assert_eq!((a.as_str(), t), ("2026-12-02T21:00:00.500000000Z", "hello world"));
        let (b, _) = split_timestamp("2026-12-02T21:00:00.123456789Z x");
        assert!(a > b);
        let (c, _) = split_timestamp("2026-12-02T21:00:01Z");
        assert_eq!(c, "2026-12-02T21:00:01.000000000Z");
        assert_eq!(split_timestamp("no stamp here"), (String::new(), "no stamp here"));
        assert_eq!(split_timestamp(""), (String::new(), ""));
        assert_eq!(split_timestamp("é"), (String::new(), "é"));
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(LogLevel::parse("WARNING"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("nonsense"), None);
        assert!(LogLevel::Error > LogLevel::Warn && LogLevel::Warn > LogLevel::Info);
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::parse(l.as_str()), Some(l));
        }
    }
}
