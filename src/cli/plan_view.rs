//! Apply progress (indicatif on a terminal, a line per action otherwise) and
//! the apply report, for people. Plans and status as text are the engine's `plan_text` and `status_text`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::engine::{Action, ApplyReport, ApplySink, Outcome, Plan};
pub use crate::engine::{plan_text as plan, status_text as status};

/// Apply progress: a progress bar on a terminal (indicatif), one line per
/// finished action otherwise, nothing when quiet (`--json`).
pub struct LineSink {
    total: AtomicUsize,
    done: AtomicUsize,
    quiet: bool,
    /// Made once the plan is accepted (never over a confirmation prompt).
    bar: OnceLock<indicatif::ProgressBar>,
}

impl LineSink {
    /// A sink for `total` actions; with `total` 0, call `begin` once known.
    pub fn new(total: usize, quiet: bool) -> LineSink {
        let sink = LineSink { total: AtomicUsize::new(0), done: AtomicUsize::new(0), quiet, bar: OnceLock::new() };
        if total > 0 {
            sink.begin(total);
        }
        sink
    }

    /// Starts showing progress for `total` actions.
    pub fn begin(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        if !self.quiet && total > 0 && std::io::stdout().is_terminal() {
            self.bar.get_or_init(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed:>4} {wide_msg}")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
        }
    }

    /// Clears the progress bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

impl ApplySink for LineSink {
    fn started(&self, a: &Action) {
        if let Some(b) = self.bar.get() {
            b.set_message(
                crate::term::line(&format!("{} {} on {}", a.op.verb(), a.op.object(), a.server)).into_owned(),
            );
        }
    }

    fn finished(&self, a: &Action, outcome: &Outcome, elapsed: Duration) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.quiet {
            return;
        }
        let status = match outcome {
            Outcome::Succeeded => format!("done in {:.2}s", elapsed.as_secs_f64()),
            Outcome::Failed(e) => format!("FAILED: {e}"),
            Outcome::Skipped(why) => format!("skipped: {why}"),
        };
        let total = self.total.load(Ordering::Relaxed);
        let line =
            format!("[{done}/{total}] {} {} {} on {}: {status}", a.op.symbol(), a.op.verb(), a.op.object(), a.server);
        let line = format!("{}\n", crate::term::line(&line));
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

pub fn report(p: &Plan, r: &ApplyReport) -> String {
    let mut out = format!(
        "Apply {}: {} succeeded, {} failed, {} skipped in {:.2}s",
        if r.succeeded() { "complete" } else { "failed" },
        r.count("succeeded"),
        r.count("failed"),
        r.count("skipped"),
        r.elapsed_ms as f64 / 1000.0
    );
    if let Some(id) = r.run_id {
        out.push_str(&format!(" (run {id})"));
    }
    out.push_str(".\n");
    for res in &r.results {
        if let Outcome::Failed(e) = &res.outcome {
            let a = &p.actions[res.id];
            let line = format!("  failed: {} {} on {}: {e}", a.op.verb(), a.op.object(), a.server);
            out.push_str(&format!("{}\n", crate::term::line(&line)));
        }
    }
    for r in &r.rolling {
        out.push_str(&format!("  {}\n", crate::term::line(&r.describe())));
    }
    if !p.conflicts.is_empty() {
        out.push_str(&format!("  {} conflict(s) were left alone; see `tomo plan`.\n", p.conflicts.len()));
    }
    for (s, why) in &p.unreachable {
        out.push_str(&format!("{}\n", crate::term::line(&format!("  server {s} was not reached: {why}"))));
    }
    out
}
