//! App commands: typed edits of an app's manifest (`engine::AppEdit`), the
//! same the MCP app tools make, written by the local admin (or proposed when
//! `mcp.require_approval` asks for it).

use super::access::local_admin;
use super::args::AppCommand;
use super::{out, runtime};
use crate::engine::{AppEdit, Engine, EnvInput, ServiceEdit, Submitted};
use crate::error::Result;

pub fn run(engine: &Engine, cmd: AppCommand) -> Result<i32> {
    match cmd {
        AppCommand::SetEnv(a) => {
            let plain = a.vars.into_iter().map(|(k, v)| (k, EnvInput::Plain(v)));
            let secrets = a.secrets.into_iter().map(|(k, secret)| (k, EnvInput::Secret { secret }));
            let env: std::collections::BTreeMap<_, _> = plain.chain(secrets).collect();
            let fields = ServiceEdit { env: (!env.is_empty()).then_some(env), ..ServiceEdit::default() };
            let req = AppEdit { name: a.app, service: a.service, fields, unset_env: a.unset, ..AppEdit::default() };
            let submitted = runtime()?.block_on(engine.edit_app(req, &local_admin()))?;
            out(&submitted_text(&submitted))?;
            Ok(0)
        }
    }
}

/// A submitted change as text: the diff, the plan and what to do next.
pub(super) fn submitted_text(s: &Submitted) -> String {
    match s {
        Submitted::Written { diff, plan } => {
            let next = if plan.has_changes() {
                "Written. Run `tomo apply` to carry it out.\n"
            } else {
                "Written; nothing to apply: the servers already match.\n"
            };
            format!("{diff}\n{}\n{next}", crate::engine::plan_text(plan))
        }
        Submitted::Proposed { id, why, diff, plan } => format!(
            "{diff}\n{}\nProposed as {id}: {}; nothing was written. Approve it with `tomo proposal approve {id}`.\n",
            crate::engine::plan_text(plan),
            crate::term::line(why)
        ),
    }
}
