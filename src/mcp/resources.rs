//! The manifests as read-only MCP resources: `tomo://manifests/<path>`.

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};

use crate::engine::Engine;

const PREFIX: &str = "tomo://manifests/";

pub fn list(engine: &Engine) -> Result<ListResourcesResult, ErrorData> {
    let sources = engine.sources().map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let items = sources
        .relative
        .iter()
        .zip(&sources.files)
        .map(|(rel, f)| {
            Resource::new(format!("{PREFIX}{rel}"), rel.clone())
                .with_description("a tomo manifest (YAML)")
                .with_mime_type("application/yaml")
                .with_size(f.text.len() as u64)
        })
        .collect();
    Ok(ListResourcesResult::with_all_items(items))
}

pub fn read(engine: &Engine, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let sources = engine.sources().map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let rel = uri.strip_prefix(PREFIX);
    let found = rel.and_then(|rel| sources.relative.iter().position(|r| r == rel));
    match found {
        Some(i) => Ok(ReadResourceResult::new(vec![
            ResourceContents::text(sources.files[i].text.clone(), uri).with_mime_type("application/yaml"),
        ])),
        None => Err(ErrorData::resource_not_found(
            format!(
                "no manifest `{uri}`; resources are {PREFIX}<path>, e.g. {PREFIX}{}",
                sources.relative.first().map_or("apps/web.yaml", |s| s)
            ),
            None,
        )),
    }
}
