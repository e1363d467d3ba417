//! An app's `backup.pre` hook: before its data on a server is copied, the
//! command runs in the named service's running container there (through
//! the Engine's exec API); a failure or non-zero exit fails the app's backup
//! with the command's last output lines, secrets masked.

use std::time::Instant;

use super::Engine;
use super::appdata::data_error;
use super::ops::AppContainer;
use crate::error::Result;
use crate::model::App;
use crate::model::backup::PreHook;
use crate::transport::docker::DockerClient;

/// Output lines a failed hook's error shows.
const LAST_LINES: usize = 10;

impl Engine {
    /// Runs the app's `pre` hook (if any) on `server`; returns how long it took.
    pub(super) async fn run_pre_hook(
        &self,
        app: &App,
        server: &str,
        client: &DockerClient,
        containers: &[AppContainer],
    ) -> Result<Option<u64>> {
        let Some(hook) = app.backup.as_ref().and_then(|b| b.pre.as_ref()) else {
            return Ok(None);
        };
        let name = app.name.as_str();
        let what = format!("the backup `pre` hook in service `{}`", hook.service);
        let Some(target) = containers.iter().find(|c| c.service == hook.service.as_str() && c.state == "running")
        else {
            return Err(data_error(name, server, format!("{what}: the service has no running container")));
        };
        let t = Instant::now();
        let outcome = client.exec(&target.id, &hook.command, hook.timeout.to_std()).await;
        let masker = self.masker(name)?;
        let failed = match outcome {
            Ok(o) if o.exit_code == Some(0) => None,
            Ok(o) => {
                let code = o.exit_code.map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}"));
                Some(format!("{what} failed ({code}){}", last_lines(&masker.apply(&o.output))))
            }
            Err(e) => Some(format!("{what}: {}", masker.apply(&e.to_string()))),
        };
        if let Some(problem) = failed {
            tracing::warn!(app = name, server, error = %problem, "backup pre hook failed");
            return Err(data_error(name, server, problem));
        }
        let ms = t.elapsed().as_millis() as u64;
        tracing::info!(app = name, server, command = %command_text(hook), ms, "backup pre hook done");
        Ok(Some(ms))
    }
}

/// `: last output lines:\n  …` (nothing when there was no output).
fn last_lines(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(LAST_LINES)..];
    format!("; its last output:\n  {}", tail.join("\n  "))
}

fn command_text(hook: &PreHook) -> String {
    hook.command.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_hook_shows_its_last_ten_lines() {
        let out: String = (1..=15).map(|i| format!("line {i}\n")).collect();
        let shown = last_lines(&out);
        assert!(shown.starts_with("; its last output:\n  line 6\n"), "{shown}");
        assert!(shown.ends_with("line 15"), "{shown}");
        assert!(!shown.contains("line 5\n"), "{shown}");
        assert_eq!(last_lines("\n \n"), "");
    }
}
