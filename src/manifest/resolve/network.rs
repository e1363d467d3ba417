//! How a service is networked and which namespaces it shares: `networks`
//! (list or map with aliases and fixed addresses), `app_network`,
//! `network_mode`, `pid`, `ipc` and `container_name`; the options of an
//! app's networks; and the checks across an app's services (`service:NAME`
//! names a service of the app, no cycles) and across the fleet (container
//! names unique per server).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::network::check_container_name;
use crate::model::spec::DEFAULT_NETWORK;
use crate::model::*;

/// A service's networking, each field parsed.
#[derive(Default)]
pub(super) struct Networking {
    pub networks: Vec<Name>,
    pub endpoints: BTreeMap<Name, Endpoint>,
    pub app_network: bool,
    pub network_mode: Option<Namespace>,
    pub pid: Option<Namespace>,
    pub ipc: Option<Namespace>,
    pub container_name: Option<String>,
}

impl<'a> Resolver<'a> {
    pub(super) fn networking(&mut self, at: At<'a>, base: &FieldPath, s: &raw::RawService) -> Networking {
        let network_mode = self.namespace(at, base, NamespaceKind::Network, s.network_mode.as_deref());
        let pid = self.namespace(at, base, NamespaceKind::Pid, s.pid.as_deref());
        let ipc = self.namespace(at, base, NamespaceKind::Ipc, s.ipc.as_deref());
        let (networks, endpoints, lists_default) = self.service_networks(at, base, s.networks.as_ref());
        let app_network = s.app_network.unwrap_or(true);
        if let Some(mode) = &network_mode {
            let why = match mode {
                Namespace::Host => "with `network_mode: host` the container uses the server's network",
                Namespace::None => "with `network_mode: none` the container has no network",
                _ => "the container shares another container's network stack",
            };
            if s.ports.as_ref().is_some_and(|p| !p.is_empty()) {
                self.push(
                    at.err(&base.key("ports"), "network-mode-ports", format!("`ports` cannot be published: {why}"))
                        .help("remove `ports` (a service in host mode listens on the server's ports directly), or remove `network_mode`"),
                );
            }
            if s.networks.is_some() {
                self.push(
                    at.err(
                        &base.key("networks"),
                        "network-mode-networks",
                        format!("`networks` cannot be joined: {why}"),
                    )
                    .help("remove `networks` or `network_mode`"),
                );
            }
            if s.app_network == Some(true) {
                self.push(
                    at.err(
                        &base.key("app_network"),
                        "network-mode-networks",
                        format!("the app's network cannot be joined: {why}"),
                    )
                    .help("remove `app_network` or `network_mode`"),
                );
            }
            if matches!(mode, Namespace::Service(_) | Namespace::Container(_)) {
                for field in ["hostname", "extra_hosts"] {
                    let set = if field == "hostname" { s.hostname.is_some() } else { s.extra_hosts.is_some() };
                    if set {
                        self.push(
                            at.err(
                                &base.key(field),
                                "network-mode-conflict",
                                format!("`{field}` cannot be set: {why}"),
                            )
                            .help(format!("set `{field}` on the container whose network this one shares")),
                        );
                    }
                }
            }
        } else if !app_network {
            if lists_default {
                self.push(
                    at.err(
                        &base.key("app_network"),
                        "conflicting-fields",
                        "`app_network: false` but `networks` lists `default`, the app's network",
                    )
                    .help("remove `default` from `networks`, or `app_network: false`"),
                );
            } else if networks.is_empty() {
                self.push(
                    at.err(&base.key("app_network"), "no-network", "`app_network: false` and no `networks`: the service would be on no network")
                        .help("list the networks it joins under `networks`, or write `network_mode: none` for no network at all"),
                );
            }
        }
        let container_name = s.container_name.as_ref().and_then(|c| match check_container_name(c) {
            Ok(()) if crate::model::observed::leftover(c).is_some() => {
                self.push(
                    at.err(
                        &base.key("container_name"),
                        "invalid-container-name",
                        format!("`{c}` looks like a container tomo sets aside during a recreate"),
                    )
                    .help("choose a name not ending in `-tomo-new` or `-tomo-old-…`"),
                );
                None
            }
            Ok(()) => Some(c.clone()),
            Err(e) => {
                self.push(
                    at.err(&base.key("container_name"), "invalid-container-name", e)
                        .help("e.g. `container_name: vaultwarden`"),
                );
                None
            }
        });
        Networking { networks, endpoints, app_network, network_mode, pid, ipc, container_name }
    }

    fn namespace(&mut self, at: At<'a>, base: &FieldPath, kind: NamespaceKind, v: Option<&str>) -> Option<Namespace> {
        match Namespace::parse(kind, v?) {
            Ok(ns) => ns,
            Err(e) => {
                self.push(
                    at.err(&base.key(kind.field()), "invalid-namespace", e).help(format!("write {}", kind.rule())),
                );
                None
            }
        }
    }

    /// The extra networks (never `default`), the endpoint options, and
    /// whether `default` was listed.
    fn service_networks(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        nets: Option<&raw::RawServiceNetworks>,
    ) -> (Vec<Name>, BTreeMap<Name, Endpoint>, bool) {
        let mut networks = Vec::new();
        let mut endpoints = BTreeMap::new();
        let mut lists_default = false;
        let entries: Vec<(FieldPath, &str, Option<&raw::RawServiceNetwork>)> = match nets {
            None => Vec::new(),
            Some(raw::RawServiceNetworks::List(list)) => {
                list.iter().enumerate().map(|(i, n)| (base.key("networks").index(i), n.as_str(), None)).collect()
            }
            Some(raw::RawServiceNetworks::Map(map)) => {
                map.iter().map(|(n, o)| (base.key("networks").key(n), n.as_str(), o.as_ref())).collect()
            }
        };
        for (p, n, opts) in entries {
            let Some(name) = self.name(at, &p, n) else { continue };
            if networks.contains(&name) || (lists_default && name.as_str() == DEFAULT_NETWORK) {
                self.push(
                    at.err(&p, "duplicate-name", format!("network `{name}` is listed twice"))
                        .help("list each network once"),
                );
                continue;
            }
            if let Some(e) = opts.and_then(|o| self.endpoint(at, &p, o)) {
                endpoints.insert(name.clone(), e);
            }
            if name.as_str() == DEFAULT_NETWORK {
                lists_default = true;
            } else {
                networks.push(name);
            }
        }
        (networks, endpoints, lists_default)
    }

    fn endpoint(&mut self, at: At<'a>, p: &FieldPath, o: &raw::RawServiceNetwork) -> Option<Endpoint> {
        let mut e = Endpoint::default();
        for (i, a) in o.aliases.iter().flatten().enumerate() {
            match check_container_name(a) {
                Ok(()) => e.aliases.push(a.clone()),
                Err(_) => self.push(
                    at.err(
                        &p.key("aliases").index(i),
                        "invalid-alias",
                        format!("`{}` is not a valid alias", a.escape_default()),
                    )
                    .help("an alias is a host name, e.g. `db` or `ssrf_proxy`"),
                ),
            }
        }
        if let Some(ip) = &o.ipv4_address {
            match ip.parse::<Ipv4Addr>() {
                Ok(addr) => e.ipv4_address = Some(addr),
                Err(_) => self.push(
                    at.err(
                        &p.key("ipv4_address"),
                        "invalid-address",
                        format!("`{}` is not an IPv4 address", ip.escape_default()),
                    )
                    .help("e.g. `ipv4_address: 10.213.0.10`"),
                ),
            }
        }
        (!e.is_empty()).then_some(e)
    }

    /// The options of an app's network; `default` configures the app's own.
    pub(super) fn network_decl(
        &mut self,
        at: At<'a>,
        p: &FieldPath,
        name: &Name,
        d: &raw::RawNetworkDecl,
    ) -> NetworkDecl {
        let external = d.external.unwrap_or(false);
        if name.as_str() == DEFAULT_NETWORK {
            for (field, set) in [("external", d.external.is_some()), ("name", d.name.is_some())] {
                if set {
                    self.push(
                        at.err_at_key(&p.key(field), "default-network", format!("the app's own network (`default`) takes no `{field}`"))
                            .help("tomo names and creates the app's network itself; declare another network for an existing one"),
                    );
                }
            }
        }
        if external && (d.internal.is_some() || d.driver.is_some() || d.driver_opts.is_some()) {
            self.push(
                at.err(
                    p,
                    "external-network-options",
                    "an external network takes no `internal`, `driver` or `driver_opts`: tomo does not create it",
                )
                .help("remove them, or remove `external: true` for a network tomo creates"),
            );
        }
        if let Some(n) = &d.name
            && let Err(e) = check_container_name(n)
        {
            self.push(at.err(
                &p.key("name"),
                "invalid-name",
                format!("network name: {}", e.replace("container", "network")),
            ));
        }
        if d.driver.as_deref().is_some_and(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control())) {
            self.push(
                at.err(&p.key("driver"), "invalid-driver", "invalid network driver")
                    .help("a driver is a name, e.g. `bridge` or `macvlan`"),
            );
        }
        let options = NetworkOptions {
            internal: d.internal.unwrap_or(false),
            driver: d.driver.clone().filter(|s| s != "bridge"),
            driver_opts: d.driver_opts.clone().unwrap_or_default(),
        };
        NetworkDecl { external, name: d.name.clone(), options }
    }

    /// The `service:NAME` references of an app's services: each names
    /// another service of the app; an `ipc` one a `shareable` service.
    pub(super) fn check_namespaces(&mut self, at: At<'a>, single: bool, services: &BTreeMap<Name, Service>) {
        for (name, svc) in services {
            let base = super::checks::service_base(single, name);
            let fields = [
                (NamespaceKind::Network, &svc.network_mode),
                (NamespaceKind::Pid, &svc.pid),
                (NamespaceKind::Ipc, &svc.ipc),
            ];
            for (kind, ns) in fields {
                let Some(target) = ns.as_ref().and_then(Namespace::service) else { continue };
                let p = base.key(kind.field());
                let field = kind.field();
                if target == name {
                    self.push(
                        at.err(&p, "namespace-self", format!("`{field}: service:{name}` names this service itself"))
                            .help("name another service of this app"),
                    );
                } else if let Some(t) = services.get(target) {
                    if t.state == ServiceState::Absent && svc.state != ServiceState::Absent {
                        self.push(
                            at.err(
                                &p,
                                "absent-dependency",
                                format!("`{field}: service:{target}` names a service declared `state: absent`"),
                            )
                            .help(format!("declare `{target}` running or stopped, or remove `{field}` from `{name}`")),
                        );
                    } else if kind == NamespaceKind::Ipc && t.ipc != Some(Namespace::Shareable) {
                        self.push(
                            at.err(&p, "ipc-not-shareable", format!("`{target}` does not share its IPC namespace"))
                                .help(format!("set `ipc: shareable` on `{target}`")),
                        );
                    }
                } else {
                    let known: Vec<&str> = services.keys().map(Name::as_str).filter(|s| *s != name.as_str()).collect();
                    let help = match crate::diag::did_you_mean(target.as_str(), known.iter().copied()) {
                        Some(s) => format!("did you mean `service:{s}`?"),
                        None if known.is_empty() => {
                            "this app has no other services; use `container:NAME` for a container of another app"
                                .to_string()
                        }
                        None => format!("services of this app: {}", known.join(", ")),
                    };
                    self.push(
                        at.err(&p, "unknown-service", format!("`{target}` is not a service of this app")).help(help),
                    );
                }
            }
        }
    }

    /// Two services of an app asking for one address on one network.
    pub(super) fn check_fixed_addresses(&mut self, at: At<'a>, single: bool, services: &BTreeMap<Name, Service>) {
        let mut seen: BTreeMap<(&Name, Ipv4Addr), &Name> = BTreeMap::new();
        for (name, svc) in services.iter().filter(|(_, s)| s.state != ServiceState::Absent) {
            for (net, e) in &svc.endpoints {
                let Some(addr) = e.ipv4_address else { continue };
                if let Some(first) = seen.insert((net, addr), name) {
                    let p =
                        super::checks::service_base(single, name).key("networks").key(net.as_str()).key("ipv4_address");
                    self.push(
                        at.err(&p, "duplicate-address", format!("{addr} on network `{net}` is already `{first}`'s"))
                            .help("give each service its own address"),
                    );
                }
            }
        }
    }

    /// `container_name` only on one-service apps.
    pub(super) fn check_container_name_use(&mut self, at: At<'a>, services: &BTreeMap<String, raw::RawMultiService>) {
        if services.len() <= 1 {
            return;
        }
        for name in services.iter().filter(|(_, s)| s.service.container_name.is_some()).map(|(n, _)| n) {
            let p = FieldPath::root().key("services").key(name).key("container_name");
            self.push(
                at.err(&p, "container-name-multi", "`container_name` is only for one-service apps")
                    .help("the containers of a multi-service app are named `<app>-<service>`; rename the service, or move it to an app of its own"),
            );
        }
    }

    /// Container names are unique per server across all apps; reported at
    /// an explicit `container_name`, naming the other app and where it is.
    pub(super) fn check_container_names(&mut self, desired: &Desired, app_ats: &BTreeMap<Name, At<'a>>) {
        let mut seen: BTreeMap<(&Name, String), (&App, &Name)> = BTreeMap::new();
        // Explicit names last, so that each clash is reported at one.
        let mut all: Vec<(&App, &Service)> = desired
            .apps
            .values()
            .filter(|a| a.state != AppState::Absent)
            .flat_map(|a| a.services.values().filter(|s| s.state != ServiceState::Absent).map(move |s| (a, s)))
            .collect();
        all.sort_by_key(|(_, s)| s.container_name.is_some());
        for (app, svc) in all {
            for server in &app.servers {
                let cname = app.container_name(&svc.name);
                let Some((other, other_svc)) = seen.get(&(server, cname.clone())).copied() else {
                    seen.insert((server, cname), (app, &svc.name));
                    continue;
                };
                if svc.container_name.is_none() || other.name == app.name {
                    continue;
                }
                let (Some(at), Some(oat)) = (app_ats.get(&app.name), app_ats.get(&other.name)) else { continue };
                let p = super::checks::service_base(app.single, &svc.name).key("container_name");
                let op = if other.services[other_svc].container_name.is_some() {
                    super::checks::service_base(other.single, other_svc).key("container_name")
                } else {
                    FieldPath::root().key("name")
                };
                let place = format!("{}:{}", other.origin.file, oat.span(&op).line);
                self.push(
                    at.err(
                        &p,
                        "duplicate-container-name",
                        format!(
                            "container name `{cname}` on server `{server}` is already taken by app `{}` ({place})",
                            other.name
                        ),
                    )
                    .related(oat.file, oat.span(&op), format!("`{cname}` of app `{}`", other.name))
                    .help("container names are unique per server; choose another `container_name`"),
                );
            }
        }
    }
}
