//! What observation found on each server: containers, networks, volumes and
//! images, as plain data. Filled by `observe`, read by `diff`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Name;
use super::labels;
use super::subnet::Subnet;

/// The observed state of every server in scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub servers: BTreeMap<Name, ServerState>,
    /// From the journal, not the servers: the run a recreate of (server,
    /// app, service) was cut short in, the newest. The engine fills it when
    /// a server shows a leftover of an interrupted recreate; the plan names
    /// the run in the action that puts the leftover right. Not part of a
    /// plan's basis.
    #[serde(skip)]
    pub interrupted: BTreeMap<(Name, Name, Name), i64>,
    /// What the probe found of each server whose `docker` block tomo
    /// manages (`ensure: present` or `absent`): its OS and Docker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<Name, super::host::HostFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Reached(Inventory),
    /// The server could not be observed; the reason in one line.
    Unreachable(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub containers: Vec<ContainerObs>,
    /// tomo-managed networks.
    pub networks: Vec<NetworkObs>,
    /// Networks another tomo installation made: never planned for, seen only
    /// to tell that the fleet was managed by a store that is gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<NetworkObs>,
    /// tomo-managed volumes.
    pub volumes: Vec<VolumeObs>,
    pub images: Vec<ImageObs>,
    /// IPv4 ranges the server uses besides this installation's networks
    /// (other networks' subnets, its routes): a new network's subnet must
    /// overlap none of them.
    #[serde(default)]
    pub taken: Vec<Subnet>,
    /// Host paths of declared bind mounts that do not exist on the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerObs {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub state: RunState,
    pub health: Option<Health>,
    /// The exit code, for an exited container.
    #[serde(default)]
    pub exit_code: Option<i64>,
    pub labels: BTreeMap<String, String>,
    /// Made by this tomo installation.
    pub ours: bool,
    /// Its mounts (from the list call), sorted by target.
    #[serde(default)]
    pub mounts: Vec<MountObs>,
    /// Ids of the networks it is attached to.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// A mount of an observed container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MountObs {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path (of a bind mount; a volume's folder).
    pub source: String,
    /// The path in the container.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
    Other,
}

/// A mount of data of an existing container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataMount {
    pub kind: DataKind,
    /// The volume's name, or the host path of a bind mount.
    pub source: String,
    /// The path in the container.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    /// A volume the manifests name.
    Named,
    /// A volume without a name in the manifests (declared `- /path`, or the image's `VOLUME`).
    Anonymous,
    Bind,
}

impl std::fmt::Display for DataMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DataKind::Anonymous => {
                let short = crate::term::head(&self.source, 12);
                let more = if short.len() < self.source.len() { "…" } else { "" };
                write!(f, "anonymous volume at {} ({short}{more})", self.target)
            }
            DataKind::Named => write!(f, "volume `{}` at {}", self.source, self.target),
            DataKind::Bind => write!(f, "bind mount {} at {}", self.source, self.target),
        }
    }
}

impl ContainerObs {
    /// Made by some tomo installation (maybe another one).
    pub fn managed(&self) -> bool {
        self.labels.get(labels::MANAGED).is_some_and(|v| v == "true")
    }
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
    Other,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Restarting => "restarting",
            RunState::Exited => "exited",
            RunState::Dead => "dead",
            RunState::Removing => "removing",
            RunState::Other => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkObs {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Its IPv4 subnet, if it has one.
    #[serde(default)]
    pub subnet: Option<Subnet>,
    /// When the Engine created it (RFC 3339): of duplicates, the oldest is kept.
    #[serde(default)]
    pub created: String,
    /// Its driver, `internal` and driver options, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<super::NetworkOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeObs {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageObs {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
}

impl NetworkObs {
    /// Orders duplicates: the oldest first, ties by id.
    pub fn age_key(&self) -> (String, &str) {
        (created_key(&self.created), &self.id)
    }
}

/// An Engine timestamp (`2026-01-02T03:04:05.1Z`, fraction of varying
/// length) made comparable as text: the fraction padded to nine digits.
pub fn created_key(created: &str) -> String {
    let body = created.trim_end_matches('Z');
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac: String = frac.chars().take_while(char::is_ascii_digit).take(9).collect();
    format!("{secs}.{frac:0<9}")
}

impl Inventory {
    /// This installation's networks named `name`, the one to keep first.
    pub fn networks_named(&self, name: &str) -> Vec<&NetworkObs> {
        let mut v: Vec<&NetworkObs> = self.networks.iter().filter(|n| n.name == name).collect();
        v.sort_by(|a, b| a.age_key().cmp(&b.age_key()));
        v
    }

    /// Whether `reference` (as written in a manifest) is present.
    pub fn has_image(&self, reference: &str) -> bool {
        self.image_id(reference).is_some()
    }

    /// The local image id `reference` resolves to.
    pub fn image_id(&self, reference: &str) -> Option<&str> {
        let want = normalize_reference(reference);
        self.images
            .iter()
            .find(|i| {
                i.tags.iter().any(|t| normalize_reference(t) == want)
                    || i.digests.iter().any(|d| normalize_reference(d) == want)
                    || i.id == reference
            })
            .map(|i| i.id.as_str())
    }

    /// The registry digest of local image `image_id`, as
    /// `repository@sha256:…`: the one of `reference`'s repository when the
    /// image has several, else the first; none for an image never pulled
    /// from or pushed to a registry. From the image list: no Docker call.
    pub fn repo_digest(&self, image_id: &str, reference: &str) -> Option<&str> {
        let image = self.images.iter().find(|i| i.id == image_id)?;
        let repo = repository(reference);
        image.digests.iter().find(|d| repository(d) == repo).or(image.digests.first()).map(String::as_str)
    }

    pub fn container(&self, name: &str) -> Option<&ContainerObs> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// What a container left by an interrupted recreate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// `<name>-tomo-old-<id>`: the previous container, renamed aside (stop-first).
    Old,
    /// `<name>-tomo-new`: the replacement, not yet renamed (start-first).
    New,
}

/// The container name a leftover of an interrupted recreate belongs to.
pub fn leftover(name: &str) -> Option<(&str, Leftover)> {
    if let Some((base, _)) = name.split_once("-tomo-old-") {
        return Some((base, Leftover::Old));
    }
    name.strip_suffix("-tomo-new").map(|base| (base, Leftover::New))
}

/// The repository of a reference in the form Docker compares by, without
/// tag or digest: `nginx:1` → `docker.io/library/nginx`.
pub fn repository(r: &str) -> String {
    let full = normalize_reference(r);
    let name = full.split_once('@').map_or(full.as_str(), |(n, _)| n);
    let tag_at = name.rfind(':').filter(|&i| !name[i..].contains('/'));
    tag_at.map_or(name, |i| &name[..i]).to_string()
}

/// The digest part of `repository@sha256:…` (or the text itself).
pub fn digest_of(reference: &str) -> &str {
    reference.rsplit_once('@').map_or(reference, |(_, d)| d)
}

/// `nginx` → `docker.io/library/nginx:latest`, the form Docker compares by.
pub fn normalize_reference(r: &str) -> String {
    let (name, suffix) = match r.split_once('@') {
        Some((n, d)) => (n.to_string(), format!("@{d}")),
        None => {
            let last = r.rsplit('/').next().unwrap_or(r);
            if last.contains(':') { (r.to_string(), String::new()) } else { (format!("{r}:latest"), String::new()) }
        }
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if let Some(official) = name.strip_prefix("docker.io/").filter(|n| !n.contains('/')) {
        // `docker.io/mongo:3.6` is the official image `mongo:3.6`.
        format!("docker.io/library/{official}")
    } else if has_registry {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_digest_of_an_image_is_that_of_the_declared_repository() {
        let d1 = format!("127.0.0.1:5000/t@sha256:{}", "a".repeat(64));
        let d2 = format!("other/t@sha256:{}", "b".repeat(64));
        let inv = Inventory {
            images: vec![
                ImageObs { id: "sha256:1".into(), tags: vec![], digests: vec![d2.clone(), d1.clone()] },
                ImageObs { id: "sha256:2".into(), tags: vec!["x:1".into()], digests: vec![] },
            ],
            ..Inventory::default()
        };
        assert_eq!(inv.repo_digest("sha256:1", "127.0.0.1:5000/t:v1"), Some(d1.as_str()));
        assert_eq!(inv.repo_digest("sha256:1", "docker.io/other/t"), Some(d2.as_str()));
        assert_eq!(inv.repo_digest("sha256:1", "elsewhere/z"), Some(d2.as_str()));
        assert_eq!(inv.repo_digest("sha256:2", "x:1"), None);
        assert_eq!(inv.repo_digest("sha256:3", "x:1"), None);
        assert_eq!(repository("127.0.0.1:5000/t"), "127.0.0.1:5000/t");
        assert_eq!(repository("nginx:1.27"), "docker.io/library/nginx");
        assert_eq!(repository(&d1), "127.0.0.1:5000/t");
        assert_eq!(digest_of(&d1), format!("sha256:{}", "a".repeat(64)));
        // A pinned reference finds the image by its digest.
        assert_eq!(inv.image_id(&d1), Some("sha256:1"));
    }

    #[test]
    fn references_normalize() {
        assert_eq!(normalize_reference("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_reference("traefik/whoami:v1"), "docker.io/traefik/whoami:v1");
        assert_eq!(normalize_reference("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(normalize_reference("nginx@sha256:ab"), "docker.io/library/nginx@sha256:ab");
        assert_eq!(normalize_reference("docker.io/mongo:3.6"), "docker.io/library/mongo:3.6");
        assert_eq!(normalize_reference("docker.io/valkey/valkey:9"), "docker.io/valkey/valkey:9");
        let inv = Inventory {
            images: vec![ImageObs { id: "sha256:1".into(), tags: vec!["nginx:latest".into()], digests: vec![] }],
            ..Inventory::default()
        };
        assert!(inv.has_image("nginx"));
        assert!(inv.has_image("docker.io/library/nginx:latest"));
        assert!(!inv.has_image("nginx:1.27"));
        assert!(inv.has_image("docker.io/nginx"), "the Engine lists `docker.io/nginx` as `nginx:latest`");
    }
}
