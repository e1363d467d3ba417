//! The two sides of one app on this machine's Engine: docker-compose 1.29
//! (`up --no-start`) and tomo (`import compose`, then `apply` of the
//! services declared stopped), each side's containers as `docker inspect`
//! gives them, and a guard that removes what both sides made.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::compare::Entry;
use crate::fleet::docker_try;
use crate::harness::Tomo;

/// `docker inspect` of the containers with `label`, by the service label `service_label`.
pub fn containers(label: &str, service_label: &str) -> BTreeMap<String, Value> {
    let ids = docker_try(&["ps", "-aq", "--no-trunc", "--filter", &format!("label={label}")]).unwrap_or_default();
    let ids: Vec<&str> = ids.lines().collect();
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let text = docker_try(&[&["inspect"][..], &ids].concat()).expect("docker inspect");
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|c| {
            let svc = c["Config"]["Labels"][service_label].as_str().unwrap_or("").to_string();
            (svc, c)
        })
        .collect()
}

/// `docker-compose --compatibility -p PROJECT up --no-start` on `file`, with
/// exactly the variables `vars` (and PATH).
pub fn compose_up(file: &Path, project: &str, vars: &[(String, String)]) -> Result<(), String> {
    // Bounded: a docker-compose that hangs must fail the test, not stall it.
    let out = Command::new("timeout")
        .args(["-k", "5", "180", "docker-compose", "--compatibility", "--no-ansi", "-p", project, "-f"])
        .arg(file)
        .args(["up", "--no-start"])
        .current_dir(file.parent().unwrap())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("docker-compose 1.29 is installed (tests/run.sh installs it)");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// The compose side's containers by service.
pub fn compose_containers(project: &str) -> BTreeMap<String, Value> {
    containers(&format!("com.docker.compose.project={project}"), "com.docker.compose.service")
}

/// What `tomo import compose --json` printed.
pub struct Imported {
    pub manifest: Value,
    pub report: Vec<Entry>,
}

/// `tomo import compose FILE --name APP --server local --set K=V… --json --lossy`.
pub fn import(tomo: &Tomo, file: &Path, app: &str, vars: &[(String, String)]) -> Result<Imported, String> {
    let file = file.display().to_string();
    let mut args = vec!["import", "compose", &file, "--name", app, "--server", "local", "--json", "--lossy"];
    let sets: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for s in &sets {
        args.extend(["--set", s]);
    }
    let r = tomo.run(&args);
    if r.code != 0 {
        return Err(format!("tomo import compose exited {}:\n{}", r.code, r.all()));
    }
    let v: Value = serde_json::from_str(&r.stdout).map_err(|e| format!("import --json output: {e}\n{}", r.stdout))?;
    let manifest = match &v["manifest"] {
        // The manifest as text (YAML) or as a document.
        Value::String(text) => {
            let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("manifest: {e}\n{text}"))?;
            super::prepare::yaml_to_json(&docs[0])
        }
        other => other.clone(),
    };
    let report = serde_json::from_value(v["report"].clone()).map_err(|e| format!("report: {e}\n{}", v["report"]))?;
    Ok(Imported { manifest, report })
}

/// The manifest with every service declared `stopped` (those the import
/// declared `absent`, as compose profiles not enabled, stay so).
pub fn stopped(mut manifest: Value) -> Value {
    match manifest.get_mut("services").and_then(Value::as_object_mut) {
        Some(services) => {
            for s in services.values_mut() {
                if s["state"] != "absent" {
                    s["state"] = Value::from("stopped");
                }
            }
        }
        None => manifest["state"] = Value::from("stopped"),
    }
    manifest
}

/// Writes `manifest` (JSON is YAML) as the app's manifest and applies it.
pub fn tomo_apply(tomo: &Tomo, app: &str, manifest: &Value) -> Result<(), String> {
    let path = tomo.path().join("state/apps").join(format!("{app}.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(manifest).unwrap()).unwrap();
    let r = tomo.run(&["apply", "--auto-approve"]);
    if r.code == 0 { Ok(()) } else { Err(format!("tomo apply exited {}:\n{}", r.code, r.all())) }
}

/// The tomo side's containers by service (a one-service app's by the app).
pub fn tomo_containers(app: &str) -> BTreeMap<String, Value> {
    let mut all = containers(&format!("tomo.app={app}"), "tomo.service");
    if let Some(c) = all.remove("") {
        all.insert(app.to_string(), c);
    }
    all
}

/// Removes, on drop, every container, network and volume of a compose
/// project and a tomo app, and those named with the run's prefixes.
pub struct Leftovers {
    pub project: String,
    pub app: String,
    pub prefixes: Vec<String>,
}

fn ids(kind: &str, filter: &str) -> Vec<String> {
    let fmt = if kind == "container" { "{{.ID}}" } else { "{{.Name}}" };
    let sub = if kind == "container" { vec!["ps", "-a"] } else { vec![kind, "ls"] };
    let out = docker_try(&[&sub[..], &["--filter", filter, "--format", fmt]].concat()).unwrap_or_default();
    out.lines().map(String::from).collect()
}

impl Leftovers {
    fn filters(&self) -> Vec<String> {
        let mut f =
            vec![format!("label=com.docker.compose.project={}", self.project), format!("label=tomo.app={}", self.app)];
        f.extend(self.prefixes.iter().map(|p| format!("name=^/?{p}")));
        f
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for (kind, rm) in [
            ("container", ["rm", "-f", "-v"].as_slice()),
            ("network", &["network", "rm"]),
            ("volume", &["volume", "rm", "-f"]),
        ] {
            let mut found: Vec<String> = self.filters().iter().flat_map(|f| ids(kind, f)).collect();
            found.sort();
            found.dedup();
            if !found.is_empty() {
                let _ = docker_try(&[rm, &found.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat());
            }
        }
    }
}
