//! `tomo market install|installed|updates|upgrade`: store apps as App
//! manifests (`engine::InstallRequest`), and their upgrades.

use std::io::Write;

use clap::{Args, Subcommand};

use super::access::local_admin;
use super::apps::submitted_text;
use super::plan_view::{self, LineSink};
use super::{out, out_json, runtime};
use crate::engine::{Engine, InstallRequest, Submitted};
use crate::error::{Result, Usage};

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Install a store app as `apps/<name>.yaml` and show its plan; nothing
    /// runs until `tomo apply` (or --yes)
    Install(InstallArgs),
    /// Apps installed from stores
    Installed(JsonArgs),
    /// Installed apps whose store changed, with the manifest diff an upgrade makes
    Updates(JsonArgs),
    /// Write an installed app's upgrade (your own edits kept)
    Upgrade(UpgradeArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// STORE/APP
    pub app: String,
    /// The app's name [default: the store app's]
    #[arg(long)]
    pub name: Option<String>,
    /// The server it runs on [default: the only declared server, else local]
    #[arg(long)]
    pub server: Option<String>,
    /// A variable (before Settings.marketplace.defaults), or HOST=NEW to
    /// publish a host port as another (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub set: Vec<(String, String)>,
    /// Apply the plan at once
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The installed app's name
    pub app: String,
}

fn key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub fn run(engine: &Engine, cmd: InstallCommand) -> Result<i32> {
    match cmd {
        InstallCommand::Install(a) => install(engine, a),
        InstallCommand::Installed(a) => {
            let apps = engine.market_installed()?;
            if a.json {
                return out_json(&serde_json::to_string_pretty(&apps).expect("JSON")).map(|_| 0);
            }
            let mut text = String::new();
            for i in &apps {
                text.push_str(&format!(
                    "{:<24} {}/{} {} on {}\n",
                    i.name,
                    i.source.store,
                    i.source.app,
                    i.source.version,
                    i.servers.join(", ")
                ));
            }
            if apps.is_empty() {
                text.push_str("No app installed from a store.\n");
            }
            out(&crate::term::text(&text)).map(|_| 0)
        }
        InstallCommand::Updates(a) => {
            let ups = engine.market_updates()?;
            if a.json {
                return out_json(&serde_json::to_string_pretty(&ups).expect("JSON")).map(|_| 0);
            }
            let mut text = String::new();
            for u in &ups {
                text.push_str(&format!(
                    "{}: {}/{} {} → {}\n{}",
                    u.name, u.store, u.app, u.installed_version, u.available_version, u.diff
                ));
                for c in &u.conflicts {
                    text.push_str(&format!(
                        "conflict at `{}`: yours {} / the store's {} (was {})\n",
                        c.path, c.ours, c.theirs, c.base
                    ));
                }
            }
            if ups.is_empty() {
                text.push_str("Every installed app is up to date with its store.\n");
            }
            out(&crate::term::text(&text)).map(|_| 0)
        }
        InstallCommand::Upgrade(a) => {
            let (_, submitted) = runtime()?.block_on(engine.market_upgrade(&a.app, &local_admin(), None))?;
            out(&submitted_text(&submitted)).map(|_| 0)
        }
    }
}

fn install(engine: &Engine, a: InstallArgs) -> Result<i32> {
    let (store, app) = a.app.split_once('/').filter(|(s, p)| !s.is_empty() && !p.is_empty()).ok_or_else(|| {
        Usage::invalid("STORE/APP", &a.app, "write the store's name and the app's, e.g. `casaos/Jellyfin`")
    })?;
    let req = InstallRequest {
        store: store.into(),
        app: app.into(),
        name: a.name.clone(),
        server: a.server.clone(),
        set: a.set.clone(),
        yes: a.yes,
    };
    let sink = LineSink::new(0, a.json);
    let done = runtime()?.block_on(engine.market_install(&req, &local_admin(), &sink));
    sink.finish();
    let done = done?;
    let err = |text: &str| {
        let _ = std::io::stderr().write_all(crate::term::text(text).as_bytes());
    };
    for w in &done.warnings {
        err(&format!("warning: {w}\n"));
    }
    for s in &done.secrets {
        err(&format!("secret {s} is in the vault\n"));
    }
    if a.json {
        out_json(&serde_json::to_string_pretty(&done).expect("JSON"))?;
    } else if let (Some(report), Submitted::Written { plan, .. }) = (&done.applied, &done.submitted) {
        out(&plan_view::report(plan, report))?;
    } else {
        out(&submitted_text(&done.submitted))?;
    }
    Ok(match &done.applied {
        Some(r) if !r.succeeded() => 1,
        _ => 0,
    })
}
