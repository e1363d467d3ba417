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
    AppState, DependencyCondition, DockerEnsure, MarketplaceFormat, MountKind, Protocol, PullPolicy, RequireApproval,
    ServiceState, UpdateOrder, WatchDestructive,
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
    /// Whether tomo installs (`present`), removes (`absent`) or leaves Docker alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensure: Option<DockerEnsure>,
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
    /// The app's containers, by service name.
    pub services: BTreeMap<String, RawMultiService>,
    /// Options for named volumes (`external: true` for ones tomo must not create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, RawResourceDecl>>,
    /// Extra networks; every app also gets its own default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, RawResourceDecl>>,
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
    #[serde(flatten)]
    pub service: RawService,
}

/// A service of a multi-service app.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawMultiService {
    /// `running` (default) or `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ServiceState>,
    #[serde(flatten)]
    pub service: RawService,
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
    /// Networks to join besides the app's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<String>>,
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
    Long { condition: DependencyCondition },
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
    /// CPU limit in cores, e.g. `1.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
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

/// A git repository of app definitions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RawMarketplace {
    /// Lowercase letters, digits and '-', 1-63 characters.
    pub name: String,
    /// Git URL of the repository.
    pub url: String,
    /// Branch, tag or commit (default `main`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<MarketplaceFormat>,
}
