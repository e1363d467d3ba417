//! One function per subcommand: call the engine, print the result, return the
//! exit code.

use super::{out, out_json};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use clap::CommandFactory;
use serde_json::json;

use super::args::{
    Cli, CompletionsArgs, SchemaArgs, SecretCommand, SecretEncryptArgs, SecretSetArgs, Shell, ValidateArgs,
};
use super::render;
use crate::engine::Engine;
use crate::error::{Error, Known, NotFound, Noun, Result, Usage};
use crate::model::secret::SecretString;
use crate::model::{Name, values::NAME_RULE};

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn err(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub fn validate(engine: &Engine, a: &ValidateArgs) -> Result<i32> {
    let sources = engine.sources()?;
    let loaded = engine.validate()?;
    let ds = &loaded.diagnostics;
    let files = sources.files.len();
    if a.json {
        let summary = loaded.desired.as_ref().map(|d| {
            json!({
                "servers": d.servers.values().filter(|s| !s.implicit).count(),
                "apps": d.apps.len(),
                "services": d.apps.values().map(|a| a.services.len()).sum::<usize>(),
                "marketplaces": d.marketplaces.len(),
            })
        });
        let doc = json!({
            "valid": !ds.has_errors(),
            "files": files,
            "errors": ds.error_count(),
            "warnings": ds.warning_count(),
            "summary": summary,
            "diagnostics": ds,
        });
        out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
        return Ok(if ds.has_errors() { 1 } else { 0 });
    }
    err(&render::diagnostics(ds, render::stderr_styled()));
    let folder = engine.config().manifests.display().to_string();
    match &loaded.desired {
        Some(d) => {
            let servers = d.servers.values().filter(|s| !s.implicit).count();
            let services: usize = d.apps.values().map(|a| a.services.len()).sum();
            let warn = if ds.is_empty() { String::new() } else { format!(", {}", render::counts(ds)) };
            let summary = [
                plural(servers, "server"),
                format!("{} with {}", plural(d.apps.len(), "app"), plural(services, "service")),
                plural(d.marketplaces.len(), "marketplace"),
            ];
            out(&format!("valid: {folder} ({}: {}{warn})\n", plural(files, "file"), summary.join(", ")))?;
            Ok(0)
        }
        None => {
            err(&format!("invalid: {} in {folder}\n", render::counts(ds)));
            Ok(1)
        }
    }
}

pub fn schema(a: &SchemaArgs) -> Result<i32> {
    let files = Engine::schema_files();
    if a.check {
        let mut stale = Vec::new();
        for (name, text) in &files {
            let path = a.out.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        if stale.is_empty() {
            out(&format!("up to date: {} schemas in {}\n", files.len(), a.out.display()))?;
            return Ok(0);
        }
        err(&format!("stale: {} (regenerate with `tomo schema --out {}`)\n", stale.join(", "), a.out.display()));
        return Ok(1);
    }
    std::fs::create_dir_all(&a.out).map_err(|source| Error::write(a.out.display(), source))?;
    for (name, text) in &files {
        let path = a.out.join(name);
        std::fs::write(&path, text).map_err(|source| Error::write(path.display(), source))?;
    }
    out(&format!("wrote {} schemas to {}\n", files.len(), a.out.display()))?;
    Ok(0)
}

pub fn completions(a: &CompletionsArgs) -> Result<i32> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tomo", &mut buf);
    out(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}

pub fn secret(engine: &Engine, c: SecretCommand) -> Result<i32> {
    match c {
        SecretCommand::Set(a) => secret_set(engine, &a),
        SecretCommand::List(a) => {
            let rows = engine.vault()?.list()?;
            if a.json {
                out_json(&serde_json::to_string_pretty(&rows).expect("JSON"))?;
            } else if rows.is_empty() {
                out("no secrets\n")?;
            } else {
                let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
                let mut text = format!("{:width$}  UPDATED\n", "NAME");
                for r in &rows {
                    text.push_str(&format!("{:width$}  {}\n", r.name, r.updated_at));
                }
                out(&text)?;
            }
            Ok(0)
        }
        SecretCommand::Rm(a) => {
            let name = secret_name(&a.name)?;
            let vault = engine.vault()?;
            if !vault.remove(name.as_str())? {
                return Err(NotFound::new(
                    Noun::Secret,
                    name.as_str(),
                    Known::Hint("it is not in the vault (`tomo secret list` shows what is)"),
                )
                .into());
            }
            audit(engine, "rm", name.as_str());
            out(&format!("removed secret {name}\n"))?;
            Ok(0)
        }
        SecretCommand::Encrypt(a) => secret_encrypt(engine, &a),
    }
}

fn secret_name(s: &str) -> Result<Name> {
    Name::parse(s).map_err(|e| Usage::invalid("secret name", s, format!("{e}; names are {NAME_RULE}")).into())
}

fn secret_set(engine: &Engine, a: &SecretSetArgs) -> Result<i32> {
    let name = secret_name(&a.name)?;
    // Check the key before asking for the value.
    let vault = engine.vault()?;
    let value = read_value(a.from_file.as_deref(), &format!("value for secret {name}: "))?;
    vault.set(&name, &value)?;
    audit(engine, "set", name.as_str());
    out(&format!("stored secret {name}\n"))?;
    Ok(0)
}

fn secret_encrypt(engine: &Engine, a: &SecretEncryptArgs) -> Result<i32> {
    let vault = engine.vault()?;
    let value = read_value(a.from_file.as_deref(), "value to encrypt: ")?;
    out(&format!("{}\n", vault.key().encrypt_inline(&value)))?;
    Ok(0)
}

/// Reads a secret value from a file, the terminal (without echo) or piped
/// standard input. One trailing newline is dropped; an empty value is refused.
pub(super) fn read_value(file: Option<&Path>, prompt: &str) -> Result<SecretString> {
    let mut text = match file {
        Some(p) => std::fs::read_to_string(p).map_err(|source| Error::read(p.display(), source))?,
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(prompt).map_err(|source| Error::read("the terminal", source))?
        }
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|source| Error::read("standard input", source))?;
            s
        }
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Usage::Invalid {
            arg: "secret value".into(),
            value: None,
            problem: "it is empty; pipe it on standard input or pass --from-file FILE".into(),
        }
        .into());
    }
    Ok(SecretString::new(text))
}

fn audit(engine: &Engine, action: &str, name: &str) {
    let who = super::access::local_admin();
    engine.audit(&who, crate::engine::AuditEvent::new("secret", action).target(name));
}
