//! The Docker Engine API of one server (bollard): list calls for observation,
//! and the few mutations apply needs. Health and exit are awaited through the
//! Engine's event stream, never by sleeping.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EventMessage, EventMessageTypeEnum, HealthConfig, HostConfig,
    Mount, MountType, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::engine::EngineApi;
use crate::model::observed::DataMount;

use crate::model::observed::{ImageObs, MountKind, MountObs, NetworkObs, VolumeObs};
use crate::model::secret::Secrets;
use crate::model::spec::{ContainerSpec, SpecMountKind};
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::{ContainerObs, Health, Inventory, NetworkOptions, Protocol, Restart, RunState, labels};

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker Engine at {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("{op}: {detail}")]
    Api { op: String, detail: String, status: Option<u16> },
    /// A start refused because the runtime still holds a task (or container)
    /// of that id, as an Engine restart mid-start can leave (moby/moby#40613).
    /// Retrying does not help; the container can never start.
    #[error("{op}: {detail} (a stale runtime task, left by an Engine restart)")]
    StaleTask { op: String, detail: String },
    #[error("{op}: the Docker Engine answered with something that is not the expected JSON: {detail}")]
    Malformed { op: String, detail: String },
    #[error("{op}: {}", super::http::TooLarge { limit: *limit })]
    TooLarge { op: String, limit: u64 },
    #[error("{op}: {}", super::http::Late { secs: *secs })]
    Late { op: String, secs: u64 },
    #[error("refused to send `{op}` with {what} {value:?} from the server: not a valid Docker {what}")]
    Invalid { op: String, what: &'static str, value: String },
    /// A pull the Engine reported failed inside its progress stream.
    #[error("pull {image}: {detail}")]
    Pull { image: String, detail: String },
    /// Every block of the pool was taken meanwhile, `attempts` times.
    #[error("create network {network}: no free subnet after {attempts} attempts")]
    NoFreeSubnet { network: String, attempts: u32 },
    /// A started container did not reach what it had to.
    #[error("container {id} {why}")]
    NotReady { id: String, why: NotReady },
    #[error("the Engine sent no stats for {container}")]
    NoStats { container: String },
    /// The container's spec cannot be sent (a secret it needs is not available).
    #[error("{0}")]
    Spec(String),
    /// A create refused because the server's Engine has no such runtime.
    #[error(
        "{op}: the Docker Engine of this server has no runtime `{runtime}` ({detail}); install it \
         (for `nvidia`, the NVIDIA Container Toolkit) or change the service's `runtime`"
    )]
    UnknownRuntime { op: String, runtime: String, detail: String },
    /// A command on the server's filesystem (a folder, a config file) failed.
    #[error("{0}")]
    Host(String),
}

/// Why a started container is not what it had to become.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("became unhealthy")]
    Unhealthy,
    #[error("exited before becoming healthy")]
    ExitedUnhealthy,
    #[error("exited with status {0}")]
    Exited(i64),
    #[error("restarted (its restart policy brought it back after it exited)")]
    Restarted,
    #[error("did not become ready within {secs}s (state {state}, health {health})")]
    Late { secs: u64, state: &'static str, health: &'static str },
}

impl DockerError {
    pub(super) fn api(op: impl Into<String>, e: bollard::errors::Error) -> DockerError {
        let op = op.into();
        match DockerError::answer(op.clone(), &e) {
            Some(other) => other,
            None => DockerError::api_status(op, e),
        }
    }

    /// An answer that came but was too large or not the JSON it should be.
    fn answer(op: String, e: &bollard::errors::Error) -> Option<DockerError> {
        use bollard::errors::Error as B;
        if let Some(limit) = super::http::too_large(e) {
            return Some(DockerError::TooLarge { op, limit });
        }
        if let Some(late) = super::http::find::<super::http::Late>(e) {
            return Some(DockerError::Late { op, secs: late.secs });
        }
        match e {
            B::JsonDataError { message, .. } => Some(DockerError::Malformed { op, detail: message.clone() }),
            B::JsonSerdeError { err } => Some(DockerError::Malformed { op, detail: err.to_string() }),
            _ => None,
        }
    }

    fn api_status(op: String, e: bollard::errors::Error) -> DockerError {
        let status = match &e {
            bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        };
        let detail = match e {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message,
            other => other.to_string(),
        };
        DockerError::Api { op, detail, status }
    }

    /// The Engine's refusal of a start (or restart), typed. The Engine
    /// reports a runtime object left by its restart only as HTTP 500 (409
    /// from some versions) carrying the runtime's text: containerd's
    /// `AlreadyExists` (`task <id>: already exists`, `container "<id>":
    /// already exists`), `id already in use`, runc's `container with id
    /// exists`, or the shim's leftover bundle folder (`file exists`). That
    /// answer is recognised here, once; callers match on `StaleTask`.
    pub(super) fn start_refused(op: String, status: u16, detail: String) -> DockerError {
        if stale_runtime_object(status, &detail) {
            DockerError::StaleTask { op, detail }
        } else {
            DockerError::Api { op, detail, status: Some(status) }
        }
    }

    /// This error with every secret of `r` masked in its texts (what a
    /// server answered may echo what it was sent).
    pub fn redacted(self, r: &crate::redact::Redactor) -> DockerError {
        if r.is_empty() {
            return self;
        }
        let m = |t: String| r.apply(&t);
        match self {
            DockerError::Connect { endpoint, detail } => DockerError::Connect { endpoint, detail: m(detail) },
            DockerError::Api { op, detail, status } => DockerError::Api { op: m(op), detail: m(detail), status },
            DockerError::StaleTask { op, detail } => DockerError::StaleTask { op: m(op), detail: m(detail) },
            DockerError::Malformed { op, detail } => DockerError::Malformed { op: m(op), detail: m(detail) },
            DockerError::TooLarge { op, limit } => DockerError::TooLarge { op: m(op), limit },
            DockerError::Late { op, secs } => DockerError::Late { op: m(op), secs },
            DockerError::Invalid { op, what, value } => DockerError::Invalid { op: m(op), what, value: m(value) },
            DockerError::Pull { image, detail } => DockerError::Pull { image, detail: m(detail) },
            DockerError::Spec(text) => DockerError::Spec(m(text)),
            DockerError::UnknownRuntime { op, runtime, detail } => {
                DockerError::UnknownRuntime { op: m(op), runtime, detail: m(detail) }
            }
            DockerError::Host(text) => DockerError::Host(m(text)),
            e @ (DockerError::NoFreeSubnet { .. } | DockerError::NotReady { .. } | DockerError::NoStats { .. }) => e,
        }
    }

    /// Whether a start was refused for a stale runtime task.
    pub fn is_stale_task(&self) -> bool {
        matches!(self, DockerError::StaleTask { .. })
    }

    /// Whether the Engine answered "not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::Api { status: Some(404), .. })
    }

    /// Worth another try: the Engine could not be reached, timed out, or
    /// answered 5xx. A 4xx (bad request, conflict, not found) is final.
    pub fn is_transient(&self) -> bool {
        match self {
            DockerError::Connect { .. } => true,
            DockerError::Api { status: Some(s), .. } => *s >= 500,
            DockerError::Api { status: None, .. } => true,
            DockerError::StaleTask { .. }
            | DockerError::Pull { .. }
            | DockerError::NoFreeSubnet { .. }
            | DockerError::NotReady { .. }
            | DockerError::NoStats { .. }
            | DockerError::Spec(_)
            | DockerError::UnknownRuntime { .. }
            | DockerError::Host(_)
            | DockerError::Malformed { .. }
            | DockerError::TooLarge { .. }
            | DockerError::Late { .. }
            | DockerError::Invalid { .. } => false,
        }
    }
}

/// The Engine's refusal of a runtime it does not have: `Unknown runtime
/// specified X` (Engine 20-26), `unknown or invalid runtime name: X` (later).
fn unknown_runtime(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("unknown runtime specified") || d.contains("unknown or invalid runtime name")
}

/// The stale-runtime-object family of refused starts (see `start_refused`).
/// Only a start's answer is classified, so a name conflict on create, or a
/// port in use (`address already in use`), is never taken for one.
fn stale_runtime_object(status: u16, detail: &str) -> bool {
    let m = detail.to_ascii_lowercase();
    matches!(status, 409 | 500)
        && (m.contains("already exists")
            || m.contains("id already in use")
            || m.contains("container with id exists")
            || (m.contains("shim") && m.contains("file exists")))
}

/// Attempts of a Docker call before a transient failure is reported.
const ATTEMPTS: u32 = 4;

/// Runs `f`, again on transient failures, with exponential backoff (100 ms,
/// 200 ms, 400 ms) plus jitter. `op` names the call for fault injection and
/// logs. Errors are redacted with `redact` before they are logged or returned.
pub(super) async fn retrying<T, F, Fut>(redact: &crate::redact::Redactor, op: &str, mut f: F) -> Result<T, DockerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DockerError>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let result = match crate::faults::docker(op) {
            Some(injected) => Err(DockerError::Api { op: op.to_string(), detail: injected, status: Some(503) }),
            None => f().await,
        }
        .map_err(|e| e.redacted(redact));
        match result {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                let jitter = Duration::from_millis(u64::from(std::process::id().wrapping_mul(attempt)) % 50);
                tracing::warn!(op, attempt, error = %e, "transient Docker failure; retrying");
                tokio::time::sleep(delay + jitter).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

/// A client for one server's Docker Engine.
#[derive(Clone)]
pub struct DockerClient {
    pub(super) docker: Docker,
    endpoint: String,
    /// This tomo installation's id, put on and looked for in labels.
    pub(super) installation: String,
    /// The SSH connection a remote Engine is reached over (for its routes).
    session: Option<std::sync::Arc<super::ssh::SshSession>>,
    /// Subnets this process is creating networks with; replacing a taken
    /// one happens under the lock, so two creates never pick the same.
    claimed: std::sync::Arc<tokio::sync::Mutex<Vec<Subnet>>>,
    /// Secret values masked in the errors of retried calls (`redacting`).
    redact: std::sync::Arc<crate::redact::Redactor>,
    /// Run the server's filesystem commands (folders, files) through `sudo -n`.
    sudo: bool,
    /// Each call's time to answer.
    timeout: Duration,
}

impl DockerClient {
    /// The loop of `wait_for`, without its deadline; `last` is the state last seen.
    async fn settle(
        &self,
        id: &str,
        done: &super::engine::Ready,
        last: &mut Option<(RunState, Option<Health>)>,
    ) -> Result<(), Settle> {
        let mut events = None;
        loop {
            let (run, health, code) = self.state(id).await.map_err(Settle::Call)?;
            *last = Some((run, health));
            if let Some(r) = done(run, health, code) {
                return r.map_err(Settle::Done);
            }
            match &events {
                // Watching starts after the first check, which usually suffices;
                // the check after it sees what happened meanwhile.
                None => {
                    let filters: HashMap<String, Vec<String>> = HashMap::from([
                        ("type".to_string(), vec!["container".to_string()]),
                        ("container".to_string(), vec![id.to_string()]),
                    ]);
                    let target = id.to_string();
                    events = Some(self.watch_events(filters, move |e| {
                        e.actor.as_ref().and_then(|a| a.id.as_deref()) == Some(target.as_str())
                            || actor_name(e) == Some(target.as_str())
                    }));
                }
                Some(events) => events.changed().await,
            }
        }
    }

    /// The Engine's events that `relevant` picks (the server is asked to
    /// filter with `filters`; a hostile one may not), read by a task of their own.
    fn watch_events(
        &self,
        filters: HashMap<String, Vec<String>>,
        relevant: impl Fn(&EventMessage) -> bool + Send + 'static,
    ) -> EventWatch {
        EventWatch::start(self.docker.clone(), filters, relevant, self.redact.clone(), self.endpoint.clone())
    }

    /// Whether container `id` is connected to the network `target` (a name
    /// or id; `network_id` when known).
    async fn joined(&self, id: &str, target: &str, network_id: Option<&str>) -> Result<bool, DockerError> {
        segment("inspect", "id", id)?;
        let c = self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|e| DockerError::api(format!("inspect {}", short(id)), e))?;
        let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
        Ok(networks.iter().any(|(name, endpoint)| {
            let joined = endpoint.network_id.as_deref();
            name == target || joined == Some(target) || (network_id.is_some() && joined == network_id)
        }))
    }

    /// Connects to a local Unix socket (the `local` server); each call gets
    /// `timeout` for its complete answer (streams excepted).
    pub fn local(socket: &str, installation: &str, timeout: Duration) -> Result<DockerClient, DockerError> {
        let path = socket.to_string();
        let transport = move |req: bollard::BollardRequest| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&path).await?;
                super::http::exchange(stream, req, timeout).await
            }
        };
        let docker = Docker::connect_with_custom_transport(
            transport,
            Some("http://docker.local"),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| DockerError::Connect { endpoint: socket.to_string(), detail: e.to_string() })?;
        Ok(DockerClient {
            docker,
            endpoint: socket.to_string(),
            installation: installation.to_string(),
            session: None,
            claimed: Default::default(),
            redact: Default::default(),
            sudo: false,
            timeout,
        })
    }

    /// The Docker Engine at `socket` on the far side of an SSH connection.
    pub fn over_ssh(
        session: std::sync::Arc<super::ssh::SshSession>,
        socket: &str,
        installation: &str,
        timeout: Duration,
    ) -> Result<DockerClient, DockerError> {
        let endpoint = format!("{}:{socket}", session.addr());
        let docker = super::docker_ssh::docker_over_ssh(session.clone(), socket, timeout)
            .map_err(|e| DockerError::Connect { endpoint: endpoint.clone(), detail: e.to_string() })?;
        Ok(DockerClient {
            docker,
            endpoint,
            installation: installation.to_string(),
            session: Some(session),
            claimed: Default::default(),
            redact: Default::default(),
            sudo: false,
            timeout,
        })
    }

    /// This client, running filesystem commands on the server through `sudo -n`.
    pub fn with_sudo(mut self, sudo: bool) -> DockerClient {
        self.sudo = sudo;
        self
    }

    /// The server's filesystem: this machine, or over the SSH connection.
    pub fn host_fs(&self) -> super::hostfs::HostFs {
        super::hostfs::HostFs { session: self.session.clone(), sudo: self.sudo, timeout: self.timeout }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `retrying` with this client's redaction.
    async fn retry<T, F, Fut>(&self, op: &str, f: F) -> Result<T, DockerError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DockerError>>,
    {
        retrying(&self.redact, op, f).await
    }

    pub async fn version(&self) -> Result<String, DockerError> {
        let v = self.docker.version().await.map_err(|e| self.unreachable("version", e))?;
        Ok(v.version.unwrap_or_default())
    }

    /// `e` of call `op`: an answer too large or malformed is reported as
    /// such; anything else means the Engine was not reached.
    pub(super) fn unreachable(&self, op: &str, e: bollard::errors::Error) -> DockerError {
        let op = format!("{op} on {}", self.endpoint);
        match DockerError::answer(op.clone(), &e) {
            Some(answer) => answer,
            None if matches!(e, bollard::errors::Error::DockerResponseServerError { .. }) => {
                DockerError::api_status(op, e)
            }
            None => DockerError::Connect { endpoint: self.endpoint.clone(), detail: e.to_string() },
        }
    }

    /// This installation's networks, other installations' networks, and the
    /// IPv4 ranges in use besides ours: other networks' subnets and the
    /// server's routes (less those of Docker's own bridges, which are the
    /// networks' subnets again).
    fn split_networks(
        &self,
        all: Vec<bollard::models::Network>,
        routes: Vec<Subnet>,
    ) -> (Vec<NetworkObs>, Vec<NetworkObs>, Vec<Subnet>) {
        let mut ours = Vec::new();
        let mut others = Vec::new();
        let mut taken = Vec::new();
        let mut subnets = Vec::new();
        for n in all {
            let options = Some(NetworkOptions::observed(
                n.internal.unwrap_or(false),
                n.driver.clone(),
                n.options.clone().unwrap_or_default().into_iter().collect(),
            ));
            let labels: BTreeMap<String, String> = n.labels.unwrap_or_default().into_iter().collect();
            let subnet = n
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.subnet.and_then(|s| Subnet::parse_lenient(&s)))
                .next();
            subnets.extend(subnet);
            if labels.get(labels::INSTALLATION) == Some(&self.installation) {
                let (id, name) = (n.id.unwrap_or_default(), n.name.unwrap_or_default());
                if !is_id(&id) {
                    self.skipped::<()>("network", "id", &id);
                    continue;
                }
                if !is_name(&name) {
                    self.skipped::<()>("network", "name", &name);
                    continue;
                }
                ours.push(NetworkObs { id, name, labels, subnet, created: n.created.unwrap_or_default(), options });
            } else {
                taken.extend(subnet);
                let id = n.id.unwrap_or_default();
                let name = n.name.unwrap_or_default();
                if labels.contains_key(labels::INSTALLATION) && is_id(&id) && is_name(&name) {
                    let created = n.created.unwrap_or_default();
                    others.push(NetworkObs { id, name, labels, subnet, created, options });
                }
            }
        }
        taken.extend(routes.into_iter().filter(|r| !subnets.contains(r)));
        taken.sort();
        taken.dedup();
        (ours, others, taken)
    }

    /// The id of this installation's network named `name` (of duplicates the
    /// oldest, the one the plan keeps), if there is one.
    pub async fn our_network(&self, name: &str) -> Result<Option<String>, DockerError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([
            ("label".to_string(), vec![format!("{}={}", labels::INSTALLATION, self.installation)]),
            ("name".to_string(), vec![name.to_string()]),
        ]);
        let found = self
            .retry("list", || async {
                self.docker
                    .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filters).build()))
                    .await
                    .map_err(|e| DockerError::api("list networks", e))
            })
            .await?;
        // The name filter matches substrings.
        let mut exact: Vec<NetworkObs> = found
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| NetworkObs {
                id: n.id.unwrap_or_default(),
                name: name.to_string(),
                labels: BTreeMap::new(),
                subnet: None,
                created: n.created.unwrap_or_default(),
                options: None,
            })
            .collect();
        exact.sort_by(|a, b| a.age_key().cmp(&b.age_key()));
        Ok(exact.into_iter().next().map(|n| n.id))
    }

    /// How a container joins the network `name`: this installation's network
    /// by id (the Engine then never looks the name up, which duplicates would
    /// make ambiguous); any other (an external one) by name.
    pub async fn network_ref(&self, name: &str) -> Result<(String, Option<String>), DockerError> {
        Ok(match self.our_network(name).await? {
            Some(id) => (id.clone(), Some(id)),
            None => (name.to_string(), None),
        })
    }

    pub(super) fn container_obs(&self, c: bollard::models::ContainerSummary, id: String, name: String) -> ContainerObs {
        let status = c.status.unwrap_or_default();
        let labels: BTreeMap<String, String> = c.labels.unwrap_or_default().into_iter().collect();
        let ours = labels.get(labels::MANAGED).is_some_and(|v| v == "true")
            && labels.get(labels::INSTALLATION) == Some(&self.installation);
        let mut networks: Vec<String> = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_values()
            .filter_map(|e| e.network_id)
            .collect();
        networks.sort();
        ContainerObs {
            id,
            name,
            image: c.image.unwrap_or_default(),
            image_id: c.image_id.unwrap_or_default(),
            state: run_state(c.state),
            health: health_from_status(&status),
            exit_code: exit_code_from_status(&status),
            labels,
            ours,
            mounts: mounts(c.mounts.unwrap_or_default()),
            networks,
        }
    }

    /// An object the server listed with an id or name no Engine gives: left
    /// out of the inventory (so nothing is ever sent about it), with a warning.
    pub(super) fn skipped<T>(&self, kind: &str, what: &str, value: &str) -> Option<T> {
        let shown: String = value.chars().take(80).collect();
        tracing::warn!(
            endpoint = %self.endpoint,
            "the Docker Engine at {} listed a {kind} with an invalid {what} {shown:?}; ignoring it",
            self.endpoint
        );
        None
    }

    /// After the Engine refused `subnet`: whether the network holding it is
    /// this installation's `name` (a create a killed run had sent, finishing
    /// now). A holder the Engine does not list yet is still being created:
    /// its create event is awaited (at most 30 s: a loaded Engine can take
    /// that long), never slept for.
    async fn holder_is_ours(&self, name: &str, subnet: Option<Subnet>) -> Result<Option<String>, DockerError> {
        let Some(subnet) = subnet else { return Ok(None) };
        let filters: HashMap<String, Vec<String>> = HashMap::from([
            ("type".to_string(), vec!["network".to_string()]),
            ("event".to_string(), vec!["create".to_string()]),
        ]);
        let events = self.watch_events(filters, |e| {
            e.typ == Some(EventMessageTypeEnum::NETWORK) && e.action.as_deref() == Some("create")
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let all = self
                .docker
                .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                .await
                .map_err(|e| DockerError::api("list networks", e))?;
            let holder = all.into_iter().find(|n| {
                n.ipam.as_ref().and_then(|i| i.config.as_ref()).is_some_and(|c| {
                    c.iter()
                        .filter_map(|c| c.subnet.as_deref().and_then(Subnet::parse_lenient))
                        .any(|s| s.overlaps(subnet))
                })
            });
            if let Some(n) = holder {
                let ours = n.labels.as_ref().and_then(|l| l.get(labels::INSTALLATION)) == Some(&self.installation);
                return Ok((ours && n.name.as_deref() == Some(name)).then(|| n.id.unwrap_or_default()));
            }
            if !events.event_before(deadline).await {
                return Ok(None);
            }
        }
    }

    async fn create_network_once(
        &self,
        name: &str,
        app: Option<&str>,
        server: &str,
        subnet: Option<Subnet>,
        options: &NetworkOptions,
    ) -> Result<String, DockerError> {
        self.retry("create-network", || async {
            let req = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some(options.driver().to_string()),
                internal: options.internal.then_some(true),
                options: (!options.driver_opts.is_empty())
                    .then(|| options.driver_opts.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                labels: Some(object_labels(app, None, server, &self.installation)),
                ipam: subnet.map(|s| bollard::models::Ipam {
                    config: Some(vec![bollard::models::IpamConfig {
                        subnet: Some(s.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match self.docker.create_network(req).await {
                Ok(r) => Ok(r.id),
                Err(e) => Err(DockerError::api(format!("create network {name}"), e)),
            }
        })
        .await
    }

    /// Every IPv4 range in use on the server: all networks' subnets and the routes.
    async fn used_ranges(&self) -> Result<Vec<Subnet>, DockerError> {
        let all = self
            .retry("list", || async {
                self.docker
                    .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                    .await
                    .map_err(|e| DockerError::api("list networks", e))
            })
            .await?;
        let routes = super::routes::routes(self.session.as_ref()).await;
        let (ours, _, mut taken) = self.split_networks(all, routes);
        taken.extend(ours.iter().filter_map(|n| n.subnet));
        Ok(taken)
    }

    /// The id of the container named `name` if it is this installation's and
    /// has exactly the spec `hash`.
    async fn same_container(&self, name: &str, hash: &str) -> Option<String> {
        let c = self
            .docker
            .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .ok()?;
        let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
        let ours = labels.get(labels::INSTALLATION) == Some(&self.installation);
        (ours && labels.get(labels::SPEC_HASH).map(String::as_str) == Some(hash)).then(|| c.id.unwrap_or_default())
    }

    /// After "name in use": the id of the container holding `name` if it is
    /// exactly ours (see `same_container`), or of the one `body` makes once
    /// the name is free again. The Engine reserves a name before the
    /// container can be inspected; a create still under way (one a killed
    /// run had sent) either ends (its `create` event) or is undone by the
    /// Engine (`destroy`, or no event at all), awaited at most 10 s.
    async fn created_meanwhile(
        &self,
        name: &str,
        hash: &str,
        body: &ContainerCreateBody,
    ) -> Result<Option<String>, DockerError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["create".to_string(), "destroy".to_string()]),
            ("container".to_string(), vec![name.to_string()]),
        ]);
        let wanted = name.to_string();
        let events = self.watch_events(filters, move |e| {
            e.typ == Some(EventMessageTypeEnum::CONTAINER)
                && matches!(e.action.as_deref(), Some("create" | "destroy"))
                && actor_name(e) == Some(wanted.as_str())
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut last = false;
        loop {
            match self.docker.inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>).await
            {
                Ok(_) => return Ok(self.same_container(name, hash).await),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(_) => return Ok(None),
            }
            // Not there: the name is still held by a create under way, or
            // free again after the Engine undid it. Any other refusal of
            // this create is its own error (retried when transient).
            let opts = CreateContainerOptionsBuilder::default().name(name).build();
            match self.docker.create_container(Some(opts), body.clone()).await {
                Ok(r) => return Ok(Some(r.id)),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) if !last => {}
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => return Ok(None),
                Err(e) => return Err(DockerError::api(format!("create container {name}"), e)),
            }
            last = !events.event_before(deadline).await;
        }
    }
}

impl EngineApi for DockerClient {
    type Prepared = ContainerCreateBody;

    fn redactor(&self) -> &crate::redact::Redactor {
        &self.redact
    }

    fn redacting(&self, redact: std::sync::Arc<crate::redact::Redactor>) -> DockerClient {
        DockerClient { redact, ..self.clone() }
    }

    async fn inventory_once(&self) -> Result<Inventory, DockerError> {
        tracing::debug!(endpoint = %self.endpoint, "docker: list");
        let ours_filter: HashMap<String, Vec<String>> =
            HashMap::from([("label".to_string(), vec![format!("{}={}", labels::INSTALLATION, self.installation)])]);
        let managed = &ours_filter;
        let containers = self.docker.list_containers(Some(ListContainersOptionsBuilder::default().all(true).build()));
        // Every network: ours are observed, the others' subnets are taken.
        let networks = self.docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>);
        let volumes = self.docker.list_volumes(Some(ListVolumesOptionsBuilder::default().filters(managed).build()));
        let images = self.docker.list_images(Some(ListImagesOptionsBuilder::default().build()));
        let routes = super::routes::routes(self.session.as_ref());
        let (containers, networks, volumes, images, routes) =
            tokio::join!(containers, networks, volumes, images, routes);
        let containers = containers.map_err(|e| self.unreachable("list containers", e))?;
        let (networks, others, taken) =
            self.split_networks(networks.map_err(|e| DockerError::api("list networks", e))?, routes);
        Ok(Inventory {
            containers: containers
                .into_iter()
                .filter_map(|c| {
                    let name = c.names.as_ref().and_then(|n| n.first()).map(|n| n.trim_start_matches('/').to_string());
                    let id = c.id.clone().unwrap_or_default();
                    if !is_id(&id) {
                        return self.skipped("container", "id", &id);
                    }
                    let name = name.unwrap_or_default();
                    if !is_name(&name) {
                        return self.skipped("container", "name", &name);
                    }
                    Some(self.container_obs(c, id, name))
                })
                .collect(),
            networks,
            others,
            volumes: volumes
                .map_err(|e| DockerError::api("list volumes", e))?
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| {
                    if !is_name(&v.name) {
                        return self.skipped("volume", "name", &v.name);
                    }
                    Some(VolumeObs { name: v.name, labels: v.labels.into_iter().collect() })
                })
                .collect(),
            images: images
                .map_err(|e| DockerError::api("list images", e))?
                .into_iter()
                .map(|i| ImageObs { id: i.id, tags: i.repo_tags, digests: i.repo_digests })
                .collect(),
            taken,
            missing_paths: Vec::new(),
        })
    }

    async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let opts = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::api(format!("pull {image}"), e))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError::Pull { image: image.to_string(), detail: err });
            }
        }
        Ok(())
    }

    /// Creates this installation's network `name` with `subnet`, or adopts
    /// the one already there (a create an earlier, killed run had sent); returns
    /// its id. When another creator took `subnet` meanwhile, the next free
    /// block of `pool` is used.
    async fn create_network(
        &self,
        name: &str,
        app: Option<&str>,
        server: &str,
        subnet: Option<Subnet>,
        pool: Option<NetworkPool>,
        options: &NetworkOptions,
    ) -> Result<String, DockerError> {
        let mut subnet = subnet;
        self.claimed.lock().await.extend(subnet);
        for attempt in 0..8 {
            if let Some(id) = self.our_network(name).await? {
                tracing::info!(network = name, id = short(&id), "network exists already; adopted");
                return Ok(id);
            }
            // After a refusal, choosing and creating happen under the lock.
            let mut claimed = if attempt > 0 { Some(self.claimed.lock().await) } else { None };
            match self.create_network_once(name, app, server, subnet, options).await {
                Ok(id) => return Ok(id),
                // 403 on a create with a subnet: the range is in use (the
                // Engine may hold it for a create it does not list yet).
                Err(e @ DockerError::Api { status: Some(403), .. }) if subnet.is_some() => {
                    if let Some(id) = self.holder_is_ours(name, subnet).await? {
                        tracing::info!(network = name, id = short(&id), "network created meanwhile; adopted");
                        return Ok(id);
                    }
                    let claimed = match claimed.as_mut() {
                        Some(c) => c,
                        None => claimed.insert(self.claimed.lock().await),
                    };
                    let next = match pool {
                        Some(pool) => {
                            let mut used = self.used_ranges().await?;
                            used.extend(claimed.iter());
                            pool.first_free_of(&used, subnet.map_or(pool.block, |s| s.prefix()))
                        }
                        None => None,
                    };
                    let Some(next) = next else { return Err(e) };
                    claimed.push(next);
                    tracing::warn!(network = name, taken = %subnet.unwrap_or(next), subnet = %next, error = %e, "subnet taken meanwhile; using the next free one");
                    subnet = Some(next);
                }
                Err(e) => return Err(e),
            }
        }
        Err(DockerError::NoFreeSubnet { network: name.to_string(), attempts: 8 })
    }

    /// Removes a network by id (or name); one already gone is fine.
    async fn remove_network(&self, id: &str) -> Result<(), DockerError> {
        segment("remove network", "id", id)?;
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = DockerError::api(format!("remove network {}", short(id)), e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn create_volume_once(&self, name: &str, app: Option<&str>, server: &str) -> Result<(), DockerError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(object_labels(app, None, server, &self.installation)),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|e| DockerError::api(format!("create volume {name}"), e))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        segment("remove volume", "name", name)?;
        self.docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(|e| DockerError::api(format!("remove volume {name}"), e))
    }

    async fn host_command(
        &self,
        argv: &[String],
        sudo: bool,
        timeout: Duration,
    ) -> Result<super::ssh::ExecOutput, DockerError> {
        self.host_fs().command(argv, sudo, timeout).await.map_err(DockerError::Host)
    }

    async fn engine_version(&self) -> Result<String, DockerError> {
        self.version().await
    }

    async fn missing_paths(&self, paths: &[String]) -> Result<Vec<String>, DockerError> {
        self.host_fs().missing(paths).await.map_err(DockerError::Host)
    }

    async fn create_dir(
        &self,
        path: &str,
        owner: Option<(u32, Option<u32>)>,
        mode: Option<u32>,
    ) -> Result<(), DockerError> {
        self.host_fs().create_dir(path, owner, mode).await.map_err(DockerError::Host)
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), DockerError> {
        self.host_fs().write_file(path, content, mode, uid, gid).await.map_err(DockerError::Host)
    }

    async fn prepare_container(
        &self,
        spec: &ContainerSpec,
        hash: &str,
        redacted: &serde_json::Value,
        secrets: &dyn Secrets,
        keeps: &[DataMount],
    ) -> Result<ContainerCreateBody, DockerError> {
        // With a `network_mode` the container joins no network.
        let network =
            if spec.network.is_empty() { (String::new(), None) } else { self.network_ref(&spec.network).await? };
        let mut body =
            create_body(spec, network, hash, redacted, secrets, &self.installation).map_err(DockerError::Spec)?;
        if let Some(mounts) = body.host_config.as_mut().and_then(|h| h.mounts.as_mut()) {
            carry_volumes(mounts, keeps);
        }
        Ok(body)
    }

    async fn create_container_once(
        &self,
        name: &str,
        body: &ContainerCreateBody,
        hash: &str,
    ) -> Result<String, DockerError> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        match self.docker.create_container(Some(opts), body.clone()).await {
            Ok(r) => Ok(r.id),
            Err(e) => {
                let e = DockerError::api(format!("create container {name}"), e);
                let runtime = body.host_config.as_ref().and_then(|h| h.runtime.clone());
                if let (DockerError::Api { op, detail, status: Some(400 | 500) }, Some(runtime)) = (&e, runtime)
                    && unknown_runtime(detail)
                {
                    return Err(DockerError::UnknownRuntime { op: op.clone(), runtime, detail: detail.clone() });
                }
                // The name is taken: by exactly this container when an
                // earlier create went through (a retried call, or one a
                // killed tomo had sent). Then it is ours to keep; a create
                // the Engine undoes frees the name again.
                if matches!(e, DockerError::Api { status: Some(409), .. })
                    && let Some(id) = self.created_meanwhile(name, hash, body).await?
                {
                    return Ok(id);
                }
                Err(e)
            }
        }
    }

    async fn start_once(&self, id: &str) -> Result<(), DockerError> {
        let op = format!("start {}", short(id));
        if let Some(detail) = crate::faults::stale_task(id) {
            return Err(DockerError::start_refused(op, 500, detail));
        }
        match self.docker.start_container(id, None::<bollard::query_parameters::StartContainerOptions>).await {
            Ok(()) => Ok(()),
            // 304: already running (an earlier attempt's answer was lost).
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code, message }) => {
                Err(DockerError::start_refused(op, status_code, message))
            }
            Err(e) => Err(DockerError::api(op, e)),
        }
    }

    async fn stop_once(&self, id: &str, timeout: Duration) -> Result<(), DockerError> {
        let opts = StopContainerOptionsBuilder::default().t(timeout.as_secs().max(1) as i32).build();
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(DockerError::api(format!("stop {}", short(id)), e)),
        }
    }

    async fn remove_once(&self, id: &str) -> Result<(), DockerError> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).v(false).build();
        self.docker
            .remove_container(id, Some(opts))
            .await
            .map_err(|e| DockerError::api(format!("remove {}", short(id)), e))
    }

    async fn rename_once(&self, id: &str, new_name: &str) -> Result<(), DockerError> {
        let opts = RenameContainerOptionsBuilder::default().name(new_name).build();
        self.docker.rename_container(id, opts).await.map_err(|e| DockerError::api(format!("rename to {new_name}"), e))
    }

    /// Whether the container was never started (the Engine keeps the zero
    /// time as its start time until it is).
    async fn last_logs(&self, id: &str, lines: u32) -> Result<String, DockerError> {
        self.logs(id, lines, 0).await
    }

    async fn never_started(&self, id: &str) -> Result<bool, DockerError> {
        let c = self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|e| DockerError::api(format!("inspect {}", short(id)), e))?;
        let started = c.state.and_then(|s| s.started_at).unwrap_or_default();
        Ok(started.is_empty() || started.starts_with("0001-01-01"))
    }

    /// The state, health and exit code of one container.
    async fn state(&self, id: &str) -> Result<(RunState, Option<Health>, i64), DockerError> {
        segment("inspect", "id", id)?;
        let c = self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|e| DockerError::api(format!("inspect {}", short(id)), e))?;
        let st = c.state.unwrap_or_default();
        let run = match st.status {
            Some(bollard::models::ContainerStateStatusEnum::RUNNING) => RunState::Running,
            Some(bollard::models::ContainerStateStatusEnum::CREATED) => RunState::Created,
            Some(bollard::models::ContainerStateStatusEnum::EXITED) => RunState::Exited,
            Some(bollard::models::ContainerStateStatusEnum::RESTARTING) => RunState::Restarting,
            Some(bollard::models::ContainerStateStatusEnum::PAUSED) => RunState::Paused,
            Some(bollard::models::ContainerStateStatusEnum::DEAD) => RunState::Dead,
            Some(bollard::models::ContainerStateStatusEnum::REMOVING) => RunState::Removing,
            _ => RunState::Other,
        };
        let health = st.health.and_then(|h| h.status).and_then(|s| match s {
            bollard::models::HealthStatusEnum::HEALTHY => Some(Health::Healthy),
            bollard::models::HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
            bollard::models::HealthStatusEnum::STARTING => Some(Health::Starting),
            _ => None,
        });
        Ok((run, health, st.exit_code.unwrap_or_default()))
    }

    /// Extra networks are joined after create (the API takes one at create time),
    /// this installation's by id.
    async fn connect_networks(&self, id: &str, spec: &ContainerSpec) -> Result<(), DockerError> {
        for n in &spec.networks {
            let (target, network_id) = self.network_ref(n).await?;
            let req = bollard::models::NetworkConnectRequest {
                container: id.to_string(),
                endpoint_config: Some(super::netconf::endpoint(spec, n, network_id.clone())),
            };
            if let Err(e) = self.docker.connect_network(&target, req).await {
                // 403: the Engine forbids the connection; it does so too when the
                // container is connected already (one adopted after an
                // interrupted create), which the container itself tells.
                let forbidden = matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 403, .. });
                if !(forbidden && self.joined(id, &target, network_id.as_deref()).await?) {
                    return Err(DockerError::api(format!("connect to network {n}"), e));
                }
            }
        }
        Ok(())
    }

    /// Checks the state once (usually enough: a started container runs); if
    /// not done, watches the container's events, re-checks, and re-checks on
    /// every event, so no transition is missed and nothing sleeps (unless the
    /// event stream is lost: then it re-checks every `POLL_WITHOUT_EVENTS`).
    /// `timeout` bounds the whole wait, the calls in it included.
    async fn wait_for(&self, id: &str, timeout: Duration, done: &super::engine::Ready) -> Result<(), DockerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = None;
        match tokio::time::timeout_at(deadline, self.settle(id, done, &mut last)).await {
            Ok(r) => r.map_err(|e| match e {
                Settle::Done(why) => DockerError::NotReady { id: short(id).to_string(), why },
                Settle::Call(e) => e,
            }),
            Err(_) => {
                let (run, health) = last.map_or(("unknown", "unknown"), |(run, health): (RunState, Option<Health>)| {
                    (
                        run.as_str(),
                        health.map_or("none", |h| match h {
                            Health::Starting => "starting",
                            Health::Healthy => "healthy",
                            Health::Unhealthy => "unhealthy",
                        }),
                    )
                });
                Err(DockerError::NotReady {
                    id: short(id).to_string(),
                    why: NotReady::Late { secs: timeout.as_secs(), state: run, health },
                })
            }
        }
    }
}

/// Why a wait ended before its deadline: the container's state decided, or a call failed.
enum Settle {
    Done(NotReady),
    Call(DockerError),
}

/// How often a wait re-checks once the event stream is lost (ended, over
/// its byte cap, or broken): the one fallback from events to polling.
const POLL_WITHOUT_EVENTS: Duration = Duration::from_millis(500);

/// A subscription to the Engine's events, consumed at once by a task of its
/// own so that the stream never backs up: over SSH, an unread channel would
/// stall the connection's every other channel (russh hands data to a bounded
/// queue per channel and waits when it is full). The task keeps no events,
/// only whether a relevant one came since the last look (any number of them
/// count as one, and the waiter re-checks the state instead of reading
/// them): a flood costs the bytes it sends, up to the stream's cap, and no
/// memory. The task ends with the watch.
struct EventWatch {
    wake: std::sync::Arc<tokio::sync::Notify>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl EventWatch {
    fn start(
        docker: Docker,
        filters: HashMap<String, Vec<String>>,
        relevant: impl Fn(&EventMessage) -> bool + Send + 'static,
        redact: std::sync::Arc<crate::redact::Redactor>,
        endpoint: String,
    ) -> EventWatch {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w, l) = (wake.clone(), lost.clone());
        let task = tokio::spawn(async move {
            let mut events = docker.events(Some(EventsOptionsBuilder::default().filters(&filters).build()));
            let why = loop {
                match events.next().await {
                    Some(Ok(e)) if relevant(&e) => w.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break DockerError::api("events", e).redacted(&redact).to_string(),
                    None => break "the stream ended".to_string(),
                }
            };
            tracing::debug!(endpoint = %endpoint, "Docker events lost ({why}); re-checking every {POLL_WITHOUT_EVENTS:?}");
            l.store(true, std::sync::atomic::Ordering::SeqCst);
            w.notify_one();
        });
        EventWatch { wake, lost, task }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Returns after a relevant event (or several) since the last call, or,
    /// once the stream is lost, after `POLL_WITHOUT_EVENTS`.
    async fn changed(&self) {
        if self.is_lost() {
            tokio::time::sleep(POLL_WITHOUT_EVENTS).await;
        } else {
            self.wake.notified().await;
        }
    }

    /// Whether a relevant event came before `deadline` (false as well once
    /// the stream is lost).
    async fn event_before(&self, deadline: tokio::time::Instant) -> bool {
        !self.is_lost() && tokio::time::timeout_at(deadline, self.wake.notified()).await.is_ok() && !self.is_lost()
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The name an event gives its object.
fn actor_name(e: &EventMessage) -> Option<&str> {
    e.actor.as_ref()?.attributes.as_ref()?.get("name").map(String::as_str)
}

fn object_labels(
    app: Option<&str>,
    service: Option<&str>,
    server: &str,
    installation: &str,
) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::SERVER.to_string(), server.to_string()),
        (labels::INSTALLATION.to_string(), installation.to_string()),
    ]);
    if let Some(a) = app {
        l.insert(labels::APP.to_string(), a.to_string());
    }
    if let Some(s) = service {
        l.insert(labels::SERVICE.to_string(), s.to_string());
    }
    l
}

/// A container's mounts as the list call reports them, sorted by target.
fn mounts(list: Vec<bollard::models::MountPoint>) -> Vec<MountObs> {
    let mut out: Vec<MountObs> = list
        .into_iter()
        .map(|m| MountObs {
            kind: match m.typ.as_deref() {
                Some("volume") => MountKind::Volume,
                Some("bind") => MountKind::Bind,
                Some("tmpfs") => MountKind::Tmpfs,
                _ => MountKind::Other,
            },
            name: m.name.filter(|n| !n.is_empty()),
            source: m.source.unwrap_or_default(),
            target: m.destination.unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

fn run_state(s: Option<ContainerSummaryStateEnum>) -> RunState {
    match s {
        Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => RunState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => RunState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => RunState::Restarting,
        Some(ContainerSummaryStateEnum::EXITED) => RunState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => RunState::Dead,
        Some(ContainerSummaryStateEnum::REMOVING) => RunState::Removing,
        _ => RunState::Other,
    }
}

/// Engine 20.10's list output carries health only in the status text.
fn health_from_status(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

/// `Exited (137) 5 seconds ago` → 137.
fn exit_code_from_status(status: &str) -> Option<i64> {
    status.strip_prefix("Exited (")?.split(')').next()?.parse().ok()
}

/// A Docker object id: 64 lowercase hex characters.
pub fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A Docker object name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (so never a path
/// separator, query, percent escape or blank), at most 255 characters.
pub fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && s.len() <= 255
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Checks a value about to become one URL path segment: an id or a name,
/// which need no percent-encoding; anything else is never sent.
pub(super) fn segment(op: &str, what: &'static str, value: &str) -> Result<(), DockerError> {
    if is_id(value) || is_name(value) {
        Ok(())
    } else {
        Err(DockerError::Invalid { op: op.to_string(), what, value: value.chars().take(80).collect() })
    }
}

pub fn short(id: &str) -> &str {
    crate::term::head(id, 12)
}

fn nanos(d: Option<crate::model::Duration>) -> Option<i64> {
    d.map(|d| d.as_millis() as i64 * 1_000_000)
}

/// The Engine API body for `spec`, secrets revealed only here.
pub(super) fn create_body(
    spec: &ContainerSpec,
    (network, network_id): (String, Option<String>),
    hash: &str,
    redacted: &serde_json::Value,
    secrets: &dyn Secrets,
    installation: &str,
) -> Result<ContainerCreateBody, String> {
    let mut env = Vec::with_capacity(spec.env.len());
    for (k, v) in &spec.env {
        let value = match v {
            crate::model::EnvValue::Plain(s) => s.clone(),
            crate::model::EnvValue::FromFile { value, .. } => value.expose().to_string(),
            other => secrets.reveal(other)?.expose().to_string(),
        };
        env.push(format!("{k}={value}"));
    }
    let mut labels =
        object_labels(Some(spec.app.as_str()), Some(spec.service.as_str()), spec.server.as_str(), installation);
    labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels.insert(crate::model::labels::SPEC_HASH.into(), hash.to_string());
    labels.insert(crate::model::labels::SPEC.into(), redacted.to_string());

    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        let proto = if p.protocol == Protocol::Udp { "udp" } else { "tcp" };
        for i in 0..p.container.len() {
            let key = format!("{}/{proto}", u32::from(p.container.start) + i);
            exposed.push(key.clone());
            if p.host.is_some() || p.host_ip.is_some() {
                let host_port = p.host.map(|h| (u32::from(h.start) + i).to_string());
                bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding { host_ip: p.host_ip.map(|ip| ip.to_string()), host_port });
            }
        }
    }
    let mut mounts: Vec<Mount> = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: (!m.source.is_empty()).then(|| m.source.clone()),
            typ: Some(match m.kind {
                SpecMountKind::Volume | SpecMountKind::Anonymous => MountType::VOLUME,
                SpecMountKind::Bind => MountType::BIND,
                SpecMountKind::Tmpfs => MountType::TMPFS,
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    mounts.extend(spec.file_paths(redacted).into_iter().map(|(path, f)| Mount {
        target: Some(f.target.clone()),
        source: Some(path),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    }));
    let restart = match spec.restart {
        Restart::No => RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None },
        Restart::Always => RestartPolicy { name: Some(RestartPolicyNameEnum::ALWAYS), maximum_retry_count: None },
        Restart::UnlessStopped => {
            RestartPolicy { name: Some(RestartPolicyNameEnum::UNLESS_STOPPED), maximum_retry_count: None }
        }
        Restart::OnFailure { max_retries } => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: max_retries.map(i64::from),
        },
    };
    let devices = spec
        .devices
        .iter()
        .map(|d| bollard::models::DeviceMapping {
            path_on_host: Some(d.host().to_string()),
            path_in_container: Some(d.container().to_string()),
            cgroup_permissions: Some(d.perms().to_string()),
        })
        .collect();
    let tmpfs: HashMap<String, String> =
        spec.tmpfs.iter().map(|t| (t.target().to_string(), t.options().to_string())).collect();
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        mounts: Some(mounts),
        restart_policy: Some(restart),
        network_mode: Some(spec.network_mode.clone().unwrap_or_else(|| network.clone())),
        pid_mode: spec.pid.clone(),
        ipc_mode: spec.ipc.clone(),
        privileged: Some(spec.privileged),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.iter().map(|c| c.to_string()).collect()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.iter().map(|c| c.to_string()).collect()),
        devices: Some(devices),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        ulimits: Some(
            spec.ulimits
                .iter()
                .map(|(k, u)| ResourcesUlimits { name: Some(k.clone()), soft: Some(u.soft), hard: Some(u.hard) })
                .collect(),
        ),
        extra_hosts: (!spec.extra_hosts.is_empty())
            .then(|| spec.extra_hosts.iter().map(|h| h.docker_entry()).collect()),
        init: Some(spec.init),
        memory: spec.memory.map(|m| m.bytes() as i64),
        nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
        ..Default::default()
    };
    let mut endpoints = HashMap::new();
    if spec.network_mode.is_none() {
        endpoints.insert(network, super::netconf::endpoint(spec, &spec.network, network_id));
    }
    let healthcheck = spec.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(i64::from),
        start_period: nanos(h.start_period),
        ..Default::default()
    });
    let mut body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(exposed),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.as_ref().map(|h| h.to_string()),
        healthcheck,
        stop_timeout: spec.stop_grace_period.map(|d| (d.as_millis() / 1000).max(1) as i64),
        networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
        ..Default::default()
    };
    let mut host_config = host_config;
    super::docker_runopts::add_run_options(&spec.run, &mut body, &mut host_config);
    body.host_config = Some(host_config);
    Ok(body)
}

/// Mounts each kept volume at its target: in place of the spec's anonymous
/// volume there, or (an image's `VOLUME`) as a mount of its own.
fn carry_volumes(mounts: &mut Vec<Mount>, keeps: &[DataMount]) {
    for k in keeps {
        match mounts.iter_mut().find(|m| m.target.as_deref() == Some(k.target.as_str())) {
            Some(m) if m.typ == Some(MountType::VOLUME) && m.source.is_none() => m.source = Some(k.source.clone()),
            Some(_) => {}
            None => mounts.push(Mount {
                target: Some(k.target.clone()),
                source: Some(k.source.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed failures read as their text did, and none is retried.
    #[test]
    fn typed_failures_keep_their_messages_and_are_final() {
        let id = || "3f2a9c".to_string();
        let late = NotReady::Late { secs: 5, state: "created", health: "none" };
        let cases = [
            (DockerError::NotReady { id: id(), why: NotReady::Exited(3) }, "container 3f2a9c exited with status 3"),
            (DockerError::NotReady { id: id(), why: NotReady::Unhealthy }, "container 3f2a9c became unhealthy"),
            (
                DockerError::NotReady { id: id(), why: NotReady::ExitedUnhealthy },
                "container 3f2a9c exited before becoming healthy",
            ),
            (
                DockerError::NotReady { id: id(), why: late },
                "container 3f2a9c did not become ready within 5s (state created, health none)",
            ),
            (
                DockerError::Pull { image: "x:1".into(), detail: "manifest unknown".into() },
                "pull x:1: manifest unknown",
            ),
            (
                DockerError::NoFreeSubnet { network: "n".into(), attempts: 8 },
                "create network n: no free subnet after 8 attempts",
            ),
            (DockerError::NoStats { container: "web".into() }, "the Engine sent no stats for web"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert!(!e.is_transient(), "{e}");
        }
    }

    #[test]
    fn errors_are_redacted_in_every_text_a_server_may_fill() {
        let r = crate::redact::Redactor::new(["hunter2-secret"]);
        let errors = [
            DockerError::Api { op: "create x".into(), detail: "echo TOKEN=hunter2-secret".into(), status: Some(500) },
            DockerError::StaleTask { op: "start".into(), detail: "aHVudGVyMi1zZWNyZXQ= exists".into() },
            DockerError::Malformed { op: "create".into(), detail: "68756e746572322d736563726574".into() },
            DockerError::Connect { endpoint: "h".into(), detail: "hunter2-secret".into() },
            DockerError::Pull { image: "img".into(), detail: "hunter2-secret".into() },
        ];
        for e in errors {
            let status = matches!(e, DockerError::Api { status: Some(500), .. });
            let shown = e.redacted(&r);
            assert!(shown.to_string().contains("***") && !shown.to_string().contains("hunter2"), "{shown}");
            // The kind stays: a redacted 500 is still retried.
            assert_eq!(matches!(shown, DockerError::Api { status: Some(500), .. }), status);
        }
    }

    #[test]
    fn refused_starts_are_typed_by_status_and_the_runtime_s_kind_of_error() {
        let stale = [
            (500, "task 3f2a9c: already exists"),
            (500, "failed to create task for container: task 3f2a9c: already exists: unknown"),
            (500, "container \"3f2a9c\": already exists"),
            (409, "container \"3f2a9c\": already exists"),
            (500, "id already in use"),
            (500, "OCI runtime create failed: container with id exists: 3f2a9c: unknown"),
            (
                500,
                "failed to create task for container: failed to start shim: mkdir /run/containerd/io.containerd.runtime.v2.task/moby/3f2a9c: file exists: unknown",
            ),
        ];
        for (status, text) in stale {
            let e = DockerError::start_refused("start 3f2a9c".into(), status, text.into());
            assert!(e.is_stale_task(), "{status} {text}");
            assert!(!e.is_transient(), "{status} {text}");
            assert!(e.to_string().contains("stale runtime task"), "{e}");
        }
        let other = [
            (
                500,
                "driver failed programming external connectivity: listen tcp4 0.0.0.0:80: bind: address already in use",
            ),
            (500, "Bind for 0.0.0.0:80 failed: port is already allocated"),
            (409, "cannot start a paused container, try unpause instead"),
            (503, "injected transient failure"),
            (400, "task 3f2a9c: already exists"),
            (404, "No such container: 3f2a9c"),
        ];
        for (status, text) in other {
            let e = DockerError::start_refused("start 3f2a9c".into(), status, text.into());
            assert!(!e.is_stale_task(), "{status} {text}");
            assert_eq!(e.is_transient(), status >= 500, "{status} {text}");
        }
    }

    /// The create body of a service using every runtime option with a value
    /// type of its own, in each form the manifest allows, is what earlier
    /// versions sent.
    #[test]
    fn the_create_body_of_runtime_options_is_unchanged() {
        use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
        let yaml = r#"kind: App
name: edge
server: local
image: img:1
hostname: edge-1.lan
cap_add: [NET_ADMIN, CAP_SYS_TIME]
cap_drop: [ALL]
devices: [/dev/null, "/dev/zero:/dev/z", "/dev/random:/dev/r:r"]
tmpfs: [/run, "/tmp:size=64m,mode=1777"]
extra_hosts: ["db.lan:10.0.0.7", "v6=fd00:0::1", "gw:host-gateway"]
"#;
        let sources = Sources::from_texts([("m.yaml", yaml)]);
        let opts = LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) };
        let d = manifest::load(&sources, &opts).desired.unwrap();
        let app = &d.apps["edge"];
        let spec = ContainerSpec::new(&crate::model::Name::parse("local").unwrap(), app, &app.services["edge"]);
        let secrets = crate::model::secret::NoSecrets("no secrets".into());
        let body = create_body(&spec, ("edge".into(), None), "h", &serde_json::json!({}), &secrets, "i").unwrap();
        let got = serde_json::json!({"hostname": body.hostname, "host_config": body.host_config}).to_string();
        assert_eq!(
            got,
            concat!(
                r#"{"host_config":{"CapAdd":["NET_ADMIN","CAP_SYS_TIME"],"CapDrop":["ALL"],"Devices":["#,
                r#"{"CgroupPermissions":"rwm","PathInContainer":"/dev/null","PathOnHost":"/dev/null"},"#,
                r#"{"CgroupPermissions":"rwm","PathInContainer":"/dev/z","PathOnHost":"/dev/zero"},"#,
                r#"{"CgroupPermissions":"r","PathInContainer":"/dev/r","PathOnHost":"/dev/random"}],"#,
                r#""ExtraHosts":["db.lan:10.0.0.7","v6:fd00:0::1","gw:host-gateway"],"Init":false,"Mounts":[],"#,
                r#""NetworkMode":"edge","PortBindings":{},"Privileged":false,"RestartPolicy":{"Name":"unless-stopped"},"#,
                r#""Tmpfs":{"/run":"","/tmp":"size=64m,mode=1777"},"Ulimits":[]},"hostname":"edge-1.lan"}"#,
            )
        );
    }
}
