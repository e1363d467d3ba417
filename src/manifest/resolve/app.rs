//! App documents: the servers an app runs on, its services (one, in the
//! shorthand, or a map), its named volumes and networks, and the
//! dependencies between its services.

use std::collections::BTreeMap;

use super::{At, Resolver, ServerRef};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::*;

/// What an app holds: its services, named volumes and networks.
type Contents = (BTreeMap<Name, Service>, BTreeMap<Name, ResourceDecl>, BTreeMap<Name, NetworkDecl>);

impl<'a> Resolver<'a> {
    pub(super) fn app(&mut self, at: At<'a>, rel: &str, name: Name, a: &raw::RawApp) -> Option<App> {
        let before = self.diags.error_count();
        let (server, servers, state, source, backup, rollout) = match a {
            raw::RawApp::Multi(m) => (&m.server, &m.servers, m.state, &m.source, &m.backup, &m.rollout),
            raw::RawApp::Single(s) => (&s.server, &s.servers, s.state, &s.source, &s.backup, &s.rollout),
        };
        let rollout = self.app_rollout(at, rollout.as_ref());
        let server_names = self.app_servers(at, server.as_deref(), servers.as_deref());
        let single = matches!(a, raw::RawApp::Single(_));
        let (services, volumes, networks) = self.app_contents(at, &name, a);
        self.check_dependencies(at, single, &services);
        self.check_namespaces(at, single, &services);
        self.check_fixed_addresses(at, single, &services);
        let backup = self.app_backup(at, &services, backup.as_ref());
        (self.diags.error_count() == before).then(|| App {
            name,
            servers: server_names,
            state: state.unwrap_or_default(),
            services,
            volumes,
            networks,
            origin: at.origin(rel),
            single,
            source: source.as_ref().map(|s| MarketSource {
                store: s.store.clone(),
                app: s.app.clone(),
                version: s.version.clone(),
                checksum: s.checksum.clone(),
            }),
            backup,
            rollout,
        })
    }

    /// The servers of `server: NAME` or `servers: [A, B]` (exactly one of them).
    fn app_servers(&mut self, at: At<'a>, server: Option<&str>, servers: Option<&[String]>) -> Vec<Name> {
        let root = FieldPath::root();
        let mut server_names = Vec::new();
        match (server, servers) {
            (Some(_), Some(_)) => self.push(
                at.err_at_key(&root.key("servers"), "conflicting-fields", "both `server` and `servers` are set")
                    .help("use `server: NAME` for one server or `servers: [A, B]` for several"),
            ),
            (None, None) => self.push(
                at.err(&root, "missing-field", "missing `server`: the app runs nowhere")
                    .help("add `server: local` to run it on this machine, or `servers: [A, B]`"),
            ),
            (Some(s), None) => {
                let p = root.key("server");
                if let Some(n) = self.name(at, &p, s) {
                    self.server_refs.push(ServerRef { name: n.clone(), at, path: p });
                    server_names.push(n);
                }
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    self.push(
                        at.err(&root.key("servers"), "missing-field", "`servers` is empty")
                            .help("name at least one server"),
                    );
                }
                for (i, s) in list.iter().enumerate() {
                    let p = root.key("servers").index(i);
                    if let Some(n) = self.name(at, &p, s) {
                        if server_names.contains(&n) {
                            self.push(
                                at.err(&p, "duplicate-name", format!("server `{n}` is listed twice"))
                                    .help("list each server once"),
                            );
                        }
                        self.server_refs.push(ServerRef { name: n.clone(), at, path: p.clone() });
                        server_names.push(n);
                    }
                }
            }
        }
        server_names
    }

    fn app_contents(&mut self, at: At<'a>, name: &Name, a: &raw::RawApp) -> Contents {
        let root = FieldPath::root();
        let mut services = BTreeMap::new();
        let mut volumes = BTreeMap::new();
        let mut networks = BTreeMap::new();
        match a {
            raw::RawApp::Single(s) => {
                if let Some(svc) = self.service(at, &root, name.clone(), &s.service, ServiceState::Running) {
                    services.insert(name.clone(), svc);
                }
            }
            raw::RawApp::Multi(m) => {
                self.check_container_name_use(at, &m.services);
                if m.services.is_empty() {
                    self.push(
                        at.err(&root.key("services"), "missing-field", "an app needs at least one service")
                            .help("add a service: `services: {web: {image: nginx:1.27}}`"),
                    );
                }
                for (sname, svc) in &m.services {
                    let p = root.key("services").key(sname);
                    let Some(sn) = self.name(at, &p, sname) else {
                        continue;
                    };
                    let state = svc.state.unwrap_or_default();
                    let rollout = self.service_rollout(at, &p, svc.rollout.as_ref());
                    if let Some(s) = self.service(at, &p, sn.clone(), &svc.service, state) {
                        services.insert(sn, Service { rollout, ..s });
                    }
                }
                for (k, d) in m.volumes.iter().flatten() {
                    if let Some(n) = self.name(at, &root.key("volumes").key(k), k) {
                        volumes.insert(n, resource_decl(d));
                    }
                }
                for (k, d) in m.networks.iter().flatten() {
                    let p = root.key("networks").key(k);
                    if let Some(n) = self.name(at, &p, k) {
                        let decl = self.network_decl(at, &p, &n, d);
                        networks.insert(n, decl);
                    }
                }
            }
        }
        (services, volumes, networks)
    }
}

fn resource_decl(d: &raw::RawResourceDecl) -> ResourceDecl {
    ResourceDecl { external: d.external.unwrap_or(false), name: d.name.clone() }
}
