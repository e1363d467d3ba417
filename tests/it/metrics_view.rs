//! `tomo metrics` (table, `--json`, `--plot`), against the real local Docker Engine after a real
//! collection round (`tomo metrics collect`); a server not reached in the latest round named in the
//! table; `tomo logs purge --metrics`.

use std::process::Command;

use tomo::store::Store;

use crate::fleet::Fleet;

/// A server that cannot be reached (nothing listens on port 1).
const PIT: &str = "kind: Server\nname: pit\nhost: 127.0.0.1\nport: 1\nuser: root\nauth: {key_file: /nonexistent}\nhost_key: \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n";

fn python() -> String {
    std::env::var("TOMO_TEST_PYTHON").expect("TOMO_TEST_PYTHON names the test venv's python (tests/run.sh)")
}

/// A fleet with a busy container on `local`, applied and sampled twice.
fn collected() -> Fleet {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    f.manifest(
        "apps/busy.yaml",
        "kind: App\nname: {p}-busy\nserver: local\nimage: {image}\ninit: true\ncommand: [sh, -c, 'while :; do :; done']\n",
    );
    f.apply();
    for _ in 0..2 {
        let r = f.tomo(&["metrics", "collect"]);
        assert_eq!(r.code, 0, "{}", r.all());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    f
}

#[test]
#[ignore = "a busy loop's share of a core (> 0.5): measured after the parallel suite, by tests/run.sh"]
fn table_json_and_plots_show_the_collected_figures() {
    let f = collected();
    let app = f.app("busy");
    let r = f.tomo(&["metrics", "--since", "1h"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("SUBJECT") && r.stdout.contains("LAST 1h"), "{}", r.stdout);
    let busy =
        r.stdout.lines().find(|l| l.contains(&format!("local {app}/"))).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(busy.contains("cpu") && busy.contains('%'), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.contains(" memory ") && l.contains("iB")), "{}", r.stdout);
    assert!(r.stdout.contains('▁') || r.stdout.contains('▄'), "sparklines: {}", r.stdout);

    let r = f.tomo(&["metrics", "--app", &app, "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let series = v["series"].as_array().unwrap();
    assert!(!series.is_empty(), "{v}");
    assert!(series.iter().all(|s| s["subject"]["app"] == app.as_str()), "only the app's containers: {v}");
    let cpu = series.iter().find(|s| s["figure"] == "container_cpu_ratio").expect("cpu series");
    let last = cpu["points"].as_array().unwrap().last().unwrap()["avg"].as_f64().unwrap();
    assert!(last > 0.5, "the busy loop takes more than half a core: {last}");

    for name in ["m.svg", "m.png"] {
        let path = f.tomo.path().join(name);
        let r = f.tomo(&["metrics", "--plot", path.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.all());
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".svg") {
            let check = "import sys, xml.etree.ElementTree as E\nr = E.parse(sys.argv[1]).getroot()\nprint(r.get('width'), r.get('height'))";
            let out = Command::new(python()).args(["-c", check, path.to_str().unwrap()]).output().unwrap();
            let dims = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let (w, h) = dims.split_once(' ').unwrap();
            assert_eq!(w, "1200");
            assert!(h.parse::<u32>().unwrap() >= 260, "{dims}");
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1200);
            assert!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()) >= 260);
        }
    }
}

#[test]
fn bad_arguments_are_usage_errors_and_unknown_names_not_found() {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    let r = f.tomo(&["metrics", "--since", "yesterday-ish"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--since"), "{}", r.stderr);
    let r = f.tomo(&["metrics", "--server", "nowhere"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("nowhere"), "{}", r.stderr);
    let r = f.tomo(&["metrics", "--app", "ghost"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let r = f.tomo(&["metrics", "--plot", "chart.jpg"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--plot"), "{}", r.stderr);
}

#[test]
fn an_unreached_server_is_named_and_purge_deletes_the_metric_rows() {
    let f = Fleet::new();
    f.manifest("local.yaml", "kind: Server\nname: local\nhost: local\n");
    f.manifest("pit.yaml", PIT);
    let r = f.tomo(&["metrics", "collect"]);
    assert_eq!(r.code, 1, "pit is not reached: {}", r.all());
    let r = f.tomo(&["metrics"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let pit = r.stdout.lines().find(|l| l.starts_with("pit: not read: ")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(pit.contains("not reached in the latest round"), "{}", r.stdout);
    assert!(!r.stdout.contains("local: not read"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("local ") && l.contains("cpu")), "{}", r.stdout);

    let keep = f.tomo(&["logs", "purge", "--metrics", "--before", "1h"]);
    assert_eq!(keep.code, 0, "{}", keep.all());
    assert_eq!(keep.stdout, "deleted 0 metric row(s)\n");
    let all = f.tomo(&["logs", "purge", "--metrics"]);
    assert_eq!(all.code, 0, "{}", all.all());
    assert!(all.stdout.starts_with("deleted ") && !all.stdout.starts_with("deleted 0 "), "{}", all.stdout);
    let r = f.tomo(&["metrics", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let points =
        v["series"].as_array().unwrap().iter().map(|s| s["points"].as_array().map_or(0, Vec::len)).sum::<usize>();
    assert_eq!(points, 0, "{v}");
    let r = f.tomo(&["metrics"]);
    assert!(!r.stdout.contains("pit: not read"), "nothing stored, nothing to say: {}", r.stdout);
    let store = Store::open_in(&f.tomo.path().join("data")).unwrap();
    let audit = store.activities(Some("logs"), 10).unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().all(|a| a.action == "purge" && a.result == "ok"), "{audit:?}");
    assert_eq!(audit[0].arguments.as_ref().unwrap()["metrics"], true, "{audit:?}");
    assert_eq!(audit[1].arguments.as_ref().unwrap()["before_secs"], 3600, "{audit:?}");
}
