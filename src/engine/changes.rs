//! Declarative changes: edits of manifest documents, checked and planned in
//! memory before anything is written, then either written or kept as a
//! proposal for a human (`approve` writes them and applies exactly the plan
//! that was reviewed, or refuses when it went stale).
//!
//! **Invariants:**
//! - An edit replaces, adds or removes one document; every other byte of
//!   every file stays as it was (`manifest::edit`).
//! - Nothing is written unless the edited manifests validate, and files are
//!   written only while they still hold the text the edit was made from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard::Review;
use super::rows::{Proposal, ProposalStatus};
use super::{ApplyRequest, Engine};
use crate::apply::{ApplyReport, ApplySink};
use crate::auth::{Identity, Permission, Role};
use crate::error::{Changed, Error, Known, NotFound, Noun, ProposalError, Result, Stale, Usage};
use crate::manifest::{self, LoadOptions, Sources, edit};
use crate::model::{Desired, Name, RequireApproval};
use crate::plan::{Plan, PlanOptions};
use crate::store::{Activity, NewProposal};

/// Which kind of document an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    App,
    Server,
    Settings,
    /// An app store.
    Marketplace,
}

impl DocKind {
    fn as_str(self) -> &'static str {
        match self {
            DocKind::App => "App",
            DocKind::Server => "Server",
            DocKind::Settings => "Settings",
            DocKind::Marketplace => "Marketplace",
        }
    }

    fn noun(self) -> Noun {
        match self {
            DocKind::App => Noun::App,
            DocKind::Server => Noun::Server,
            DocKind::Settings => Noun::Settings,
            DocKind::Marketplace => Noun::MarketStore,
        }
    }
}

fn origin_of(desired: &Desired, kind: DocKind, name: &str) -> Option<crate::model::Origin> {
    match kind {
        DocKind::App => desired.apps.get(name).map(|a| a.origin.clone()),
        DocKind::Server => desired.servers.get(name).filter(|s| !s.implicit).map(|s| s.origin.clone()),
        DocKind::Settings => desired.settings.origin.clone(),
        DocKind::Marketplace => desired.marketplaces.get(name).map(|m| m.origin.clone()),
    }
}

/// One file's text before and after (`None`: the file does not exist / is deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEdit {
    /// Relative to the manifest folder.
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A set of edits with a one-line title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub title: String,
    pub edits: Vec<FileEdit>,
}

impl Change {
    /// The edits as one unified diff (paths relative to the manifest folder),
    /// control and bidi characters escaped (`term::text`): it is shown to
    /// the reviewer, whom a hidden or reordered character must not mislead.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for e in &self.edits {
            let (old, new) = (e.before.as_deref().unwrap_or(""), e.after.as_deref().unwrap_or(""));
            let a = if e.before.is_some() { format!("a/{}", e.path) } else { "/dev/null".into() };
            let b = if e.after.is_some() { format!("b/{}", e.path) } else { "/dev/null".into() };
            let diff =
                similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(&a, &b).to_string();
            out.push_str(&crate::term::text(&diff));
        }
        out
    }
}

/// One entry of the audit log as the engine records it for a caller: what
/// was done (category and action), to what, with which arguments (redacted
/// by the caller), how it ended and why. Built with `AuditEvent::new` and the
/// setters, e.g. `AuditEvent::new("auth", "user-rm").target(name)`.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// auth | settings | manifest | apply | tool | secret | server
    pub category: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    /// `Value::Null` when there are none.
    pub arguments: Value,
    pub result: AuditResult,
    pub detail: Option<&'a str>,
}

impl<'a> AuditEvent<'a> {
    /// `action` of `category`, succeeded, without target, arguments or detail.
    pub fn new(category: &'a str, action: &'a str) -> AuditEvent<'a> {
        AuditEvent { category, action, target: None, arguments: Value::Null, result: AuditResult::Ok, detail: None }
    }

    pub fn target(mut self, target: &'a str) -> Self {
        self.target = Some(target);
        self
    }

    pub fn arguments(mut self, arguments: Value) -> Self {
        self.arguments = arguments;
        self
    }

    pub fn result(mut self, result: AuditResult) -> Self {
        self.result = result;
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    Ok,
    Error,
    /// Refused before it ran (a missing permission).
    Refused,
}

impl AuditResult {
    /// The text the audit log stores.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Error => "error",
            AuditResult::Refused => "refused",
        }
    }
}

/// What became of a change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Submitted {
    /// The manifests were written; apply the plan (by its fingerprint) to carry it out.
    Written { diff: String, plan: Plan },
    /// Kept for a human's approval; nothing was written.
    Proposed { id: String, why: String, diff: String, plan: Plan },
}

/// The text of a file after `f` changed its document whose first key is on
/// `line` (1-based): `f` gets the document as JSON and returns its new form
/// (`None` removes it). Only the top-level fields that change are rewritten
/// (`edit::update_document`); `None` when no document is left in the file.
pub(super) fn edit_in_text(
    text: &str,
    line: usize,
    f: impl FnOnce(Option<Value>) -> Result<Option<Value>>,
) -> Result<Option<String>> {
    let current = edit::document_json(text, line);
    let found = current.is_some();
    let new = f(current)?;
    let after = match &new {
        Some(v) if found => edit::update_document(text, line, v),
        other => edit::replace_document(text, line, other.as_ref().map(edit::to_yaml).as_deref()),
    }
    .map_err(|problem| Error::Edit { what: "the manifest".into(), problem })?;
    let empty = manifest::yaml::parse(&after).0.iter().all(|d| matches!(d.root.value, manifest::yaml::Value::Null));
    Ok((!empty).then_some(after))
}

/// A new proposal's id: 10 lowercase letters and digits.
pub(super) fn new_proposal_id() -> String {
    crate::auth::random_id()[..10].to_lowercase().replace(['-', '_'], "0")
}

impl Engine {
    /// Builds the edit of one document: `f` gets the document as JSON (or
    /// `None` when there is none yet) and returns its new form (`None`
    /// removes it). A new App goes to `apps/<name>.yaml`, a new Server to
    /// `servers/<name>.yaml`, new Settings to `settings.yaml`. Front ends
    /// edit through the typed requests of `engine::edits`.
    pub(super) fn edit_document(
        &self,
        kind: DocKind,
        name: &str,
        title: String,
        f: impl FnOnce(Option<Value>) -> Result<Option<Value>>,
    ) -> Result<Change> {
        if kind != DocKind::Settings {
            Name::parse(name).map_err(|e| Usage::invalid("name", name, e))?;
        }
        let desired = self.desired()?;
        let sources = self.sources()?;
        let origin = origin_of(&desired, kind, name);
        let edit = match origin {
            Some(origin) => {
                let i = sources
                    .relative
                    .iter()
                    .position(|r| *r == origin.file)
                    .ok_or_else(|| Stale::Editing { path: origin.file.clone() })?;
                let text = &sources.files[i].text;
                FileEdit {
                    path: origin.file.clone(),
                    before: Some(text.clone()),
                    after: edit_in_text(text, origin.line, f).map_err(|e| match e {
                        Error::Edit { problem, .. } => Error::Edit { what: format!("`{}`", origin.file), problem },
                        other => other,
                    })?,
                }
            }
            None => {
                let Some(new) = f(None)? else {
                    return Err(NotFound::new(kind.noun(), name, Known::Nothing).into());
                };
                let path = match kind {
                    DocKind::App => format!("apps/{name}.yaml"),
                    DocKind::Server => format!("servers/{name}.yaml"),
                    DocKind::Settings => "settings.yaml".into(),
                    DocKind::Marketplace => format!("marketplaces/{name}.yaml"),
                };
                if sources.relative.contains(&path) || self.config().manifests.join(&path).exists() {
                    return Err(Usage::Exists {
                        what: format!("`{path}`"),
                        help: format!("it holds no {} `{name}`: edit it by hand or choose another name", kind.as_str()),
                    }
                    .into());
                }
                FileEdit { path, before: None, after: Some(edit::to_yaml(&new)) }
            }
        };
        if edit.before == edit.after {
            return Err(Usage::NotApplicable {
                what: title,
                why: "this changes nothing; the manifests already say so".into(),
            }
            .into());
        }
        Ok(Change { title, edits: vec![edit] })
    }

    /// A document as JSON with its file and line, if it exists.
    pub fn document(&self, kind: DocKind, name: &str) -> Result<Option<(String, usize, Value)>> {
        let desired = self.desired()?;
        let Some(origin) = origin_of(&desired, kind, name) else { return Ok(None) };
        let sources = self.sources()?;
        let text = sources.relative.iter().position(|r| *r == origin.file).map(|i| sources.files[i].text.as_str());
        Ok(text.and_then(|t| edit::document_json(t, origin.line)).map(|v| (origin.file, origin.line, v)))
    }

    /// The manifests as they would be after `change`, validated.
    fn desired_after(&self, change: &Change) -> Result<Desired> {
        let sources = self.sources()?;
        let mut files: Vec<(String, String)> =
            sources.relative.iter().cloned().zip(sources.files.iter().map(|f| f.text.clone())).collect();
        for e in &change.edits {
            files.retain(|(p, _)| *p != e.path);
            if let Some(after) = &e.after {
                files.push((e.path.clone(), after.clone()));
            }
        }
        files.sort();
        let mut edited = Sources::from_texts(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        edited.root = sources.root.clone();
        edited.refused = sources.refused.clone();
        let secrets = self.secret_check();
        let loaded = manifest::load(
            &edited,
            &LoadOptions { secrets: &secrets, inline_check: crate::vault::check_inline_format },
        );
        loaded.desired.ok_or(Error::Invalid(loaded.diagnostics))
    }

    /// Carries out a change for `who`: validated and planned first; then
    /// written, or kept as a proposal when the role may only propose,
    /// `Settings.mcp.require_approval` asks for it, or the change is an
    /// admin's to decide (`guard::review`: a relaxed safety setting, or a
    /// vault secret sent somewhere new). A server whose new connection would
    /// send a vault secret is not contacted until an admin approved.
    pub async fn submit(&self, change: Change, who: &Identity) -> Result<Submitted> {
        self.submit_as(change, who, None).await
    }

    /// `submit`, always as a proposal when `propose` gives a reason.
    pub async fn submit_as(&self, change: Change, who: &Identity, propose: Option<String>) -> Result<Submitted> {
        let after = self.desired_after(&change)?;
        let before = self.desired()?;
        let review = if who.role == Role::Admin { Review::default() } else { super::guard::review(&before, &after) };
        let mut opts = PlanOptions::default();
        opts.scope.held = review.hold.iter().cloned().collect();
        let plan = self.plan_for(&after, &opts).await?;
        let rule = before.settings.require_approval;
        let why = if let Some(why) = propose {
            Some(if review.needs_admin() { format!("{why}; {}", review.why()) } else { why })
        } else if review.needs_admin() {
            Some(review.why())
        } else if !who.role.allows(Permission::Change) {
            Some(format!("the `{}` role proposes changes; an admin approves them", who.role.as_str()))
        } else if rule == RequireApproval::All {
            Some("Settings `mcp.require_approval: all`".to_string())
        } else if rule == RequireApproval::Destructive && plan.is_destructive() {
            let dropped = plan.dropped_data();
            let what = if dropped.is_empty() { String::new() } else { format!("; it drops {}", dropped.join(", ")) };
            Some(format!(
                "the plan removes or replaces something holding data (`mcp.require_approval: destructive`){what}"
            ))
        } else if plan.risk.over_limit_ms.is_some() {
            Some(format!("the plan's {}", crate::plan::risk::summary_line(&plan.risk)))
        } else {
            None
        };
        let diff = change.diff();
        let args = serde_json::json!({"title": change.title, "files": change.edits.iter().map(|e| &e.path).collect::<Vec<_>>()});
        if let Some(why) = why {
            let id = new_proposal_id();
            self.store()?.add_proposal(&NewProposal {
                id: &id,
                created_by: &who.user,
                role: who.role.as_str(),
                title: &change.title,
                diff: &diff,
                edits_json: &serde_json::to_string(&change.edits).expect("edits serialise"),
                plan_json: &serde_json::to_string(&plan).expect("plans serialise"),
                plan_fingerprint: &plan.fingerprint(),
                restore_json: None,
            })?;
            self.audit(who, AuditEvent::new("manifest", "propose").target(&id).arguments(args).detail(&why));
            return Ok(Submitted::Proposed { id, why, diff, plan });
        }
        self.write_edits(&change.edits)?;
        self.audit(who, AuditEvent::new("manifest", "edit").arguments(args));
        Ok(Submitted::Written { diff, plan })
    }

    /// Writes edits after checking every file still holds its `before` text.
    fn write_edits(&self, edits: &[FileEdit]) -> Result<()> {
        let root = &self.config().manifests;
        for e in edits {
            let path = root.join(&e.path);
            let now = match std::fs::read_to_string(&path) {
                Ok(t) => Some(t),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(Error::read(path.display(), source)),
            };
            if now != e.before {
                return Err(Stale::File { path: e.path.clone() }.into());
            }
        }
        for e in edits {
            let path = root.join(&e.path);
            let w = |source| Error::write(path.display(), source);
            match &e.after {
                Some(text) => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).map_err(w)?;
                    }
                    let tmp = path.with_extension("yaml.tomo-tmp");
                    std::fs::write(&tmp, text).map_err(w)?;
                    // The new file keeps the old one's mode (a private manifest stays private).
                    if let Ok(m) = std::fs::metadata(&path) {
                        std::fs::set_permissions(&tmp, m.permissions()).map_err(w)?;
                    }
                    std::fs::rename(&tmp, &path).map_err(w)?;
                }
                None => std::fs::remove_file(&path).map_err(w)?,
            }
        }
        Ok(())
    }

    /// A proposal with its edits and plan.
    pub fn proposal(&self, id: &str) -> Result<(Proposal, Vec<FileEdit>, Plan)> {
        let Some((row, edits_json, plan_json)) = self.proposal_row(id)? else {
            let pending: Vec<String> =
                self.proposals(Some(ProposalStatus::Pending))?.into_iter().map(|p| p.id).collect();
            return Err(NotFound::new(Noun::Proposal, id, Known::List { label: "pending", names: pending }).into());
        };
        let edits: Vec<FileEdit> = serde_json::from_str(&edits_json)
            .map_err(|source| ProposalError::Damaged { id: id.to_string(), source })?;
        let plan: Plan = serde_json::from_str(plan_json.as_deref().unwrap_or("null"))
            .map_err(|source| ProposalError::NoPlan { id: id.to_string(), source })?;
        Ok((row, edits, plan))
    }

    pub(super) fn pending(&self, id: &str) -> Result<(Proposal, Vec<FileEdit>, Plan)> {
        let p = self.proposal(id)?;
        if p.0.status != ProposalStatus::Pending {
            return Err(ProposalError::NotPending { id: id.to_string(), status: p.0.status }.into());
        }
        Ok(p)
    }

    /// Approves a pending proposal: checks that neither the files nor the
    /// servers changed since it was made (else marks it stale and changes
    /// nothing), writes the files and applies exactly its plan.
    pub(super) async fn approve(
        &self,
        id: &str,
        who: &Identity,
        sink: &dyn ApplySink,
    ) -> Result<(Proposal, ApplyReport)> {
        let (row, edits, plan) = self.pending(id)?;
        let change = Change { title: row.title.clone(), edits };
        let store = self.store()?.clone();
        let stale = |e: Error| {
            let _ = store.decide_pending(id, ProposalStatus::Stale, &who.user, Some(&e.to_string()));
            let why = e.to_string();
            self.audit(who, AuditEvent::new("manifest", "approve").target(id).result(AuditResult::Error).detail(&why));
            e
        };
        let desired = self.desired_after(&change).map_err(|e| stale(Stale::NotAccepted(Box::new(e)).into()))?;
        let now = self.plan_for(&desired, &plan.options).await?;
        if now.fingerprint() != plan.fingerprint() {
            let what = if now.basis.desired != plan.basis.desired { Changed::Manifests } else { Changed::Servers };
            return Err(stale(Stale::Proposal { id: id.to_string(), what }.into()));
        }
        // Claimed in one statement: of two decisions at once, one is carried out.
        if !store.decide_pending(id, ProposalStatus::Approved, &who.user, None)? {
            return Err(self.no_longer_pending(id));
        }
        if let Err(e) = self.write_edits(&change.edits) {
            let _ = store.set_proposal_status(id, ProposalStatus::Stale, None, Some(&e.to_string()), None);
            return Err(stale(e));
        }
        self.audit(who, AuditEvent::new("manifest", "approve").target(id));
        let req = ApplyRequest {
            parallelism: None,
            lock_timeout: std::time::Duration::from_secs(60),
            actor: who.user.clone(),
            source: "proposal".into(),
            stop: None,
        };
        let report = self.apply_saved(&plan, &req, sink).await;
        let (status, run) = match &report {
            Ok(r) if r.succeeded() => (ProposalStatus::Applied, r.run_id),
            Ok(r) => (ProposalStatus::Failed, r.run_id),
            Err(_) => (ProposalStatus::Failed, None),
        };
        store.set_proposal_status(id, status, None, report.as_ref().err().map(|e| e.to_string()).as_deref(), run)?;
        let report = report?;
        Ok((self.proposal(id)?.0, report))
    }

    /// The error of a decision that came second: the proposal's status now.
    pub(super) fn no_longer_pending(&self, id: &str) -> Error {
        match self.proposal(id) {
            Ok((p, _, _)) => ProposalError::NotPending { id: id.to_string(), status: p.status }.into(),
            Err(e) => e,
        }
    }

    /// Rejects a pending proposal; nothing is written.
    pub(super) fn reject(&self, id: &str, who: &Identity, reason: Option<&str>) -> Result<Proposal> {
        let (proposal, _, _) = self.pending(id)?;
        if !self.store()?.decide_pending(id, ProposalStatus::Rejected, &who.user, reason)? {
            return Err(self.no_longer_pending(id));
        }
        // Audited where its proposing was: a restore's under `backup`.
        let category = if proposal.restore.is_some() { "backup" } else { "manifest" };
        self.audit(
            who,
            AuditEvent::new(category, "reject").target(id).arguments(serde_json::json!({"reason": reason})),
        );
        Ok(self.proposal(id)?.0)
    }

    /// Records `event` by `who` in the audit log (never fails the caller).
    pub fn audit(&self, who: &Identity, event: AuditEvent<'_>) {
        let AuditEvent { category, action, target, arguments, result, detail } = event;
        let entry = Activity {
            actor: Some(&who.user),
            role: Some(who.role.as_str()),
            category,
            action,
            target,
            arguments: (!arguments.is_null()).then_some(arguments),
            result: result.as_str(),
            detail,
        };
        if let Err(e) = self.store().and_then(|s| Ok(s.record_activity(&entry)?)) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}
