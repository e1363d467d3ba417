//! `tomo backup create | restore | list | prune`.

use std::io::{BufRead, IsTerminal, Write};

use super::args::{BackupCommand, BackupPassphrase, BackupRestoreArgs};
use super::{out, out_json};
use crate::engine::appdata::DataMode;
use crate::engine::appdata_restore::AppRestoreReport;
use crate::engine::{BackupKeep as Keep, BackupPart as Part, BackupRequest, Engine, RestoreRequest};
use crate::error::{Error, IoOp, Result, Usage};
use crate::model::secret::SecretString;
use crate::term;

pub fn run(engine: &Engine, c: BackupCommand) -> Result<i32> {
    match c {
        BackupCommand::Create(a) => {
            let req = BackupRequest {
                out: a.out.clone(),
                dir: None,
                passphrase: passphrase(&a.passphrase)?,
                trigger: "cli".into(),
                actor: "cli".into(),
                apps: a.apps.clone(),
                all_apps: a.all_apps,
                mode: a.mode.as_deref().map(|m| if m == "stop" { DataMode::Stop } else { DataMode::Live }),
                fallback_mode: None,
            };
            let made = engine.backup_create(&req)?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&made).expect("JSON"))?;
            } else {
                let rev = made.manifests_revision.as_deref().map(|r| format!(", manifests at {r}")).unwrap_or_default();
                out(&format!(
                    "wrote {} ({} bytes, {} member(s){rev}{}); {}\n",
                    term::line(&made.file),
                    made.size,
                    made.members,
                    if made.apps.is_empty() { String::new() } else { format!(", data of {}", made.apps.join(", ")) },
                    if made.verified { "verified" } else { "NOT verified: reading it back failed" }
                ))?;
            }
            Ok(if made.verified { 0 } else { 1 })
        }
        BackupCommand::Restore(a) => restore(engine, &a),
        BackupCommand::List(a) => {
            let pass = passphrase(&a.passphrase)?;
            let rows = engine.backup_list(a.folder.as_deref(), a.verify, pass.as_ref())?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&rows).expect("JSON"))?;
            } else if rows.is_empty() {
                out("no backups\n")?;
            } else {
                let mut text = String::from("TIME                      SIZE        MEMBERS  VERIFIED  APPS  FILE\n");
                for r in &rows {
                    let verified = match r.verified {
                        Some(true) => "yes",
                        Some(false) => "FAILED",
                        None => "?",
                    };
                    let members = r.members.map_or("?".into(), |m| m.to_string());
                    text.push_str(&format!(
                        "{:24}  {:>10}  {:>7}  {:8}  {:4}  {}\n",
                        r.created,
                        r.size,
                        members,
                        verified,
                        if r.apps.is_empty() { "-".into() } else { r.apps.join(",") },
                        term::line(&r.file)
                    ));
                    if let Some(p) = &r.problem {
                        text.push_str(&format!("    {}\n", term::line(p)));
                    }
                }
                out(&text)?;
            }
            Ok(if rows.iter().any(|r| r.verified == Some(false)) { 1 } else { 0 })
        }
        BackupCommand::Prune(a) => {
            let rules = Keep { last: a.keep_last, daily: a.keep_daily, weekly: a.keep_weekly, monthly: a.keep_monthly };
            if rules.is_none() {
                return Err(Usage::Invalid {
                    arg: "--keep-*".into(),
                    value: None,
                    problem: "name at least one keep rule (--keep-last, --keep-daily, --keep-weekly, --keep-monthly)"
                        .into(),
                }
                .into());
            }
            let removed = engine.backup_prune(a.folder.as_deref(), &rules)?;
            let mut text = format!("removed {} archive(s)\n", removed.len());
            for r in &removed {
                text.push_str(&format!("  {}\n", term::line(r)));
            }
            out(&text)?;
            Ok(0)
        }
    }
}

/// The passphrase from `--passphrase-file` (one line; its line break dropped).
fn passphrase(a: &BackupPassphrase) -> Result<Option<SecretString>> {
    let Some(path) = &a.passphrase_file else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        op: IoOp::Read,
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(SecretString::new(text.trim_end_matches(['\n', '\r']).to_string())))
}

/// An archive written `server:NAME:/PATH` is copied into the data folder
/// first (removed afterwards), then restored as a local one.
fn restore(engine: &Engine, a: &BackupRestoreArgs) -> Result<i32> {
    let at_hand = engine.backup_at_hand(&a.file)?;
    let mut here = a.clone();
    here.file = at_hand.path().to_path_buf();
    restore_file(engine, &here)
}

fn restore_file(engine: &Engine, a: &BackupRestoreArgs) -> Result<i32> {
    let only = a
        .only
        .iter()
        .map(|p| Part::parse(p).map_err(|problem| Usage::invalid("--only", p, problem)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let pass = passphrase(&a.passphrase)?;
    let req = RestoreRequest { file: a.file.clone(), only, passphrase: pass.clone() };
    let mut plan = engine.backup_restore_plan(&req)?;
    // App data is restored through the engine's app restore, the rest here.
    let apps = plan.take_apps();
    if a.to_server.is_some() && apps.is_empty() {
        return Err(Usage::invalid(
            "--to-server",
            a.to_server.clone().unwrap_or_default(),
            "only app data (--only app:APP) goes to a server",
        )
        .into());
    }
    let rt = if apps.is_empty() { None } else { Some(super::runtime()?) };
    let app_plans = match &rt {
        Some(rt) => apps
            .iter()
            .map(|app| rt.block_on(engine.backup_restore_app(&req, &plan, app, a.to_server.as_deref(), true, "cli")))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    if !a.json {
        let mut text = if plan.parts.is_empty() {
            String::new()
        } else {
            crate::engine::restore_proposal::restore_plan_text(&a.file.display().to_string(), &plan)
        };
        for p in &app_plans {
            text.push_str(&crate::engine::restore_proposal::app_restore_text(p));
        }
        out(&text)?;
    }
    if a.dry_run {
        if a.json {
            out_json(&serde_json::json!({ "plan": plan, "apps": app_plans, "restored": null }).to_string())?;
        } else {
            out("dry run: nothing was changed\n")?;
        }
        return Ok(0);
    }
    if !a.yes && !confirm()? {
        out("nothing was changed\n")?;
        return Ok(1);
    }
    let done = if plan.parts.is_empty() { None } else { Some(engine.backup_restore(&req, &plan, "cli")?) };
    let mut apps_done = Vec::new();
    if let Some(rt) = &rt {
        for app in &apps {
            match rt.block_on(engine.backup_restore_app(&req, &plan, app, a.to_server.as_deref(), false, "cli")) {
                Ok(r) => apps_done.push(r),
                Err(e) => {
                    // What was restored before it failed is not undone: say so.
                    if !a.json && (done.is_some() || !apps_done.is_empty()) {
                        out(&outcome_text(done.as_ref(), &apps_done))?;
                    }
                    return Err(e);
                }
            }
        }
    }
    if a.json {
        out_json(&serde_json::json!({ "plan": plan, "restored": done, "apps": apps_done }).to_string())?;
        return Ok(0);
    }
    out(&outcome_text(done.as_ref(), &apps_done))?;
    Ok(0)
}

/// What a restore did: the state's parts, then each app's data.
pub(super) fn outcome_text(done: Option<&crate::engine::Restored>, apps: &[AppRestoreReport]) -> String {
    let mut text = done.map(restored_text).unwrap_or_default();
    for r in apps {
        text.push_str(&format!(
            "restored the data of app {} ({} volume(s)/folder(s)); the archive was checked in {} ms, the app was down {} ms\n",
            r.app,
            r.items.len(),
            r.check_ms,
            r.downtime_ms.unwrap_or(0)
        ));
    }
    text
}

fn restored_text(done: &crate::engine::Restored) -> String {
    let mut text = String::from("restored:");
    if done.store {
        text.push_str(" the store;");
    }
    if let Some(n) = done.secrets {
        text.push_str(&format!(" the vault ({n} secret(s));"));
    }
    if done.manifest_files > 0 {
        text.push_str(&format!(" {} manifest file(s);", done.manifest_files));
    }
    text.push('\n');
    if let Some(aside) = &done.set_aside {
        text.push_str(&format!("the store it replaced is kept as {}\n", term::line(aside)));
    }
    if let Some(salt) = &done.salt_file {
        text.push_str(&format!(
            "the vault's salt differs from TOMO_SALT here: set TOMO_SALT to the content of {} before using secrets\n",
            term::line(salt)
        ));
    }
    text
}

fn confirm() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Usage::NeedsFlag { flag: "--yes", review: "review what the restore replaces (above)".into() }.into()
        );
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "restore? [y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|source| Error::Io {
        op: IoOp::Read,
        path: "standard input".into(),
        source,
    })?;
    Ok(matches!(line.trim(), "y" | "yes"))
}
