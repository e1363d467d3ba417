//! Metrics collection over SSH test hosts (network namespaces with their own
//! sshd and dockerd) and `local`: host figures read from the remote `/proc`
//! and `df`, a remote container's figures, the round stored; a server that
//! stops answering mid-collection (its stored round says why, the others
//! are sampled, the round ends in bounded time); 5-minute rollups and
//! expiry over several rounds (the collector's clock shifted back with
//! `TOMO_FAULT_CLOCK_OFFSET`, a debug-build test hook).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tomo::engine::CollectScope;

use crate::fleet::Fleet;
use crate::hosts::TestHost;

const LOCAL: &str = "kind: Server\nname: local\nhost: local\n";
const SETTINGS: &str = "kind: Settings\nmetrics:\n  interval: 1s\n  retention: {raw: 5m, rollup: 20m}\n";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A long-lived engine over the fleet's state (as `tomo watch` holds one).
fn engine(f: &Fleet) -> tomo::Engine {
    let env: std::collections::BTreeMap<String, String> =
        [("DATA_DIRECTORY".to_string(), f.tomo.path().join("data").display().to_string())].into();
    let args = tomo::config::ConfigArgs { config: None, dir: Some(f.tomo.path().join("state")) };
    tomo::Engine::new(tomo::config::Config::load(&args, &env).unwrap())
}

fn sample<'a>(round: &'a Value, server: &str) -> &'a Value {
    round["samples"].as_array().unwrap().iter().find(|s| s["server"] == server).unwrap_or_else(|| panic!("{round}"))
}

fn value(sample: &Value, figure: &str, app: Option<&str>) -> Option<f64> {
    sample["readings"]
        .as_array()?
        .iter()
        .find(|r| r["figure"] == figure && r["subject"]["app"].as_str() == app)
        .and_then(|r| r["value"].as_f64())
}

/// The machine's memory (the test hosts share its kernel).
fn mem_total() -> f64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024.0
}

/// Host figures present and plausible.
fn assert_host_figures(s: &Value) {
    assert!(s["error"].is_null(), "{s}");
    let cpu = value(s, "host_cpu_ratio", None).unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&cpu), "cpu {cpu}: {s}");
    let used = value(s, "host_memory_used_bytes", None).unwrap_or_default();
    let avail = value(s, "host_memory_available_bytes", None).unwrap_or_default();
    let total = mem_total();
    assert!(used > 0.0 && avail > 0.0 && ((used + avail) / total - 1.0).abs() < 0.02, "{used} + {avail} vs {total}");
    assert!(value(s, "host_uptime_seconds", None).unwrap_or_default() > 0.0, "{s}");
    assert!(value(s, "host_load1", None).is_some(), "{s}");
    let mounts = s["readings"].as_array().unwrap().iter().filter(|r| r["figure"] == "host_filesystem_used_bytes");
    let real = mounts.filter_map(|r| {
        let mount = r["subject"]["device"].as_str()?;
        let free = s["readings"]
            .as_array()?
            .iter()
            .find(|x| x["figure"] == "host_filesystem_avail_bytes" && x["subject"]["device"].as_str() == Some(mount))?;
        (r["value"].as_f64()? > 0.0 && free["value"].as_f64()? > 0.0).then_some(mount)
    });
    assert!(real.count() >= 1, "no mount with used and free space: {s}");
}

#[test]
fn two_ssh_hosts_and_local_are_sampled_and_stored() {
    let (h1, h2) = (TestHost::new(true), TestHost::new(true));
    let f = Fleet::new();
    f.manifest("servers.yaml", &format!("{LOCAL}---\n{}---\n{}", h1.server_yaml("h1"), h2.server_yaml("h2")));
    f.manifest("settings.yaml", SETTINGS);
    f.manifest(
        "apps.yaml",
        "kind: App\nname: {p}-far\nserver: h1\nimage: {image}\ninit: true\ncommand: [sh, -c, 'busybox dd if=/dev/zero of=/dev/shm/f bs=1M count=16 && sleep 600']\nresources:\n  memory: 64m\n",
    );
    f.apply();
    let far = f.app("far");
    // Another installation's container on h1, and one no tomo made.
    let labels =
        ["--label", "tomo.installation=another", "--label", "tomo.app=theirs", "--label", "tomo.service=theirs"];
    h1.docker(&[&["run", "-d", "--name", "theirs"][..], &labels, &[crate::fleet::IMAGE, "sleep", "600"]].concat());
    h1.docker(&["run", "-d", "--name", "plain", crate::fleet::IMAGE, "sleep", "600"]);
    let r = f.tomo(&["metrics", "collect", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let round: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    for server in ["h1", "h2", "local"] {
        assert_host_figures(sample(&round, server));
    }
    // The remote container: its figures through the Docker API over SSH.
    let h1s = sample(&round, "h1");
    let mem = value(h1s, "container_memory_bytes", Some(&far)).unwrap_or_default();
    assert!((8e6..70e6).contains(&mem), "{far} at {mem} bytes: {h1s}");
    assert_eq!(value(h1s, "container_memory_limit_bytes", Some(&far)), Some(64.0 * 1024.0 * 1024.0));
    assert!(value(h1s, "container_cpu_ratio", Some(&far)).is_some_and(|c| (0.0..0.5).contains(&c)), "{h1s}");
    assert_eq!(value(h1s, "container_restarts", Some(&far)), Some(0.0));
    assert!(value(sample(&round, "h2"), "container_memory_bytes", Some(&far)).is_none(), "h2 runs no {far}");
    let services = |s: &Value| -> Vec<String> {
        let r = s["readings"].as_array().unwrap().iter();
        r.filter_map(|r| r["subject"]["service"].as_str().map(String::from)).collect()
    };
    assert!(!services(h1s).iter().any(|s| s == "theirs"), "another installation's container: {h1s}");
    assert!(services(h1s).iter().any(|s| s == "plain"), "a container tomo did not make is reported by its name: {h1s}");
    // Without its cgroup files (read with the host's figures), a container's
    // counters come through Docker's stats calls, the same figures.
    let r = f.tomo.run_env(&["metrics", "collect", "--json", "--server", "h1"], &[("TOMO_FAULT_DOCKER", "cgroups:9")]);
    assert_eq!(r.code, 0, "{}", r.all());
    let stats: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let s1 = sample(&stats, "h1");
    let mem2 = value(s1, "container_memory_bytes", Some(&far)).unwrap_or_default();
    assert!((mem2 / mem - 1.0).abs() < 0.2, "{mem} through cgroup files, {mem2} through stats: {s1}");
    assert_eq!(value(s1, "container_memory_limit_bytes", Some(&far)), Some(64.0 * 1024.0 * 1024.0));
    // Stored: read back through `tomo metrics --json`.
    let r = f.tomo(&["metrics", "--json", "--server", "h1", "--since", "4m"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let series = v["series"].as_array().unwrap();
    let stored = |figure: &str, app: Option<&str>| {
        series.iter().any(|s| {
            s["figure"] == figure
                && s["subject"]["server"] == "h1"
                && s["subject"]["app"].as_str() == app
                && s["points"].as_array().is_some_and(|p| !p.is_empty())
        })
    };
    assert!(stored("host_cpu_ratio", None) && stored("host_uptime_seconds", None), "{v}");
    assert!(stored("container_memory_bytes", Some(&far)), "{v}");
    assert!(series.iter().all(|s| s["subject"]["server"] == "h1"), "{v}");
    // (A period within the raw retention: raw samples, not yet rolled up.)
    let table = f.tomo(&["metrics", "--since", "4m"]);
    assert_eq!(table.code, 0, "{}", table.all());
    for server in ["h1", "h2", "local"] {
        assert!(table.stdout.lines().any(|l| l.starts_with(&format!("{server} "))), "{}", table.stdout);
    }
    assert!(!table.stdout.contains("not read"), "{}", table.stdout);
}

/// Sends `signal` to every sshd of the host (its connections' too).
fn signal_sshd(h: &TestHost, signal: &str) {
    let pids = Command::new("ip").args(["netns", "pids", &h.ns]).output().unwrap();
    for pid in String::from_utf8_lossy(&pids.stdout).lines() {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sshd") {
            let _ = Command::new("kill").args([signal, pid]).status();
        }
    }
}

#[test]
fn a_server_that_stops_answering_mid_collection_is_stored_with_the_reason() {
    let (h1, mut h2) = (TestHost::new(true), TestHost::new(true));
    let f = Fleet::new();
    f.manifest("servers.yaml", &format!("{LOCAL}---\n{}---\n{}", h1.server_yaml("h1"), h2.server_yaml("h2")));
    f.manifest("settings.yaml", SETTINGS);
    let engine = engine(&f);
    let rt = rt();
    let all = CollectScope::default();
    let first = rt.block_on(engine.metrics_collect(&all)).unwrap();
    assert!(first.samples.iter().all(|s| s.error.is_none() && !s.readings.is_empty()), "{first:?}");
    // h2's sshd (the connection the engine holds) stops answering: its
    // commands and Docker calls hang. The round ends within its bound.
    signal_sshd(&h2, "-STOP");
    let started = Instant::now();
    let round = rt.block_on(engine.metrics_collect(&all));
    let took = started.elapsed();
    signal_sshd(&h2, "-CONT");
    let round = round.unwrap();
    assert!(took < Duration::from_secs(10), "the round took {took:?}");
    let by = |name: &str| round.samples.iter().find(|s| s.server == name).unwrap();
    let hung = by("h2");
    assert!(hung.error.as_deref().is_some_and(|e| e.contains("no answer within")), "{hung:?}");
    assert!(hung.readings.is_empty(), "{hung:?}");
    for name in ["h1", "local"] {
        let s = by(name);
        assert!(s.error.is_none() && s.readings.iter().any(|r| r.figure.name() == "host_cpu_ratio"), "{s:?}");
    }
    // The stored round says so, with the reason; the others' rounds hold figures.
    let latest = engine.metrics_latest(&tomo::model::metrics::MetricsQuery::default()).unwrap();
    let stored = |name: &str| latest.iter().find(|s| s.server == name).unwrap().clone();
    let h2s = stored("h2");
    let e = h2s.error.unwrap_or_default();
    assert!(e.starts_with("not reached in the latest round") && e.contains("no answer within"), "{e}");
    assert!(stored("h1").error.is_none() && !stored("h1").readings.is_empty());
    let table = f.tomo(&["metrics"]);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("h2: not read: ") && l.contains("no answer within")),
        "{}",
        table.stdout
    );

    // Its sshd killed (connections too): the next round tries to connect
    // again, fails at once, and the stored round gives that reason.
    h2.kill_sshd();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let round = rt.block_on(engine.metrics_collect(&all)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let gone = round.samples.iter().find(|s| s.server == "h2").unwrap();
    let why = gone.error.clone().unwrap_or_default();
    assert!(!why.is_empty() && !why.contains("no answer within"), "{gone:?}");
    assert!(round.samples.iter().filter(|s| s.server != "h2").all(|s| s.error.is_none()), "{round:?}");
    let latest = engine.metrics_latest(&tomo::model::metrics::MetricsQuery::default()).unwrap();
    let e = latest.iter().find(|s| s.server == "h2").unwrap().error.clone().unwrap_or_default();
    assert!(e.ends_with(&why), "stored {e:?}, round said {why:?}");
    // `tomo metrics collect` names it too, and exits 1.
    let r = f.tomo(&["metrics", "collect", "--json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert!(sample(&v, "h2")["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert_host_figures(sample(&v, "h1"));
}

/// One `tomo metrics collect` with the collector's clock at unix second `at`.
fn collect_at(f: &Fleet, at: i64) {
    let offset = (at - unix_now()).to_string();
    let r = f.tomo.run_env(&["metrics", "collect"], &[("TOMO_FAULT_CLOCK_OFFSET", offset.as_str())]);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn rounds_are_rolled_up_into_five_minutes_and_expired() {
    let f = Fleet::new();
    f.manifest("local.yaml", LOCAL);
    f.manifest("settings.yaml", SETTINGS);
    // Not near the end of a 5-minute bucket (the rounds take some seconds).
    if unix_now() % 300 > 240 {
        std::thread::sleep(Duration::from_secs((301 - unix_now() % 300) as u64));
    }
    let now = unix_now();
    let bucket = now - now % 300;
    // Rounds 40 minutes back (its rollup past the 20m retention), two in
    // the bucket 15 minutes back, one in the previous bucket, one now.
    let (old, b, prev) = (bucket - 2400, bucket - 900, bucket - 300);
    for at in [old + 20, b + 20, b + 150, prev + 20] {
        collect_at(&f, at);
    }
    let r = f.tomo(&["metrics", "collect"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let end = unix_now();

    // Rollups (a period past the raw retention reads them).
    let r = f.tomo(&["metrics", "--json", "--since", "1h"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let series = v["series"].as_array().unwrap();
    let points = |figure: &str| -> Vec<Value> {
        let s = series.iter().find(|s| s["figure"] == figure && s["subject"]["app"].is_null());
        s.and_then(|s| s["points"].as_array().cloned()).unwrap_or_else(|| panic!("no {figure}: {v}"))
    };
    let uptime = points("host_uptime_seconds");
    let at: Vec<i64> = uptime.iter().map(|p| p["at"].as_i64().unwrap()).collect();
    // The old bucket expired; the current one, not rolled up yet, comes as
    // its raw round.
    assert_eq!(at[..2], [b, prev], "{uptime:?}");
    assert!(at.len() == 3 && at[2] >= bucket && at[2] <= end, "the newest round, raw: {uptime:?}");
    let mma = |p: &Value| (p["min"].as_f64().unwrap(), p["avg"].as_f64().unwrap(), p["max"].as_f64().unwrap());
    // Two rounds seconds apart in bucket b: the uptime's min and max differ.
    let (min, avg, max) = mma(&uptime[0]);
    assert!(min < max && min <= avg && avg <= max, "{:?}", uptime[0]);
    let (min, avg, max) = mma(&uptime[1]);
    assert!(min == avg && avg == max && min > 0.0, "one round in the previous bucket: {:?}", uptime[1]);
    for p in points("host_cpu_ratio").iter().chain(&points("host_memory_available_bytes")) {
        let (min, avg, max) = mma(p);
        let at = p["at"].as_i64().unwrap();
        assert!(min <= avg && avg <= max && ([b, prev].contains(&at) || at >= bucket), "{p}");
    }

    // Raw samples: the rolled-up rounds older than the raw retention (5m) are gone.
    let store = tomo::store::Store::open_in(&f.tomo.path().join("data")).unwrap();
    let cpu = store.metric_series().unwrap().into_iter().find(|s| s.figure.name() == "host_cpu_ratio").unwrap();
    let wanted: std::collections::HashMap<_, _> = [(cpu.id, cpu.figure)].into();
    let raw = store.raw_points("local", &wanted, 0, i64::MAX).unwrap().remove(&cpu.id).unwrap_or_default();
    let at: Vec<i64> = raw.iter().map(|p| p.at).collect();
    assert!(!at.is_empty() && at.iter().all(|t| *t >= prev), "{at:?}");
    assert!(at.iter().all(|t| *t >= end - 310), "older than the retention: {at:?}");
    assert!(at.last().is_some_and(|t| *t >= end - 5), "the newest round is kept: {at:?}");
}

#[test]
fn a_resident_shell_that_dies_is_replaced_and_the_round_still_read() {
    let h = TestHost::new(true);
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("h"));
    f.manifest("settings.yaml", SETTINGS);
    let engine = engine(&f);
    let rt = rt();
    let scope = CollectScope { servers: vec!["h".into()] };
    let ok = |round: &tomo::engine::Collected| round.samples.iter().all(|s| s.error.is_none());
    let first = rt.block_on(engine.metrics_collect(&scope)).unwrap();
    assert!(ok(&first), "{first:?}");
    let shells = h.session_processes("sh");
    assert_eq!(shells.len(), 1, "one shell kept open: {shells:?}");
    for pid in &shells {
        Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    // The dead shell fails this round's script: one plain command reads it.
    let second = rt.block_on(engine.metrics_collect(&scope)).unwrap();
    assert!(ok(&second) && !second.samples[0].readings.is_empty(), "{second:?}");
    // The next round keeps a new shell open.
    let third = rt.block_on(engine.metrics_collect(&scope)).unwrap();
    assert!(ok(&third), "{third:?}");
    let again = h.session_processes("sh");
    assert!(again.len() == 1 && again != shells, "a new shell: {again:?} (was {shells:?})");
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    let hz = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    ticks / String::from_utf8_lossy(&hz.stdout).trim().parse::<f64>().unwrap()
}

#[test]
#[ignore = "benchmark (5 SSH hosts x 20 containers): measured after the parallel suite, by tests/run.sh"]
fn bench_a_round_over_five_ssh_hosts_of_twenty_containers() {
    const HOSTS: usize = 5;
    const CONTAINERS: usize = 20;
    const ROUNDS: usize = 9;
    const SPACING: Duration = Duration::from_secs(2);
    let hosts: Vec<TestHost> = (0..HOSTS).map(|_| TestHost::new(true)).collect();
    std::thread::scope(|s| {
        for h in &hosts {
            s.spawn(move || {
                for i in 0..CONTAINERS {
                    let name = format!("bench{i}");
                    h.docker(&["run", "-d", "--init", "--name", &name, crate::fleet::IMAGE, "sleep", "3600"]);
                }
            });
        }
    });
    let f = Fleet::new();
    let yaml: Vec<String> = hosts.iter().enumerate().map(|(i, h)| h.server_yaml(&format!("b{i}"))).collect();
    f.manifest("servers.yaml", &yaml.join("---\n"));
    f.manifest("settings.yaml", "kind: Settings\nmetrics:\n  interval: 30s\n");
    let engine = engine(&f);
    let rt = rt();
    let scope = CollectScope { servers: (0..HOSTS).map(|i| format!("b{i}")).collect() };
    // The warm-up round connects (as `watch` keeps its connections open).
    let warm = rt.block_on(engine.metrics_collect(&scope)).unwrap();
    let containers = |c: &tomo::engine::Collected| {
        c.samples
            .iter()
            .map(|s| s.readings.iter().filter(|r| r.figure.name() == "container_memory_bytes").count())
            .sum::<usize>()
    };
    assert!(warm.samples.iter().all(|s| s.error.is_none()), "{warm:?}");
    assert_eq!(containers(&warm), HOSTS * CONTAINERS);
    let mut walls = Vec::new();
    // CPU over the whole loop, the spacing included: what keeping the
    // connections open between rounds costs counts too.
    let cpu0 = cpu_seconds();
    for _ in 0..ROUNDS {
        // Rounds are spaced as the collector spaces them (its interval is at
        // least 1 s, 30 s by default), not back to back: Docker's stats
        // collector sleeps a second after each pass, and a one-shot stats
        // call arriving in that sleep waits for its end, which a round
        // started right after the last one always would.
        std::thread::sleep(SPACING);
        let started = Instant::now();
        let round = rt.block_on(engine.metrics_collect(&scope)).unwrap();
        walls.push(started.elapsed());
        assert!(round.samples.iter().all(|s| s.error.is_none() && s.warnings.is_empty()), "{round:?}");
        assert_eq!(containers(&round), HOSTS * CONTAINERS);
    }
    let cpu = (cpu_seconds() - cpu0) / ROUNDS as f64;
    let each: Vec<String> = walls.iter().map(|w| format!("{:.0}", w.as_secs_f64() * 1000.0)).collect();
    println!("rounds (ms): {}", each.join(" "));
    walls.sort();
    let median = walls[ROUNDS / 2];
    let share = cpu / 30.0 * 100.0;
    println!(
        "metrics round, {HOSTS} SSH hosts x {CONTAINERS} containers: median {:.0} ms (min {:.0}, max {:.0}) over {ROUNDS} rounds; CPU {:.1} ms a round = {share:.3}% of a core at a 30 s interval",
        median.as_secs_f64() * 1000.0,
        walls[0].as_secs_f64() * 1000.0,
        walls[ROUNDS - 1].as_secs_f64() * 1000.0,
        cpu * 1000.0,
    );
    assert!(median <= Duration::from_millis(300), "median round {median:?}");
    assert!(share < 1.0, "{share}% of a core");
}
