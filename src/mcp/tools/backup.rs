//! Backups for agents: `backup_create` (operate), `backup_list` (read) and
//! `backup_restore` (propose; without `confirm` it only verifies the archive
//! and returns what the restore would replace; with it, a non-admin's
//! restore, or any where `mcp.require_approval` asks, is kept as a proposal
//! an admin approves). Archives are named by file name within the backup
//! folder; no other path is accepted.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bad_arg;
use crate::auth::Identity;
use crate::engine::appdata::DataMode;
use crate::engine::appdata_restore::AppRestoreReport;
use crate::engine::restore_proposal::RestoreAsk;
use crate::engine::{
    BackupMade, BackupPart as Part, BackupRequest, BackupRow, Newer, Replaces, RestorePlan, RestoreRequest, Restored,
};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Apps whose data (named volumes, bind folders, on each of their servers) goes into the archive too.
    #[serde(default)]
    pub apps: Vec<String>,
    /// Every declared app's data.
    #[serde(default)]
    pub all_apps: bool,
    /// `live` (copied while the app runs) or `stop` (the app is stopped during the copy, then started again), over each app's own `backup.mode` (default: the app's mode, else `live`).
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Read every archive back whole (slow for large archives).
    #[serde(default)]
    pub verify: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreArgs {
    /// The archive's file name in the backup folder, as `backup_list` shows it.
    pub file: String,
    /// Parts: `store`, `vault`, `manifests`, `app:APP`. When left out: the store, vault and manifests; an app's data only when named.
    #[serde(default)]
    pub only: Vec<String>,
    /// The declared server that app data (`app:APP` parts) goes to, instead of the one it was read from.
    #[serde(default)]
    pub to_server: Option<String>,
    /// Carry the restore out (or, for a non-admin or where
    /// `mcp.require_approval` asks, propose it). Without it, the archive is
    /// verified and the answer says what would be replaced; nothing changes.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOut {
    pub backups: Vec<BackupRow>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RestoreOut {
    /// `planned` (nothing changed; call again with `confirm: true`),
    /// `proposed` (nothing changed; an admin approves it with
    /// `proposal_approve`) or `restored`.
    pub outcome: String,
    /// The proposal's id, when `proposed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    /// Why the restore waits for an admin, when `proposed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub installation: String,
    pub created: String,
    pub items: Vec<Replaces>,
    /// Records of the current store newer than the archive, which restoring the store drops.
    pub newer: Option<Newer>,
    pub warnings: Vec<String>,
    pub restored: Option<Restored>,
    /// Per app whose data is restored (`app:APP` parts): the volumes and
    /// folders replaced, the containers stopped meanwhile and, once
    /// restored, how long the app was down.
    pub apps: Vec<AppRestoreReport>,
}

impl RestoreOut {
    fn of(outcome: &str, plan: RestorePlan, apps: Vec<AppRestoreReport>) -> RestoreOut {
        RestoreOut {
            outcome: outcome.into(),
            proposal: None,
            why: None,
            installation: plan.installation,
            created: plan.created,
            items: plan.items,
            newer: plan.newer,
            warnings: plan.warnings,
            restored: None,
            apps,
        }
    }
}

#[tool_router(router = backup_tools, vis = "pub(super)")]
impl Tomo {
    /// Writes an encrypted backup of tomo's state (store with vault, history, trusted host keys; the manifest folder and its git commit) and, with `apps`/`all_apps`, those apps' volumes and bind folders into the backup folder, reads it back whole, and returns its file, size and members.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn backup_create(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<CreateArgs>,
    ) -> Result<Json<BackupMade>, ToolError> {
        // Not given: each app's own `backup.mode`, else live.
        let mode = match a.mode.as_deref() {
            None => None,
            Some("live") => Some(DataMode::Live),
            Some("stop") => Some(DataMode::Stop),
            Some(_) => return Err(bad_arg("mode", "`live` or `stop`")),
        };
        let req = BackupRequest {
            trigger: "mcp".into(),
            actor: who.user.clone(),
            apps: a.apps,
            all_apps: a.all_apps,
            mode,
            ..BackupRequest::default()
        };
        // The archive is written on a blocking thread (app data streams
        // through the runtime meanwhile), never on the async workers.
        let shared = self.shared.clone();
        let made = tokio::task::spawn_blocking(move || shared.engine.backup_create(&req))
            .await
            .map_err(|e| ToolError(format!("the backup stopped: {e}")))??;
        Ok(Json(made))
    }

    /// Lists the archives in the backup folder (`Settings.backup.target`, on this machine or a server, else the data folder's `backups`), newest first: time, size, members, apps, whether verified.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn backup_list(&self, Parameters(a): Parameters<ListArgs>) -> Result<Json<ListOut>, ToolError> {
        // Blocking work, off the async workers: reading archives whole
        // (`verify`), or a listing over a server's connection.
        let shared = self.shared.clone();
        let backups = tokio::task::spawn_blocking(move || shared.engine.backup_list(None, a.verify, None))
            .await
            .map_err(|e| ToolError(format!("the listing stopped: {e}")))??;
        Ok(Json(ListOut { backups }))
    }

    /// Restores a backup. Without `confirm`, verifies the archive whole and returns what the restore would replace (the store's newer records, changed manifest files, each app's volumes and folders and the containers stopped meanwhile); with `confirm: true`, restores, keeping the replaced store aside, when the caller is an admin and `mcp.require_approval: none`; otherwise it is kept as a proposal stating what it replaces, restored when an admin approves it (`proposal_approve`). App data (`only: ["app:APP"]`) can go to another declared server (`to_server`).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn backup_restore(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<RestoreArgs>,
    ) -> Result<Json<RestoreOut>, ToolError> {
        let name = std::path::Path::new(&a.file);
        if a.file.is_empty() || name.file_name().map(|n| n.to_string_lossy() != a.file).unwrap_or(true) {
            return Err(bad_arg("file", "a file name in the backup folder (see `backup_list`), not a path"));
        }
        let only =
            a.only.iter().map(|p| Part::parse(p).map_err(|e| bad_arg("only", e))).collect::<Result<Vec<_>, _>>()?;
        let engine = self.engine();
        // Reading the archive whole (and restoring the state) is blocking
        // work, kept off the async workers; so is fetching it first from a
        // backup folder on a server (the copy is removed when this call ends).
        let stopped = |e: tokio::task::JoinError| ToolError(format!("the restore stopped: {e}"));
        let (shared, name) = (self.shared.clone(), name.to_path_buf());
        let (location, at_hand) = tokio::task::spawn_blocking(move || {
            let engine = &shared.engine;
            let location = engine.backup_folder().join(name);
            engine.backup_at_hand(&location).map(|a| (location, a))
        })
        .await
        .map_err(stopped)??;
        let req = RestoreRequest { file: at_hand.path().to_path_buf(), only, passphrase: None };
        let (shared, r) = (self.shared.clone(), req.clone());
        let mut plan =
            tokio::task::spawn_blocking(move || shared.engine.backup_restore_plan(&r)).await.map_err(stopped)??;
        // App data goes through the engine's app restore (its containers
        // stopped meanwhile), the rest through the state restore.
        // An app's data is replaced only when the caller names it.
        let named = |app: &String| req.only.iter().any(|p| matches!(p, Part::App(x) if x == app));
        let apps: Vec<String> = plan.take_apps().into_iter().filter(named).collect();
        if a.to_server.is_some() && apps.is_empty() {
            return Err(bad_arg("to_server", "only app data (`only: [\"app:APP\"]`) goes to a server"));
        }
        let to = a.to_server.as_deref();
        let mut reports = Vec::new();
        for app in &apps {
            reports.push(engine.backup_restore_app(&req, &plan, app, to, true, &who.user).await?);
        }
        let why = if a.confirm { engine.restore_needs_approval(&who)? } else { None };
        if let Some(why) = why {
            let ask = RestoreAsk { location: &location, only: &a.only, to_server: to, plan: &plan, apps: &reports };
            let id = engine.propose_restore(&ask, &who, &why)?;
            let out = RestoreOut { proposal: Some(id), why: Some(why), ..RestoreOut::of("proposed", plan, reports) };
            return Ok(Json(out));
        }
        let restored = match a.confirm && !plan.parts.is_empty() {
            true => {
                let (shared, r, p, user) = (self.shared.clone(), req.clone(), plan.clone(), who.user.clone());
                let done = tokio::task::spawn_blocking(move || shared.engine.backup_restore(&r, &p, &user));
                Some(done.await.map_err(stopped)??)
            }
            false => None,
        };
        if a.confirm {
            reports.clear();
            for app in &apps {
                let done = engine.backup_restore_app(&req, &plan, app, to, false, &who.user).await;
                match (done, &restored) {
                    (Ok(r), _) => reports.push(r),
                    (Err(e), None) => return Err(e.into()),
                    // Say what already changed: the state was restored before this.
                    (Err(e), Some(_)) => {
                        let e: ToolError = e.into();
                        let parts: Vec<&str> = plan.items.iter().map(|i| i.part.as_str()).collect();
                        return Err(ToolError(format!("restored {} first; then app {app}: {}", parts.join(", "), e.0)));
                    }
                }
            }
        }
        let outcome = if a.confirm { "restored" } else { "planned" };
        Ok(Json(RestoreOut { restored, ..RestoreOut::of(outcome, plan, reports) }))
    }
}
