//! Networks: the top-level declarations, a service's membership (list or
//! map with aliases), `network_mode`, and the aliases that keep old names
//! resolving after a rename.

use std::collections::{BTreeMap, BTreeSet};

use super::convert::{Cx, tomo_name};
use super::report::Status;
use super::values;
use crate::manifest::raw::{RawNetworkDecl, RawServiceNetwork, RawServiceNetworks};
use crate::manifest::yaml::{Node, Value};

pub(super) fn top_networks(cx: &mut Cx<'_>, v: &Node) -> BTreeMap<String, RawNetworkDecl> {
    let mut out = BTreeMap::new();
    // `default` is the app's own network; two compose names may spell one tomo name.
    let mut taken = BTreeSet::from(["default".to_string()]);
    for (k, n) in values::map(cx, v, "networks") {
        if k.name == "default" {
            let plain =
                n.as_map().is_none_or(|m| m.iter().all(|(k, v)| k.name == "driver" && v.as_str() == Some("bridge")));
            let (status, note) = if plain {
                (Status::Mapped, "the app's own network")
            } else {
                (Status::Dropped, "the app's own network takes no options; declare another network instead")
            };
            cx.entry("", "networks.default", status, note);
            continue;
        }
        let Some(spelled) = tomo_name(&k.name) else {
            cx.error(k.span, "compose-network-name", format!("cannot make a network name of `{}`", k.name));
            continue;
        };
        let mut name = spelled.clone();
        while !taken.insert(name.clone()) {
            name.push('x');
        }
        if name != k.name {
            let note = if name == spelled {
                format!("named `{name}` (tomo names)")
            } else if spelled == "default" {
                format!("named `{name}` (tomo names; `default` is the app's own network)")
            } else {
                format!("named `{name}` (tomo names; `{spelled}` is another network of the file)")
            };
            cx.entry("", &format!("networks.{}", k.name), Status::Changed, note);
        }
        cx.networks.insert(k.name.clone(), name.clone());
        out.insert(name, decl(cx, &k.name, n));
    }
    out
}

fn decl(cx: &mut Cx<'_>, compose: &str, n: &Node) -> RawNetworkDecl {
    let mut d = RawNetworkDecl::default();
    let entries = if matches!(n.value, Value::Null) { &[][..] } else { values::map(cx, n, "networks") };
    if entries.is_empty() {
        cx.entry("", &format!("networks.{compose}"), Status::Mapped, "");
    }
    for (k, v) in entries {
        let key = format!("networks.{compose}.{}", k.name);
        let status = match k.name.as_str() {
            "driver" => {
                d.driver = values::string(cx, v);
                Status::Mapped
            }
            "driver_opts" => {
                let pairs = values::pairs(cx, v, '=').unwrap_or_default();
                d.driver_opts = Some(pairs.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect());
                Status::Mapped
            }
            "internal" => {
                d.internal = values::boolean(cx, v);
                Status::Mapped
            }
            "external" => {
                d.external = values::boolean(cx, v);
                Status::Mapped
            }
            "name" => {
                d.name = values::string(cx, v);
                Status::Mapped
            }
            "attachable" => {
                cx.entry("", &key, Status::Ignored, "swarm only: no effect on a single Engine's networks");
                continue;
            }
            x if x.starts_with("x-") => {
                cx.entry("", &key, Status::Ignored, "extension");
                continue;
            }
            "ipam" | "enable_ipv6" | "labels" => {
                cx.entry(
                    "",
                    &key,
                    Status::Dropped,
                    "tomo gives each network a subnet of its pool and no labels of yours",
                );
                continue;
            }
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown network key `{other}`"));
                continue;
            }
        };
        cx.entry("", &key, status, "");
    }
    if d.external == Some(true) && d.name.is_none() {
        // Compose looks an external network up by its key; tomo would look
        // for `<app>_<name>`.
        d.name = Some(compose.to_string());
        let key = format!("networks.{compose}.external");
        if let Some(e) = cx.report.iter_mut().rev().find(|e| e.service.is_empty() && e.key == key) {
            e.status = Status::Changed;
            e.note = format!("`name: {compose}` written: an external network is found by its compose name");
        }
    }
    d
}

/// A service's networks as tomo writes them.
#[derive(Default)]
pub(super) struct Membership {
    /// Joins the app's own network.
    pub app_network: bool,
    /// tomo network name → options (`default` for the app's own network).
    pub nets: BTreeMap<String, RawServiceNetwork>,
    /// Set by `network_mode` other than the app network: no networks at all.
    pub mode: Option<String>,
    /// Names to add as aliases once the networks are known (`container_name`).
    pub pending_alias: Vec<String>,
}

impl Membership {
    pub fn new() -> Membership {
        Membership { app_network: true, ..Default::default() }
    }

    /// Adds `alias` on every network the service joins.
    pub fn alias(&mut self, alias: &str) {
        if self.app_network {
            self.nets.entry("default".into()).or_default();
        }
        for opts in self.nets.values_mut() {
            let list = opts.aliases.get_or_insert_with(Vec::new);
            if !list.iter().any(|a| a == alias) {
                list.push(alias.to_string());
            }
        }
    }

    /// `(networks, app_network)` of the raw service.
    pub fn raw(mut self) -> (Option<RawServiceNetworks>, Option<bool>) {
        if self.mode.is_some() {
            return (None, None);
        }
        let app_network = (!self.app_network).then_some(false);
        let plain = self.nets.values().all(|o| *o == RawServiceNetwork::default());
        if plain {
            self.nets.remove("default");
            if self.nets.is_empty() {
                return (None, app_network);
            }
            return (Some(RawServiceNetworks::List(self.nets.into_keys().collect())), app_network);
        }
        let map = self.nets.into_iter().map(|(k, o)| (k, (o != RawServiceNetwork::default()).then_some(o))).collect();
        (Some(RawServiceNetworks::Map(map)), app_network)
    }
}

/// `networks:` of a service.
pub(super) fn service_networks(cx: &mut Cx<'_>, svc: &str, node: &Node, m: &mut Membership) {
    let items: Vec<(String, crate::diag::Span, Option<&Node>)> = match &node.value {
        Value::Seq(items) => items.iter().filter_map(|n| values::string(cx, n).map(|s| (s, n.span, None))).collect(),
        Value::Map(entries) => entries.iter().map(|(k, v)| (k.name.clone(), k.span, Some(v))).collect(),
        other => {
            cx.error(
                node.span,
                "compose-type",
                format!("`networks` is a list or a mapping, found {}", other.type_name()),
            );
            return;
        }
    };
    let mut notes = Vec::new();
    m.app_network = false;
    for (name, span, opts) in items {
        let tomo = if name == "default" {
            m.app_network = true;
            "default".to_string()
        } else if let Some(t) = cx.networks.get(&name) {
            t.clone()
        } else {
            cx.error(
                span,
                "compose-unknown-network",
                format!("network `{name}` is not declared under the top-level `networks`"),
            );
            continue;
        };
        let mut o = RawServiceNetwork::default();
        if let Some(opts) = opts.filter(|n| !matches!(n.value, Value::Null)) {
            for (k, v) in values::map(cx, opts, "networks") {
                match k.name.as_str() {
                    "aliases" => o.aliases = values::strings(cx, v),
                    "ipv4_address" => o.ipv4_address = values::string(cx, v),
                    other => notes.push(format!("`{other}` on `{name}` dropped")),
                }
            }
        }
        m.nets.insert(tomo, o);
    }
    if !m.app_network {
        notes.insert(0, "on these networks only (`app_network: false`), as compose does without `default`".into());
    }
    let dropped = notes.iter().any(|n| n.ends_with("dropped"));
    cx.entry(svc, "networks", if dropped { Status::Dropped } else { Status::Mapped }, notes.join("; "));
}

/// `network_mode:` of a service.
pub(super) fn network_mode(cx: &mut Cx<'_>, svc: &str, node: &Node, m: &mut Membership) {
    let Some(mode) = values::string(cx, node) else { return };
    let (status, note, value) = match mode.as_str() {
        "bridge" | "default" => (
            Status::Changed,
            format!(
                "`{mode}`: on the app's own (bridge) network instead of Docker's default one; ports publish the same"
            ),
            None,
        ),
        "host" | "none" => (Status::Mapped, String::new(), Some(mode.clone())),
        _ => match mode.split_once(':') {
            Some(("service", other)) => match cx.names.get(other) {
                Some(t) if t == other => (Status::Mapped, String::new(), Some(mode.clone())),
                Some(t) => (Status::Changed, format!("service `{other}` is named `{t}`"), Some(format!("service:{t}"))),
                None => {
                    cx.error(
                        node.span,
                        "compose-unknown-service",
                        format!("`{mode}`: there is no service `{other}` in this file"),
                    );
                    return;
                }
            },
            Some(("container", _)) => (Status::Mapped, String::new(), Some(mode.clone())),
            _ => {
                cx.error(node.span, "compose-network-mode", format!("unknown network_mode `{mode}`"));
                return;
            }
        },
    };
    cx.entry(svc, "network_mode", status, note);
    m.mode = value;
}

/// Compose service names other services reach a service by, besides its own:
/// `links: [svc:alias]` (aliases collected before services are converted).
pub(super) fn aliases_for(cx: &Cx<'_>, compose: &str) -> BTreeSet<String> {
    cx.link_aliases.get(compose).cloned().unwrap_or_default()
}
