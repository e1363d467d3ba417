//! Fault injection for the fault-tolerance tests, compiled into debug builds
//! only (release builds get no-ops). Driven by environment variables:
//!
//! - `TOMO_FAULT_DOCKER=op:N[,op:N]`: the first N Docker calls named `op`
//!   (`create`, `start`, `list`, …) fail with a transient error (HTTP 503).
//!   `start-stale-task:N`: the first N starts are refused as the Engine
//!   refuses a container whose runtime task outlived an Engine restart
//!   (HTTP 500, `task <id>: already exists`). `cgroups:N`: the metrics
//!   collector's first N servers read have no containers' cgroup files, so
//!   their counters come through Docker's stats calls.
//! - `TOMO_FAULT_PAUSE=point[:N]`: at the Nth time (default 1st) apply reaches
//!   `point` (`before-create`, `after-create`, `after-rename`,
//!   `after-replacement-create`, `after-old-removed`), log
//!   `fault injection: paused at POINT` and hang, for a test to kill tomo there.
//! - `TOMO_FAULT_BACKOFF_MS=N`: the first delay of the Docker Engine
//!   action's waits (a locked package manager, the socket) is N ms, so that
//!   tests of those waits run in seconds.
//! - `TOMO_FAULT_CLOCK_OFFSET=SECS`: the metrics collector's clock runs
//!   SECS seconds off (negative: in the past), so that a test takes rounds
//!   in past 5-minute buckets and sees them rolled up and expired at once.

/// An injected transient Docker failure for `op`, if one is due.
pub fn docker(op: &str) -> Option<String> {
    #[cfg(debug_assertions)]
    {
        imp::due("TOMO_FAULT_DOCKER", op).then(|| format!("injected transient failure of `{op}` (HTTP 503)"))
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = op;
        None
    }
}

/// The Engine's answer to a start refused for a stale runtime task, if one is due.
pub fn stale_task(id: &str) -> Option<String> {
    #[cfg(debug_assertions)]
    {
        imp::due("TOMO_FAULT_DOCKER", "start-stale-task").then(|| format!("task {id}: already exists"))
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = id;
        None
    }
}

/// The first delay of a backoff: `default`, or `TOMO_FAULT_BACKOFF_MS` (debug builds).
pub fn backoff(default: std::time::Duration) -> std::time::Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("TOMO_FAULT_BACKOFF_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        return std::time::Duration::from_millis(ms);
    }
    default
}

/// Seconds added to the metrics collector's clock: `TOMO_FAULT_CLOCK_OFFSET` (debug builds), else 0.
pub fn clock_offset_secs() -> i64 {
    #[cfg(debug_assertions)]
    if let Some(s) = std::env::var("TOMO_FAULT_CLOCK_OFFSET").ok().and_then(|v| v.trim().parse::<i64>().ok()) {
        return s;
    }
    0
}

/// Hangs at `point` if a pause there is due.
pub async fn pause(point: &str) {
    #[cfg(debug_assertions)]
    if imp::due("TOMO_FAULT_PAUSE", point) {
        tracing::warn!(point, "fault injection: paused at {point}");
        std::future::pending::<()>().await;
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(debug_assertions)]
mod imp {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static SEEN: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

    /// Whether the variable asks for a fault at this occurrence of `name`.
    /// `TOMO_FAULT_DOCKER=create:2`: the first 2; `TOMO_FAULT_PAUSE=after-create:3`: the 3rd.
    pub fn due(var: &str, name: &str) -> bool {
        let Ok(spec) = std::env::var(var) else { return false };
        let Some(n) = spec.split(',').find_map(|item| {
            let (k, n) = item.split_once(':').unwrap_or((item, "1"));
            (k == name).then(|| n.parse::<u32>().unwrap_or(1))
        }) else {
            return false;
        };
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        let count = seen.get_or_insert_with(HashMap::new).entry(format!("{var}/{name}")).or_insert(0);
        *count += 1;
        if var == "TOMO_FAULT_DOCKER" { *count <= n } else { *count == n }
    }
}
