//! `tomo import compose` on the 24 marketplace fixture apps (read in place):
//! each conversion (manifest and report) is pinned under
//! tests/expect/import/ (`UPDATE_EXPECT=1` rewrites them), each imported
//! manifest passes `tomo validate`, bad compose files fail at their line
//! with nothing written, and the whole set converts fast.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{Tomo, fixtures_root, repo};
use tomo::compose::{self, Options};
use tomo::diag::SourceFile;

/// (app folder name, path relative to the root, compose file), sorted.
fn fixtures() -> Vec<(String, String, PathBuf)> {
    let root = fixtures_root();
    let mut all = Vec::new();
    for store in std::fs::read_dir(&root).unwrap().flatten() {
        let Ok(apps) = std::fs::read_dir(store.path().join("Apps")) else { continue };
        for app in apps.flatten() {
            let path = app.path().join("docker-compose.yml");
            if path.is_file() {
                let rel = path.strip_prefix(&root).unwrap().display().to_string();
                all.push((app.file_name().to_string_lossy().into_owned(), rel, path));
            }
        }
    }
    all.sort();
    assert_eq!(all.len(), 24, "the marketplace fixtures under {}", root.display());
    all
}

fn convert(path: &Path) -> Result<compose::Imported, tomo::diag::Diagnostics> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let none = |_: &str| None;
    let options = Options {
        name: None,
        server: Some("nas".into()),
        vars: &none,
        profiles: Vec::new(),
        secrets: false,
        folder: path.parent().map(Path::to_path_buf),
    };
    compose::import(&file, &options)
}

#[test]
fn fixture_conversions_match_their_expect_files() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dir = repo().join("tests/expect/import");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut without_drops = 0;
    for (app, rel, path) in fixtures() {
        let imported = convert(&path).unwrap_or_else(|d| panic!("{rel}: {d:?}"));
        if imported.counts().dropped == 0 {
            without_drops += 1;
        }
        let got = format!("{}\n{}", imported.yaml(&rel), compose::report::text(&imported.report));
        let expect = dir.join(format!("{app}.txt"));
        if update {
            std::fs::write(&expect, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expect).unwrap_or_default();
        if want != got {
            let diff = similar::TextDiff::from_lines(&want, &got).unified_diff().header("expected", "got").to_string();
            failures.push(format!("{}:\n{diff}", expect.display()));
        }
    }
    assert!(failures.is_empty(), "conversions differ (UPDATE_EXPECT=1 to accept):\n{}", failures.join("\n"));
    assert!(without_drops >= 22, "only {without_drops} of 24 fixtures import with nothing dropped");
}

#[test]
fn every_imported_fixture_validates() {
    let mut failures = Vec::new();
    for (app, rel, path) in fixtures() {
        let t = Tomo::new().file("state/servers.yaml", "kind: Server\nname: nas\nhost: local\n");
        let out = t.path().join("state/apps/app.yaml");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let file = path.display().to_string();
        let r = t.run(&["import", "compose", &file, "--server", "nas", "--out", &out.display().to_string()]);
        if r.code != 0 {
            failures.push(format!("{rel}: import exited {}\n{}", r.code, r.all()));
            continue;
        }
        let v = t.run(&["--dir", "state", "validate"]);
        if v.code != 0 {
            failures.push(format!("{app}: tomo validate exited {}\n{}", v.code, v.all()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_output_has_the_manifest_and_every_key() {
    let (_, _, path) = fixtures().into_iter().find(|(a, _, _)| a == "Dify").unwrap();
    let t = Tomo::new();
    let r = t.run(&["import", "compose", &path.display().to_string(), "--json", "--set", "AppID=dify-x"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["manifest"]["kind"], "App");
    assert_eq!(v["manifest"]["name"], "dify");
    let report = v["report"].as_array().unwrap();
    let find = |svc: &str, key: &str| {
        report.iter().find(|e| e["service"] == svc && e["key"] == key).unwrap_or_else(|| panic!("{svc} {key}"))
    };
    assert_eq!(find("ssrf_proxy", "(name)")["status"], "changed");
    assert!(find("ssrf_proxy", "(name)")["note"].as_str().unwrap().contains("alias `ssrf_proxy`"));
    let ssrf = &v["manifest"]["services"]["ssrf-proxy"];
    assert!(ssrf["networks"].to_string().contains("ssrf_proxy"), "{ssrf}");
    // --set wins over the AppID default.
    assert!(v["manifest"].to_string().contains("/DATA/AppData/dify-x/"), "{}", v["manifest"]);
}

const BAD: &[(&str, &str, &str, &str)] = &[
    ("not YAML", "services: [a\n  b: {\n", ":", "YAML syntax error"),
    ("unknown key", "services:\n  a:\n    image: x\n    imagee: y\n", ":4:", "unknown compose key `imagee`"),
    ("unknown top key", "servics:\n  a:\n    image: x\n", ":1:", "unknown compose key `servics`"),
    (
        "required variable",
        "services:\n  a:\n    image: x\n    environment:\n      P: ${DB_PASSWORD:?set the database password}\n",
        ":5:",
        "set the database password",
    ),
    (
        "service network_mode",
        "services:\n  a:\n    image: x\n    network_mode: service:nope\n",
        ":4:",
        "no service `nope`",
    ),
    ("service pid", "services:\n  a:\n    image: x\n    pid: service:ghost\n", ":4:", "no service `ghost`"),
    (
        "config outside",
        "services:\n  a:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: ../../etc/passwd\n",
        ":7:",
        "outside the compose file's folder",
    ),
    (
        "container_name twice",
        "services:\n  a:\n    image: x\n    container_name: same\n  b:\n    image: y\n    container_name: same\n",
        ":7:",
        "container_name `same` is used twice",
    ),
    ("depends_on unknown", "services:\n  a:\n    image: x\n    depends_on: [b]\n", ":4:", "no service `b`"),
    ("no image", "services:\n  a:\n    build: .\n", ":2:", "has no `image`"),
];

#[test]
fn bad_compose_files_fail_at_their_line_and_write_nothing() {
    for (what, text, at, message) in BAD {
        let t = Tomo::new().file("app/docker-compose.yml", text);
        let r = t.run(&["import", "compose", "app/docker-compose.yml", "--out", "out.yaml", "--lossy"]);
        assert_eq!(r.code, 1, "{what}: {}", r.all());
        assert!(r.stderr.contains(&format!("docker-compose.yml{at}")), "{what}: no `{at}` in\n{}", r.stderr);
        assert!(r.stderr.contains(message), "{what}: no `{message}` in\n{}", r.stderr);
        assert!(!t.path().join("out.yaml").exists(), "{what}: out.yaml written");
    }
}

#[test]
fn dropped_keys_fail_unless_lossy() {
    let text = "services:\n  a:\n    image: x\n    dns: [1.1.1.1]\n";
    let t = Tomo::new().file("app/docker-compose.yml", text);
    let r = t.run(&["import", "compose", "app/docker-compose.yml", "--out", "out.yaml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("dns") && r.stderr.contains("dropped"), "{}", r.stderr);
    assert!(!t.path().join("out.yaml").exists());
    let r = t.run(&["import", "compose", "app/docker-compose.yml", "--out", "out.yaml", "--lossy"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = std::fs::read_to_string(t.path().join("out.yaml")).unwrap();
    assert!(out.starts_with("# yaml-language-server: $schema="), "{out}");
    assert!(out.contains("# Imported from app/docker-compose.yml"), "{out}");
}

#[test]
fn variables_come_from_set_env_file_environment_then_dot_env() {
    let text = "services:\n  a:\n    image: x\n    environment:\n      A: $A\n      B: $B\n      C: $C\n      D: $D\n";
    let t = Tomo::new()
        .file("app/docker-compose.yml", text)
        .file("app/.env", "A=dotenv\nB=dotenv\nC=dotenv\nD=dotenv\n")
        .file("vars.env", "A=envfile\nB=envfile\n")
        .env("A", "process")
        .env("B", "process")
        .env("C", "process");
    let r =
        t.run(&["import", "compose", "app/docker-compose.yml", "--set", "A=set", "--env-file", "vars.env", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let env = &v["manifest"]["env"];
    assert_eq!(
        (&env["A"], &env["B"], &env["C"], &env["D"]),
        (&"set".into(), &"envfile".into(), &"process".into(), &"dotenv".into())
    );
}

#[test]
fn profiles_not_asked_for_are_absent() {
    let text = "services:\n  web:\n    image: x\n  debug:\n    image: y\n    profiles: [debug]\n";
    let t = Tomo::new().file("app/docker-compose.yml", text);
    let r = t.run(&["import", "compose", "app/docker-compose.yml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["manifest"]["services"]["debug"]["state"], "absent", "{}", r.all());
    let r = t.run(&["import", "compose", "app/docker-compose.yml", "--json", "--profile", "debug"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["manifest"]["services"]["debug"].get("state").is_none(), "{}", r.all());
}

/// The benchmark: `cb test --release --test integration import::all_fixtures_import_fast -- --nocapture`.
#[test]
fn all_fixtures_import_fast() {
    let files: Vec<PathBuf> = fixtures().into_iter().map(|(_, _, p)| p).collect();
    let start = Instant::now();
    for p in &files {
        convert(p).unwrap();
    }
    let took = start.elapsed();
    println!("imported {} fixture apps in {:.1} ms", files.len(), took.as_secs_f64() * 1000.0);
    let limit = if cfg!(debug_assertions) { Duration::from_secs(3) } else { Duration::from_millis(200) };
    assert!(took <= limit, "importing the fixtures took {took:?} (limit {limit:?})");
}

#[test]
fn secrets_vault_stores_credentials_and_refers_to_them() {
    let text = "name: shop\nservices:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: hunter2\n      POSTGRES_USER: shop\n";
    let t = Tomo::new()
        .env("TOMO_MASTER_PASSWORD", "master pw")
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
        .file("app/docker-compose.yml", text)
        .file("state/servers.yaml", "kind: Server\nname: nas\nhost: local\n");
    let r = t.run(&[
        "import",
        "compose",
        "app/docker-compose.yml",
        "--server",
        "nas",
        "--secrets",
        "vault",
        "--out",
        "state/apps/shop.yaml",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("stored secret shop-postgres-password"), "{}", r.stderr);
    let manifest = std::fs::read_to_string(t.path().join("state/apps/shop.yaml")).unwrap();
    assert!(manifest.contains("secret: shop-postgres-password"), "{manifest}");
    assert!(!manifest.contains("hunter2"), "{manifest}");
    let list = t.run(&["secret", "list"]);
    assert!(list.stdout.contains("shop-postgres-password"), "{}", list.all());
    let v = t.run(&["--dir", "state", "validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

/// Imports `text` as app/docker-compose.yml, then validates it: the import's
/// JSON (manifest and report) once both passed.
fn import_and_validate(text: &str) -> serde_json::Value {
    let t = Tomo::new()
        .file("app/docker-compose.yml", text)
        .file("state/servers.yaml", "kind: Server\nname: nas\nhost: local\n");
    let args = ["import", "compose", "app/docker-compose.yml", "--server", "nas", "--lossy"];
    let r = t.run(&[&args[..], &["--out", "state/apps/app.yaml"]].concat());
    assert_eq!(r.code, 0, "{}", r.all());
    let v = t.run(&["--dir", "state", "validate"]);
    assert_eq!(v.code, 0, "{}\n{}", std::fs::read_to_string(t.path().join("state/apps/app.yaml")).unwrap(), v.all());
    let r = t.run(&[&args[..], &["--json"]].concat());
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap()
}

fn report_entry<'a>(v: &'a serde_json::Value, svc: &str, key: &str) -> &'a serde_json::Value {
    let report = v["report"].as_array().unwrap();
    report.iter().find(|e| e["service"] == svc && e["key"] == key).unwrap_or_else(|| panic!("no {svc} {key} in {v}"))
}

#[test]
fn network_modes_leave_out_ports_and_aliases_and_share_ipc() {
    let text = "name: shop\nservices:\n  vpn:\n    image: vpn\n    ports: [\"8080:80\"]\n  web:\n    image: web\n    container_name: shop_web\n    ports: [\"9000:80\"]\n    expose: [\"81\"]\n    network_mode: service:vpn\n    ipc: service:vpn\n  mon:\n    image: mon\n    expose: [\"82\"]\n    network_mode: host\n  off:\n    image: off\n    ports: [\"9001:80\"]\n    network_mode: none\n";
    let v = import_and_validate(text);
    let services = &v["manifest"]["services"];
    for svc in ["web", "mon", "off"] {
        assert!(services[svc].get("ports").is_none(), "{svc}: {}", services[svc]);
    }
    assert_eq!(services["vpn"]["ports"][0], "8080:80");
    assert_eq!(services["vpn"]["ipc"], "shareable");
    assert_eq!(report_entry(&v, "vpn", "ipc")["status"], "changed");
    for (svc, key, says) in [
        ("web", "ports", "set them on `vpn`"),
        ("web", "expose", "set them on `vpn`"),
        ("mon", "expose", "host mode"),
        ("off", "ports", "no network"),
        ("web", "container_name", "no alias"),
    ] {
        let e = report_entry(&v, svc, key);
        assert_eq!(e["status"], "changed", "{svc} {key}: {e}");
        assert!(e["note"].as_str().unwrap().contains(says), "{svc} {key}: {e}");
    }
    assert!(!services["web"].to_string().contains("shop_web"), "{}", services["web"]);
}

#[test]
fn network_names_stay_distinct_and_apart_from_the_app_network() {
    let text = "name: shop\nservices:\n  a:\n    image: a\n    networks: [front_end, front-end, Default]\n  b:\n    image: b\n    networks: [front-end]\nnetworks:\n  front_end: {}\n  front-end: {}\n  Default: {}\n";
    let v = import_and_validate(text);
    let nets = v["manifest"]["networks"].as_object().unwrap();
    let names: Vec<&str> = nets.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(!names.contains(&"default"), "{names:?}");
    let a = v["manifest"]["services"]["a"]["networks"].as_array().unwrap();
    let b = v["manifest"]["services"]["b"]["networks"].as_array().unwrap();
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0], "front-endx", "{b:?}");
    assert!(report_entry(&v, "", "networks.front-end")["note"].as_str().unwrap().contains("another network"));
    assert!(report_entry(&v, "", "networks.Default")["note"].as_str().unwrap().contains("app's own network"));
}

/// An external network without `name:` is found by its compose key, as
/// compose finds it, not by tomo's `<app>_<name>`.
#[test]
fn an_external_network_keeps_its_compose_name() {
    let text = "name: shop\nservices:\n  a:\n    image: a\n    networks: [proxy_net]\nnetworks:\n  proxy_net:\n    external: true\n";
    let v = import_and_validate(text);
    let net = &v["manifest"]["networks"]["proxy-net"];
    assert_eq!(net["external"], true, "{v}");
    assert_eq!(net["name"], "proxy_net", "{v}");
    let e = report_entry(&v, "", "networks.proxy_net.external");
    assert_eq!(e["status"], "changed", "{e}");
}
