//! Fleet metrics, engine side: one collection round (`metrics_collect`:
//! each server's own figures from one command over its connection, its
//! containers' from the Docker API, all servers at once; stored, rolled up
//! a little, alerts evaluated) and the queries front ends make
//! (`metrics_series`, `metrics_latest`, `alerts`). The collector keeps each
//! server's previous counters in memory, so rates need no waiting after the
//! first round.

mod alerts;
mod containers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::error::{ConnectError, Result};
use crate::model::alert::{AlertChange, AlertState};
use crate::model::metrics::{Figure, MetricsQuery, MetricsSettings, Reading, Series, ServerSample, Subject};
use crate::model::procfs::{Counters, HostRaw, SCRIPT, SECTIONS};
use crate::model::{Host, Name, Server};
use crate::transport::docker::DockerClient;
use crate::transport::engine::EngineApi;
use crate::transport::hostfs::ResidentError;
use containers::Previous;

/// What the collector remembers between rounds.
#[derive(Debug, Default)]
pub struct Memory {
    hosts: HashMap<String, Counters>,
    containers: HashMap<String, HashMap<String, Previous>>,
}

/// Which servers a round samples (empty: every declared server).
#[derive(Debug, Clone, Default)]
pub struct CollectScope {
    pub servers: Vec<String>,
}

/// What one round gave: each server's sample, and the alerts that fired or cleared.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Collected {
    pub samples: Vec<ServerSample>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertChange>,
}

/// The error of a server whose latest round read nothing, with the reason
/// stored for that round (none in rounds stored before reasons were).
fn unread(at: i64, reason: Option<&str>) -> String {
    let ago = (now_ms() / 1000).saturating_sub(at).max(0);
    format!("not reached in the latest round ({ago}s ago): {}", reason.unwrap_or("no figures"))
}

/// The collector's clock, in unix milliseconds (shifted by
/// `TOMO_FAULT_CLOCK_OFFSET` in debug builds, for the rollup tests).
pub(super) fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    now.saturating_add(crate::faults::clock_offset_secs().saturating_mul(1000))
}

/// The cgroup files of `pids`, read directly, as the script prints them.
fn local_cgroups(pids: &[u32]) -> String {
    let mut out = String::from("== cgroup\n");
    for pid in pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else { continue };
        for file in crate::model::cgroupfs::files(*pid, &text) {
            let Ok(body) = std::fs::read_to_string(&file) else { continue };
            for line in body.lines() {
                out.push_str(&file);
                out.push(':');
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The host figures of `local` and its containers' counters (`pids`), read
/// directly (`df` run for the filesystems).
async fn local_host(
    c: &DockerClient,
    twice: bool,
    timeout: Duration,
    pids: &[u32],
) -> std::result::Result<String, String> {
    let read = || {
        let pids = pids.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            for (name, path) in SECTIONS {
                let body = std::fs::read_to_string(path).unwrap_or_default();
                text.push_str(&format!("== {name}\n{body}"));
            }
            text.push_str(&local_cgroups(&pids));
            text
        })
    };
    let mut text = read().await.map_err(|e| e.to_string())?;
    let df = c.host_command(&["df", "-P", "-k"].map(String::from), false, timeout).await;
    text.push_str("== df\n");
    text.push_str(&df.map(|o| o.stdout).unwrap_or_default());
    if twice {
        tokio::time::sleep(Duration::from_secs(1)).await;
        text.push_str("\n== again\n");
        text.push_str(&read().await.map_err(|e| e.to_string())?);
    }
    Ok(text)
}

/// The host figures of a remote server and its containers' counters
/// (`pids`): one script in the connection's resident shell.
async fn remote_host(
    c: &DockerClient,
    twice: bool,
    timeout: Duration,
    pids: &[u32],
) -> std::result::Result<String, String> {
    let n = if twice { "2" } else { "1" };
    let args: Vec<String> = std::iter::once(n.to_string()).chain(pids.iter().map(u32::to_string)).collect();
    let fs = c.host_fs();
    let deadline = std::time::Instant::now() + timeout;
    let out = match fs.resident_script(SCRIPT, &args, timeout).await {
        Ok(out) => out,
        Err(ResidentError::Failed(e)) => {
            // A server that keeps no shell open (a restricted login shell)
            // still answers a command of its own.
            tracing::debug!(server = c.endpoint(), error = %e, "metrics: no resident shell; one command instead");
            let mut argv: Vec<String> = ["sh", "-c", SCRIPT, "tomo-metrics"].map(String::from).to_vec();
            argv.extend(args);
            let left = deadline.saturating_duration_since(std::time::Instant::now()).max(Duration::from_secs(1));
            let out = fs.command(&argv, false, left).await.map_err(|e| format!("reading host figures: {e}"))?;
            out.stdout
        }
        Err(ResidentError::Unanswered(e)) => return Err(format!("reading host figures: {e}")),
    };
    if !out.starts_with("tomo-metrics 1") {
        let first = out.lines().next().unwrap_or_default();
        return Err(format!("reading host figures: the script printed `{}`", crate::term::field(first)));
    }
    Ok(out)
}

impl Engine {
    /// One collection round over the servers in scope: sampled in parallel
    /// (a server that cannot be reached gets a sample with its error, the
    /// others go on), stored, rolled up and expired a little, and alerts
    /// evaluated (transitions written to the audit log and the logs).
    pub async fn metrics_collect(&self, scope: &CollectScope) -> Result<Collected> {
        let desired = self.desired()?;
        let names =
            scope.servers.iter().map(|s| Name::parse(s).map_err(|e| crate::error::Usage::invalid("server name", s, e)));
        let names: Vec<Name> = names.collect::<std::result::Result<_, _>>()?;
        let clients = self.docker_clients(&desired, names).await?;
        let settings = desired.settings.metrics.clone();
        let timeout = self.server_timeout(&desired).min(settings.interval.to_std().max(Duration::from_secs(5)));
        let jobs = clients.into_iter().filter_map(|(name, client)| {
            let server = desired.servers.get(&name)?;
            Some(self.sample_server(server, client, timeout))
        });
        let samples: Vec<ServerSample> = futures_util::future::join_all(jobs).await;
        self.store_round(&samples, &settings).await?;
        let alerts = self.evaluate_alerts(&desired, &samples).await?;
        Ok(Collected { samples, alerts })
    }

    /// One server's sample, within `timeout`.
    async fn sample_server(
        &self,
        server: &Server,
        client: std::result::Result<DockerClient, ConnectError>,
        timeout: Duration,
    ) -> ServerSample {
        let at_ms = now_ms();
        let name = server.name.to_string();
        let mut sample = ServerSample {
            server: name.clone(),
            at: at_ms / 1000,
            readings: Vec::new(),
            error: None,
            warnings: Vec::new(),
        };
        let c = match client {
            Ok(c) => c,
            Err(e) => {
                sample.error = Some(e.to_string());
                return sample;
            }
        };
        let (first_host, first_containers) = {
            let m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
            (!m.hosts.contains_key(&name), !m.containers.contains_key(&name))
        };
        let both = async {
            let listed = c.running_containers().await;
            let pids: Vec<u32> = listed.iter().flatten().filter_map(|c| c.pid).collect();
            let host = match server.host {
                Host::Local => local_host(&c, first_host, timeout, &pids).await,
                Host::Ssh(_) => remote_host(&c, first_host, timeout, &pids).await,
            };
            // Up to 8 MiB from a server: parsed off the async workers.
            let host = match host {
                Ok(text) => tokio::task::spawn_blocking(move || HostRaw::parse(&text))
                    .await
                    .map_err(|e| format!("reading host figures: {e}")),
                Err(e) => Err(e),
            };
            let containers = match listed {
                Ok(list) => {
                    let cgroups = host.as_ref().ok().filter(|_| crate::faults::docker("cgroups").is_none());
                    let (mut read, missing) = containers::from_cgroups(list, cgroups);
                    if !missing.is_empty() {
                        read.extend(c.stats_counters(missing, !first_containers).await);
                    }
                    // No limit reads as the host's memory, whichever way it was read.
                    if let Some(total) = host.as_ref().ok().and_then(|r| r.mem_total) {
                        read.iter_mut().for_each(|c| c.memory_limit = c.memory_limit.map(|l| l.min(total)));
                    }
                    Ok(read)
                }
                Err(e) => Err(e),
            };
            (host, containers)
        };
        let (host, containers) = match tokio::time::timeout(timeout + Duration::from_secs(2), both).await {
            Ok(r) => r,
            Err(_) => {
                sample.error = Some(format!("no answer within {}s", timeout.as_secs()));
                return sample;
            }
        };
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut failed = Vec::new();
        match host {
            Ok(raw) => {
                sample.readings = raw.readings(&name, sample.at, m.hosts.get(&name));
                m.hosts.insert(name.clone(), raw.again.unwrap_or(raw.counters));
                sample.warnings.extend(raw.warnings);
            }
            Err(e) => failed.push(e),
        }
        match containers {
            Ok(list) => {
                let prev = m.containers.entry(name.clone()).or_default();
                sample.readings.extend(containers::readings(&name, now_ms(), &list, prev));
                sample.warnings.extend(list.iter().filter_map(|c| c.error.clone()));
            }
            Err(e) => failed.push(e.to_string()),
        }
        if failed.len() == 2 {
            sample.error = Some(failed.join("; "));
        } else {
            sample.warnings.extend(failed);
        }
        sample
    }

    /// Stores a round and does a little rolling up and expiry, off the async threads.
    async fn store_round(&self, samples: &[ServerSample], settings: &MetricsSettings) -> Result<()> {
        let store = self.store()?.clone();
        let samples = samples.to_vec();
        let (raw_keep, rollup_keep) =
            (settings.raw_retention.as_millis() / 1000, settings.rollup_retention.as_millis() / 1000);
        let done = tokio::task::spawn_blocking(move || -> std::result::Result<(), crate::store::StoreError> {
            let now = now_ms() / 1000;
            for s in &samples {
                // A server not read is stored as a round with the reason: `metrics_latest` says so.
                match &s.error {
                    None => store.record_metrics(&s.server, s.at, &s.readings)?,
                    Some(e) => store.record_unread(&s.server, s.at, e)?,
                }
                store.housekeep_metrics(&s.server, now, now - raw_keep as i64, now - rollup_keep as i64)?;
            }
            Ok(())
        })
        .await;
        match done {
            Ok(r) => Ok(r?),
            Err(e) => Err(crate::error::Error::Runtime(std::io::Error::other(format!("storing metrics: {e}")))),
        }
    }

    /// Series matching `query`: raw samples when the period lies within the
    /// raw retention and no step of 5 minutes or more is asked, else rollups.
    pub fn metrics_series(&self, query: &MetricsQuery) -> Result<Vec<Series>> {
        let settings = self.desired().map(|d| d.settings.metrics).unwrap_or_default();
        let store = self.store()?;
        let now = now_ms() / 1000;
        let until = query.until.unwrap_or(now);
        let raw_from = now - (settings.raw_retention.as_millis() / 1000) as i64;
        let use_raw = query.since >= raw_from && query.step.is_none_or(|s| s < crate::model::metrics::ROLLUP_SECONDS);
        let series: Vec<_> = store.metric_series()?.into_iter().filter(|s| query.wants(&s.subject, s.figure)).collect();
        let mut out = Vec::new();
        if use_raw {
            let mut by_server: BTreeMap<String, HashMap<i64, Figure>> = BTreeMap::new();
            for s in &series {
                by_server.entry(s.subject.server.clone()).or_default().insert(s.id, s.figure);
            }
            let mut points = HashMap::new();
            for (server, wanted) in &by_server {
                points.extend(store.raw_points(server, wanted, query.since, until)?);
            }
            for s in series {
                let p = points.remove(&s.id).unwrap_or_default();
                out.push(Series { subject: s.subject, figure: s.figure, points: p });
            }
        } else {
            // Rollups, then the raw samples after each series' last rolled-up
            // bucket: a round is rolled up only once its bucket has ended.
            let mut ids = Vec::new();
            let mut wanted: BTreeMap<String, (i64, HashMap<i64, Figure>)> = BTreeMap::new();
            for s in series {
                let p = store.rollup_points(s.id, s.figure, query.since, until)?;
                let cut = p.last().map_or(query.since, |l| l.at + crate::model::metrics::ROLLUP_SECONDS);
                let w = wanted.entry(s.subject.server.clone()).or_insert((cut, HashMap::new()));
                w.0 = w.0.min(cut);
                w.1.insert(s.id, s.figure);
                ids.push((s.id, cut));
                out.push(Series { subject: s.subject, figure: s.figure, points: p });
            }
            let mut raw = HashMap::new();
            for (server, (from, figures)) in &wanted {
                raw.extend(store.raw_points(server, figures, *from, until)?);
            }
            for (s, (id, cut)) in out.iter_mut().zip(ids) {
                s.points.extend(raw.remove(&id).unwrap_or_default().into_iter().filter(|p| p.at >= cut));
            }
        }
        out.retain(|s| !s.points.is_empty());
        if let Some(step) = query.step.filter(|s| *s > 0) {
            for s in &mut out {
                s.points = crate::model::metrics::bucket(&s.points, step);
            }
        }
        Ok(out)
    }

    /// The newest stored sample of each server, its readings filtered by
    /// `query` (`since` and `step` unused).
    pub fn metrics_latest(&self, query: &MetricsQuery) -> Result<Vec<ServerSample>> {
        let store = self.store()?;
        let series: HashMap<i64, (Subject, Figure)> =
            store.metric_series()?.into_iter().map(|s| (s.id, (s.subject, s.figure))).collect();
        let mut out = Vec::new();
        for server in store.metric_servers()? {
            if !query.servers.is_empty() && !query.servers.contains(&server) {
                continue;
            }
            let Some((at, values)) = store.latest_metrics(&server)? else { continue };
            let error = match values.is_empty() {
                true => Some(unread(at, store.unread_reason(&server, at)?.as_deref())),
                false => None,
            };
            let readings = values
                .into_iter()
                .filter_map(|(id, v)| {
                    let (subject, figure) = series.get(&id)?;
                    query.wants(subject, *figure).then(|| Reading {
                        subject: subject.clone(),
                        figure: *figure,
                        value: crate::store::metric_value(*figure, v),
                        at,
                    })
                })
                .collect();
            out.push(ServerSample { server, at, readings, error, warnings: Vec::new() });
        }
        Ok(out)
    }

    /// The alerts firing now (as of the last round).
    pub fn alerts(&self) -> Result<Vec<AlertState>> {
        let store = self.store()?;
        let series: HashMap<i64, Subject> = store.metric_series()?.into_iter().map(|s| (s.id, s.subject)).collect();
        Ok(store
            .firing_alerts()?
            .into_iter()
            .filter_map(|a| {
                Some(AlertState {
                    subject: series.get(&a.series)?.clone(),
                    rule: a.rule,
                    value: a.value,
                    since: a.since,
                })
            })
            .chain(self.backup_alert().ok().flatten())
            .collect())
    }

    /// Runs a round every `Settings.metrics.interval` until `stop` is set
    /// (for `watch` and `serve`). A failed round is logged, never fatal.
    pub async fn metrics_loop(self: Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        loop {
            let interval =
                self.desired().map(|d| d.settings.metrics.interval.to_std()).unwrap_or(Duration::from_secs(30));
            let started = std::time::Instant::now();
            match self.metrics_collect(&CollectScope::default()).await {
                Ok(c) => {
                    for s in c.samples.iter().filter(|s| s.error.is_some()) {
                        tracing::warn!(server = %s.server, error = s.error.as_deref().unwrap_or_default(), "metrics: server not sampled");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics: collection round failed"),
            }
            let wait = interval.saturating_sub(started.elapsed()).max(Duration::from_millis(200));
            let deadline = std::time::Instant::now() + wait;
            while std::time::Instant::now() < deadline {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200).min(deadline - std::time::Instant::now())).await;
            }
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
        }
    }
}
