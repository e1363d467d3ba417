//! Logs: `logs_system` (tomo's own stored events), `logs_app` (an app's
//! container logs interleaved by time: since, tail, grep; secrets masked;
//! bounded with a truncation note) and `logs_purge` (admin; audited by the
//! engine).

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bad_arg;
use crate::auth::Identity;
use crate::engine::{
    AppLogLine, AppLogsRequest, LogLevel, LogRow, PurgeRequest, Purged, SystemLogsRequest, log_filter,
};
use crate::error::{Error, Noun};
use crate::mcp::Tomo;
use crate::mcp::output::ToolError;
use crate::model::Duration;

/// The most log text `logs_app` returns.
const MAX_APP_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemArgs {
    /// Only events newer than this, e.g. `1h`, `2d`.
    #[serde(default)]
    pub since: Option<String>,
    /// Only events at least this serious.
    #[serde(default)]
    pub level: Option<LogLevel>,
    /// Only events whose message or source matches this regular expression.
    #[serde(default)]
    pub grep: Option<String>,
    /// The newest this many events (default 200, at most 5000).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SystemOut {
    /// Oldest first.
    pub events: Vec<LogRow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppArgs {
    /// The app.
    pub name: String,
    #[serde(default)]
    pub service: Option<String>,
    /// Only lines newer than this, e.g. `10m`, `2h`.
    #[serde(default)]
    pub since: Option<String>,
    /// Lines from the end, per container (default 200, at most 5000).
    #[serde(default)]
    pub tail: Option<u32>,
    /// Only lines matching this regular expression (matched after masking).
    #[serde(default)]
    pub grep: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppOut {
    /// Interleaved by time, oldest first.
    pub lines: Vec<AppLogLine>,
    /// Set when older lines were left out to stay within 64 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// Servers or containers whose logs could not be read.
    pub errors: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeArgs {
    /// Only rows older than this, e.g. `7d`; all when left out.
    #[serde(default)]
    pub before: Option<String>,
    /// Delete tomo's stored events (default true unless `metrics` is given).
    #[serde(default)]
    pub system: Option<bool>,
    /// Delete stored metric samples and rollups (default false).
    #[serde(default)]
    pub metrics: Option<bool>,
}

fn seconds(arg: &str, v: &Option<String>) -> Result<Option<u64>, ToolError> {
    v.as_deref().map(|s| Duration::parse(s).map(|d| d.as_millis() / 1000).map_err(|e| bad_arg(arg, e))).transpose()
}

/// `grep`, checked here so that the error names the argument.
fn pattern(v: Option<String>) -> Result<Option<String>, ToolError> {
    if let Some(p) = &v {
        log_filter("grep", p).map_err(|e| bad_arg("grep", e))?;
    }
    Ok(v)
}

/// An app or service that is not there, as an error about its argument.
fn named(e: Error) -> ToolError {
    let arg = match &e {
        Error::NotFound(n) if n.kind == Noun::App => Some("name"),
        Error::NotFound(n) if n.kind == Noun::Service => Some("service"),
        _ => None,
    };
    match arg {
        Some(arg) => bad_arg(arg, e),
        None => e.into(),
    }
}

fn bounded(arg: &str, v: Option<u32>, default: u32) -> Result<u32, ToolError> {
    let n = v.unwrap_or(default);
    if n == 0 || n > 5000 {
        return Err(bad_arg(arg, format!("{n} is out of range; give 1 to 5000")));
    }
    Ok(n)
}

#[tool_router(router = logs_tools, vis = "pub(super)")]
impl Tomo {
    /// tomo's own recorded events: runs (start, each action, outcome), market syncs, daemon starts and stops, alerts, warnings and errors; filtered by age, level and pattern.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn logs_system(&self, Parameters(a): Parameters<SystemArgs>) -> Result<Json<SystemOut>, ToolError> {
        let req = SystemLogsRequest {
            since_secs: seconds("since", &a.since)?,
            min_level: a.level,
            grep: pattern(a.grep)?,
            limit: Some(bounded("limit", a.limit, 200)?),
        };
        Ok(Json(SystemOut { events: self.engine().system_logs(&req)? }))
    }

    /// An app's container log lines, all services interleaved by time, each with its server, service and timestamp; secret values masked before `grep` sees them (a safety net: a container can still reveal a secret transformed otherwise). At most 64 KiB: older lines beyond that are left out with a note.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn logs_app(&self, Parameters(a): Parameters<AppArgs>) -> Result<Json<AppOut>, ToolError> {
        let req = AppLogsRequest {
            app: a.name,
            service: a.service,
            since_secs: seconds("since", &a.since)?,
            tail: Some(bounded("tail", a.tail, 200)?),
            follow: false,
            grep: pattern(a.grep)?,
        };
        let (lines, truncated, per) = self.engine().app_log_lines(&req, MAX_APP_BYTES).await.map_err(named)?;
        let errors = per.into_iter().filter_map(|p| p.error.map(|e| format!("{}: {e}", p.server))).collect();
        let truncated = truncated
            .then(|| "older lines were left out (64 KiB at most); narrow with since, tail or grep".to_string());
        Ok(Json(AppOut { lines, truncated, errors }))
    }

    /// Deletes tomo's stored events and/or metric samples (all, or those older than `before`); admin only, audited.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn logs_purge(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<PurgeArgs>,
    ) -> Result<Json<Purged>, ToolError> {
        let req = PurgeRequest {
            before_secs: seconds("before", &a.before)?,
            system: a.system.unwrap_or(!a.metrics.unwrap_or(false)),
            metrics: a.metrics.unwrap_or(false),
        };
        Ok(Json(self.engine().purge(&who, &req)?))
    }
}
