//! Executing one action against a server's Docker Engine. Returns the id of
//! the container the action leaves in place, when it made one.
//!
//! A recreate never loses the working container: the old one is stopped and
//! renamed aside (or, with `start-first`, left running) while the new one is
//! created, started and, when it has a healthcheck, must become healthy. Only
//! then is the old one removed; if the new one fails it is removed and the old
//! one renamed back and started.

use std::time::Duration;

use crate::model::observed::DataMount;
use crate::model::rollout::held_name;
use crate::model::secret::Secrets;
use crate::model::spec::ContainerSpec;
use crate::model::{OnFailure, UpdateOrder, VerifyPolicy};
use crate::plan::{Action, Op, Recovery, Remake, Wait};
use crate::transport::docker::{DockerError, short};
use crate::transport::engine::EngineApi;

pub(super) async fn execute<E: EngineApi>(
    action: &Action,
    c: &E,
    secrets: &dyn Secrets,
    health_timeout: Duration,
    verify: VerifyPolicy,
    keep_old: bool,
) -> Result<Option<String>, String> {
    let e = |e: crate::transport::docker::DockerError| e.to_string();
    match &action.op {
        Op::PullImage { image } => c.pull(image).await.map(|_| None).map_err(e),
        Op::DockerEngine(engine) => super::engine::execute(c, engine).await,
        Op::CreateNetwork { name, subnet, pool, options } => c
            .create_network(
                name,
                action.app.as_ref().map(|a| a.as_str()),
                action.server.as_str(),
                *subnet,
                *pool,
                options,
            )
            .await
            .map(|_| None)
            .map_err(e),
        Op::CreateVolume { name } => c
            .create_volume(name, action.app.as_ref().map(|a| a.as_str()), action.server.as_str())
            .await
            .map(|_| None)
            .map_err(e),
        Op::CreateDir { path, owner, mode } => c.create_dir(path, *owner, *mode).await.map(|_| None).map_err(e),
        Op::Create { spec, hash, redacted } => {
            crate::faults::pause("before-create").await;
            let id = c.create_container(&spec.container, spec, hash, redacted, secrets, &[]).await.map_err(e)?;
            c.connect_networks(&id, spec).await.map_err(e)?;
            crate::faults::pause("after-create").await;
            Ok(Some(id))
        }
        Op::Recreate { spec, hash, redacted, old_id, start, wait, order, keeps, .. } => {
            let new = Replacement {
                c,
                spec,
                hash,
                redacted,
                secrets,
                keeps,
                start: *start,
                wait: *wait,
                health_timeout,
                verify,
                keep_old,
            };
            match order {
                UpdateOrder::StopFirst => new.stop_first(old_id).await,
                UpdateOrder::StartFirst => new.start_first(old_id).await,
            }
            .map(Some)
        }
        Op::Start { target, wait, container, fresh, again } => {
            let (target, made) = start_or_remake(c, target, container, again.as_deref(), secrets).await?;
            settle(c, &target, *wait, health_timeout).await?;
            if *fresh
                && *wait != Wait::Completed
                && let Err(why) = verified(c, &target, verify.duration()).await
            {
                let stopped = match c.stop(&target, Duration::from_secs(10)).await {
                    Ok(()) => "it was stopped".to_string(),
                    Err(e) => format!("stopping it failed too: {e}"),
                };
                return Err(format!("{why}; a new service has no previous container to go back to: {stopped}"));
            }
            Ok(made.then_some(target))
        }
        Op::Stop { target, timeout_ms, .. } => {
            c.stop(target, Duration::from_millis(*timeout_ms)).await.map(|_| None).map_err(e)
        }
        Op::Remove { target, timeout_ms, .. } => {
            c.remove(target, Duration::from_millis(*timeout_ms)).await.map(|_| None).map_err(e)
        }
        Op::RemoveNetwork { name, network_id } => {
            let target = if network_id.is_empty() { name } else { network_id };
            c.remove_network(target).await.map(|_| None).map_err(e)
        }
        Op::RemoveVolume { name } => c.remove_volume(name).await.map(|_| None).map_err(e),
        Op::Restore { container, leftover, leftover_id, recovery, .. } => {
            let done = restore(c, container, leftover, leftover_id, recovery).await.map_err(e)?;
            tracing::warn!(server = %action.server, container = %leftover, "{done}");
            Ok(None)
        }
    }
}

/// Puts right what an interrupted recreate left beside `base`: `name`
/// (`id`) is the leftover. Volumes are never removed.
async fn restore(c: &impl EngineApi, base: &str, name: &str, id: &str, how: &Recovery) -> Result<String, DockerError> {
    let grace = Duration::from_secs(10);
    Ok(match how {
        Recovery::RemoveLeftover => {
            c.remove(id, grace).await?;
            format!("removed `{name}`, left by an interrupted recreate of `{base}`")
        }
        Recovery::PutBack { replacement } => {
            if let Some(r) = replacement {
                c.remove(r, grace).await?;
            }
            c.rename(id, base).await?;
            c.start(id).await?;
            match replacement {
                Some(_) => format!("put `{base}` back from `{name}` (its replacement never ran)"),
                None => format!("put `{base}` back from `{name}`"),
            }
        }
        Recovery::TakeName => {
            c.rename(id, base).await?;
            format!("renamed `{name}` to `{base}`")
        }
    })
}

/// Starts `target`. When it is gone and `again` says how (a container that
/// never ran: an interrupted run created it, and the Engine may still be
/// undoing that create), makes it again as `container` and starts that.
/// The container started, and whether it was made here.
async fn start_or_remake<E: EngineApi>(
    c: &E,
    target: &str,
    container: &str,
    again: Option<&Remake>,
    secrets: &dyn Secrets,
) -> Result<(String, bool), String> {
    let err = match c.start(target).await {
        Ok(()) => return Ok((target.to_string(), false)),
        Err(err) if err.is_stale_task() => return Err(unstartable(c, target, container, err).await),
        Err(err) => err,
    };
    let Some(r) = again.filter(|_| err.is_not_found()) else { return Err(err.to_string()) };
    tracing::warn!(container, "the container to start, which never ran, is gone; creating it again");
    let e = |e: DockerError| format!("{err}; creating it again failed: {e}");
    let id = c.create_container(container, &r.spec, &r.hash, &r.redacted, secrets, &[]).await.map_err(e)?;
    c.connect_networks(&id, &r.spec).await.map_err(e)?;
    c.start(&id).await.map_err(e)?;
    Ok((id, true))
}

/// A Docker Engine restarted while starting a container can keep a stale
/// runtime task (moby/moby#40613): the container can never start. One that
/// never ran holds nothing yet, so it is removed (its volumes stay) and the
/// next run creates it afresh; one that ran before is left alone.
async fn unstartable<E: EngineApi>(c: &E, target: &str, container: &str, err: DockerError) -> String {
    match c.never_started(target).await {
        Ok(true) => match c.remove(target, Duration::from_secs(1)).await {
            Ok(()) => format!(
                "{err}: the Engine kept a stale task for `{container}`, which never ran; tomo removed it, the next run creates it again"
            ),
            Err(r) => format!("{err}; removing the unstartable `{container}` failed too: {r}"),
        },
        Ok(false) => format!(
            "{err}: the Engine kept a stale task for `{container}`, which ran before, so tomo keeps it; removing it by hand (its volumes stay) lets the next run create it again"
        ),
        Err(i) => format!("{err}; inspecting `{container}` failed too: {i}"),
    }
}

/// Watches a started container for `verify` through the Engine's events
/// (no polling; zero: returns at once): an exit, a restart or turning
/// unhealthy fails it.
async fn verified<E: EngineApi>(c: &E, id: &str, verify: Duration) -> Result<(), String> {
    use crate::model::{Health, RunState};
    use crate::transport::docker::NotReady;
    if verify.is_zero() {
        return Ok(());
    }
    let failed = c
        .wait_for(id, verify, &|run, health, code| match (run, health) {
            (_, Some(Health::Unhealthy)) => Some(Err(NotReady::Unhealthy)),
            (RunState::Restarting, _) => Some(Err(NotReady::Restarted)),
            (RunState::Exited | RunState::Dead, _) => Some(Err(NotReady::Exited(code))),
            _ => None,
        })
        .await;
    match failed {
        Ok(()) | Err(DockerError::NotReady { why: NotReady::Late { .. }, .. }) => Ok(()),
        Err(e) => {
            let why = format!("verification failed within {}s of the start: {e}", verify.as_secs());
            Err(format!("{why}{}", last_lines(c, id).await))
        }
    }
}

/// How many log lines of a container that failed verification the run keeps.
const FAILED_LOG_LINES: u32 = 20;

/// The failed container's last log lines, as a tail for the failure text
/// (masked with the rest of it by the apply's redactor); empty when it
/// printed nothing or its log cannot be read.
async fn last_lines<E: EngineApi>(c: &E, id: &str) -> String {
    match c.last_logs(id, FAILED_LOG_LINES).await {
        Ok(log) if !log.trim().is_empty() => {
            let lines: Vec<&str> = log.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
            format!("; its last log lines:\n  {}", lines.join("\n  "))
        }
        Ok(_) => String::new(),
        Err(e) => format!("; reading its log failed: {e}"),
    }
}

/// Waits for what a started container must reach.
async fn settle<E: EngineApi>(c: &E, id: &str, wait: Wait, timeout: Duration) -> Result<(), String> {
    match wait {
        Wait::Running => c.wait_running(id, timeout).await,
        Wait::Healthy => c.wait_healthy(id, timeout).await,
        Wait::Completed => c.wait_completed(id, timeout).await,
    }
    .map_err(|e| e.to_string())
}

struct Replacement<'a, E> {
    c: &'a E,
    spec: &'a ContainerSpec,
    hash: &'a str,
    redacted: &'a serde_json::Value,
    secrets: &'a dyn Secrets,
    /// The old container's anonymous volumes, mounted again by the new one.
    keeps: &'a [DataMount],
    start: bool,
    wait: Wait,
    health_timeout: Duration,
    /// How long the new container is watched once it settled, and what a
    /// failure then does.
    verify: VerifyPolicy,
    /// The old container stays aside, stopped, once the new one took over
    /// (`on_failure: rollback-all`: until the whole rollout verified).
    keep_old: bool,
}

/// Why a new container did not take over.
struct Failed {
    /// The new container, once created.
    id: Option<String>,
    why: String,
    /// It ran and settled, then failed its verification.
    verification: bool,
}

impl Failed {
    fn new(id: Option<String>, why: String) -> Failed {
        Failed { id, why, verification: false }
    }
}

impl<E: EngineApi> Replacement<'_, E> {
    fn stop_timeout(&self) -> Duration {
        self.spec.stop_grace_period.map_or(Duration::from_secs(10), |d| d.to_std())
    }

    /// Creates, starts and settles the new container under `name`.
    async fn bring_up(&self, name: &str) -> Result<String, Failed> {
        let id = self
            .c
            .create_container(name, self.spec, self.hash, self.redacted, self.secrets, self.keeps)
            .await
            .map_err(|e| Failed::new(None, e.to_string()))?;
        let fail = |e: String| Failed::new(Some(id.clone()), e);
        self.c.connect_networks(&id, self.spec).await.map_err(|e| fail(e.to_string()))?;
        crate::faults::pause("after-replacement-create").await;
        if self.start {
            self.c.start(&id).await.map_err(|e| fail(e.to_string()))?;
            settle(self.c, &id, self.wait, self.health_timeout).await.map_err(fail)?;
            // The previous container stays aside until this ends.
            if self.wait != Wait::Completed {
                verified(self.c, &id, self.verify.duration()).await.map_err(|why| Failed {
                    id: Some(id.clone()),
                    why,
                    verification: true,
                })?;
            }
        }
        Ok(id)
    }

    async fn stop_first(&self, old: &str) -> Result<String, String> {
        let name = &self.spec.container;
        let aside = format!("{name}-tomo-old-{}", short(old));
        let t = std::time::Instant::now();
        let (was_running, ..) = self.c.state(old).await.map_err(|e| e.to_string())?;
        self.c.stop(old, self.stop_timeout()).await.map_err(|e| e.to_string())?;
        let stopped = t.elapsed();
        self.c.rename(old, &aside).await.map_err(|e| e.to_string())?;
        crate::faults::pause("after-rename").await;
        match self.bring_up(name).await {
            Ok(id) if self.keep_old => Ok(id),
            Ok(id) => {
                let up = t.elapsed();
                self.c
                    .remove(old, self.stop_timeout())
                    .await
                    .map_err(|e| format!("the new container runs, but removing the old one failed: {e}"))?;
                tracing::debug!(
                    container = %name,
                    stop_ms = stopped.as_millis() as u64,
                    up_ms = (up - stopped).as_millis() as u64,
                    remove_ms = (t.elapsed() - up).as_millis() as u64,
                    "recreated"
                );
                Ok(id)
            }
            Err(f) => {
                let restart = was_running == crate::model::RunState::Running;
                let restored = match self.held(&f) {
                    Some(new_id) => self.hold_beside(old, &aside, new_id, restart).await,
                    None => self.restore(old, &aside, f.id.as_deref(), restart).await,
                };
                Err(format!("the new container failed: {}; {restored}", f.why))
            }
        }
    }

    async fn start_first(&self, old: &str) -> Result<String, String> {
        let name = &self.spec.container;
        let temp = format!("{name}-tomo-new");
        match self.bring_up(&temp).await {
            Ok(id) if self.keep_old => {
                let aside = format!("{name}-tomo-old-{}", short(old));
                self.c.stop(old, self.stop_timeout()).await.map_err(|e| e.to_string())?;
                self.c.rename(old, &aside).await.map_err(|e| e.to_string())?;
                self.c.rename(&id, name).await.map_err(|e| e.to_string())?;
                Ok(id)
            }
            Ok(id) => {
                self.c.remove(old, self.stop_timeout()).await.map_err(|e| e.to_string())?;
                crate::faults::pause("after-old-removed").await;
                self.c.rename(&id, name).await.map_err(|e| e.to_string())?;
                Ok(id)
            }
            Err(f) => {
                if let Some(new_id) = self.held(&f) {
                    let held = self.hold(new_id).await;
                    return Err(format!(
                        "the new container failed: {}; {held}; the previous container kept running",
                        f.why
                    ));
                }
                if let Some(id) = f.id {
                    let _ = self.c.remove(&id, Duration::from_secs(1)).await;
                }
                Err(format!("the new container failed: {}; the previous container kept running", f.why))
            }
        }
    }

    /// The new container to hold: with `on_failure: hold`, one that failed
    /// its verification.
    fn held<'f>(&self, f: &'f Failed) -> Option<&'f str> {
        (self.verify.on_failure == OnFailure::Hold && f.verification).then_some(f.id.as_deref()).flatten()
    }

    /// Stops the failed container and renames it aside as held.
    async fn hold(&self, id: &str) -> String {
        let name = held_name(&self.spec.container, id);
        if let Err(e) = self.c.stop(id, self.stop_timeout()).await {
            return format!("stopping the failed container failed ({e})");
        }
        match self.c.rename(id, &name).await {
            Ok(()) => format!("it is held, stopped, as `{name}`"),
            Err(e) => format!("it was stopped, but renaming it to `{name}` failed ({e})"),
        }
    }

    /// Holds the failed new container, stopped, and puts the old one back
    /// beside it (`on_failure: hold`).
    async fn hold_beside(&self, old: &str, aside: &str, new_id: &str, restart: bool) -> String {
        let held = self.hold(new_id).await;
        if !held.starts_with("it is held") {
            return format!("{held}; the previous container is kept as `{aside}`");
        }
        if let Err(e) = self.c.rename(old, &self.spec.container).await {
            return format!("{held}; renaming the previous container back failed ({e}); it is kept as `{aside}`");
        }
        if restart && let Err(e) = self.c.start(old).await {
            return format!("{held}; the previous container was restored but did not start: {e}");
        }
        format!("{held}; the previous container was restored")
    }

    /// Removes the failed new container and puts the old one back.
    async fn restore(&self, old: &str, aside: &str, new_id: Option<&str>, restart: bool) -> String {
        if let Some(id) = new_id
            && let Err(e) = self.c.remove(id, Duration::from_secs(1)).await
        {
            return format!("removing the failed container failed too ({e}); the previous one is kept as `{aside}`");
        }
        if let Err(e) = self.c.rename(old, &self.spec.container).await {
            return format!("renaming the previous container back failed ({e}); it is kept as `{aside}`");
        }
        if restart && let Err(e) = self.c.start(old).await {
            return format!("the previous container was restored but did not start: {e}");
        }
        "the previous container was restored".into()
    }
}
