//! System backups through the CLI: backup, lose the data folder, restore into
//! a fresh one with only the archive and the passphrase (store, vault
//! secrets, trusted host keys, manifests back); damaged, truncated, foreign
//! or wrongly unlocked archives refused with nothing changed; a consistent
//! store while another process writes.

use std::path::Path;

use tomo::store::Store;

use crate::harness::Tomo;

const PASS: &str = "backup master pw";

fn tomo() -> Tomo {
    Tomo::new()
        .env("TOMO_MASTER_PASSWORD", PASS)
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
        .file("state/settings.yaml", "kind: Settings\nparallelism: 2\n")
        .file("state/apps/web app.yaml", "kind: App\nname: web\nserver: local\nimage: nginx:1.27\n")
}

fn backup(t: &Tomo, out: &Path) {
    let r = t.run(&["backup", "create", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("verified"), "{}", r.stdout);
}

/// Every file under `dir`, as (relative path, bytes).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restore_into_a_fresh_data_folder_brings_everything_back() {
    let t = tomo();
    let set = t.run_with_stdin(&["secret", "set", "db-pass"], Some("s3cret-value\n"));
    assert_eq!(set.code, 0, "{}", set.all());
    {
        let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
        store.trust_host_key("web1", "10.0.0.5", "SHA256:abcdefghijklmnop").unwrap();
    }
    let before = Store::open(&t.path().join("data/tomo.db")).unwrap().installation_id().unwrap();
    let manifests = tree(&t.path().join("state"));
    let archive = t.path().join("keep/sys.tomo-backup");
    backup(&t, &archive);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&archive).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Lose everything but the archive.
    std::fs::remove_dir_all(t.path().join("data")).unwrap();
    std::fs::remove_dir_all(t.path().join("state")).unwrap();
    let r = t.run(&["backup", "restore", archive.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("replaces nothing (no store here)"), "{}", r.stdout);

    assert_eq!(tree(&t.path().join("state")), manifests);
    let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
    assert_eq!(store.installation_id().unwrap(), before);
    assert!(format!("{:?}", store.tables().unwrap()).contains("servers"));
    drop(store);
    let conn = rusqlite::Connection::open(t.path().join("data/tomo.db")).unwrap();
    let key: String = conn.query_row("SELECT host_key FROM servers WHERE name = 'web1'", [], |r| r.get(0)).unwrap();
    assert_eq!(key, "SHA256:abcdefghijklmnop");
    // The vault opens with the same password and salt: the secret is back.
    let list = t.run(&["secret", "list"]);
    assert!(list.stdout.contains("db-pass"), "{}", list.all());
    let check = t.run(&["validate"]);
    assert_eq!(check.code, 0, "{}", check.all());
    // The restore is in the audit log.
    let audit = Store::open(&t.path().join("data/tomo.db")).unwrap().activities(Some("backup"), 10).unwrap();
    assert!(audit.iter().any(|a| a.action == "restore"), "{audit:?}");
}

#[test]
fn a_restore_over_a_newer_store_says_what_it_drops_and_keeps_it_aside() {
    let t = tomo();
    let archive = t.path().join("a.tomo-backup");
    backup(&t, &archive);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let set = t.run_with_stdin(&["secret", "set", "later"], Some("v\n"));
    assert_eq!(set.code, 0, "{}", set.all());
    let dry = t.run(&["backup", "restore", archive.to_str().unwrap(), "--only", "store", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(dry.stdout.contains("1 secret change(s)"), "{}", dry.stdout);
    assert!(t.run(&["secret", "list"]).stdout.contains("later"));
    let no_yes = t.run_with_stdin(&["backup", "restore", archive.to_str().unwrap()], None);
    assert_ne!(no_yes.code, 0, "{}", no_yes.all());
    assert!(t.run(&["secret", "list"]).stdout.contains("later"), "restored without --yes");
    let r = t.run(&["backup", "restore", archive.to_str().unwrap(), "--only", "store", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!t.run(&["secret", "list"]).stdout.contains("later"));
    let aside = std::fs::read_dir(t.path().join("data"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("tomo.db.before-restore-"));
    assert!(aside, "the replaced store was not kept aside");
}

fn refused_with_nothing_changed(t: &Tomo, archive: &Path, expect: &str) {
    let before_db = std::fs::read(t.path().join("data/tomo.db")).unwrap();
    let before_state = tree(&t.path().join("state"));
    let r = t.run(&["backup", "restore", archive.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains(expect), "expected `{expect}`: {}", r.stderr);
    assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
    assert_eq!(std::fs::read(t.path().join("data/tomo.db")).unwrap(), before_db);
    assert_eq!(tree(&t.path().join("state")), before_state);
}

#[test]
fn damaged_foreign_or_wrongly_unlocked_archives_are_refused_with_nothing_changed() {
    let t = tomo();
    let archive = t.path().join("a.tomo-backup");
    backup(&t, &archive);
    // Change the manifests after the backup: a restore would write them back.
    std::fs::write(t.path().join("state/settings.yaml"), "kind: Settings\nparallelism: 3\n").unwrap();
    let bytes = std::fs::read(&archive).unwrap();

    let flipped = t.path().join("flipped.tomo-backup");
    let mut b = bytes.clone();
    let at = b.len() - 200;
    b[at] ^= 0x20;
    std::fs::write(&flipped, &b).unwrap();
    refused_with_nothing_changed(&t, &flipped, "damaged or was altered");

    let cut = t.path().join("cut.tomo-backup");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    refused_with_nothing_changed(&t, &cut, "truncated");

    let pf = t.path().join("pass.txt");
    std::fs::write(&pf, "not the passphrase\n").unwrap();
    let before_db = std::fs::read(t.path().join("data/tomo.db")).unwrap();
    let r =
        t.run(&["backup", "restore", archive.to_str().unwrap(), "--yes", "--passphrase-file", pf.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("passphrase does not open"), "{}", r.stderr);
    assert_eq!(std::fs::read(t.path().join("data/tomo.db")).unwrap(), before_db);

    // Another installation's archive (same passphrase).
    let other = tomo();
    let foreign = t.path().join("foreign.tomo-backup");
    let r = other.run(&["backup", "create", "--out", foreign.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.all());
    refused_with_nothing_changed(&t, &foreign, "is of installation");

    // The good archive still restores the manifests.
    let r = t.run(&["backup", "restore", archive.to_str().unwrap(), "--only", "manifests", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(std::fs::read_to_string(t.path().join("state/settings.yaml")).unwrap().contains("parallelism: 2"));
}

/// Restores the manifests from `archive` on a terminal, running `change`
/// while the restore asks (after its plan read the archive); its exit and
/// what it printed. The manifests differ from the archive's meanwhile.
fn restore_changed_while_asked(t: &Tomo, archive: &Path, change: impl FnOnce()) -> (bool, String) {
    use std::io::{Read, Write};
    let mut child = t.spawn_on_terminal(&["backup", "restore", archive.to_str().unwrap(), "--only", "manifests"]);
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("restore? [y/N]") {
        let more = rx.recv_timeout(std::time::Duration::from_secs(60));
        seen.extend(more.unwrap_or_else(|_| panic!("no question: {}", String::from_utf8_lossy(&seen))));
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("replaces 1 changed file(s)"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    change();
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let status = child.wait().unwrap();
    while let Ok(more) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        seen.extend(more);
    }
    (status.success(), String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn an_archive_swapped_while_the_restore_asks_is_refused_with_nothing_changed() {
    let t = tomo();
    let (archive, other) = (t.path().join("a.tomo-backup"), t.path().join("b.tomo-backup"));
    backup(&t, &archive);
    let settings = t.path().join("state/settings.yaml");
    std::fs::write(&settings, "kind: Settings\nparallelism: 3\n").unwrap();
    // Another archive of this installation, under the same passphrase.
    backup(&t, &other);
    std::fs::write(&settings, "kind: Settings\nparallelism: 4\n").unwrap();
    let before_state = tree(&t.path().join("state"));
    // The plan shown is of the first archive; the second takes its place.
    let (ok, text) = restore_changed_while_asked(&t, &archive, || std::fs::rename(&other, &archive).unwrap());
    assert!(!ok, "{text}");
    assert!(text.contains("another archive than the one planned") && text.contains("nothing was changed"), "{text}");
    assert_eq!(tree(&t.path().join("state")), before_state, "{text}");
}

#[test]
fn an_archive_cut_short_in_place_while_the_restore_asks_changes_no_manifest() {
    // A file of notes after the settings spans chunks of its own: the
    // settings are read and delivered before the last chunk is.
    let mut noise = vec![0u8; 400_000];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut noise).unwrap();
    let t = tomo();
    std::fs::write(t.path().join("state/zz-notes.bin"), &noise).unwrap();
    // A file in folders that are gone when the restore runs: it makes them
    // again before the cut is found.
    let extra = t.path().join("state/extra");
    std::fs::create_dir_all(extra.join("deep")).unwrap();
    std::fs::write(extra.join("deep/notes.txt"), "notes").unwrap();
    let archive = t.path().join("a.tomo-backup");
    backup(&t, &archive);
    std::fs::remove_dir_all(&extra).unwrap();
    std::fs::write(t.path().join("state/settings.yaml"), "kind: Settings\nparallelism: 4\n").unwrap();
    let before_state = tree(&t.path().join("state"));
    // The same file (its envelope, so its fingerprint, unchanged) loses its
    // end, after the manifests: the restore fails at the end.
    let cut = || {
        let f = std::fs::OpenOptions::new().write(true).open(&archive).unwrap();
        f.set_len(f.metadata().unwrap().len() - 30).unwrap();
    };
    let (ok, text) = restore_changed_while_asked(&t, &archive, cut);
    assert!(!ok, "{text}");
    assert!(text.contains("truncated"), "{text}");
    assert_eq!(tree(&t.path().join("state")), before_state, "a manifest was replaced: {text}");
    assert!(!extra.exists(), "the folders made for a staged file were left: {text}");
}

#[test]
fn a_backup_while_another_process_writes_is_one_consistent_moment() {
    let t = tomo();
    assert_eq!(t.run(&["secret", "list"]).code, 0);
    let db = t.path().join("data/tomo.db");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Two rows per transaction: a consistent copy holds an even count.
                conn.execute_batch(
                    "BEGIN IMMEDIATE;
                     INSERT INTO activities (category, action, result) VALUES ('concurrent', 'a', 'ok');
                     INSERT INTO activities (category, action, result) VALUES ('concurrent', 'b', 'ok');
                     COMMIT;",
                )
                .unwrap();
                n += 1;
                // A busy daemon, not a hammer: others get the write lock too.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            n
        })
    };
    let mut archives = Vec::new();
    for i in 0..3 {
        let a = t.path().join(format!("c{i}.tomo-backup"));
        backup(&t, &a);
        archives.push(a);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 10, "the writer barely ran ({written} transactions)");
    for a in &archives {
        let fresh = Tomo::new()
            .env("TOMO_MASTER_PASSWORD", PASS)
            .env("TOMO_SALT", "salt-0123456789")
            .env("DATA_DIRECTORY", "data");
        let r = fresh.run(&["backup", "restore", a.to_str().unwrap(), "--only", "store", "--yes"]);
        assert_eq!(r.code, 0, "{}", r.all());
        let conn = rusqlite::Connection::open(fresh.path().join("data/tomo.db")).unwrap();
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let (a_rows, b_rows): (i64, i64) = conn
            .query_row(
                "SELECT sum(action = 'a'), sum(action = 'b') FROM activities WHERE category = 'concurrent'",
                [],
                |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
            )
            .unwrap();
        assert_eq!(a_rows, b_rows, "a transaction was split by the copy");
    }
}

/// An agent's restore over MCP: planned by any proposing role; carried out
/// by an admin where `mcp.require_approval: none`; otherwise kept as a
/// proposal that says what it replaces, restored when an admin approves it
/// (CLI or MCP), and stale when its archive was replaced meanwhile.
#[test]
fn agents_back_up_list_and_restore_by_role() {
    use serde_json::json;

    use crate::mcp_client::Stdio;
    let t = tomo();
    let settings = t.path().join("state/settings.yaml");
    let restored = || std::fs::read_to_string(&settings).unwrap().contains("parallelism: 2");
    let mut op = Stdio::start(&t, "operator");
    let made = op.ok("backup_create", json!({}));
    assert_eq!(made["verified"], true, "{made}");
    let name = |made: &serde_json::Value| {
        Path::new(made["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().to_string()
    };
    let file = name(&made);
    let listed = op.ok("backup_list", json!({}));
    assert_eq!(listed["backups"][0]["verified"], true, "{listed}");
    assert_eq!(listed["backups"][0]["members"], made["members"], "{listed}");
    let mut viewer = Stdio::start(&t, "viewer");
    let refused = viewer.call("backup_restore", json!({"file": file}));
    assert!(refused.is_error, "a viewer may not even plan a restore: {}", refused.text);
    drop(viewer);

    std::fs::write(&settings, "kind: Settings\nparallelism: 5\n").unwrap();
    let one = json!({"file": file, "only": ["manifests"], "confirm": true});
    // An operator's restore is a proposal stating what it replaces.
    let proposed = op.ok("backup_restore", one.clone());
    assert_eq!(proposed["outcome"], "proposed", "{proposed}");
    assert!(proposed["why"].as_str().unwrap().contains("`operator` role"), "{proposed}");
    assert!(proposed["items"][0]["replaces"].as_str().unwrap().contains("1 changed file(s)"), "{proposed}");
    assert!(!restored(), "a proposal changed the manifests");
    let by_operator = proposed["proposal"].as_str().unwrap().to_string();

    // So is an admin's under the default `require_approval: destructive`.
    let mut admin = Stdio::start(&t, "admin");
    let path = admin.call("backup_restore", json!({"file": "../../etc/passwd"}));
    assert!(path.is_error && path.text.contains("not a path"), "{}", path.text);
    let planned = admin.ok("backup_restore", json!({"file": file, "only": ["manifests"]}));
    assert_eq!(planned["outcome"], "planned", "{planned}");
    let by_admin = admin.ok("backup_restore", one.clone());
    assert_eq!(by_admin["outcome"], "proposed", "{by_admin}");
    assert!(by_admin["why"].as_str().unwrap().contains("require_approval: destructive"), "{by_admin}");
    assert!(!restored());
    let shown = admin.ok("proposal_get", json!({"id": by_operator}));
    assert!(shown.to_string().contains("replaces"), "the proposal says what it replaces: {shown}");

    // Approved on the command line: the archive it was made with is restored.
    let approved = t.run(&["proposal", "approve", &by_operator, "--yes"]);
    assert_eq!(approved.code, 0, "{}", approved.all());
    assert!(approved.stdout.contains("applied") && approved.stdout.contains("manifest file(s)"), "{}", approved.all());
    assert!(restored(), "the approved restore did not restore the manifests");

    // The admin's own proposal, its archive replaced by another meanwhile: stale, nothing restored.
    std::fs::write(&settings, "kind: Settings\nparallelism: 5\n").unwrap();
    let other = op.ok("backup_create", json!({}));
    let folder = t.path().join("data/backups");
    let original = std::fs::read(folder.join(&file)).unwrap();
    std::fs::copy(folder.join(name(&other)), folder.join(&file)).unwrap();
    let stale = admin.call("proposal_approve", json!({"id": by_admin["proposal"]}));
    assert!(stale.is_error && stale.text.contains("is not the one"), "{}", stale.text);
    assert!(!restored(), "a stale proposal restored something");
    let status = admin.ok("proposal_get", json!({"id": by_admin["proposal"]}));
    assert!(status.to_string().contains("\"stale\""), "{status}");
    drop(op);
    std::fs::write(folder.join(&file), original).unwrap();

    // An operator's proposal approved over MCP by an admin.
    let mut op = Stdio::start(&t, "operator");
    let again = op.ok("backup_restore", one.clone());
    let approved = admin.ok("proposal_approve", json!({"id": again["proposal"]}));
    assert_eq!(approved["proposal"]["status"], "applied", "{approved}");
    assert!(approved["restore"]["restored"].is_object(), "{approved}");
    assert!(restored());
    drop(op);

    // With `require_approval: none`, an admin restores at once.
    std::fs::write(&settings, "kind: Settings\nparallelism: 5\nmcp: {require_approval: none}\n").unwrap();
    let done = admin.ok("backup_restore", one.clone());
    assert_eq!(done["outcome"], "restored", "{done}");
    assert!(restored());
    // A restore proposal rejected: nothing restored, and audited under `backup`.
    std::fs::write(&settings, "kind: Settings\nparallelism: 5\nmcp: {require_approval: all}\n").unwrap();
    let unwanted = admin.ok("backup_restore", one.clone());
    assert_eq!(unwanted["outcome"], "proposed", "{unwanted}");
    assert!(unwanted["why"].as_str().unwrap().contains("require_approval: all"), "{unwanted}");
    let rejected = admin.ok("proposal_reject", json!({"id": unwanted["proposal"], "reason": "not now"}));
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert!(!restored(), "a rejected proposal restored something");
    let late = admin.call("proposal_approve", json!({"id": unwanted["proposal"]}));
    assert!(late.is_error && late.text.contains("rejected"), "{}", late.text);
    let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
    let actions: Vec<String> = store.activities(Some("backup"), 100).unwrap().into_iter().map(|a| a.action).collect();
    for action in ["propose", "approve", "restore", "reject"] {
        assert!(actions.iter().any(|a| a == action), "no backup {action} in the audit: {actions:?}");
    }
    drop(store);
    drop(admin);

    // The whole state (store, vault, manifests) proposed and approved: the
    // store that held the proposal is set aside, and the restored one's
    // audit log records the approval.
    std::fs::write(&settings, "kind: Settings\nparallelism: 5\n").unwrap();
    let mut op = Stdio::start(&t, "operator");
    let whole = op.ok("backup_restore", json!({"file": file, "confirm": true}));
    assert_eq!(whole["outcome"], "proposed", "{whole}");
    drop(op);
    let id = whole["proposal"].as_str().unwrap();
    let approved = t.run(&["proposal", "approve", id, "--yes"]);
    assert_eq!(approved.code, 0, "{}", approved.all());
    assert!(approved.stdout.contains("the store"), "{}", approved.all());
    assert!(restored());
    let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
    let approvals: Vec<_> = store
        .activities(Some("backup"), 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "approve" && a.target.as_deref() == Some(id))
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    // The store set aside keeps the proposal approved: what the approving
    // process wrote last (its write-ahead log) went aside with it.
    let aside: Vec<_> = std::fs::read_dir(t.path().join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("tomo.db.before-restore") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = Store::open(&aside[0]).unwrap().proposal(id).unwrap().expect("the proposal in the store set aside");
    assert_eq!(kept.status, tomo::store::ProposalStatus::Approved, "{kept:?}");
}
