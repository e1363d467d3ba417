//! `Settings.backup` run by `tomo watch`: with a short interval and
//! `keep: {last: 2}`, after several runs exactly the newest two archives
//! remain, every run is recorded (trigger `watch`) and audited; a run that
//! cannot write its folder is a warning, recorded as failed, and watch keeps
//! running (and backs up again once the folder is fixed).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;
use tomo::store::Store;

use crate::harness::Tomo;

fn settings(t: &Tomo, target: &Path) {
    let text = format!(
        "kind: Settings\nbackup:\n  schedule: 2s\n  keep: {{last: 2}}\n  target: {{path: '{}'}}\n",
        target.display()
    );
    std::fs::write(t.path().join("state/settings.yaml"), text).unwrap();
}

pub fn message(v: &Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

/// The next log line whose message is `what` (all lines go to `seen`).
pub fn next(log: &Receiver<Value>, seen: &mut Vec<Value>, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(v) => {
                seen.push(v.clone());
                if message(&v) == what {
                    return v;
                }
            }
            Err(_) => {
                panic!("no `{what}` in the watch log:\n{}", seen.iter().map(|v| format!("{v}\n")).collect::<String>())
            }
        }
    }
}

fn archives(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".tomo-backup"))
        .collect();
    v.sort();
    v
}

#[test]
fn watch_writes_scheduled_backups_keeps_the_newest_and_survives_a_failing_run() {
    let t = Tomo::new()
        .env("TOMO_MASTER_PASSWORD", "schedule pw")
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
        .file("state/settings.yaml", "kind: Settings\n");
    let target = t.path().join("archives");
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
    for _ in 0..4 {
        next(&log, &mut seen, "scheduled backup written");
    }

    // A folder that cannot be made (a file stands in its parent's place).
    std::fs::write(t.path().join("not-a-folder"), "x").unwrap();
    settings(&t, &t.path().join("not-a-folder/archives"));
    let failed = next(&log, &mut seen, "scheduled backup failed");
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert!(child.try_wait().unwrap().is_none(), "watch stopped after a failed backup");

    // Fixed again: watch goes on backing up.
    settings(&t, &target);
    next(&log, &mut seen, "scheduled backup written");
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(v) = log.recv_timeout(Duration::from_secs(5)) {
        seen.push(v);
    }

    let written: Vec<String> = seen
        .iter()
        .filter(|v| message(v) == "scheduled backup written")
        .map(|v| v["fields"]["file"].as_str().unwrap().to_string())
        .collect();
    assert!(written.len() >= 5, "{written:?}");
    let mut newest: Vec<String> = written[written.len() - 2..].to_vec();
    newest.sort();
    assert_eq!(archives(&target), newest, "only the newest two archives stay");

    let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
    let runs: Vec<_> = store.backup_runs(100).unwrap().into_iter().filter(|r| r.trigger == "watch").collect();
    let ok = runs.iter().filter(|r| r.outcome == "ok").count();
    assert!(ok >= written.len(), "{runs:?}");
    assert!(runs.iter().any(|r| r.outcome == "failed" && r.error.is_some()), "{runs:?}");
    let audit = store.activities(Some("backup"), 100).unwrap();
    let created = audit.iter().filter(|a| a.action == "create" && a.actor.as_deref() == Some("watch")).count();
    assert!(created > written.len(), "{audit:?}");
    assert!(audit.iter().any(|a| a.action == "prune"), "{audit:?}");
    assert!(audit.iter().any(|a| a.action == "create" && a.result == "error"), "{audit:?}");
}
