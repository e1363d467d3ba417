//! The conversion report: what became of every compose key, per service.

use serde::Serialize;

/// What import did with one compose key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Carried over with the same meaning (perhaps under tomo's spelling).
    Mapped,
    /// Carried over, but written differently or with a different effect; the
    /// note says what and why.
    Changed,
    /// Not carried over: the manifest cannot express it. Import fails
    /// (exit 1) unless `--lossy`.
    Dropped,
    /// Left out on purpose because it has no effect on containers (`x-*`
    /// extensions, the obsolete `version`); never a reason to fail.
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Mapped => "mapped",
            Status::Changed => "changed",
            Status::Dropped => "dropped",
            Status::Ignored => "ignored",
        }
    }
}

/// One line of the report. `service` is the compose service name, empty for
/// the file's top-level keys; `key` is the compose key (dotted below it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub service: String,
    pub key: String,
    pub status: Status,
    pub note: String,
}

/// Counts of a report, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub mapped: usize,
    pub changed: usize,
    pub dropped: usize,
    pub ignored: usize,
}

pub fn counts(report: &[Entry]) -> Counts {
    let mut c = Counts::default();
    for e in report {
        match e.status {
            Status::Mapped => c.mapped += 1,
            Status::Changed => c.changed += 1,
            Status::Dropped => c.dropped += 1,
            Status::Ignored => c.ignored += 1,
        }
    }
    c
}

/// The report as aligned text, one key a line: `SERVICE KEY STATUS NOTE`.
pub fn text(report: &[Entry]) -> String {
    let service = |e: &Entry| if e.service.is_empty() { "(app)".to_string() } else { e.service.clone() };
    let w_service = report.iter().map(|e| service(e).chars().count()).max().unwrap_or(0).max(7);
    let w_key = report.iter().map(|e| e.key.chars().count()).max().unwrap_or(0).max(3);
    let mut out = format!("{:<w_service$}  {:<w_key$}  {:<7}  NOTE\n", "SERVICE", "KEY", "STATUS");
    for e in report {
        let line = format!("{:<w_service$}  {:<w_key$}  {:<7}  {}", service(e), e.key, e.status.as_str(), e.note);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let c = counts(report);
    out.push_str(&format!(
        "{} mapped, {} changed, {} dropped, {} ignored\n",
        c.mapped, c.changed, c.dropped, c.ignored
    ));
    out
}
