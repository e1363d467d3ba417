//! The fleet gauges of `tomo watch --metrics` and `tomo serve --http ...
//! --metrics`, read over HTTP after real collection rounds and parsed by the
//! official Python client's parser (`prometheus_client.parser`): the families
//! and their labels, Prometheus naming conventions, plausible values, the
//! alerts firing, and a mount point whose name needs escaping (a quote and a
//! backslash: a real ext4 filesystem mounted in a private mount namespace
//! around one `tomo metrics collect`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet::Fleet;
use crate::mcp::JWT_KEY;
use crate::mcp_client::http;

const MEMORY_LIMIT: f64 = 64.0 * 1024.0 * 1024.0;

fn python() -> String {
    std::env::var("TOMO_TEST_PYTHON").expect("TOMO_TEST_PYTHON names the test venv's python (tests/run.sh)")
}

/// A tomo daemon and the address of its `/metrics`, from its JSON log.
struct Daemon {
    child: std::process::Child,
    addr: String,
    _log: Receiver<String>,
}

impl Daemon {
    fn start(f: &Fleet, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut env = env.to_vec();
        env.push(("TOMO_LOG", "info"));
        let mut child = f.tomo.spawn_env(args, &env);
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = channel();
        let (addr_tx, addr_rx) = channel();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "metrics at /metrics"
                    && let Some(a) = v["fields"]["address"].as_str()
                {
                    let _ = addr_tx.send(a.to_string());
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).expect("the daemon logs its metrics address");
        Daemon { child, addr, _log: rx }
    }

    fn metrics(&self) -> String {
        let (status, _, body) = http(&self.addr, "GET", "/metrics", &[], "");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `/metrics`, once `ready` holds of it (within a minute).
    fn metrics_when(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = self.metrics();
            if ready(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "no {what} in /metrics:\n{body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The families of `text` as the Python client's parser reads them.
fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(crate::harness::repo().join("tests/prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python Prometheus parser");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused:\n{}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no family {name}: {families:?}"))
}

fn samples(f: &Value) -> &Vec<Value> {
    f["samples"].as_array().unwrap()
}

fn label_names(s: &Value) -> Vec<String> {
    let mut k: Vec<String> = s["labels"].as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Naming as Prometheus asks: `tomo_` prefix, snake case, a base unit
/// suffix (`_bytes`, `_seconds`, `_ratio`), help text, gauges not `_total`.
fn check_conventions(families: &[Value]) {
    for f in families {
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("tomo_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
        assert!(!f["documentation"].as_str().unwrap_or_default().is_empty(), "{name} has no HELP");
        let ty = f["type"].as_str().unwrap();
        if name.starts_with("tomo_host_") || name.starts_with("tomo_container_") || name.starts_with("tomo_alert") {
            assert_eq!(ty, "gauge", "{name}");
            assert!(!name.ends_with("_total"), "a gauge named like a counter: {name}");
        }
        if name.contains("bytes") {
            assert!(name.ends_with("_bytes") || name.ends_with("_bytes_per_second"), "{name}");
        }
        if name.contains("seconds") {
            assert!(name.ends_with("_seconds"), "{name}");
        }
        if name.contains("cpu") {
            assert!(name.ends_with("_ratio"), "CPU as a ratio (1 = a core): {name}");
        }
        for s in samples(f) {
            let v = &s["value"];
            assert!(v.is_number() || v == "NaN", "{name}: {s}");
        }
    }
}

/// The families, labels and values of one fleet (server `local`, the app `hog`).
fn check_fleet(families: &[Value], app: &str) {
    check_conventions(families);
    let local =
        |f: &Value| -> Vec<Value> { samples(f).iter().filter(|s| s["labels"]["server"] == "local").cloned().collect() };
    let cpu = local(family(families, "tomo_host_cpu_ratio"));
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(label_names(&cpu[0]), ["server"]);
    let v = cpu[0]["value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&v), "CPU ratio {v}");
    let fs = local(family(families, "tomo_host_filesystem_avail_bytes"));
    assert!(!fs.is_empty());
    for s in &fs {
        assert_eq!(label_names(s), ["mount", "server"], "{s}");
        assert!(s["value"].as_f64().unwrap() > 0.0, "{s}");
    }
    assert!(fs.iter().any(|s| s["labels"]["mount"] == "/"), "{fs:?}");
    for name in ["tomo_host_memory_available_bytes", "tomo_host_uptime_seconds", "tomo_host_load1"] {
        let s = local(family(families, name));
        assert!(s.len() == 1 && s[0]["value"].as_f64().unwrap() > 0.0, "{name}: {s:?}");
    }
    let of_app = |name: &str| -> Vec<Value> {
        samples(family(families, name)).iter().filter(|s| s["labels"]["app"] == app).cloned().collect()
    };
    let mem = of_app("tomo_container_memory_bytes");
    assert_eq!(mem.len(), 1, "{mem:?}");
    assert_eq!(label_names(&mem[0]), ["app", "server", "service"]);
    assert!(!mem[0]["labels"]["service"].as_str().unwrap().is_empty());
    let used = mem[0]["value"].as_f64().unwrap();
    assert!(used > 0.0 && used <= MEMORY_LIMIT, "memory {used}");
    assert_eq!(of_app("tomo_container_memory_limit_bytes")[0]["value"].as_f64(), Some(MEMORY_LIMIT));
    assert_eq!(of_app("tomo_container_restarts")[0]["value"].as_f64(), Some(0.0));
    // The alert that always fires, counted and named.
    let firing = samples(family(families, "tomo_alerts_firing"));
    assert!(firing[0]["value"].as_f64().unwrap() >= 1.0, "{firing:?}");
    let by_rule = samples(family(families, "tomo_alert_firing"));
    assert!(
        by_rule
            .iter()
            .any(|s| s["labels"]["alert"] == "cpu >= 0%" && s["labels"]["server"] == "local" && s["value"] == 1.0),
        "{by_rule:?}"
    );
}

/// A 8 MiB ext4 image, and a folder named with a quote and a backslash to mount it on.
fn odd_filesystem(f: &Fleet) -> (PathBuf, PathBuf) {
    let img = f.tomo.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let out = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img).output().expect("run mkfs.ext4 (e2fsprogs)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = f.tomo.path().join("mnt").join("we\"ird\\disk");
    std::fs::create_dir_all(&dir).unwrap();
    (img, dir)
}

/// `tomo metrics collect` in a private mount namespace where `img` is mounted on `dir`.
fn collect_with_mount(f: &Fleet, img: &Path, dir: &Path) {
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -o loop \"$1\" \"$2\" && exec \"$3\" metrics collect", "sh"])
        .arg(img)
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_tomo"))
        .current_dir(f.tomo.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIRECTORY", "data")
        .env("TOMO_LOG", "warn")
        .output()
        .expect("run unshare (util-linux)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
}

/// The sample of `family` whose mount is `dir`, if any.
fn odd_mount(families: &[Value], dir: &Path) -> Option<Value> {
    let path = dir.to_str().unwrap();
    samples(family(families, "tomo_host_filesystem_avail_bytes")).iter().find(|s| s["labels"]["mount"] == path).cloned()
}

fn fleet() -> Fleet {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    f.manifest(
        "apps/hog.yaml",
        "kind: App\nname: {p}-hog\nserver: local\nimage: {image}\ninit: true\ncommand: [sh, -c, 'sleep 3600']\nresources:\n  memory: 64m\n",
    );
    // One round an hour: the daemons' first round, then only the test's.
    f.manifest("settings.yaml", "kind: Settings\nmetrics:\n  interval: 1h\n  alerts: [\"cpu >= 0%\"]\n");
    f.apply();
    f
}

#[test]
fn watch_and_serve_gauges_parse_with_the_prometheus_client() {
    let mut f = fleet();
    let app = f.app("hog");
    let (img, dir) = odd_filesystem(&f);
    let with_local = |b: &str| b.contains("tomo_host_cpu_ratio{server=\"local\"}");

    // `tomo watch --metrics`: its own round first, then one with the odd mount.
    let watch = Daemon::start(&f, &["watch", "--metrics", "127.0.0.1:0"], &[]);
    watch.metrics_when("first round of the watch", with_local);
    collect_with_mount(&f, &img, &dir);
    let body = watch.metrics();
    let families = parse(&body);
    check_fleet(&families, &app);
    let odd = odd_mount(&families, &dir).unwrap_or_else(|| panic!("no mount {}:\n{body}", dir.display()));
    assert!(odd["value"].as_f64().unwrap() > 0.0, "{odd}");
    assert!(body.contains("we\\\"ird\\\\disk\""), "escaped in the text: {body}");
    // The watch's own counters parse too.
    let runs = family(&families, "tomo_watch_runs");
    assert_eq!(runs["type"], "counter");
    drop(watch);

    // `tomo serve --http ... --metrics`: its first round replaces the test's.
    f.tomo.set_env("JWT_SECRET_KEY", JWT_KEY);
    let serve = Daemon::start(&f, &["serve", "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"], &[]);
    let path = dir.to_str().unwrap().replace('\\', "\\\\").replace('"', "\\\"");
    let body = serve.metrics_when("the server's own round", |b| with_local(b) && !b.contains(&path));
    let families = parse(&body);
    check_fleet(&families, &app);
    assert!(families.iter().all(|f| !f["name"].as_str().unwrap().starts_with("tomo_watch_")), "{body}");
    collect_with_mount(&f, &img, &dir);
    let families = parse(&serve.metrics());
    check_fleet(&families, &app);
    assert!(odd_mount(&families, &dir).is_some(), "{families:?}");
}
