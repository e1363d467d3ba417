//! The nouns of tomo's desired state, validated: what `manifest` produces and
//! every later stage (diff, plan, apply, MCP) consumes.
//!
//! **Invariant:** a value of these types is valid by construction: names obey
//! the name rule, ports and mounts are parsed, references between documents
//! resolve, dependencies are acyclic. No I/O and no async here.

pub mod alert;
pub mod backup;
#[macro_use]
pub mod cgroupfs;
pub mod files;
pub mod host;
pub mod logs;
pub mod metrics;
pub mod network;
pub mod observed;
pub mod ports;
pub mod procfs;
pub mod rollout;
pub mod runopts;
pub mod runtime;
pub mod scope;
pub mod secret;
pub mod spec;
pub mod subnet;
pub mod values;

use std::collections::BTreeMap;

/// Labels tomo puts on what it creates.
pub mod labels {
    pub const MANAGED: &str = "tomo.managed";
    pub const APP: &str = "tomo.app";
    pub const SERVICE: &str = "tomo.service";
    pub const SERVER: &str = "tomo.server";
    pub const SPEC_HASH: &str = "tomo.spec-hash";
    pub const SPEC: &str = "tomo.spec";
    /// Which tomo installation (store) made the object: objects of another
    /// installation on the same engine are never treated as ours.
    pub const INSTALLATION: &str = "tomo.installation";
}

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use network::{Endpoint, Namespace, NamespaceKind, NetworkDecl, NetworkOptions};
pub use observed::{ContainerObs, Health, Inventory, Observed, RunState, ServerState};
pub use ports::{Mount, MountSource, PortMapping, PortRange};
pub use rollout::{AppRollout, OnFailure, ServiceRollout, VerifyPolicies, VerifyPolicy};
pub use runopts::{GpuRequest, Logging, RunOptions, StopSignal};
pub use runtime::{Capability, DeviceMapping, ExtraHost, Hostname, TmpfsMount};
pub use scope::Scope;
pub use values::{ByteSize, Duration, ImageRef, Name, Restart};

/// The whole desired state: everything the manifests declare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Desired {
    pub servers: BTreeMap<Name, Server>,
    pub apps: BTreeMap<Name, App>,
    pub settings: Settings,
    pub marketplaces: BTreeMap<Name, Marketplace>,
}

/// Where a document came from, for messages and for editing it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Origin {
    /// Path relative to the manifest folder.
    pub file: String,
    /// 1-based line of the document's first key.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub name: Name,
    pub host: Host,
    pub docker: DockerSettings,
    pub labels: BTreeMap<String, String>,
    pub origin: Origin,
    /// True for the `local` server tomo adds when apps use it undeclared.
    pub implicit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    /// This machine: the Docker socket directly, no SSH.
    Local,
    Ssh(SshTarget),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshTarget {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    /// Pinned host key fingerprint (`SHA256:…`).
    pub host_key: Option<String>,
    pub sudo: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshAuth {
    KeyFile(String),
    Agent,
    Password { secret: Name },
    Key { secret: Name },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerSettings {
    pub socket: String,
    pub ensure: DockerEnsure,
    /// Which versions `present` accepts (`27.*`); any when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<host::VersionConstraint>,
    /// Where the Engine is installed from; `None`: the OS's default
    /// (its own package where it has one, else Docker's repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DockerSource>,
    /// With `absent`: delete /var/lib/docker and /var/lib/containerd too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purge: bool,
}

impl DockerSettings {
    /// Docker left alone (the implicit `local` server, and a server
    /// without a `docker` block).
    pub fn unmanaged(socket: &str) -> DockerSettings {
        DockerSettings {
            socket: socket.into(),
            ensure: DockerEnsure::Unmanaged,
            version: None,
            source: None,
            purge: false,
        }
    }
}

/// Where Docker Engine comes from.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DockerSource {
    /// The OS's own package (`docker.io`, `moby-engine`, `docker`).
    Distro,
    /// Docker's package repository (`docker-ce`).
    Upstream,
}

pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub name: Name,
    pub servers: Vec<Name>,
    pub state: AppState,
    pub services: BTreeMap<Name, Service>,
    pub volumes: BTreeMap<Name, ResourceDecl>,
    /// Extra networks; `default` holds the options of the app's own.
    pub networks: BTreeMap<Name, NetworkDecl>,
    pub origin: Origin,
    /// Written in the one-service shorthand (its container is named after the app).
    pub single: bool,
    /// The store app it was installed from (`x-tomo-source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MarketSource>,
    /// `backup:`: the app's consistency mode and `pre` hook in backups
    /// (never part of a container's spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<backup::AppBackup>,
    /// The app's `rollout:` (overrides `Settings.rollout`).
    #[serde(default, skip_serializing_if = "AppRollout::is_default")]
    pub rollout: AppRollout,
}

/// `x-tomo-source`: the store app a manifest was installed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSource {
    pub store: String,
    pub app: String,
    pub version: String,
    pub checksum: String,
}

impl App {
    /// The container name of a service: its `container_name`, else `<app>`
    /// for a one-service app, `<app>-<service>` otherwise.
    pub fn container_name(&self, service: &Name) -> String {
        if let Some(n) = self.services.get(service).and_then(|s| s.container_name.as_ref()) {
            return n.clone();
        }
        if self.single { self.name.to_string() } else { format!("{}-{}", self.name, service) }
    }
}

/// Options of a named volume or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourceDecl {
    pub external: bool,
    /// The name on the server, when not `<app>_<name>`.
    pub name: Option<String>,
}

/// One container's validated specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: Name,
    pub image: ImageRef,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, EnvValue>,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<Mount>,
    /// Extra networks (not `default`, the app's own).
    pub networks: Vec<Name>,
    /// Aliases and fixed addresses per network (`default`: the app's own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<Name, Endpoint>,
    /// Whether the service joins the app's own network (with no
    /// `network_mode`).
    #[serde(default = "yes")]
    pub app_network: bool,
    /// Another network stack than the app's network: host, none, another
    /// service's or container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<Namespace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<Namespace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<Namespace>,
    /// The container's name instead of the app's (one-service apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    pub depends_on: BTreeMap<Name, DependencyCondition>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Restart,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<Hostname>,
    pub privileged: bool,
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    pub devices: Vec<DeviceMapping>,
    pub tmpfs: Vec<TmpfsMount>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub extra_hosts: Vec<ExtraHost>,
    pub init: bool,
    pub stop_grace_period: Option<Duration>,
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    /// Further run options (`runopts`), each left out of the serialised form when unset.
    #[serde(flatten, default)]
    pub run: RunOptions,
    /// Dependencies written with `required: false`: ordered after, never held by.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub optional_deps: std::collections::BTreeSet<Name>,
    pub pull: PullPolicy,
    pub update_order: UpdateOrder,
    pub state: ServiceState,
    /// How missing host folders of bind mounts are made, by host path (for
    /// long-form binds that set `create_host_path`, `owner` or `mode`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_folders: BTreeMap<String, files::HostFolder>,
    /// Files tomo writes on the server and mounts read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<files::ConfigFile>,
    /// The service's `rollout:` (overrides the app's); never in the
    /// container spec.
    #[serde(default, skip_serializing_if = "ServiceRollout::is_default")]
    pub rollout: ServiceRollout,
}

fn yes() -> bool {
    true
}

impl Service {
    /// The services of the same app whose namespaces (network, pid, ipc)
    /// this one joins: they are created first, and recreating one recreates
    /// this one.
    pub fn namespace_services(&self) -> impl Iterator<Item = &Name> {
        [&self.network_mode, &self.pid, &self.ipc].into_iter().filter_map(|n| n.as_ref().and_then(Namespace::service))
    }

    /// Whether the container is on the app's own network.
    pub fn on_app_network(&self) -> bool {
        self.network_mode.is_none() && self.app_network
    }
}

/// An environment value. Secret values are never held here: only their name
/// or their ciphertext, resolved by the vault when a container is created.
/// Serialised as a plain string, `{secret: NAME}` or `{encrypted: "enc:v1:…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EnvValueRepr", into = "EnvValueRepr")]
pub enum EnvValue {
    Plain(String),
    Secret(Name),
    /// An `enc:v1:…` value, decrypted only when needed.
    Encrypted(String),
    /// A value of an env file (`file`, relative to the manifest folder)
    /// whose name looks like a credential. Serialised as `{env_file: FILE}`
    /// only: the value never leaves tomo but in a container's environment
    /// (a saved plan gets it again from the file, `plan::fill_env_files`).
    FromFile {
        file: String,
        value: secret::SecretString,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum EnvValueRepr {
    Plain(String),
    Secret { secret: Name },
    Encrypted { encrypted: String },
    FromFile { env_file: String },
}

impl From<EnvValueRepr> for EnvValue {
    fn from(r: EnvValueRepr) -> Self {
        match r {
            EnvValueRepr::Plain(s) => EnvValue::Plain(s),
            EnvValueRepr::Secret { secret } => EnvValue::Secret(secret),
            EnvValueRepr::Encrypted { encrypted } => EnvValue::Encrypted(encrypted),
            EnvValueRepr::FromFile { env_file } => {
                EnvValue::FromFile { file: env_file, value: secret::SecretString::new(String::new()) }
            }
        }
    }
}

impl From<EnvValue> for EnvValueRepr {
    fn from(v: EnvValue) -> Self {
        match v {
            EnvValue::Plain(s) => EnvValueRepr::Plain(s),
            EnvValue::Secret(secret) => EnvValueRepr::Secret { secret },
            EnvValue::Encrypted(encrypted) => EnvValueRepr::Encrypted { encrypted },
            EnvValue::FromFile { file, .. } => EnvValueRepr::FromFile { env_file: file },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub prune: bool,
    pub parallelism: u32,
    pub health_timeout: Duration,
    /// Each server's time to answer (connect and observe as a whole, each
    /// Docker call of apply); `None`: `SSH_TIMEOUT` (default 30s).
    #[serde(default)]
    pub server_timeout: Option<Duration>,
    pub watch_interval: Duration,
    pub watch_self_heal: bool,
    pub watch_destructive: WatchDestructive,
    pub require_approval: RequireApproval,
    /// Where the networks tomo creates take their subnets.
    #[serde(default)]
    pub network_pool: subnet::NetworkPool,
    /// How `tomo market install` fills a store's variables.
    #[serde(default, skip_serializing_if = "MarketDefaults::is_default")]
    pub market_defaults: MarketDefaults,
    /// `Settings.metrics`: sampling interval, retention, alert rules.
    #[serde(default, skip_serializing_if = "metrics::MetricsSettings::is_default")]
    pub metrics: metrics::MetricsSettings,
    /// `rollout.max_downtime`: a plan whose downtime is longer needs
    /// `--allow-downtime` or an approval; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downtime: Option<Duration>,
    /// `rollout.verify`: how long a new container is watched after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Duration>,
    /// `Settings.backup`: the backups `tomo watch` writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<backup::BackupSchedule>,
    /// `rollout.strategy`: how an app on several servers is updated.
    #[serde(default, skip_serializing_if = "RolloutStrategy::is_default")]
    pub rollout_strategy: RolloutStrategy,
    /// `rollout.on_failure`: what a failed verification does.
    #[serde(default, skip_serializing_if = "OnFailure::is_default")]
    pub on_failure: OnFailure,
    pub origin: Option<Origin>,
}

/// `Settings.marketplace.defaults`: the values of the variables store apps
/// use (`$TZ`, `$PUID`, `$PGID`) and the folder that replaces CasaOS's
/// `/DATA/AppData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDefaults {
    pub tz: String,
    pub puid: u32,
    pub pgid: u32,
    pub data_root: String,
}

impl MarketDefaults {
    pub fn is_default(&self) -> bool {
        *self == MarketDefaults::default()
    }
}

impl Default for MarketDefaults {
    fn default() -> Self {
        Self { tz: "UTC".into(), puid: 1000, pgid: 1000, data_root: "/srv/tomo/apps".into() }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prune: false,
            parallelism: 16,
            health_timeout: Duration::from_secs(60),
            server_timeout: None,
            watch_interval: Duration::from_secs(300),
            watch_self_heal: true,
            watch_destructive: WatchDestructive::Hold,
            require_approval: RequireApproval::Destructive,
            network_pool: subnet::NetworkPool::default(),
            market_defaults: MarketDefaults::default(),
            metrics: metrics::MetricsSettings::default(),
            max_downtime: None,
            verify: None,
            backup: None,
            rollout_strategy: RolloutStrategy::AllAtOnce,
            on_failure: OnFailure::Rollback,
            origin: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marketplace {
    pub name: Name,
    /// Where the store's files come from.
    pub source: StoreSource,
    pub git_ref: String,
    pub format: MarketplaceFormat,
    /// How often daemons refresh it.
    pub sync: Duration,
    /// The vault secret a private repository is fetched with (a token for
    /// https, an SSH private key for ssh).
    pub auth: Option<Name>,
    pub origin: Origin,
}

/// The default `sync` interval of a store.
pub const MARKET_SYNC_DEFAULT: Duration = Duration::from_secs(6 * 3600);

/// Where a store's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreSource {
    /// A git repository, fetched into the data folder. The URL holds no
    /// credentials (refused when loading).
    Git { url: String },
    /// A local folder, read in place: absolute, or relative to the manifest folder.
    Path { path: String },
}

impl StoreSource {
    /// The URL or folder, as shown.
    pub fn shown(&self) -> &str {
        match self {
            StoreSource::Git { url } => url,
            StoreSource::Path { path } => path,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DockerEnsure {
    /// Installed (at a version the constraint accepts) and running.
    Present,
    /// Removed (its data kept unless `purge`).
    Absent,
    /// Left alone: the default, also when `docker:` is written without `ensure`.
    #[default]
    Unmanaged,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    #[default]
    Running,
    Stopped,
    Absent,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    #[default]
    Running,
    Stopped,
    /// Declared, but without a container: removed if present, its volumes kept.
    Absent,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum DependencyCondition {
    /// The dependency's container is running.
    #[default]
    Started,
    /// The dependency's healthcheck passes.
    Healthy,
    /// The dependency ran to completion with exit code 0.
    Completed,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull only when the image is not on the server (default).
    #[default]
    Missing,
    /// Pull on every apply; recreate when the tag now names another image.
    Always,
    /// Never pull; the image must be on the server.
    Never,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old container, then start the new one (default).
    #[default]
    StopFirst,
    /// Start the new container while the old one still runs.
    StartFirst,
}

/// How an app declared on several servers is updated.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutStrategy {
    /// Every server at once (default).
    #[default]
    AllAtOnce,
    /// Server by server in the order of the app's `servers:`: each server's
    /// actions (and their verification) finish before the next server
    /// starts; a failure stops the servers after it.
    OneAtATime,
}

impl RolloutStrategy {
    pub fn is_default(&self) -> bool {
        *self == RolloutStrategy::AllAtOnce
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WatchDestructive {
    Apply,
    #[default]
    Hold,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RequireApproval {
    /// Only the `agent` role's changes.
    None,
    /// Agent changes, and destructive plans from any role (default).
    #[default]
    Destructive,
    /// Every change.
    All,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MarketplaceFormat {
    #[default]
    Casaos,
    Compose,
    Tomo,
    // Detected from the store's files (`market::detect`); a plain comment, so the
    // schema stays one `enum` and its error lists every format.
    Auto,
}
