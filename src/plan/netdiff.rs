//! An app's networks on one server: the app's own (when a service is on
//! it) and the extra ones its services join, created with their declared
//! options and a subnet of the pool (one holding the services' fixed
//! addresses, when they declare some); a network already there whose
//! options or subnet do not match the declaration is a conflict, never
//! replaced behind its containers' backs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::Op;
use super::diff::ServerDiff;
use crate::model::spec::{self, DEFAULT_NETWORK};
use crate::model::subnet::Subnet;
use crate::model::{App, Name, NetworkOptions};

/// A network the app needs: its declared options and the fixed addresses
/// services ask for on it (address → container).
#[derive(Default)]
struct Needed {
    options: NetworkOptions,
    fixed: BTreeMap<Ipv4Addr, String>,
}

impl ServerDiff<'_> {
    pub(super) fn converge_networks(&mut self, app: &App) {
        for (name, need) in needed(app) {
            let have = self.inv.networks_named(&name);
            match have.split_first() {
                None => self.create_network(app, name, need),
                Some((keep, duplicates)) => {
                    for dup in duplicates {
                        self.repair_duplicate(app, keep, dup);
                    }
                    let drift = keep.options.as_ref().map(|o| need.options.differences(o)).unwrap_or_default();
                    if !drift.is_empty() {
                        let message = format!(
                            "network `{name}` differs from its declaration: {}; tomo does not replace a network its containers use: remove it (with the containers on it) to have it created as declared",
                            drift.join("; ")
                        );
                        self.conflict(&name, message);
                    }
                    if let Some(subnet) = keep.subnet {
                        self.check_fixed(&name, subnet, &need.fixed);
                    }
                }
            }
        }
    }

    /// A new network, with the first free block of the pool, or the block
    /// holding the fixed addresses asked for on it.
    fn create_network(&mut self, app: &App, name: String, need: Needed) {
        let prefix = self.pool.block_for(app.services.len());
        let (subnet, reasons, pool) = if let Some(first) = need.fixed.keys().next() {
            match self.fixed_block(*first, prefix) {
                Ok(s) => (Some(s), vec!["missing".to_string()], None),
                Err(why) => {
                    let c = &need.fixed[first];
                    self.conflict(&name, format!("`{c}` asks for the address {first} on network `{name}`, but {why}"));
                    return;
                }
            }
        } else {
            match self.pool.first_free_of(&self.used, prefix) {
                Some(s) => (Some(s), vec!["missing".into()], Some(self.pool)),
                None => (
                    None,
                    vec![format!(
                        "missing; no free /{prefix} is left in the pool {} (Settings.networks), so the Engine picks the subnet",
                        self.pool.range
                    )],
                    Some(self.pool),
                ),
            }
        };
        if let Some(s) = subnet {
            self.used.push(s);
            self.check_fixed(&name, s, &need.fixed);
        }
        // A block chosen for fixed addresses is not swapped for another at apply.
        let op = Op::CreateNetwork { name, subnet, pool, options: need.options };
        self.push(Some(&app.name), None, op, reasons, None);
    }

    /// The pool's block holding `addr`, when it is free.
    fn fixed_block(&self, addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        let block = Subnet::new(addr, prefix).ok_or("the pool's block size is invalid")?;
        let range = self.pool.range;
        if !range.contains(addr) || block.prefix() < range.prefix() {
            return Err(format!(
                "tomo gives its networks subnets of {range} (Settings.networks.pool); choose an address in it"
            ));
        }
        if let Some(u) = self.used.iter().find(|u| u.overlaps(block)) {
            return Err(format!("its block {block} overlaps {u}, which is in use on the server"));
        }
        Ok(block)
    }

    /// Each fixed address must be a host address of the network's subnet.
    fn check_fixed(&mut self, name: &str, subnet: Subnet, fixed: &BTreeMap<Ipv4Addr, String>) {
        for (addr, container) in fixed {
            if !subnet.host_address(*addr) {
                let why = if subnet.contains(*addr) {
                    "which is the subnet's network, gateway or broadcast address"
                } else {
                    "which is outside it"
                };
                self.conflict(
                    name,
                    format!("`{container}` asks for the address {addr} on network `{name}` ({subnet}), {why}"),
                );
            }
        }
    }
}

/// The networks the app's services are on, by Docker name; external ones
/// are joined, never created.
fn needed(app: &App) -> BTreeMap<String, Needed> {
    let mut out: BTreeMap<String, Needed> = BTreeMap::new();
    let default = Name::parse(DEFAULT_NETWORK).expect("valid name");
    let uses_app_network = app.services.values().any(|s| s.on_app_network());
    // An app whose every service has a network mode needs no network of its own.
    if uses_app_network || app.services.is_empty() {
        let options = app.networks.get(&default).map(|d| d.options.clone()).unwrap_or_default();
        out.insert(app.name.to_string(), Needed { options, fixed: BTreeMap::new() });
    }
    for svc in app.services.values().filter(|s| s.network_mode.is_none()) {
        for n in &svc.networks {
            let decl = app.networks.get(n);
            if decl.is_some_and(|d| d.external) {
                continue;
            }
            let options = decl.map(|d| d.options.clone()).unwrap_or_default();
            out.entry(spec::network_name(app, n)).or_insert_with(|| Needed { options, fixed: BTreeMap::new() });
        }
        for (n, e) in &svc.endpoints {
            if let (Some(addr), Some(need)) = (e.ipv4_address, out.get_mut(&spec::network_name(app, n))) {
                need.fixed.insert(addr, app.container_name(&svc.name));
            }
        }
    }
    out
}
