//! `tomo history APP` (an app's releases) and `tomo rollback APP [--to N]`
//! (a release written back with its images pinned by digest).

use clap::Args;

use super::access::local_admin;
use super::apps::submitted_text;
use super::{out, out_json, runtime};
use crate::engine::{Engine, Release};
use crate::error::Result;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The app's name
    pub app: String,
    /// How many releases to list, newest first
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print the releases as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app's name
    pub app: String,
    /// The release to go back to (`tomo history APP`); by default the newest successful one before the last
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<i64>,
}

pub fn history(engine: &Engine, a: &HistoryArgs) -> Result<i32> {
    let releases = engine.releases(&a.app, a.limit)?;
    if releases.is_empty() {
        // An app never applied: say so, or that there is no such app.
        let desired = engine.desired()?;
        engine.app(&desired, &a.app)?;
    }
    if a.json {
        out_json(&serde_json::to_string_pretty(&releases).expect("JSON"))?;
    } else {
        out(&history_text(&a.app, &releases))?;
    }
    Ok(0)
}

pub fn rollback(engine: &Engine, a: &RollbackArgs) -> Result<i32> {
    let submitted = runtime()?.block_on(engine.rollback_release(&a.app, a.to, &local_admin()))?;
    out(&submitted_text(&submitted))?;
    Ok(0)
}

/// One block per release: number, time, who, outcome, revision, changes,
/// then each service's image and the digest it ran.
fn history_text(app: &str, releases: &[Release]) -> String {
    use crate::term::line;
    if releases.is_empty() {
        return format!("app {}: no release yet (none of its applies changed it)\n", line(app));
    }
    let mut s = String::new();
    for r in releases {
        let commit =
            r.git_commit.as_deref().map(|c| format!(" commit {}", crate::term::head(c, 12))).unwrap_or_default();
        s.push_str(&format!(
            "#{} {} {} by {} ({}) revision {}{commit}\n    {}\n",
            r.number,
            line(&r.at),
            r.outcome.as_str(),
            line(&r.actor),
            line(&r.source),
            r.revision,
            line(&r.changes)
        ));
        for i in &r.services {
            let digest = i.digest.as_deref().unwrap_or("no registry digest");
            s.push_str(&format!(
                "    {} @{}: {} = {}\n",
                line(&i.service),
                line(&i.server),
                line(&i.image),
                line(digest)
            ));
        }
    }
    s
}
