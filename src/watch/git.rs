//! `--git-pull`: fast-forward the manifest repository from a remote or URL
//! with the git CLI (arguments passed as a list, never through a shell).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Input;
use crate::error::{Result, Usage};

/// Refuses a remote that git would read as an option.
pub fn check_remote(remote: &str) -> Result<()> {
    if remote.is_empty() || remote.starts_with('-') {
        return Err(
            Usage::invalid("--git-pull", remote, "give a remote name (e.g. origin) or a URL, not an option").into()
        );
    }
    Ok(())
}

/// A remote as it may be logged: a URL's `user:password@` becomes `***@`.
fn shown(remote: &str) -> String {
    match (remote.find("://"), remote.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &remote[..scheme + 3], &remote[at..]),
        _ => remote.to_string(),
    }
}

/// Pulls every `interval`; tells the loop when new commits arrived.
pub async fn pull_every(dir: PathBuf, remote: String, interval: Duration, tx: mpsc::UnboundedSender<Input>) {
    let mut tick = tokio::time::interval(interval);
    let (secret, logged) = (remote.clone(), shown(&remote));
    let remote = logged.as_str();
    loop {
        tick.tick().await;
        match pull(&dir, &secret).await.map_err(|e| e.replace(&secret, remote)) {
            Ok(true) => {
                tracing::info!(remote, "git pull brought new commits");
                if tx.send(Input::Pulled).is_err() {
                    return;
                }
            }
            Ok(false) => tracing::debug!(remote, "git pull: up to date"),
            Err(e) => tracing::warn!(remote, "git pull failed: {e}"),
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

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_a_remote_url_are_not_shown() {
        assert_eq!(super::shown("https://me:tok3n@git.example/fleet.git"), "https://***@git.example/fleet.git");
        assert_eq!(super::shown("origin"), "origin");
        assert_eq!(super::shown("git@github.com:me/fleet.git"), "git@github.com:me/fleet.git");
    }
}
