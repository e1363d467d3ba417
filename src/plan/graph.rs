//! Ordering: the edges between plan actions, checked and walked as a petgraph DAG.
//!
//! Bring-up runs image → network/volume → container, and a service after the
//! services it depends on or whose namespace (`service:NAME`) it joins. Teardown is the same order inverted, in one place:
//! a service is stopped or removed before the services it depends on, and an
//! app's network after its containers. A restore (`plan::recover`) comes
//! before every other action on its service.

use std::collections::BTreeMap;

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Op, Plan};
use crate::model::spec::SpecMountKind;
use crate::model::{Desired, Name};

type Key = (Name, Name, Name); // server, app, service

pub(super) fn add_edges(desired: &Desired, plan: &mut Plan) {
    let mut pulls = BTreeMap::new();
    let mut nets = BTreeMap::new();
    let mut vols = BTreeMap::new();
    let mut dirs = BTreeMap::new();
    let mut up: BTreeMap<Key, usize> = BTreeMap::new();
    let mut down: BTreeMap<Key, usize> = BTreeMap::new();
    for a in &plan.actions {
        let key = || Some((a.server.clone(), a.app.clone()?, a.service.clone()?));
        match &a.op {
            Op::PullImage { image } => {
                pulls.insert((a.server.clone(), image.clone()), a.id);
            }
            Op::CreateNetwork { name, .. } => {
                nets.insert((a.server.clone(), name.clone()), a.id);
            }
            Op::CreateVolume { name } => {
                vols.insert((a.server.clone(), name.clone()), a.id);
            }
            Op::CreateDir { path, .. } => {
                dirs.insert((a.server.clone(), path.clone()), a.id);
            }
            Op::Create { .. } | Op::Recreate { .. } | Op::Start { .. } => {
                if let Some(k) = key() {
                    up.insert(k, a.id);
                }
            }
            Op::Stop { .. } | Op::Remove { .. } => {
                if let Some(k) = key() {
                    down.insert(k, a.id);
                }
            }
            Op::RemoveNetwork { .. } | Op::RemoveVolume { .. } | Op::Restore { .. } | Op::DockerEngine(_) => {}
        }
    }
    let mut edges: Vec<(usize, usize)> = engine_edges(plan); // (before, after)
    edges.extend(rolling_edges(desired, plan));
    // Edges of `required: false` dependencies: order only.
    let mut soft: Vec<(usize, usize)> = Vec::new();
    let mut created: BTreeMap<Key, usize> = BTreeMap::new();
    for a in &plan.actions {
        let server = &a.server;
        let key = a.app.clone().zip(a.service.clone()).map(|(ap, sv)| (server.clone(), ap, sv));
        match (&a.op, key) {
            (Op::Create { .. }, Some(k)) => {
                created.insert(k, a.id);
            }
            (Op::Start { fresh: true, .. }, Some(k)) => {
                if let Some(c) = created.get(&k) {
                    edges.push((*c, a.id));
                }
            }
            _ => {}
        }
        // What a container is created from comes first (also for a start
        // that may make its container again).
        if let Some((spec, _)) = a.op.creates() {
            if let Some(p) = pulls.get(&(server.clone(), spec.image.clone())) {
                edges.push((*p, a.id));
            }
            for n in std::iter::once(&spec.network).chain(&spec.networks) {
                if let Some(p) = nets.get(&(server.clone(), n.clone())) {
                    edges.push((*p, a.id));
                }
            }
            for m in spec.mounts.iter().filter(|m| m.kind == SpecMountKind::Volume) {
                if let Some(p) = vols.get(&(server.clone(), m.source.clone())) {
                    edges.push((*p, a.id));
                }
            }
            for m in spec.mounts.iter().filter(|m| m.kind == SpecMountKind::Bind) {
                if let Some(p) = dirs.get(&(server.clone(), m.source.clone())) {
                    edges.push((*p, a.id));
                }
            }
        }
        match &a.op {
            Op::RemoveNetwork { .. } | Op::RemoveVolume { .. } => {
                for b in &plan.actions {
                    let same_app = matches!(&a.op, Op::RemoveVolume { .. }) || b.app == a.app;
                    // A duplicate network goes after the containers that leave it.
                    let leaves = matches!(b.op, Op::Remove { .. } | Op::Recreate { .. } | Op::Restore { .. });
                    if leaves && b.server == *server && same_app {
                        edges.push((b.id, a.id));
                    }
                }
            }
            Op::Restore { .. } => {
                // Restores are pushed first: every later action on the service waits.
                let same = |b: &super::Action| b.server == *server && b.app == a.app && b.service == a.service;
                if a.app.is_some() && a.service.is_some() {
                    edges.extend(plan.actions.iter().filter(|b| b.id > a.id && same(b)).map(|b| (a.id, b.id)));
                }
                continue;
            }
            _ => {}
        }
        let (Some(app), Some(service)) = (&a.app, &a.service) else { continue };
        let Some(svc) = desired.apps.get(app).and_then(|ap| ap.services.get(service)) else { continue };
        let is_up = matches!(a.op, Op::Create { .. } | Op::Recreate { .. } | Op::Start { .. });
        if is_up {
            for dep in svc.depends_on.keys() {
                // `up` holds the last bring-up node of the dependency: its start.
                if let Some(d) = up.get(&(server.clone(), app.clone(), dep.clone())) {
                    let to = if svc.optional_deps.contains(dep) { &mut soft } else { &mut edges };
                    to.push((*d, a.id));
                }
            }
            // A namespace joined is never optional.
            for dep in svc.namespace_services() {
                if let Some(d) = up.get(&(server.clone(), app.clone(), dep.clone())) {
                    edges.push((*d, a.id));
                }
            }
        } else if down.contains_key(&(server.clone(), app.clone(), service.clone())) {
            // Dependents go down first.
            let app_def = &desired.apps[app];
            let joins = |o: &crate::model::Service| o.namespace_services().any(|n| n == service);
            for other in app_def.services.values().filter(|o| o.depends_on.contains_key(service) || joins(o)) {
                if let Some(d) = down.get(&(server.clone(), app.clone(), other.name.clone())) {
                    let optional = other.optional_deps.contains(service) && !joins(other);
                    let to = if optional { &mut soft } else { &mut edges };
                    to.push((*d, a.id));
                }
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    soft.sort_unstable();
    soft.dedup();
    soft.retain(|e| edges.binary_search(e).is_err());
    for (before, after) in edges {
        plan.actions[after].after.push(before);
    }
    for (before, after) in soft {
        plan.actions[after].after_any.push(before);
    }
}

/// `rollout.strategy: one-at-a-time`: every action of an app on one of its
/// servers waits for all of its actions on the server before it (in the
/// order of `servers:`, servers without changes left out), so a failure
/// on one server skips the servers after it. Records the order in
/// `plan.rolling`.
fn rolling_edges(desired: &Desired, plan: &mut Plan) -> Vec<(usize, usize)> {
    use crate::model::rollout::OnFailure;
    let mut edges = Vec::new();
    for app in desired.apps.values() {
        let strategy = app.rollout.strategy.unwrap_or(desired.settings.rollout_strategy);
        if strategy != crate::model::RolloutStrategy::OneAtATime {
            continue;
        }
        let per_server: Vec<(Name, Vec<usize>)> = app
            .servers
            .iter()
            .map(|s| {
                let ids = plan.actions.iter().filter(|a| a.server == *s && a.app.as_ref() == Some(&app.name));
                (s.clone(), ids.map(|a| a.id).collect::<Vec<_>>())
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        if per_server.len() < 2 {
            continue;
        }
        for pair in per_server.windows(2) {
            for before in &pair[0].1 {
                edges.extend(pair[1].1.iter().map(|after| (*before, *after)));
            }
        }
        let servers = per_server.into_iter().map(|(s, _)| s).collect();
        let rollback_all = app.rollout.on_failure.unwrap_or(desired.settings.on_failure) == OnFailure::RollbackAll
            || app.services.values().any(|s| s.rollout.on_failure == Some(OnFailure::RollbackAll));
        plan.rolling.push(super::Rolling { app: app.name.clone(), servers, rollback_all });
    }
    edges
}

/// The Engine of a server is installed, upgraded or started before every
/// other action on it, and removed after all of them.
fn engine_edges(plan: &Plan) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    for e in &plan.actions {
        let Op::DockerEngine(engine) = &e.op else { continue };
        let removing = engine.change == super::docker::EngineChange::Remove;
        for b in plan.actions.iter().filter(|b| b.server == e.server && b.id != e.id) {
            edges.push(if removing { (b.id, e.id) } else { (e.id, b.id) });
        }
    }
    edges
}

/// The actions in an order that respects every edge, or the object of an
/// action on a cycle.
pub fn topo_order(plan: &Plan) -> Result<Vec<usize>, String> {
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = plan.actions.iter().map(|a| g.add_node(a.id)).collect();
    for a in &plan.actions {
        for b in a.after.iter().chain(&a.after_any) {
            match nodes.get(*b) {
                Some(from) => {
                    g.add_edge(*from, nodes[a.id], ());
                }
                None => return Err(format!("action {} (depends on missing action {b})", a.id)),
            }
        }
    }
    toposort(&g, None)
        .map(|order| order.into_iter().map(|n| g[n]).collect())
        .map_err(|c| plan.actions[g[c.node_id()]].op.object().to_string())
}

/// The plan graph in Graphviz DOT.
pub fn to_dot(plan: &Plan) -> String {
    let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for a in &plan.actions {
        let label = format!("{} {} {}\\n@{}", a.op.symbol(), a.op.verb(), a.op.object(), a.server);
        out.push_str(&format!("  a{} [label=\"{}\"];\n", a.id, label.replace('"', "\\\"")));
    }
    for a in &plan.actions {
        for b in &a.after {
            out.push_str(&format!("  a{b} -> a{};\n", a.id));
        }
        for b in &a.after_any {
            out.push_str(&format!("  a{b} -> a{} [style=dashed];\n", a.id));
        }
    }
    out.push_str("}\n");
    out
}
