//! `tomo watch` against the real Docker Engine: edits applied end to end,
//! debouncing, invalid edits held, drift repaired, destructive actions held,
//! a clean SIGTERM, metrics. The tests follow the watch through its JSON log
//! (one `run finished` line per run), never by sleeping.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet::{Fleet, HEALTHY, docker, httpd};

/// A running `tomo watch` and its log.
pub(crate) struct Watch {
    pub(crate) child: Child,
    log: Receiver<Value>,
    pub(crate) seen: Vec<Value>,
}

impl Watch {
    pub(crate) fn start(f: &Fleet, args: &[&str]) -> Watch {
        let mut all = vec!["watch"];
        all.extend_from_slice(args);
        let mut child = f.tomo.spawn_env(&all, &[("TOMO_LOG", "info")]);
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
        Watch { child, log, seen: Vec::new() }
    }

    /// The next log line that satisfies `pred` (all lines are kept in `seen`).
    pub(crate) fn next(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} in the watch log:\n{}", self.dump()),
            }
        }
    }

    /// The next finished run with this trigger.
    pub(crate) fn run(&mut self, trigger: &str) -> Value {
        self.next(&format!("run ({trigger})"), |v| {
            message(v).starts_with("run finished") && v["fields"]["trigger"] == trigger
        })
    }

    pub(crate) fn dump(&self) -> String {
        self.seen.iter().map(|v| format!("{v}\n")).collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn message(v: &Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

pub(crate) fn settings(f: &Fleet, extra: &str) {
    f.manifest("settings.yaml", &format!("kind: Settings\nwatch: {{interval: 1s{extra}}}\n"));
}

fn web(f: &Fleet, name: &str, env: &str) {
    f.manifest(
        &format!("apps/{name}.yaml"),
        &format!(
            "kind: App\nname: {{p}}-{name}\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nenv: {{A: \"{env}\"}}\n",
            httpd(name)
        ),
    );
}

fn env_a(f: &Fleet, container: &str) -> String {
    f.inspect(container, "{{range .Config.Env}}{{println .}}{{end}}")
        .lines()
        .find_map(|l| l.strip_prefix("A=").map(String::from))
        .unwrap_or_default()
}

#[test]
fn an_edit_in_the_watched_folder_is_applied() {
    let f = Fleet::new();
    settings(&f, ", self_heal: true");
    web(&f, "a", "1");
    let mut w = Watch::start(&f, &["--metrics", "127.0.0.1:0"]);
    let first = w.run("start");
    assert_eq!(first["fields"]["outcome"], "applied", "{}", w.dump());
    assert_eq!(f.inspect(&f.app("a"), "{{.State.Status}}"), "running");
    web(&f, "b", "1");
    let r = w.run("files");
    assert_eq!(r["fields"]["outcome"], "applied", "{}", w.dump());
    assert_eq!(f.inspect(&f.app("b"), "{{.State.Status}}"), "running");
    // Metrics count what happened.
    let addr = w.seen.iter().find(|v| message(v) == "metrics at /metrics").unwrap()["fields"]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, body) = crate::mcp_client::http(&addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains("tomo_watch_runs_total{outcome=\"applied\"} 2"), "{body}");
    assert!(body.contains("tomo_watch_last_success_timestamp_seconds"), "{body}");
    let (status, _, _) = crate::mcp_client::http(&addr, "GET", "/healthz", &[], "");
    assert_eq!(status, 200);
}

#[test]
fn a_burst_of_edits_gives_one_or_two_runs() {
    let f = Fleet::new();
    settings(&f, "");
    web(&f, "a", "0");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    for i in 1..=20 {
        web(&f, "a", &i.to_string());
    }
    w.run("files");
    // Runs until the timer's next drift check, which comes after the burst settled.
    let mut file_runs = 1;
    loop {
        let v = w.next("a run", |v| message(v).starts_with("run finished"));
        match v["fields"]["trigger"].as_str() {
            Some("files") => file_runs += 1,
            _ => break,
        }
    }
    assert!(file_runs <= 2, "{file_runs} runs for one burst:\n{}", w.dump());
    assert_eq!(env_a(&f, &f.app("a")), "20");
}

#[test]
fn an_invalid_edit_is_reported_and_the_old_state_keeps_running() {
    let f = Fleet::new();
    settings(&f, "");
    web(&f, "a", "1");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    let id = f.id(&f.app("a"));
    f.manifest("apps/a.yaml", "kind: App\nname: {p}-a\nserver: local\nimgae: {image}\n");
    let r = w.run("files");
    assert_eq!(r["fields"]["outcome"], "invalid", "{}", w.dump());
    let located = w.seen.iter().any(|v| {
        v["level"] == "ERROR" && v["fields"]["location"].as_str().is_some_and(|l| l.ends_with("apps/a.yaml:4:1"))
    });
    assert!(located, "no error with file and line:\n{}", w.dump());
    assert_eq!(f.id(&f.app("a")), id, "the running container is left alone");
    assert_eq!(f.inspect(&f.app("a"), "{{.State.Status}}"), "running");
    web(&f, "a", "2");
    // The debounced file run or the drift timer, whichever comes first.
    w.next("a run that applies the fix", |v| {
        message(v).starts_with("run finished") && v["fields"]["outcome"] == "applied"
    });
    assert_eq!(env_a(&f, &f.app("a")), "2");
}

#[test]
fn a_manifest_with_a_multibyte_name_is_an_invalid_manifest_and_watch_keeps_running() {
    let f = Fleet::new();
    settings(&f, "");
    web(&f, "a", "1");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    f.manifest("apps/euro.yaml", &format!("kind: App\nname: {}\nserver: local\nimage: {{image}}\n", "€".repeat(30)));
    let r = w.run("files");
    assert_eq!(r["fields"]["outcome"], "invalid", "{}", w.dump());
    let located = w.seen.iter().any(|v| {
        v["level"] == "ERROR" && v["fields"]["location"].as_str().is_some_and(|l| l.ends_with("apps/euro.yaml:2:7"))
    });
    assert!(located, "no error with file and line:\n{}", w.dump());
    f.remove_manifest("apps/euro.yaml");
    web(&f, "a", "2");
    w.next("a run that applies the next edit", |v| {
        message(v).starts_with("run finished") && v["fields"]["outcome"] == "applied"
    });
    assert_eq!(env_a(&f, &f.app("a")), "2");
    assert!(w.child.try_wait().unwrap().is_none(), "watch is still running");
}

#[test]
fn a_container_stopped_by_hand_is_started_by_the_drift_check() {
    let f = Fleet::new();
    settings(&f, "");
    web(&f, "a", "1");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    docker(&["stop", "-t", "1", &f.app("a")]);
    let r = w.next("a repairing drift run", |v| {
        message(v).starts_with("run finished")
            && v["fields"]["trigger"] == "drift"
            && v["fields"]["outcome"] == "applied"
    });
    assert!(r["fields"]["succeeded"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(f.inspect(&f.app("a"), "{{.State.Status}}"), "running");
}

#[test]
fn drift_is_only_reported_without_self_heal() {
    let f = Fleet::new();
    settings(&f, ", self_heal: false");
    web(&f, "a", "1");
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    docker(&["stop", "-t", "1", &f.app("a")]);
    w.next("a held drift", |v| message(v) == "held" || message(v).starts_with("held"));
    let r = w.run("drift");
    assert_eq!(r["fields"]["outcome"], "held", "{}", w.dump());
    assert_eq!(f.inspect(&f.app("a"), "{{.State.Status}}"), "exited", "drift is reported, not repaired");
}

#[test]
fn destructive_changes_are_held_for_tomo_apply() {
    let f = Fleet::new();
    settings(&f, "");
    f.manifest(
        "apps/db.yaml",
        &format!("kind: App\nname: {{p}}-db\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nenv: {{A: \"1\"}}\nvolumes: [\"data:/data\"]\n", httpd("db")),
    );
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    let db = f.app("db");
    let id = f.id(&db);
    f.manifest(
        "apps/db.yaml",
        &format!("kind: App\nname: {{p}}-db\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nenv: {{A: \"2\"}}\nvolumes: [\"data:/data\"]\n", httpd("db")),
    );
    let held = w.next("a held action", |v| message(v) == "held");
    assert!(held["fields"]["action"].as_str().unwrap().contains(&format!("recreate {db}")), "{held}");
    let r = w.run("files");
    assert_eq!(r["fields"]["held"], 1, "{}", w.dump());
    assert_eq!(f.id(&db), id, "a held recreate leaves the container");
    let apply = f.tomo(&["apply", "--auto-approve", "--lock-timeout", "60s"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert_ne!(f.id(&db), id);
    assert_eq!(env_a(&f, &db), "2");
}

#[test]
fn sigterm_during_a_run_finishes_what_runs_and_exits() {
    let f = Fleet::new();
    settings(&f, "");
    // A chain: b waits for a to be healthy, which takes a moment.
    f.manifest(
        "apps/chain.yaml",
        &format!(
            "kind: App\nname: {{p}}-chain\nserver: local\nservices:\n  a:\n    image: {{image}}\n    init: true\n    command: [\"sh\", \"-c\", \"sleep 1 && mkdir -p /w && echo a > /w/index.html && exec httpd -f -p 80 -h /w\"]\n    healthcheck: {HEALTHY}\n  b:\n    image: {{image}}\n    init: true\n    command: {}\n    depends_on: {{a: healthy}}\n",
            httpd("b")
        ),
    );
    let mut w = Watch::start(&f, &[]);
    w.next("the start of a", |v| message(v) == "started" || message(v) == "action finished");
    let t = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &w.child.id().to_string()]).status().unwrap().success());
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", w.dump());
    assert!(t.elapsed() < Duration::from_secs(30), "took {:?}", t.elapsed());
    // The run was recorded as finished, not left running.
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let run = &store.runs(1).unwrap()[0];
    assert_ne!(run.status, tomo::store::RunStatus::Running, "{run:?}");
    // The next apply converges.
    f.apply();
    f.assert_converged();
}

#[test]
fn git_pull_brings_commits_that_are_then_applied() {
    let f = Fleet::new();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // An upstream repository, and the manifest folder as its clone.
    let root = f.tomo.path();
    let upstream = root.join("upstream");
    std::fs::create_dir_all(upstream.join("apps")).unwrap();
    git(&upstream, &["init", "-q", "-b", "main"]);
    std::fs::write(upstream.join("settings.yaml"), "kind: Settings\nwatch: {interval: 1h}\n").unwrap();
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-q", "-m", "start"]);
    git(root, &["clone", "-q", upstream.to_str().unwrap(), "state"]);
    let mut w = Watch::start(&f, &["--git-pull", "origin", "--git-interval", "1s"]);
    w.run("start");
    // A commit upstream: the watch pulls it and applies it.
    let app = f.app("pulled");
    std::fs::write(
        upstream.join("apps/pulled.yaml"),
        format!(
            "kind: App\nname: {app}\nserver: local\nimage: {}\ninit: true\ncommand: {}\n",
            crate::fleet::IMAGE,
            httpd("p")
        ),
    )
    .unwrap();
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-q", "-m", "add an app"]);
    w.next("the pull", |v| message(v) == "git pull brought new commits");
    w.next("the run applying it", |v| message(v).starts_with("run finished") && v["fields"]["outcome"] == "applied");
    assert_eq!(f.inspect(&app, "{{.State.Status}}"), "running");
    // An option-looking remote is refused before anything runs.
    let r = f.tomo(&["watch", "--git-pull=--upload-pack=x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not an option"), "{}", r.stderr);
}

#[test]
fn watch_reconciles_ssh_servers_too() {
    let h = crate::hosts::TestHost::new(true);
    let f = Fleet::new();
    settings(&f, "");
    f.manifest("servers.yaml", &h.server_yaml("h1"));
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    let app = f.app("remote");
    f.manifest(
        "apps/remote.yaml",
        &format!("kind: App\nname: {app}\nserver: h1\nimage: {{image}}\ninit: true\ncommand: {}\n", httpd("r")),
    );
    w.next("the run deploying it", |v| message(v).starts_with("run finished") && v["fields"]["outcome"] == "applied");
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Status}}", &app]), "running");
    // Drift on the remote engine is repaired by the timer, over the kept connection.
    h.docker(&["stop", "-t", "1", &app]);
    w.next("a repairing drift run", |v| {
        message(v).starts_with("run finished")
            && v["fields"]["trigger"] == "drift"
            && v["fields"]["outcome"] == "applied"
    });
    assert_eq!(h.docker(&["inspect", "-f", "{{.State.Status}}", &app]), "running");
}

#[test]
fn a_change_that_drops_an_anonymous_volume_is_held_and_names_the_data() {
    let f = Fleet::new();
    settings(&f, ", destructive: hold");
    let app = |volumes: &str| {
        format!(
            "kind: App\nname: {{p}}-held\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nvolumes: {volumes}\n",
            httpd("held")
        )
    };
    f.manifest("apps/held.yaml", &app("[\"/data\"]"));
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    let c = f.app("held");
    let format = "{{range .Mounts}}{{.Name}}{{end}}";
    let data = f.inspect(&c, format);
    let id = f.id(&c);
    f.manifest("apps/held.yaml", &app("[]"));
    let held = w.next("a held action", |v| message(v) == "held");
    let line = held["fields"]["action"].as_str().unwrap().to_string();
    assert!(line.contains(&format!("recreate {c}")), "{held}");
    assert!(line.contains(&format!("drops anonymous volume at /data ({}", &data[..12])), "{held}");
    w.run("files");
    assert_eq!(f.id(&c), id, "a held recreate leaves the container");
    drop(w);
    let _ = docker(&["rm", "-f", &c]);
    let _ = docker(&["volume", "rm", &data]);
}

#[test]
fn the_drift_check_repairs_the_local_server_while_another_never_answers() {
    let host = crate::hosts::TestHost::new(false);
    let _fake = crate::fakedocker::FakeDocker::start(&host.socket, crate::fakedocker::Behaviour::Silent);
    let mut f = Fleet::new();
    // Every call of the local server has this time too: room for a busy machine.
    f.tomo.set_env("SSH_TIMEOUT", "5s");
    settings(&f, "");
    web(&f, "a", "1");
    f.manifest("servers.yaml", &host.server_yaml("hangs"));
    let state = |f: &Fleet| crate::fleet::docker_try(&["inspect", "-f", "{{.State.Status}}", &f.app("a")]);
    let mut w = Watch::start(&f, &[]);
    w.run("start");
    assert_eq!(state(&f).as_deref(), Some("running"), "{}", w.dump());
    docker(&["stop", "-t", "1", &f.app("a")]);
    // A drift run that began before the stop may not see it; the next one does.
    for _ in 0..5 {
        w.run("drift");
        if state(&f).as_deref() == Some("running") {
            break;
        }
    }
    assert_eq!(state(&f).as_deref(), Some("running"), "{}", w.dump());
    assert!(w.dump().contains("no answer within the server timeout of 5s"), "{}", w.dump());
}

/// `watch` applies the restore of an interrupted recreate like any other
/// action: a restore is not destructive (it keeps the container that last
/// ran and removes no volume), so it is applied under `watch.destructive:
/// hold`, while the recreate of a service holding data waits for `tomo apply`.
#[test]
fn watch_restores_an_interrupted_recreate_and_holds_what_is_destructive() {
    let f = Fleet::new();
    settings(&f, "");
    let db_yaml = |env: &str| {
        format!(
            "kind: App\nname: {{p}}-db\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nenv: {{A: \"{env}\"}}\nvolumes: [\"data:/data\"]\n",
            httpd("db")
        )
    };
    f.manifest("apps/db.yaml", &db_yaml("1"));
    f.apply();
    let db = f.app("db");
    let id = f.id(&db);
    f.manifest("apps/db.yaml", &db_yaml("2"));
    crate::faults::kill_at(&f, "after-rename");
    assert!(!f.exists(&db), "the old container is aside: {:?}", f.containers());
    let mut w = Watch::start(&f, &[]);
    let held = w.next("a held action", |v| message(v) == "held");
    assert!(held["fields"]["action"].as_str().unwrap().contains(&format!("recreate {db}")), "{held}");
    let r = w.run("start");
    assert_eq!(r["fields"]["held"], 1, "only the recreate is held: {}", w.dump());
    assert_eq!(f.containers(), std::slice::from_ref(&db), "the leftover was put back");
    assert_eq!(f.id(&db), id);
    assert_eq!(f.inspect(&db, "{{.State.Status}}"), "running");
    assert_eq!(env_a(&f, &db), "1");
}
