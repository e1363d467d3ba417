//! `Settings.backup.target: {server, path}` over an SSH test host: `tomo
//! watch` streams each scheduled archive into the host's folder (0600, no
//! partial left), `keep: {last: 2}` prunes there, `backup list --folder
//! server:NAME:/DIR` lists it, and `backup restore server:NAME:/FILE`
//! restores from it. A run that cannot write its target is an alert in
//! `tomo status` and MCP `health_check` until a later run succeeds. With no
//! folder named, `backup create`, `backup list` and the MCP backup tools
//! use the target folder.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc::channel;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backup_schedule::{message, next};
use crate::harness::Tomo;
use crate::hosts::TestHost;
use crate::mcp_client::Stdio;

fn settings(t: &Tomo, target: &Path) {
    let text = format!(
        "kind: Settings\nbackup:\n  schedule: 2s\n  keep: {{last: 2}}\n  target: {{server: h, path: '{}'}}\n",
        target.display()
    );
    std::fs::write(t.path().join("state/settings.yaml"), text).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    v.sort();
    v
}

/// The backup alerts in `tomo status --json`.
fn status_alerts(t: &Tomo) -> Vec<Value> {
    let run = t.run(&["status", "--json"]);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    doc["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"].as_str().unwrap_or_default().starts_with("scheduled backup failed"))
        .cloned()
        .collect()
}

#[test]
fn scheduled_backups_go_to_a_server_folder_are_pruned_there_listed_and_restored() {
    let h = TestHost::new(true);
    let t = Tomo::new()
        .env("TOMO_MASTER_PASSWORD", "target pw")
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
        .file("state/h.yaml", &h.server_yaml("h"));
    // The test host shares this machine's filesystem: its folder is seen here too.
    let target = h.dir.path().join("archives");
    settings(&t, &target);
    let mut child = t.spawn_env(&["watch"], &[("TOMO_LOG", "info")]);
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, log) = channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut written = Vec::new();
    for _ in 0..4 {
        let v = next(&log, &mut seen, "scheduled backup written");
        written.push(v["fields"]["file"].as_str().unwrap().to_string());
    }
    let prefix = format!("server:h:{}/", target.display());
    assert!(written.iter().all(|f| f.starts_with(&prefix)), "{written:?}");

    // A target that cannot be written (a file stands where its parent
    // folder would be): the failed run is an alert until a run succeeds.
    std::fs::write(h.dir.path().join("not-a-folder"), "x").unwrap();
    settings(&t, &h.dir.path().join("not-a-folder/archives"));
    next(&log, &mut seen, "scheduled backup failed");
    let alerts = status_alerts(&t);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["subject"]["server"], "h", "{alerts:?}");
    let mut viewer = Stdio::start(&t, "viewer");
    let health = viewer.ok("health_check", json!({}));
    assert_eq!(health["healthy"], false, "{health}");
    assert!(health["alerts"].to_string().contains("scheduled backup failed"), "{health}");
    drop(viewer);

    settings(&t, &target);
    let v = next(&log, &mut seen, "scheduled backup written");
    written.push(v["fields"]["file"].as_str().unwrap().to_string());
    assert!(status_alerts(&t).is_empty(), "the alert clears after a good run");
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(v) = log.recv_timeout(Duration::from_secs(3)) {
        seen.push(v);
    }
    for v in seen.iter().filter(|v| message(v) == "scheduled backup written") {
        let f = v["fields"]["file"].as_str().unwrap().to_string();
        if !written.contains(&f) {
            written.push(f);
        }
    }

    // The newest two stay, 0600, and no partial file is left.
    let mut newest: Vec<String> =
        written[written.len() - 2..].iter().map(|f| f.rsplit('/').next().unwrap().to_string()).collect();
    newest.sort();
    assert_eq!(names(&target), newest, "written: {written:?}");
    for n in &newest {
        let mode = std::fs::metadata(target.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{n}");
    }

    let folder = format!("server:h:{}", target.display());
    let list = t.run(&["backup", "list", "--folder", &folder, "--verify", "--json"]);
    assert_eq!(list.code, 0, "{}", list.all());
    let rows: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["verified"] == true && r["problem"].is_null()), "{rows:?}");

    // With no folder named, the target is the backup folder: of `backup
    // list` and of the MCP tools (a restore fetches its archive first).
    let files = |rows: &[Value]| rows.iter().map(|r| r["file"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let default = t.run(&["backup", "list", "--json"]);
    assert_eq!(default.code, 0, "{}", default.all());
    assert_eq!(files(&serde_json::from_str::<Vec<Value>>(&default.stdout).unwrap()), files(&rows));
    let mut admin = Stdio::start(&t, "admin");
    let listed = admin.ok("backup_list", json!({}));
    assert_eq!(files(listed["backups"].as_array().unwrap()), files(&rows), "{listed}");
    let planned = admin.ok("backup_restore", json!({"file": newest[1], "only": ["manifests"]}));
    assert_eq!(planned["outcome"], "planned", "{planned}");
    // Proposed (the default `require_approval: destructive`), then approved:
    // the archive is fetched from the server again and restored.
    let proposed = admin.ok("backup_restore", json!({"file": newest[1], "only": ["manifests"], "confirm": true}));
    assert_eq!(proposed["outcome"], "proposed", "{proposed}");
    let approved = admin.ok("proposal_approve", json!({"id": proposed["proposal"]}));
    assert_eq!(approved["proposal"]["status"], "applied", "{approved}");
    assert!(approved["restore"]["restored"]["manifest_files"].as_u64().is_some(), "{approved}");
    drop(admin);
    let fetched: Vec<String> = names(&t.path().join("data")).into_iter().filter(|n| n.contains("fetched")).collect();
    assert!(fetched.is_empty(), "the MCP restore's copy was left: {fetched:?}");

    // A restore straight from the server's folder.
    let file = format!("{folder}/{}", newest[1]);
    let dry = t.run(&["backup", "restore", &file, "--only", "manifests", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(dry.stdout.contains("verified"), "{}", dry.all());
    let archived = std::fs::read_to_string(t.path().join("state/settings.yaml")).unwrap();
    settings(&t, &h.dir.path().join("elsewhere"));
    let done = t.run(&["backup", "restore", &file, "--only", "manifests", "--yes"]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(std::fs::read_to_string(t.path().join("state/settings.yaml")).unwrap(), archived);
    // The fetched copy is gone from the data folder.
    let left: Vec<String> = names(&t.path().join("data")).into_iter().filter(|n| n.contains("fetched")).collect();
    assert!(left.is_empty(), "{left:?}");

    // `backup create` with no file writes into the target folder.
    let made = t.run(&["backup", "create", "--json"]);
    assert_eq!(made.code, 0, "{}", made.all());
    let made: Value = serde_json::from_str(&made.stdout).unwrap();
    assert!(made["file"].as_str().unwrap().starts_with(&prefix), "{made}");
    assert_eq!(names(&target).len(), 3, "{:?}", names(&target));
}
