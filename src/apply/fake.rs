//! An in-memory Docker Engine for apply's unit tests. It keeps containers,
//! networks, volumes and images as a real Engine would (names are unique,
//! removing a missing container is 404), records every call in one log
//! (`start shop-web`, by the container's name at the time of the call), fails
//! scripted calls with a status code or a connect error, counts the calls in
//! flight (each takes `latency`), and can raise a stop flag at a given call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::observed::DataMount;
use crate::model::observed::{ImageObs, NetworkObs, VolumeObs};
use crate::model::secret::Secrets;
use crate::model::spec::ContainerSpec;
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::{ContainerObs, Health, Inventory, NetworkOptions, RunState, labels};
use crate::transport::docker::DockerError;
use crate::transport::engine::{EngineApi, Ready};

/// This fake Engine's installation id.
pub const INSTALLATION: &str = "fake-installation";

/// How a scripted call fails.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The Engine answers with this HTTP status.
    Status(u16),
    /// The Engine cannot be reached.
    Connect,
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    labels: BTreeMap<String, String>,
    state: RunState,
    exit_code: i64,
    networks: Vec<String>,
}

#[derive(Default)]
struct State {
    log: Vec<String>,
    next_id: u64,
    containers: BTreeMap<String, Container>,
    networks: BTreeMap<String, NetworkObs>,
    volumes: BTreeMap<String, VolumeObs>,
    images: Vec<ImageObs>,
    /// Call → how many more times it fails, and how.
    faults: BTreeMap<String, (usize, Fault)>,
    /// Names whose next created container exits with status 1 when started.
    crashes: Vec<String>,
    /// Host folders and files on the fake server: path → content (empty for folders).
    paths: BTreeMap<String, Vec<u8>>,
    stop_at: Option<(String, Arc<AtomicBool>)>,
    /// Scripted answers of host commands: (command line prefix, answer), each used once.
    host: Vec<(String, crate::transport::ssh::ExecOutput)>,
    /// What `engine_version` answers; `None`: the Engine is not reached.
    version: Option<String>,
}

impl State {
    /// A container's id from its id or name, as the Engine accepts either.
    fn id_of(&self, target: &str) -> Option<String> {
        if self.containers.contains_key(target) {
            return Some(target.to_string());
        }
        self.containers.iter().find(|(_, c)| c.name == target).map(|(id, _)| id.clone())
    }

    fn get(&mut self, op: &str, target: &str) -> Result<&mut Container, DockerError> {
        let id = self.id_of(target).ok_or_else(|| FakeEngine::not_found(op, target))?;
        Ok(self.containers.get_mut(&id).expect("just found"))
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    latency: Duration,
}

/// A cheap handle on one in-memory Engine (clones share it).
#[derive(Clone, Default)]
pub struct FakeEngine(Arc<Inner>);

impl FakeEngine {
    /// An Engine holding `images`; every call takes `latency`.
    pub fn new(images: &[&str], latency: Duration) -> FakeEngine {
        let fake = FakeEngine(Arc::new(Inner { latency, ..Default::default() }));
        fake.with(|s| {
            for (i, tag) in images.iter().enumerate() {
                s.images.push(ImageObs {
                    id: format!("sha256:{i:064x}"),
                    tags: vec![tag.to_string()],
                    digests: vec![],
                });
            }
        });
        fake
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The next `times` calls `call` (as logged) fail with `fault`.
    pub fn fail(&self, call: &str, fault: Fault, times: usize) {
        self.with(|s| s.faults.insert(call.to_string(), (times, fault)));
    }

    /// The next container created under `name` exits with status 1 when started.
    pub fn crash_on_start(&self, name: &str) {
        self.with(|s| s.crashes.push(name.to_string()));
    }

    /// Sets `flag` when `call` is made.
    pub fn stop_at(&self, call: &str, flag: Arc<AtomicBool>) {
        self.with(|s| s.stop_at = Some((call.to_string(), flag)));
    }

    /// The next host command whose line starts with `prefix` answers `status`, `stderr`.
    pub fn host_answer(&self, prefix: &str, status: u32, stderr: &str) {
        let out =
            crate::transport::ssh::ExecOutput { stdout: String::new(), stderr: stderr.into(), status: Some(status) };
        self.with(|s| s.host.push((prefix.to_string(), out)));
    }

    /// What the Engine reports as its version (`None`: it does not answer).
    pub fn set_version(&self, v: Option<&str>) {
        self.with(|s| s.version = v.map(str::to_string));
    }

    /// Appends a line to the log (the tests' sink notes actions there).
    pub fn note(&self, line: String) {
        self.with(|s| s.log.push(line));
    }

    /// Every call and note so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// Forgets the log (after setting the scene).
    pub fn clear_log(&self) {
        self.with(|s| s.log.clear());
    }

    /// The most calls that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.0.most_in_flight.load(Ordering::SeqCst)
    }

    /// The content of a file (or folder: empty) on the fake server.
    pub fn path(&self, path: &str) -> Option<Vec<u8>> {
        self.with(|s| s.paths.get(path).cloned())
    }

    /// (name, id, state) of every container, by name.
    pub fn containers(&self) -> Vec<(String, String, RunState)> {
        let mut all: Vec<_> =
            self.with(|s| s.containers.iter().map(|(id, c)| (c.name.clone(), id.clone(), c.state)).collect());
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Logs `call`, takes the latency, then fails it if scripted.
    async fn call(&self, op: &str, call: String) -> Result<(), DockerError> {
        let fault = self.with(|s| {
            s.log.push(call.clone());
            if let Some((at, flag)) = &s.stop_at
                && *at == call
            {
                flag.store(true, Ordering::SeqCst);
            }
            match s.faults.get_mut(&call) {
                Some((n, f)) if *n > 0 => {
                    *n -= 1;
                    Some(*f)
                }
                _ => None,
            }
        });
        let now = self.0.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.0.latency).await;
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        match fault {
            None => Ok(()),
            Some(Fault::Connect) => {
                Err(DockerError::Connect { endpoint: "fake".into(), detail: format!("{call}: connection refused") })
            }
            Some(Fault::Status(status)) => Err(DockerError::Api {
                op: op.to_string(),
                detail: format!("{call}: scripted {status}"),
                status: Some(status),
            }),
        }
    }

    fn new_id(s: &mut State) -> String {
        s.next_id += 1;
        // Distinct in their first 12 characters, as `short` shows them.
        format!("{:012x}{}", s.next_id, "f".repeat(52))
    }

    /// The container's name, for the log (its id when unknown).
    fn name_of(&self, id: &str) -> String {
        self.with(|s| s.id_of(id).map_or_else(|| id.to_string(), |i| s.containers[&i].name.clone()))
    }

    fn not_found(op: &str, id: &str) -> DockerError {
        DockerError::Api { op: op.to_string(), detail: format!("No such container: {id}"), status: Some(404) }
    }
}

impl EngineApi for FakeEngine {
    /// The container's name, image and labels.
    type Prepared = (String, BTreeMap<String, String>);

    fn redactor(&self) -> &crate::redact::Redactor {
        static NONE: std::sync::OnceLock<crate::redact::Redactor> = std::sync::OnceLock::new();
        NONE.get_or_init(Default::default)
    }

    fn redacting(&self, _: std::sync::Arc<crate::redact::Redactor>) -> Self {
        self.clone()
    }

    async fn inventory_once(&self) -> Result<Inventory, DockerError> {
        self.call("list", "list".into()).await?;
        Ok(self.with(|s| Inventory {
            containers: s
                .containers
                .iter()
                .map(|(id, c)| ContainerObs {
                    id: id.clone(),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    image_id: s
                        .images
                        .iter()
                        .find(|i| i.tags.contains(&c.image))
                        .map_or_else(String::new, |i| i.id.clone()),
                    state: c.state,
                    health: None,
                    exit_code: (c.state == RunState::Exited).then_some(c.exit_code),
                    labels: c.labels.clone(),
                    ours: c.labels.get(labels::INSTALLATION).is_some_and(|i| i == INSTALLATION),
                    mounts: Vec::new(),
                    networks: c.networks.clone(),
                })
                .collect(),
            networks: s.networks.values().cloned().collect(),
            others: Vec::new(),
            volumes: s.volumes.values().cloned().collect(),
            images: s.images.clone(),
            taken: Vec::new(),
            missing_paths: Vec::new(),
        }))
    }

    async fn pull(&self, image: &str) -> Result<(), DockerError> {
        self.call("pull", format!("pull {image}")).await?;
        self.with(|s| {
            if !s.images.iter().any(|i| i.tags.iter().any(|t| t == image)) {
                let id = format!("sha256:{}", FakeEngine::new_id(s));
                s.images.push(ImageObs { id, tags: vec![image.to_string()], digests: vec![] });
            }
        });
        Ok(())
    }

    async fn create_network(
        &self,
        name: &str,
        app: Option<&str>,
        _server: &str,
        subnet: Option<Subnet>,
        _pool: Option<NetworkPool>,
        options: &NetworkOptions,
    ) -> Result<String, DockerError> {
        self.call("create network", format!("create network {name}")).await?;
        Ok(self.with(|s| {
            if let Some(n) = s.networks.values().find(|n| n.name == name) {
                return n.id.clone();
            }
            let id = FakeEngine::new_id(s);
            let mut l = BTreeMap::from([(labels::INSTALLATION.to_string(), INSTALLATION.to_string())]);
            l.extend(app.map(|a| (labels::APP.to_string(), a.to_string())));
            s.networks.insert(
                id.clone(),
                NetworkObs {
                    id: id.clone(),
                    name: name.into(),
                    labels: l,
                    subnet,
                    created: String::new(),
                    options: Some(options.clone()),
                },
            );
            id
        }))
    }

    async fn remove_network(&self, id: &str) -> Result<(), DockerError> {
        let name = self.with(|s| s.networks.get(id).map_or_else(|| id.to_string(), |n| n.name.clone()));
        self.call("remove network", format!("remove network {name}")).await?;
        self.with(|s| s.networks.remove(id));
        Ok(())
    }

    async fn create_volume_once(&self, name: &str, app: Option<&str>, _server: &str) -> Result<(), DockerError> {
        self.call("create volume", format!("create volume {name}")).await?;
        let mut l = BTreeMap::from([(labels::INSTALLATION.to_string(), INSTALLATION.to_string())]);
        l.extend(app.map(|a| (labels::APP.to_string(), a.to_string())));
        self.with(|s| s.volumes.insert(name.to_string(), VolumeObs { name: name.to_string(), labels: l }));
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        self.call("remove volume", format!("remove volume {name}")).await?;
        self.with(|s| s.volumes.remove(name));
        Ok(())
    }

    async fn host_command(
        &self,
        argv: &[String],
        sudo: bool,
        _timeout: Duration,
    ) -> Result<crate::transport::ssh::ExecOutput, DockerError> {
        let line = crate::model::host::command_line(argv, sudo);
        self.call("host", format!("host {line}")).await?;
        Ok(self.with(|s| match s.host.iter().position(|(p, _)| line.starts_with(p.as_str())) {
            Some(i) => s.host.remove(i).1,
            None => crate::transport::ssh::ExecOutput { stdout: String::new(), stderr: String::new(), status: Some(0) },
        }))
    }

    async fn engine_version(&self) -> Result<String, DockerError> {
        self.call("version", "version".into()).await?;
        self.with(|s| s.version.clone())
            .ok_or_else(|| DockerError::Connect { endpoint: "fake".into(), detail: "no Engine".into() })
    }

    async fn missing_paths(&self, paths: &[String]) -> Result<Vec<String>, DockerError> {
        Ok(self.with(|s| paths.iter().filter(|p| !s.paths.contains_key(*p)).cloned().collect()))
    }

    async fn create_dir(
        &self,
        path: &str,
        _owner: Option<(u32, Option<u32>)>,
        _mode: Option<u32>,
    ) -> Result<(), DockerError> {
        self.call("create dir", format!("create dir {path}")).await?;
        self.with(|s| s.paths.insert(path.to_string(), Vec::new()));
        Ok(())
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        _mode: u32,
        _uid: Option<u32>,
        _gid: Option<u32>,
    ) -> Result<(), DockerError> {
        self.call("write file", format!("write file {path}")).await?;
        self.with(|s| s.paths.insert(path.to_string(), content.to_vec()));
        Ok(())
    }

    async fn prepare_container(
        &self,
        spec: &ContainerSpec,
        hash: &str,
        redacted: &serde_json::Value,
        _secrets: &dyn Secrets,
        _keeps: &[DataMount],
    ) -> Result<Self::Prepared, DockerError> {
        let mut l = BTreeMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::INSTALLATION.to_string(), INSTALLATION.to_string()),
            (labels::APP.to_string(), spec.app.to_string()),
            (labels::SERVICE.to_string(), spec.service.to_string()),
            (labels::SERVER.to_string(), spec.server.to_string()),
            (labels::SPEC_HASH.to_string(), hash.to_string()),
            (labels::SPEC.to_string(), redacted.to_string()),
        ]);
        l.extend(spec.labels.clone());
        let network = self.with(|s| s.networks.values().find(|n| n.name == spec.network).map(|n| n.id.clone()));
        l.insert("fake.network".into(), network.unwrap_or_default());
        Ok((spec.image.clone(), l))
    }

    async fn create_container_once(
        &self,
        name: &str,
        (image, l): &Self::Prepared,
        _hash: &str,
    ) -> Result<String, DockerError> {
        self.call("create", format!("create {name}")).await?;
        self.with(|s| {
            if s.containers.values().any(|c| c.name == name) {
                return Err(DockerError::Api {
                    op: format!("create container {name}"),
                    detail: format!("Conflict. The container name \"/{name}\" is already in use"),
                    status: Some(409),
                });
            }
            let id = FakeEngine::new_id(s);
            let crashes = s.crashes.iter().position(|c| c == name).map(|i| s.crashes.remove(i)).is_some();
            let mut labels = l.clone();
            let networks = labels.remove("fake.network").into_iter().filter(|n| !n.is_empty()).collect();
            if crashes {
                labels.insert("fake.crashes".into(), "true".into());
            }
            let c = Container {
                name: name.into(),
                image: image.clone(),
                labels,
                state: RunState::Created,
                exit_code: 0,
                networks,
            };
            s.containers.insert(id.clone(), c);
            Ok(id)
        })
    }

    async fn connect_networks(&self, id: &str, spec: &ContainerSpec) -> Result<(), DockerError> {
        for n in &spec.networks {
            self.call("connect", format!("connect {} {n}", self.name_of(id))).await?;
        }
        Ok(())
    }

    async fn start_once(&self, id: &str) -> Result<(), DockerError> {
        self.call("start", format!("start {}", self.name_of(id))).await?;
        self.with(|s| {
            let c = s.get("start", id)?;
            (c.state, c.exit_code) =
                if c.labels.contains_key("fake.crashes") { (RunState::Exited, 1) } else { (RunState::Running, 0) };
            Ok(())
        })
    }

    async fn stop_once(&self, id: &str, _timeout: Duration) -> Result<(), DockerError> {
        self.call("stop", format!("stop {}", self.name_of(id))).await?;
        self.with(|s| {
            let c = s.get("stop", id)?;
            if c.state == RunState::Running {
                (c.state, c.exit_code) = (RunState::Exited, 0);
            }
            Ok(())
        })
    }

    async fn remove_once(&self, id: &str) -> Result<(), DockerError> {
        self.call("remove", format!("remove {}", self.name_of(id))).await?;
        self.with(|s| {
            let id = s.id_of(id).ok_or_else(|| FakeEngine::not_found("remove", id))?;
            s.containers.remove(&id);
            Ok(())
        })
    }

    async fn rename_once(&self, id: &str, new_name: &str) -> Result<(), DockerError> {
        self.call("rename", format!("rename {} {new_name}", self.name_of(id))).await?;
        self.with(|s| {
            if s.containers.values().any(|c| c.name == new_name) {
                return Err(DockerError::Api {
                    op: format!("rename to {new_name}"),
                    detail: "name in use".into(),
                    status: Some(409),
                });
            }
            s.get("rename", id)?.name = new_name.to_string();
            Ok(())
        })
    }

    async fn state(&self, id: &str) -> Result<(RunState, Option<Health>, i64), DockerError> {
        self.call("inspect", format!("inspect {}", self.name_of(id))).await?;
        self.with(|s| s.get("inspect", id).map(|c| (c.state, None, c.exit_code)))
    }

    /// Fake containers print nothing.
    async fn last_logs(&self, _id: &str, _lines: u32) -> Result<String, DockerError> {
        Ok(String::new())
    }

    async fn never_started(&self, id: &str) -> Result<bool, DockerError> {
        self.call("inspect", format!("inspect {}", self.name_of(id))).await?;
        self.with(|s| s.get("inspect", id).map(|c| c.state == RunState::Created))
    }

    /// Containers here change state only by calls, so a state that is not
    /// final now never becomes final: that is the timeout.
    async fn wait_for(&self, id: &str, timeout: Duration, ready: &Ready) -> Result<(), DockerError> {
        let (run, health, code) = self.state(id).await?;
        match ready(run, health, code) {
            Some(r) => r.map_err(|why| DockerError::NotReady { id: self.name_of(id), why }),
            None => Err(DockerError::NotReady {
                id: self.name_of(id),
                why: crate::transport::docker::NotReady::Late {
                    secs: timeout.as_secs(),
                    state: "created",
                    health: "none",
                },
            }),
        }
    }
}
