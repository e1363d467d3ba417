//! How a container is networked and which namespaces it shares: the
//! `network_mode`, `pid` and `ipc` values, a service's endpoint options on a
//! network (aliases, fixed address), and the options of an app's network.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::Name;

/// A namespace a container shares instead of having its own: the host's,
/// none (network only), another service's of the same app, or any
/// container's by name. `Private` and `Shareable` are IPC modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    Host,
    None,
    Private,
    Shareable,
    /// Another service of the same app (its container, by name).
    Service(Name),
    /// Any container on the server, by name or id.
    Container(String),
}

/// Which namespace a field sets; each allows its own modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    Network,
    Pid,
    Ipc,
}

impl NamespaceKind {
    /// The field's name in a manifest.
    pub fn field(self) -> &'static str {
        match self {
            NamespaceKind::Network => "network_mode",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Ipc => "ipc",
        }
    }

    /// What the field accepts, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            NamespaceKind::Network => {
                "`bridge` (the app's network), `host`, `none`, `service:NAME` or `container:NAME`"
            }
            NamespaceKind::Pid => "`host`, `service:NAME` or `container:NAME`",
            NamespaceKind::Ipc => "`private`, `shareable`, `host`, `none`, `service:NAME` or `container:NAME`",
        }
    }
}

impl Namespace {
    /// Parses a `network_mode`, `pid` or `ipc` value. `Ok(None)`: the
    /// default (`bridge` for the network: the app's own).
    pub fn parse(kind: NamespaceKind, s: &str) -> Result<Option<Namespace>, String> {
        let bad = || format!("`{}` is not a {} value; write {}", s.escape_default(), kind.field(), kind.rule());
        let ns = match (kind, s) {
            (NamespaceKind::Network, "bridge" | "default") => return Ok(None),
            (_, "host") => Namespace::Host,
            (NamespaceKind::Network | NamespaceKind::Ipc, "none") => Namespace::None,
            (NamespaceKind::Ipc, "private") => Namespace::Private,
            (NamespaceKind::Ipc, "shareable") => Namespace::Shareable,
            _ => {
                if let Some(svc) = s.strip_prefix("service:") {
                    let n = Name::parse(svc).map_err(|e| format!("`service:{}`: {e}", svc.escape_default()))?;
                    Namespace::Service(n)
                } else if let Some(c) = s.strip_prefix("container:") {
                    check_container_name(c).map_err(|e| format!("`container:{}`: {e}", c.escape_default()))?;
                    Namespace::Container(c.to_string())
                } else {
                    return Err(bad());
                }
            }
        };
        Ok(Some(ns))
    }

    /// The service of the same app whose namespace this one joins.
    pub fn service(&self) -> Option<&Name> {
        match self {
            Namespace::Service(n) => Some(n),
            _ => None,
        }
    }

    /// The Docker value (`HostConfig.NetworkMode`, `PidMode`, `IpcMode`); a
    /// service is named by its container.
    pub fn as_docker(&self, container_of: impl Fn(&Name) -> String) -> String {
        match self {
            Namespace::Host => "host".into(),
            Namespace::None => "none".into(),
            Namespace::Private => "private".into(),
            Namespace::Shareable => "shareable".into(),
            Namespace::Service(n) => format!("container:{}", container_of(n)),
            Namespace::Container(c) => format!("container:{c}"),
        }
    }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// 255 characters (ids pass it too).
pub fn check_container_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || s.len() > 255 {
        return Err("a container name is letters, digits, `_`, `.` and `-`, starting with a letter or digit".into());
    }
    Ok(())
}

/// How a service joins one network: further names it answers to there and
/// a fixed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<Ipv4Addr>,
}

impl Endpoint {
    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty() && self.ipv4_address.is_none()
    }
}

/// Options a network is created with (Docker `NetworkCreate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetworkOptions {
    /// No route out of the network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// The driver; `None` is `bridge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

impl NetworkOptions {
    pub fn is_default(&self) -> bool {
        *self == NetworkOptions::default()
    }

    pub fn driver(&self) -> &str {
        self.driver.as_deref().unwrap_or("bridge")
    }

    /// Options as the Engine reports them (`bridge` is the default driver).
    pub fn observed(internal: bool, driver: Option<String>, driver_opts: BTreeMap<String, String>) -> NetworkOptions {
        NetworkOptions { internal, driver: driver.filter(|d| d != "bridge" && !d.is_empty()), driver_opts }
    }

    /// How a network on the server differs from these options, one phrase
    /// per difference (empty: it matches).
    pub fn differences(&self, have: &NetworkOptions) -> Vec<String> {
        let mut out = Vec::new();
        if self.internal != have.internal {
            out.push(format!("internal is {}, declared {}", have.internal, self.internal));
        }
        if self.driver() != have.driver() {
            out.push(format!("driver is `{}`, declared `{}`", have.driver(), self.driver()));
        }
        let opts = &have.driver_opts;
        if &self.driver_opts != opts {
            let show = |m: &BTreeMap<String, String>| {
                let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{{{}}}", v.join(", "))
            };
            out.push(format!("driver_opts are {}, declared {}", show(opts), show(&self.driver_opts)));
        }
        out
    }
}

/// An app's network: its options, or an existing one tomo only joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetworkDecl {
    pub external: bool,
    /// The name on the server, when not `<app>_<name>`.
    pub name: Option<String>,
    #[serde(default, flatten)]
    pub options: NetworkOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_values_parse_per_field() {
        use NamespaceKind::*;
        assert_eq!(Namespace::parse(Network, "bridge"), Ok(None));
        assert_eq!(Namespace::parse(Network, "host"), Ok(Some(Namespace::Host)));
        assert_eq!(Namespace::parse(Network, "none"), Ok(Some(Namespace::None)));
        assert_eq!(Namespace::parse(Network, "service:db"), Ok(Some(Namespace::Service(Name::parse("db").unwrap()))));
        assert_eq!(Namespace::parse(Pid, "container:vpn_1"), Ok(Some(Namespace::Container("vpn_1".into()))));
        assert_eq!(Namespace::parse(Ipc, "shareable"), Ok(Some(Namespace::Shareable)));
        assert!(Namespace::parse(Pid, "none").is_err());
        assert!(Namespace::parse(Pid, "private").is_err());
        assert!(Namespace::parse(Network, "private").is_err());
        assert!(Namespace::parse(Network, "service:Bad_Name").is_err());
        assert!(Namespace::parse(Network, "container:").is_err());
        assert!(Namespace::parse(Network, "container:a/b").is_err());
        assert!(Namespace::parse(Network, "overlay").unwrap_err().contains("network_mode"));
    }

    #[test]
    fn docker_values_name_the_container() {
        let to = |n: &Name| format!("app-{n}");
        assert_eq!(Namespace::Service(Name::parse("db").unwrap()).as_docker(to), "container:app-db");
        assert_eq!(Namespace::Container("x".into()).as_docker(to), "container:x");
        assert_eq!(Namespace::Host.as_docker(to), "host");
    }

    #[test]
    fn network_differences_are_named() {
        let o = NetworkOptions { internal: true, driver: None, driver_opts: BTreeMap::new() };
        assert!(o.differences(&o.clone()).is_empty());
        let have = NetworkOptions {
            internal: false,
            driver: Some("macvlan".into()),
            driver_opts: BTreeMap::from([("a".into(), "b".into())]),
        };
        let d = o.differences(&have);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("internal is false"));
    }
}
