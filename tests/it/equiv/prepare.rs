//! The fixture apps, read in place, and the two copies of each made for one
//! run: one for docker-compose 1.29, one for `tomo import compose`.
//!
//! Both copies get the same changes, each needed to run the apps side by
//! side on one Engine without a registry; none changes what is compared:
//! - image digests are dropped (a locally built image cannot carry a
//!   registry's digest); the name and tag stay;
//! - absolute bind sources outside system folders move below the run's own
//!   folder (the same folder for both sides), which is created beforehand
//!   (long-syntax binds refuse a missing source);
//! - `container_name` and explicit network/volume `name`s get a prefix
//!   unique to the side and run (one Engine, runs in parallel);
//! - `runtime: nvidia`, when this Engine has no such runtime, becomes
//!   `io.containerd.runc.v2` (a registered runtime other than the default,
//!   so passing `runtime` through is still checked).
//!
//! The compose copy only, for what 1.29 cannot read (the compose spec has
//! them): no top-level `name`, `depends_on` as a list (its conditions,
//! `required` among them, order starts, and `up --no-start` would wait
//! forever for a dependency to become healthy), and a config's `content`
//! written to a file beside it (`file:`). Where 1.29 reads a key otherwise
//! than the spec, the compose copy spells out the spec's meaning
//! (`spec_spelled_out`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tomo::compose::interpolate::interpolate;

/// Folders bind-mounted as they are: they exist on every Linux host.
const SYSTEM: &[&str] = &["/etc/", "/proc", "/sys", "/dev", "/var/run/", "/run/", "/lib/modules", "/usr/"];

/// Whether `path` is in a system folder (bind-mounted as it is).
pub fn is_system(path: &str) -> bool {
    SYSTEM.iter().any(|s| path.starts_with(s))
}

/// One fixture app: `<store>/Apps/<name>/docker-compose.yml`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub path: PathBuf,
}

impl Fixture {
    /// A name usable in app and project names: lowercase, `-` only.
    pub fn slug(&self) -> String {
        self.name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
    }
}

/// Every fixture app, sorted by name.
pub fn fixtures() -> Vec<Fixture> {
    let root = crate::harness::fixtures_root();
    let mut all = Vec::new();
    for store in std::fs::read_dir(&root).unwrap().flatten() {
        let Ok(apps) = std::fs::read_dir(store.path().join("Apps")) else { continue };
        for app in apps.flatten() {
            let path = app.path().join("docker-compose.yml");
            if path.is_file() {
                all.push(Fixture { name: app.file_name().to_string_lossy().into_owned(), path });
            }
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The variables both sides get (the CasaOS runtime's and the few others
/// the fixtures use).
pub fn vars(app_id: &str) -> Vec<(String, String)> {
    [
        ("AppID", app_id),
        ("PUID", "1000"),
        ("PGID", "1000"),
        ("TZ", "Europe/Berlin"),
        ("HOSTNAME", "equiv-host"),
        ("STORYTELLER_SECRET_KEY", "equiv-not-a-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The copies of one fixture made for a run.
pub struct Prepared {
    /// The file docker-compose reads.
    pub compose: PathBuf,
    /// The file `tomo import compose` reads.
    pub tomo: PathBuf,
    /// Image names the services use (interpolated, without digests).
    pub images: BTreeSet<String>,
    /// What the copies changed, for the test's output.
    pub notes: Vec<String>,
    /// The config files each service mounts (compose service → target,
    /// content): 1.29 mounts none outside swarm, the spec mounts each
    /// read-only at its target.
    pub configs: BTreeMap<String, Vec<(String, String)>>,
    /// The networks each service joins, by the spec (see `declared_networks`).
    pub networks: BTreeMap<String, Vec<String>>,
}

/// Each service's networks as the spec joins them (1.29 joins only the
/// first at create, the others at start): none with a `network_mode`, those
/// listed, or the project's `default`; `_` read as `-`, as tomo spells names.
fn declared_networks(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let services = doc["services"].as_object().into_iter().flatten();
    services
        .map(|(name, svc)| {
            let mut nets: Vec<String> = match &svc["networks"] {
                _ if !svc["network_mode"].is_null() => vec![],
                Value::Array(list) => list.iter().filter_map(Value::as_str).map(String::from).collect(),
                Value::Object(map) => map.keys().cloned().collect(),
                _ => vec!["default".into()],
            };
            nets = nets.into_iter().map(|n| n.replace('_', "-")).collect();
            nets.sort();
            (name.clone(), nets)
        })
        .collect()
}

/// Each service's configs with inline `content` (target, interpolated content).
fn config_files(doc: &Value, vars: &[(String, String)]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let services = doc["services"].as_object().into_iter().flatten();
    for (name, svc) in services {
        for c in svc["configs"].as_array().into_iter().flatten() {
            let (source, target) = match c {
                Value::String(s) => (s.as_str(), format!("/{s}")),
                other => {
                    let source = other["source"].as_str().unwrap_or("");
                    (source, other["target"].as_str().map_or(format!("/{source}"), String::from))
                }
            };
            if let Some(content) = doc["configs"][source]["content"].as_str() {
                out.entry(name.clone()).or_insert_with(Vec::new).push((target, interp(content, vars)));
            }
        }
    }
    out
}

/// How a run names things on its two sides.
pub struct Names<'a> {
    pub compose_prefix: &'a str,
    pub tomo_prefix: &'a str,
}

pub fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => {
            s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
        }
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Real(s) => s.clone(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("unexpected YAML key {other:?}"),
                };
                m.insert(key, yaml_to_json(v));
            }
            Value::Object(m)
        }
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

/// Reads a fixture as JSON.
pub fn load(fx: &Fixture) -> Value {
    let text = std::fs::read_to_string(&fx.path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", fx.path.display()));
    yaml_to_json(&docs[0])
}

/// `text` with the run's variables (a variable outside them is empty, as in Compose).
pub fn interp(text: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    interpolate(text, &lookup).map(|i| i.value).unwrap_or_else(|e| panic!("interpolating {text}: {e:?}"))
}

/// The changes made to both copies alike.
struct Common<'a> {
    vars: &'a [(String, String)],
    host: &'a Path,
    nvidia: bool,
    images: BTreeSet<String>,
    notes: BTreeSet<String>,
}

impl Common<'_> {
    fn service(&mut self, svc: &mut Map<String, Value>) {
        if let Some(Value::String(image)) = svc.get_mut("image") {
            if let Some((name, _)) = image.split_once("@sha256:") {
                *image = name.to_string();
                self.notes.insert("image digests dropped (a local image has none)".into());
            }
            self.images.insert(interp(image, self.vars));
        }
        if let Some(Value::Array(vols)) = svc.get_mut("volumes") {
            for v in vols {
                self.volume(v);
            }
        }
        if !self.nvidia && svc.get("runtime") == Some(&Value::from("nvidia")) {
            svc.insert("runtime".into(), Value::from("io.containerd.runc.v2"));
            self.notes.insert("runtime nvidia → io.containerd.runc.v2 (this Engine has no nvidia runtime)".into());
        }
    }

    fn volume(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let Some((src, rest)) = s.split_once(':') else { return };
                if let Some(moved) = self.rebase(src) {
                    *s = format!("{moved}:{rest}");
                }
            }
            Value::Object(m) if m.get("type") == Some(&Value::from("bind")) => {
                if let Some(Value::String(src)) = m.get_mut("source")
                    && let Some(moved) = self.rebase(src)
                {
                    *src = moved;
                }
            }
            _ => {}
        }
    }

    /// A bind source below the run's host folder (created there), or None to
    /// leave it (a volume name, a system folder).
    fn rebase(&mut self, src: &str) -> Option<String> {
        let real = interp(src, self.vars);
        if !real.starts_with('/') || is_system(&real) {
            return None;
        }
        let moved = format!("{}{src}", self.host.display());
        std::fs::create_dir_all(format!("{}{real}", self.host.display())).unwrap();
        self.notes.insert("bind sources moved below the run's folder".into());
        Some(moved)
    }
}

fn prefix_names(doc: &mut Value, prefix: &str) {
    if let Some(Value::Object(services)) = doc.get_mut("services") {
        for svc in services.values_mut() {
            if let Some(Value::String(n)) = svc.get_mut("container_name") {
                *n = format!("{prefix}-{n}");
            }
        }
    }
    for top in ["networks", "volumes"] {
        if let Some(Value::Object(decls)) = doc.get_mut(top) {
            for d in decls.values_mut() {
                if let Some(Value::String(n)) = d.get_mut("name") {
                    *n = format!("{prefix}-{n}");
                }
            }
        }
    }
}

/// Where 1.29 reads a key otherwise than the compose spec, the spec's
/// meaning written so that 1.29 reads it right.
fn spec_spelled_out(svc: &mut Value, notes: &mut BTreeSet<String>) {
    // Spec: `disable: false` turns nothing off (1.29 sets the test to NONE).
    if let Some(h) = svc.get_mut("healthcheck").and_then(Value::as_object_mut)
        && h.get("disable") == Some(&Value::Bool(false))
    {
        h.remove("disable");
        if h.is_empty() {
            svc.as_object_mut().unwrap().remove("healthcheck");
        }
        notes.insert("compose copy: `healthcheck.disable: false` removed (spec: a no-op; 1.29 disables)".into());
    }
    // Spec: a device request without `count` or `device_ids` is for all
    // devices (1.29 sends count 0: none).
    let devices = svc.pointer_mut("/deploy/resources/reservations/devices").and_then(Value::as_array_mut);
    for d in devices.into_iter().flatten().filter_map(Value::as_object_mut) {
        if !d.contains_key("count") && !d.contains_key("device_ids") {
            d.insert("count".into(), Value::from("all"));
            notes.insert(
                "compose copy: `count: all` written out on device requests (spec default; 1.29 sends 0)".into(),
            );
        }
    }
}

/// What docker-compose 1.29 cannot read, in the form it can (see the module doc).
fn for_compose_1_29(doc: &mut Value, dir: &Path, vars: &[(String, String)], notes: &mut BTreeSet<String>) {
    let m = doc.as_object_mut().unwrap();
    if m.remove("name").is_some() {
        notes.insert("compose copy: top-level `name` removed (1.29 refuses it)".into());
    }
    if let Some(Value::Object(services)) = m.get_mut("services") {
        for svc in services.values_mut() {
            spec_spelled_out(svc, notes);
            if let Some(Value::Object(deps)) = svc.get_mut("depends_on") {
                let names: Vec<Value> = deps.keys().map(|k| Value::from(k.as_str())).collect();
                svc["depends_on"] = Value::Array(names);
                notes.insert(
                    "compose copy: `depends_on` conditions removed (`up --no-start` would wait forever for a \
                     dependency to become healthy; no container field depends on them)"
                        .into(),
                );
            }
        }
    }
    if let Some(Value::Object(configs)) = m.get_mut("configs") {
        for (name, c) in configs.iter_mut() {
            let Some(Value::String(content)) = c.as_object_mut().and_then(|o| o.remove("content")) else { continue };
            let file = dir.join(format!("config-{name}"));
            std::fs::write(&file, interp(&content, vars)).unwrap();
            c["file"] = Value::from(file.display().to_string());
            notes.insert("compose copy: config `content` written to a `file` (1.29 lacks `content`)".into());
        }
    }
}

/// Writes the two copies of `fx`, as `docker-compose.yml` in `cdir` and
/// `tdir` (JSON, which is YAML); bind sources go below `host`.
pub fn prepare(
    fx: &Fixture,
    cdir: &Path,
    tdir: &Path,
    host: &Path,
    names: &Names,
    vars: &[(String, String)],
) -> Prepared {
    let mut doc = load(fx);
    let nvidia = crate::equiv::engine_has_runtime("nvidia");
    let mut common = Common { vars, host, nvidia, images: BTreeSet::new(), notes: BTreeSet::new() };
    if let Some(Value::Object(services)) = doc.get_mut("services") {
        for svc in services.values_mut() {
            common.service(svc.as_object_mut().expect("a service is a map"));
        }
    }
    let mut notes = common.notes;
    let configs = config_files(&doc, vars);
    let networks = declared_networks(&doc);
    let mut tomo = doc.clone();
    prefix_names(&mut tomo, names.tomo_prefix);
    let mut compose = doc;
    prefix_names(&mut compose, names.compose_prefix);
    for_compose_1_29(&mut compose, cdir, vars, &mut notes);
    let (cpath, tpath) = (cdir.join("docker-compose.yml"), tdir.join("docker-compose.yml"));
    std::fs::write(&cpath, serde_json::to_string_pretty(&compose).unwrap()).unwrap();
    std::fs::write(&tpath, serde_json::to_string_pretty(&tomo).unwrap()).unwrap();
    Prepared {
        compose: cpath,
        tomo: tpath,
        images: common.images,
        notes: notes.into_iter().collect(),
        configs,
        networks,
    }
}
