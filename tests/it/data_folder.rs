//! The data folder: private modes (0700, files 0600, looser ones tightened
//! with a warning), a lost or emptied store refused with a recovery hint,
//! `--reinit` adopting the fleet's installation from its containers' labels,
//! a deleted data folder refused rather than made a second installation,
//! and a `watch` that stops when its store is deleted under it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fleet::{Fleet, IMAGE, docker, docker_try, httpd};
use crate::harness::Tomo;
use crate::watch::{Watch, message, settings};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn tomo_in_empty_folder() -> Tomo {
    let t = Tomo::new().env("DATA_DIRECTORY", "data");
    std::fs::create_dir_all(t.path().join("state")).unwrap();
    t
}

fn installation_label(container: &str) -> String {
    docker(&["inspect", "-f", "{{index .Config.Labels \"tomo.installation\"}}", container])
}

fn stored_installation(data: &Path) -> String {
    tomo::store::Store::open(&data.join("tomo.db")).unwrap().installation_id().unwrap()
}

fn web(f: &Fleet, name: &str) {
    f.manifest(
        &format!("apps/{name}.yaml"),
        &format!(
            "kind: App\nname: {{p}}-{name}\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\n",
            httpd(name)
        ),
    );
}

#[test]
fn the_data_folder_is_private_and_looser_modes_are_tightened_with_a_warning() {
    let t = tomo_in_empty_folder();
    let data = t.path().join("data");
    let r = t.run(&["user", "list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tomo.db")), 0o600);
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    // Looser modes, as an older tomo or a careless copy leaves them.
    chmod(&data, 0o755);
    chmod(&data.join("tomo.db"), 0o644);
    let r = t.run(&["user", "list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("0755") && r.stderr.contains("0644"), "no warning naming the modes:\n{}", r.stderr);
    assert!(r.stderr.contains("tomo.db"), "{}", r.stderr);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tomo.db")), 0o600);
    // Nothing to fix: no warning.
    let r = t.run(&["user", "list"]);
    assert!(!r.stderr.contains("0600"), "{}", r.stderr);
    // The apply lock and a saved plan (it holds every plain env value) are private too.
    let r = t.run(&["plan", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(mode(&t.path().join("plan.json")), 0o600);
    let r = t.run(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(mode(&data.join("apply.lock")), 0o600);
}

#[test]
fn a_data_folder_made_beforehand_is_a_fresh_start() {
    // A packager or `systemd StateDirectory=` makes the empty folder, 0755.
    let t = tomo_in_empty_folder();
    let data = t.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o755);
    let r = t.run(&["plan"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(mode(&data), 0o700);
    assert!(data.join("tomo.db").exists());
}

#[test]
fn a_store_emptied_or_lost_in_a_used_data_folder_is_refused_with_a_recovery_hint() {
    let t = tomo_in_empty_folder();
    let data = t.path().join("data");
    let r = t.run(&["user", "list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = stored_installation(&data);
    // Truncated to 0 bytes.
    std::fs::File::create(data.join("tomo.db")).unwrap();
    for args in [&["user", "list"][..], &["plan"][..], &["apply", "--auto-approve"][..]] {
        let r = t.run(args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.all());
        assert!(r.stderr.contains("empty") && r.stderr.contains("--reinit"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("backup") && r.stderr.contains(&id), "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::metadata(data.join("tomo.db")).unwrap().len(), 0, "the empty store was left as it is");
    }
    // Deleted.
    std::fs::remove_file(data.join("tomo.db")).unwrap();
    let r = t.run(&["plan"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("missing") && r.stderr.contains("--reinit"), "{}", r.stderr);
    assert!(!data.join("tomo.db").exists(), "no new store was made");
    // `--reinit` on a fleet without containers keeps the id the folder recorded.
    let r = t.run(&["--reinit", "user", "list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(stored_installation(&data), id);
    // A healthy store is never replaced.
    let r = t.run(&["--reinit", "user", "list"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--reinit"), "{}", r.stderr);
    assert_eq!(stored_installation(&data), id);
}

#[test]
fn reinit_adopts_the_installation_found_on_the_fleets_containers() {
    let f = Fleet::new();
    web(&f, "a");
    f.apply();
    let data = f.tomo.path().join("data");
    let label = installation_label(&f.app("a"));
    // A store lost together with the folder's record of it.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("installation"), "0000000000000000\n").unwrap();
    let r = f.tomo(&["plan"]);
    assert_eq!(r.code, 3, "{}", r.all());
    let r = f.tomo(&["--reinit", "plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "the container is this installation's again:\n{}", r.all());
    assert!(r.stderr.contains(&label), "{}", r.stderr);
    assert_eq!(stored_installation(&data), label);
    assert_eq!(mode(&data.join("tomo.db")), 0o600);
    // An emptied store is set aside, not overwritten.
    std::fs::File::create(data.join("tomo.db")).unwrap();
    let r = f.tomo(&["--reinit", "plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(stored_installation(&data), label);
    let aside = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tomo.db.before-reinit"))
        .count();
    assert_eq!(aside, 1);
}

/// Names of this fleet's networks, sorted (duplicates kept).
fn fleet_networks(f: &Fleet) -> Vec<String> {
    let all = docker(&["network", "ls", "--format", "{{.Name}}"]);
    let mut v: Vec<String> = all.lines().filter(|n| n.starts_with(&f.app(""))).map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_deleted_data_folder_is_refused_rather_than_made_a_second_installation() {
    let f = Fleet::new();
    web(&f, "a");
    f.apply();
    let data = f.tomo.path().join("data");
    let label = installation_label(&f.app("a"));
    let networks = fleet_networks(&f);
    assert!(!networks.is_empty(), "the app has a network");
    // The whole data folder is gone (or tomo runs where `data` is not).
    std::fs::remove_dir_all(&data).unwrap();
    for args in [&["apply", "--auto-approve"][..], &["plan"][..], &["apply", "--auto-approve"][..]] {
        let r = f.tomo(args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.all());
        assert!(r.stderr.contains(&label) && r.stderr.contains("local"), "names the id and server:\n{}", r.stderr);
        assert!(r.stderr.contains("backup") && r.stderr.contains("--reinit"), "{}", r.stderr);
        assert!(!data.join("tomo.db").exists() && !data.join("installation").exists(), "no new store is kept");
        assert_eq!(fleet_networks(&f), networks, "no second network was made");
        assert_eq!(installation_label(&f.app("a")), label, "the container was left alone");
    }
    // `watch` stops at its first run, for a human to decide.
    let mut w = Watch::start(&f, &[]);
    let stop = w.next("the stop", |v| v["level"] == "ERROR" && message(v).contains(&label));
    assert!(message(&stop).contains("--reinit"), "{stop}");
    assert_eq!(w.child.wait().unwrap().code(), Some(3), "{}", w.dump());
    assert!(!data.join("tomo.db").exists(), "no new store is kept");
    assert_eq!(fleet_networks(&f), networks, "no second network was made");
    let r = f.tomo(&["--reinit", "plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "the fleet is this installation's again:\n{}", r.all());
    assert_eq!(stored_installation(&data), label);
    f.assert_converged();
    // Only a network left (its container removed by hand): still the fleet's.
    docker(&["rm", "-f", &f.app("a")]);
    std::fs::remove_dir_all(&data).unwrap();
    let r = f.tomo(&["plan"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains(&networks[0]) && r.stderr.contains(&label), "{}", r.stderr);
    let r = f.tomo(&["--reinit", "apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(stored_installation(&data), label, "adopted from the network");
    assert_eq!(fleet_networks(&f), networks, "the network was reused");
    f.assert_converged();
}

#[test]
fn reinit_refuses_when_the_fleets_containers_carry_several_installations() {
    let f = Fleet::new();
    web(&f, "a");
    web(&f, "b");
    f.apply();
    let data = f.tomo.path().join("data");
    let label = installation_label(&f.app("a"));
    // `b` was made by another installation.
    docker(&["rm", "-f", &f.app("b")]);
    let other = "0123456789abcdef";
    docker(&[
        "create",
        "--name",
        &f.app("b"),
        "--label",
        "tomo.managed=true",
        "--label",
        &format!("tomo.installation={other}"),
        "--label",
        &format!("tomo.app={}", f.app("b")),
        "--label",
        "tomo.server=local",
        IMAGE,
        "true",
    ]);
    std::fs::remove_file(data.join("tomo.db")).unwrap();
    let r = f.tomo(&["--reinit", "plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains(&label) && r.stderr.contains(other), "both ids are listed:\n{}", r.stderr);
    assert!(!data.join("tomo.db").exists(), "no store was made");
}

#[test]
fn watch_stops_with_an_error_when_its_data_folder_is_deleted() {
    let f = Fleet::new();
    // No run is due for an hour: the deletion itself must stop the daemon.
    f.manifest("settings.yaml", "kind: Settings\nwatch: {interval: 1h}\n");
    web(&f, "a");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    let data = f.tomo.path().join("data");
    // The store is open: its WAL and shared-memory files are private too.
    for name in ["tomo.db", "tomo.db-wal", "tomo.db-shm"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    std::fs::remove_dir_all(&data).unwrap();
    let stop = w.next("the stop", |v| v["level"] == "ERROR" && message(v).contains("deleted"));
    assert!(message(&stop).contains("tomo.db"), "{stop}");
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{}", w.dump());
    assert!(!data.exists(), "the data folder was not made again");
}

#[test]
fn failed_actions_are_logged_with_their_error() {
    let f = Fleet::new();
    settings(&f, "");
    f.manifest(
        "apps/bad.yaml",
        "kind: App\nname: {p}-bad\nserver: local\nimage: {image}\ncommand: [\"/no-such-binary\"]\n",
    );
    let mut w = Watch::start(&f, &[]);
    let failed = w.next("a failed action", |v| message(v) == "action finished" && v["fields"]["outcome"] == "failed");
    let error = failed["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no-such-binary"), "{failed}");
    drop(w);
    let _ = docker_try(&["rm", "-f", &f.app("bad")]);
}

#[test]
fn watch_stops_when_its_store_is_replaced_by_another_file() {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nwatch: {interval: 1h}\n");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    // A backup copied over the live store.
    let db = f.tomo.path().join("data/tomo.db");
    let copy = f.tomo.path().join("data/tomo.db.copy");
    std::fs::copy(&db, &copy).unwrap();
    std::fs::rename(&copy, &db).unwrap();
    let stop = w.next("the stop", |v| v["level"] == "ERROR" && message(v).contains("replaced"));
    assert!(message(&stop).contains("tomo.db"), "{stop}");
    assert_eq!(w.child.wait().unwrap().code(), Some(3), "{}", w.dump());
}

#[test]
fn a_manifest_edited_through_mcp_keeps_its_private_mode() {
    let f = Fleet::new();
    web(&f, "a");
    let file = f.tomo.path().join("state/apps/a.yaml");
    chmod(&file, 0o600);
    let mut op = crate::mcp_client::Stdio::start(&f.tomo, "operator");
    let r = op.ok("app_update", serde_json::json!({"name": f.app("a"), "env": {"A": "2"}}));
    assert_eq!(r["outcome"], "written", "{r}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("A: "), "the edit was written");
    assert_eq!(mode(&file), 0o600, "a rewrite does not open the file to others");
}
