//! Raw manifest documents: the shape users write, as serde and JSON Schema see it.
//!
//! These types are the single source of the committed JSON Schemas
//! (`tomo schema`) and of the structural check in `manifest::schema`. They hold
//! strings where the user writes strings (ports, durations, image references);
//! `manifest::resolve` turns them into the validated `model` types.
//!
//! Extension keys (`x-…`) are allowed in every object and ignored: serde skips
//! unknown fields, and the schema check refuses unknown keys other than those.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::model::{
    AppState, DependencyCondition, DockerEnsure, DockerSource, MarketplaceFormat, MountKind, Protocol, PullPolicy,
    RequireApproval, ServiceState, UpdateOrder, WatchDestructive,
};

/// Any manifest document, told apart by `kind`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind")]
#[allow(clippy::large_enum_variant, reason = "short-lived parse output; boxing buys nothing")]
pub enum RawDocument {
    Server(RawServer),
    App(RawApp),
    Settings(RawSettings),
    Marketplace(RawMarketplace),
}

pub const KINDS: [&str; 4] = ["Server", "App", "Settings", "Marketplace"];

/// A machine tomo manages: reached over SSH, or `host: local` for this machine.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawServer {
    /// Lowercase letters, digits and '-', 1-63 characters.
    pub name: String,
    /// Host name or IP address, or `local` for this machine (no SSH).
    pub host: String,
    /// SSH port (default 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// SSH user (default `root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How to authenticate over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RawAuth>,
    /// Pinned SSH host key fingerprint, `SHA256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Run privileged commands through sudo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<RawDocker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// SSH authentication: exactly one of `key_file`, `agent`, `password`, `key`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawAuth {
    /// Path to a private key file (`~` is expanded).
    KeyFile(String),
    /// Use the running ssh-agent.
    Agent(bool),
    /// Password from the vault.
    Password(SecretRef),
    /// Private key from the vault.
    Key(SecretRef),
}

/// A reference to a value in tomo's secret vault.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the secret (`tomo secret set NAME`).
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawDocker {
    /// Path of the Docker Engine socket on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Whether tomo installs (`present`), removes (`absent`) or leaves Docker
    /// alone (`unmanaged`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensure: Option<DockerEnsure>,
    /// With `present`: the versions accepted, as leading version numbers
    /// (`27.*`, `24.0.*`, `27.3.1`); older ones are upgraded, newer ones refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// With `present`: the OS's own package (`distro`) or Docker's
    /// repository (`upstream`); default: the OS's own where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DockerSource>,
    /// With `absent`: also delete the Engine's data (/var/lib/docker, /var/lib/containerd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<bool>,
}

/// An application: one container (the shorthand, service fields at the top) or
/// several (`services`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant, reason = "short-lived parse output; boxing buys nothing")]
pub enum RawApp {
    Multi(RawMultiApp),
    Single(RawSingleApp),
}

/// An app of several services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawMultiApp {
    /// Lowercase letters, digits and '-', 1-63 characters.
    pub name: String,
    /// The server this app runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The servers this app runs on (instead of `server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AppState>,
    /// Where a marketplace install came from (written by `tomo market install`).
    #[serde(default, rename = "x-tomo-source", skip_serializing_if = "Option::is_none")]
    pub source: Option<RawMarketSource>,
    /// Verification and rollout of this app, overriding `Settings.rollout`
    /// field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawRolloutSettings>,
    /// The app's containers, by service name.
    pub services: BTreeMap<String, RawMultiService>,
    /// Options for named volumes (`external: true` for ones tomo must not create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, RawResourceDecl>>,
    /// Extra networks; every app also gets its own default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, RawNetworkDecl>>,
    /// How the app's data is kept consistent in backups (`mode`, a `pre` hook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<RawAppBackup>,
}

/// Options of an app's extra network.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawNetworkDecl {
    /// It exists already; tomo never creates or removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// Its name on the server (default `<app>_<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// No route outside the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    /// Network driver (default `bridge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// The store app a manifest was installed from: `x-tomo-source`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
pub struct RawMarketSource {
    /// The Marketplace's name.
    pub store: String,
    /// The app's id in the store.
    pub app: String,
    /// The store's version of the app (the main service's image tag).
    #[serde(default)]
    pub version: String,
    /// SHA-256 of the store's app folder when installed.
    #[serde(default)]
    pub checksum: String,
}

/// An app of one service, written with the service's fields at the top level.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawSingleApp {
    /// Lowercase letters, digits and '-', 1-63 characters.
    pub name: String,
    /// The server this app runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The servers this app runs on (instead of `server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AppState>,
    /// Where a marketplace install came from (written by `tomo market install`).
    #[serde(default, rename = "x-tomo-source", skip_serializing_if = "Option::is_none")]
    pub source: Option<RawMarketSource>,
    /// How the app's data is kept consistent in backups (`mode`, a `pre` hook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<RawAppBackup>,
    /// Verification and rollout of this app, overriding `Settings.rollout`
    /// field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawRolloutSettings>,
    #[serde(flatten)]
    pub service: RawService,
}

/// An app's `backup:`: how its data is kept consistent while `tomo backup`
/// copies it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAppBackup {
    /// `stop`: the app's containers are stopped during the copy; `live`:
    /// copied while running. `tomo backup create --mode` overrides it; it
    /// wins over `Settings.backup.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::model::backup::DataMode>,
    /// A command run in a service's running container before the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<RawPreHook>,
}

/// A command run before the app's data is copied, e.g. a database dump into
/// a volume; a non-zero exit fails the app's backup.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPreHook {
    /// The service whose running container runs the command.
    pub service: String,
    /// An argv list, or a string run by `sh -c`.
    pub command: StringOrList,
    /// How long it may run, 1s to 24h (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A service of a multi-service app.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawMultiService {
    /// `running` (default), `stopped`, or `absent` (declared, no container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ServiceState>,
    /// Verification of this service, overriding the app's and
    /// `Settings.rollout` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawServiceRollout>,
    #[serde(flatten)]
    pub service: RawService,
}

/// A service's `rollout:`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawServiceRollout {
    /// How long the service is watched after it started, e.g. `30s`; `0s`:
    /// not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// What a failed verification does: `rollback`, `hold` or `rollback-all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<crate::model::OnFailure>,
}

/// One container's specification.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawService {
    /// Image reference, e.g. `nginx:1.27` or `ghcr.io/owner/app@sha256:…`.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<StringOrList>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, EnvValue>>,
    /// Published ports: `[IP:]HOST:CONTAINER[/tcp|udp]`, ranges, or the long form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<RawPort>>,
    /// Mounts: `NAME:/path[:ro]`, `/host/path:/path[:ro]`, or the long form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<RawMount>>,
    /// Networks to join besides the app's own: names, or a map of name to
    /// `{aliases, ipv4_address}`. `default` names the app's own network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<RawServiceNetworks>,
    /// Join the app's own network (default true). `false` with `networks`
    /// puts the service on those networks only, as compose does for a
    /// service that lists networks without `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_network: Option<bool>,
    /// `bridge` (default: the app's network), `host`, `none`,
    /// `service:NAME` (another service of this app) or `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Services of the same app this one starts after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<RawDependsOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<RawHealthcheck>,
    /// `no`, `always`, `unless-stopped` (default) or `on-failure[:N]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_drop: Option<Vec<String>>,
    /// Devices: `/dev/host[:/dev/container[:rwm]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// tmpfs mounts: `/path[:options]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, Scalar>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<BTreeMap<String, RawUlimit>>,
    /// Extra /etc/hosts entries: `HOST:IP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<Vec<String>>,
    /// Run an init process as PID 1 (forwards signals, reaps zombies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// How long to wait after SIGTERM before SIGKILL, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<RawResources>,
    /// The container runtime, e.g. `nvidia` or `runc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// PID namespace: `host`, `service:NAME` or `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// IPC namespace: `private`, `shareable`, `host`, `none`, `service:NAME` or `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Security options, e.g. `no-new-privileges:true`, `apparmor:unconfined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_opt: Option<Vec<String>>,
    /// The log driver and its options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<RawLogging>,
    /// Size of /dev/shm, e.g. `1g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<Scalar>,
    /// The signal that stops the container (default `SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Keep stdin open (`docker run -i`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_open: Option<bool>,
    /// Allocate a terminal (`docker run -t`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// Files of `KEY=VALUE` lines, relative to the manifest, read at plan
    /// time into the environment (`env` wins over them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<RawEnvFiles>,
    /// The container's name, instead of `<app>` or `<app>-<service>`
    /// (one-service apps only; unique per server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Files tomo writes on the server and mounts read-only into the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<RawFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_order: Option<UpdateOrder>,
}

/// A string, or a list of strings (an exec-form command).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum StringOrList {
    String(String),
    List(Vec<String>),
}

/// A string, number or boolean.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Number(serde_json::Number),
    Bool(bool),
}

/// An environment value: a string, number or boolean, or a secret from the vault.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum EnvValue {
    Secret(SecretRef),
    Plain(Scalar),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawPort {
    /// `[IP:]HOST:CONTAINER[/tcp|udp]`, `CONTAINER`, or ranges like `8000-8010:8000-8010`.
    Short(String),
    /// A container port, not published.
    Number(u16),
    Long(RawPortLong),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RawPortLong {
    /// Container port.
    pub target: u16,
    /// Host port, or a range `8000-8010`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<PortNumberOrRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum PortNumberOrRange {
    Number(u16),
    Range(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawMount {
    /// `NAME:/path[:ro]`, `/host/path:/path[:ro]` or `/path` (anonymous volume).
    Short(String),
    Long(RawMountLong),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RawMountLong {
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Volume name or absolute host path (not for tmpfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Absolute path inside the container.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Bind mounts: create a missing host folder (default true); `false`
    /// refuses to apply instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// Bind mounts: owner of a folder tomo creates, `UID[:GID]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Bind mounts: mode of a folder tomo creates, octal as a string, e.g. `"0750"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A service's networks: a list of names, or a map of name to options.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawServiceNetworks {
    List(Vec<String>),
    Map(BTreeMap<String, Option<RawServiceNetwork>>),
}

/// How a service joins one network.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawServiceNetwork {
    /// Further names the service is reachable by on this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// A fixed IPv4 address within the network's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// The log driver of a container.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawLogging {
    /// E.g. `json-file`, `local`, `journald`, `syslog`, `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options, e.g. `max-size: 10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, Scalar>>,
}

/// One env file, or several.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawEnvFiles {
    One(String),
    Many(Vec<RawEnvFile>),
}

/// An env file: its path, or `{path, required}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawEnvFile {
    Path(String),
    Long {
        path: String,
        /// A missing optional file is skipped (default true: required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required: Option<bool>,
    },
}

/// A file written on the server and mounted read-only into the container.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RawFile {
    /// Absolute path inside the container.
    pub target: String,
    /// The file's text, or `{secret: NAME}` for a vault secret's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<RawFileContent>,
    /// A file beside the manifest (a path inside the manifest folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Octal mode as a string, e.g. `"0644"` (default `"0444"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A file's content: text, or a vault secret.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawFileContent {
    Secret(SecretRef),
    Text(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawDependsOn {
    /// Service names; each must be started first.
    List(Vec<String>),
    /// Service name to the condition it must reach first.
    Map(BTreeMap<String, RawDependency>),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawDependency {
    Condition(DependencyCondition),
    Long {
        condition: DependencyCondition,
        /// `false`: a missing or failed dependency does not hold this service (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required: Option<bool>,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawHealthcheck {
    /// `["CMD", "prog", "arg"]`, `["CMD-SHELL", "cmd"]`, `["NONE"]`, or a shell command string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    /// Turn off the image's healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawUlimit {
    Single(i64),
    Pair { soft: i64, hard: i64 },
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawResources {
    /// Memory limit, e.g. `512m`, `2g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Memory the container is guaranteed (a soft limit), e.g. `256m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// CPU limit in cores, e.g. `1.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Relative CPU weight against other containers (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// Most processes the container may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// GPUs: `all`, a count, or requests with `device_ids` and `capabilities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<RawGpus>,
}

/// GPUs given to a container.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum RawGpus {
    /// `all`.
    All(String),
    /// This many GPUs.
    Count(u32),
    /// One request.
    One(RawGpuRequest),
    /// Several requests.
    Many(Vec<RawGpuRequest>),
}

/// A device request (Docker `DeviceRequests`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawGpuRequest {
    /// E.g. `nvidia`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// A number, or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_ids: Option<Vec<String>>,
    /// Default `[gpu]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// Options of a named volume or network.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
pub struct RawResourceDecl {
    /// It exists already; tomo never creates or removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// Its name on the server (default `<app>_<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// System-wide settings; at most one Settings document.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawSettings {
    /// Remove tomo-managed containers whose app is no longer declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// Actions run at once during apply (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// How long a new container may take to become healthy (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<String>,
    /// How long each server may take to answer, 1s to 1h: connecting and
    /// being observed as a whole, and each Docker call of apply; past it the
    /// server is unreachable and the others go on (default: `SSH_TIMEOUT`,
    /// else `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<RawWatchSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<RawMcpSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<RawNetworkSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace: Option<RawMarketplaceSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RawMetricsSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawRolloutSettings>,
    /// System backups written by `tomo watch` on a schedule, pruned by keep rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<RawBackupSettings>,
}

/// Fleet metrics: how often servers and containers are sampled by `tomo
/// watch` and `tomo serve`, how long samples are kept, and alert rules.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawMetricsSettings {
    /// Time between samples, 1s to 1h (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RawMetricsRetention>,
    /// Alert rules `FIGURE OP VALUE[unit|%] [in WINDOW]`, e.g. `disk_used >
    /// 90%`, `memory_available < 256m`, `container_restarts > 3 in 10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<String>>,
}

/// How long samples are kept.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawMetricsRetention {
    /// Raw samples (default `48h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// 5-minute rollups: min, mean and max (default `30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<String>,
}

/// How changes reach running services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawRolloutSettings {
    /// The longest a service may be down in an apply (a stop-first
    /// recreate), e.g. `10s`. A plan over it needs `--allow-downtime` (CLI)
    /// or an approval (MCP); `watch` holds it. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downtime: Option<String>,
    /// How long a created or recreated service is watched after it started
    /// (e.g. `30s`; default `0s`: not at all): an exit, a restart or turning
    /// unhealthy in that time fails the apply, and a recreated service gets
    /// its previous container back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// `all-at-once` (default) or `one-at-a-time`: an app on several servers
    /// is then updated server by server in the order of its `servers:`, and
    /// a failure on one server leaves the servers after it untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<crate::model::RolloutStrategy>,
    /// What a failed verification does: `rollback` (default: the previous
    /// container is put back), `hold` (the failed container is kept,
    /// stopped, beside the previous one, which runs again) or `rollback-all`
    /// (as `rollback`; with `one-at-a-time`, the servers already updated go
    /// back too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<crate::model::OnFailure>,
}

/// `Settings.backup`: when `tomo watch` writes a system backup, where, and
/// which archives stay.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackupSettings {
    /// `daily HH:MM` (UTC) or an interval such as `6h` (at least 1s).
    pub schedule: String,
    /// Archives that stay after each run; with none set, all stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<RawBackupKeep>,
    /// Where archives go (default `<data>/backups`); also the folder of `tomo backup create`, `list` and `prune` and the MCP backup tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RawBackupTarget>,
    /// Apps whose data each run holds: a list of names, or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<RawBackupApps>,
    /// The mode of apps without their own `backup.mode` (default `live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::model::backup::DataMode>,
}

/// A list of app names, or `all`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawBackupApps {
    List(Vec<String>),
    Word(RawAllApps),
}

/// `all`: every declared app.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawAllApps {
    All,
}

/// Keep rules: the newest `last` archives, and the newest archive of each of
/// the newest `daily` days, `weekly` ISO weeks and `monthly` months (UTC).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackupKeep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
}

/// A folder on the machine running tomo, or with `server` a folder on that
/// server (written over its SSH connection).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackupTarget {
    /// An absolute folder.
    pub path: String,
    /// A declared server whose folder `path` is: archives are streamed there over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// How `tomo market install` fills a store's variables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawMarketplaceSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<RawMarketDefaults>,
}

/// Values for the variables store apps use, after `--set`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawMarketDefaults {
    /// `$TZ` (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// `$PUID` (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puid: Option<u32>,
    /// `$PGID` (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<u32>,
    /// The absolute folder holding apps' data, in place of CasaOS's
    /// `/DATA/AppData` (default `/srv/tomo/apps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_root: Option<String>,
}

/// Subnets of the networks tomo creates: each gets the first free block of
/// the pool that overlaps no network or route on its server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawNetworkSettings {
    /// IPv4 range in CIDR form (default `10.213.0.0/16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Prefix length of each network's block, 16 to 29 (default 27: 29 containers per network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawWatchSettings {
    /// How often `tomo watch` checks for drift (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Repair drift (true, default) or only report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_heal: Option<bool>,
    /// What `watch` does with removals and recreates of services with volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<WatchDestructive>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
pub struct RawMcpSettings {
    /// Which changes made through MCP wait for a human's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<RequireApproval>,
}

/// An app store: a git repository (`url`) or a local folder (`path`) of app
/// definitions, synced into the catalog.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawMarketplace {
    /// Lowercase letters, digits and '-', 1-63 characters.
    pub name: String,
    /// Git URL of the repository (https://, ssh://, git@host:path, file://);
    /// never with credentials in it: name a vault secret in `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A local folder of app definitions, read in place (instead of `url`):
    /// absolute, or relative to the manifest folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Branch, tag or commit (default `main`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// How the store lays out its apps (default `casaos`; `auto` guesses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<MarketplaceFormat>,
    /// How often `watch` and `serve` refresh the store, e.g. `6h` (default `6h`, at least `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// A vault secret for a private repository: a token (https URLs) or an
    /// SSH private key (ssh URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SecretRef>,
}
