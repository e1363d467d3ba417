//! What `market show` tells about an app beyond its catalog entry, read
//! from its definition file: each service with its image, ports, volumes
//! and environment, with the descriptions a CasaOS file gives them
//! (`services.*.x-casaos.{ports,volumes,envs}`), and the app's tips.

use serde::Serialize;

use super::casaos::pick_locale;
use super::compose::{self, text};
use crate::manifest::yaml::{self, Node, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AppDetail {
    pub services: Vec<ServiceDetail>,
    /// `x-casaos.tips.before_install`.
    pub tips: String,
    /// The port the store opens the app's web page on (`x-casaos.port_map`).
    pub port_map: String,
    /// The page's path (`x-casaos.index`).
    pub index: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ServiceDetail {
    pub name: String,
    pub image: String,
    pub ports: Vec<PortDetail>,
    pub volumes: Vec<VolumeDetail>,
    pub env: Vec<EnvDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PortDetail {
    pub published: Option<String>,
    pub target: String,
    pub protocol: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct VolumeDetail {
    pub source: String,
    pub target: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EnvDetail {
    pub name: String,
    pub value: String,
    pub description: String,
}

/// The detail of a compose file or template; `None` when it cannot be parsed.
pub fn read(text_: &str) -> Option<AppDetail> {
    let (docs, err) = yaml::parse(text_);
    if err.is_some() {
        return None;
    }
    let root = docs.into_iter().next()?.root;
    let x = root.get("x-casaos");
    let tips = x.and_then(|x| x.get("tips")).and_then(|t| t.get("before_install")).map(localized).unwrap_or_default();
    Some(AppDetail {
        services: compose::services(&root).into_iter().map(|(n, s)| service(n, s)).collect(),
        tips,
        port_map: x.and_then(|x| x.get("port_map")).and_then(text).unwrap_or_default(),
        index: x.and_then(|x| x.get("index")).and_then(text).unwrap_or_default(),
    })
}

fn localized(n: &Node) -> String {
    match n.as_map() {
        Some(m) => pick_locale(m.iter().filter_map(|(k, v)| Some((k.name.as_str(), text(v)?)))).unwrap_or_default(),
        None => text(n).unwrap_or_default(),
    }
}

/// The descriptions `x-casaos.<list>` gives, by `container`.
fn described(s: &Node, list: &str, key: &str) -> String {
    let Some(Value::Seq(items)) = s.get("x-casaos").and_then(|x| x.get(list)).map(|n| &n.value) else {
        return String::new();
    };
    items
        .iter()
        .find(|i| i.get("container").and_then(text).as_deref() == Some(key))
        .and_then(|i| i.get("description"))
        .map(localized)
        .unwrap_or_default()
}

fn seq(n: Option<&Node>) -> &[Node] {
    match n.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

fn service(name: &str, s: &Node) -> ServiceDetail {
    let ports = seq(s.get("ports"))
        .iter()
        .filter_map(compose::port_parts)
        .map(|(published, target, protocol)| PortDetail {
            description: described(s, "ports", &target),
            published,
            target,
            protocol,
        })
        .collect();
    let volumes = seq(s.get("volumes"))
        .iter()
        .filter_map(|v| {
            let (source, target) = match (v.as_map(), text(v)) {
                (Some(_), _) => (v.get("source").and_then(text).unwrap_or_default(), v.get("target").and_then(text)?),
                (None, Some(t)) => {
                    let mut parts = t.splitn(3, ':');
                    let first = parts.next().unwrap_or_default().to_string();
                    match parts.next() {
                        Some(target) => (first, target.to_string()),
                        None => (String::new(), first),
                    }
                }
                _ => return None,
            };
            Some(VolumeDetail { description: described(s, "volumes", &target), source, target })
        })
        .collect();
    ServiceDetail {
        name: name.to_string(),
        image: s.get("image").and_then(text).unwrap_or_default(),
        ports,
        volumes,
        env: env(s),
    }
}

/// `environment` (a map or `KEY=VALUE` list) or a template's `env`.
fn env(s: &Node) -> Vec<EnvDetail> {
    let node = s.get("environment").or_else(|| s.get("env"));
    let pairs: Vec<(String, String)> = match node.map(|n| &n.value) {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| {
                let value = match v.get("secret").and_then(text) {
                    Some(secret) => format!("{{secret: {secret}}}"),
                    None => text(v).unwrap_or_default(),
                };
                (k.name.clone(), value)
            })
            .collect(),
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(text)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs.into_iter().map(|(name, value)| EnvDetail { description: described(s, "envs", &name), name, value }).collect()
}
