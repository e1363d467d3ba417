//! `tomo logs`: tomo's own events written by an apply and read with
//! `--system`, an app's container logs with secrets masked, following over
//! SSH (new lines within a second, ending when the container stops), bad
//! input, and an audited purge.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tomo::store::Store;

use crate::fleet::Fleet;
use crate::hosts::TestHost;

const SECRET: &str = "hunter2-logs-secret-9731";

fn vault_fleet() -> Fleet {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    f
}

fn json_rows(stdout: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<Vec<serde_json::Value>>(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn an_apply_is_in_the_system_logs_app_logs_are_masked_and_purge_is_audited() {
    let f = vault_fleet();
    let set = f.tomo.run_with_stdin(&["secret", "set", "tok"], Some(&format!("{SECRET}\n")));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest(
        "app.yaml",
        "kind: App\nname: {p}-talk\nserver: local\nimage: {image}\ninit: true\nenv:\n  TOKEN: {secret: tok}\ncommand: [\"sh\", \"-c\", \"echo token=$TOKEN; echo plain line; sleep 600\"]\n",
    );
    f.apply();
    // The run's start, its action and its end are stored events.
    let sys = f.tomo(&["logs", "--system", "--json"]);
    assert_eq!(sys.code, 0, "{}", sys.all());
    let rows = json_rows(&sys.stdout);
    let messages: Vec<&str> = rows.iter().filter_map(|r| r["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.starts_with("run 1 started")), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("run 1: create")), "{messages:?}");
    assert!(messages.contains(&"run 1 succeeded"), "{messages:?}");
    let runs = rows.iter().filter(|r| r["message"].as_str().unwrap().starts_with("run "));
    assert!(
        runs.clone().count() >= 3 && runs.clone().all(|r| r["source"] == "apply" && r["at"].is_string()),
        "{rows:?}"
    );
    assert!(!sys.stdout.contains(SECRET));
    let text = f.tomo(&["logs", "--system", "--grep", "^run 1 succ"]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert_eq!(text.stdout.lines().count(), 1, "{}", text.stdout);
    assert!(text.stdout.contains("info") && text.stdout.contains("apply"), "{}", text.stdout);
    let warn = f.tomo(&["logs", "--system", "--level", "warn", "--json"]);
    assert_eq!(json_rows(&warn.stdout).len(), 0, "{}", warn.stdout);
    // The app's log, the secret masked (also from --grep).
    let app = f.app("talk");
    let mut logs = f.tomo(&["logs", &app]);
    for _ in 0..50 {
        if logs.stdout.contains("plain line") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        logs = f.tomo(&["logs", &app]);
    }
    assert_eq!(logs.code, 0, "{}", logs.all());
    assert!(logs.stdout.contains(" | token=") && logs.stdout.contains(" | plain line"), "{}", logs.stdout);
    assert!(!logs.all().contains(SECRET), "{}", logs.stdout);
    let grep = f.tomo(&["logs", "--app", &app, "--grep", "hunter2", "--timestamps"]);
    assert_eq!(grep.code, 0, "{}", grep.all());
    assert_eq!(grep.stdout, "", "a pattern matches the masked text only");
    let stamped = f.tomo(&["logs", &app, "--timestamps", "--tail", "1"]);
    assert!(stamped.stdout.contains("Z plain line"), "{}", stamped.stdout);
    assert_eq!(stamped.stdout.lines().count(), 1, "{}", stamped.stdout);
    // Bad input.
    let since = f.tomo(&["logs", &app, "--since", "nonsense"]);
    assert_eq!(since.code, 2, "{}", since.all());
    assert!(since.stderr.contains("--since"), "{}", since.stderr);
    let since = f.tomo(&["logs", "--system", "--since", "-5m"]);
    assert_eq!(since.code, 2, "{}", since.all());
    let unknown = f.tomo(&["logs", "no-such-app"]);
    assert_eq!(unknown.code, 2, "{}", unknown.all());
    assert!(unknown.stderr.contains("no-such-app") && unknown.stderr.contains(&app), "{}", unknown.stderr);
    let bad = f.tomo(&["logs", "--system", "--grep", "(unclosed"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    let level = f.tomo(&["logs", "--system", "--level", "loud"]);
    assert_eq!(level.code, 2, "{}", level.all());
    // Purge: old rows only, then all; audited.
    let keep = f.tomo(&["logs", "purge", "--system", "--before", "1h"]);
    assert_eq!(keep.code, 0, "{}", keep.all());
    assert_eq!(keep.stdout, "deleted 0 event row(s)\n");
    let all = f.tomo(&["logs", "purge", "--system"]);
    assert_eq!(all.code, 0, "{}", all.all());
    assert!(all.stdout.starts_with("deleted ") && !all.stdout.starts_with("deleted 0 "), "{}", all.stdout);
    let after = json_rows(&f.tomo(&["logs", "--system", "--json"]).stdout);
    assert_eq!(after.len(), 1, "only the purge's own event: {after:?}");
    assert!(after[0]["message"].as_str().unwrap().contains("purge by"), "{after:?}");
    let store = Store::open_in(&f.tomo.path().join("data")).unwrap();
    let audit = store.activities(Some("logs"), 10).unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().all(|a| a.action == "purge" && a.result == "ok"), "{audit:?}");
    assert_eq!(audit[0].arguments.as_ref().unwrap()["before_secs"], serde_json::Value::Null);
    assert_eq!(audit[1].arguments.as_ref().unwrap()["before_secs"], 3600);
    let usage = f.tomo(&["logs", "purge"]);
    assert_eq!(usage.code, 2, "{}", usage.all());
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `2026-12-02T21:00:00.123456789Z` → unix seconds.
fn unix_of(stamp: &str) -> f64 {
    let out = std::process::Command::new("date").args(["-u", "-d", stamp, "+%s.%N"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("{e}: {stamp}"))
}

#[test]
fn follow_over_ssh_shows_new_lines_within_a_second_and_ends_when_the_container_stops() {
    let h = TestHost::new(true);
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("h1"));
    f.manifest(
        "app.yaml",
        "kind: App\nname: {p}-tick\nserver: h1\nimage: {image}\ninit: true\ncommand: [\"sh\", \"-c\", \"i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done\"]\n",
    );
    f.apply();
    let app = f.app("tick");
    let mut child = f.tomo.spawn_piped(&["logs", &app, "--follow", "--json", "--since", "10m"]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send((line, unix_now()));
        }
    });
    // Lines written after following started arrive within a second of the
    // Engine's timestamp.
    let start = unix_now();
    let mut delays = Vec::new();
    while delays.len() < 3 {
        let (line, arrived) = rx.recv_timeout(Duration::from_secs(15)).expect("a followed line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["text"].as_str().unwrap().starts_with("tick "), "{v}");
        assert_eq!(v["server"], "h1");
        let at = unix_of(v["at"].as_str().unwrap());
        if at > start + 0.5 {
            delays.push(arrived - at);
        }
    }
    eprintln!("follow over SSH: line delays {delays:?} s");
    assert!(delays.iter().all(|d| *d < 1.0), "{delays:?}");
    // Stopping the container ends the command, cleanly.
    let id = h.docker(&["ps", "-q", "--filter", &format!("label=tomo.app={app}")]);
    let stopped = Instant::now();
    h.docker(&["stop", "-t", "1", id.trim()]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "tomo logs --follow did not end when the container stopped");
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("follow ended {:?} after the stop", stopped.elapsed());
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_mcp_logs_tools_read_events_and_app_lines_and_only_admins_purge() {
    use crate::mcp_client::Stdio;
    use serde_json::json;
    let f = Fleet::new();
    f.manifest(
        "app.yaml",
        "kind: App\nname: {p}-say\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sh\", \"-c\", \"echo one; echo two; sleep 600\"]\n",
    );
    f.apply();
    let app = f.app("say");
    let mut viewer = Stdio::start(&f.tomo, "viewer");
    let events = viewer.ok("logs_system", json!({"since": "1h", "level": "info"}));
    let messages: Vec<&str> =
        events["events"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(messages.contains(&"run 1 succeeded"), "{events}");
    let none = viewer.ok("logs_system", json!({"level": "error"}));
    assert_eq!(none["events"].as_array().unwrap().len(), 0, "{none}");
    let mut lines = json!(null);
    for _ in 0..50 {
        lines = viewer.ok("logs_app", json!({"name": app, "grep": "^(one|two)$"}));
        if lines["lines"].as_array().unwrap().len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let texts: Vec<&str> = lines["lines"].as_array().unwrap().iter().filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(texts, ["one", "two"], "{lines}");
    assert!(lines["lines"][0]["at"].as_str().unwrap().ends_with('Z') && lines.get("truncated").is_none(), "{lines}");
    let bad = viewer.call("logs_app", json!({"name": app, "since": "soon"}));
    assert!(bad.is_error && bad.text.contains("since"), "{}", bad.text);
    let unknown = viewer.call("logs_app", json!({"name": "no-such-app"}));
    assert!(unknown.is_error && unknown.text.contains("no-such-app"), "{}", unknown.text);
    let refused = viewer.call("logs_purge", json!({}));
    assert!(refused.is_error, "{}", refused.text);
    let mut admin = Stdio::start(&f.tomo, "admin");
    let purged = admin.ok("logs_purge", json!({"before": "1h"}));
    assert_eq!(purged["system_rows"], 0, "{purged}");
    let purged = admin.ok("logs_purge", json!({}));
    assert!(purged["system_rows"].as_u64().unwrap() >= 3, "{purged}");
    // `metrics` alone leaves the events (the last purge's own is there).
    let purged = admin.ok("logs_purge", json!({"metrics": true}));
    assert_eq!((purged["system_rows"].as_u64(), purged["metric_rows"].as_u64()), (Some(0), Some(0)), "{purged}");
    let store = Store::open_in(&f.tomo.path().join("data")).unwrap();
    let audit = store.activities(Some("logs"), 10).unwrap();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(audit[0].arguments.as_ref().unwrap()["metrics"], true, "{audit:?}");
    assert_eq!(audit[0].arguments.as_ref().unwrap()["system"], false, "{audit:?}");
    assert!(audit.iter().all(|a| a.actor.as_deref() == Some("stdio:admin")), "{audit:?}");
}
