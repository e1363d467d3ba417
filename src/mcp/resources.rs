//! Read-only MCP resources: each manifest (`tomo://manifests/<path>`), the
//! fleet's status (`tomo://status`, JSON), and two templates:
//! `tomo://apps/{name}` (the App manifest and its containers as they are)
//! and `tomo://proposals/{id}` (a proposal, its diff and plan). A URI that
//! names nothing is a `resource not found` error naming what exists.

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use crate::engine::{DocKind, Engine, PlanOptions};
use crate::error::Error;

pub const MANIFESTS: &str = "tomo://manifests/";
pub const STATUS: &str = "tomo://status";
pub const APPS: &str = "tomo://apps/";
pub const PROPOSALS: &str = "tomo://proposals/";
/// The templates' URIs, as listed (and as completion references name them).
pub const APP_TEMPLATE: &str = "tomo://apps/{name}";
pub const PROPOSAL_TEMPLATE: &str = "tomo://proposals/{id}";

/// What a resource URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Manifest(String),
    Status,
    App(String),
    Proposal(String),
}

impl Target {
    pub fn parse(uri: &str) -> Option<Target> {
        let nonempty = |s: &str| (!s.is_empty() && !s.contains('/')).then(|| s.to_string());
        if uri == STATUS {
            Some(Target::Status)
        } else if let Some(rel) = uri.strip_prefix(MANIFESTS) {
            (!rel.is_empty()).then(|| Target::Manifest(rel.to_string()))
        } else if let Some(name) = uri.strip_prefix(APPS) {
            nonempty(name).map(Target::App)
        } else {
            uri.strip_prefix(PROPOSALS).and_then(nonempty).map(Target::Proposal)
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

/// An engine error reading `uri`: a name that names nothing is "not found".
fn engine_error(uri: &str, e: Error) -> ErrorData {
    match e {
        Error::NotFound(_) | Error::Usage(_) => not_found(uri, &e.to_string()),
        e => internal(format!("reading `{uri}`: {e}")),
    }
}

pub fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!(
            "no resource `{uri}`: {why}; resources are {STATUS}, {MANIFESTS}<path>, {APP_TEMPLATE} and {PROPOSAL_TEMPLATE}"
        ),
        Some(json!({"uri": uri})),
    )
}

pub fn list(engine: &Engine) -> Result<ListResourcesResult, ErrorData> {
    let sources = engine.sources().map_err(internal)?;
    let mut items: Vec<Resource> = vec![
        Resource::new(STATUS, "status")
            .with_description(
                "the fleet's status: each declared container's state and drift, unreachable servers (JSON)",
            )
            .with_mime_type("application/json"),
    ];
    items.extend(sources.relative.iter().zip(&sources.files).map(|(rel, f)| {
        Resource::new(format!("{MANIFESTS}{rel}"), rel.clone())
            .with_description("a tomo manifest (YAML)")
            .with_mime_type("application/yaml")
            .with_size(f.text.len() as u64)
    }));
    Ok(ListResourcesResult::with_all_items(items))
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(APP_TEMPLATE, "app")
            .with_description(
                "an app: its App manifest (JSON, secrets as references) and its containers as they are now",
            )
            .with_mime_type("application/json"),
        ResourceTemplate::new(PROPOSAL_TEMPLATE, "proposal")
            .with_description("a proposal: status, who proposed and decided it, the diff of its edits and its plan")
            .with_mime_type("application/json"),
    ]
}

fn json_contents(uri: &str, value: &Value) -> ReadResourceResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type("application/json")])
}

pub async fn read(engine: &Engine, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    match Target::parse(uri) {
        Some(Target::Manifest(rel)) => read_manifest(engine, uri, &rel),
        Some(Target::Status) => Ok(json_contents(uri, &status(engine).await.map_err(|e| engine_error(uri, e))?)),
        Some(Target::App(name)) => Ok(json_contents(uri, &app(engine, &name).await.map_err(|e| engine_error(uri, e))?)),
        Some(Target::Proposal(id)) => Ok(json_contents(uri, &proposal(engine, &id).map_err(|e| engine_error(uri, e))?)),
        None => Err(not_found(uri, "not a tomo resource URI")),
    }
}

fn read_manifest(engine: &Engine, uri: &str, rel: &str) -> Result<ReadResourceResult, ErrorData> {
    let sources = engine.sources().map_err(internal)?;
    match sources.relative.iter().position(|r| r == rel) {
        Some(i) => Ok(ReadResourceResult::new(vec![
            ResourceContents::text(sources.files[i].text.clone(), uri).with_mime_type("application/yaml"),
        ])),
        None => Err(not_found(
            uri,
            &format!(
                "there is no manifest `{rel}`, e.g. {MANIFESTS}{}",
                sources.relative.first().map_or("apps/web.yaml", |s| s)
            ),
        )),
    }
}

async fn status(engine: &Engine) -> crate::error::Result<Value> {
    let opts = PlanOptions::default();
    let (desired, observed, plan) = engine.status(&opts).await?;
    let containers: Vec<Value> = crate::engine::status_rows(&plan, &observed, &desired, &opts.scope)
        .into_iter()
        .map(|r| {
            json!({"server": r.server, "app": r.app, "service": r.service, "container": r.container,
                   "state": r.state, "health": r.health, "drift": r.drift})
        })
        .collect();
    let unreachable: Vec<String> = plan.unreachable.iter().map(|(s, why)| format!("{s}: {why}")).collect();
    Ok(json!({
        "in_sync": !plan.has_changes() && plan.unreachable.is_empty(),
        "containers": containers,
        "unreachable": unreachable,
    }))
}

async fn app(engine: &Engine, name: &str) -> crate::error::Result<Value> {
    let desired = engine.desired()?;
    engine.app(&desired, name)?;
    let (file, line, manifest) = engine.document(DocKind::App, name)?.unwrap_or_default();
    let mut containers = Vec::new();
    let mut errors = Vec::new();
    for per in engine.app_containers(name).await? {
        match (per.result, per.error) {
            (Some(found), _) => containers.extend(found),
            (None, e) => errors.push(format!("{}: {}", per.server, e.unwrap_or_default())),
        }
    }
    Ok(
        json!({"name": name, "file": file, "line": line, "manifest": manifest, "containers": containers, "errors": errors}),
    )
}

fn proposal(engine: &Engine, id: &str) -> crate::error::Result<Value> {
    let (row, _, plan) = engine.proposal(id)?;
    Ok(json!({
        "proposal": row,
        "plan": {"fingerprint": plan.fingerprint(), "text": crate::engine::plan_text(&plan)},
    }))
}

/// Whether `uri` names something that exists now (for `resources/subscribe`);
/// `Err` says why not.
pub fn exists(engine: &Engine, uri: &str) -> Result<(), ErrorData> {
    match Target::parse(uri) {
        None => Err(not_found(uri, "not a tomo resource URI")),
        Some(Target::Status) => Ok(()),
        Some(Target::Manifest(rel)) => {
            let sources = engine.sources().map_err(internal)?;
            if sources.relative.contains(&rel) {
                Ok(())
            } else {
                Err(not_found(uri, &format!("there is no manifest `{rel}`")))
            }
        }
        Some(Target::App(name)) => {
            let desired = engine.desired().map_err(|e| engine_error(uri, e))?;
            engine.app(&desired, &name).map(|_| ()).map_err(|e| engine_error(uri, e))
        }
        Some(Target::Proposal(id)) => match engine.has_proposal(&id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_found(uri, &format!("there is no proposal `{id}`"))),
            Err(e) => Err(engine_error(uri, e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_targets() {
        assert_eq!(Target::parse("tomo://status"), Some(Target::Status));
        assert_eq!(Target::parse("tomo://apps/web"), Some(Target::App("web".into())));
        assert_eq!(Target::parse("tomo://proposals/p-1"), Some(Target::Proposal("p-1".into())));
        assert_eq!(Target::parse("tomo://manifests/apps/web.yaml"), Some(Target::Manifest("apps/web.yaml".into())));
        for bad in ["tomo://apps/", "tomo://apps/a/b", "tomo://manifests/", "tomo://statu", "http://x", ""] {
            assert_eq!(Target::parse(bad), None, "{bad}");
        }
    }
}
