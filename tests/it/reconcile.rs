//! The reconcile engine against the real Docker Engine: plan, apply, drift,
//! ordering, rollback, orphans, conflicts, saved plans, the lock, history.

use crate::fleet::{Fleet, HEALTHY, IMAGE, build_image, docker, httpd};

fn two_services(f: &Fleet, env: &str) {
    f.manifest(
        "shop.yaml",
        &format!(
            "kind: App\nname: {{p}}-shop\nserver: local\nservices:\n  db:\n    image: {{image}}\n    init: true\n    command: {}\n    healthcheck: {HEALTHY}\n    volumes: [\"data:/data\"]\n  web:\n    image: {{image}}\n    init: true\n    command: {}\n    env: {{A: \"{env}\"}}\n    depends_on: {{db: healthy}}\n",
            httpd("db"),
            httpd("web")
        ),
    );
}

#[test]
fn create_from_nothing_then_idempotent() {
    let f = Fleet::new();
    two_services(&f, "1");
    let plan = f.tomo(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.stdout.contains(&format!("+ {}-shop-db", f.prefix)), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 2 to create"), "{}", plan.stdout);
    let r = f.apply();
    assert!(r.stdout.contains("Apply complete: 6 succeeded"), "{}", r.stdout);
    let shop = f.app("shop");
    assert_eq!(f.containers(), [format!("{shop}-db"), format!("{shop}-web")]);
    assert_eq!(f.inspect(&format!("{shop}-db"), "{{.State.Health.Status}}"), "healthy");
    assert_eq!(f.inspect(&format!("{shop}-web"), "{{index .Config.Labels \"tomo.managed\"}}"), "true");
    assert_eq!(docker(&["volume", "inspect", "-f", "{{.Name}}", &format!("{shop}_data")]), format!("{shop}_data"));
    // The web service reaches db by its service name on the app's network.
    let got = docker(&["exec", &format!("{shop}-web"), "wget", "-q", "-O-", "http://db/"]);
    assert_eq!(got, "db");
    f.assert_converged();
    let again = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
}

#[test]
fn one_env_change_recreates_exactly_that_container() {
    let f = Fleet::new();
    two_services(&f, "1");
    f.apply();
    let shop = f.app("shop");
    let (db, web) = (f.id(&format!("{shop}-db")), f.id(&format!("{shop}-web")));
    two_services(&f, "2");
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("~ {shop}-web")), "{}", plan.stdout);
    assert!(plan.stdout.contains("env.A changed"), "{}", plan.stdout);
    assert!(plan.stdout.contains("-env.A: \"1\"") && plan.stdout.contains("+env.A: \"2\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to recreate"), "{}", plan.stdout);
    f.apply();
    assert_eq!(f.id(&format!("{shop}-db")), db, "db must keep its container");
    assert_ne!(f.id(&format!("{shop}-web")), web);
    assert_eq!(
        f.inspect(&format!("{shop}-web"), "{{range .Config.Env}}{{println .}}{{end}}")
            .lines()
            .find(|l| l.starts_with("A=")),
        Some("A=2")
    );
    f.assert_converged();
}

#[test]
fn dependencies_start_after_their_dependency_is_healthy() {
    let f = Fleet::new();
    two_services(&f, "1");
    f.apply();
    let shop = f.app("shop");
    // The first successful health probe of db ended before web started.
    let probes = f.inspect(
        &format!("{shop}-db"),
        "{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End.UTC.Format \"2006-01-02T15:04:05.000000000Z\"}}\n{{end}}{{end}}",
    );
    let first_ok = probes.lines().next().expect("db had a passing health probe").to_string();
    let web_started = f.inspect(&format!("{shop}-web"), "{{.State.StartedAt}}");
    assert!(
        instant(&web_started) >= instant(&first_ok),
        "web started at {web_started}, before db was healthy at {first_ok}"
    );
}

/// Seconds since the epoch day began, from an RFC 3339 UTC timestamp
/// (`2026-11-25T21:45:01.123Z`), enough to order events of one test.
fn instant(ts: &str) -> (String, f64) {
    let (day, time) = ts.split_once('T').expect("RFC 3339 timestamp");
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    (day.to_string(), h * 3600.0 + m * 60.0 + s)
}

#[test]
fn drift_is_detected_and_repaired() {
    let f = Fleet::new();
    two_services(&f, "1");
    f.apply();
    let shop = f.app("shop");
    let web = format!("{shop}-web");
    // stopped by hand
    docker(&["stop", "-t", "1", &web]);
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("> {web}")) && plan.stdout.contains("is exited"), "{}", plan.stdout);
    let status = f.tomo(&["status"]);
    assert!(status.stdout.contains("exited") && status.stdout.contains("start"), "{}", status.stdout);
    f.apply();
    assert_eq!(f.inspect(&web, "{{.State.Running}}"), "true");
    // removed by hand
    docker(&["rm", "-f", &web]);
    assert!(f.tomo(&["plan"]).stdout.contains(&format!("+ {web}")));
    f.apply();
    assert!(f.exists(&web));
    // replaced by hand: same name and tomo's labels, another image
    let labels = f.inspect(&web, "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}");
    docker(&["rm", "-f", &web]);
    let other = format!("tomo-test/{}:other", f.prefix);
    build_image(&other, "other");
    let mut args = vec!["run".to_string(), "-d".into(), "--name".into(), web.clone()];
    for l in labels.lines().filter(|l| !l.is_empty()) {
        args.extend(["--label".to_string(), l.to_string()]);
    }
    args.extend([other.clone(), "sleep".into(), "600".into()]);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("~ {web}")), "{}", plan.stdout);
    assert!(plan.stdout.contains("replaced outside tomo"), "{}", plan.stdout);
    f.apply();
    f.assert_converged();
    let _ = crate::fleet::docker_try(&["rmi", "-f", &other]);
}

#[test]
fn stopped_and_absent() {
    let f = Fleet::new();
    f.manifest("a.yaml", &format!("kind: App\nname: {{p}}-solo\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nvolumes: [\"keep:/data\"]\n", httpd("x")));
    f.apply();
    let solo = f.app("solo");
    f.manifest("a.yaml", &format!("kind: App\nname: {{p}}-solo\nserver: local\nstate: stopped\nimage: {{image}}\ninit: true\ncommand: {}\nvolumes: [\"keep:/data\"]\n", httpd("x")));
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!(". {solo}")), "{}", plan.stdout);
    f.apply();
    assert_eq!(f.inspect(&solo, "{{.State.Running}}"), "false");
    f.assert_converged();
    f.manifest("a.yaml", &format!("kind: App\nname: {{p}}-solo\nserver: local\nstate: absent\nimage: {{image}}\ninit: true\ncommand: {}\nvolumes: [\"keep:/data\"]\n", httpd("x")));
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("- {solo}")), "{}", plan.stdout);
    f.apply();
    assert!(!f.exists(&solo));
    // The named volume survives: data volumes are removed only by name.
    assert_eq!(docker(&["volume", "inspect", "-f", "{{.Name}}", &format!("{solo}_keep")]), format!("{solo}_keep"));
    f.assert_converged();
    let r = f.tomo(&["apply", "--auto-approve", "--prune-volumes", &format!("{solo}_keep")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(crate::fleet::docker_try(&["volume", "inspect", &format!("{solo}_keep")]).is_none());
}

#[test]
fn a_failing_new_container_rolls_back_to_the_old_one() {
    let f = Fleet::new();
    let good = format!(
        "kind: Settings\nhealth_timeout: 8s\n---\nkind: App\nname: {{p}}-api\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nhealthcheck: {HEALTHY}\n",
        httpd("v1")
    );
    f.manifest("a.yaml", &good);
    f.apply();
    let api = f.app("api");
    let old = f.id(&api);
    // v2 never serves, so it never becomes healthy.
    f.manifest("a.yaml", &good.replace(&httpd("v1"), "[\"sleep\", \"600\"]").replace("retries: 30", "retries: 1"));
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("the previous container was restored"), "{}", r.stdout);
    assert_eq!(f.id(&api), old, "the old container is back under its name");
    assert_eq!(f.inspect(&api, "{{.State.Running}}"), "true");
    assert_eq!(f.containers(), std::slice::from_ref(&api), "no leftover containers");
    assert_eq!(docker(&["exec", &api, "wget", "-q", "-O-", "http://127.0.0.1/"]), "v1");
}

#[test]
fn start_first_keeps_the_old_container_running_until_the_new_one_is_healthy() {
    let f = Fleet::new();
    let v = |body: &str| {
        format!(
            "kind: App\nname: {{p}}-sf\nserver: local\nimage: {{image}}\ninit: true\nupdate_order: start-first\ncommand: {}\nhealthcheck: {HEALTHY}\n",
            httpd(body)
        )
    };
    f.manifest("a.yaml", &v("v1"));
    f.apply();
    let sf = f.app("sf");
    let old = f.id(&sf);
    f.manifest("a.yaml", &v("v2"));
    f.apply();
    assert_ne!(f.id(&sf), old);
    assert_eq!(f.containers(), std::slice::from_ref(&sf));
    assert_eq!(docker(&["exec", &sf, "wget", "-q", "-O-", "http://127.0.0.1/"]), "v2");
}

#[test]
fn a_failing_action_skips_only_its_dependents() {
    let f = Fleet::new();
    f.manifest(
        "a.yaml",
        &format!(
            "kind: App\nname: {{p}}-broken\nserver: local\nservices:\n  base:\n    image: {{image}}\n    command: [\"/no-such-program\"]\n  top:\n    image: {{image}}\n    init: true\n    command: [\"sleep\", \"600\"]\n    depends_on: [base]\n---\nkind: App\nname: {{p}}-fine\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\n",
            httpd("ok")
        ),
    );
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("create {}-broken-top on local: skipped", f.prefix)), "{}", r.stdout);
    assert!(r.stdout.contains("1 failed, 2 skipped"), "{}", r.stdout);
    assert_eq!(f.inspect(&f.app("fine"), "{{.State.Running}}"), "true");
    assert!(!f.exists(&format!("{}-top", f.app("broken"))));
}

#[test]
fn orphans_are_listed_and_removed_only_with_prune() {
    let f = Fleet::new();
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-keep\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    f.manifest(
        "b.yaml",
        "kind: App\nname: {p}-gone\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    f.apply();
    f.remove_manifest("b.yaml");
    let gone = f.app("gone");
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("? {gone}")) && plan.stdout.contains("orphan"), "{}", plan.stdout);
    // Scoped to one app, orphans are not considered at all.
    f.apply();
    assert!(f.exists(&gone), "an orphan survives apply without --prune");
    let plan = f.tomo(&["plan", "--prune"]);
    assert!(plan.stdout.contains(&format!("- {gone}")), "{}", plan.stdout);
    let r = f.tomo(&["apply", "--auto-approve", "--prune"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!f.exists(&gone));
    assert!(f.exists(&f.app("keep")));
    // Settings.prune does the same.
    f.manifest(
        "c.yaml",
        "kind: App\nname: {p}-gone2\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    f.apply();
    f.remove_manifest("c.yaml");
    f.manifest("s.yaml", "kind: Settings\nprune: true\n");
    f.apply();
    assert!(!f.exists(&f.app("gone2")));
}

#[test]
fn name_conflicts_are_reported_never_removed() {
    let f = Fleet::new();
    let name = f.app("taken");
    docker(&["run", "-d", "--name", &name, IMAGE, "sleep", "600"]);
    let id = f.id(&name);
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-taken\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    let plan = f.tomo(&["plan"]);
    assert!(
        plan.stdout.contains(&format!("! {name}")) && plan.stdout.contains("is not managed by tomo"),
        "{}",
        plan.stdout
    );
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "a conflict leaves the fleet unconverged: {}", r.all());
    assert_eq!(f.id(&name), id, "the foreign container is untouched");
}

#[test]
fn saved_plans_apply_exactly_and_are_refused_when_stale() {
    let f = Fleet::new();
    f.manifest("a.yaml", "kind: App\nname: {p}-saved\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {V: \"1\"}\n");
    let r = f.tomo(&["plan", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let saved = f.app("saved");
    let r = f.tomo(&["apply", "plan.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(f.exists(&saved));
    f.assert_converged();

    // Stale because the manifests changed.
    f.manifest("a.yaml", "kind: App\nname: {p}-saved\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {V: \"2\"}\n");
    assert_eq!(f.tomo(&["plan", "--out", "plan2.json"]).code, 0);
    f.manifest("a.yaml", "kind: App\nname: {p}-saved\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {V: \"3\"}\n");
    let id = f.id(&saved);
    let r = f.tomo(&["apply", "plan2.json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the manifests changed since this plan was made; nothing was applied"), "{}", r.stderr);
    assert_eq!(f.id(&saved), id);

    // Stale because the server changed.
    assert_eq!(f.tomo(&["plan", "--out", "plan3.json"]).code, 0);
    docker(&["stop", "-t", "1", &saved]);
    let r = f.tomo(&["apply", "plan3.json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the servers changed"), "{}", r.stderr);
    assert_eq!(f.id(&saved), id);
    assert_eq!(f.inspect(&saved, "{{.State.Running}}"), "false");
}

#[test]
fn one_apply_at_a_time() {
    let f = Fleet::new();
    // A slow apply: the container takes a few seconds to become healthy.
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-slow\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sh\", \"-c\", \"sleep 3 && mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p 80 -h /w\"]\nhealthcheck: {test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"], interval: 1s, retries: 30}\n",
    );
    let mut first = f.tomo.spawn(&["apply", "--auto-approve"]);
    // Wait until the first apply holds the lock (its journal has a running run).
    let db = f.tomo.path().join("data/tomo.db");
    let mut held = false;
    for _ in 0..200 {
        if db.exists()
            && let Ok(store) = tomo::store::Store::open(&db)
            && store
                .runs(1)
                .map(|r| r.first().is_some_and(|r| r.status == tomo::store::RunStatus::Running))
                .unwrap_or(false)
        {
            held = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(held, "the first apply did not start");
    let second = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(second.code, 1, "{}", second.all());
    assert!(second.stderr.contains("another apply holds the lock"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.id())), "{}", second.stderr);
    // With a lock timeout, the second waits for the first and then finds nothing to do.
    let third = f.tomo(&["apply", "--auto-approve", "--lock-timeout", "60s"]);
    assert_eq!(third.code, 0, "{}", third.all());
    assert!(first.wait().unwrap().success());
    // A lock left by a process killed while it held it is taken over.
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-slow\nserver: local\nimage: {image}\ninit: true\nenv: {V: \"2\"}\ncommand: [\"sh\", \"-c\", \"sleep 3 && mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p 80 -h /w\"]\nhealthcheck: {test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"], interval: 1s, retries: 30}\n",
    );
    let mut killed = f.tomo.spawn(&["apply", "--auto-approve"]);
    let store = tomo::store::Store::open(&db).unwrap();
    let before = store.runs(1).unwrap()[0].id;
    let running = crate::hosts::wait_until(std::time::Duration::from_secs(30), || {
        store
            .runs(1)
            .is_ok_and(|r| r.first().is_some_and(|r| r.id > before && r.status == tomo::store::RunStatus::Running))
    });
    assert!(running.is_ok(), "the apply to kill never started");
    killed.kill().unwrap();
    killed.wait().unwrap();
    let after = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(after.code, 0, "{}", after.all());
}

#[test]
fn history_records_every_run_and_action() {
    let f = Fleet::new();
    two_services(&f, "1");
    f.apply();
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, tomo::store::RunStatus::Succeeded);
    assert_eq!(runs[0].summary.as_ref().unwrap()["succeeded"], 6);
    let actions = store.run_actions(runs[0].id).unwrap();
    assert_eq!(actions.len(), 6);
    assert!(actions.iter().all(|a| a.status == "succeeded"));
    let inst = store.installations().unwrap();
    let shop = f.app("shop");
    assert_eq!(inst.len(), 2);
    assert_eq!(inst[0].1, shop);
    assert_eq!(inst[0].3, f.id(&format!("{shop}-db")));
}

#[test]
fn a_tag_pointing_at_a_new_image_recreates() {
    let f = Fleet::new();
    let tag = format!("tomo-test/{}:moving", f.prefix);
    build_image(&tag, "one");
    f.manifest(
        "a.yaml",
        &format!("kind: App\nname: {{p}}-mv\nserver: local\nimage: {tag}\ninit: true\ncommand: [\"sleep\", \"600\"]\n"),
    );
    f.apply();
    build_image(&tag, "two");
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("now points to"), "{}", plan.stdout);
    f.apply();
    f.assert_converged();
    let _ = crate::fleet::docker_try(&["rmi", "-f", &tag]);
}

#[test]
fn secret_values_never_reach_output_or_labels() {
    let value = "s3cr3t-value-that-must-not-leak";
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "db-pass"], Some(value));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest("a.yaml", "kind: App\nname: {p}-sec\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {PASSWORD: {secret: db-pass}, PLAIN: visible}\n");
    let plan = f.tomo(&["plan"]);
    let json = f.tomo(&["plan", "--json", "--out", "p.json"]);
    let apply = f.apply();
    let name = f.app("sec");
    let labels = f.inspect(&name, "{{json .Config.Labels}}");
    // The container gets the value; nothing else shows it.
    assert!(f.inspect(&name, "{{json .Config.Env}}").contains(value));
    for text in [
        &plan.all(),
        &json.all(),
        &apply.all(),
        &labels,
        &std::fs::read_to_string(f.tomo.path().join("p.json")).unwrap(),
    ] {
        assert!(!text.contains(value), "secret leaked: {text}");
    }
    assert!(labels.contains("secret db-pass"), "{labels}");
    // Changing the secret recreates the container, shown as (secret changed).
    let set = f.tomo.run_with_stdin(&["secret", "set", "db-pass"], Some("another-value-entirely"));
    assert_eq!(set.code, 0);
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("env.PASSWORD: (secret changed)"), "{}", plan.stdout);
    assert!(!plan.all().contains("another-value-entirely"));
}

#[test]
fn cli_contract_confirmation_json_graph_and_exit_codes() {
    let f = Fleet::new();
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-cli\nserver: local\nservices:\n  a: {image: {image}, init: true, command: [\"sleep\", \"600\"]}\n  b: {image: {image}, init: true, command: [\"sleep\", \"600\"], depends_on: [a]}\n",
    );
    // Without a terminal and without --auto-approve nothing happens.
    let r = f.tomo(&["apply"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("pass --auto-approve"), "{}", r.stderr);
    assert!(f.containers().is_empty());
    // --json: the documented machine format.
    let r = f.tomo(&["plan", "--json", "--detailed-exitcode"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format"], 2);
    assert!(v["basis"]["desired"].is_string() && v["basis"]["observed"].is_string());
    let actions = v["actions"].as_array().unwrap();
    let create_a = actions.iter().find(|a| a["op"] == "create" && a["service"] == "a").unwrap();
    for key in ["id", "server", "app", "service", "op", "reasons", "after", "spec", "hash"] {
        assert!(create_a.get(key).is_some(), "missing {key} in {create_a}");
    }
    let start_b = actions.iter().find(|a| a["op"] == "start" && a["service"] == "b").unwrap();
    let start_a = actions.iter().find(|a| a["op"] == "start" && a["service"] == "a").unwrap();
    assert!(start_b["after"].as_array().unwrap().contains(&start_a["id"]), "{start_b}");
    // graph: DOT with the same edges
    let g = f.tomo(&["graph"]);
    assert_eq!(g.code, 0);
    assert!(g.stdout.starts_with("digraph plan {") && g.stdout.contains(" -> "), "{}", g.stdout);
    // --json apply reports every action's outcome
    let r = f.tomo(&["apply", "--auto-approve", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["report"]["results"].as_array().unwrap().iter().all(|x| x["outcome"]["status"] == "succeeded"));
    assert_eq!(f.tomo(&["plan", "--detailed-exitcode"]).code, 0);
    // unknown scope names are refused with a suggestion
    let r = f.tomo(&["plan", "--app", &format!("{}-clj", f.prefix)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean"), "{}", r.stderr);
}

#[test]
fn completed_dependencies_run_to_the_end_first_and_stay_done() {
    let f = Fleet::new();
    f.manifest(
        "a.yaml",
        "kind: App\nname: {p}-mig\nserver: local\nservices:\n  migrate:\n    image: {image}\n    restart: \"no\"\n    command: [\"sh\", \"-c\", \"sleep 1 && mkdir -p /data && echo done > /data/migrated\"]\n    volumes: [\"data:/data\"]\n  app:\n    image: {image}\n    init: true\n    command: [\"sh\", \"-c\", \"cat /data/migrated && exec sleep 600\"]\n    volumes: [\"data:/data\"]\n    restart: \"no\"\n    depends_on: {migrate: completed}\n",
    );
    f.apply();
    let mig = f.app("mig");
    assert_eq!(f.inspect(&format!("{mig}-migrate"), "{{.State.ExitCode}} {{.State.Running}}"), "0 false");
    // app started only after migrate wrote its file (else `cat` fails and it exits)
    assert_eq!(f.inspect(&format!("{mig}-app"), "{{.State.Running}}"), "true");
    f.assert_converged();
}

/// Control and bidi characters from a manifest (or a server) reach the
/// terminal escaped, in plan diffs and in proposal diffs alike.
#[test]
fn plan_and_proposal_diffs_escape_control_and_bidi_characters() {
    let f = Fleet::new();
    let app = |env: &str| {
        f.manifest(
            "apps/bidi.yaml",
            &format!("kind: App\nname: {{p}}-bidi\nserver: local\nimage: {{image}}\ncommand: [sleep, \"600\"]\nenv: {{A: \"{env}\"}}\n"),
        )
    };
    app("1");
    f.apply();
    app("x\\u202Ey\\e[31m\\x85z\\u2067");
    let r = f.tomo(&["plan"]);
    assert!(r.stdout.contains("\\u{202e}") && r.stdout.contains("\\u{2067}"), "{}", r.stdout);
    let raw = ['\u{202e}', '\u{2067}', '\u{1b}', '\u{85}'];
    assert!(!r.stdout.contains(raw), "a control character reached the terminal: {:?}", r.stdout);
    let mut agent = crate::mcp_client::Stdio::start(&f.tomo, "agent");
    let name = f.app("bidi");
    let p = agent.ok("app_update", serde_json::json!({"name": name, "env": {"B": "\u{202e}gnp.exe\u{1b}[2J"}}));
    assert_eq!(p["outcome"], "proposed", "{p}");
    assert!(!p["diff"].as_str().unwrap().contains(raw), "{p}");
    let shown = f.tomo(&["proposal", "show", p["proposal"].as_str().unwrap()]);
    assert_eq!(shown.code, 0, "{}", shown.all());
    assert!(shown.stdout.contains("\\u{202e}gnp.exe"), "{}", shown.stdout);
    assert!(!shown.stdout.contains(raw), "{:?}", shown.stdout);
}
