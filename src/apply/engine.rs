//! Carrying out a Docker Engine action (`plan::docker`): its steps in
//! order over the server's connection, the first failure ending it. A
//! package manager's step that finds its lock held by another process is
//! tried again with backoff, then fails saying so; the socket is awaited by
//! a bounded poll with backoff (nothing announces it), and a daemon that
//! does not come up fails with what its service manager says of it; the
//! Engine's version is checked against the constraint at the end.

use std::time::Duration;

use crate::model::host::command_line;
use crate::plan::docker::{EngineAction, Step, package_locked, service_status};
use crate::transport::engine::EngineApi;
use crate::transport::ssh::ExecOutput;

/// A package manager's command may download and install for this long.
const PACKAGE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Any other command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Tries of a package step whose lock is held (delays 1, 2, 4, 8, 16 s).
const LOCK_ATTEMPTS: u32 = 6;
/// How long the socket may take to appear after the service started.
const SOCKET_WAIT: Duration = Duration::from_secs(60);
/// The most text of a command's output a failure quotes.
const QUOTED: usize = 1500;

/// The waits of an Engine action.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// The first delay before a locked package step is tried again (doubling).
    lock_first: Duration,
    /// The first delay between looks for the socket (doubling, at most 5s).
    poll_first: Duration,
    /// How long the socket may take to appear.
    socket_wait: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            lock_first: crate::faults::backoff(Duration::from_secs(1)),
            poll_first: crate::faults::backoff(Duration::from_millis(100)),
            socket_wait: SOCKET_WAIT,
        }
    }
}

pub(super) async fn execute<E: EngineApi>(c: &E, action: &EngineAction) -> Result<Option<String>, String> {
    execute_with(c, action, Timing::default()).await
}

async fn execute_with<E: EngineApi>(c: &E, action: &EngineAction, t: Timing) -> Result<Option<String>, String> {
    for step in &action.steps {
        match step {
            Step::Run { argv, sudo, package } => run(c, argv, *sudo, *package, t).await?,
            Step::WaitSocket { path, status, sudo } => wait_socket(c, path, status, *sudo, t).await?,
            Step::Verify { version, sudo } => verify(c, version.as_ref(), *sudo).await?,
        }
    }
    Ok(None)
}

/// The end of a command's output (its stderr, or else its stdout), bounded.
fn tail(out: &ExecOutput) -> String {
    let text = if out.stderr.trim().is_empty() { &out.stdout } else { &out.stderr };
    quote(text)
}

/// The end of `text`, bounded, to follow a colon: one line stays inline
/// (after a space); several follow as indented lines of their own, each
/// escaped (never a `\n` shown escaped).
fn quote(text: &str) -> String {
    let text = text.trim();
    let start = text.char_indices().rev().nth(QUOTED).map_or(0, |(i, _)| i);
    let text = text[start..].trim();
    if !text.contains('\n') {
        return format!(" {}", crate::term::line(text));
    }
    text.lines().map(|l| format!("\n    {}", crate::term::line(l.trim_end()))).collect()
}

/// What the service manager says of the daemon: `status` run, its output quoted.
async fn status_said<E: EngineApi>(c: &E, status: &[String], sudo: bool) -> String {
    let said = match c.host_command(status, sudo, COMMAND_TIMEOUT).await {
        Ok(out) => quote(&format!("{}\n{}", out.stdout.trim(), out.stderr.trim())),
        Err(e) => quote(&e.to_string()),
    };
    format!("`{}` says:{said}", command_line(status, sudo))
}

/// Whether `sudo -n` refused for want of a password (or of a rule).
fn sudo_refused(out: &ExecOutput) -> bool {
    out.stderr.contains("sudo: a password is required") || out.stderr.contains("is not in the sudoers file")
}

async fn run<E: EngineApi>(c: &E, argv: &[String], sudo: bool, package: bool, t: Timing) -> Result<(), String> {
    let line = command_line(argv, sudo);
    let timeout = if package { PACKAGE_TIMEOUT } else { COMMAND_TIMEOUT };
    let mut delay = t.lock_first;
    let mut waited = Duration::ZERO;
    for attempt in 1..=LOCK_ATTEMPTS {
        let out = c.host_command(argv, sudo, timeout).await.map_err(|e| format!("`{line}`: {e}"))?;
        if out.success() {
            return Ok(());
        }
        if sudo && sudo_refused(&out) {
            return Err(format!(
                "`{line}`: the SSH user has no right to run `sudo -n` (without a password):{}",
                tail(&out)
            ));
        }
        if package && package_locked(&out.stderr) && attempt < LOCK_ATTEMPTS {
            tracing::info!(command = %line, attempt, "the package manager is locked by another process; trying again");
            tokio::time::sleep(delay).await;
            waited += delay;
            delay *= 2;
            continue;
        }
        if package && package_locked(&out.stderr) {
            return Err(format!(
                "`{line}`: the package manager stayed locked by another process ({LOCK_ATTEMPTS} tries over {:.1}s):{}",
                waited.as_secs_f64(),
                tail(&out)
            ));
        }
        let status = out.status.map_or_else(|| "a signal".to_string(), |s| format!("status {s}"));
        let mut e = format!("`{line}` failed with {status}:{}", tail(&out));
        if let Some(argv) = service_status(argv) {
            e.push_str(&format!("\n  {}", status_said(c, &argv, sudo).await));
        }
        return Err(e);
    }
    unreachable!("the loop returns")
}

/// Polls `test -S PATH` with growing delays until the socket exists or
/// `SOCKET_WAIT` passed; then the service manager's word on the daemon.
async fn wait_socket<E: EngineApi>(c: &E, path: &str, status: &[String], sudo: bool, t: Timing) -> Result<(), String> {
    let test = ["test", "-S", path].map(String::from);
    let start = tokio::time::Instant::now();
    let mut delay = t.poll_first;
    loop {
        let out = c.host_command(&test, sudo, COMMAND_TIMEOUT).await.map_err(|e| e.to_string())?;
        if out.success() {
            return Ok(());
        }
        if start.elapsed() >= t.socket_wait {
            break;
        }
        tokio::time::sleep(delay.min(t.socket_wait.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Err(format!(
        "the Docker daemon did not come up: no socket at {path} after {}s; {}",
        t.socket_wait.as_secs(),
        status_said(c, status, sudo).await
    ))
}

/// The Engine answers, at a version the constraint accepts.
async fn verify<E: EngineApi>(
    c: &E,
    version: Option<&crate::model::host::VersionConstraint>,
    sudo: bool,
) -> Result<(), String> {
    let found = match c.engine_version().await {
        Ok(v) => v,
        Err(api) => {
            // The SSH user may have joined the `docker` group just now: its
            // connection, made before, cannot reach the socket yet.
            let argv = ["docker", "version", "--format", "{{.Server.Version}}"].map(String::from);
            let out = c.host_command(&argv, sudo, COMMAND_TIMEOUT).await.map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!("the Engine does not answer: {api}; `docker version`:{}", tail(&out)));
            }
            out.stdout.trim().to_string()
        }
    };
    match version {
        Some(c) if !c.matches(&found) => Err(format!(
            "the Engine answers at version {}, which `version: {c}` does not accept (the package source offers no such version?)",
            crate::term::field(&found)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::fake::FakeEngine;
    use crate::plan::docker::EngineChange;

    fn action(steps: Vec<Step>) -> EngineAction {
        EngineAction { change: EngineChange::Install, version: "latest".into(), method: "apt: docker.io".into(), steps }
    }

    fn pkg(args: &[&str]) -> Step {
        Step::Run { argv: args.iter().map(|a| a.to_string()).collect(), sudo: true, package: true }
    }

    const FAST: Timing = Timing {
        lock_first: Duration::from_millis(1),
        poll_first: Duration::from_millis(1),
        socket_wait: Duration::from_secs(1),
    };

    async fn execute<E: EngineApi>(c: &E, action: &EngineAction) -> Result<Option<String>, String> {
        execute_with(c, action, FAST).await
    }

    fn engine() -> FakeEngine {
        let fake = FakeEngine::new(&[], Duration::ZERO);
        fake.set_version(Some("26.1.5"));
        fake
    }

    #[tokio::test]
    async fn steps_run_in_order_behind_sudo() {
        let fake = engine();
        let steps = vec![
            pkg(&["apt-get", "install", "-y", "docker.io"]),
            Step::WaitSocket { path: "/var/run/docker.sock".into(), status: vec!["systemctl".into()], sudo: true },
            Step::Verify { version: Some(crate::model::host::VersionConstraint::parse("26.*").unwrap()), sudo: true },
        ];
        execute(&fake, &action(steps)).await.unwrap();
        assert_eq!(
            fake.log(),
            ["host sudo -n -- apt-get install -y docker.io", "host sudo -n -- test -S /var/run/docker.sock", "version"]
        );
    }

    #[tokio::test]
    async fn a_locked_package_manager_is_waited_for_then_reported() {
        let fake = engine();
        fake.host_answer("sudo -n -- apk add", 99, "ERROR: Unable to lock database: temporary error (try again later)");
        execute(&fake, &action(vec![pkg(&["apk", "add", "docker"])])).await.unwrap();
        assert_eq!(fake.log().len(), 2, "{:?}", fake.log());
        for _ in 0..LOCK_ATTEMPTS {
            fake.host_answer("sudo -n -- apk add", 99, "ERROR: Unable to lock database: temporary error");
        }
        let e = execute(&fake, &action(vec![pkg(&["apk", "add", "docker"])])).await.unwrap_err();
        assert!(e.contains("stayed locked by another process (6 tries over 0.0s)"), "{e}");
    }

    #[tokio::test]
    async fn a_failing_step_ends_the_action_and_names_itself() {
        let fake = engine();
        fake.host_answer(
            "sudo -n -- apt-get update",
            100,
            "E: Failed to fetch http://deb.debian.org/ Connection refused",
        );
        let steps = vec![pkg(&["apt-get", "update"]), pkg(&["apt-get", "install", "-y", "docker.io"])];
        let e = execute(&fake, &action(steps)).await.unwrap_err();
        assert!(e.starts_with("`sudo -n -- apt-get update` failed with status 100: E: Failed to fetch"), "{e}");
        assert_eq!(fake.log().len(), 1);
        fake.host_answer("sudo -n -- apt-get", 1, "sudo: a password is required");
        let e = execute(&fake, &action(vec![pkg(&["apt-get", "update"])])).await.unwrap_err();
        assert!(e.contains("no right to run `sudo -n`"), "{e}");
    }

    #[tokio::test]
    async fn a_daemon_that_never_comes_up_is_reported_with_its_status() {
        let fake = engine();
        for _ in 0..1000 {
            fake.host_answer("sudo -n -- test -S", 1, "");
        }
        fake.host_answer("sudo -n -- systemctl status", 3, "Active: failed (Result: exit-code)");
        let status = ["systemctl", "status", "docker.service"].map(String::from).to_vec();
        let step = Step::WaitSocket { path: "/var/run/docker.sock".into(), status, sudo: true };
        let e = execute(&fake, &action(vec![step])).await.unwrap_err();
        assert!(e.contains("did not come up: no socket at /var/run/docker.sock after 1s"), "{e}");
        assert!(e.contains("Active: failed (Result: exit-code)"), "{e}");
    }

    #[tokio::test]
    async fn a_service_that_fails_to_start_is_reported_with_its_status_on_lines_of_their_own() {
        let fake = engine();
        fake.host_answer(
            "sudo -n -- systemctl enable",
            1,
            "Job for docker.service failed because the control process exited with error code.\nSee \"systemctl status docker.service\" for details.",
        );
        fake.host_answer(
            "sudo -n -- systemctl status",
            3,
            "Active: failed (Result: exit-code)\nunknown option no-such-option",
        );
        let enable = ["systemctl", "enable", "--now", "docker.service"].map(String::from).to_vec();
        let step = Step::Run { argv: enable, sudo: true, package: false };
        let e = execute(&fake, &action(vec![step])).await.unwrap_err();
        assert!(e.starts_with("`sudo -n -- systemctl enable --now docker.service` failed with status 1:\n    Job for docker.service failed"), "{e}");
        assert!(e.contains("`sudo -n -- systemctl status docker.service --no-pager --lines=20` says:"), "{e}");
        assert!(e.contains("\n    Active: failed (Result: exit-code)\n    unknown option no-such-option"), "{e}");
        assert!(!e.contains("\\u{a}"), "{e}");
        // OpenRC: its own word.
        fake.host_answer("sudo -n -- rc-service docker start", 1, "ERROR: docker failed to start");
        fake.host_answer("sudo -n -- rc-service docker status", 3, "* status: crashed");
        let start = ["rc-service", "docker", "start"].map(String::from).to_vec();
        let e = execute(&fake, &action(vec![Step::Run { argv: start, sudo: true, package: false }])).await.unwrap_err();
        assert!(e.contains("`sudo -n -- rc-service docker status` says: * status: crashed"), "{e}");
        // Other commands quote no status.
        fake.host_answer("sudo -n -- usermod", 6, "usermod: group 'docker' does not exist");
        let usermod = ["usermod", "-aG", "docker", "u"].map(String::from).to_vec();
        let e =
            execute(&fake, &action(vec![Step::Run { argv: usermod, sudo: true, package: false }])).await.unwrap_err();
        assert!(!e.contains("says:"), "{e}");
    }

    #[tokio::test]
    async fn the_version_is_checked() {
        let fake = engine();
        let c = crate::model::host::VersionConstraint::parse("27.*").unwrap();
        let e = execute(&fake, &action(vec![Step::Verify { version: Some(c), sudo: false }])).await.unwrap_err();
        assert!(e.contains("answers at version 26.1.5, which `version: 27.*` does not accept"), "{e}");
        // Not reachable through the API: asked through the CLI.
        fake.set_version(None);
        execute(&fake, &action(vec![Step::Verify { version: None, sudo: true }])).await.unwrap();
        assert!(fake.log().iter().any(|l| l.starts_with("host sudo -n -- docker version")), "{:?}", fake.log());
    }
}
