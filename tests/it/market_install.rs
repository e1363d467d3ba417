//! `tomo market install|installed|updates|upgrade` on the real Engine, with
//! fixture apps of the marketplace stores: install → plan → apply, an
//! agent's install as a proposal, upgrades by a three-way merge, and the
//! refusals.
//!
//! The store is a copy of fixture apps in the test's temporary folder (the
//! fixtures stay as they are): image digests are dropped and images renamed
//! under `tomo-test/market-…` (a busybox stand-in that sleeps, with
//! `pg_isready`, `redis-cli` and `/cron.sh` for the apps' health checks and
//! entrypoints: no registry is reachable), and a one-service app's
//! `container_name` gets the test's prefix (so the test cleans it up).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fleet::{Fleet, docker, docker_try};
use crate::harness::fixtures_root;
use crate::mcp_client::Stdio;

const MASTER: &str = "market-install-master-password";

static STANDIN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The stand-in image under `tag` (built once per process, then tagged).
fn standin(tag: &str) {
    let mut done = STANDIN.lock().unwrap_or_else(|p| p.into_inner());
    if done.iter().any(|t| t == tag) {
        return;
    }
    const BASE: &str = "tomo-test/market-standin:1";
    if docker_try(&["image", "inspect", BASE]).is_none() {
        build_base(BASE);
    }
    docker(&["tag", BASE, tag]);
    done.push(tag.to_string());
}

fn build_base(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for app in ["sh", "sleep", "echo", "cat", "true", "ls", "env", "grep"] {
        std::os::unix::fs::symlink("busybox", bin.join(app)).unwrap();
    }
    let script = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script("pg_isready", "exit 0");
    script("redis-cli", "echo PONG");
    script("curl", "exit 0");
    std::fs::write(dir.path().join("cron.sh"), "#!/bin/sh\nexec sleep 86400\n").unwrap();
    std::fs::set_permissions(dir.path().join("cron.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -c . | docker import --change 'CMD [\"sleep\", \"86400\"]' - '{tag}' >/dev/null",
            dir.path().display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "cannot import {tag}");
}

/// The test's image name for a fixture's `image:` value.
fn renamed(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match no_digest.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((r, t)) => (r, t),
        None => (no_digest, "latest"),
    };
    let repo: String =
        repo.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("tomo-test/market-{repo}:{tag}")
}

/// Copies fixture app `store/id` into the test's store folder `root`,
/// images renamed (and made), `container_name`s prefixed.
fn copy_app(root: &Path, store: &str, id: &str, prefix: &str) {
    let from = fixtures_root().join(store).join("Apps").join(id);
    let to = root.join("Apps").join(id);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        if !e.file_type().unwrap().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = if e.file_name() == "docker-compose.yml" { rewrite(&text, prefix) } else { text };
        std::fs::write(to.join(e.file_name()), text).unwrap();
    }
}

fn rewrite(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some(image) = trimmed.strip_prefix("image: ") {
            let image = image.split(" #").next().unwrap_or(image).trim();
            let new = renamed(image);
            standin(&new);
            out.push_str(&format!("{indent}image: {new}\n"));
        } else if let Some(name) = trimmed.strip_prefix("container_name: ") {
            let name = name.split(" #").next().unwrap_or(name).trim();
            out.push_str(&format!("{indent}container_name: {prefix}-{name}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A host port free for TCP and UDP now.
fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
}

/// A fleet with the vault, a Marketplace `shop` whose folder is `store`, and
/// Settings putting app data in the test's folder.
fn market_fleet() -> (Fleet, PathBuf) {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", MASTER);
    f.tomo.set_env("TOMO_SALT", "0123456789abcdef0123456789abcdef");
    let data_root = f.tomo.path().join("appdata");
    let store = f.tomo.path().join("shop");
    f.manifest("shop.yaml", &format!("kind: Marketplace\nname: shop\npath: {}\n", store.display()));
    f.manifest(
        "settings.yaml",
        &format!(
            "kind: Settings\nmarketplace:\n  defaults:\n    tz: Europe/Berlin\n    data_root: {}\n",
            data_root.display()
        ),
    );
    std::fs::create_dir_all(&store).unwrap();
    (f, store)
}

/// `tomo market sync`: the store's apps into the catalog.
fn sync(f: &Fleet) {
    let r = f.tomo(&["market", "sync"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn read(f: &Fleet, rel: &str) -> Option<String> {
    std::fs::read_to_string(f.tomo.path().join("state").join(rel)).ok()
}

fn running(container: &str) -> bool {
    docker_try(&["inspect", "-f", "{{.State.Running}}", container]).as_deref() == Some("true")
}

/// The time from `market install` of a 4-service store app (a database,
/// health-checked dependencies, generated credentials) to a written manifest
/// and plan: median of 5 installs ≤ 200 ms. Measured alone by tests/run.sh.
#[test]
#[ignore = "a timing figure: measured after the parallel suite, by tests/run.sh"]
fn bench_install_of_a_four_service_app() {
    let (f, store) = market_fleet();
    copy_app(&store, "bigbear-casaos", "nextcloud", &f.prefix);
    sync(&f);
    let mut took: Vec<Duration> = (0..5)
        .map(|i| {
            let (nc, port) = (f.app(&format!("nc{i}")), free_port().to_string());
            let started = Instant::now();
            let r = f.tomo(&["market", "install", "shop/nextcloud", "--name", &nc, "--set", &format!("7580={port}")]);
            let t = started.elapsed();
            assert_eq!(r.code, 0, "{}", r.all());
            t
        })
        .collect();
    took.sort();
    let median = took[took.len() / 2];
    eprintln!(
        "market install of a 4-service app to a written manifest and plan: median {} ms of {took:?}",
        median.as_millis()
    );
    assert!(median <= Duration::from_millis(200), "median install {median:?}");
}

#[test]
fn install_plan_apply_three_fixture_apps() {
    let (f, store) = market_fleet();
    copy_app(&store, "bigbear-casaos", "dozzle", &f.prefix);
    copy_app(&store, "bigbear-casaos", "nextcloud", &f.prefix);
    copy_app(&store, "casaos-appstore", "Unifi-Network-Application", &f.prefix);
    sync(&f);

    // One service.
    let dozzle = f.app("dozzle");
    let port = free_port().to_string();
    let r = f.tomo(&["market", "install", "shop/dozzle", "--name", &dozzle, "--set", &format!("8888={port}"), "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let text = read(&f, &format!("apps/{dozzle}.yaml")).unwrap();
    assert!(
        text.contains("x-tomo-source:") && text.contains("store: shop") && text.contains("version: v10.7.1"),
        "{text}"
    );
    assert!(text.contains(&format!("\"{port}:8080\"")), "{text}");
    assert!(running(&format!("{}-big-bear-dozzle", f.prefix)));

    // A database, depends_on with health checks, generated credentials; 4
    // services: the install's time to a written manifest and plan is measured.
    let nc = f.app("nc");
    let port = free_port().to_string();
    let started = Instant::now();
    let r = f.tomo(&["market", "install", "shop/nextcloud", "--name", &nc, "--set", &format!("7580={port}")]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.all());
    eprintln!("market install of a 4-service app to a written manifest and plan: {} ms", took.as_millis());
    // The ≤ 200 ms target is measured alone, by `bench_install_of_a_four_service_app`
    // (tests/run.sh); beside the parallel suite it measures the load.
    assert!(took.as_millis() <= 2000, "install took {took:?}");
    assert!(r.stdout.contains("Written. Run `tomo apply`"), "{}", r.stdout);
    assert!(!running(&format!("{nc}-nextcloud")), "nothing runs before apply");
    let text = read(&f, &format!("apps/{nc}.yaml")).unwrap();
    assert!(text.contains(&format!("secret: {nc}-postgres-password")), "{text}");
    assert!(
        text.contains(&format!("{}/{nc}/pgdata:/var/lib/postgresql/data", f.tomo.path().join("appdata").display()))
    );
    let secrets = f.tomo(&["secret", "list"]);
    assert!(secrets.stdout.contains(&format!("{nc}-postgres-password")), "{}", secrets.all());
    f.apply();
    for svc in ["db-nextcloud", "redis-nextcloud", "nextcloud", "cron"] {
        assert!(running(&format!("{nc}-{svc}")), "{svc} runs");
    }
    let pw = f.inspect(&format!("{nc}-db-nextcloud"), "{{range .Config.Env}}{{println .}}{{end}}");
    let pw = pw.lines().find_map(|l| l.strip_prefix("POSTGRES_PASSWORD=")).unwrap().to_string();
    assert!(pw.len() >= 32 && pw != "casaos", "a generated password, not the store's");
    let app_env = f.inspect(&format!("{nc}-nextcloud"), "{{range .Config.Env}}{{println .}}{{end}}");
    assert!(app_env.contains(&format!("POSTGRES_PASSWORD={pw}")), "the app and its database share it");

    // A config file, the $PUID/$PGID/$TZ variables, five host ports moved.
    let unifi = f.app("unifi");
    let mut args = vec!["market".to_string(), "install".into(), "shop/Unifi-Network-Application".into()];
    args.extend(["--name".into(), unifi.clone(), "--yes".into()]);
    for p in ["8443", "3478", "10001", "8080", "27017"] {
        args.extend(["--set".into(), format!("{p}={}", free_port())]);
    }
    let r = f.tomo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.all());
    let env = f.inspect(&format!("{unifi}-unifi-db"), "{{range .Config.Env}}{{println .}}{{end}}");
    assert!(env.contains("TZ=Europe/Berlin") && env.contains("PUID=1000"), "{env}");
    let init = docker(&["exec", &format!("{unifi}-unifi-db"), "cat", "/docker-entrypoint-initdb.d/init-mongo.js"]);
    assert!(init.contains("createUser"), "{init}");
    assert!(running(&format!("{unifi}-unifi-network-application")));

    let r = f.tomo(&["market", "installed", "--json"]);
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // The source is the synced catalog's entry.
    let shown = f.tomo(&["market", "show", "shop/dozzle", "--json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap_or_else(|_| panic!("{}", shown.all()));
    let mine = list.as_array().unwrap().iter().find(|a| a["name"] == dozzle.as_str()).unwrap();
    assert_eq!(mine["checksum"], shown["checksum"], "{shown}");
    f.assert_converged();
}

#[test]
fn an_agents_install_is_a_proposal_that_approve_deploys() {
    let (f, store) = market_fleet();
    copy_app(&store, "bigbear-casaos", "dozzle", &f.prefix);
    sync(&f);
    let name = f.app("dz");
    let port = free_port().to_string();
    let mut agent = Stdio::start(&f.tomo, "operator");
    let r = agent.ok("market_install", json!({"app": "shop/dozzle", "name": name, "set": {"8888": port}}));
    assert_eq!(r["change"]["outcome"], "proposed", "{r}");
    assert!(r["change"]["diff"].as_str().unwrap().contains("+x-tomo-source:"), "{r}");
    assert!(r["change"]["plan"]["has_changes"].as_bool().unwrap(), "{r}");
    assert!(read(&f, &format!("apps/{name}.yaml")).is_none(), "nothing written");
    let id = r["change"]["proposal"].as_str().unwrap().to_string();
    let r = f.tomo(&["proposal", "approve", &id, "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(read(&f, &format!("apps/{name}.yaml")).unwrap().contains("x-tomo-source"));
    assert!(running(&format!("{}-big-bear-dozzle", f.prefix)));
    let installed = agent.ok("market_installed", json!({}));
    assert_eq!(installed["apps"][0]["name"], name.as_str(), "{installed}");
}

#[test]
fn an_upgrade_keeps_the_users_edit_and_reports_conflicts() {
    let (f, store) = market_fleet();
    copy_app(&store, "bigbear-casaos", "dozzle", &f.prefix);
    sync(&f);
    let name = f.app("dz");
    let file = format!("apps/{name}.yaml");
    let (p1, p2) = (free_port().to_string(), free_port().to_string());
    let r = f.tomo(&["market", "install", "shop/dozzle", "--name", &name, "--set", &format!("8888={p1}")]);
    assert_eq!(r.code, 0, "{}", r.all());
    let up = f.tomo(&["market", "updates", "--json"]);
    assert_eq!(up.stdout.trim(), "[]", "{}", up.all());

    // The user moves the port; the store moves to a new image tag.
    let path = f.tomo.path().join("state").join(&file);
    let text = std::fs::read_to_string(&path).unwrap().replace(&format!("\"{p1}:8080\""), &format!("\"{p2}:8080\""));
    std::fs::write(&path, text).unwrap();
    let compose = store.join("Apps/dozzle/docker-compose.yml");
    let old = renamed("amir20/dozzle:v10.7.1");
    let new = renamed("amir20/dozzle:v10.8.0");
    standin(&new);
    std::fs::write(&compose, std::fs::read_to_string(&compose).unwrap().replace(&old, &new)).unwrap();
    sync(&f);
    let r = f.tomo(&["market", "updates", "--json"]);
    let ups: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.all()));
    let u = &ups[0];
    assert_eq!((u["installed_version"].as_str(), u["available_version"].as_str()), (Some("v10.7.1"), Some("v10.8.0")));
    let diff = u["diff"].as_str().unwrap();
    assert!(diff.contains(&format!("+image: {new}")) || diff.contains(&format!("+image: \"{new}\"")), "{diff}");
    assert!(
        !diff.contains(&format!("-- \"{p2}")) && !diff.contains(&format!("+- \"{p1}")),
        "the user's port is kept: {diff}"
    );
    assert_eq!(u["conflicts"], json!([]));
    let r = f.tomo(&["market", "upgrade", &name]);
    assert_eq!(r.code, 0, "{}", r.all());
    let text = read(&f, &file).unwrap();
    assert!(text.contains(&new) && text.contains(&format!("\"{p2}:8080\"")), "{text}");
    assert!(text.contains("version: v10.8.0"), "{text}");
    f.apply();
    assert_eq!(f.inspect(&format!("{}-big-bear-dozzle", f.prefix), "{{.Config.Image}}"), new);

    // Both change the image: a conflict, reported with both, never written.
    let mine = renamed("amir20/dozzle:mine");
    let text = read(&f, &file).unwrap().replace(&new, &mine);
    std::fs::write(&path, &text).unwrap();
    let newer = renamed("amir20/dozzle:v11.0.0");
    std::fs::write(&compose, std::fs::read_to_string(&compose).unwrap().replace(&new, &newer)).unwrap();
    sync(&f);
    let r = f.tomo(&["market", "updates", "--json"]);
    let ups: Value = serde_json::from_str(&r.stdout).unwrap();
    let c = &ups[0]["conflicts"][0];
    assert_eq!(
        (c["path"].as_str(), c["ours"].as_str(), c["theirs"].as_str()),
        (Some("image"), Some(mine.as_str()), Some(newer.as_str())),
        "{ups}"
    );
    let r = f.tomo(&["market", "upgrade", &name]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&mine) && r.stderr.contains(&newer), "{}", r.stderr);
    assert_eq!(read(&f, &file).unwrap(), text, "not overwritten");
}

#[test]
fn bad_input_is_refused_with_nothing_written() {
    let (f, store) = market_fleet();
    copy_app(&store, "bigbear-casaos", "dozzle", &f.prefix);
    copy_app(&store, "bigbear-casaos", "nextcloud", &f.prefix);
    sync(&f);
    let r = f.tomo(&["market", "install", "nostore/dozzle"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no Marketplace of that name") && r.stderr.contains("declared: shop"), "{}", r.stderr);
    let r = f.tomo(&["market", "install", "shop/nope"]);
    assert!(r.code != 0 && r.stderr.contains("store `shop` has no such app"), "{}", r.stderr);
    let r = f.tomo(&["market", "install", "dozzle"]);
    assert!(r.code != 0 && r.stderr.contains("STORE/APP"), "{}", r.stderr);

    // A --set the app does not use: a warning, the install goes on.
    let a = f.app("a");
    let port = free_port();
    let r = f.tomo(&[
        "market",
        "install",
        "shop/dozzle",
        "--name",
        &a,
        "--set",
        &format!("8888={port}"),
        "--set",
        "NOPE=1",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("warning: --set NOPE=…: the app does not use the variable `NOPE`"), "{}", r.stderr);

    // The name taken.
    let r = f.tomo(&["market", "install", "shop/dozzle", "--name", &a]);
    assert!(r.code != 0 && r.stderr.contains(&format!("app `{a}` already exists")), "{}", r.stderr);

    // The port taken: the next free one offered; nothing written, no secret stored.
    let b = f.app("b");
    f.manifest(
        "apps/web.yaml",
        &format!("kind: App\nname: {}\nserver: local\nimage: {{image}}\nports: [\"7580:80\"]\n", f.app("web")),
    );
    let r = f.tomo(&["market", "install", "shop/nextcloud", "--name", &b]);
    assert!(r.code != 0, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "host port 7580 (service `nextcloud`) on server `local` is already published by app `{}`",
            f.app("web")
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("the next free port is 7581: --set 7580=7581"), "{}", r.stderr);
    assert!(read(&f, &format!("apps/{b}.yaml")).is_none());
    let secrets = f.tomo(&["secret", "list"]);
    assert!(!secrets.stdout.contains(&b), "{}", secrets.all());
    assert!(!f.tomo.path().join(format!("data/market-installs/{b}.json")).exists());
}
