//! Containers' resource counters read from their cgroup files, as Docker's
//! stats endpoint reads them, but all of a server's containers in the one
//! command that reads the host's figures (`procfs::SCRIPT`) instead of a
//! stats call per container: Docker 20.10 answers those from a collector
//! that passes once a second, so a round of them costs a second.
//!
//! For each container's main process the script reads `/proc/PID/cgroup`
//! and `/proc/PID/net/dev` and the counter files of the cgroups named
//! there (v2: `cpu.stat`, `memory.current`, `memory.max`, `memory.stat`,
//! `io.stat`; v1: `cpuacct.usage`, `memory.usage_in_bytes`,
//! `memory.limit_in_bytes`, `memory.stat`,
//! `blkio.throttle.io_service_bytes_recursive`), all with one `grep -H`
//! that keeps the lines that count: every line comes as `FILE:LINE`. Pure: no I/O. A line that
//! does not parse is skipped with a warning, never a panic.

use std::collections::{BTreeMap, HashMap};

/// The shell function `k PID...` of `procfs::SCRIPT`, which reads the
/// counters of the processes given (globbing is off there: paths are never
/// patterns). A macro, for `concat!`.
macro_rules! cgroup_script {
    () => {
        r#"k() { f=; for p; do f="$f /proc/$p/cgroup /proc/$p/net/dev"; while IFS=: read -r _ c d; do case $d in *[[:space:]]*) continue ;; esac; case ",$c," in
  ,,) g=/sys/fs/cgroup$d; f="$f $g/cpu.stat $g/memory.current $g/memory.max $g/memory.stat $g/io.stat" ;;
  *,cpuacct,*) f="$f /sys/fs/cgroup/$c$d/cpuacct.usage" ;;
  *,memory,*) g=/sys/fs/cgroup/$c$d; f="$f $g/memory.usage_in_bytes $g/memory.limit_in_bytes $g/memory.stat" ;;
  *,blkio,*) f="$f /sys/fs/cgroup/$c$d/blkio.throttle.io_service_bytes_recursive" ;;
  esac; done 2>/dev/null < /proc/$p/cgroup; done; echo "== cgroup"; [ -z "$f" ] || grep -s -H -E ':|^[0-9]|^max$|^Total |^usage_usec |inactive_file ' $f; }
"#
    };
}

/// The files to read for a process whose `/proc/PID/cgroup` is `text`, in
/// the order the script reads them (for reading them directly on `local`).
pub fn files(pid: u32, text: &str) -> Vec<String> {
    let mut out = vec![format!("/proc/{pid}/cgroup"), format!("/proc/{pid}/net/dev")];
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(c), Some(d)) = (parts.next(), parts.next(), parts.next()) else { continue };
        // As the script: a path with white space would split into several files.
        if d.contains(char::is_whitespace) {
            continue;
        }
        let names: &[&str] = match c {
            "" => &["cpu.stat", "memory.current", "memory.max", "memory.stat", "io.stat"],
            _ if has(c, "cpuacct") => &["cpuacct.usage"],
            _ if has(c, "memory") => &["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat"],
            _ if has(c, "blkio") => &["blkio.throttle.io_service_bytes_recursive"],
            _ => &[],
        };
        let dir = dir(c, d);
        out.extend(names.iter().map(|n| format!("{dir}/{n}")));
    }
    out
}

fn has(controllers: &str, name: &str) -> bool {
    controllers.split(',').any(|c| c == name)
}

/// Where the cgroup `path` of `controllers` (empty: the v2 hierarchy) is mounted.
fn dir(controllers: &str, path: &str) -> String {
    match controllers {
        "" => format!("/sys/fs/cgroup{path}"),
        c => format!("/sys/fs/cgroup/{c}{path}"),
    }
}

/// A process's cgroup paths kept (a real one has one per hierarchy, about
/// a dozen), and the warnings kept from one reading: a hostile server's
/// output costs no more than this.
const MAX_PATHS: usize = 32;
const MAX_WARNINGS: usize = 20;

/// One process's counters, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cgroup {
    /// The cgroup paths of the process (a container's hold its id).
    pub paths: Vec<String>,
    /// Cumulative CPU time, in ns.
    pub cpu_ns: Option<u64>,
    /// Memory charged, the page cache included.
    pub memory: Option<u64>,
    /// Page cache that can be dropped (`inactive_file`).
    pub inactive_file: Option<u64>,
    /// The limit; `u64::MAX` when there is none (`max`).
    pub memory_limit: Option<u64>,
    /// (read, written) bytes.
    pub block: Option<(u64, u64)>,
    /// (received, transmitted) bytes over the process's interfaces, `lo` aside.
    pub net: Option<(u64, u64)>,
}

impl Cgroup {
    /// Memory in use as `docker stats` shows it: without the page cache that can be dropped.
    pub fn memory_in_use(&self) -> Option<u64> {
        self.memory.map(|m| m.saturating_sub(self.inactive_file.unwrap_or(0)))
    }
}

/// `/proc/PID/...` → PID.
fn proc_pid(path: &str, tail: &str) -> Option<u32> {
    path.strip_prefix("/proc/")?.strip_suffix(tail)?.parse().ok()
}

/// The counters of each process in the `FILE:LINE` lines of one reading.
pub fn parse(lines: &[&str], warnings: &mut Vec<String>) -> BTreeMap<u32, Cgroup> {
    let mut out: BTreeMap<u32, Cgroup> = BTreeMap::new();
    let mut dirs: HashMap<String, u32> = HashMap::new();
    for (file, line) in lines.iter().filter_map(|l| l.split_once(':')) {
        let Some(pid) = proc_pid(file, "/cgroup") else { continue };
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(c), Some(d)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if c.is_empty() || ["cpuacct", "memory", "blkio"].iter().any(|n| has(c, n)) {
            dirs.insert(dir(c, d), pid);
        }
        let cg = out.entry(pid).or_default();
        if cg.paths.len() < MAX_PATHS {
            cg.paths.push(d.to_string());
        }
    }
    for (file, line) in lines.iter().filter_map(|l| l.split_once(':')) {
        if let Some(pid) = proc_pid(file, "/net/dev") {
            if let Some(cg) = out.get_mut(&pid) {
                add_net(cg, line, warnings);
            }
            continue;
        }
        let Some((dir, name)) = file.rsplit_once('/') else { continue };
        let Some(cg) = dirs.get(dir).and_then(|pid| out.get_mut(pid)) else { continue };
        if !read_line(cg, name, line) && warnings.len() < MAX_WARNINGS {
            warnings.push(format!("{name}: cannot read `{}`", crate::term::field(line)));
        }
    }
    out
}

/// Takes one line of the counter file `name`; false when it does not parse.
fn read_line(cg: &mut Cgroup, name: &str, line: &str) -> bool {
    let number = || line.trim().parse::<u64>().ok();
    let keyed = |key: &str| {
        let mut w = line.split_whitespace();
        (w.next() == Some(key)).then(|| w.next().and_then(|v| v.parse::<u64>().ok()))
    };
    let set = |slot: &mut Option<u64>, v: Option<u64>| v.map(|v| *slot = Some(v)).is_some();
    match name {
        "cpuacct.usage" => set(&mut cg.cpu_ns, number()),
        "cpu.stat" => keyed("usage_usec").is_none_or(|v| set(&mut cg.cpu_ns, v.map(|us| us.saturating_mul(1000)))),
        "memory.current" | "memory.usage_in_bytes" => set(&mut cg.memory, number()),
        "memory.max" | "memory.limit_in_bytes" => {
            set(&mut cg.memory_limit, if line.trim() == "max" { Some(u64::MAX) } else { number() })
        }
        // v2 calls it `inactive_file`; v1 has that of the cgroup alone and
        // then `total_inactive_file`, with the cgroups below, which wins.
        "memory.stat" => keyed("inactive_file")
            .or_else(|| keyed("total_inactive_file"))
            .is_none_or(|v| set(&mut cg.inactive_file, v)),
        "io.stat" => add_io(cg, line),
        "blkio.throttle.io_service_bytes_recursive" => add_blkio(cg, line),
        _ => true,
    }
}

/// `MAJ:MIN rbytes=N wbytes=N rios=N ...`
fn add_io(cg: &mut Cgroup, line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(_device) = words.next() else { return true };
    let (mut r, mut w) = (0u64, 0u64);
    for kv in words {
        let Some((k, v)) = kv.split_once('=') else { return false };
        let Ok(v) = v.parse::<u64>() else { continue };
        match k {
            "rbytes" => r = v,
            "wbytes" => w = v,
            _ => {}
        }
    }
    let (r0, w0) = cg.block.unwrap_or_default();
    cg.block = Some((r0.saturating_add(r), w0.saturating_add(w)));
    true
}

/// `MAJ:MIN Read N` ... and a closing `Total N`.
fn add_blkio(cg: &mut Cgroup, line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    let (op, v) = match w.as_slice() {
        [_, op, v] => (*op, *v),
        [total, _] if *total == "Total" => {
            cg.block.get_or_insert((0, 0));
            return true;
        }
        _ => return false,
    };
    let Ok(v) = v.parse::<u64>() else { return false };
    let (r, wr) = cg.block.unwrap_or_default();
    cg.block = Some(match op {
        "Read" => (r.saturating_add(v), wr),
        "Write" => (r, wr.saturating_add(v)),
        _ => (r, wr),
    });
    true
}

/// A line of the process's `/proc/PID/net/dev`.
fn add_net(cg: &mut Cgroup, line: &str, warnings: &mut Vec<String>) {
    let Some((iface, rest)) = line.split_once(':') else { return };
    let iface = iface.trim();
    if iface.contains('|') || iface == "lo" {
        return;
    }
    let n: Option<Vec<u64>> = rest.split_whitespace().map(|w| w.parse().ok()).collect();
    match n {
        Some(n) if n.len() >= 9 => {
            let (rx, tx) = cg.net.unwrap_or_default();
            cg.net = Some((rx.saturating_add(n[0]), tx.saturating_add(n[8])));
        }
        _ if warnings.len() < MAX_WARNINGS => {
            warnings.push(format!("net/dev: cannot read `{}`", crate::term::field(line)));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
