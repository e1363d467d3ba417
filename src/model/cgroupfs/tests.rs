//! The cgroup counter files parsed as Docker's stats read them: v1 and v2,
//! broken lines, and any text without a panic.

use super::*;

const ID: &str = "16e515ac8a3ca5ff348ddb6ce17355eb5eb7289d93b79a87627849547ea51bc4";

/// What the script printed for a busy container with `-m 64m` on a cgroup
/// v1 host (Docker 20.10), `memory.stat` cut to its lines that count.
fn v1() -> String {
    let cg = |n: u32, c: &str| format!("/proc/2368/cgroup:{n}:{c}:/docker/{ID}\n");
    let mut s = String::new();
    for (n, c) in [(9, "name=systemd"), (7, "blkio"), (4, "memory"), (2, "cpuacct"), (1, "cpu"), (0, "")] {
        s.push_str(&cg(n, c));
    }
    s.push_str(
        "/proc/2368/net/dev:Inter-|   Receive                                                |  Transmit\n\
         /proc/2368/net/dev: face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
         /proc/2368/net/dev:    lo:     900       0    0    0    0     0          0         0      900       0    0    0    0     0       0          0\n\
         /proc/2368/net/dev:  eth0:     486       5    0    0    0     0          0         0       40       0    0    0    0     0       0          0\n",
    );
    let f = |dir: &str, name: &str, line: &str| format!("/sys/fs/cgroup/{dir}/docker/{ID}/{name}:{line}\n");
    s.push_str(&f("blkio", "blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096"));
    s.push_str(&f("blkio", "blkio.throttle.io_service_bytes_recursive", "8:0 Write 512"));
    s.push_str(&f("blkio", "blkio.throttle.io_service_bytes_recursive", "8:0 Sync 4608"));
    s.push_str(&f("blkio", "blkio.throttle.io_service_bytes_recursive", "Total 4608"));
    s.push_str(&f("memory", "memory.usage_in_bytes", "499712"));
    s.push_str(&f("memory", "memory.limit_in_bytes", "67108864"));
    s.push_str(&f("memory", "memory.stat", "cache 8192"));
    s.push_str(&f("memory", "memory.stat", "inactive_file 4096"));
    s.push_str(&f("memory", "memory.stat", "total_inactive_file 8192"));
    s.push_str(&f("cpuacct", "cpuacct.usage", "1064368385"));
    s
}

fn parsed(text: &str) -> (BTreeMap<u32, Cgroup>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut warnings = Vec::new();
    (parse(&lines, &mut warnings), warnings)
}

#[test]
fn a_cgroup_v1_container_is_read_as_docker_stats_reads_it() {
    let (all, warnings) = parsed(&v1());
    assert!(warnings.is_empty(), "{warnings:?}");
    let cg = &all[&2368];
    assert!(cg.paths.iter().all(|p| p.contains(ID)));
    assert_eq!(cg.cpu_ns, Some(1_064_368_385));
    assert_eq!(cg.memory_in_use(), Some(499_712 - 8192), "total_inactive_file wins");
    assert_eq!(cg.memory_limit, Some(67_108_864));
    assert_eq!(cg.block, Some((4096, 512)));
    assert_eq!(cg.net, Some((486, 40)), "lo is left out");
}

#[test]
fn a_cgroup_v2_container_is_read_too() {
    let d = format!("/sys/fs/cgroup/system.slice/docker-{ID}.scope");
    let text = format!(
        "/proc/7/cgroup:0::/system.slice/docker-{ID}.scope\n\
         {d}/cpu.stat:usage_usec 2500\n{d}/cpu.stat:user_usec 2000\n\
         {d}/memory.current:1000000\n{d}/memory.max:max\n\
         {d}/memory.stat:anon 4096\n{d}/memory.stat:inactive_file 1000\n\
         {d}/io.stat:8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n\
         {d}/io.stat:8:16 rbytes=1 wbytes=2 rios=1 wios=2 dbytes=0 dios=0\n"
    );
    let (all, warnings) = parsed(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let cg = &all[&7];
    assert_eq!(cg.cpu_ns, Some(2_500_000));
    assert_eq!(cg.memory_in_use(), Some(999_000));
    assert_eq!(cg.memory_limit, Some(u64::MAX));
    assert_eq!(cg.block, Some((11, 22)));
    assert_eq!(cg.net, None, "no net/dev read");
}

#[test]
fn the_files_read_directly_are_those_the_script_reads() {
    let text = format!("2:cpu,cpuacct:/docker/{ID}\n4:memory:/docker/{ID}\n1:name=systemd:/x\n0::/docker/{ID}\n");
    let f = files(9, &text);
    assert_eq!(f[0], "/proc/9/cgroup");
    assert!(f.contains(&format!("/sys/fs/cgroup/cpu,cpuacct/docker/{ID}/cpuacct.usage")), "{f:?}");
    assert!(f.contains(&format!("/sys/fs/cgroup/memory/docker/{ID}/memory.stat")), "{f:?}");
    assert!(f.contains(&format!("/sys/fs/cgroup/docker/{ID}/cpu.stat")), "{f:?}");
    assert!(!f.iter().any(|p| p.contains("/x/")), "{f:?}");
    // A path with white space would be split by the script: left out by both.
    let f = files(9, "4:memory:/docker/a b /proc/1/net/dev\n");
    assert_eq!(f.len(), 2, "{f:?}");
}

#[test]
fn a_flood_of_paths_and_bad_lines_is_bounded() {
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("/proc/7/cgroup:{i}:memory:/p{i}\n/proc/7/net/dev:  e{i}: x\n"));
    }
    let (all, warnings) = parsed(&text);
    assert_eq!(all[&7].paths.len(), MAX_PATHS);
    assert_eq!(warnings.len(), MAX_WARNINGS);
}

#[test]
fn broken_lines_are_warnings_never_panics() {
    let mut text = v1();
    text.push_str(&format!("/sys/fs/cgroup/cpuacct/docker/{ID}/cpuacct.usage:lots\n"));
    text.push_str("/proc/2368/net/dev:  eth1: 1 2\n/proc/x/cgroup:::\n:\n\n/proc/2368/cgroup:nonsense\n");
    text.push_str(&format!("/sys/fs/cgroup/memory/docker/{ID}/memory.stat:total_inactive_file ü\n"));
    let (all, warnings) = parsed(&text);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert_eq!(all[&2368].cpu_ns, Some(1_064_368_385), "the good reading stays");
    for cut in 0..text.len() {
        if text.is_char_boundary(cut) {
            parsed(&text[..cut]);
        }
    }
}

proptest::proptest! {
    #[test]
    fn any_lines_parse_without_panic(text in "((/proc/[0-9]{1,3}/(cgroup|net/dev)|/sys/fs/cgroup/(memory/)?d/(memory.stat|io.stat|cpu.stat|memory.max|blkio.throttle.io_service_bytes_recursive)):[ -~]{0,40}\n){0,30}") {
        let (all, _) = parsed(&text);
        proptest::prop_assert!(all.values().all(|c| c.memory_in_use().is_none_or(|m| m <= c.memory.unwrap_or(0))));
    }
}
