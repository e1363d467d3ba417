//! Equivalence with compose, on the real Engine: for every fixture app of
//! the marketplace stores, docker-compose 1.29 (`up --no-start`) and tomo
//! (`import compose`, then `apply` of the services declared stopped) create
//! containers whose `docker inspect` agrees on everything the user declared
//! (Config and HostConfig: see `inspect::fields`). Names, labels and network
//! names may differ; any other difference must be listed as `changed`, with
//! its reason, in the import's conversion report.
//!
//! The images are stand-ins (one local image under every name the apps
//! use): the containers are created, never started. The copies each side
//! reads, and why they differ from the fixture, are in `prepare`.

mod compare;
mod image;
mod inspect;
mod prepare;
mod sides;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::harness::Tomo;
use compare::{Entry, Outcome, service_key};
use prepare::{Fixture, Names, Prepared};

/// Apps compared at once (the Engine serialises much of the work anyway).
const WORKERS: usize = 4;

/// Whether this Engine has a runtime of that name.
pub fn engine_has_runtime(name: &str) -> bool {
    static RUNTIMES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUNTIMES
        .get_or_init(|| crate::fleet::docker(&["info", "--format", "{{json .Runtimes}}"]))
        .contains(&format!("\"{name}\""))
}

/// One app of a run: its names on both sides (the compose project and
/// tomo app names also prefix every other name each side gives), its
/// folder, its copies.
struct AppRun {
    fx: Fixture,
    project: String,
    app: String,
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    prepared: Prepared,
}

impl AppRun {
    fn new(fx: Fixture, tag: &str) -> AppRun {
        let slug = fx.slug();
        let (project, app) = (format!("eqc{tag}-{slug}"), format!("eqt{tag}-{slug}"));
        let dir = tempfile::tempdir().unwrap();
        let (cdir, tdir) = (dir.path().join("compose"), dir.path().join("tomo"));
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::create_dir_all(&tdir).unwrap();
        let app_id = prepare::load(&fx)["name"].as_str().map_or(slug.clone(), String::from);
        let vars = prepare::vars(&app_id);
        let names = Names { compose_prefix: &project, tomo_prefix: &app };
        let prepared = prepare::prepare(&fx, &cdir, &tdir, &dir.path().join("host"), &names, &vars);
        AppRun { project, app, fx, dir, vars, prepared }
    }

    fn host(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    fn leftovers(&self) -> sides::Leftovers {
        sides::Leftovers {
            project: self.project.clone(),
            app: self.app.clone(),
            prefixes: vec![self.project.clone(), self.app.clone()],
        }
    }

    /// Each side's compared fields, by service.
    fn fields(&self, containers: &BTreeMap<String, Value>, prefixes: &[String]) -> BTreeMap<String, inspect::Fields> {
        let ids: BTreeMap<String, String> =
            containers.iter().map(|(svc, c)| (c["Id"].as_str().unwrap_or("").to_string(), service_key(svc))).collect();
        let host = self.host();
        let ctx = inspect::Context { services: &ids, prefixes, host: &host };
        containers.iter().map(|(svc, c)| (service_key(svc), inspect::fields(&ctx, c))).collect()
    }

    /// docker-compose's side.
    fn compose_side(&self) -> Result<BTreeMap<String, inspect::Fields>, String> {
        sides::compose_up(&self.prepared.compose, &self.project, &self.vars)
            .map_err(|e| format!("docker-compose up --no-start failed:\n{e}"))?;
        let prefixes = [self.project.clone()];
        let mut fields = self.fields(&sides::compose_containers(&self.project), &prefixes);
        for (svc, configs) in &self.prepared.configs {
            if let Some(f) = fields.get_mut(&service_key(svc)) {
                inspect::add_config_mounts(f, configs);
            }
        }
        for (svc, nets) in &self.prepared.networks {
            if let Some(f) = fields.get_mut(&service_key(svc)) {
                f.insert("Networks", serde_json::json!(nets));
            }
        }
        Ok(fields)
    }

    /// tomo's side, with `manifest` (the import's, or given).
    fn tomo_side(&self, tomo: &Tomo, manifest: Value) -> Result<BTreeMap<String, inspect::Fields>, String> {
        sides::tomo_apply(tomo, &self.app, &sides::stopped(manifest))?;
        let prefixes = [self.app.clone()];
        let mut found = sides::tomo_containers(&self.app);
        // A one-service app's container is the app's; compose names the service.
        if found.len() == 1
            && let Some(only) = prepare::load(&self.fx)["services"].as_object().and_then(|s| s.keys().next().cloned())
        {
            let c = found.pop_first().unwrap().1;
            found.insert(only, c);
        }
        Ok(self.fields(&found, &prefixes))
    }

    /// Both sides, compared; `manifest` replaces the import's when given.
    fn run(&self, manifest: Option<Value>) -> Result<Outcome, String> {
        let _guard = self.leftovers();
        let tomo = Tomo::new().env("DATA_DIRECTORY", "data").env("TOMO_LOG", "warn");
        let compose = self.compose_side()?;
        let (manifest, report) = match manifest {
            Some(m) => (m, Vec::<Entry>::new()),
            None => {
                let i = sides::import(&tomo, &self.prepared.tomo, &self.app, &self.vars)?;
                (i.manifest, i.report)
            }
        };
        let ours = self.tomo_side(&tomo, manifest)?;
        if std::env::var_os("TOMO_EQUIV_DUMP").is_some() {
            let dump =
                serde_json::json!({"app": self.fx.name, "compose": compose, "tomo": ours, "report": report.len()});
            eprintln!("{}", serde_json::to_string_pretty(&dump).unwrap());
        }
        Ok(compare::compare(&self.fx.name, &compose, &ours, &report))
    }
}

/// A tag unique to this process and call, for names on the shared Engine.
fn run_tag(kind: &str) -> String {
    format!("{}{kind}", std::process::id() % 100_000)
}

/// An app's outcome (or why it could not be compared) and its seconds.
type AppResult = (Result<Outcome, String>, f64);

/// Runs `apps` with a few workers; results in the apps' order.
fn run_all(apps: &[AppRun]) -> Vec<AppResult> {
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, AppResult>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(a) = apps.get(i) else { break };
                    let t = Instant::now();
                    let r =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.run(None))).unwrap_or_else(|p| {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                            Err(format!("panicked: {}", msg.unwrap_or_default()))
                        });
                    results.lock().unwrap().insert(i, (r, t.elapsed().as_secs_f64()));
                }
            });
        }
    });
    results.into_inner().unwrap().into_values().collect()
}

fn all_images(apps: &[AppRun]) -> Vec<String> {
    let mut all: Vec<String> = apps.iter().flat_map(|a| a.prepared.images.iter().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

/// `TOMO_EQUIV_APPS=Dify,Jellyfin` narrows a run while working on it; the
/// test then fails, so that a narrowed run is never taken for a pass.
fn selected() -> (Vec<Fixture>, bool) {
    let all = prepare::fixtures();
    assert_eq!(all.len(), 24, "the marketplace fixtures: {all:?}");
    match std::env::var("TOMO_EQUIV_APPS") {
        Ok(list) => {
            let want: Vec<&str> = list.split(',').collect();
            (all.into_iter().filter(|f| want.contains(&f.name.as_str())).collect(), true)
        }
        Err(_) => (all, false),
    }
}

fn summary(apps: &[AppRun], results: &[AppResult]) -> (String, usize) {
    let mut text = String::new();
    let mut failed = 0;
    for (a, (r, secs)) in apps.iter().zip(results) {
        let (verdict, detail) = match r {
            Ok(o) if o.failures.is_empty() => ("same", String::new()),
            Ok(o) => ("DIFFERENT", o.failures.iter().map(|f| format!("\n    {f}")).collect()),
            Err(e) => ("ERROR", format!("\n    {}", e.replace('\n', "\n    "))),
        };
        failed += usize::from(verdict != "same");
        let excused = r.as_ref().map(|o| o.excused.len()).unwrap_or(0);
        text.push_str(&format!("{:<28} {verdict:<9} {excused:>2} changed (report)  {secs:5.1}s{detail}\n", a.fx.name));
        if let Ok(o) = r {
            for e in &o.excused {
                text.push_str(&format!("    changed: {e}\n"));
            }
        }
    }
    (text, failed)
}

#[test]
fn every_fixture_app_creates_the_same_containers_with_tomo_as_with_docker_compose() {
    let start = Instant::now();
    let (fixtures, narrowed) = selected();
    let tag = run_tag("a");
    let apps: Vec<AppRun> = fixtures.into_iter().map(|fx| AppRun::new(fx, &tag)).collect();
    let _image = image::StandIn::load(&all_images(&apps));
    let results = run_all(&apps);
    let (text, failed) = summary(&apps, &results);
    let notes: Vec<&String> =
        apps.iter().flat_map(|a| &a.prepared.notes).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    println!("{text}\ncopies: {notes:#?}\n{} apps in {:.1}s", apps.len(), start.elapsed().as_secs_f64());
    assert_eq!(failed, 0, "{failed} of {} apps differ:\n{text}", apps.len());
    assert!(!narrowed, "TOMO_EQUIV_APPS narrowed the run to {} apps", apps.len());
}

/// The harness itself, on one app with a hand-written manifest: the same
/// containers compare equal, and a difference fails with a readable diff.
#[test]
fn the_comparison_finds_a_hand_written_manifest_equal_and_a_changed_one_different() {
    let fx = prepare::fixtures().into_iter().find(|f| f.name == "crafty").expect("the crafty fixture");
    let a = AppRun::new(fx, &run_tag("h"));
    let _image = image::StandIn::load(&a.prepared.images.iter().cloned().collect::<Vec<_>>());
    let host = a.host().join("DATA/AppData/big-bear-crafty/data");
    let manifest = |restart: &str| {
        let vols: Vec<String> =
            [("backups", "backups"), ("logs", "logs"), ("servers", "servers"), ("config", "app/config")]
                .into_iter()
                .chain([("import", "import")])
                .map(|(from, to)| format!("{}/{from}:/crafty/{to}", host.display()))
                .collect();
        serde_json::json!({
            "kind": "App", "name": a.app, "server": "local",
            "image": "registry.gitlab.com/crafty-controller/crafty-4:4.10.4",
            "restart": restart, "env": {"TZ": "UTC"},
            "ports": ["8443:8443", "8123:8123", "19132:19132/udp", "25500-25600:25500-25600"],
            "volumes": vols,
        })
    };
    let same = a.run(Some(manifest("unless-stopped"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(same.failures.is_empty(), "{:#?}", same.failures);
    let other = a.run(Some(manifest("always"))).unwrap_or_else(|e| panic!("{e}"));
    let [diff] = &other.failures[..] else { panic!("one difference expected: {:#?}", other.failures) };
    assert!(
        diff.starts_with("crafty/big-bear-crafty RestartPolicy:")
            && diff.contains("Name: compose \"unless-stopped\" / tomo \"always\""),
        "{diff}"
    );
}
