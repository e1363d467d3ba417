//! An app's `backup: {mode, pre}` on the real local Docker Engine: the `pre`
//! hook runs in the service's container before the copy (its dump file is
//! in the archive and comes back on restore), a failing hook fails the
//! backup with its last output (secrets masked) and leaves the app running,
//! and a scheduled run (`Settings.backup.apps`) holds the app's volume.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, docker};

const PASS: &str = "pre-hook-passphrase";
const SECRET: &str = "hook-token-5d1c9a";

fn app_yaml(pre: &str) -> String {
    app_yaml_within(pre, "30s")
}

fn app_yaml_within(pre: &str, timeout: &str) -> String {
    format!(
        "kind: App\nname: {{p}}-pre\nserver: local\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv:\n  TOKEN: {{secret: hook-token}}\nvolumes: [\"data:/data\"]\nbackup:\n  mode: live\n  pre: {{service: {{p}}-pre, command: {pre}, timeout: {timeout}}}\n"
    )
}

#[test]
fn pre_hook_dump_is_backed_up_and_a_failing_hook_fails_the_backup() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", PASS);
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "hook-token"], Some(&format!("{SECRET}\n")));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest("pre.yaml", &app_yaml("\"date > /data/dump.txt\""));
    f.apply();
    let (app, volume) = (f.app("pre"), format!("{}_data", f.app("pre")));
    let data = PathBuf::from(docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]));
    assert!(!data.join("dump.txt").exists());

    let file = f.tomo.path().join("one.tomo-backup").display().to_string();
    let made = f.tomo(&["backup", "create", "--app", &app, "--out", &file, "--json"]);
    assert_eq!(made.code, 0, "{}", made.all());
    let dumped = std::fs::read_to_string(data.join("dump.txt")).expect("the hook wrote its dump");
    assert!(!dumped.trim().is_empty());

    std::fs::remove_file(data.join("dump.txt")).unwrap();
    let done = f.tomo(&["backup", "restore", &file, "--only", &format!("app:{app}"), "--yes"]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(std::fs::read_to_string(data.join("dump.txt")).unwrap(), dumped, "the dump came back");

    // A failing hook: the backup fails with its last output, masked; the app runs on.
    f.manifest("pre.yaml", &app_yaml("\"echo first; echo token=$TOKEN; echo dump failed >&2; exit 3\""));
    let bad = f.tomo.path().join("bad.tomo-backup");
    let failed = f.tomo(&["backup", "create", "--app", &app, "--out", &bad.display().to_string()]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    let text = failed.all();
    assert!(text.contains("exit code 3") && text.contains("dump failed"), "{text}");
    assert!(text.contains("token=***") && !text.contains(SECRET), "{text}");
    assert!(!bad.exists(), "no archive from a failed backup");
    assert_eq!(f.inspect(&app, "{{.State.Running}}"), "true");

    // A hook that outlives its timeout fails the backup at the timeout.
    f.manifest("pre.yaml", &app_yaml_within("[\"sleep\", \"60\"]", "1s"));
    let t = Instant::now();
    let late = f.tomo(&["backup", "create", "--app", &app, "--out", &bad.display().to_string()]);
    let took = t.elapsed();
    assert_ne!(late.code, 0, "{}", late.all());
    assert!(
        late.all().contains("pre` hook") && late.all().contains("within") && late.all().contains("1s"),
        "{}",
        late.all()
    );
    assert!(took < Duration::from_secs(20), "the hook was cut at its timeout, not waited for: {took:?}");
    assert!(!bad.exists(), "no archive from a late hook");
    assert_eq!(f.inspect(&app, "{{.State.Running}}"), "true");

    // A hook that prints 32 MiB: the failure shows only its last lines.
    f.manifest(
        "pre.yaml",
        &app_yaml("\"head -c 33554432 /dev/zero | tr '\\\\0' x; echo; echo the last line; exit 4\""),
    );
    let loud = f.tomo(&["backup", "create", "--app", &app, "--out", &bad.display().to_string()]);
    assert_ne!(loud.code, 0, "{}", loud.all());
    let text = loud.all();
    assert!(
        text.contains("exit code 4") && text.contains("the last line"),
        "{}",
        &text[text.floor_char_boundary(text.len().saturating_sub(2000))..]
    );
    assert!(text.len() < 256 * 1024, "the output shown is capped: {} bytes", text.len());
    assert!(!bad.exists());
}

#[test]
fn a_scheduled_run_holds_the_data_of_settings_backup_apps() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", PASS);
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "hook-token"], Some(&format!("{SECRET}\n")));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest("pre.yaml", &app_yaml("[sh, -c, \"echo scheduled > /data/dump.txt\"]"));
    f.apply();
    let (app, volume) = (f.app("pre"), format!("{}_data", f.app("pre")));
    let target = f.tomo.path().join("archives");
    f.manifest(
        "settings.yaml",
        &format!(
            "kind: Settings\nbackup:\n  schedule: 1h\n  apps: [{app}]\n  mode: stop\n  target: {{path: '{}'}}\n",
            target.display()
        ),
    );
    let mut child = f.tomo.spawn_env(&["watch"], &[("TOMO_LOG", "info")]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let archive = loop {
        let found: Vec<PathBuf> = std::fs::read_dir(&target)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".tomo-backup")).collect())
            .unwrap_or_default();
        if let Some(p) = found.first() {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "no scheduled archive in {}", target.display());
        std::thread::sleep(Duration::from_millis(300));
    };
    // The run is recorded once the archive is verified.
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    let file = archive.display().to_string();
    let list = f.tomo(&["backup", "list", "--folder", &target.display().to_string(), "--verify"]);
    assert!(list.stdout.contains(&app), "{}", list.all());
    let dry = f.tomo(&["backup", "restore", &file, "--only", &format!("app:{app}"), "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(dry.stdout.contains(&volume), "the archive lists the app's volume: {}", dry.stdout);
    let data = PathBuf::from(docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]));
    assert_eq!(std::fs::read_to_string(data.join("dump.txt")).unwrap(), "scheduled\n", "the hook ran");
    assert_eq!(f.inspect(&app, "{{.State.Running}}"), "true");
}
