//! `tomo import compose`: arguments to an `ImportRequest`, the result to
//! standard output (or `--out`), the report to standard error.

use std::io::Write;

use super::args::{ImportCommand, ImportComposeArgs};
use super::{out, out_json};
use crate::engine::{Engine, ImportRequest};
use crate::error::Result;

pub fn run(engine: &Engine, c: ImportCommand) -> Result<i32> {
    match c {
        ImportCommand::Compose(a) => compose(engine, &a),
    }
}

fn compose(engine: &Engine, a: &ImportComposeArgs) -> Result<i32> {
    let req = ImportRequest {
        path: a.path.clone(),
        name: a.name.clone(),
        server: a.server.clone(),
        set: a.set.clone(),
        env_files: a.env_file.clone(),
        process_env: true,
        profiles: a.profile.clone(),
        secrets_vault: a.secrets.is_some(),
        lossy: a.lossy,
        out: a.out.clone(),
    };
    let r = engine.import_compose(&req)?;
    let err = |text: &str| {
        let _ = std::io::stderr().write_all(crate::term::text(text).as_bytes());
    };
    if a.json {
        let doc = serde_json::json!({
            "manifest": r.manifest,
            "report": r.report,
            "counts": r.counts,
            "written": !r.refused,
            "secrets_stored": r.stored,
        });
        out_json(&serde_json::to_string_pretty(&doc).expect("JSON"))?;
    } else {
        err(&r.report_text());
    }
    if r.refused {
        err(&format!(
            "import: {} key(s) would be dropped; nothing written (rerun with --lossy to write the manifest anyway)\n",
            r.counts.dropped
        ));
        return Ok(1);
    }
    match &a.out {
        Some(path) => err(&format!("wrote {} (app {})\n", path.display(), r.name)),
        None if !a.json => out(&r.yaml)?,
        None => {}
    }
    for s in &r.stored {
        err(&format!("stored secret {s}\n"));
    }
    Ok(0)
}
