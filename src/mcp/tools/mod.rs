//! The tools, one file per group, each a thin wrapper of an engine method:
//! parse the arguments into engine types, call, shape the result.

mod admin;
mod apps;
mod backup;
mod docker;
mod fleet;
mod logs;
mod market_catalog;
mod market_install;
mod market_repo;
mod metrics;
mod reconcile;

use rmcp::handler::server::tool::ToolRouter;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Tomo;
use super::output::{ToolError, bad_arg};
use crate::engine::{Plan, PlanOptions, Scope, Submitted};
use crate::model::Name;

/// Every tool, built once per server.
pub fn router() -> ToolRouter<Tomo> {
    Tomo::reconcile_tools()
        + Tomo::app_tools()
        + Tomo::fleet_tools()
        + Tomo::admin_tools()
        + Tomo::market_repo_tools()
        + Tomo::market_catalog_tools()
        + Tomo::market_install_tools()
        + Tomo::docker_tools()
        + Tomo::backup_tools()
        + Tomo::logs_tools()
        + Tomo::metrics_tools()
}

/// Names from an argument, checked.
fn names(arg: &str, given: &[String]) -> Result<Vec<Name>, ToolError> {
    given.iter().map(|s| Name::parse(s).map_err(|e| bad_arg(arg, e))).collect()
}

fn options(servers: &[String], apps: &[String], prune: bool) -> Result<PlanOptions, ToolError> {
    Ok(PlanOptions {
        scope: Scope { servers: names("servers", servers)?, apps: names("apps", apps)?, held: Vec::new() },
        prune,
        prune_volumes: Vec::new(),
    })
}

/// A plan as tools return it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanOut {
    /// Pass this to `apply` to carry out exactly this plan.
    pub fingerprint: String,
    pub has_changes: bool,
    /// Whether it removes something or replaces a container holding data.
    pub destructive: bool,
    /// The plan as `tomo plan` shows it.
    pub text: String,
    /// Downtime and data at risk, e.g. `downtime: ~3 s for 2 services (web, api); data at risk: none`;
    /// each action of `plan` carries its own (`risk`).
    pub risk: String,
    /// Whether a service would be down longer than `Settings.rollout.max_downtime` (needs an approval).
    pub over_max_downtime: bool,
    /// The full plan (actions, reasons, diffs, conflicts, orphans).
    pub plan: serde_json::Value,
}

impl From<&Plan> for PlanOut {
    fn from(p: &Plan) -> Self {
        PlanOut {
            fingerprint: p.fingerprint(),
            has_changes: p.has_changes(),
            destructive: p.is_destructive(),
            text: crate::engine::plan_text(p),
            risk: crate::engine::risk::summary_line(&p.risk),
            over_max_downtime: p.risk.over_limit_ms.is_some(),
            plan: serde_json::to_value(p).unwrap_or_default(),
        }
    }
}

/// The result of a manifest change.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangeOut {
    /// `written`: the manifests were changed; `proposed`: kept for approval.
    pub outcome: String,
    /// The proposal's id, when proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    /// Why it needs approval, when proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The edits as a unified diff.
    pub diff: String,
    pub plan: PlanOut,
    /// What to do next.
    pub next: String,
}

impl From<Submitted> for ChangeOut {
    fn from(s: Submitted) -> Self {
        match s {
            Submitted::Written { diff, plan } => {
                let next = if plan.has_changes() {
                    format!("review the plan, then call `apply` with fingerprint `{}`", plan.fingerprint())
                } else {
                    "nothing to apply: the servers already match".into()
                };
                ChangeOut { outcome: "written".into(), proposal: None, why: None, diff, plan: (&plan).into(), next }
            }
            Submitted::Proposed { id, why, diff, plan } => ChangeOut {
                outcome: "proposed".into(),
                next: format!(
                    "an admin approves it with `tomo proposal approve {id}` (or the `proposal_approve` tool); nothing changes until then"
                ),
                proposal: Some(id),
                why: Some(why),
                diff,
                plan: (&plan).into(),
            },
        }
    }
}

/// Arguments naming one app.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppArg {
    /// The app's name.
    pub name: String,
}

/// Arguments naming servers (all declared ones when empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServersArg {
    /// Only these servers (all when empty or absent).
    #[serde(default)]
    pub servers: Vec<String>,
}

/// Arguments naming one server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerArg {
    /// The server's name.
    pub server: String,
}
