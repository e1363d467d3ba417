//! The `docker` block end to end on this machine (whose Docker Engine is
//! installed and answering): its diagnostics at their lines, the probe's
//! facts in `server list` and `server test`, no Engine action when the
//! Engine is what the block asks (also after `docker_install`), and a
//! downgrade refused as a plan error naming both versions.

use serde_json::json;

use crate::harness::Tomo;
use crate::mcp_client::Stdio;

const SERVER: &str = "kind: Server\nname: local\nhost: local\ndocker: {ensure: present}\n";

fn tomo(server: &str) -> Tomo {
    Tomo::new().env("DATA_DIRECTORY", "data").env("TOMO_LOG", "warn").file("state/local.yaml", server)
}

#[test]
fn bad_docker_blocks_are_reported_at_their_lines() {
    let t =
        tomo("kind: Server\nname: local\nhost: local\ndocker:\n  ensure: present\n  version: latest\n  purge: true\n");
    let r = t.run(&["validate", "--json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let all = r.stdout;
    assert!(all.contains("invalid-version") && all.contains("`latest` is not a version constraint"), "{all}");
    assert!(all.contains("purge-without-absent"), "{all}");
    let v: serde_json::Value = serde_json::from_str(&all).unwrap();
    let lines: Vec<u64> =
        v["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["span"]["line"].as_u64()).collect();
    assert!(lines.contains(&6) && lines.contains(&7), "{all}");
}

#[test]
fn an_installed_engine_needs_no_action_and_the_probe_is_shown() {
    let t = tomo(SERVER);
    let plan = t.run(&["plan", "--verbose", "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(!plan.stdout.contains("docker_engine"), "{}", plan.stdout);
    let list = t.run(&["server", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap_or_else(|e| panic!("{e}: {}", list.all()));
    let system = &v[0]["system"];
    assert!(!system["os_id"].as_str().unwrap().is_empty(), "{system}");
    assert!(system["docker_version"].is_string() && system["daemon"] == true, "{system}");
    let test = t.run(&["server", "test", "local"]);
    assert!(test.stdout.contains("ok   docker engine"), "{}", test.stdout);
    assert!(test.stdout.contains("os  "), "{}", test.stdout);
}

#[test]
fn docker_install_and_update_edit_the_block_and_return_the_plan() {
    let t = tomo("kind: Server\nname: local\nhost: local\n");
    let mut agent = Stdio::start(&t, "admin");
    let r = agent.ok("docker_install", json!({"server": "local"}));
    assert!(r["diff"].as_str().unwrap().contains("+  ensure: present"), "{r}");
    assert!(!r["plan"]["text"].as_str().unwrap().contains("docker-engine"), "{r}");
    let text = std::fs::read_to_string(t.path().join("state/local.yaml")).unwrap();
    assert!(text.contains("ensure: present"), "{text}");
    // Older than what is installed: refused, nothing written.
    let refused = agent.call("docker_update", json!({"server": "local", "version": "1.*"}));
    assert!(refused.is_error && refused.text.contains("tomo does not downgrade the Engine"), "{}", refused.text);
    assert_eq!(std::fs::read_to_string(t.path().join("state/local.yaml")).unwrap(), text);
    let bad = agent.call("docker_update", json!({"server": "local", "version": "newest"}));
    assert!(bad.is_error && bad.text.contains("not a version constraint"), "{}", bad.text);
}
