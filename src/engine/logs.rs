//! Logs: an app's container logs as lines (`tomo logs APP`, `logs_app`),
//! streamed from every container of the app at once, each line's secret
//! values masked before a `--grep` pattern sees it; tomo's own stored events
//! (`tomo logs --system`, `logs_system`); and purging stored rows (admin,
//! audited).

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{AuditEvent, AuditResult, Engine, PerServer};
use crate::auth::Identity;
use crate::error::{Result, Usage};
use crate::model::logs::{AppLogLine, LogLevel, LogRow, split_timestamp};
use crate::store::LogQuery;

/// The longest `--grep` pattern, and the most memory its compiled form may take.
const MAX_PATTERN: usize = 1000;
const REGEX_SIZE: usize = 1 << 20;
/// The longest line kept whole (longer ones are cut).
const MAX_LINE: usize = 16 * 1024;

/// Which app log lines to read.
#[derive(Debug, Clone, Default)]
pub struct AppLogsRequest {
    pub app: String,
    pub service: Option<String>,
    /// Only lines of the last this many seconds.
    pub since_secs: Option<u64>,
    /// The last this many lines of each container (all when `None`).
    pub tail: Option<u32>,
    /// Keep streaming new lines until the containers stop.
    pub follow: bool,
    /// Only lines (masked) matching this regular expression.
    pub grep: Option<String>,
}

/// Which stored events to read.
#[derive(Debug, Clone, Default)]
pub struct SystemLogsRequest {
    pub since_secs: Option<u64>,
    pub min_level: Option<LogLevel>,
    pub grep: Option<String>,
    pub limit: Option<u32>,
}

/// What to purge.
#[derive(Debug, Clone, Default)]
pub struct PurgeRequest {
    /// Rows older than this many seconds (all when `None`).
    pub before_secs: Option<u64>,
    /// tomo's own events (`logs`).
    pub system: bool,
    /// Stored metric samples.
    pub metrics: bool,
}

/// How many rows a purge deleted.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Purged {
    pub system_rows: u64,
    pub metric_rows: u64,
}

/// The unix second before which metric rows go: `before_secs` ago, or
/// everything (the far future) when it is `None`.
fn metrics_cutoff(before_secs: Option<u64>) -> i64 {
    match before_secs {
        Some(s) => (super::metrics::now_ms() / 1000).saturating_sub(i64::try_from(s).unwrap_or(i64::MAX)),
        None => i64::MAX,
    }
}

/// A `--grep` pattern compiled with bounded size (a usage error when bad).
pub fn log_filter(arg: &str, pattern: &str) -> Result<regex::Regex> {
    if pattern.len() > MAX_PATTERN {
        let head: String = pattern.chars().take(40).collect();
        return Err(Usage::invalid(arg, format!("{head}…"), "longer than 1000 bytes").into());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| Usage::invalid(arg, pattern, e.to_string().lines().last().unwrap_or("not a pattern")).into())
}

/// Splits a container's log bytes into lines, keeping a partial last line
/// for the next chunk.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            out.push(text_of(&line[..i]));
        }
        if self.partial.len() > MAX_LINE {
            out.push(text_of(&std::mem::take(&mut self.partial)));
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| text_of(&std::mem::take(&mut self.partial)))
    }
}

fn text_of(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let end = bytes.len().min(MAX_LINE);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Engine {
    /// Streams the app's container log lines into `tx`, masked and filtered,
    /// until every container's log ends (at once without `follow`; when the
    /// container stops with it) or `tx` is closed. Lines of one container
    /// come in order; the caller interleaves containers by `at`.
    pub async fn stream_app_logs(
        &self,
        req: &AppLogsRequest,
        tx: mpsc::Sender<AppLogLine>,
    ) -> Result<Vec<PerServer<u64>>> {
        let filter = req.grep.as_deref().map(|p| log_filter("--grep", p)).transpose()?.map(Arc::new);
        self.app(&self.desired()?, &req.app)?;
        let masker = Arc::new(self.masker(&req.app)?);
        let since = req.since_secs.map_or(0, |s| (crate::auth::now_unix() - s.min(i64::MAX as u64 / 2) as i64).max(1));
        let (tail, follow) = (req.tail, req.follow);
        self.on_app_containers(&req.app, req.service.as_deref(), |client, c| {
            let (masker, filter, tx) = (masker.clone(), filter.clone(), tx.clone());
            async move {
                let mut stream = Box::pin(client.log_stream(&c.id, tail, since, follow).map_err(|e| e.to_string())?);
                let mut lines = Lines::default();
                let mut sent = 0u64;
                let emit = |text: String| {
                    let (at, rest) = split_timestamp(&text);
                    let masked = masker.apply(rest);
                    let keep = filter.as_ref().is_none_or(|f| f.is_match(&masked));
                    keep.then(|| AppLogLine {
                        at,
                        server: c.server.clone(),
                        service: c.service.clone(),
                        container: c.container.clone(),
                        text: masked,
                    })
                };
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| e.to_string())?;
                    for line in lines.push(&chunk).into_iter().filter_map(&emit) {
                        if tx.send(line).await.is_err() {
                            return Ok(sent);
                        }
                        sent += 1;
                    }
                }
                if let Some(line) = lines.finish().and_then(&emit) {
                    let _ = tx.send(line).await;
                    sent += 1;
                }
                Ok(sent)
            }
        })
        .await
    }

    /// The app's log lines now (no follow), interleaved by time, at most
    /// `max_bytes` of text (the newest kept); `true` when lines were left out.
    pub async fn app_log_lines(
        &self,
        req: &AppLogsRequest,
        max_bytes: usize,
    ) -> Result<(Vec<AppLogLine>, bool, Vec<PerServer<u64>>)> {
        let req = AppLogsRequest { follow: false, ..req.clone() };
        let (tx, mut rx) = mpsc::channel(1024);
        let collect = async move {
            let mut all = Vec::new();
            while let Some(l) = rx.recv().await {
                all.push(l);
            }
            all
        };
        let (per, mut lines) = tokio::join!(self.stream_app_logs(&req, tx), collect);
        let per = per?;
        lines.sort_by(|a, b| a.at.cmp(&b.at));
        let mut size = 0usize;
        let keep = lines.iter().rev().take_while(|l| {
            size += l.text.len() + l.service.len() + 3;
            size <= max_bytes
        });
        let kept = keep.count();
        let truncated = kept < lines.len();
        let lines = lines.split_off(lines.len() - kept);
        Ok((lines, truncated, per))
    }

    /// tomo's own stored events, oldest first.
    pub fn system_logs(&self, req: &SystemLogsRequest) -> Result<Vec<LogRow>> {
        let filter = req.grep.as_deref().map(|p| log_filter("--grep", p)).transpose()?;
        let q = LogQuery { since_secs: req.since_secs, min_level: req.min_level, source: None, limit: None };
        let mut rows = self.store()?.logs(&q)?;
        if let Some(f) = filter {
            rows.retain(|r| f.is_match(&r.message) || f.is_match(&r.source));
        }
        if let Some(limit) = req.limit {
            let drop = rows.len().saturating_sub(limit as usize);
            rows.drain(..drop);
        }
        Ok(rows)
    }

    /// Deletes stored rows; audited. Front ends let only admins call it
    /// (the CLI is the local operator; MCP's `logs_purge` needs Admin).
    pub fn purge(&self, who: &Identity, req: &PurgeRequest) -> Result<Purged> {
        let args = serde_json::json!({
            "before_secs": req.before_secs, "system": req.system, "metrics": req.metrics,
        });
        let store = self.store()?;
        let mut out = Purged::default();
        let done = (|| -> Result<()> {
            if req.system {
                out.system_rows = store.purge_logs(req.before_secs)?;
            }
            if req.metrics {
                out.metric_rows = store.purge_metrics(metrics_cutoff(req.before_secs))? as u64;
            }
            Ok(())
        })();
        let detail = format!("{} event row(s), {} metric row(s) deleted", out.system_rows, out.metric_rows);
        let result = if done.is_ok() { AuditResult::Ok } else { AuditResult::Error };
        self.audit(who, AuditEvent::new("logs", "purge").arguments(args).result(result).detail(&detail));
        done?;
        super::syslog::record(
            LogLevel::Info,
            "logs",
            &format!("purge by {}: {detail}", who.user),
            serde_json::json!({}),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_long_ones_are_cut() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"a\r\nb"), ["a"]);
        assert_eq!(l.push(b"c\nd"), ["bc"]);
        assert_eq!(l.finish().as_deref(), Some("d"));
        assert_eq!(l.finish(), None);
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(l.push(&long)[0].len(), MAX_LINE);
    }

    #[test]
    fn patterns_are_bounded_and_bad_ones_are_usage_errors() {
        assert!(log_filter("--grep", "err(or)?").unwrap().is_match("an error"));
        assert!(matches!(log_filter("--grep", "(unclosed"), Err(crate::error::Error::Usage(_))));
        assert!(log_filter("--grep", &"a".repeat(2000)).is_err());
        assert!(log_filter("--grep", "x{1000}{1000}").is_err());
    }
}
