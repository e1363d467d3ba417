//! App data through the CLI against a real Docker Engine on an SSH test
//! host: `tomo backup create --app`, `backup list`, then `tomo backup restore
//! --only app:APP` (dry run first, then for real).

use std::path::PathBuf;

use crate::fleet::Fleet;
use crate::hosts::TestHost;

const PASS: &str = "cli-backup-passphrase";

#[test]
fn backup_create_app_then_restore_only_that_app_through_the_cli() {
    let h = TestHost::new(true);
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", PASS);
    let bind = h.dir.path().join("uploads");
    f.manifest(
        "s.yaml",
        &format!(
            "{}---\nkind: App\nname: {{p}}-cli\nserver: h\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes: [\"data:/data\", \"{}:/bind\"]\nbackup: {{pre: {{service: {{p}}-cli, command: \"date > /data/dump.txt\"}}}}\n",
            h.server_yaml("h"),
            bind.display()
        ),
    );
    f.apply();
    let (app, volume) = (f.app("cli"), format!("{}_data", f.app("cli")));
    let data = PathBuf::from(h.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]));
    std::fs::write(data.join("a.txt"), "volume v1").unwrap();
    std::fs::write(bind.join("b.txt"), "bind v1").unwrap();

    let dir = f.tomo.path().join("archives");
    let file = dir.join("one.tomo-backup");
    let file_s = file.display().to_string();
    let made = f.tomo(&["backup", "create", "--app", &app, "--mode", "stop", "--out", &file_s, "--json"]);
    assert_eq!(made.code, 0, "{}", made.all());
    let json: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    assert_eq!(json["apps"], serde_json::json!([app.clone()]), "{json}");
    assert_eq!(json["verified"], true);
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true", "started again after the copy");
    // The `pre` hook ran over the SSH-forwarded Engine before the copy.
    assert!(data.join("dump.txt").exists(), "the pre hook's dump is in the volume");

    let unknown = f.tomo(&[
        "backup",
        "create",
        "--app",
        "no-such-app",
        "--out",
        &dir.join("x.tomo-backup").display().to_string(),
    ]);
    assert_ne!(unknown.code, 0, "{}", unknown.all());
    assert!(!dir.join("x.tomo-backup").exists());

    let list = f.tomo(&["backup", "list", "--folder", &dir.display().to_string(), "--verify"]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains(&app), "{}", list.stdout);

    std::fs::write(data.join("a.txt"), "volume v2").unwrap();
    std::fs::remove_file(bind.join("b.txt")).unwrap();

    let dry = f.tomo(&["backup", "restore", &file_s, "--only", &format!("app:{app}"), "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(dry.stdout.contains(&volume) && dry.stdout.contains(&bind.display().to_string()), "{}", dry.stdout);
    assert!(dry.stdout.contains("downtime") && dry.stdout.contains("nothing was changed"), "{}", dry.stdout);
    assert_eq!(std::fs::read_to_string(data.join("a.txt")).unwrap(), "volume v2");

    let done = f.tomo(&["backup", "restore", &file_s, "--only", &format!("app:{app}"), "--yes"]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert!(done.stdout.contains(&format!("restored the data of app {app}")), "{}", done.stdout);
    assert_eq!(std::fs::read_to_string(data.join("a.txt")).unwrap(), "volume v1");
    assert_eq!(std::fs::read_to_string(bind.join("b.txt")).unwrap(), "bind v1");
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true", "started again after the restore");

    // The manifests restored, then the app's copy fails (a file in its bind
    // folder cannot be removed): the error says what was restored before.
    let stuck = crate::backup_drill::Immutable::set(bind.join("b.txt"));
    let only_app = format!("app:{app}");
    let part = f.tomo(&["backup", "restore", &file_s, "--only", "manifests", "--only", &only_app, "--yes"]);
    drop(stuck);
    assert_ne!(part.code, 0, "{}", part.all());
    assert!(part.stdout.contains("restored:") && part.stdout.contains("manifest file(s)"), "{}", part.all());
    assert!(part.stderr.contains("Operation not permitted"), "{}", part.all());
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true", "started again after the failure");

    // Agents: backup_create with `apps`, in stop mode.
    let mut op = crate::mcp_client::Stdio::start(&f.tomo, "operator");
    let made = op.ok("backup_create", serde_json::json!({"apps": [app.clone()], "mode": "stop"}));
    assert_eq!(made["apps"], serde_json::json!([app.clone()]), "{made}");
    assert_eq!(made["verified"], true, "{made}");
    let bad = op.call("backup_create", serde_json::json!({"apps": [app.clone()], "mode": "sometimes"}));
    assert!(bad.is_error && bad.text.contains("mode"), "{}", bad.text);
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true");
}

#[test]
fn agents_restore_an_apps_data_over_mcp_in_place_and_to_another_server() {
    use serde_json::json;

    use crate::mcp_client::Stdio;
    let (h, h2) = (TestHost::new(true), TestHost::new(true));
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", PASS);
    f.manifest(
        "s.yaml",
        &format!(
            "{}---\n{}---\nkind: App\nname: {{p}}-mcp\nserver: h\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes: [\"data:/data\"]\n",
            h.server_yaml("h"),
            h2.server_yaml("h2"),
        ),
    );
    f.apply();
    let (app, volume) = (f.app("mcp"), format!("{}_data", f.app("mcp")));
    let mountpoint =
        |host: &TestHost| PathBuf::from(host.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]));
    std::fs::write(mountpoint(&h).join("a.txt"), "v1").unwrap();

    let mut admin = Stdio::start(&f.tomo, "admin");
    let made = admin.ok("backup_create", json!({"apps": [app]}));
    let file = std::path::Path::new(made["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().to_string();
    std::fs::write(mountpoint(&h).join("a.txt"), "v2").unwrap();
    let only = json!([format!("app:{app}")]);

    // Without `only`, an app's data is left alone: it is replaced only when named.
    let unnamed = admin.ok("backup_restore", json!({"file": file}));
    assert_eq!(unnamed["apps"], json!([]), "{unnamed}");
    // Planned: what is replaced and which containers stop; nothing changes.
    let planned = admin.ok("backup_restore", json!({"file": file, "only": only}));
    assert_eq!(planned["outcome"], "planned", "{planned}");
    let report = &planned["apps"][0];
    assert_eq!(report["items"][0]["target"], volume.as_str(), "{planned}");
    assert_eq!(report["items"][0]["server"], "h", "{planned}");
    assert_eq!(report["stopped"], json!([app.clone()]), "{planned}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h).join("a.txt")).unwrap(), "v2");

    // Under the default `mcp.require_approval: destructive`, a proposal
    // stating the downtime; the approval restores and starts the app again.
    let proposed = admin.ok("backup_restore", json!({"file": file, "only": only, "confirm": true}));
    assert_eq!(proposed["outcome"], "proposed", "{proposed}");
    assert_eq!(proposed["apps"][0]["stopped"], json!([app.clone()]), "{proposed}");
    let shown = admin.ok("proposal_get", json!({"id": proposed["proposal"]}));
    assert!(shown["diff"].as_str().unwrap().contains("downtime"), "{shown}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h).join("a.txt")).unwrap(), "v2", "a proposal changed the data");
    let done = admin.ok("proposal_approve", json!({"id": proposed["proposal"]}));
    assert_eq!(done["proposal"]["status"], "applied", "{done}");
    assert!(done["restore"]["apps"][0]["downtime_ms"].as_u64().is_some(), "{done}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h).join("a.txt")).unwrap(), "v1");
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true", "started again");

    // To another declared server (kept in the proposal): the volume is made there, with the data.
    let to = admin.ok("backup_restore", json!({"file": file, "only": only, "to_server": "h2", "confirm": true}));
    let moved = admin.ok("proposal_approve", json!({"id": to["proposal"]}));
    assert_eq!(moved["restore"]["apps"][0]["items"][0]["server"], "h2", "{moved}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h2).join("a.txt")).unwrap(), "v1");

    // With `require_approval: none`, an admin's restore is carried out at once.
    std::fs::write(mountpoint(&h).join("a.txt"), "v3").unwrap();
    f.manifest("settings.yaml", "kind: Settings\nmcp: {require_approval: none}\n");
    let direct = admin.ok("backup_restore", json!({"file": file, "only": only, "confirm": true}));
    assert_eq!(direct["outcome"], "restored", "{direct}");
    assert!(direct["apps"][0]["downtime_ms"].as_u64().is_some(), "{direct}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h).join("a.txt")).unwrap(), "v1");

    // The store and the app's data in one proposal, approved on the command
    // line (a fresh process): the app's servers are connected before the
    // store is replaced.
    f.manifest("settings.yaml", "kind: Settings\n");
    std::fs::write(mountpoint(&h).join("a.txt"), "v4").unwrap();
    let parts = json!(["store", format!("app:{app}")]);
    let both = admin.ok("backup_restore", json!({"file": file, "only": parts, "confirm": true}));
    assert_eq!(both["outcome"], "proposed", "{both}");
    let approved = f.tomo.run(&["proposal", "approve", both["proposal"].as_str().unwrap(), "--yes", "--json"]);
    assert_eq!(approved.code, 0, "{}", approved.all());
    let done: serde_json::Value = serde_json::from_str(&approved.stdout).unwrap();
    assert_eq!(done["proposal"]["status"], "applied", "{done}");
    assert_eq!(done["restored"]["store"], true, "{done}");
    assert!(done["apps"][0]["downtime_ms"].as_u64().is_some(), "{done}");
    assert_eq!(std::fs::read_to_string(mountpoint(&h).join("a.txt")).unwrap(), "v1");
    drop(admin);
    // A fresh server (the store it had open was replaced) answers the rest.
    let mut admin = Stdio::start(&f.tomo, "admin");

    let bad = admin.call("backup_restore", json!({"file": file, "only": ["manifests"], "to_server": "h2"}));
    assert!(bad.is_error && bad.text.contains("to_server"), "{}", bad.text);
    let unknown = admin.call("backup_restore", json!({"file": file, "only": only, "to_server": "nowhere"}));
    assert!(unknown.is_error && unknown.text.contains("nowhere"), "{}", unknown.text);
}
