//! Docker Engine installed by `tomo apply` on real servers: a fresh booted
//! Debian 12 (systemd, apt through a caching proxy; `debhost`) gets
//! `docker.io` from Debian's packages, and the stand-in Alpine, Fedora and
//! Arch servers (`standin`) show the commands of the other systems going
//! over SSH, in order, behind `sudo -n`, with their faults.

use std::time::{Duration, Instant};

use crate::debhost::DebianHost;
use crate::fleet::Fleet;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An app of the test's fleet on `server`.
pub fn app(name: &str, server: &str) -> String {
    format!(
        "kind: App\nname: {{p}}-{name}\nserver: {server}\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\n"
    )
}

/// The actions of `plan --json`.
pub fn plan_json(f: &Fleet) -> serde_json::Value {
    plan_json_with(f, &[])
}

/// The actions of `plan --json` with more options.
pub fn plan_json_with(f: &Fleet, more: &[&str]) -> serde_json::Value {
    let args: Vec<&str> = ["plan", "--json"].iter().chain(more).copied().collect();
    let r = f.tomo(&args);
    assert!(r.code == 0 || r.code == 2, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("plan --json: {e}\n{}", r.stdout))
}

/// The `plan --json` actions on `server`: (id, object, after ids, the action).
pub fn actions_on<'a>(plan: &'a serde_json::Value, server: &str) -> Vec<&'a serde_json::Value> {
    plan["actions"].as_array().expect("actions").iter().filter(|a| a["server"] == server).collect()
}

/// The commands (`run` steps) of an Engine action of `plan --json`, with `sudo -n --` when behind sudo.
pub fn commands(action: &serde_json::Value) -> Vec<String> {
    let steps = action["steps"].as_array().expect("steps");
    steps
        .iter()
        .filter(|s| s["step"] == "run")
        .map(|s| {
            let argv: Vec<&str> = s["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            let sudo = if s["sudo"] == true { "sudo -n -- " } else { "" };
            format!("{sudo}{}", argv.join(" "))
        })
        .collect()
}

#[test]
fn a_fresh_debian_server_gets_docker_from_its_packages_in_one_apply() {
    let h = DebianHost::boot();
    let rt = rt();
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("deb", "{ensure: present}"));
    f.manifest("apps.yaml", &app("web", "deb"));
    // The plan: the Engine first, with its commands, the server's app after it.
    let t = Instant::now();
    let plan = f.tomo(&["plan", "--detailed-exitcode", "--verbose"]);
    let plan_install = t.elapsed();
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.stdout.contains("+ docker-engine latest (apt: docker.io) on deb"), "{}", plan.stdout);
    for cmd in [
        "$ env DEBIAN_FRONTEND=noninteractive apt-get update",
        "$ env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io",
        "$ systemctl enable --now docker.service",
    ] {
        assert!(plan.stdout.contains(cmd), "{cmd}:\n{}", plan.stdout);
    }
    let json = plan_json(&f);
    let on = actions_on(&json, "deb");
    let engine = on.iter().find(|a| a["op"] == "docker_engine").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        commands(engine),
        [
            "env DEBIAN_FRONTEND=noninteractive apt-get update",
            "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io",
            "systemctl enable --now docker.service",
        ],
        "root runs them without sudo: {engine:#}"
    );
    let apps: Vec<_> = on.iter().filter(|a| a["op"] != "docker_engine").collect();
    assert!(!apps.is_empty(), "{json:#}");
    for a in &apps {
        let after: Vec<_> = a["after"].as_array().unwrap().iter().collect();
        assert!(after.contains(&&engine["id"]), "{a:#} does not wait for the Engine: {json:#}");
    }
    // This host cannot run containers: the Engine alone is applied here
    // (apps after an install run on the namespace hosts, below).
    f.remove_manifest("apps.yaml");
    let t = Instant::now();
    let r = f.tomo(&["apply", "--auto-approve"]);
    let install = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.all());
    let out = h.sh(
        &rt,
        "systemctl is-enabled docker.service; systemctl is-active docker.service; dpkg-query -W -f='${Status}\\n' docker.io",
        Duration::from_secs(20),
    );
    assert_eq!(out.stdout, "enabled\nactive\ninstall ok installed\n", "{out:?}");
    // The Engine answers through tomo's SSH transport.
    let test = f.tomo(&["server", "test", "deb"]);
    assert_eq!(test.code, 0, "{}", test.all());
    assert!(test.stdout.contains("docker version"), "{}", test.stdout);
    let list = f.tomo(&["server", "list"]);
    assert!(list.stdout.contains("20.10") && list.stdout.contains("debian 12"), "{}", list.stdout);
    assert!(test.stdout.contains("debian 12"), "{}", test.stdout);
    // A second apply has nothing to do.
    let t = Instant::now();
    f.assert_converged();
    let plan_noop = t.elapsed();
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    // How long dpkg took (unpack and configure), from apt's own log in the guest.
    let dpkg = h.sh(&rt, "sed -n 's/^\\(Start\\|End\\)-Date: //p' /var/log/apt/history.log", Duration::from_secs(10));
    let stamps: Vec<i64> = dpkg
        .stdout
        .lines()
        .filter_map(|l| {
            let out = std::process::Command::new("date").args(["-d", l, "+%s"]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        })
        .collect();
    assert_eq!(stamps.len(), 2, "{dpkg:?}");
    let fetched = std::process::Command::new("du").arg("-sm").arg(h.dir.path().join("acng/cache")).output().unwrap();
    let fetched = String::from_utf8_lossy(&fetched.stdout).split_whitespace().next().unwrap_or("?").to_string();
    eprintln!(
        "debian install: boot {:.1}s; plan (needs Docker) {:.2}s; apply {:.1}s, of which dpkg unpack+configure ~{}s \
         (the rest: apt-get update, download of {} MB through the proxy, service start, checks); no-op plan {:.2}s",
        h.boot_time.as_secs_f64(),
        plan_install.as_secs_f64(),
        install.as_secs_f64(),
        stamps[1] - stamps[0],
        fetched,
        plan_noop.as_secs_f64(),
    );
}

fn timed(f: &Fleet, args: &[&str]) -> Duration {
    let t = Instant::now();
    let r = f.tomo(args);
    assert!(r.code == 0 || r.code == 2, "{}", r.all());
    t.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn planning_a_server_that_needs_docker_costs_at_most_half_again_a_noop_plan() {
    // Two fresh servers: one gets Docker first (then is planned as a plain,
    // unmanaged server: the no-op plan), the other still needs it. Their
    // plans are timed in turns, so that load on the machine hits both alike.
    let (needs_host, noop_host) = (DebianHost::boot(), DebianHost::boot());
    let needs = Fleet::new();
    needs.manifest("servers.yaml", &needs_host.server_yaml("deb", "{ensure: present}"));
    let noop = Fleet::new();
    noop.manifest("servers.yaml", &noop_host.server_yaml("deb", "{ensure: present}"));
    noop.apply();
    let managed: Vec<Duration> = (0..5).map(|_| timed(&noop, &["plan", "--detailed-exitcode"])).collect();
    noop.manifest("servers.yaml", &noop_host.server_yaml("deb", "{socket: /var/run/docker.sock}"));
    noop.assert_converged();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        a.push(timed(&needs, &["plan", "--detailed-exitcode"]));
        b.push(timed(&noop, &["plan", "--detailed-exitcode"]));
    }
    let (needs_t, noop_t, managed_t) = (median(a), median(b), median(managed));
    eprintln!(
        "plan medians: needs Docker {:.0} ms, plain no-op {:.0} ms (9 runs each, in turns); no-op with `ensure: present` {:.0} ms",
        needs_t.as_secs_f64() * 1000.0,
        noop_t.as_secs_f64() * 1000.0,
        managed_t.as_secs_f64() * 1000.0
    );
    assert!(needs_t.as_secs_f64() <= 1.5 * noop_t.as_secs_f64(), "{needs_t:?} > 1.5 × {noop_t:?}");
}

#[test]
fn a_network_failure_mid_install_fails_the_action_and_the_next_apply_recovers() {
    let mut h = DebianHost::boot();
    let rt = rt();
    // The package lists are fetched; then the mirror goes away before the packages are.
    let out = h.sh(&rt, "apt-get update -qq", Duration::from_secs(120));
    assert!(out.success(), "{out:?}");
    h.stop_proxy();
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("deb", "{ensure: present}"));
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let all = r.all();
    assert!(all.contains("apt-get") && all.contains("failed with status 100"), "{all}");
    assert!(all.contains("Could not connect") || all.contains("Failed to fetch"), "{all}");
    let out = h.sh(
        &rt,
        "dpkg-query -W -f='${Status}' docker.io 2>&1; command -v dockerd || echo none",
        Duration::from_secs(10),
    );
    assert!(out.stdout.ends_with("none\n") && !out.stdout.contains("install ok installed"), "{out:?}");
    h.start_proxy();
    f.apply();
    let out = h.sh(&rt, "systemctl is-active docker.service", Duration::from_secs(10));
    assert_eq!(out.stdout, "active\n", "{out:?}");
    f.assert_converged();
}

#[test]
fn a_daemon_that_does_not_come_up_on_debian_fails_naming_the_unit() {
    let h = DebianHost::boot();
    let rt = rt();
    // A configuration dockerd refuses: the package installs, the daemon does not start.
    let out = h.sh(
        &rt,
        "mkdir -p /etc/docker && echo '{\"no-such-option\": true}' > /etc/docker/daemon.json",
        Duration::from_secs(10),
    );
    assert!(out.success(), "{out:?}");
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("deb", "{ensure: present}"));
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let all = r.all();
    assert!(all.contains("`systemctl enable --now docker.service` failed with status 1"), "{all}");
    assert!(all.contains("Job for docker.service failed"), "{all}");
    // The failure quotes the unit's status (on one line: the server's
    // text is escaped, so it cannot forge lines of tomo's output).
    assert!(all.contains("`systemctl status docker.service --no-pager --lines=20` says:"), "{all}");
    assert!(all.contains("Active: "), "{all}");
    let out = h.sh(&rt, "systemctl is-active docker.service; true", Duration::from_secs(10));
    // (failed, or activating: the unit restarts itself)
    assert!(["failed\n", "activating\n"].contains(&out.stdout.as_str()), "{out:?}");
    // Nothing else was attempted after the failed step; a second plan still wants the Engine up.
    let plan = f.tomo(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.stdout.contains("docker-engine"), "{}", plan.stdout);
}
