//! Rolling updates (`rollout.strategy: one-at-a-time`) over three SSH test
//! hosts, each with its own Docker Engine: the servers are updated in the
//! order of `servers:`, each verified before the next; a failure on the
//! second stops the third, and `on_failure: rollback-all` puts the servers
//! already updated back on their previous containers too.

use crate::fleet::{Fleet, IMAGE};
use crate::hosts::TestHost;

/// The new release's image: the same tag on every host, failing only where
/// `fail` is set (an environment variable of the image its command reads).
const NEW: &str = "tomo-test/rolling:2";

fn build_new_release(h: &TestHost, fail: bool) {
    let id = h.docker(&["create", IMAGE, "true"]);
    h.docker(&["commit", "--change", &format!("ENV ROLL_FAIL={}", u8::from(fail)), &id, NEW]);
    h.docker(&["rm", &id]);
}

fn app(image: &str, command: &str) -> String {
    format!(
        "kind: App\nname: {{p}}-roll\nservers: [a, b, c]\nimage: {image}\ninit: true\nrestart: \"no\"\ncommand: {command}\n"
    )
}

const OLD_COMMAND: &str = "[\"sleep\", \"1000\"]";
/// Exits with 3 two seconds after the start where the image says to fail.
const NEW_COMMAND: &str = "[\"sh\", \"-c\", \"echo new release starting; if [ \\\"$ROLL_FAIL\\\" = 1 ]; then sleep 2; exit 3; fi; exec sleep 1000\"]";

/// `{{.Id}} {{.State.Status}} {{.Config.Image}}` of the app's container on `h`.
fn container(h: &TestHost, name: &str) -> (String, String, String) {
    let out = h.docker(&["inspect", "-f", "{{.Id}} {{.State.Status}} {{.Config.Image}}", name]);
    let mut it = out.split_whitespace().map(str::to_string);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

struct Bed {
    hosts: [TestHost; 3],
    f: Fleet,
    name: String,
    /// Each host's container of the working release.
    old: Vec<String>,
}

/// Three hosts running a working release of `{p}-roll` (deployed with
/// `settings`), and the new release written (failing on b only).
fn bed(settings: &str) -> Bed {
    let hosts = [TestHost::new(true), TestHost::new(true), TestHost::new(true)];
    let f = Fleet::new();
    let servers: Vec<String> = ["a", "b", "c"].iter().zip(&hosts).map(|(n, h)| h.server_yaml(n)).collect();
    f.manifest("servers.yaml", &servers.join("---\n"));
    f.manifest("settings.yaml", settings);
    f.manifest("apps/roll.yaml", &app("{image}", OLD_COMMAND));
    f.apply();
    let name = f.app("roll");
    let old: Vec<String> = hosts.iter().map(|h| container(h, &name).0).collect();
    for (h, fail) in hosts.iter().zip([false, true, false]) {
        build_new_release(h, fail);
    }
    f.manifest("apps/roll.yaml", &app(NEW, NEW_COMMAND));
    Bed { hosts, f, name, old }
}

#[test]
fn a_failure_on_the_second_server_stops_the_third_and_rolls_back_only_the_second() {
    let b = bed("kind: Settings\nrollout: {strategy: one-at-a-time, verify: 5s}\n");
    let plan = b.f.tomo(&["plan"]);
    assert!(plan.stdout.contains(&format!("rolling {}: a → b → c", b.name)), "{}", plan.stdout);
    let r = b.f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = r.all();
    assert!(out.contains("verification failed within 5s") && out.contains("exited with status 3"), "{out}");
    assert!(out.contains("the previous container was restored"), "{out}");
    assert!(
        out.contains(&format!(
            "rolling {}: a on the new release → b failed → c not reached (still on the previous release)",
            b.name
        )),
        "{out}"
    );
    let [a, hb, c] = &b.hosts;
    // a stays on the new release.
    let (id, state, image) = container(a, &b.name);
    assert!(id != b.old[0] && state == "running" && image == NEW, "a: {id} {state} {image}");
    // b is back on its previous container, c never changed.
    for (h, old, which) in [(hb, &b.old[1], "b"), (c, &b.old[2], "c")] {
        let (id, state, image) = container(h, &b.name);
        assert_eq!((&id, state.as_str(), image.as_str()), (old, "running", IMAGE), "{which}");
        let names = h.docker(&["ps", "-a", "--format", "{{.Names}}"]);
        assert_eq!(names.lines().count(), 1, "{which}: only the previous container is left: {names}");
    }
    // The run record shows the order: a ended before b started; c never started.
    let store = tomo::store::Store::open(&b.f.tomo.path().join("data/tomo.db")).unwrap();
    let run = &store.runs(1).unwrap()[0];
    assert_eq!(run.status, tomo::store::RunStatus::Failed);
    let actions = store.run_actions(run.id).unwrap();
    let on = |s: &str| actions.iter().find(|x| x.server == s && x.action == "recreate").expect(s).clone();
    let (ra, rb, rc) = (on("a"), on("b"), on("c"));
    assert_eq!((ra.status.as_str(), rb.status.as_str(), rc.status.as_str()), ("succeeded", "failed", "skipped"));
    let (a_end, b_start) = (ra.finished_at.clone().unwrap(), rb.started_at.clone().unwrap());
    assert!(ra.started_at.clone().unwrap() < b_start && a_end <= b_start, "{actions:?}");
    assert!(rc.started_at.is_none(), "c never started: {actions:?}");
    assert!(rc.error.unwrap_or_default().contains("did not succeed"), "{actions:?}");
}

#[test]
fn rollback_all_puts_the_servers_already_updated_back_on_their_previous_containers() {
    let b = bed("kind: Settings\nrollout: {strategy: one-at-a-time, verify: 5s, on_failure: rollback-all}\n");
    let r = b.f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = r.all();
    assert!(
        out.contains(&format!(
            "rolling {}: a rolled back to the previous release → b failed → c not reached (still on the previous release)",
            b.name
        )),
        "{out}"
    );
    assert!(out.contains("rolled back with the rollout (`on_failure: rollback-all`; recreate"), "{out}");
    // Every server runs its previous container, with its original id, and
    // nothing else is left (no container kept aside).
    for ((h, old), which) in b.hosts.iter().zip(&b.old).zip(["a", "b", "c"]) {
        let (id, state, image) = container(h, &b.name);
        assert_eq!((&id, state.as_str(), image.as_str()), (old, "running", IMAGE), "{which}");
        let names = h.docker(&["ps", "-a", "--format", "{{.Names}}"]);
        assert_eq!(names.trim(), b.name, "{which}: only the previous container is left");
    }
    let store = tomo::store::Store::open(&b.f.tomo.path().join("data/tomo.db")).unwrap();
    let run = &store.runs(1).unwrap()[0];
    let actions = store.run_actions(run.id).unwrap();
    let a = actions.iter().find(|x| x.server == "a" && x.action == "recreate").unwrap();
    assert_eq!(a.status, "failed", "{actions:?}");
    assert!(a.error.as_deref().unwrap_or_default().contains("rollback-all"), "{actions:?}");
    // The store's record of each server is its previous container again
    // (a's recreate had recorded the new one before the rollback).
    let recorded: Vec<(String, String)> =
        store.installations().unwrap().into_iter().map(|(server, _, _, id)| (server, id)).collect();
    let want: Vec<(String, String)> = ["a", "b", "c"].iter().map(|s| s.to_string()).zip(b.old.clone()).collect();
    assert_eq!(recorded, want, "the installation records point at the containers running");
    // A rollout that verifies everywhere removes the containers kept aside.
    for h in &b.hosts {
        build_new_release(h, false);
    }
    b.f.apply();
    for (h, old) in b.hosts.iter().zip(&b.old) {
        let (id, state, image) = container(h, &b.name);
        assert!(&id != old && state == "running" && image == NEW, "{id} {state} {image}");
        let names = h.docker(&["ps", "-a", "--format", "{{.Names}}"]);
        assert_eq!(names.trim(), b.name, "the previous container was removed once all verified");
    }
    b.f.assert_converged();
}
