//! The rows the engine returns to front ends: engine facts, containers,
//! images, stats and prunes of a server; proposals, apply runs and audit
//! events with their statuses as enums; and the engine calls that read them
//! (and users' own settings) from the store. Transport keeps its own types;
//! these are the engine's, converted once here, and with the store's status
//! enums (`ProposalStatus`, `RunStatus`, mapped to SQL text in
//! `store::status` and re-exported here) the only ones that derive
//! `JsonSchema` for MCP.

use schemars::JsonSchema;
use serde::Serialize;

use super::Engine;
use crate::error::{Error, Result};
use crate::store::{ActionRow, ActivityRow, ProposalRow, RunRow, Store, StoreError};
pub use crate::store::{ProposalStatus, RunStatus};
use crate::transport::docker_ops as ops;

/// Facts about one Docker Engine.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EngineFacts {
    pub version: String,
    pub os: String,
    pub kernel: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub containers: i64,
    pub containers_running: i64,
    pub images: i64,
    /// Total size of the images on the server.
    pub images_bytes: i64,
    pub root_dir: String,
}

impl From<ops::EngineFacts> for EngineFacts {
    fn from(f: ops::EngineFacts) -> Self {
        EngineFacts {
            version: f.version,
            os: f.os,
            kernel: f.kernel,
            cpus: f.cpus,
            memory_bytes: f.memory_bytes,
            containers: f.containers,
            containers_running: f.containers_running,
            images: f.images,
            images_bytes: f.images_bytes,
            root_dir: f.root_dir,
        }
    }
}

/// One container, managed by tomo or not.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub status: String,
    /// The tomo app it belongs to, if tomo manages it.
    pub app: String,
}

impl From<ops::ContainerRow> for ContainerRow {
    fn from(c: ops::ContainerRow) -> Self {
        ContainerRow { id: c.id, name: c.name, image: c.image, state: c.state, status: c.status, app: c.app }
    }
}

/// One image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageRow {
    pub id: String,
    pub tags: Vec<String>,
    pub size_bytes: i64,
    /// Containers using it (-1 when the Engine did not say).
    pub containers: i64,
}

impl From<ops::ImageRow> for ImageRow {
    fn from(i: ops::ImageRow) -> Self {
        ImageRow { id: i.id, tags: i.tags, size_bytes: i.size_bytes, containers: i.containers }
    }
}

/// A one-shot resource sample of a container.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stats {
    pub container: String,
    /// Percent of one CPU (100 = one full core).
    pub cpu_percent: f64,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
}

impl From<ops::Stats> for Stats {
    fn from(s: ops::Stats) -> Self {
        Stats {
            container: s.container,
            cpu_percent: s.cpu_percent,
            memory_bytes: s.memory_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            net_rx_bytes: s.net_rx_bytes,
            net_tx_bytes: s.net_tx_bytes,
        }
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Pruned {
    pub images_deleted: i64,
    pub build_cache_deleted: i64,
    pub space_reclaimed_bytes: i64,
}

impl From<ops::Pruned> for Pruned {
    fn from(p: ops::Pruned) -> Self {
        Pruned {
            images_deleted: p.images_deleted,
            build_cache_deleted: p.build_cache_deleted,
            space_reclaimed_bytes: p.space_reclaimed_bytes,
        }
    }
}

/// A status stored as a word: its enum, `as_str`, `parse`, `Display`.
macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Where one action of a run stands.
    ActionStatus {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Not started: something it depends on failed.
        Skipped = "skipped",
    }
}

/// A stored word that is not a status of its kind (the store is damaged).
fn unknown_status(what: &str, word: &str) -> String {
    format!("{what} has an unknown status `{word}`")
}

/// A row the store holds but that makes no sense: the store is damaged.
fn corrupt(store: &Store, detail: String) -> Error {
    Error::Store(StoreError::Corrupt { path: store.path().display().to_string(), detail })
}

/// A proposal: manifest edits waiting for, or decided by, an admin.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Proposal {
    pub id: String,
    pub created_at: String,
    pub created_by: String,
    pub role: String,
    pub title: String,
    /// Unified diff of the edits.
    pub diff: String,
    pub plan_fingerprint: Option<String>,
    pub status: ProposalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub run_id: Option<i64>,
    /// A restore's proposal: what it restores (`None`: manifest edits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<super::restore_proposal::RestoreProposal>,
}

impl TryFrom<ProposalRow> for Proposal {
    type Error = String;
    fn try_from(p: ProposalRow) -> std::result::Result<Self, String> {
        let status = p.status;
        let restore = match &p.restore_json {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| format!("proposal {}: restore: {e}", p.id))?),
            None => None,
        };
        Ok(Proposal {
            id: p.id,
            created_at: p.created_at,
            created_by: p.created_by,
            role: p.role,
            title: p.title,
            diff: p.diff,
            plan_fingerprint: p.plan_fingerprint,
            status,
            decided_by: p.decided_by,
            decided_at: p.decided_at,
            reason: p.reason,
            run_id: p.run_id,
            restore,
        })
    }
}

/// One recorded audit event.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    /// auth | settings | manifest | apply | tool | secret | server
    pub category: String,
    pub action: String,
    pub target: Option<String>,
    pub arguments: Option<serde_json::Value>,
    /// ok | error | refused
    pub result: String,
    pub detail: Option<String>,
}

impl From<ActivityRow> for AuditRecord {
    fn from(a: ActivityRow) -> Self {
        AuditRecord {
            id: a.id,
            at: a.at,
            actor: a.actor,
            role: a.role,
            category: a.category,
            action: a.action,
            target: a.target,
            arguments: a.arguments,
            result: a.result,
            detail: a.detail,
        }
    }
}

/// One action of an apply run that touched an app.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct AppAction {
    pub run_id: i64,
    pub started_at: String,
    pub run_status: RunStatus,
    pub actor: String,
    pub source: String,
    pub server: String,
    pub action: String,
    pub service: String,
    pub status: ActionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TryFrom<(RunRow, ActionRow)> for AppAction {
    type Error = String;
    fn try_from((run, act): (RunRow, ActionRow)) -> std::result::Result<Self, String> {
        Ok(AppAction {
            run_status: run.status,
            status: ActionStatus::parse(&act.status)
                .ok_or_else(|| unknown_status(&format!("an action of run {}", run.id), &act.status))?,
            run_id: run.id,
            started_at: run.started_at,
            actor: run.actor.unwrap_or_default(),
            source: run.source.unwrap_or_default(),
            server: act.server,
            action: act.action,
            service: act.service.unwrap_or_default(),
            error: act.error,
        })
    }
}

/// An app's manifest as it was recorded at an apply.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct AppRevision {
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    pub manifest: serde_json::Value,
}

impl Engine {
    /// Proposals (of one status, or all), newest first.
    pub fn proposals(&self, status: Option<ProposalStatus>) -> Result<Vec<Proposal>> {
        let store = self.store()?;
        let rows = store.proposals(status)?;
        rows.into_iter().map(|r| Proposal::try_from(r).map_err(|e| corrupt(store, e))).collect()
    }

    /// A proposal as stored, with the JSON of its edits and plan.
    pub(super) fn proposal_row(&self, id: &str) -> Result<Option<(Proposal, String, Option<String>)>> {
        let store = self.store()?;
        let Some(row) = store.proposal(id)? else { return Ok(None) };
        let (edits, plan) = (row.edits_json.clone(), row.plan_json.clone());
        Ok(Some((Proposal::try_from(row).map_err(|e| corrupt(store, e))?, edits, plan)))
    }

    /// The actions of the applies that touched `app`, newest first.
    pub fn app_actions(&self, app: &str, limit: u32) -> Result<Vec<AppAction>> {
        let store = self.store()?;
        store
            .app_actions(app, limit)?
            .into_iter()
            .map(|r| AppAction::try_from(r).map_err(|e| corrupt(store, e)))
            .collect()
    }

    /// The app's recorded manifests, newest first.
    pub fn app_revisions(&self, app: &str, limit: u32) -> Result<Vec<AppRevision>> {
        let rows = self.store()?.app_revisions(app, limit)?;
        Ok(rows.into_iter().map(|(run_id, at, manifest)| AppRevision { at, run_id, manifest }).collect())
    }

    /// Opens the store (making it when there is none) or checks that the one
    /// open is still the file it was (`StoreError::Lost` otherwise).
    pub fn check_store(&self) -> Result<()> {
        self.store().map(|_| ())
    }

    /// A user's own settings.
    pub fn user_settings(&self, user: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
        Ok(self.store()?.user_settings(user)?)
    }

    /// Sets one of a user's own settings (`null` removes it).
    pub fn set_user_setting(&self, user: &str, key: &str, value: &serde_json::Value) -> Result<()> {
        Ok(self.store()?.set_user_setting(user, key, value)?)
    }

    /// The newest audit events first, of any of `categories` (all when `None`).
    pub fn audit_events(&self, categories: Option<&[&str]>, limit: u32) -> Result<Vec<AuditRecord>> {
        Ok(self.store()?.activities_in(categories, limit)?.into_iter().map(Into::into).collect())
    }
}
