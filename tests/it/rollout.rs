//! Safe rollouts against the real Docker Engine: the plan's downtime
//! estimate against the downtime measured from Docker events, and
//! `Settings.rollout.max_downtime` gating `tomo apply` and `tomo watch`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::fleet::{Fleet, HEALTHY, docker, httpd};
use crate::watch::{Watch, message};

/// A web server with a healthcheck; a new `n` recreates it (stop-first).
fn web(f: &Fleet, n: u32) {
    f.manifest(
        "apps/web.yaml",
        &format!(
            "kind: App\nname: {{p}}-web\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nhealthcheck: {HEALTHY}\nenv: {{N: \"{n}\"}}\n",
            httpd("web")
        ),
    );
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The downtime of the recreate of `app` between `since` and `until`, from
/// Docker events: from the old container's `kill` (the stop request) to the
/// new container's `health_status: healthy`, in ms.
fn measured_downtime(app: &str, since: f64, until: f64) -> u64 {
    let events = docker(&[
        "events",
        "--since",
        &format!("{since:.3}"),
        "--until",
        &format!("{until:.3}"),
        "--filter",
        "type=container",
        "--filter",
        &format!("label=tomo.app={app}"),
        "--format",
        "{{.TimeNano}} {{.Action}}",
    ]);
    let parsed: Vec<(u64, &str)> =
        events.lines().filter_map(|l| l.split_once(' ')).map(|(t, a)| (t.parse::<u64>().unwrap(), a)).collect();
    let stop = parsed.iter().find(|(_, a)| ["kill", "die", "stop"].contains(a)).map(|(t, _)| *t);
    let stop = stop.unwrap_or_else(|| panic!("no stop in:\n{events}"));
    let healthy = parsed.iter().find(|(t, a)| *t > stop && *a == "health_status: healthy").map(|(t, _)| *t);
    let healthy = healthy.unwrap_or_else(|| panic!("no healthy after the stop in:\n{events}"));
    (healthy - stop) / 1_000_000
}

fn plan_json(f: &Fleet) -> serde_json::Value {
    let r = f.tomo(&["plan", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap()
}

fn recreate_risk(plan: &serde_json::Value) -> serde_json::Value {
    let a = plan["actions"].as_array().unwrap().iter().find(|a| a["op"] == "recreate").expect("a recreate");
    a["risk"].clone()
}

#[test]
fn the_downtime_estimate_is_within_twice_the_measured_downtime_after_three_applies() {
    let f = Fleet::new();
    let app = f.app("web");
    web(&f, 0);
    f.apply();
    // Before any recreate: the default, said to be one.
    web(&f, 1);
    let plan = f.tomo(&["plan"]);
    assert!(
        plan.stdout.contains("downtime ~5 s (default: no recreate recorded yet): stop-first recreate"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!("Risk: downtime: ~5 s for 1 service ({app}); data at risk: none.")),
        "{}",
        plan.stdout
    );
    let mut measured = Vec::new();
    for n in 1..=3 {
        web(&f, n);
        let t0 = now();
        f.apply();
        measured.push(measured_downtime(&app, t0, now() + 1.0));
    }
    web(&f, 4);
    let risk = recreate_risk(&plan_json(&f));
    assert_eq!(risk["estimate"]["from"], "history", "{risk}");
    assert_eq!(risk["estimate"]["samples"], 3, "{risk}");
    let estimate = risk["downtime_ms"].as_u64().unwrap();
    let t0 = now();
    f.apply();
    let actual = measured_downtime(&app, t0, now() + 1.0);
    eprintln!("downtime: estimate {estimate} ms, measured {actual} ms (earlier applies: {measured:?})");
    assert!(
        estimate <= 2 * actual && actual <= 2 * estimate,
        "estimate {estimate} ms, measured {actual} ms (earlier applies: {measured:?})"
    );
}

#[test]
fn max_downtime_needs_allow_downtime_and_watch_holds_it() {
    let f = Fleet::new();
    let app = f.app("web");
    f.manifest("settings.yaml", "kind: Settings\nwatch: {interval: 1s}\nrollout: {max_downtime: 1s}\n");
    web(&f, 0);
    f.apply();
    let id = f.id(&app);
    web(&f, 1);
    let plan = f.tomo(&["plan"]);
    assert!(
        plan.stdout.contains("over `rollout.max_downtime` (~1 s): needs `--allow-downtime` or an approval"),
        "{}",
        plan.stdout
    );
    assert_eq!(plan_json(&f)["risk"]["over_limit_ms"], 1000);
    let refused = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(refused.stderr.contains("over `rollout.max_downtime` (~1 s)"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--allow-downtime"), "{}", refused.stderr);
    assert_eq!(f.id(&app), id, "nothing changed");
    // A saved plan is refused alike.
    let saved = f.tomo.path().join("plan.json");
    let out = f.tomo(&["plan", "--out", saved.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let refused = f.tomo(&["apply", saved.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert_eq!(f.id(&app), id, "nothing changed");
    // watch holds it.
    let mut w = Watch::start(&f, &[]);
    let held = w.next("a held recreate", |v| message(v) == "held");
    let why = held.to_string();
    assert!(why.contains(&format!("recreate {app}")) && why.contains("rollout.max_downtime"), "{held}");
    drop(w);
    assert_eq!(f.id(&app), id, "a held recreate leaves the container");
    let allowed = f.tomo(&["apply", "--auto-approve", "--allow-downtime", "--lock-timeout", "60s"]);
    assert_eq!(allowed.code, 0, "{}", allowed.all());
    assert_ne!(f.id(&app), id);
}

/// A working release of `{p}-svc`, then a change to `broken` (YAML lines of
/// the service) applied with `rollout.verify: 10s`: the apply fails with
/// `reason`, and the previous container is back, running, with its id.
fn broken_release_rolls_back(broken: &str, reason: &str) {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nwatch: {interval: 1s}\nrollout: {verify: 10s}\n");
    let svc = f.app("svc");
    let app = |extra: &str| {
        f.manifest(
            "apps/svc.yaml",
            &format!("kind: App\nname: {{p}}-svc\nserver: local\nimage: {{image}}\ninit: true\n{extra}"),
        )
    };
    app(&format!("command: {}\n", httpd("ok")));
    f.apply();
    let id = f.id(&svc);
    app(broken);
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("verification failed within 10s"), "{}", r.all());
    assert!(r.all().contains(reason), "{}", r.all());
    assert!(r.all().contains("its last log lines:"), "{}", r.all());
    assert!(r.all().contains("broken release starting"), "the failed container's log: {}", r.all());
    assert!(r.all().contains("the previous container was restored"), "{}", r.all());
    assert_eq!(f.id(&svc), id, "the previous container is back under its name");
    assert_eq!(f.inspect(&svc, "{{.State.Status}}"), "running");
    assert_eq!(f.containers(), std::slice::from_ref(&svc), "the failed container is gone");
    // `watch` does not retry the revision that failed: its cycles hold it.
    let mut w = Watch::start(&f, &[]);
    for cycle in ["the first cycle", "the second cycle"] {
        let held = w.next(cycle, |v| message(v) == "held").to_string();
        assert!(held.contains(&format!("recreate {svc}")) && held.contains("failed verification in run"), "{held}");
    }
    drop(w);
    assert_eq!(f.id(&svc), id, "watch left the previous container");
}

#[test]
fn a_container_exiting_after_3s_is_rolled_back_to_the_previous_one() {
    broken_release_rolls_back(
        "restart: \"no\"\ncommand: [\"sh\", \"-c\", \"echo broken release starting; sleep 3; exit 3\"]\n",
        "exited with status 3",
    );
}

#[test]
fn a_container_turning_unhealthy_after_5s_is_rolled_back() {
    broken_release_rolls_back(
        "command: [\"sh\", \"-c\", \"echo broken release starting; touch /ok; (sleep 5; rm /ok) & exec sleep 1000\"]\nhealthcheck: {test: [\"CMD\", \"cat\", \"/ok\"], interval: 1s, retries: 1}\n",
        "became unhealthy",
    );
}

#[test]
fn a_container_restarting_in_a_loop_is_rolled_back() {
    broken_release_rolls_back(
        "restart: always\ncommand: [\"sh\", \"-c\", \"echo broken release starting; sleep 1; exit 1\"]\n",
        "restart",
    );
}

/// `on_failure: hold`: the failed container is kept, stopped, beside the
/// previous one, which runs again with its id; the next plan lists it as held
/// and never removes it, `--prune` included.
#[test]
fn with_hold_the_failed_container_is_kept_stopped_beside_the_restored_one() {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nrollout: {verify: 10s, on_failure: hold}\n");
    let svc = f.app("svc");
    let app = |cmd: &str| {
        f.manifest(
            "apps/svc.yaml",
            &format!("kind: App\nname: {{p}}-svc\nserver: local\nimage: {{image}}\ninit: true\nrestart: \"no\"\ncommand: {cmd}\n"),
        )
    };
    app(&httpd("ok"));
    f.apply();
    let id = f.id(&svc);
    app("[\"sh\", \"-c\", \"echo broken release starting; sleep 3; exit 3\"]");
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("verification failed within 10s"), "{}", r.all());
    assert!(r.all().contains("exited with status 3"), "{}", r.all());
    assert_eq!(f.id(&svc), id, "the previous container is back under its name");
    assert_eq!(f.inspect(&svc, "{{.State.Status}}"), "running");
    let names = f.containers();
    let held: Vec<&String> = names.iter().filter(|n| n.starts_with(&format!("{svc}-tomo-held-"))).collect();
    assert_eq!(held.len(), 1, "one held container beside the previous one: {names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(f.id(held[0]), id);
    assert_eq!(f.inspect(held[0], "{{.State.Status}}"), "exited", "the held container is stopped");
    for args in [&["plan"][..], &["plan", "--prune"][..]] {
        let p = f.tomo(args);
        assert!(p.all().contains(held[0].as_str()) && p.all().contains("held: failed its verification"), "{}", p.all());
        assert!(!p.all().contains(&format!("remove {}", held[0])), "a held container is never removed: {}", p.all());
    }
    let json: serde_json::Value = serde_json::from_str(&f.tomo(&["plan", "--json", "--prune"]).stdout).unwrap();
    let orphans = json["orphans"].as_array().unwrap();
    assert!(
        orphans.iter().any(|o| o["container"] == held[0].as_str() && o["held"] == true && o["removed"] == false),
        "{json}"
    );
}

/// A service's own `rollout.verify` overrides Settings' `0s`: only that
/// service is verified and rolled back; its sibling is replaced unverified.
#[test]
fn a_service_rollout_override_verifies_only_that_service() {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nrollout: {verify: 0s}\n");
    let app = |cmd: &str| {
        f.manifest(
            "apps/duo.yaml",
            &format!(
                "kind: App\nname: {{p}}-duo\nserver: local\nservices:\n  checked:\n    image: {{image}}\n    init: true\n    restart: \"no\"\n    command: {cmd}\n    rollout: {{verify: 10s}}\n  free:\n    image: {{image}}\n    init: true\n    restart: \"no\"\n    command: {cmd}\n"
            ),
        )
    };
    app(&httpd("ok"));
    f.apply();
    let (checked, free) = (f.app("duo-checked"), f.app("duo-free"));
    let (checked_id, free_id) = (f.id(&checked), f.id(&free));
    app("[\"sh\", \"-c\", \"echo broken release starting; sleep 3; exit 3\"]");
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("verification failed within 10s"), "{}", r.all());
    assert_eq!(f.id(&checked), checked_id, "the verified service is rolled back");
    assert_eq!(f.inspect(&checked, "{{.State.Status}}"), "running");
    assert_ne!(f.id(&free), free_id, "the unverified service keeps its new container");
}
