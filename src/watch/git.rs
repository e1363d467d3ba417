//! `--git-pull`: fast-forward the manifest repository from a remote or URL
//! with the git CLI (arguments passed as a list, never through a shell).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Input;
use crate::error::{Error, Result};

/// Refuses a remote that git would read as an option.
pub fn check_remote(remote: &str) -> Result<()> {
    if remote.is_empty() || remote.starts_with('-') {
        return Err(Error::Usage(format!(
            "--git-pull `{remote}`: give a remote name (e.g. origin) or a URL, not an option"
        )));
    }
    Ok(())
}

/// Pulls every `interval`; tells the loop when new commits arrived.
pub async fn pull_every(dir: PathBuf, remote: String, interval: Duration, tx: mpsc::UnboundedSender<Input>) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match pull(&dir, &remote).await {
            Ok(true) => {
                tracing::info!(remote = %remote, "git pull brought new commits");
                if tx.send(Input::Pulled).is_err() {
                    return;
                }
            }
            Ok(false) => tracing::debug!(remote = %remote, "git pull: up to date"),
            Err(e) => tracing::warn!(remote = %remote, "git pull failed: {e}"),
        }
    }
}

/// `git pull --ff-only REMOTE` in `dir`; whether HEAD moved.
async fn pull(dir: &std::path::Path, remote: &str) -> std::result::Result<bool, String> {
    let head = || async {
        let out = tokio::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .await
            .map_err(|e| format!("cannot run git: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let before = head().await?;
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["pull", "--ff-only", "--quiet", remote])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(head().await? != before)
}
