//! Restores that wait for an admin. MCP `backup_restore` asked to carry a
//! restore out by a non-admin, or by an admin where `mcp.require_approval`
//! asks for it (a restore replaces data, so `destructive`, the default, and
//! `all` do), is kept as a proposal: what the restore replaces is its text,
//! and it names the archive (where it is), the parts, the target server and
//! the archive's fingerprint (the SHA-256 of its envelope, which holds a
//! random salt and nonce prefix: no two archives share it). Approving it
//! restores exactly that archive (fetched again from a server's backup
//! folder), as the approver; when the archive is gone or another, the
//! proposal turns stale and nothing is restored (one on a server that
//! cannot be fetched now stays pending). Each app's restore is planned
//! before the state is restored (connecting to its servers while the store
//! is the one they are known by); a restored store has no record of the
//! proposal, so its outcome goes into that store's audit log.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Engine;
use super::appdata_restore::AppRestoreReport;
use super::backup::RestoreRequest;
use super::changes::AuditEvent;
use super::rows::{Proposal, ProposalStatus};
use crate::auth::{Identity, Role};
use crate::backup::system::{Part, RestorePlan, Restored};
use crate::backup::{BackupError, read_envelope};
use crate::error::{Error, ProposalError, Result, Stale};
use crate::model::RequireApproval;
use crate::plan::{Basis, PLAN_FORMAT, Plan, PlanOptions};
use crate::store::NewProposal;

/// What a restore proposal restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreProposal {
    /// The archive: a path on this machine, or `server:NAME:/PATH`.
    pub location: String,
    /// The parts named (`store`, `vault`, `manifests`, `app:APP`); none: the
    /// store, vault and manifests.
    pub only: Vec<String>,
    /// The declared server app data goes to instead of its own.
    pub to_server: Option<String>,
    /// SHA-256 of the archive's envelope.
    pub archive: String,
}

/// A restore to keep as a proposal (`Engine::propose_restore`).
pub struct RestoreAsk<'a> {
    /// Where the archive is (what the approval reads again).
    pub location: &'a Path,
    pub only: &'a [String],
    pub to_server: Option<&'a str>,
    /// What the restore of the store, vault and manifests replaces.
    pub plan: &'a RestorePlan,
    /// What the restore of each named app's data replaces.
    pub apps: &'a [AppRestoreReport],
}

/// An approved restore proposal, carried out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RestoreApproved {
    pub proposal: Proposal,
    /// The store, vault and manifests restored, if any were.
    pub restored: Option<Restored>,
    /// Each named app's data restored.
    pub apps: Vec<AppRestoreReport>,
}

impl Engine {
    /// Why a restore by `who` waits for an admin's approval; `None`: it may
    /// be carried out at once (an admin, with `mcp.require_approval: none`).
    pub fn restore_needs_approval(&self, who: &Identity) -> Result<Option<String>> {
        if who.role != Role::Admin {
            return Ok(Some(format!("the `{}` role proposes a restore; an admin approves it", who.role.as_str())));
        }
        // Manifests that do not load (what a restore may be for) count as
        // the default setting.
        let rule = self.desired().map(|d| d.settings.require_approval).unwrap_or_default();
        Ok(match rule {
            RequireApproval::None => None,
            RequireApproval::Destructive => {
                Some("a restore replaces data (`mcp.require_approval: destructive`)".to_string())
            }
            RequireApproval::All => Some("Settings `mcp.require_approval: all`".to_string()),
        })
    }

    /// Keeps the restore `ask` as a proposal by `who` (`why`: the reason it
    /// waits); its id.
    pub fn propose_restore(&self, ask: &RestoreAsk<'_>, who: &Identity, why: &str) -> Result<String> {
        let location = ask.location.display().to_string();
        let restore = RestoreProposal {
            location: location.clone(),
            only: ask.only.to_vec(),
            to_server: ask.to_server.map(str::to_string),
            archive: ask.plan.archive.clone(),
        };
        let mut text = restore_plan_text(&location, ask.plan);
        for app in ask.apps {
            text.push_str(&app_restore_text(app));
        }
        if let Some(s) = ask.to_server {
            text.push_str(&format!("app data goes to server {s}\n"));
        }
        let parts = if ask.only.is_empty() { "store, vault, manifests".to_string() } else { ask.only.join(", ") };
        let title = format!("restore {parts} from {}", file_name(&location));
        let plan = no_plan(&restore.archive);
        let id = super::changes::new_proposal_id();
        self.store()?.add_proposal(&NewProposal {
            id: &id,
            created_by: &who.user,
            role: who.role.as_str(),
            title: &title,
            diff: &text,
            edits_json: "[]",
            plan_json: &serde_json::to_string(&plan).expect("plans serialise"),
            plan_fingerprint: &restore.archive,
            restore_json: Some(&serde_json::to_string(&restore).expect("restore proposals serialise")),
        })?;
        let args = serde_json::json!({"file": location, "only": ask.only, "to_server": ask.to_server});
        self.audit(who, AuditEvent::new("backup", "propose").target(&id).arguments(args).detail(why));
        Ok(id)
    }

    /// Approves the pending restore proposal `id` (see the module).
    pub(super) async fn approve_restore(
        &self,
        id: &str,
        restore: RestoreProposal,
        who: &Identity,
    ) -> Result<RestoreApproved> {
        let (mut proposal, _, _) = self.pending(id)?;
        let store = self.store()?.clone();
        let stale = |why: String| -> Error {
            let e: Error = Stale::Archive { id: id.to_string(), location: restore.location.clone(), why }.into();
            let text = e.to_string();
            let _ = store.decide_pending(id, ProposalStatus::Stale, &who.user, Some(&text));
            self.audit(
                who,
                AuditEvent::new("backup", "approve")
                    .target(id)
                    .result(super::changes::AuditResult::Error)
                    .detail(&text),
            );
            e
        };
        // A server's archive that cannot be fetched now (the server down,
        // say) leaves the proposal pending: it may be approved again later.
        let at_hand = self.backup_at_hand_async(Path::new(&restore.location)).await?;
        match archive_fingerprint(at_hand.path()) {
            Ok(f) if f == restore.archive => {}
            Ok(_) => return Err(stale("another archive is there now".into())),
            Err(e) => return Err(stale(e.to_string())),
        }
        // Planned before it is claimed: a plan that fails (a server down)
        // leaves the proposal pending.
        let planned = match self.plan_as_proposed(at_hand.path(), &restore, who).await {
            // Swapped between the look at its envelope and its reading.
            Err(Error::Backup(BackupError::Changed(_))) => return Err(stale("another archive is there now".into())),
            planned => planned?,
        };
        // Claimed in one statement: of two decisions at once, one is carried out.
        if !store.decide_pending(id, ProposalStatus::Approved, &who.user, None)? {
            return Err(self.no_longer_pending(id));
        }
        self.audit(who, AuditEvent::new("backup", "approve").target(id));
        let done = self.restore_as_planned(id, planned, &restore, who).await;
        let reason = done.as_ref().err().map(|e| e.to_string());
        let status = if done.is_ok() { ProposalStatus::Applied } else { ProposalStatus::Failed };
        if store.check_file().is_ok() {
            // The restore is done whatever the bookkeeping says.
            if let Err(e) = store.set_proposal_status(id, status, None, reason.as_deref(), None) {
                tracing::warn!(error = %e, proposal = id, "cannot record the restore proposal's outcome");
            }
            proposal = self.proposal(id).map(|p| p.0).unwrap_or(proposal);
        } else {
            // The store is the archive's now: it has no record of this
            // proposal (made after the archive); the store set aside keeps
            // it approved. The outcome goes into the new store's audit log.
            self.audit_in_restored_store(id, who, &restore.location, reason.as_deref());
            (proposal.status, proposal.decided_by, proposal.reason) = (status, Some(who.user.clone()), reason);
        }
        let (restored, apps) = done?;
        Ok(RestoreApproved { proposal, restored, apps })
    }

    /// Records the outcome of approving `id` in the store a restore put in place.
    fn audit_in_restored_store(&self, id: &str, who: &Identity, location: &str, failed: Option<&str>) {
        let detail = match failed {
            None => format!("restored from {location}; the proposal is in the store set aside"),
            Some(e) => format!("restored from {location} in part: {e}; the proposal is in the store set aside"),
        };
        let entry = crate::store::Activity {
            actor: Some(&who.user),
            role: Some(who.role.as_str()),
            category: "backup",
            action: "approve",
            target: Some(id),
            arguments: None,
            result: if failed.is_none() { "ok" } else { "error" },
            detail: Some(&detail),
        };
        if let Err(e) = crate::store::Store::open_in(&self.config().data_dir).and_then(|s| s.record_activity(&entry)) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }

    /// Plans the restore of `restore`'s parts from `file`: the store, vault
    /// and manifests, and each named app's data. Planning an app's restore
    /// connects to its servers while the store they are known by is still
    /// the one in place.
    async fn plan_as_proposed(&self, file: &Path, restore: &RestoreProposal, who: &Identity) -> Result<Planned> {
        let only = restore
            .only
            .iter()
            .map(|p| Part::parse(p).map_err(|e| crate::error::Usage::invalid("only", p, e)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let req = RestoreRequest { file: file.to_path_buf(), only, passphrase: None };
        // Reading the archive whole is blocking work.
        let mut plan = blocking(|| self.backup_restore_plan(&req))?;
        if plan.archive != restore.archive {
            return Err(BackupError::Changed(file.display().to_string()).into());
        }
        // An app's data is replaced only when it was named.
        let named = |app: &String| restore.only.iter().any(|p| p.strip_prefix("app:") == Some(app.as_str()));
        let apps: Vec<String> = plan.take_apps().into_iter().filter(named).collect();
        for app in &apps {
            self.backup_restore_app(&req, &plan, app, restore.to_server.as_deref(), true, &who.user).await?;
        }
        Ok(Planned { req, plan, apps })
    }

    /// Restores as planned, as `who`: the store, vault and manifests first,
    /// then each named app's data.
    async fn restore_as_planned(
        &self,
        id: &str,
        planned: Planned,
        restore: &RestoreProposal,
        who: &Identity,
    ) -> Result<(Option<Restored>, Vec<AppRestoreReport>)> {
        let Planned { req, plan, apps } = planned;
        let to = restore.to_server.as_deref();
        let restored = match plan.parts.is_empty() {
            true => None,
            // Writing the state is blocking work.
            false => Some(blocking(|| self.backup_restore(&req, &plan, &who.user))?),
        };
        let mut reports = Vec::new();
        for app in &apps {
            let done = self.backup_restore_app(&req, &plan, app, to, false, &who.user).await;
            match (done, &restored) {
                (Ok(r), _) => reports.push(r),
                (Err(e), None) => return Err(e),
                (Err(e), Some(_)) => {
                    let first = "the store, vault or manifests".to_string();
                    return Err(ProposalError::PartlyDone {
                        id: id.into(),
                        done: first,
                        failed: format!("app:{app}"),
                        source: Box::new(e),
                    }
                    .into());
                }
            }
        }
        Ok((restored, reports))
    }
}

/// A restore proposal's restore, planned.
struct Planned {
    req: RestoreRequest,
    plan: RestorePlan,
    apps: Vec<String>,
}

/// SHA-256 of the envelope of the archive `file` (no passphrase needed).
fn archive_fingerprint(file: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(file).map_err(|source| BackupError::File { path: file.display().to_string(), source })?;
    let (_, envelope) = read_envelope(&mut f).map_err(BackupError::from)?;
    Ok(crate::backup::fingerprint(&envelope))
}

/// The plan kept with a restore proposal: no manifest or server changes.
fn no_plan(archive: &str) -> Plan {
    Plan {
        format: PLAN_FORMAT,
        options: PlanOptions::default(),
        basis: Basis { desired: format!("restore {archive}"), observed: String::new() },
        actions: Vec::new(),
        conflicts: Vec::new(),
        orphans: Vec::new(),
        unreachable: Default::default(),
        images: Vec::new(),
        risk: Default::default(),
        rolling: Vec::new(),
    }
}

fn file_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

/// Runs blocking work from async code: on a multi-threaded runtime its
/// worker hands its other tasks on first; on a current-thread runtime (a
/// CLI command, nothing else waiting) in place.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// What a restore of the store, vault and manifests writes, and what it replaces.
pub fn restore_plan_text(file: &str, plan: &RestorePlan) -> String {
    let mut t = format!(
        "{}: verified (every checksum good); installation {}, made {}",
        crate::term::line(file),
        plan.installation,
        plan.created
    );
    if let Some(rev) = &plan.manifests_revision {
        t.push_str(&format!(", manifests at {rev}"));
    }
    t.push_str("\nthe restore writes:\n");
    for i in &plan.items {
        let (what, replaces) = (crate::term::line(&i.what), crate::term::line(&i.replaces));
        t.push_str(&format!("  {}: {what}\n    replaces {replaces}\n", i.part));
    }
    for w in &plan.warnings {
        t.push_str(&format!("warning: {}\n", crate::term::line(w)));
    }
    t
}

/// What a restore of an app's data replaces, and the app's downtime.
pub fn app_restore_text(p: &AppRestoreReport) -> String {
    let mut t = format!("app:{}: the archive verified (every checksum good); the restore replaces:\n", p.app);
    for i in &p.items {
        let kind = if i.kind == crate::backup::MemberKind::Bind { "folder" } else { "volume" };
        t.push_str(&format!("  {kind} {} on {} ({} bytes)\n", crate::term::line(&i.target), i.server, i.size));
    }
    if p.stopped.is_empty() {
        t.push_str("  no container of the app is running: no downtime\n");
    } else {
        let stopped: Vec<String> = p.stopped.iter().map(|s| crate::term::line(s).into_owned()).collect();
        t.push_str(&format!("  downtime: {} stopped during the restore, then started again\n", stopped.join(", ")));
    }
    t
}
