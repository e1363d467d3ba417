//! Resource counters of a server's running containers for metrics: one
//! list call, then per container an inspect (restarts, health, main
//! process), several at once. The counters themselves are read from the
//! containers' cgroup files with the host's figures (`model::cgroupfs`);
//! Docker's one-shot stats call is the fallback for a container whose files
//! could not be read. Counters are returned as read; turning them into
//! rates is the engine's.

use std::collections::HashMap;

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder, StatsOptionsBuilder};
use futures_util::StreamExt;

use super::docker::{DockerClient, DockerError, segment, short};
use crate::model::labels;

/// Inspect and stats calls in flight at once per server. Docker (20.10)
/// answers one-shot stats from its stats collector: the first call wakes it
/// and is answered at once, calls that subscribe a moment later wait for its
/// next pass, a second on (it sleeps a second after each pass). Asking every
/// container of an ordinary server at once keeps that to one wait a round
/// when stats are needed at all; the bound keeps a server with hundreds of
/// containers from opening hundreds of connections.
const AT_ONCE: usize = 64;

/// What one container's counters were when read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerCounters {
    pub id: String,
    pub name: String,
    /// The tomo app and service it belongs to (labels), if tomo manages it.
    pub app: Option<String>,
    pub service: Option<String>,
    /// Cumulative CPU time of the container and of the host, in ns, and
    /// the host's CPUs; `pre_*` Docker's own earlier reading (none with
    /// `one_shot`).
    pub cpu_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub pre_cpu_ns: Option<u64>,
    pub pre_system_ns: Option<u64>,
    pub cpus: u64,
    /// In use without the page cache that can be dropped, as `docker stats` shows.
    pub memory: Option<u64>,
    pub memory_limit: Option<u64>,
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    pub block_read: Option<u64>,
    pub block_write: Option<u64>,
    pub restarts: Option<i64>,
    /// `None` without a healthcheck.
    pub healthy: Option<bool>,
    /// The main process (host's PID namespace), while it runs.
    pub pid: Option<u32>,
    /// Shares the host's network (its traffic is the host's).
    pub host_network: bool,
    /// Set when stats could not be read (the container restarting).
    pub error: Option<String>,
}

impl DockerClient {
    /// Every running (or restarting) container but another tomo
    /// installation's, with its restarts, health and main process from an
    /// inspect each, several at once; no counters.
    pub async fn running_containers(&self) -> Result<Vec<ContainerCounters>, DockerError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::default().all(true).build()))
            .await
            .map_err(|e| self.unreachable("list containers", e))?;
        let live = list.into_iter().filter_map(|c| {
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            if state != "running" && state != "restarting" {
                return None;
            }
            let labels: HashMap<String, String> = c.labels.unwrap_or_default();
            // Another installation's containers on the same Engine are not
            // ours to report (under app names that are not ours either).
            if labels.get(labels::INSTALLATION).is_some_and(|i| *i != self.installation) {
                return None;
            }
            let name = c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string())?;
            Some(ContainerCounters {
                id: c.id?,
                app: labels.get(labels::APP).cloned(),
                service: labels.get(labels::SERVICE).cloned(),
                name,
                ..ContainerCounters::default()
            })
        });
        let inspected = live.map(|c| self.inspect_for_counters(c));
        Ok(futures_util::stream::iter(inspected).buffer_unordered(AT_ONCE).collect().await)
    }

    /// Reads the counters of `containers` from Docker's stats endpoint (for
    /// those whose cgroup files could not be read). `one_shot` answers at
    /// once without Docker's earlier CPU reading; without it Docker waits
    /// for a second reading (about a second) and gives both.
    pub async fn stats_counters(&self, containers: Vec<ContainerCounters>, one_shot: bool) -> Vec<ContainerCounters> {
        let read = containers.into_iter().map(|c| self.read_stats(c, one_shot));
        futures_util::stream::iter(read).buffer_unordered(AT_ONCE).collect().await
    }

    async fn inspect_for_counters(&self, mut c: ContainerCounters) -> ContainerCounters {
        if let Err(e) = segment("inspect", "id", &c.id) {
            c.error = Some(e.to_string());
            return c;
        }
        match self.docker.inspect_container(&c.id, None::<InspectContainerOptions>).await {
            Ok(i) => {
                c.restarts = i.restart_count;
                c.host_network = i.host_config.and_then(|h| h.network_mode).is_some_and(|m| m == "host");
                let state = i.state.unwrap_or_default();
                c.pid = state.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0);
                c.healthy = state.health.and_then(|h| h.status).and_then(|s| match s.to_string().as_str() {
                    "healthy" => Some(true),
                    "unhealthy" => Some(false),
                    _ => None,
                });
            }
            Err(e) => c.error = Some(DockerError::api(format!("inspect {}", short(&c.id)), e).to_string()),
        }
        c
    }

    async fn read_stats(&self, mut c: ContainerCounters, one_shot: bool) -> ContainerCounters {
        if let Err(e) = segment("stats", "id", &c.id) {
            c.error = Some(e.to_string());
            return c;
        }
        let opts = StatsOptionsBuilder::default().stream(false).one_shot(one_shot).build();
        match self.docker.stats(&c.id, Some(opts)).next().await {
            Some(Ok(s)) => fill(&mut c, s),
            Some(Err(e)) => c.error = Some(DockerError::api(format!("stats of {}", c.name), e).to_string()),
            None => c.error = Some(format!("no stats for {}", c.name)),
        }
        c
    }
}

fn fill(c: &mut ContainerCounters, s: bollard::models::ContainerStatsResponse) {
    let total = |x: &bollard::models::ContainerCpuStats| x.cpu_usage.as_ref().and_then(|u| u.total_usage);
    if let Some(cpu) = &s.cpu_stats {
        c.cpu_ns = total(cpu);
        c.system_ns = cpu.system_cpu_usage;
        c.cpus = u64::from(cpu.online_cpus.unwrap_or(1).max(1));
    }
    if let Some(pre) = &s.precpu_stats {
        c.pre_cpu_ns = total(pre).filter(|v| *v > 0);
        c.pre_system_ns = pre.system_cpu_usage.filter(|v| *v > 0);
    }
    if let Some(mem) = &s.memory_stats {
        let st = mem.stats.clone().unwrap_or_default();
        // cgroup v1 calls it total_inactive_file, v2 inactive_file.
        let cache = st.get("total_inactive_file").or_else(|| st.get("inactive_file")).copied().unwrap_or(0);
        c.memory = mem.usage.map(|u| u.saturating_sub(cache));
        c.memory_limit = mem.limit;
    }
    if let Some(nets) = &s.networks {
        c.net_rx = Some(nets.values().map(|n| n.rx_bytes.unwrap_or(0)).sum());
        c.net_tx = Some(nets.values().map(|n| n.tx_bytes.unwrap_or(0)).sum());
    }
    if let Some(io) = s.blkio_stats.and_then(|b| b.io_service_bytes_recursive) {
        let sum = |op: &str| {
            io.iter()
                .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                .map(|e| e.value.unwrap_or(0))
                .sum()
        };
        c.block_read = Some(sum("read"));
        c.block_write = Some(sum("write"));
    }
}
