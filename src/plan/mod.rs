//! Plans: what apply will do, and why, as a value.
//!
//! `build` diffs the desired state against the observed one (`diff.rs`) and
//! orders the resulting actions into a DAG (`graph.rs`). A `Plan` is
//! serialisable: it can be saved, shown, and applied later, and it records the
//! basis it was computed from (fingerprints of the desired and observed
//! state), so a stale plan is refused instead of applied.
//!
//! **Invariant:** pure. No I/O here; secrets are reached through `Secrets`.

pub mod data;
mod diff;
pub mod docker;
mod graph;
#[cfg(test)]
mod hold_tests;
#[cfg(test)]
mod net_tests;
mod netdiff;
mod recover;
pub mod risk;
#[cfg(test)]
mod risk_tests;
#[cfg(test)]
mod rolling_tests;
pub mod status;
#[cfg(test)]
mod tests;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use graph::{to_dot, topo_order};

pub use crate::model::Scope;
use crate::model::observed::DataMount;
use crate::model::secret::Secrets;
use crate::model::spec::{self, ContainerSpec};
use crate::model::subnet::{NetworkPool, Subnet};
use crate::model::{Desired, Name, NetworkOptions, Observed, ServerState, UpdateOrder};

/// Bumped when the saved-plan format changes incompatibly.
pub const PLAN_FORMAT: u32 = 2;

/// Options that change what the plan does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub scope: Scope,
    /// Remove orphans (also when `Settings.prune` is set).
    pub prune: bool,
    /// Named volumes (Docker names) the user asked to remove.
    pub prune_volumes: Vec<String>,
}

/// What a container action waits for before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// The container is running.
    Running,
    /// Its healthcheck passes.
    Healthy,
    /// It exited with status 0.
    Completed,
}

/// What a `Start` creates again when its never-run container is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remake {
    pub spec: ContainerSpec,
    pub hash: String,
    pub redacted: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    PullImage {
        image: String,
    },
    /// Create (or adopt) this installation's network `name`.
    CreateNetwork {
        name: String,
        /// Its subnet, from the pool; `None` leaves the choice to the Engine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subnet: Option<Subnet>,
        /// Where a subnet taken meanwhile is replaced from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<NetworkPool>,
        /// Driver, `internal`, driver options (the defaults: a bridge).
        #[serde(default, skip_serializing_if = "NetworkOptions::is_default")]
        options: NetworkOptions,
    },
    CreateVolume {
        name: String,
    },
    /// Create a missing host folder of a bind mount (never deleted).
    CreateDir {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<(u32, Option<u32>)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// Create a container (a `Start` node starts it when it should run).
    Create {
        spec: Box<ContainerSpec>,
        hash: String,
        redacted: serde_json::Value,
    },
    /// Replace a container; the old one is kept until the new one proved itself.
    Recreate {
        spec: Box<ContainerSpec>,
        hash: String,
        redacted: serde_json::Value,
        old_id: String,
        start: bool,
        wait: Wait,
        order: UpdateOrder,
        /// The old container's anonymous volumes the new one mounts again.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keeps: Vec<DataMount>,
        /// Data the old container mounts and the new one will not.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drops: Vec<DataMount>,
    },
    /// Start a container (by id, or by name right after it was created).
    Start {
        container: String,
        target: String,
        wait: Wait,
        /// Starts a container this plan creates (shown as part of the create).
        #[serde(default)]
        fresh: bool,
        /// A container that never ran (`created`, left so by an interrupted
        /// run): made again from this when it is gone by the time it is
        /// started (the Engine can still be undoing the interrupted create).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        again: Option<Box<Remake>>,
    },
    Stop {
        container: String,
        target: String,
        timeout_ms: u64,
    },
    Remove {
        container: String,
        target: String,
        timeout_ms: u64,
        /// The data the container mounts (its volumes are kept on the server).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drops: Vec<DataMount>,
    },
    RemoveNetwork {
        name: String,
        /// Which one: names can be ambiguous (duplicates). Not `id`: an
        /// action's fields sit beside the op's, and `Action.id` is taken.
        #[serde(default)]
        network_id: String,
    },
    RemoveVolume {
        name: String,
    },
    /// Puts right what an interrupted recreate left beside `container`
    /// (`plan::recover`): the rule is to keep the container that last ran.
    Restore {
        /// The declared container name.
        container: String,
        /// The container the recreate left (`-tomo-old-…` or `-tomo-new`).
        leftover: String,
        leftover_id: String,
        recovery: Recovery,
        /// The run that was cut short, when the journal tells.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<i64>,
    },
    /// Install, upgrade, start or remove Docker Engine on the server
    /// (`plan::docker`): before every other action on it, or, removing,
    /// after all of them.
    DockerEngine(docker::EngineAction),
}

/// How a leftover of an interrupted recreate is put right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recovery {
    /// The container under the declared name last ran: the leftover (the
    /// previous container aside, or a replacement that never took over)
    /// is removed, its volumes kept.
    RemoveLeftover,
    /// The leftover is the previous container, renamed aside: it gets its
    /// name back and is started, after `replacement` (under the name, never
    /// ran) is removed, its volumes kept.
    PutBack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
    },
    /// The previous container is gone: the replacement takes the name.
    TakeName,
}

impl Op {
    /// The spec this action may create a container from, and its hash: a
    /// create's, a recreate's, and a start's that can make its never-run
    /// container again.
    pub fn creates(&self) -> Option<(&ContainerSpec, &str)> {
        match self {
            Op::Create { spec, hash, .. } | Op::Recreate { spec, hash, .. } => Some((spec, hash)),
            Op::Start { again: Some(r), .. } => Some((&r.spec, &r.hash)),
            _ => None,
        }
    }

    fn creates_mut(&mut self) -> Option<(&mut ContainerSpec, &str)> {
        match self {
            Op::Create { spec, hash, .. } | Op::Recreate { spec, hash, .. } => Some((spec, hash)),
            Op::Start { again: Some(r), .. } => Some((&mut r.spec, &r.hash)),
            _ => None,
        }
    }

    /// The one-character symbol of the human plan.
    pub fn symbol(&self) -> char {
        match self {
            Op::PullImage { .. }
            | Op::CreateNetwork { .. }
            | Op::CreateVolume { .. }
            | Op::CreateDir { .. }
            | Op::Create { .. } => '+',
            Op::Recreate { .. } | Op::Restore { .. } => '~',
            Op::Start { .. } => '>',
            Op::Stop { .. } => '.',
            Op::Remove { .. } | Op::RemoveNetwork { .. } | Op::RemoveVolume { .. } => '-',
            Op::DockerEngine(e) => match e.change {
                docker::EngineChange::Install => '+',
                docker::EngineChange::Upgrade { .. } | docker::EngineChange::Start => '~',
                docker::EngineChange::Remove => '-',
            },
        }
    }

    /// A short verb, e.g. `create`.
    pub fn verb(&self) -> &'static str {
        match self {
            Op::PullImage { .. } => "pull",
            Op::CreateNetwork { .. } => "create network",
            Op::CreateVolume { .. } => "create volume",
            Op::CreateDir { .. } => "dir",
            Op::Create { .. } => "create",
            Op::Recreate { .. } => "recreate",
            Op::Start { .. } => "start",
            Op::Stop { .. } => "stop",
            Op::Remove { .. } => "remove",
            Op::RemoveNetwork { .. } => "remove network",
            Op::RemoveVolume { .. } => "remove volume",
            Op::Restore { .. } => "restore",
            Op::DockerEngine(e) => match e.change {
                docker::EngineChange::Install => "install docker",
                docker::EngineChange::Upgrade { .. } => "upgrade docker",
                docker::EngineChange::Start => "start docker",
                docker::EngineChange::Remove => "remove docker",
            },
        }
    }

    /// The object acted on: container, network, volume or image name.
    pub fn object(&self) -> &str {
        match self {
            Op::PullImage { image } => image,
            Op::CreateNetwork { name, .. } | Op::RemoveNetwork { name, .. } => name,
            Op::CreateVolume { name } | Op::RemoveVolume { name } => name,
            Op::CreateDir { path, .. } => path,
            Op::Create { spec, .. } | Op::Recreate { spec, .. } => &spec.container,
            Op::Start { container, .. }
            | Op::Stop { container, .. }
            | Op::Remove { container, .. }
            | Op::Restore { container, .. } => container,
            Op::DockerEngine(_) => docker::OBJECT,
        }
    }

    /// Whether this can lose something: a removal, or the recreate of a
    /// container when the old or the new one mounts data (volumes, also
    /// anonymous ones, or bind mounts; tmpfs holds none), above all one
    /// that drops data (`drops`). A restore is not: it keeps the container
    /// that last ran under the declared name and removes only a container
    /// the interrupted recreate (already approved) was replacing or had not
    /// yet put in place, never a volume.
    pub fn is_destructive(&self) -> bool {
        match self {
            Op::Remove { .. } | Op::RemoveNetwork { .. } | Op::RemoveVolume { .. } => true,
            Op::DockerEngine(e) => e.change == docker::EngineChange::Remove,
            Op::Recreate { spec, keeps, drops, .. } => {
                !drops.is_empty()
                    || !keeps.is_empty()
                    || spec.mounts.iter().any(|m| m.kind != spec::SpecMountKind::Tmpfs)
            }
            _ => false,
        }
    }

    /// The data this action takes away from a container (see `plan::data`).
    pub fn drops(&self) -> &[DataMount] {
        match self {
            Op::Recreate { drops, .. } | Op::Remove { drops, .. } => drops,
            _ => &[],
        }
    }
}

/// One node of the plan graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: usize,
    pub server: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<Name>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Name>,
    #[serde(flatten)]
    pub op: Op,
    /// Why, one line per reason (field by field for recreates).
    pub reasons: Vec<String>,
    /// Unified diff of the deployed and declared spec, for recreates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Actions that must succeed before this one starts.
    pub after: Vec<usize>,
    /// Actions that must have finished, in any way, before this one starts
    /// (dependencies written with `required: false`): their failure does
    /// not hold this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_any: Vec<usize>,
    /// Downtime and data risk (`plan::risk`).
    #[serde(default)]
    pub risk: risk::Risk,
}

/// A problem the plan reports and leaves alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub server: Name,
    pub object: String,
    pub message: String,
}

/// A tomo-managed container whose app or service is no longer declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    pub server: Name,
    pub container: String,
    pub app: String,
    /// Removed by this plan (`--prune` or `Settings.prune`), or only listed.
    pub removed: bool,
    /// `<name>-tomo-held-<id>`: a declared service's container that failed
    /// its verification under `on_failure: hold`, kept stopped for
    /// inspection. Never removed by a plan, `--prune` included.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// Fingerprints of what the plan was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    pub desired: String,
    pub observed: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub options: PlanOptions,
    pub basis: Basis,
    pub actions: Vec<Action>,
    pub conflicts: Vec<Conflict>,
    pub orphans: Vec<Orphan>,
    /// Servers that could not be observed, with the reason.
    pub unreachable: BTreeMap<Name, String>,
    /// What each declared service's image is on its server: the registry
    /// digest its reference points to and the one its container runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageDigests>,
    /// Downtime and data at risk, over all actions (`plan::risk`).
    #[serde(default)]
    pub risk: risk::RiskSummary,
    /// Apps updated server by server (`rollout.strategy: one-at-a-time`),
    /// with the order of their servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolling: Vec<Rolling>,
}

/// An app updated one server after the other, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolling {
    pub app: Name,
    pub servers: Vec<Name>,
    /// `on_failure: rollback-all`: a failure on one server puts every
    /// server already updated back on its previous containers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_all: bool,
}

/// A service's image by digest (`repository@sha256:…`), from the server's
/// image list (no extra Docker call); `None` where the image is not on the
/// server, has no registry digest (built there), or there is no container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDigests {
    pub server: Name,
    pub app: Name,
    pub service: Name,
    /// The image as the manifest writes it.
    pub image: String,
    /// What the reference points to now (after the pull of `pull: always`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    /// What the service's container runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Identifies what this plan was computed from; a saved or proposed plan
    /// is applied only while the fingerprint of the present state matches.
    pub fn fingerprint(&self) -> String {
        format!("{}:{}", self.basis.desired, self.basis.observed)
    }

    /// Whether any action can lose something (see `Op::is_destructive`).
    pub fn is_destructive(&self) -> bool {
        self.actions.iter().any(|a| a.op.is_destructive())
    }

    /// Every mount of data the plan takes away, as `container: what`.
    pub fn dropped_data(&self) -> Vec<String> {
        self.actions.iter().flat_map(|a| a.op.drops().iter().map(move |d| format!("{}: {d}", a.op.object()))).collect()
    }

    /// This plan without the actions `held` and, transitively, the actions
    /// that wait for them; returns it with every action left out (by their
    /// ids in this plan). Ids and edges of the rest are renumbered.
    pub fn without(&self, held: &std::collections::BTreeSet<usize>) -> (Plan, Vec<usize>) {
        let mut out: std::collections::BTreeSet<usize> = held.clone();
        loop {
            let more: Vec<usize> = self
                .actions
                .iter()
                .filter(|a| !out.contains(&a.id) && a.after.iter().any(|b| out.contains(b)))
                .map(|a| a.id)
                .collect();
            if more.is_empty() {
                break;
            }
            out.extend(more);
        }
        let kept: Vec<&Action> = self.actions.iter().filter(|a| !out.contains(&a.id)).collect();
        let new_id: BTreeMap<usize, usize> = kept.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
        let mut plan = self.clone();
        plan.actions = kept
            .into_iter()
            .map(|a| Action {
                id: new_id[&a.id],
                after: a.after.iter().map(|b| new_id[b]).collect(),
                // A held optional dependency is as one missing: it holds nothing.
                after_any: a.after_any.iter().filter_map(|b| new_id.get(b).copied()).collect(),
                ..a.clone()
            })
            .collect();
        (plan, out.into_iter().collect())
    }

    /// Counts by verb group, for the summary line.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a.op {
                Op::Create { .. } => s.create += 1,
                Op::Recreate { .. } => s.recreate += 1,
                Op::Start { fresh: false, .. } => s.start += 1,
                Op::Start { fresh: true, .. } => {}
                Op::Stop { .. } => s.stop += 1,
                Op::Remove { .. } => s.remove += 1,
                Op::Restore { .. } => s.restore += 1,
                Op::DockerEngine(_) => s.engine += 1,
                _ => s.other += 1,
            }
        }
        s.conflicts = self.conflicts.len();
        s
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub recreate: usize,
    pub start: usize,
    pub stop: usize,
    pub remove: usize,
    /// Leftovers of interrupted recreates put right.
    #[serde(default)]
    pub restore: usize,
    /// Images, networks, volumes and host folders.
    pub other: usize,
    /// Docker Engine installed, upgraded, started or removed.
    #[serde(default)]
    pub engine: usize,
    pub conflicts: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Secrets(String),
    #[error("the plan has a dependency cycle through {0}; please report this as a tomo bug")]
    Cycle(String),
    /// A server's `docker` block cannot be carried out (unsupported OS, no
    /// sudo right, a downgrade, apps running under `absent`).
    #[error("server `{server}`: {problem}")]
    Docker { server: Name, problem: docker::DockerProblem },
}

/// Builds the plan that takes `observed` to `desired`.
pub fn build(
    desired: &Desired,
    observed: &Observed,
    opts: &PlanOptions,
    secrets: &dyn Secrets,
) -> Result<Plan, PlanError> {
    let mut plan = Plan {
        format: PLAN_FORMAT,
        options: opts.clone(),
        basis: basis(desired, observed, opts),
        actions: Vec::new(),
        conflicts: Vec::new(),
        orphans: Vec::new(),
        unreachable: BTreeMap::new(),
        images: Vec::new(),
        risk: risk::RiskSummary::default(),
        rolling: Vec::new(),
    };
    for (name, state) in &observed.servers {
        if let ServerState::Unreachable(why) = state {
            plan.unreachable.insert(name.clone(), why.clone());
        }
    }
    for name in &opts.scope.held {
        plan.unreachable.insert(
            name.clone(),
            "not contacted: where its connection goes changed, and it logs in with a vault secret; \
             an admin approves the change first"
                .into(),
        );
    }
    docker::plan_engines(desired, observed, opts, &mut plan)?;
    diff::diff(desired, observed, opts, secrets, &mut plan)?;
    docker::check_absent(desired, observed, &plan)?;
    graph::add_edges(desired, &mut plan);
    graph::topo_order(&plan).map_err(PlanError::Cycle)?;
    risk::assess(&mut plan, &risk::History::new(), &risk::DowntimeLimits::default());
    Ok(plan)
}

/// Gives the env-file credentials of a plan read back from a file (saved
/// without their values) their values as the manifests hold them now;
/// returns false when one of them is no longer what the plan hashed (the
/// file changed since: the plan is stale).
pub fn fill_env_files(plan: &mut Plan, desired: &Desired, secrets: &dyn Secrets) -> bool {
    use crate::model::EnvValue;
    for a in &mut plan.actions {
        let Some((spec, hash)) = a.op.creates_mut() else { continue };
        if !spec.env.values().any(|v| matches!(v, EnvValue::FromFile { .. })) {
            continue;
        }
        let now = desired.apps.get(&spec.app).and_then(|app| app.services.get(&spec.service));
        for (k, v) in spec.env.iter_mut() {
            if let EnvValue::FromFile { value, .. } = v {
                match now.and_then(|s| s.env.get(k)) {
                    Some(EnvValue::FromFile { value: current, .. }) => *value = current.clone(),
                    _ => return false,
                }
            }
        }
        if spec.hash(secrets).ok().as_deref() != Some(hash) {
            return false;
        }
    }
    true
}

/// Fingerprints of the desired state (without source positions) and of what
/// was observed (objects, ids, states, spec hashes; not health, which moves).
pub fn basis(desired: &Desired, observed: &Observed, opts: &PlanOptions) -> Basis {
    let mut d = serde_json::to_value((desired, opts)).expect("desired serializes");
    // A host folder's `declared_at` is a source position too.
    strip_keys(&mut d, &["origin", "declared_at"]);
    // Only what this plan is about: our objects, and containers whose names
    // the manifests declare (others come and go without making plans stale).
    let declared: std::collections::BTreeSet<String> =
        desired.apps.values().flat_map(|a| a.services.keys().map(move |s| a.container_name(s))).collect();
    let mut relevant = observed.clone();
    for state in relevant.servers.values_mut() {
        if let ServerState::Reached(inv) = state {
            inv.containers.retain(|c| c.ours || declared.contains(&c.name));
            // The Engine lists in no fixed order.
            inv.containers.sort_by(|a, b| a.name.cmp(&b.name));
            inv.networks.sort_by(|a, b| a.name.cmp(&b.name));
            inv.others.clear();
            inv.volumes.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    let mut o = serde_json::to_value(&relevant).expect("observed serializes");
    // Others' networks and routes come and go; a subnet taken meanwhile is
    // replaced at apply.
    strip_keys(&mut o, &["health", "images", "taken"]);
    Basis { desired: digest(&d), observed: digest(&o) }
}

fn strip_keys(v: &mut serde_json::Value, keys: &[&str]) {
    match v {
        serde_json::Value::Object(m) => {
            for k in keys {
                m.remove(*k);
            }
            m.values_mut().for_each(|v| strip_keys(v, keys));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strip_keys(v, keys)),
        _ => {}
    }
}

fn digest(v: &serde_json::Value) -> String {
    let text = serde_json::to_string(v).expect("JSON");
    spec::hex(&Sha256::digest(text.as_bytes())[..16])
}
