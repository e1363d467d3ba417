//! Container readings from Docker's counters: CPU from the difference of
//! container and host CPU time (against the collector's previous reading,
//! else Docker's own earlier one), network and block I/O as rates against
//! the previous reading, memory, restarts and health as read.

use std::collections::HashMap;

use crate::model::cgroupfs::Cgroup;
use crate::model::metrics::{Figure, Reading, Subject};
use crate::model::procfs::{Counters, HostRaw};
use crate::transport::docker_metrics::ContainerCounters;

/// Nanoseconds in one of `/proc/stat`'s jiffies: `USER_HZ` is 100 on every
/// Linux Docker runs on (Docker's own stats assume the same).
const NS_PER_JIFFY: u64 = 10_000_000;

/// Fills in the counters of the containers the host reading has cgroup
/// files for (a cgroup path naming the container, so a PID reused or seen
/// from another PID namespace never counts); gives back the others, to be
/// read through Docker's stats.
pub(crate) fn from_cgroups<'a>(
    list: Vec<ContainerCounters>,
    raw: Option<&'a HostRaw>,
) -> (Vec<ContainerCounters>, Vec<ContainerCounters>) {
    let Some(raw) = raw else { return (Vec::new(), list) };
    let (now, pre): ((&Counters, &'a std::collections::BTreeMap<u32, Cgroup>), _) =
        match (&raw.again, &raw.cgroups_again) {
            (Some(again), Some(cgroups)) => ((again, cgroups), Some((&raw.counters, &raw.cgroups))),
            _ => ((&raw.counters, &raw.cgroups), None),
        };
    // The container's own cgroup: its id in the path's last segment (a
    // process moved into a child cgroup, as in a container running systemd
    // or Docker, would count only that child's share).
    let of = |c: &ContainerCounters, cgroups: &'a std::collections::BTreeMap<u32, Cgroup>| -> Option<&'a Cgroup> {
        let cg = cgroups.get(&c.pid?)?;
        let own = |p: &String| p.rsplit('/').next().is_some_and(|last| last.contains(c.id.as_str()));
        let elsewhere = |p: &String| p.contains(c.id.as_str()) && !own(p);
        (cg.cpu_ns.is_some() && cg.paths.iter().any(own) && !cg.paths.iter().any(elsewhere)).then_some(cg)
    };
    let system_ns = |h: &Counters| h.system_jiffies.map(|j| j.saturating_mul(NS_PER_JIFFY));
    let (mut read, mut missing) = (Vec::new(), Vec::new());
    for mut c in list {
        let Some(cg) = of(&c, now.1) else {
            missing.push(c);
            continue;
        };
        c.cpu_ns = cg.cpu_ns;
        c.system_ns = system_ns(now.0);
        c.cpus = u64::from(now.0.cpus.unwrap_or(1));
        if let Some((host, cgroups)) = pre
            && let Some(before) = of(&c, cgroups)
        {
            c.pre_cpu_ns = before.cpu_ns;
            c.pre_system_ns = system_ns(host);
        }
        c.memory = cg.memory_in_use();
        c.memory_limit = cg.memory_limit.map(|l| raw.mem_total.map_or(l, |t| l.min(t)));
        (c.net_rx, c.net_tx) = match cg.net.filter(|_| !c.host_network) {
            Some((rx, tx)) => (Some(rx), Some(tx)),
            None => (None, None),
        };
        (c.block_read, c.block_write) = match cg.block {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        read.push(c);
    }
    (read, missing)
}

/// The counters kept from one round to the next, per container id.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Previous {
    /// Milliseconds (unix) when read.
    pub at_ms: i64,
    pub cpu_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub net: Option<(u64, u64)>,
    pub block: Option<(u64, u64)>,
}

impl Previous {
    pub(crate) fn of(c: &ContainerCounters, at_ms: i64) -> Previous {
        Previous {
            at_ms,
            cpu_ns: c.cpu_ns,
            system_ns: c.system_ns,
            net: c.net_rx.zip(c.net_tx),
            block: c.block_read.zip(c.block_write),
        }
    }
}

/// The subject of a container: its tomo app and service, or (not tomo's)
/// its name as the service.
pub(crate) fn subject(server: &str, c: &ContainerCounters) -> Subject {
    Subject {
        server: server.to_string(),
        app: c.app.clone(),
        service: Some(c.service.clone().unwrap_or_else(|| c.name.clone())),
        device: None,
    }
}

fn cpu(now: (Option<u64>, Option<u64>), before: (Option<u64>, Option<u64>), cpus: u64) -> Option<f64> {
    let (c1, s1) = (now.0?, now.1?);
    let (c0, s0) = (before.0?, before.1?);
    let (dc, ds) = (c1.checked_sub(c0)?, s1.checked_sub(s0)?);
    (ds > 0).then(|| dc as f64 / ds as f64 * cpus.max(1) as f64)
}

fn rate(now: Option<(u64, u64)>, before: Option<(u64, u64)>, secs: f64) -> Option<(f64, f64)> {
    let ((a1, b1), (a0, b0)) = (now?, before?);
    (secs > 0.0).then_some(())?;
    Some((a1.checked_sub(a0)? as f64 / secs, b1.checked_sub(b0)? as f64 / secs))
}

/// The readings of a server's containers; `previous` is updated with this round's counters.
pub(crate) fn readings(
    server: &str,
    at_ms: i64,
    counters: &[ContainerCounters],
    previous: &mut HashMap<String, Previous>,
) -> Vec<Reading> {
    let at = at_ms.div_euclid(1000);
    let mut out = Vec::new();
    for c in counters {
        let s = subject(server, c);
        let mut put = |figure, value: Option<f64>| {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                out.push(Reading { subject: s.clone(), figure, value, at });
            }
        };
        let before = previous.get(&c.id).copied();
        let cpu_now = (c.cpu_ns, c.system_ns);
        let ratio = before
            .and_then(|b| cpu(cpu_now, (b.cpu_ns, b.system_ns), c.cpus))
            .or_else(|| cpu(cpu_now, (c.pre_cpu_ns, c.pre_system_ns), c.cpus));
        put(Figure::ContainerCpuRatio, ratio);
        put(Figure::ContainerMemoryBytes, c.memory.map(|v| v as f64));
        put(Figure::ContainerMemoryLimitBytes, c.memory_limit.filter(|v| *v > 0).map(|v| v as f64));
        let secs = before.map_or(0.0, |b| (at_ms - b.at_ms) as f64 / 1000.0);
        let net = rate(c.net_rx.zip(c.net_tx), before.and_then(|b| b.net), secs);
        put(Figure::ContainerNetworkReceiveBytesPerSecond, net.map(|r| r.0));
        put(Figure::ContainerNetworkTransmitBytesPerSecond, net.map(|r| r.1));
        let block = rate(c.block_read.zip(c.block_write), before.and_then(|b| b.block), secs);
        put(Figure::ContainerBlockReadBytesPerSecond, block.map(|r| r.0));
        put(Figure::ContainerBlockWriteBytesPerSecond, block.map(|r| r.1));
        put(Figure::ContainerRestarts, c.restarts.map(|r| r as f64));
        put(Figure::ContainerHealthy, c.healthy.map(|h| if h { 1.0 } else { 0.0 }));
        if c.cpu_ns.is_some() {
            previous.insert(c.id.clone(), Previous::of(c, at_ms));
        }
    }
    let live: std::collections::HashSet<&str> = counters.iter().map(|c| c.id.as_str()).collect();
    previous.retain(|id, _| live.contains(id.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(cpu_ns: u64, system_ns: u64, rx: u64) -> ContainerCounters {
        ContainerCounters {
            id: "abc".into(),
            name: "web-1".into(),
            app: Some("web".into()),
            service: Some("web".into()),
            cpu_ns: Some(cpu_ns),
            system_ns: Some(system_ns),
            cpus: 2,
            memory: Some(100),
            memory_limit: Some(1000),
            net_rx: Some(rx),
            net_tx: Some(0),
            restarts: Some(3),
            ..ContainerCounters::default()
        }
    }

    fn value(r: &[Reading], f: Figure) -> Option<f64> {
        r.iter().find(|x| x.figure == f).map(|x| x.value)
    }

    #[test]
    fn rates_come_from_the_previous_round() {
        let mut prev = HashMap::new();
        let first = readings("s", 10_000, &[counters(0, 0, 0)], &mut prev);
        assert_eq!(value(&first, Figure::ContainerCpuRatio), None);
        assert_eq!(value(&first, Figure::ContainerRestarts), Some(3.0));
        assert_eq!(value(&first, Figure::ContainerMemoryBytes), Some(100.0));
        // Half the host's CPU time on 2 CPUs = one whole core.
        let second = readings("s", 12_000, &[counters(500, 1000, 4000)], &mut prev);
        assert_eq!(value(&second, Figure::ContainerCpuRatio), Some(1.0));
        assert_eq!(value(&second, Figure::ContainerNetworkReceiveBytesPerSecond), Some(2000.0));
        assert_eq!(second[0].subject.app.as_deref(), Some("web"));
        // A container gone is forgotten.
        readings("s", 13_000, &[], &mut prev);
        assert!(prev.is_empty());
    }

    #[test]
    fn dockers_earlier_reading_serves_the_first_round() {
        let mut c = counters(600, 2000, 0);
        c.pre_cpu_ns = Some(100);
        c.pre_system_ns = Some(1000);
        let r = readings("s", 0, &[c], &mut HashMap::new());
        assert_eq!(value(&r, Figure::ContainerCpuRatio), Some(1.0));
    }
}

#[cfg(test)]
mod cgroup_tests {
    use super::*;
    use crate::model::procfs::HostRaw;

    const ID: &str = "16e515ac8a3ca5ff348ddb6ce17355eb5eb7289d93b79a87627849547ea51bc4";

    fn reading(cpu_ns: u64, jiffies: u64) -> String {
        let d = format!("/sys/fs/cgroup/cpuacct/docker/{ID}");
        let m = format!("/sys/fs/cgroup/memory/docker/{ID}");
        format!(
            "== stat\ncpu  {jiffies} 0 0 0 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n== cgroup\n\
             /proc/42/cgroup:2:cpuacct:/docker/{ID}\n/proc/42/cgroup:4:memory:/docker/{ID}\n\
             /proc/43/cgroup:2:cpuacct:/docker/elsewhere\n\
             {d}/cpuacct.usage:{cpu_ns}\n/sys/fs/cgroup/cpuacct/docker/elsewhere/cpuacct.usage:5\n\
             {m}/memory.usage_in_bytes:1000\n{m}/memory.limit_in_bytes:9223372036854771712\n{m}/memory.stat:total_inactive_file 100\n"
        )
    }

    fn container(id: &str, pid: u32) -> ContainerCounters {
        ContainerCounters { id: id.into(), name: "c".into(), pid: Some(pid), ..ContainerCounters::default() }
    }

    #[test]
    fn counters_come_from_the_cgroup_that_names_the_container() {
        let text = format!("{}\n== meminfo\nMemTotal: 4 kB\n== again\n{}", reading(0, 0), reading(1_000_000_000, 200));
        let raw = HostRaw::parse(&text);
        assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
        let list = vec![container(ID, 42), container("other", 43), container("gone", 44)];
        let (read, missing) = from_cgroups(list, Some(&raw));
        assert_eq!(read.len(), 1);
        let names: Vec<&str> = missing.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(names, ["other", "gone"], "a PID whose cgroup does not name the container is not taken");
        let c = &read[0];
        assert_eq!(c.memory, Some(900));
        assert_eq!(c.memory_limit, Some(4096), "no limit is the host's memory");
        assert_eq!(c.cpus, 2);
        // One second of CPU while the 2 CPUs together ran 200 jiffies (one second each): one whole core.
        let mut prev = HashMap::new();
        let r = readings("s", 0, &read, &mut prev);
        let cpu = r.iter().find(|x| x.figure == Figure::ContainerCpuRatio).map(|x| x.value);
        assert_eq!(cpu, Some(1.0));
    }

    #[test]
    fn a_process_in_a_child_cgroup_of_the_container_is_read_through_stats() {
        // A container running systemd or Docker moves its PID 1 below its own cgroup.
        let text = format!(
            "== stat\ncpu  100 0 0 0 0 0 0 0 0 0\n== cgroup\n/proc/42/cgroup:2:cpuacct:/docker/{ID}/init\n\
             /sys/fs/cgroup/cpuacct/docker/{ID}/init/cpuacct.usage:5\n"
        );
        let raw = HostRaw::parse(&text);
        let (read, missing) = from_cgroups(vec![container(ID, 42)], Some(&raw));
        assert!(read.is_empty() && missing.len() == 1);
    }

    #[test]
    fn without_a_host_reading_every_container_goes_to_dockers_stats() {
        let (read, missing) = from_cgroups(vec![container(ID, 42)], None);
        assert!(read.is_empty());
        assert_eq!(missing.len(), 1);
    }
}
