//! Desired vs observed, per server: which containers, networks, volumes and
//! images to create, recreate, start, stop or remove, each with its reasons.

use std::collections::{BTreeMap, BTreeSet};

use similar::TextDiff;

use super::{Action, Conflict, Op, Orphan, Plan, PlanError, PlanOptions, Wait};
use crate::model::labels;
use crate::model::observed::{NetworkObs, digest_of, normalize_reference};
use crate::model::secret::Secrets;
use crate::model::spec::{self, ContainerSpec, SpecMountKind, spec_lines};
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::{
    App, AppState, ContainerObs, DependencyCondition, Desired, Inventory, MountSource, Name, PullPolicy, RunState,
    ServerState, Service, ServiceState,
};

const DEFAULT_STOP_MS: u64 = 10_000;

pub(super) fn diff(
    desired: &Desired,
    observed: &crate::model::Observed,
    opts: &PlanOptions,
    secrets: &dyn Secrets,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let prune = opts.prune || desired.settings.prune;
    for (server, state) in &observed.servers {
        let ServerState::Reached(inv) = state else { continue };
        // Leftovers of interrupted recreates are put right first; the rest
        // is planned against the inventory as that leaves it.
        let recovered = super::recover::leftovers(server, inv, &observed.interrupted, &opts.scope);
        let inv = recovered.inventory.as_ref();
        let mut used: Vec<Subnet> = inv.taken.clone();
        used.extend(inv.networks.iter().filter_map(|n| n.subnet));
        let pool = desired.settings.network_pool;
        let mut d = ServerDiff {
            server,
            inv,
            plan: &mut *plan,
            pulls: BTreeSet::new(),
            dirs: BTreeSet::new(),
            pool,
            used,
            moving: BTreeMap::new(),
        };
        for r in recovered.restores {
            d.push(r.app.as_ref(), r.service.as_ref(), r.op, vec![r.reason], None);
        }
        d.plan.conflicts.extend(recovered.conflicts);
        let apps: Vec<&App> =
            desired.apps.values().filter(|a| a.servers.contains(server) && opts.scope.has_app(&a.name)).collect();
        for app in &apps {
            if app.state == AppState::Absent {
                d.remove_app(app);
            } else {
                d.converge_app(app, secrets)?;
            }
        }
        if opts.scope.apps.is_empty() {
            d.orphans(desired, prune);
        }
        d.prune_volumes(desired, &opts.prune_volumes);
    }
    Ok(())
}

pub(super) struct ServerDiff<'a> {
    pub(super) server: &'a Name,
    pub(super) inv: &'a Inventory,
    pub(super) plan: &'a mut Plan,
    pulls: BTreeSet<String>,
    /// Host folders this plan creates on the server.
    dirs: BTreeSet<String>,
    /// Where new networks take their subnets, and what is in use already.
    pub(super) pool: NetworkPool,
    pub(super) used: Vec<Subnet>,
    /// Containers attached to a duplicate network that goes: container id →
    /// the network's name (they are recreated onto the one kept).
    moving: BTreeMap<String, String>,
}

impl ServerDiff<'_> {
    pub(super) fn push(
        &mut self,
        app: Option<&Name>,
        service: Option<&Name>,
        op: Op,
        reasons: Vec<String>,
        diff: Option<String>,
    ) {
        let id = self.plan.actions.len();
        self.plan.actions.push(Action {
            id,
            server: self.server.clone(),
            app: app.cloned(),
            service: service.cloned(),
            op,
            reasons,
            diff,
            after: Vec::new(),
            after_any: Vec::new(),
            risk: Default::default(),
        });
    }

    pub(super) fn conflict(&mut self, object: &str, message: String) {
        self.plan.conflicts.push(Conflict { server: self.server.clone(), object: object.to_string(), message });
    }

    fn converge_app(&mut self, app: &App, secrets: &dyn Secrets) -> Result<(), PlanError> {
        self.converge_networks(app);
        let waits = waits(app);
        let mut volumes = BTreeSet::new();
        // A service sharing another's namespace comes after it, and is
        // recreated with it (the namespace it joined goes with the container).
        let mut replaced: BTreeSet<&Name> = BTreeSet::new();
        for svc in namespace_order(app) {
            if svc.state == ServiceState::Absent {
                self.remove_service(app, svc);
                continue;
            }
            if !self.host_folders(app, svc) {
                continue;
            }
            let spec = ContainerSpec::new(self.server, app, svc);
            for m in spec.mounts.iter().filter(|m| m.kind == SpecMountKind::Volume) {
                let external = app.volumes.iter().any(|(k, d)| d.external && spec::volume_name(app, k) == m.source);
                if !external {
                    volumes.insert(m.source.clone());
                }
            }
            let joins = svc.namespace_services().find(|n| replaced.contains(n));
            let forced =
                joins.map(|n| format!("shares the namespace of `{}`, which is replaced", app.container_name(n)));
            self.converge_service(app, svc, spec, waits[&svc.name], secrets, forced)?;
            let made = |a: &Action| {
                a.server == *self.server
                    && a.app.as_ref() == Some(&app.name)
                    && a.service.as_ref() == Some(&svc.name)
                    && matches!(a.op, Op::Create { .. } | Op::Recreate { .. })
            };
            if self.plan.actions.iter().any(made) {
                replaced.insert(&svc.name);
            }
        }
        for v in volumes {
            if !self.inv.volumes.iter().any(|x| x.name == v) {
                self.push(Some(&app.name), None, Op::CreateVolume { name: v }, vec!["missing".into()], None);
            }
        }
        Ok(())
    }

    /// Creates the missing host folders of the service's bind mounts (once
    /// per server); false when one is missing and may not be created, which
    /// leaves the service as it is, with a conflict naming the declaration.
    fn host_folders(&mut self, app: &App, svc: &Service) -> bool {
        let mut ok = true;
        for m in &svc.mounts {
            let MountSource::Bind(path) = &m.source else { continue };
            if !self.inv.missing_paths.contains(path) {
                continue;
            }
            let folder = svc.host_folders.get(path).cloned().unwrap_or_default();
            if !folder.create {
                let message = format!(
                    "host folder `{path}` does not exist on server `{}` and `create_host_path: false` is set ({}); \
                     `{}` is left as it is until the folder exists",
                    self.server,
                    folder.declared_at,
                    app.container_name(&svc.name)
                );
                self.conflict(path, message);
                ok = false;
                continue;
            }
            if self.dirs.insert(path.clone()) {
                let op = Op::CreateDir { path: path.clone(), owner: folder.owner, mode: folder.mode };
                self.push(Some(&app.name), None, op, vec!["missing".into()], None);
            }
        }
        ok
    }

    /// A second network of this installation with the same name (a create a
    /// killed run had sent, finished later): removed once no container uses
    /// it; the app's containers on it are recreated onto the one kept (the
    /// oldest, which is what containers join).
    pub(super) fn repair_duplicate(&mut self, app: &App, keep: &NetworkObs, dup: &NetworkObs) {
        let declared: BTreeSet<String> = app.services.keys().map(|s| app.container_name(s)).collect();
        let users: Vec<&ContainerObs> = self.inv.containers.iter().filter(|c| c.networks.contains(&dup.id)).collect();
        if let Some(other) = users.iter().find(|c| !c.ours || !declared.contains(&c.name)) {
            let message = format!(
                "network `{}` exists twice; the duplicate {} is used by `{}`, which tomo does not redeploy, so it stays",
                dup.name,
                short_id(&dup.id),
                other.name
            );
            self.conflict(&dup.name, message);
            return;
        }
        for c in users {
            self.moving.insert(c.id.clone(), dup.name.clone());
        }
        let op = Op::RemoveNetwork { name: dup.name.clone(), network_id: dup.id.clone() };
        let why = format!("duplicate of network {} (the oldest, kept)", short_id(&keep.id));
        self.push(Some(&app.name), None, op, vec![why], None);
    }

    fn converge_service(
        &mut self,
        app: &App,
        svc: &Service,
        spec: ContainerSpec,
        wait: Wait,
        secrets: &dyn Secrets,
        forced: Option<String>,
    ) -> Result<(), PlanError> {
        let redacted = spec
            .redacted(secrets)
            .map_err(|e| PlanError::Secrets(format!("service `{}` of app `{}`: {e}", svc.name, app.name)))?;
        let hash = spec::hash_redacted(&redacted);
        let run = app.state == AppState::Running && svc.state == ServiceState::Running;
        let name = spec.container.clone();
        let image = spec.image.clone();
        let local_image = self.inv.image_id(&image).map(String::from);
        if local_image.is_none() {
            if svc.pull == PullPolicy::Never {
                self.conflict(&name, format!("image `{image}` is not on the server and `pull: never` is set"));
                return Ok(());
            }
            if self.pulls.insert(image.clone()) {
                self.push(
                    Some(&app.name),
                    None,
                    Op::PullImage { image: image.clone() },
                    vec!["not on the server".into()],
                    None,
                );
            }
        }
        let (a, s) = (Some(&app.name), Some(&svc.name));
        let declared = local_image.as_deref().and_then(|id| self.inv.repo_digest(id, &image)).map(String::from);
        let running = self.inv.container(&name).and_then(|c| self.inv.repo_digest(&c.image_id, &image));
        self.plan.images.push(super::ImageDigests {
            server: self.server.clone(),
            app: app.name.clone(),
            service: svc.name.clone(),
            image: image.clone(),
            declared: declared.clone(),
            running: running.map(String::from),
        });
        let Some(c) = self.inv.container(&name) else {
            // Create now and start in a node of its own: all creates of a run
            // queue ahead of the starts, which the Engine handles faster than
            // create-start pairs.
            let why = if run { "declared, not deployed" } else { "declared (stopped), not deployed" };
            let op = Op::Create { spec: Box::new(spec), hash, redacted };
            self.push(a, s, op, vec![why.into()], None);
            if run {
                let op = Op::Start { container: name.clone(), target: name, wait, fresh: true, again: None };
                self.push(a, s, op, vec!["new container".into()], None);
            }
            return Ok(());
        };
        if !c.ours || c.label(labels::APP) != Some(app.name.as_str()) {
            let owner = match (c.ours, c.managed(), c.label(labels::APP)) {
                (true, _, Some(other)) => format!("belongs to tomo app `{other}`"),
                (false, true, _) => "is managed by another tomo installation".into(),
                _ => "is not managed by tomo".into(),
            };
            self.conflict(
                &name,
                format!("a container named `{name}` exists and {owner}; rename or remove it, tomo will not"),
            );
            return Ok(());
        }
        let mut reasons = Vec::new();
        let mut diff_text = None;
        reasons.extend(forced);
        if c.label(labels::SPEC_HASH) != Some(hash.as_str()) {
            let old = c.label(labels::SPEC).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
            match old {
                Some(old) => {
                    let (r, d) = explain(&old, &redacted);
                    reasons.extend(r);
                    diff_text = Some(d);
                }
                None => reasons.push("deployed by another version of tomo (spec hash differs)".into()),
            }
        }
        if let Some(net) = self.moving.get(&c.id) {
            reasons.push(format!("attached to a duplicate of network `{net}`; rejoins the one kept"));
        }
        if reasons.is_empty()
            && !c.image.starts_with("sha256:")
            && normalize_reference(&c.image) != normalize_reference(&image)
        {
            reasons.push(format!("runs image `{}`, declared `{image}` (replaced outside tomo?)", c.image));
        }
        if let Some(id) = &local_image
            && reasons.is_empty()
            && c.image_id != *id
        {
            reasons.push(moved(&image, id, &c.image_id, declared.as_deref(), running));
        }
        if !reasons.is_empty() {
            let data = super::data::replace(c, &spec);
            let op = Op::Recreate {
                spec: Box::new(spec),
                hash,
                redacted,
                old_id: c.id.clone(),
                start: run,
                wait,
                order: svc.update_order,
                keeps: data.keeps,
                drops: data.drops,
            };
            self.push(a, s, op, reasons, diff_text);
            return Ok(());
        }
        // A one-shot service others wait on as `completed` is done once it
        // exited with status 0.
        let completed = wait == Wait::Completed && c.state == RunState::Exited && c.exit_code == Some(0);
        match (run, c.state) {
            (true, RunState::Created | RunState::Exited | RunState::Dead) if !completed => {
                let again = (c.state == RunState::Created).then(|| {
                    Box::new(super::Remake { spec: spec.clone(), hash: hash.clone(), redacted: redacted.clone() })
                });
                let op = Op::Start { container: name, target: c.id.clone(), wait, fresh: false, again };
                self.push(a, s, op, vec![format!("declared running, is {}", c.state.as_str())], None);
            }
            (false, RunState::Running | RunState::Restarting | RunState::Paused) => {
                let op = Op::Stop { container: name, target: c.id.clone(), timeout_ms: stop_ms(svc) };
                self.push(a, s, op, vec![format!("declared stopped, is {}", c.state.as_str())], None);
            }
            _ => {}
        }
        Ok(())
    }

    /// Removes a service's container, if there is one (its volumes stay).
    fn remove_service(&mut self, app: &App, svc: &Service) {
        let name = app.container_name(&svc.name);
        if let Some(c) = self.inv.container(&name) {
            if c.ours && c.label(labels::APP) == Some(app.name.as_str()) {
                let op = Op::Remove {
                    container: name,
                    target: c.id.clone(),
                    timeout_ms: stop_ms(svc),
                    drops: super::data::held_by(c),
                };
                self.push(Some(&app.name), Some(&svc.name), op, vec!["declared absent".into()], None);
            } else {
                self.conflict(&name, format!("`{name}` is not managed by tomo; tomo leaves it alone"));
            }
        }
    }

    fn remove_app(&mut self, app: &App) {
        for svc in app.services.values() {
            self.remove_service(app, svc);
        }
        let net = app.name.to_string();
        for n in self.inv.networks_named(&net) {
            if n.labels.get(labels::APP).is_some_and(|a| a == app.name.as_str()) {
                let op = Op::RemoveNetwork { name: net.clone(), network_id: n.id.clone() };
                self.push(Some(&app.name), None, op, vec!["declared absent".into()], None);
            }
        }
    }

    fn orphans(&mut self, desired: &Desired, prune: bool) {
        let mut orphan_apps: BTreeSet<String> = BTreeSet::new();
        let containers: Vec<&ContainerObs> = self.inv.containers.iter().filter(|c| c.ours).collect();
        for c in containers {
            if c.label(labels::SERVER).is_some_and(|s| s != self.server.as_str()) {
                continue;
            }
            let app_name = c.label(labels::APP).unwrap_or_default().to_string();
            let declared = Name::parse(&app_name).ok().and_then(|n| desired.apps.get(&n)).filter(|a| {
                a.servers.contains(self.server)
                    && c.label(labels::SERVICE)
                        .and_then(|s| Name::parse(s).ok())
                        .is_some_and(|s| a.services.contains_key(&s) && a.container_name(&s) == c.name)
            });
            if declared.is_some() {
                continue;
            }
            if crate::model::observed::leftover(&c.name).is_some() {
                continue; // restored (or a conflict) by `plan::recover`
            }
            let held = held_of_declared(desired, self.server, c);
            self.plan.orphans.push(Orphan {
                server: self.server.clone(),
                container: c.name.clone(),
                app: app_name.clone(),
                removed: prune && !held,
                held,
            });
            if prune && !held {
                let service = c.label(labels::SERVICE).and_then(|s| Name::parse(s).ok());
                let app = Name::parse(&app_name).ok();
                let op = Op::Remove {
                    container: c.name.clone(),
                    target: c.id.clone(),
                    timeout_ms: DEFAULT_STOP_MS,
                    drops: super::data::held_by(c),
                };
                self.push(
                    app.as_ref(),
                    service.as_ref(),
                    op,
                    vec!["orphan: its app or service is no longer declared".into()],
                    None,
                );
                orphan_apps.insert(app_name);
            }
        }
        if prune {
            let declared_here: BTreeSet<&str> =
                desired.apps.values().filter(|a| a.servers.contains(self.server)).map(|a| a.name.as_str()).collect();
            for n in &self.inv.networks {
                let Some(app) = n.labels.get(labels::APP) else { continue };
                if !declared_here.contains(app.as_str()) {
                    let app_name = Name::parse(app).ok();
                    let op = Op::RemoveNetwork { name: n.name.clone(), network_id: n.id.clone() };
                    self.push(app_name.as_ref(), None, op, vec!["orphan network".into()], None);
                }
            }
        }
    }

    fn prune_volumes(&mut self, desired: &Desired, names: &[String]) {
        let server = self.server;
        for name in names {
            let Some(v) = self.inv.volumes.iter().find(|v| &v.name == name) else { continue };
            let used_by: Vec<String> = desired
                .apps
                .values()
                .filter(|a| a.servers.contains(server) && a.state != AppState::Absent)
                .flat_map(|a| {
                    a.services
                        .values()
                        .filter(move |s| {
                            ContainerSpec::new(server, a, s)
                                .mounts
                                .iter()
                                .any(|m| m.kind == SpecMountKind::Volume && &m.source == name)
                        })
                        .map(move |s| a.container_name(&s.name))
                })
                .collect();
            if !used_by.is_empty() {
                self.conflict(
                    name,
                    format!("volume `{name}` is still used by {}; it was not removed", used_by.join(", ")),
                );
                continue;
            }
            let app = v.labels.get(labels::APP).and_then(|a| Name::parse(a).ok());
            let op = Op::RemoveVolume { name: name.clone() };
            self.push(app.as_ref(), None, op, vec!["named by --prune-volumes".into()], None);
        }
    }
}

/// The app's services, each after the services whose namespaces it joins
/// (resolve refused cycles; a leftover one ends the ordering as written).
fn namespace_order(app: &App) -> Vec<&Service> {
    let mut order: Vec<&Service> = Vec::new();
    let mut left: Vec<&Service> = app.services.values().collect();
    while !left.is_empty() {
        let ready = |s: &&Service| {
            s.namespace_services().all(|n| order.iter().any(|o| &o.name == n) || !app.services.contains_key(n))
        };
        let (now, later): (Vec<&Service>, Vec<&Service>) = left.into_iter().partition(ready);
        if now.is_empty() {
            order.extend(later);
            break;
        }
        order.extend(now);
        left = later;
    }
    order
}

fn stop_ms(svc: &Service) -> u64 {
    svc.stop_grace_period.map_or(DEFAULT_STOP_MS, |d| d.as_millis())
}

/// What each service's start must wait for: healthy when it has a
/// healthcheck (or a dependent asks for it), completed when a dependent asks.
fn waits(app: &App) -> BTreeMap<Name, Wait> {
    let mut w: BTreeMap<Name, Wait> = app
        .services
        .values()
        .map(|s| {
            let has_check = s.healthcheck.as_ref().is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"));
            (s.name.clone(), if has_check { Wait::Healthy } else { Wait::Running })
        })
        .collect();
    // An absent service starts nothing, so asks nothing of its dependencies.
    for s in app.services.values().filter(|s| s.state != ServiceState::Absent) {
        for (dep, cond) in &s.depends_on {
            let need = match cond {
                DependencyCondition::Started => Wait::Running,
                DependencyCondition::Healthy => Wait::Healthy,
                DependencyCondition::Completed => Wait::Completed,
            };
            if let Some(cur) = w.get_mut(dep) {
                *cur = (*cur).max(need);
            }
        }
    }
    w
}

/// Field-by-field reasons and a unified diff of two redacted specs.
fn explain(old: &serde_json::Value, new: &serde_json::Value) -> (Vec<String>, String) {
    let old_lines = spec_lines(old, None);
    let new_lines = spec_lines(new, Some(old));
    let key = |l: &str| l.split_once(": ").map_or(l.to_string(), |(k, _)| k.to_string());
    let old_map: BTreeMap<String, &String> = old_lines.iter().map(|l| (key(l), l)).collect();
    let new_map: BTreeMap<String, &String> = new_lines.iter().map(|l| (key(l), l)).collect();
    let mut reasons = Vec::new();
    for (k, l) in &new_map {
        match old_map.get(k) {
            None => reasons.push(format!("{k} added")),
            Some(o) if o != l => {
                if l.ends_with(", changed)") {
                    reasons.push(format!("{k}: (secret changed)"));
                } else {
                    reasons.push(format!("{k} changed"));
                }
            }
            _ => {}
        }
    }
    for k in old_map.keys() {
        if !new_map.contains_key(k) {
            reasons.push(format!("{k} removed"));
        }
    }
    let old_text = old_lines.join("\n") + "\n";
    let new_text = new_lines.join("\n") + "\n";
    let diff = TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(2)
        .header("deployed", "declared")
        .to_string();
    (reasons, diff)
}

/// The reason of a recreate for a tag that moved: by registry digest when
/// both images have one, else by image id.
fn moved(image: &str, id: &str, running_id: &str, now: Option<&str>, runs: Option<&str>) -> String {
    match (now, runs) {
        (Some(now), Some(runs)) if now != runs => {
            format!("image `{image}` moved: now {} (container runs {})", short(digest_of(now)), short(digest_of(runs)))
        }
        _ => format!("image `{image}` now points to {} (container runs {})", short(id), short(running_id)),
    }
}

fn short(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    format!("sha256:{}", crate::term::head(id, 12))
}

fn short_id(id: &str) -> &str {
    crate::term::head(id, 12)
}

/// A container held after a failed verification (`on_failure: hold`) beside
/// a declared service's container on `server`.
fn held_of_declared(desired: &Desired, server: &Name, c: &ContainerObs) -> bool {
    let Some(base) = crate::model::rollout::held_base(&c.name) else {
        return false;
    };
    let app = c.label(labels::APP).and_then(|a| Name::parse(a).ok()).and_then(|n| desired.apps.get(&n));
    let service = c.label(labels::SERVICE).and_then(|s| Name::parse(s).ok());
    match (app, service) {
        (Some(a), Some(s)) => a.servers.contains(server) && a.services.contains_key(&s) && a.container_name(&s) == base,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    /// Ids come from servers and may hold anything: shortening one never
    /// cuts inside a character.
    #[test]
    fn shortened_ids_never_cut_a_multibyte_character() {
        // One ASCII byte first, so that byte 12 falls inside a `€` (3 bytes).
        let hostile = format!("a{}", "€".repeat(30));
        let twelve = format!("a{}", "€".repeat(11));
        assert_eq!(super::short(&format!("sha256:{hostile}")), format!("sha256:{twelve}"));
        assert_eq!(super::short_id(&hostile), twelve);
        assert_eq!(super::short_id("abc"), "abc");
        assert_eq!(crate::transport::docker::short(&hostile), twelve);
    }
}
