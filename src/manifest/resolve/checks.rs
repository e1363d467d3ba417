//! Checks across a document or the whole fleet: the dependencies between an
//! app's services (unknown names, cycles), host ports published twice on one
//! server, and secret references against the vault.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{At, Resolver, SecretCheck};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::yaml;
use crate::model::*;

impl<'a> Resolver<'a> {
    pub(super) fn check_dependencies(&mut self, at: At<'a>, single: bool, services: &BTreeMap<Name, Service>) {
        let base = |svc: &Name| service_base(single, svc);
        for (name, svc) in services {
            for dep in svc.depends_on.keys() {
                let p = base(name).key("depends_on").key(dep.as_str());
                let p = if at.node.node_at(&p).is_some() {
                    p
                } else {
                    // list form: find the index
                    let list = base(name).key("depends_on");
                    let idx = at.node.node_at(&list).and_then(|n| match &n.value {
                        yaml::Value::Seq(items) => items.iter().position(|i| i.as_str() == Some(dep.as_str())),
                        _ => None,
                    });
                    idx.map_or(list.clone(), |i| list.index(i))
                };
                if dep == name {
                    self.push(
                        at.err(&p, "dependency-cycle", format!("service `{name}` depends on itself"))
                            .help("remove it from its own depends_on"),
                    );
                } else if !services.contains_key(dep) {
                    let known: Vec<&str> = services.keys().map(Name::as_str).filter(|s| *s != name.as_str()).collect();
                    let help = match crate::diag::did_you_mean(dep.as_str(), known.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if known.is_empty() => {
                            "this app has no other services; depends_on names services of the same app".to_string()
                        }
                        None => format!("services of this app: {}", known.join(", ")),
                    };
                    if svc.optional_deps.contains(dep) {
                        let msg = format!("`{dep}` is not a service of this app; with `required: false` it is ignored");
                        self.push(
                            Diagnostic::warning("unknown-service", msg)
                                .at(at.file, at.span(&p))
                                .field(p.clone())
                                .help(help),
                        );
                    } else {
                        self.push(
                            at.err(&p, "unknown-service", format!("`{dep}` is not a service of this app")).help(help),
                        );
                    }
                } else if svc.state != ServiceState::Absent
                    && services.get(dep).is_some_and(|d| d.state == ServiceState::Absent)
                {
                    let msg = format!("`{name}` depends on `{dep}`, which is declared `state: absent`");
                    let help = format!("declare `{dep}` running or stopped, or remove it from depends_on");
                    if svc.optional_deps.contains(dep) {
                        // Compose's pattern: `required: false` on a service of an inactive profile.
                        let msg = format!("{msg}; with `required: false` it is not waited for");
                        self.push(
                            Diagnostic::warning("absent-dependency", msg)
                                .at(at.file, at.span(&p))
                                .field(p.clone())
                                .help(help),
                        );
                    } else {
                        self.push(at.err(&p, "absent-dependency", msg).help(help));
                    }
                }
            }
        }
        self.report_cycles(at, single, services);
    }

    /// Reports each dependency cycle once, at the `depends_on` of its first service.
    fn report_cycles(&mut self, at: At<'a>, single: bool, services: &BTreeMap<Name, Service>) {
        let base = |svc: &Name| service_base(single, svc);
        let mut reported: BTreeSet<Vec<&Name>> = BTreeSet::new();
        for cycle in dependency_cycles(services) {
            let mut canon = cycle.clone();
            canon.sort();
            if !reported.insert(canon) {
                continue;
            }
            let mut text: Vec<String> = cycle.iter().map(|n| n.to_string()).collect();
            text.push(cycle[0].to_string());
            let first = cycle[0];
            // A cycle through `service:NAME` is shown at that field.
            let field = |n: &Name| {
                ["depends_on", "network_mode", "pid", "ipc"]
                    .into_iter()
                    .map(|f| base(n).key(f))
                    .find(|p| at.node.node_at(p).is_some())
                    .unwrap_or_else(|| base(n).key("depends_on"))
            };
            let mut d = at
                .err_at_key(
                    &field(first),
                    "dependency-cycle",
                    format!("dependency cycle: {}", text.join(" -> ")),
                )
                .help("services cannot wait for each other in a circle; remove one of these depends_on entries (or a `service:NAME` of network_mode, pid or ipc)");
            for n in &cycle[1..] {
                d = d.related(at.file, at.key_span(&field(n)), format!("`{n}` depends on it here"));
            }
            self.push(d);
        }
    }

    pub(super) fn check_port_conflicts(&mut self, desired: &Desired, app_ats: &BTreeMap<Name, At<'a>>) {
        struct Published<'x> {
            server: &'x Name,
            app: &'x App,
            service: &'x Service,
            index: usize,
            port: &'x PortMapping,
        }
        let mut seen: Vec<Published<'_>> = Vec::new();
        for app in desired.apps.values().filter(|a| a.state != AppState::Absent) {
            for server in &app.servers {
                for service in app.services.values().filter(|s| s.state != ServiceState::Absent) {
                    for (index, port) in service.ports.iter().enumerate() {
                        let Some(range) = port.host else { continue };
                        let clash = seen.iter().find(|p| {
                            p.server == server
                                && p.port.protocol == port.protocol
                                && p.port.host.is_some_and(|h| h.overlaps(&range))
                                && ips_overlap(p.port.host_ip, port.host_ip)
                        });
                        if let Some(first) = clash {
                            let at = app_ats[&app.name];
                            let path = port_path(app, service).index(index);
                            let fat = app_ats[&first.app.name];
                            let fpath = port_path(first.app, first.service).index(first.index);
                            let proto = if port.protocol == Protocol::Udp { "udp" } else { "tcp" };
                            self.push(
                                at.err(
                                    &path,
                                    "port-conflict",
                                    format!(
                                        "host port {range}/{proto} on server `{server}` is already published by `{}`",
                                        first.app.container_name(&first.service.name)
                                    ),
                                )
                                .related(fat.file, fat.span(&fpath), "first published here")
                                .help("choose another host port, or bind each to a different IP address"),
                            );
                        } else {
                            seen.push(Published { server, app, service, index, port });
                        }
                    }
                }
            }
        }
    }

    pub(super) fn check_secrets(&mut self, secrets: &SecretCheck) {
        match secrets {
            SecretCheck::Known(names) => {
                let uses = std::mem::take(&mut self.secrets_used);
                for u in uses {
                    if !names.contains(&u.name) {
                        let known: Vec<&str> = names.iter().map(String::as_str).collect();
                        let help = match crate::diag::did_you_mean(&u.name, known.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`? Otherwise add it: `tomo secret set {}`", u.name),
                            None => format!("add it: `tomo secret set {}`", u.name),
                        };
                        self.push(
                            u.at.err(&u.path, "unknown-secret", format!("secret `{}` is not in the vault", u.name))
                                .help(help),
                        );
                    }
                }
            }
            SecretCheck::Unavailable(reason) => {
                if let Some(u) = self.secrets_used.first() {
                    let n = self.secrets_used.len();
                    let d = Diagnostic::warning(
                        "secrets-unchecked",
                        format!("{n} secret reference(s) not checked: {reason}"),
                    )
                    .at(u.at.file, u.at.span(&u.path))
                    .field(u.path.clone())
                    .help("set TOMO_MASTER_PASSWORD and TOMO_SALT to check them against the vault");
                    self.push(d);
                }
            }
        }
    }
}

/// Where a service's fields are: the document's root in the one-service
/// shorthand, `services.NAME` otherwise.
pub(super) fn service_base(single: bool, svc: &Name) -> FieldPath {
    if single { FieldPath::root() } else { FieldPath::root().key("services").key(svc.as_str()) }
}

/// The dependency cycles among `services`: depth-first search with colours.
fn dependency_cycles(services: &BTreeMap<Name, Service>) -> Vec<Vec<&Name>> {
    let mut state: BTreeMap<&Name, u8> = BTreeMap::new();
    let mut stack: Vec<&Name> = Vec::new();
    fn visit<'n>(
        n: &'n Name,
        services: &'n BTreeMap<Name, Service>,
        state: &mut BTreeMap<&'n Name, u8>,
        stack: &mut Vec<&'n Name>,
        cycles: &mut Vec<Vec<&'n Name>>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        if let Some(svc) = services.get(n) {
            for dep in svc.depends_on.keys().chain(svc.namespace_services()).filter(|d| *d != n) {
                let Some((dep, _)) = services.get_key_value(dep) else {
                    continue;
                };
                match state.get(dep) {
                    Some(1) => {
                        let start = stack.iter().position(|s| *s == dep).unwrap_or(0);
                        cycles.push(stack[start..].to_vec());
                    }
                    Some(_) => {}
                    None => visit(dep, services, state, stack, cycles),
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut cycles = Vec::new();
    for n in services.keys() {
        if !state.contains_key(n) {
            visit(n, services, &mut state, &mut stack, &mut cycles);
        }
    }
    cycles
}

fn port_path(app: &App, service: &Service) -> FieldPath {
    if app.single {
        FieldPath::root().key("ports")
    } else {
        FieldPath::root().key("services").key(service.name.as_str()).key("ports")
    }
}

fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => true,
    }
}
