//! The container spec: everything one service's container is created from,
//! resolved for one server (Docker names of its network and volumes, labels).
//!
//! Its canonical JSON is hashed into the `tomo.spec-hash` label; a redacted
//! copy (secrets as name plus a keyed hash) goes into `tomo.spec`, so the
//! plan can show a field-by-field diff of what is deployed against what is
//! declared. Secret values enter both only through an HMAC keyed from the
//! vault, so labels reveal nothing about them.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secret::Secrets;
use super::{
    App, ByteSize, Capability, DeviceMapping, Duration, Endpoint, EnvValue, ExtraHost, Healthcheck, Hostname,
    MountSource, Name, PortMapping, Restart, Service, TmpfsMount, Ulimit,
};

/// Copies the `Service` fields that shape the container, not the service
/// itself: fields that only steer tomo (`depends_on`, `pull`, `update_order`,
/// `state`) stay out of the hash, so changing them never recreates anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub server: Name,
    pub app: Name,
    pub service: Name,
    /// The container's name on the server.
    pub container: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, EnvValue>,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<SpecMount>,
    /// The network the container is created on (the service is reachable
    /// on it by its name): the app's own, or with `app_network: false` the
    /// first of its networks; empty with a `network_mode`.
    pub network: String,
    /// Further networks, by Docker name.
    pub networks: Vec<String>,
    /// Aliases and fixed addresses, by Docker network name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Docker's `NetworkMode` when not the app's network: `host`, `none`,
    /// `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Docker's `PidMode`: `host`, `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Docker's `IpcMode`: `private`, `shareable`, `host`, `none`, `container:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
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
    /// Further run options; a service using none hashes as before they existed.
    #[serde(flatten, default)]
    pub run: super::RunOptions,
}

/// A mount with volumes resolved to their Docker names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecMount {
    pub kind: SpecMountKind,
    /// Docker volume name or host path; empty for anonymous and tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecMountKind {
    Volume,
    Bind,
    Anonymous,
    Tmpfs,
}

/// The Docker name of an app's named volume.
pub fn volume_name(app: &App, volume: &Name) -> String {
    match app.volumes.get(volume).and_then(|d| d.name.clone()) {
        Some(n) => n,
        None => format!("{}_{}", app.name, volume),
    }
}

/// The Docker name of an app's extra network (`default`: its own).
pub fn network_name(app: &App, network: &Name) -> String {
    if network.as_str() == DEFAULT_NETWORK {
        return app.name.to_string();
    }
    match app.networks.get(network).and_then(|d| d.name.clone()) {
        Some(n) => n,
        None => format!("{}_{}", app.name, network),
    }
}

/// The name a service's `networks` and an app's `networks` give the app's own network.
pub const DEFAULT_NETWORK: &str = "default";

/// The networks of `service`: the one it is created on, the others, and
/// the endpoint options by Docker network name.
fn service_networks(app: &App, service: &Service) -> (String, Vec<String>, BTreeMap<String, Endpoint>) {
    if service.network_mode.is_some() {
        return (String::new(), Vec::new(), BTreeMap::new());
    }
    let mut all: Vec<String> = service.networks.iter().map(|n| network_name(app, n)).collect();
    if service.app_network {
        all.insert(0, app.name.to_string());
    }
    let endpoints = service.endpoints.iter().map(|(n, e)| (network_name(app, n), e.clone())).collect();
    let mut rest = all.into_iter();
    (rest.next().unwrap_or_default(), rest.collect(), endpoints)
}

impl ContainerSpec {
    /// The spec of `service` of `app` on `server`.
    pub fn new(server: &Name, app: &App, service: &Service) -> ContainerSpec {
        let mounts = service
            .mounts
            .iter()
            .map(|m| {
                let (kind, source) = match &m.source {
                    MountSource::Volume(v) => (SpecMountKind::Volume, volume_name(app, v)),
                    MountSource::Bind(p) => (SpecMountKind::Bind, p.clone()),
                    MountSource::Anonymous => (SpecMountKind::Anonymous, String::new()),
                    MountSource::Tmpfs => (SpecMountKind::Tmpfs, String::new()),
                };
                SpecMount { kind, source, target: m.target.clone(), read_only: m.read_only }
            })
            .collect();
        let (network, networks, endpoints) = service_networks(app, service);
        let container_of = |n: &Name| app.container_name(n);
        ContainerSpec {
            server: server.clone(),
            app: app.name.clone(),
            service: service.name.clone(),
            container: app.container_name(&service.name),
            image: service.image.reference.clone(),
            command: service.command.clone(),
            entrypoint: service.entrypoint.clone(),
            env: service.env.clone(),
            ports: service.ports.clone(),
            mounts,
            network,
            networks,
            endpoints,
            network_mode: service.network_mode.as_ref().map(|n| n.as_docker(container_of)),
            pid: service.pid.as_ref().map(|n| n.as_docker(container_of)),
            ipc: service.ipc.as_ref().map(|n| n.as_docker(container_of)),
            healthcheck: service.healthcheck.clone(),
            restart: service.restart,
            labels: service.labels.clone(),
            user: service.user.clone(),
            working_dir: service.working_dir.clone(),
            hostname: service.hostname.clone(),
            privileged: service.privileged,
            cap_add: service.cap_add.clone(),
            cap_drop: service.cap_drop.clone(),
            devices: service.devices.clone(),
            tmpfs: service.tmpfs.clone(),
            sysctls: service.sysctls.clone(),
            ulimits: service.ulimits.clone(),
            extra_hosts: service.extra_hosts.clone(),
            init: service.init,
            stop_grace_period: service.stop_grace_period,
            memory: service.memory,
            cpus: service.cpus,
            run: service.run.clone(),
        }
    }

    /// Whether any env value comes from the vault.
    pub fn uses_secrets(&self) -> bool {
        self.env.values().any(|v| !matches!(v, EnvValue::Plain(_)))
    }

    /// The redacted spec: secret values replaced by their name and a keyed hash.
    pub fn redacted(&self, secrets: &dyn Secrets) -> Result<serde_json::Value, String> {
        let mut v = serde_json::to_value(self).expect("spec serializes");
        if self.uses_secrets() {
            let key = secrets.hash_key().map_err(|e| self.why_the_vault(e))?;
            let env = v.get_mut("env").and_then(|e| e.as_object_mut()).expect("env is an object");
            for (k, value) in &self.env {
                let (label, plain) = match value {
                    EnvValue::Plain(_) => continue,
                    EnvValue::Secret(name) => (format!("secret {name}"), secrets.reveal(value)?),
                    EnvValue::Encrypted(_) => ("inline secret".to_string(), secrets.reveal(value)?),
                    EnvValue::FromFile { file, value } => (format!("env_file {file}"), value.clone()),
                };
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
                mac.update(k.as_bytes());
                mac.update(&[0]);
                mac.update(plain.expose().as_bytes());
                let tag = hex(&mac.finalize().into_bytes()[..8]);
                env.insert(k.clone(), serde_json::json!({ "redacted": label, "keyed_hash": tag }));
            }
        }
        Ok(v)
    }

    /// Why the vault is needed, when only env-file credentials need it.
    fn why_the_vault(&self, e: String) -> String {
        let mut from_file = self.env.iter().filter(|(_, v)| matches!(v, EnvValue::FromFile { .. }));
        let vault_refs = self.env.values().any(|v| matches!(v, EnvValue::Secret(_) | EnvValue::Encrypted(_)));
        match from_file.next() {
            Some((k, EnvValue::FromFile { file, .. })) if !vault_refs => {
                format!("`{k}` of env file `{file}` is kept like a secret, in labels as a hash keyed by the vault: {e}")
            }
            _ => e,
        }
    }

    /// The `tomo.spec-hash` label value.
    pub fn hash(&self, secrets: &dyn Secrets) -> Result<String, String> {
        Ok(hash_redacted(&self.redacted(secrets)?))
    }
}

/// The hash of a redacted spec (canonical JSON: sorted keys).
pub fn hash_redacted(redacted: &serde_json::Value) -> String {
    let canonical = serde_json::to_string(redacted).expect("JSON");
    let digest = Sha256::digest(canonical.as_bytes());
    hex(&digest[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `key: value` lines of a redacted spec, for unified diffs. Secrets render as
/// `(secret NAME)`; a changed keyed hash shows as `(secret NAME, changed)` on
/// the new side only.
pub fn spec_lines(redacted: &serde_json::Value, other: Option<&serde_json::Value>) -> Vec<String> {
    let mut out = Vec::new();
    flatten("", redacted, other, &mut out);
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, other: Option<&serde_json::Value>, out: &mut Vec<String>) {
    use serde_json::Value as J;
    if let J::Object(map) = v
        && let Some(J::String(label)) = map.get("redacted")
    {
        let hash = map.get("keyed_hash");
        let changed = other.is_some_and(|o| o.get("keyed_hash").is_some_and(|h| Some(h) != hash));
        let note = if changed { ", changed" } else { "" };
        out.push(format!("{prefix}: ({}{note})", crate::term::line(label)));
        return;
    }
    match v {
        J::Object(map) => {
            for (k, val) in map {
                if matches!(val, J::Null) {
                    continue;
                }
                // A key of a deployed spec is the server's text: one line, escaped.
                let key = crate::term::line(k);
                let p = if prefix.is_empty() { key.into_owned() } else { format!("{prefix}.{key}") };
                flatten(&p, val, other.and_then(|o| o.get(k)), out);
            }
        }
        J::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let vals: Vec<String> = items.iter().map(|i| i.to_string()).collect();
            out.push(format!("{prefix}: [{}]", vals.join(", ")));
        }
        J::Array(items) => {
            for (i, val) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), val, other.and_then(|o| o.get(i)), out);
            }
        }
        other_value => out.push(format!("{prefix}: {other_value}")),
    }
}
