//! A server's own figures, read from what one shell command prints
//! (`SCRIPT`: `/proc/stat`, `/proc/net/dev`, `/proc/uptime`,
//! `/proc/meminfo`, `/proc/loadavg`, `/proc/mounts` and `df -P -k`, each
//! after a `== NAME` line), parsed here. Pure: no I/O. A line that does not
//! parse is skipped with a warning, never a panic.

use std::collections::BTreeMap;

use super::cgroupfs::{self, Cgroup};
use super::metrics::{Figure, Reading, Subject};

/// The command run on a server (`sh -c SCRIPT tomo-metrics 1|2 PID...`):
/// with `2` the counters are read twice a second apart, so that one call
/// gives rates; the PIDs are the containers' main processes, whose cgroup
/// counters are read with the host's (`cgroupfs`).
pub const SCRIPT: &str = concat!(
    "set -f; n=$1; shift\n",
    cgroup_script!(),
    r#"c() { echo "== uptime"; cat /proc/uptime; echo "== stat"; grep '^cpu' /proc/stat; echo "== net"; cat /proc/net/dev; k "$@"; }
echo "tomo-metrics 1"; c "$@"
echo "== meminfo"; cat /proc/meminfo
echo "== loadavg"; cat /proc/loadavg
echo "== mounts"; cat /proc/mounts
echo "== df"; df -P -k 2>/dev/null
if [ "$n" = 2 ]; then sleep 1; echo "== again"; c "$@"; fi
echo "== end""#
);

/// The files the script reads, for reading them directly on `local`.
pub const SECTIONS: [(&str, &str); 6] = [
    ("uptime", "/proc/uptime"),
    ("stat", "/proc/stat"),
    ("net", "/proc/net/dev"),
    ("meminfo", "/proc/meminfo"),
    ("loadavg", "/proc/loadavg"),
    ("mounts", "/proc/mounts"),
];

/// Cumulative counters, turned into rates against an earlier reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Seconds since boot.
    pub uptime: Option<f64>,
    /// (all, idle + iowait) jiffies.
    pub cpu: Option<(u64, u64)>,
    /// (received, transmitted) bytes over the real interfaces.
    pub net: Option<(u64, u64)>,
    /// How many CPUs `/proc/stat` lists.
    pub cpus: Option<u32>,
    /// user to softirq jiffies of all CPUs: the base Docker's stats give a
    /// container's CPU time against (`system_cpu_usage`), steal left out.
    pub system_jiffies: Option<u64>,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub path: String,
    pub used: u64,
    pub avail: u64,
}

/// What one run of the script says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRaw {
    pub counters: Counters,
    /// The second reading, a second later (`SCRIPT 2`).
    pub again: Option<Counters>,
    /// The containers' counters, by main process, with each reading.
    pub cgroups: BTreeMap<u32, Cgroup>,
    pub cgroups_again: Option<BTreeMap<u32, Cgroup>>,
    pub mem_total: Option<u64>,
    pub mem_available: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    pub load: Option<[f64; 3]>,
    pub mounts: Vec<Mount>,
    pub warnings: Vec<String>,
}

/// Filesystem types that hold no user data (or are another mount's view).
const VIRTUAL: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "overlay",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "squashfs",
    "nsfs",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "hugetlbfs",
    "fusectl",
    "configfs",
    "binfmt_misc",
    "ramfs",
    "rpc_pipefs",
    "efivarfs",
    "fuse.lxcfs",
    "selinuxfs",
    "nfsd",
    "aufs",
];

/// Splits the text into its `== NAME` sections.
fn sections(text: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            out.push((name.trim(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line);
        }
    }
    out
}

impl HostRaw {
    /// Parses the script's output (or the same sections read directly).
    pub fn parse(text: &str) -> HostRaw {
        let mut raw = HostRaw::default();
        let mut types: Vec<(String, String)> = Vec::new();
        let mut df: Vec<&str> = Vec::new();
        let mut again = false;
        for (name, lines) in sections(text) {
            let counters = if again { raw.again.get_or_insert_with(Counters::default) } else { &mut raw.counters };
            match name {
                "uptime" => counters.uptime = one(&mut raw.warnings, name, &lines, parse_uptime),
                "stat" => {
                    counters.cpu = one(&mut raw.warnings, name, &lines, parse_cpu);
                    counters.system_jiffies = lines.first().and_then(|l| docker_system(l));
                    let n = lines
                        .iter()
                        .filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())));
                    counters.cpus = u32::try_from(n.count()).ok().filter(|n| *n > 0);
                }
                "cgroup" => {
                    let cgroups = cgroupfs::parse(&lines, &mut raw.warnings);
                    match again {
                        true => raw.cgroups_again = Some(cgroups),
                        false => raw.cgroups = cgroups,
                    }
                }
                "net" => counters.net = parse_net(&mut raw.warnings, &lines),
                "meminfo" => parse_meminfo(&mut raw, &lines),
                "loadavg" => raw.load = one(&mut raw.warnings, name, &lines, parse_load),
                "mounts" => types = lines.iter().filter_map(|l| parse_mount_line(l)).collect(),
                "df" => df = lines,
                "again" => again = true,
                _ => {}
            }
        }
        raw.mounts = parse_df(&mut raw.warnings, &df, &types);
        raw
    }

    /// The readings of this sample for `server` at `at`: the gauges, and the
    /// rates against `before` (an earlier reading of the same server) or the
    /// sample's own second reading.
    pub fn readings(&self, server: &str, at: i64, before: Option<&Counters>) -> Vec<Reading> {
        let host = Subject { server: server.to_string(), ..Subject::default() };
        let mut out = Vec::new();
        let mut put = |subject: &Subject, figure, value: Option<f64>| {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                out.push(Reading { subject: subject.clone(), figure, value, at });
            }
        };
        let (from, to) = match (&self.again, before) {
            (Some(again), _) => (Some(&self.counters), again),
            (None, b) => (b, &self.counters),
        };
        let r = from.map(|f| rates(f, to)).unwrap_or_default();
        put(&host, Figure::HostCpuRatio, r.cpu);
        put(&host, Figure::HostNetworkReceiveBytesPerSecond, r.rx);
        put(&host, Figure::HostNetworkTransmitBytesPerSecond, r.tx);
        let load = self.load;
        put(&host, Figure::HostLoad1, load.map(|l| l[0]));
        put(&host, Figure::HostLoad5, load.map(|l| l[1]));
        put(&host, Figure::HostLoad15, load.map(|l| l[2]));
        let used = self.mem_total.zip(self.mem_available).map(|(t, a)| t.saturating_sub(a) as f64);
        put(&host, Figure::HostMemoryUsedBytes, used);
        put(&host, Figure::HostMemoryAvailableBytes, self.mem_available.map(|a| a as f64));
        let swap = self.swap_total.zip(self.swap_free).map(|(t, f)| t.saturating_sub(f) as f64);
        put(&host, Figure::HostSwapUsedBytes, swap);
        put(&host, Figure::HostUptimeSeconds, to.uptime);
        for m in &self.mounts {
            let s = Subject { device: Some(m.path.clone()), ..host.clone() };
            put(&s, Figure::HostFilesystemUsedBytes, Some(m.used as f64));
            put(&s, Figure::HostFilesystemAvailBytes, Some(m.avail as f64));
        }
        out
    }
}

#[derive(Debug, Default)]
struct Rates {
    cpu: Option<f64>,
    rx: Option<f64>,
    tx: Option<f64>,
}

/// Rates between two readings; none across a reboot or a counter reset.
fn rates(from: &Counters, to: &Counters) -> Rates {
    let mut r = Rates::default();
    if let (Some((all0, idle0)), Some((all1, idle1))) = (from.cpu, to.cpu)
        && all1 > all0
        && idle1 >= idle0
    {
        let busy = 1.0 - (idle1 - idle0) as f64 / (all1 - all0) as f64;
        r.cpu = Some(busy.clamp(0.0, 1.0));
    }
    let dt = from.uptime.zip(to.uptime).map(|(a, b)| b - a).filter(|d| *d > 0.0);
    if let (Some(dt), Some((rx0, tx0)), Some((rx1, tx1))) = (dt, from.net, to.net)
        && rx1 >= rx0
        && tx1 >= tx0
    {
        r.rx = Some((rx1 - rx0) as f64 / dt);
        r.tx = Some((tx1 - tx0) as f64 / dt);
    }
    r
}

/// The first line of a one-line section, parsed, or a warning.
fn one<T>(warnings: &mut Vec<String>, name: &str, lines: &[&str], f: fn(&str) -> Option<T>) -> Option<T> {
    let line = lines.first().copied().unwrap_or_default();
    let v = f(line);
    if v.is_none() {
        warnings.push(format!("{name}: cannot read `{}`", crate::term::field(line)));
    }
    v
}

fn parse_uptime(line: &str) -> Option<f64> {
    line.split_whitespace().next()?.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

/// `cpu  user nice system idle iowait irq softirq steal [guest guest_nice]`
/// (guest time is already in user).
fn parse_cpu(line: &str) -> Option<(u64, u64)> {
    let mut words = line.split_whitespace();
    if words.next()? != "cpu" {
        return None;
    }
    let n: Vec<u64> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
    if n.len() < 4 {
        return None;
    }
    let all = n.iter().take(8).fold(0u64, |a, v| a.saturating_add(*v));
    let idle = n[3].saturating_add(n.get(4).copied().unwrap_or(0));
    Some((all, idle))
}

/// The sum of the first seven figures of the `cpu` line, as Docker sums them.
fn docker_system(line: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    (words.next()? == "cpu").then_some(())?;
    let n: Vec<u64> = words.take(7).map(|w| w.parse().ok()).collect::<Option<_>>()?;
    (n.len() == 7).then(|| n.iter().fold(0u64, |a, v| a.saturating_add(*v)))
}

fn parse_load(line: &str) -> Option<[f64; 3]> {
    let v: Vec<f64> = line.split_whitespace().take(3).map(|w| w.parse().ok()).collect::<Option<_>>()?;
    let l = [*v.first()?, *v.get(1)?, *v.get(2)?];
    l.iter().all(|x| x.is_finite() && *x >= 0.0).then_some(l)
}

/// Interfaces whose traffic is counted elsewhere too (containers' pairs and bridges).
fn counted_elsewhere(iface: &str) -> bool {
    iface == "lo" || ["veth", "docker", "br-"].iter().any(|p| iface.starts_with(p))
}

fn parse_net(warnings: &mut Vec<String>, lines: &[&str]) -> Option<(u64, u64)> {
    let mut total: Option<(u64, u64)> = None;
    for line in lines.iter().filter(|l| l.contains(':')) {
        let Some((iface, rest)) = line.split_once(':') else { continue };
        let iface = iface.trim();
        if iface.contains('|') {
            continue;
        }
        let n: Option<Vec<u64>> = rest.split_whitespace().map(|w| w.parse().ok()).collect();
        match n {
            Some(n) if n.len() >= 9 => {
                if !counted_elsewhere(iface) {
                    let (rx, tx) = total.unwrap_or_default();
                    total = Some((rx.saturating_add(n[0]), tx.saturating_add(n[8])));
                }
            }
            _ => warnings.push(format!("net: cannot read `{}`", crate::term::field(line))),
        }
    }
    total
}

fn parse_meminfo(raw: &mut HostRaw, lines: &[&str]) {
    for line in lines {
        let mut w = line.split_whitespace();
        let (Some(key), Some(value)) = (w.next(), w.next()) else { continue };
        let slot = match key {
            "MemTotal:" => &mut raw.mem_total,
            "MemAvailable:" => &mut raw.mem_available,
            "SwapTotal:" => &mut raw.swap_total,
            "SwapFree:" => &mut raw.swap_free,
            _ => continue,
        };
        match value.parse::<u64>() {
            Ok(kb) => *slot = Some(kb.saturating_mul(1024)),
            Err(_) => raw.warnings.push(format!("meminfo: cannot read `{}`", crate::term::field(line))),
        }
    }
}

/// `/proc/mounts` escapes spaces and the like as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mount_line(line: &str) -> Option<(String, String)> {
    let mut w = line.split_whitespace();
    let (_dev, path, fstype) = (w.next()?, w.next()?, w.next()?);
    Some((unescape(path), fstype.to_string()))
}

/// `df -P -k`: `Filesystem 1024-blocks Used Available Capacity Mounted on`;
/// real filesystems only, each device once (its shortest mount point).
fn parse_df(warnings: &mut Vec<String>, lines: &[&str], types: &[(String, String)]) -> Vec<Mount> {
    let mut seen: Vec<(String, Mount)> = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty() && !l.starts_with("Filesystem")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let parsed = match w.as_slice() {
            [dev, size, used, avail, _cap, path @ ..] if !path.is_empty() => size
                .parse::<u64>()
                .ok()
                .zip(used.parse::<u64>().ok())
                .zip(avail.parse::<u64>().ok())
                .map(|((size, used), avail)| (dev.to_string(), size, used, avail, path.join(" "))),
            _ => None,
        };
        let Some((dev, size, used, avail, path)) = parsed else {
            warnings.push(format!("df: cannot read `{}`", crate::term::field(line)));
            continue;
        };
        let fstype = types.iter().rev().find(|(p, _)| *p == path).map(|(_, t)| t.as_str());
        let real = fstype.is_none_or(|t| !VIRTUAL.contains(&t)) && size > 0 && !path.starts_with("/var/lib/docker/");
        if !real || fstype.is_none() && !dev.starts_with('/') {
            continue;
        }
        let mount = Mount { path, used: used.saturating_mul(1024), avail: avail.saturating_mul(1024) };
        match seen.iter_mut().find(|(d, _)| *d == dev) {
            Some((_, m)) if m.path.len() > mount.path.len() => *m = mount,
            Some(_) => {}
            None => seen.push((dev, mount)),
        }
    }
    seen.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests;
