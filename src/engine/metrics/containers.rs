//! Container readings from Docker's counters: CPU from the difference of
//! container and host CPU time (against the collector's previous reading,
//! else Docker's own earlier one), network and block I/O as rates against
//! the previous reading, memory, restarts and health as read.

use std::collections::HashMap;

use crate::model::metrics::{Figure, Reading, Subject};
use crate::transport::docker_metrics::ContainerCounters;

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
