//! Reconcile tools: validate, plan, apply (only the reviewed plan), status,
//! and proposals.

use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PlanOut, options};
use crate::auth::{Identity, Role};
use crate::engine::Both;
use crate::engine::{
    ApplyReport, ApplyRequest, Decided, Outcome, Plan, Proposal, ProposalDecision, ProposalStatus, TracingSink,
};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::mcp::progress::Call;
use crate::model::RequireApproval;

#[derive(Debug, Serialize, JsonSchema)]
pub struct ValidateOut {
    pub valid: bool,
    /// `file:line:col: field: message (help)` per problem.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// Only these servers (all when empty).
    #[serde(default)]
    pub servers: Vec<String>,
    /// Only these apps (all when empty).
    #[serde(default)]
    pub apps: Vec<String>,
    /// Also remove containers of apps no longer declared.
    #[serde(default)]
    pub prune: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyArgs {
    /// The fingerprint of the plan you reviewed (from `plan` or a change tool).
    pub fingerprint: String,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub apps: Vec<String>,
    #[serde(default)]
    pub prune: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionOut {
    pub server: String,
    pub action: String,
    pub object: String,
    /// succeeded | failed | skipped
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplyOut {
    pub succeeded: bool,
    /// The call was cancelled: the actions that had started finished, the
    /// others (`skipped`) did not start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// The run in the history (absent when there was nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    pub actions: Vec<ActionOut>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainerStatus {
    pub server: String,
    pub app: String,
    pub service: String,
    pub container: String,
    /// running, exited, … or `missing`
    pub state: String,
    /// `in sync`, or what apply would do and why
    pub drift: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusOut {
    pub in_sync: bool,
    pub containers: Vec<ContainerStatus>,
    /// Servers that could not be reached, with why.
    pub unreachable: Vec<String>,
    pub text: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalListArgs {
    /// Only proposals with this status: pending, approved, rejected, applied, failed, stale.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposalOut {
    pub id: String,
    pub title: String,
    pub status: ProposalStatus,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// A restore's proposal: the archive, parts and target server it restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<crate::engine::restore_proposal::RestoreProposal>,
}

impl From<Proposal> for ProposalOut {
    fn from(p: Proposal) -> Self {
        ProposalOut {
            id: p.id,
            title: p.title,
            status: p.status,
            created_by: p.created_by,
            created_at: p.created_at,
            decided_by: p.decided_by,
            reason: p.reason,
            run_id: p.run_id,
            restore: p.restore,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposalsOut {
    pub proposals: Vec<ProposalOut>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalArg {
    /// The proposal's id.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectArgs {
    pub id: String,
    /// Why, for the one who proposed it.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposalDetail {
    pub proposal: ProposalOut,
    pub diff: String,
    pub plan: PlanOut,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovedOut {
    pub proposal: ProposalOut,
    /// A proposal of manifest edits: the apply of its plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyOut>,
    /// A restore's proposal: what was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoredOut>,
}

/// What an approved restore proposal restored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RestoredOut {
    /// The store, vault and manifests restored, if any were.
    pub restored: Option<crate::engine::Restored>,
    /// Each named app's data restored.
    pub apps: Vec<crate::engine::appdata_restore::AppRestoreReport>,
}

fn apply_out(plan: &Plan, r: &ApplyReport) -> ApplyOut {
    ApplyOut {
        succeeded: r.succeeded(),
        cancelled: r.cancelled,
        run_id: r.run_id,
        elapsed_ms: r.elapsed_ms,
        actions: r
            .results
            .iter()
            .map(|res| {
                let a = &plan.actions[res.id];
                ActionOut {
                    server: a.server.to_string(),
                    action: a.op.verb().into(),
                    object: a.op.object().into(),
                    outcome: res.outcome.as_str().into(),
                    error: match &res.outcome {
                        Outcome::Failed(e) | Outcome::Skipped(e) => Some(e.clone()),
                        Outcome::Succeeded => None,
                    },
                    elapsed_ms: res.elapsed_ms,
                }
            })
            .collect(),
    }
}

fn request(who: &Identity, source: &str) -> ApplyRequest {
    ApplyRequest {
        parallelism: None,
        lock_timeout: std::time::Duration::from_secs(30),
        actor: who.user.clone(),
        source: source.into(),
        stop: None,
    }
}

#[tool_router(router = reconcile_tools, vis = "pub(super)")]
impl Tomo {
    /// Checks every manifest (no servers contacted) and lists each problem with its file, line, field and what would be valid.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn validate(&self) -> Result<Json<ValidateOut>, ToolError> {
        let loaded = self.engine().validate()?;
        let (errors, warnings): (Vec<_>, Vec<_>) = loaded.diagnostics.iter().partition(|d| d.is_error());
        Ok(Json(ValidateOut {
            valid: errors.is_empty(),
            errors: errors.iter().map(|d| d.to_string()).collect(),
            warnings: warnings.iter().map(|d| d.to_string()).collect(),
        }))
    }

    /// Observes the servers and shows what apply would do, and why, without changing anything. Returns the plan as text and JSON, and its fingerprint for `apply`.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn plan(&self, Parameters(a): Parameters<PlanArgs>) -> Result<Json<PlanOut>, ToolError> {
        let plan = self.engine().plan(&options(&a.servers, &a.apps, a.prune)?).await?;
        Ok(Json((&plan).into()))
    }

    /// Applies the current plan only if its fingerprint equals the one you reviewed; otherwise nothing happens and you are told to plan again. Destructive plans need an admin while `mcp.require_approval` is `destructive` or `all`.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn apply(
        &self,
        Extension(who): Extension<Identity>,
        Extension(call): Extension<Arc<Call>>,
        Parameters(a): Parameters<ApplyArgs>,
    ) -> Result<Json<ApplyOut>, ToolError> {
        let opts = options(&a.servers, &a.apps, a.prune)?;
        let rule = self.engine().desired()?.settings.require_approval;
        let mut refusal = None;
        let result = self
            .engine()
            .apply_current(
                &opts,
                &request(&who, "mcp"),
                |p| {
                    if p.fingerprint() != a.fingerprint {
                        refusal = Some(format!(
                            "the plan changed since you reviewed it (its fingerprint is now `{}`); nothing was applied. Call `plan` again and review it",
                            p.fingerprint()
                        ));
                    } else if p.is_destructive() && rule != RequireApproval::None && who.role != Role::Admin {
                        refusal = Some(
                            "this plan removes something or replaces a container holding data, and `mcp.require_approval` asks for an admin; nothing was applied. An admin can apply it, or run `tomo apply`".into(),
                        );
                    } else if p.risk.over_limit_ms.is_some() && who.role != Role::Admin {
                        refusal = Some(format!(
                            "{}; nothing was applied. An admin can apply it, or run `tomo apply --allow-downtime`",
                            crate::engine::risk::summary_line(&p.risk)
                        ));
                    }
                    refusal.is_none()
                },
                &Both(&TracingSink, &call.sink()),
            )
            .await?;
        match result {
            Some((plan, report)) => {
                call.report(&report);
                Ok(Json(apply_out(&plan, &report)))
            }
            None => Err(ToolError(refusal.unwrap_or_else(|| "nothing was applied".into()))),
        }
    }

    /// What is deployed on each server against what the manifests declare: state and drift per container.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn status(&self, Parameters(a): Parameters<PlanArgs>) -> Result<Json<StatusOut>, ToolError> {
        let opts = options(&a.servers, &a.apps, false)?;
        let (desired, observed, plan) = self.engine().status(&opts).await?;
        let containers = crate::engine::status_rows(&plan, &observed, &desired, &opts.scope)
            .into_iter()
            .map(|r| ContainerStatus {
                drift: if r.drift.is_empty() { "in sync".into() } else { r.drift.join("; ") },
                server: r.server,
                app: r.app,
                service: r.service,
                container: r.container,
                state: r.state.into(),
            })
            .collect();
        Ok(Json(StatusOut {
            in_sync: !plan.has_changes() && plan.unreachable.is_empty(),
            containers,
            unreachable: plan.unreachable.iter().map(|(s, why)| format!("{s}: {why}")).collect(),
            text: crate::engine::status_text(&plan, &observed, &desired),
        }))
    }

    /// Lists proposals (manifest changes waiting for, or decided by, an admin), newest first.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn proposal_list(
        &self,
        Parameters(a): Parameters<ProposalListArgs>,
    ) -> Result<Json<ProposalsOut>, ToolError> {
        let status =
            match &a.status {
                Some(s) => Some(ProposalStatus::parse(s).map_err(|_| {
                    super::bad_arg("status", format!("`{s}` is not one of: {}", ProposalStatus::names()))
                })?),
                None => None,
            };
        let rows = self.engine().proposals(status)?;
        Ok(Json(ProposalsOut { proposals: rows.into_iter().map(Into::into).collect() }))
    }

    /// One proposal with its diff and the plan computed when it was made.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn proposal_get(&self, Parameters(a): Parameters<ProposalArg>) -> Result<Json<ProposalDetail>, ToolError> {
        let (row, _, plan) = self.engine().proposal(&a.id)?;
        let diff = row.diff.clone();
        Ok(Json(ProposalDetail { proposal: row.into(), diff, plan: (&plan).into() }))
    }

    /// Approves a pending proposal: writes its manifest edits and applies exactly its plan; refused, with nothing changed, when the manifests or servers changed since (re-propose then). A restore's proposal restores exactly the archive it was made with (refused when that archive is gone or another). Admin only.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn proposal_approve(
        &self,
        Extension(who): Extension<Identity>,
        Extension(call): Extension<Arc<Call>>,
        Parameters(a): Parameters<ProposalArg>,
    ) -> Result<Json<ApprovedOut>, ToolError> {
        let sink = Both(&TracingSink, &call.sink());
        match self.engine().decide(ProposalDecision::Approve { id: a.id }, &who, &sink).await? {
            Decided::Approved { proposal, plan, report } => {
                call.report(&report);
                Ok(Json(ApprovedOut {
                    proposal: proposal.into(),
                    apply: Some(apply_out(&plan, &report)),
                    restore: None,
                }))
            }
            Decided::Restored(done) => {
                let done = *done;
                let restore = RestoredOut { restored: done.restored, apps: done.apps };
                Ok(Json(ApprovedOut { proposal: done.proposal.into(), apply: None, restore: Some(restore) }))
            }
            Decided::Rejected { .. } => Err(ToolError("the proposal was rejected, not approved".into())),
        }
    }

    /// Rejects a pending proposal; nothing is written. Admin only.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn proposal_reject(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<RejectArgs>,
    ) -> Result<Json<ProposalOut>, ToolError> {
        let decision = ProposalDecision::Reject { id: a.id, reason: a.reason };
        match self.engine().decide(decision, &who, &TracingSink).await? {
            Decided::Rejected { proposal } | Decided::Approved { proposal, .. } => Ok(Json(proposal.into())),
            Decided::Restored(done) => Ok(Json(done.proposal.into())),
        }
    }
}
