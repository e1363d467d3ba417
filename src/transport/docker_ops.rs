//! Direct Docker operations that are not part of reconciling: restart, logs,
//! stats, engine facts, listings of everything on a server, and pruning of
//! unused images and build cache (never volumes).

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder, PruneBuildOptionsBuilder,
    PruneImagesOptionsBuilder, RestartContainerOptionsBuilder, StatsOptionsBuilder,
};
use futures_util::StreamExt;

use super::docker::{DockerClient, DockerError, segment, short};
use super::engine::EngineApi;

/// The most log text returned by one call.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Facts about one Docker Engine.
#[derive(Debug, Clone)]
pub struct EngineFacts {
    pub version: String,
    pub os: String,
    pub kernel: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub containers: i64,
    pub containers_running: i64,
    pub images: i64,
    /// Total size of the images on the server.
    pub images_bytes: i64,
    pub root_dir: String,
}

/// One container, managed by tomo or not.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub status: String,
    /// The tomo app it belongs to, if tomo manages it.
    pub app: String,
}

/// One image.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub tags: Vec<String>,
    pub size_bytes: i64,
    /// Containers using it (-1 when the Engine did not say).
    pub containers: i64,
}

/// A one-shot resource sample of a container.
#[derive(Debug, Clone)]
pub struct Stats {
    pub container: String,
    /// Percent of one CPU (100 = one full core).
    pub cpu_percent: f64,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
}

/// What a prune removed.
#[derive(Debug, Clone)]
pub struct Pruned {
    pub images_deleted: i64,
    pub build_cache_deleted: i64,
    pub space_reclaimed_bytes: i64,
}

impl DockerClient {
    pub async fn restart(&self, id: &str, timeout: Duration) -> Result<(), DockerError> {
        segment("restart", "id", id)?;
        let opts = RestartContainerOptionsBuilder::default().t(timeout.as_secs().max(1) as i32).build();
        let op = format!("restart {}", short(id));
        self.docker.restart_container(id, Some(opts)).await.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { status_code, message } => {
                DockerError::start_refused(op, status_code, message)
            }
            other => DockerError::api(op, other),
        })
    }

    /// The last `tail` lines (since `since` unix seconds, 0 = all), stdout and
    /// stderr interleaved, at most `MAX_LOG_BYTES` (the newest kept).
    pub async fn logs(&self, id: &str, tail: u32, since: i64) -> Result<String, DockerError> {
        segment("logs", "id", id)?;
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since.clamp(0, i32::MAX as i64) as i32)
            .tail(&tail.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out: Vec<u8> = Vec::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| DockerError::api(format!("logs of {}", short(id)), e))?;
            out.extend_from_slice(&chunk.into_bytes());
            if out.len() > 2 * MAX_LOG_BYTES {
                out.drain(..out.len() - MAX_LOG_BYTES);
            }
        }
        if out.len() > MAX_LOG_BYTES {
            out.drain(..out.len() - MAX_LOG_BYTES);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The container's log as it comes: stdout and stderr frames, each line
    /// led by the Engine's RFC 3339 timestamp; the last `tail` lines (all when
    /// `None`) since `since` unix seconds (0 = all), then, with `follow`, new
    /// ones until the container stops.
    pub fn log_stream(
        &self,
        id: &str,
        tail: Option<u32>,
        since: i64,
        follow: bool,
    ) -> Result<impl futures_util::Stream<Item = Result<Vec<u8>, DockerError>> + Send + use<>, DockerError> {
        segment("logs", "id", id)?;
        let tail = tail.map_or_else(|| "all".to_string(), |t| t.to_string());
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(follow)
            .since(since.clamp(0, i32::MAX as i64) as i32)
            .tail(&tail)
            .build();
        let op = format!("logs of {}", short(id));
        Ok(self
            .docker
            .logs(id, Some(opts))
            .map(move |item| item.map(|c| c.into_bytes().to_vec()).map_err(|e| DockerError::api(op.clone(), e))))
    }

    /// One resource sample (the Engine takes about a second to measure CPU).
    pub async fn stats(&self, id: &str, name: &str) -> Result<Stats, DockerError> {
        segment("stats", "id", id)?;
        let opts = StatsOptionsBuilder::default().stream(false).one_shot(false).build();
        let mut stream = self.docker.stats(id, Some(opts));
        let s = match stream.next().await {
            Some(r) => r.map_err(|e| DockerError::api(format!("stats of {name}"), e))?,
            None => return Err(DockerError::NoStats { container: name.to_string() }),
        };
        let cpu = s.cpu_stats.unwrap_or_default();
        let pre = s.precpu_stats.unwrap_or_default();
        let total =
            |c: &bollard::models::ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0);
        let d_cpu = total(&cpu).saturating_sub(total(&pre)) as f64;
        let d_sys = cpu.system_cpu_usage.unwrap_or(0).saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
        let cpus = cpu.online_cpus.unwrap_or(1).max(1) as f64;
        let cpu_percent = if d_sys > 0.0 { (d_cpu / d_sys * cpus * 100.0 * 100.0).round() / 100.0 } else { 0.0 };
        let mem = s.memory_stats.unwrap_or_default();
        let (rx, tx) = s
            .networks
            .unwrap_or_default()
            .values()
            .fold((0u64, 0u64), |(r, t), n| (r + n.rx_bytes.unwrap_or(0), t + n.tx_bytes.unwrap_or(0)));
        Ok(Stats {
            container: name.to_string(),
            cpu_percent,
            memory_bytes: mem.usage.unwrap_or(0) as i64,
            memory_limit_bytes: mem.limit.unwrap_or(0) as i64,
            net_rx_bytes: rx as i64,
            net_tx_bytes: tx as i64,
        })
    }

    pub async fn facts(&self) -> Result<EngineFacts, DockerError> {
        let (info, images) = tokio::join!(self.docker.info(), self.images());
        let info = info.map_err(|e| self.unreachable("info", e))?;
        Ok(EngineFacts {
            version: info.server_version.unwrap_or_default(),
            os: info.operating_system.unwrap_or_default(),
            kernel: info.kernel_version.unwrap_or_default(),
            cpus: info.ncpu.unwrap_or_default(),
            memory_bytes: info.mem_total.unwrap_or_default(),
            containers: info.containers.unwrap_or_default(),
            containers_running: info.containers_running.unwrap_or_default(),
            images: info.images.unwrap_or_default(),
            images_bytes: images?.iter().map(|i| i.size_bytes).sum(),
            root_dir: info.docker_root_dir.unwrap_or_default(),
        })
    }

    /// This installation's containers of `app` (one list call, filtered on
    /// the server by their labels; retried like observation's).
    pub async fn app_containers(&self, app: &str) -> Result<Vec<crate::model::ContainerObs>, DockerError> {
        use crate::model::labels;
        let filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_string(),
            vec![format!("{}={}", labels::INSTALLATION, self.installation), format!("{}={app}", labels::APP)],
        )]);
        let list = super::docker::retrying(self.redactor(), "list", || async {
            let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
            self.docker.list_containers(Some(options)).await.map_err(|e| self.unreachable("list containers", e))
        })
        .await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.id.clone().unwrap_or_default();
                if !super::docker::is_id(&id) {
                    return self.skipped("container", "id", &id);
                }
                let name = c.names.as_ref().and_then(|n| n.first()).map(|n| n.trim_start_matches('/').to_string());
                let name = name.unwrap_or_default();
                if !super::docker::is_name(&name) {
                    return self.skipped("container", "name", &name);
                }
                Some(self.container_obs(c, id, name))
            })
            .filter(|c| c.ours)
            .collect())
    }

    /// Every container on the server (one list call).
    pub async fn all_containers(&self) -> Result<Vec<ContainerRow>, DockerError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::default().all(true).build()))
            .await
            .map_err(|e| self.unreachable("list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels: HashMap<String, String> = c.labels.unwrap_or_default();
                ContainerRow {
                    id: short(c.id.as_deref().unwrap_or_default()).to_string(),
                    name: c
                        .names
                        .unwrap_or_default()
                        .first()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    app: labels.get(crate::model::labels::APP).cloned().unwrap_or_default(),
                }
            })
            .collect())
    }

    pub async fn images(&self) -> Result<Vec<ImageRow>, DockerError> {
        let list = self
            .docker
            .list_images(Some(ListImagesOptionsBuilder::default().build()))
            .await
            .map_err(|e| DockerError::api("list images", e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageRow {
                id: short(&i.id).to_string(),
                tags: i.repo_tags,
                size_bytes: i.size,
                containers: i.containers,
            })
            .collect())
    }

    /// Removes unused images (`all`: also tagged ones no container uses;
    /// otherwise only dangling ones) and the build cache. Never volumes.
    pub async fn prune(&self, all: bool) -> Result<Pruned, DockerError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([("dangling".to_string(), vec![(!all).to_string()])]);
        let images = self
            .docker
            .prune_images(Some(PruneImagesOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(|e| DockerError::api("prune images", e))?;
        let cache = self
            .docker
            .prune_build(Some(PruneBuildOptionsBuilder::default().all(all).build()))
            .await
            .map_err(|e| DockerError::api("prune build cache", e))?;
        Ok(Pruned {
            images_deleted: images.images_deleted.map_or(0, |d| d.len() as i64),
            build_cache_deleted: cache.caches_deleted.map_or(0, |d| d.len() as i64),
            space_reclaimed_bytes: images.space_reclaimed.unwrap_or(0) + cache.space_reclaimed.unwrap_or(0),
        })
    }
}
