//! App networks: created idempotently, joined by id, duplicates this
//! installation owns repaired by the plan (a killed apply can leave them: the
//! Engine finishes a create the killed process sent after the next run
//! observed), and each given a small subnet of `Settings.networks.pool`, so a
//! stock Engine holds far more apps than its default address pools allow.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, docker, docker_try, httpd};
use crate::hosts::TestHost;

/// This installation's id (made on first use, as tomo itself would).
fn installation(f: &Fleet) -> String {
    let data = f.tomo.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _ = std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    tomo::store::Store::open(&data.join("tomo.db")).unwrap().installation_id().unwrap()
}

/// Creates a network through the Engine API without the duplicate check,
/// labelled as this installation's, as a create a killed tomo had sent would.
fn create_duplicate(name: &str, app: &str, installation: &str) -> String {
    let body = serde_json::json!({
        "Name": name,
        "CheckDuplicate": false,
        "Driver": "bridge",
        "Labels": {"tomo.managed": "true", "tomo.app": app, "tomo.server": "local", "tomo.installation": installation},
    });
    let out = Command::new("curl")
        .args(["-sf", "--unix-socket", "/var/run/docker.sock", "-XPOST", "-H", "Content-Type: application/json"])
        .args(["http://docker/v1.41/networks/create", "-d", &body.to_string()])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "create {name}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Id"].as_str().unwrap().to_string()
}

/// Ids of the networks named exactly `name`.
fn networks_named(name: &str) -> Vec<String> {
    docker(&["network", "ls", "--no-trunc", "--filter", &format!("name=^{name}$"), "--format", "{{.ID}}"])
        .lines()
        .map(String::from)
        .collect()
}

/// The ids of the networks a container is attached to.
fn attached(container: &str) -> Vec<String> {
    let ids = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.NetworkID}} {{end}}", container]);
    ids.split_whitespace().map(String::from).collect()
}

fn one_service(f: &Fleet, name: &str) {
    f.manifest(
        &format!("apps/{name}.yaml"),
        &format!(
            "kind: App\nname: {{p}}-{name}\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\n",
            httpd(name)
        ),
    );
}

#[test]
fn duplicate_networks_before_the_first_apply_are_repaired_and_the_app_deploys() {
    let f = Fleet::new();
    one_service(&f, "dup");
    let app = f.app("dup");
    let id = installation(&f);
    let first = create_duplicate(&app, &app, &id);
    let second = create_duplicate(&app, &app, &id);
    assert_eq!(networks_named(&app).len(), 2);
    let plan = f.tomo(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("remove network: duplicate"), "the plan repairs the duplicate:\n{}", plan.stdout);
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let left = networks_named(&app);
    assert_eq!(left.len(), 1, "exactly one network is left: {left:?}");
    assert!(left[0] == first || left[0] == second);
    assert_eq!(attached(&app), left, "the container joined the network that stays");
    f.assert_converged();
}

#[test]
fn a_duplicate_network_appearing_after_deploy_is_removed_and_the_used_one_kept() {
    let f = Fleet::new();
    one_service(&f, "late");
    f.apply();
    let app = f.app("late");
    let used = attached(&app);
    assert_eq!(used.len(), 1);
    let late = create_duplicate(&app, &app, &installation(&f));
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("remove network: duplicate"), "{}", plan.all());
    assert!(plan.stdout.contains("duplicate"), "{}", plan.all());
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(networks_named(&app), used, "the duplicate {late} went, the used one stayed");
    assert_eq!(f.inspect(&app, "{{.State.Status}}"), "running");
    f.assert_converged();
}

#[test]
fn a_foreign_network_of_the_same_name_is_left_alone() {
    let f = Fleet::new();
    one_service(&f, "foreign");
    let app = f.app("foreign");
    // This installation's store exists first (a store just made that finds
    // the app's objects under another id is refused: see data_folder.rs).
    assert_eq!(f.tomo(&["user", "list"]).code, 0);
    // Another installation's network of that name.
    let theirs = create_duplicate(&app, &app, "someone-else");
    f.apply();
    let all = networks_named(&app);
    assert_eq!(all.len(), 2, "ours was created beside theirs: {all:?}");
    let ours: Vec<String> = all.into_iter().filter(|n| *n != theirs).collect();
    assert_eq!(attached(&app), ours, "the container joined ours, by id");
    f.assert_converged();
    let plan = f.tomo(&["plan"]);
    assert!(!plan.stdout.contains("remove network"), "{}", plan.stdout);
}

/// A small xorshift generator: the kill points are random but reproducible
/// from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Removes every container and network of this test (tomo's own apply is
/// tested elsewhere; here each round must create networks afresh).
fn tear_down(f: &Fleet) {
    for c in f.containers() {
        let _ = docker_try(&["rm", "-f", "-v", &c]);
    }
    f.remove_networks();
}

/// Names of this test's networks that exist more than once.
fn duplicates(f: &Fleet) -> Vec<String> {
    let names = docker(&["network", "ls", "--format", "{{.Name}}"]);
    let mut ours: Vec<&str> = names.lines().filter(|n| n.starts_with(&f.prefix)).collect();
    ours.sort();
    let mut dups: Vec<String> = ours.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0].to_string()).collect();
    dups.dedup();
    dups
}

/// kill -9 at a random moment of a 20-app apply, then apply again: it must
/// converge, with no duplicate network, every time. Rounds:
/// `TOMO_TEST_KILL_ROUNDS` (default 5 to keep CI short; 20 for the full
/// check); seed: `TOMO_TEST_SEED`.
#[test]
fn killed_at_random_points_of_a_20_app_apply_the_next_apply_converges_every_time() {
    let rounds: u32 = std::env::var("TOMO_TEST_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let seed: u64 = std::env::var("TOMO_TEST_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("kill loop: {rounds} rounds, TOMO_TEST_SEED={seed}");
    let mut rng = Rng(seed);
    let f = Fleet::new();
    for i in 0..20 {
        one_service(&f, &format!("k{i}"));
    }
    // A pool of its own: other tests' installations on this shared Engine
    // take blocks of the default pool at any moment, which would move this
    // test's first free blocks between the killed run and the next.
    f.manifest("settings.yaml", "kind: Settings\nnetworks: {pool: 10.214.0.0/16}\n");
    let names: Vec<String> = (0..20).map(|i| f.app(&format!("k{i}"))).collect();
    // How long a whole apply takes here: kill points are drawn from it.
    let t = Instant::now();
    f.apply();
    let full = t.elapsed().as_millis() as u64;
    let started = Instant::now();
    for round in 0..rounds {
        tear_down(&f);
        let delay = rng.next() % full.max(1);
        let mut child = f.tomo.spawn_env(&["apply", "--auto-approve"], &[("TOMO_LOG", "warn")]);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let r = f.tomo(&["apply", "--auto-approve"]);
        assert_eq!(
            r.code,
            0,
            "round {round} (killed after {delay} ms, TOMO_TEST_SEED={seed}):\n{}",
            r.all_and_failures()
        );
        assert_eq!(duplicates(&f), Vec::<String>::new(), "round {round}, TOMO_TEST_SEED={seed}:\n{}", r.all());
        let mut want = names.clone();
        want.sort();
        assert_eq!(f.containers(), want, "round {round}, TOMO_TEST_SEED={seed}");
        f.assert_converged();
    }
    eprintln!("kill loop: {rounds} rounds converged in {:.1}s", started.elapsed().as_secs_f64());
}

/// 150 apps (100 one-service, 50 of three services) on one Engine with its
/// default address pools (a test host's own dockerd), which hold about 31
/// networks of their own: every app network takes a /27 of the pool instead,
/// none overlapping a route of the server, and apps stay isolated.
#[test]
fn a_stock_engine_holds_150_apps_each_on_its_own_small_subnet() {
    let h = TestHost::new(true);
    // A route on the server inside the pool: no network may overlap it.
    Command::new("ip")
        .args(["netns", "exec", &h.ns, "ip", "route", "add", "blackhole", "10.213.0.0/24"])
        .status()
        .unwrap();
    let f = Fleet::new();
    f.manifest("servers.yaml", &h.server_yaml("h1"));
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!(
            "---\nkind: App\nname: {{p}}-o{i}\nserver: h1\nimage: {{image}}\ninit: true\ncommand: {}\n",
            httpd(&format!("o{i}"))
        ));
    }
    for i in 0..50 {
        text.push_str(&format!("---\nkind: App\nname: {{p}}-m{i}\nserver: h1\nservices:\n"));
        for s in ["web", "api", "db"] {
            text.push_str(&format!("  {s}:\n    image: {{image}}\n    init: true\n    command: {}\n", httpd(s)));
        }
    }
    f.manifest("apps/many.yaml", &text);
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("create network (10.213.1.0/27)"), "the plan shows subnets:\n{}", plan.stdout);
    let t = Instant::now();
    let r = f.tomo(&["apply", "--auto-approve"]);
    let cold = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.all());
    let t = Instant::now();
    let r = f.tomo(&["plan", "--detailed-exitcode"]);
    let noop = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    eprintln!(
        "150 apps (250 containers): cold apply {:.1}s, no-op plan {:.2}s",
        cold.as_secs_f64(),
        noop.as_secs_f64()
    );
    let running = h.docker(&["ps", "-q"]).lines().count();
    assert_eq!(running, 250);
    // One network per app, each a distinct /27 of the pool, none on the route.
    let ids = h.docker(&["network", "ls", "-q", "--filter", "label=tomo.managed=true"]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 150);
    let mut args = vec!["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"];
    args.extend(&ids);
    let subnets = h.docker(&args);
    let mut subnets: Vec<&str> = subnets.lines().collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 150, "{subnets:?}");
    for s in &subnets {
        assert!(s.starts_with("10.213.") && s.ends_with("/27") && !s.starts_with("10.213.0."), "{s}");
    }
    // Services of one app reach each other; other apps are out of reach.
    // (This busybox's `wget -T` crashes: `timeout` bounds the attempt.)
    let ip = |c: &str| h.docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c]);
    let fetch = |from: &str, to: &str| {
        Command::new("docker")
            .args(["-H", &format!("unix://{}", h.socket), "exec", &f.app(from), "busybox", "timeout", "3"])
            .args(["wget", "-q", "-O-"])
            .arg(format!("http://{}/", ip(&f.app(to))))
            .output()
            .unwrap()
    };
    let same_app = fetch("m0-web", "m0-api");
    assert!(String::from_utf8_lossy(&same_app.stdout).contains("api"), "{same_app:?}");
    let other_app = fetch("o0", "o1");
    assert!(!other_app.status.success(), "app o0 reached app o1: {other_app:?}");
}
