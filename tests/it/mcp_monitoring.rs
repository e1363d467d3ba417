//! The five monitoring and three logs tools against the real Docker Engine
//! after a real collection round: through the official Python MCP SDK
//! (`tests/mcp_monitoring.py`: output schemas, argument errors, the purge
//! refused to a viewer and done for an admin, both audited), and
//! `metrics_system`'s uptime and daemon state (a `tomo watch` on the same
//! data folder seen running, then gone once killed).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tomo::store::Store;

use crate::fleet::Fleet;
use crate::harness::repo;
use crate::mcp_client::Stdio;

/// A fleet with a container printing a line a second, applied and sampled.
fn sampled() -> Fleet {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    f.manifest(
        "apps/ticker.yaml",
        "kind: App\nname: {p}-ticker\nserver: local\nimage: {image}\ninit: true\ncommand: [sh, -c, 'while :; do echo tick; sleep 1; done']\nresources:\n  memory: 32m\n",
    );
    f.apply();
    std::thread::sleep(Duration::from_secs(2));
    let r = f.tomo(&["metrics", "collect"]);
    assert_eq!(r.code, 0, "{}", r.all());
    f
}

#[test]
fn the_python_sdk_calls_the_monitoring_and_logs_tools() {
    let Some(py) = crate::mcp::python() else { return };
    let f = sampled();
    let app = f.app("ticker");
    let out = std::process::Command::new(py)
        .arg(repo().join("tests/mcp_monitoring.py"))
        .envs([
            ("TOMO_BIN", env!("CARGO_BIN_EXE_tomo").to_string()),
            ("TOMO_DIR", f.tomo.path().display().to_string()),
            ("TOMO_APP", app.clone()),
            ("TOMO_SERVER", "local".to_string()),
        ])
        .output()
        .expect("run the Python MCP client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
    for tool in ["metrics_system", "metrics_server", "metrics_app", "metrics_history", "metrics_summary"] {
        assert!(text.contains(&format!("ok: {tool} ")), "{tool} not checked:\n{text}");
    }
    for tool in ["logs_system", "logs_app", "logs_purge"] {
        assert!(text.contains(&format!("ok: {tool} ")), "{tool} not checked:\n{text}");
    }
    // The viewer's purge was refused and audited; the admin's done and audited.
    let store = Store::open_in(&f.tomo.path().join("data")).unwrap();
    let refused = store.activities(Some("auth"), 100).unwrap();
    let refusal = refused
        .iter()
        .find(|a| a.action == "refused" && a.target.as_deref() == Some("logs_purge"))
        .unwrap_or_else(|| panic!("the refused purge is not audited: {refused:?}"));
    assert_eq!(refusal.result, "refused");
    assert_eq!(refusal.actor.as_deref(), Some("stdio:viewer"));
    assert_eq!(refusal.arguments.as_ref().unwrap()["before"], "1d", "{refusal:?}");
    let purges = store.activities(Some("logs"), 100).unwrap();
    let done: Vec<_> = purges.iter().filter(|a| a.action == "purge").collect();
    assert_eq!(done.len(), 1, "one purge done (the refused one and the bad `before` never reached it): {purges:?}");
    assert_eq!(done[0].result, "ok");
    assert_eq!(done[0].actor.as_deref(), Some("stdio:admin"));
    assert!(done[0].detail.as_deref().is_some_and(|d| d.contains("deleted")), "{:?}", done[0]);
}

fn system(c: &mut Stdio) -> Value {
    c.ok("metrics_system", json!({}))
}

#[test]
fn metrics_system_counts_uptime_from_the_start_and_sees_the_watch() {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    let spawned = Instant::now();
    let mut c = Stdio::start(&f.tomo, "viewer");
    let s = system(&mut c);
    assert_eq!(s["daemon"]["serve"], "stdio", "{s}");
    assert_eq!(s["daemon"]["watch"]["running"], false, "{s}");
    std::thread::sleep(Duration::from_millis(2100));
    let up = system(&mut c)["uptime_seconds"].as_u64().unwrap();
    assert!(up >= 2 && up <= spawned.elapsed().as_secs(), "uptime {up} s, spawned {:?} ago", spawned.elapsed());

    // A watch on the same data folder: running, with its pid.
    let mut w = crate::watch::Watch::start(&f, &[]);
    w.run("start");
    let pid = w.child.id();
    let s = system(&mut c);
    let watch = &s["daemon"]["watch"];
    assert_eq!(watch["running"], true, "{s}");
    assert_eq!(watch["pid"], pid, "{s}");
    assert!(watch["since"].as_i64().is_some_and(|t| t > 0), "{s}");
    // Killed (no chance to say it stopped): no longer running.
    w.child.kill().unwrap();
    w.child.wait().unwrap();
    let s = system(&mut c);
    assert_eq!(s["daemon"]["watch"]["running"], false, "{s}");
}
