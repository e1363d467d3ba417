//! `tomo server list`, `test` and `trust`.

use super::{out, out_json, runtime};
use std::io::{BufRead, IsTerminal};

use super::args::ServerCommand;
use crate::engine::{Engine, Scope};
use crate::error::{ConnectError, Error, Result, Usage};
use crate::model::Host;
use crate::term;

pub fn run(engine: &Engine, c: ServerCommand) -> Result<i32> {
    let rt = runtime()?;
    match c {
        ServerCommand::List(a) => {
            let facts = rt.block_on(engine.server_facts(&Scope::default()))?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&facts).expect("JSON"))?;
            } else {
                let mut text = format!(
                    "{:<16} {:<28} {:<11} {:<10} {:<28} {}\n",
                    "NAME", "HOST", "REACHABLE", "DOCKER", "OS", "UPTIME"
                );
                for f in &facts {
                    let uptime =
                        f.uptime_seconds.map_or("-".into(), |s| format!("{}d {}h", s / 86400, s % 86400 / 3600));
                    // Version and OS are the server's words: escaped and bounded.
                    let shown = |v: &Option<String>| term::field(v.as_deref().unwrap_or("-")).into_owned();
                    // The probe's OS (`debian 12 (x86_64)`) and a missing Engine, when known.
                    let os = f.system.as_ref().map(|s| s.os_summary()).or_else(|| f.os.clone());
                    let docker = match &f.system {
                        Some(s) if !s.docker_installed() => Some("none".to_string()),
                        _ => f.docker_version.clone(),
                    };
                    text.push_str(&format!(
                        "{:<16} {:<28} {:<11} {:<10} {:<28} {}\n",
                        f.name.as_str(),
                        term::field(&f.host),
                        if f.reachable { "yes" } else { "no" },
                        shown(&docker),
                        shown(&os),
                        uptime
                    ));
                    if let Some(e) = &f.error {
                        text.push_str(&format!("  {}\n", term::line(e)));
                    }
                }
                out(&text)?;
            }
            Ok(if facts.iter().all(|f| f.reachable && f.error.is_none()) { 0 } else { 1 })
        }
        ServerCommand::Test(a) => {
            let checks = rt.block_on(engine.test_server(&a.name))?;
            let mut text = String::new();
            for c in &checks {
                let mark = if c.ok { "ok  " } else { "FAIL" };
                text.push_str(&format!("{mark} {:<15} {}\n", c.name, term::line(&c.detail)));
            }
            out(&text)?;
            Ok(if checks.iter().all(|c| c.ok) { 0 } else { 1 })
        }
        ServerCommand::Trust(a) => {
            let (server, fp) = rt.block_on(engine.server_host_key(&a.name))?;
            let Host::Ssh(t) = &server.host else { unreachable!("checked by the engine") };
            out(&format!("{} ({}:{}) shows host key {fp}\n", server.name, t.address, t.port))?;
            if let Some(pinned) = &t.host_key
                && pinned.trim_end_matches('=') != fp.trim_end_matches('=')
            {
                return Err(Error::Transport {
                    server: server.name.to_string(),
                    source: ConnectError::PinDiffers { pinned: pinned.clone(), file: server.origin.file.clone() },
                });
            }
            if !a.yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Usage::NeedsFlag { flag: "--yes", review: "compare the key shown above".into() }.into());
                }
                out(
                    "Trust this key? Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server. Only `yes` is accepted: ",
                )?;
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if answer.trim() != "yes" {
                    out("Not trusted.\n")?;
                    return Ok(1);
                }
            }
            let written = engine.trust_server(&server, &fp, a.write)?;
            out(&format!("Trusted {fp} for {}.\n", server.name))?;
            if let Some(path) = written {
                out(&format!("Pinned it in {path}.\n"))?;
            }
            Ok(0)
        }
    }
}
