//! `MarketplaceEdit`: the typed request that adds or removes a store's
//! `kind: Marketplace` manifest (a new one goes to
//! `marketplaces/<name>.yaml`), submitted like every change: written, or a
//! proposal for an agent (`changes::submit`; a store with `auth` or a
//! `path:` is an admin's to approve, `guard`).

use serde_json::{Map, Value};

use super::changes::DocKind;
use super::{Engine, Submitted};
use crate::auth::Identity;
use crate::error::{Error, Result, Usage};
use crate::model::MarketplaceFormat;

/// The fields of a new store; `url` or `path`, exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketplaceFields {
    /// Git URL (no credentials: name a vault secret in `auth_secret`).
    pub url: Option<String>,
    /// A local folder, read in place.
    pub path: Option<String>,
    /// Branch, tag or commit (default `main`).
    pub git_ref: Option<String>,
    pub format: Option<MarketplaceFormat>,
    /// How often daemons refresh it, e.g. `6h`.
    pub sync: Option<String>,
    /// The vault secret holding a token (https) or SSH key (ssh).
    pub auth_secret: Option<String>,
}

/// A change to the declared stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketplaceEdit {
    /// Declares a new store.
    Add { name: String, fields: MarketplaceFields },
    /// Removes a store's manifest (its catalog is forgotten by the next sync).
    Remove { name: String },
}

fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Usage::NotApplicable { what: format!("argument `{field}`"), why: msg.to_string() }.into()
}

impl MarketplaceEdit {
    fn name(&self) -> &str {
        match self {
            MarketplaceEdit::Add { name, .. } | MarketplaceEdit::Remove { name } => name,
        }
    }

    fn title(&self) -> String {
        match self {
            MarketplaceEdit::Add { name, .. } => format!("add store {name}"),
            MarketplaceEdit::Remove { name } => format!("remove store {name}"),
        }
    }

    fn document(self) -> Result<Option<Value>> {
        let (name, f) = match self {
            MarketplaceEdit::Remove { .. } => return Ok(None),
            MarketplaceEdit::Add { name, fields } => (name, fields),
        };
        let mut doc = Map::new();
        doc.insert("kind".into(), "Marketplace".into());
        doc.insert("name".into(), Value::String(name));
        match (f.url, f.path) {
            (Some(url), None) => doc.insert("url".into(), Value::String(url)),
            (None, Some(path)) => doc.insert("path".into(), Value::String(path)),
            _ => return Err(bad("url", "give either `url` (a git repository) or `path` (a local folder)")),
        };
        if let Some(r) = f.git_ref {
            doc.insert("ref".into(), Value::String(r));
        }
        if let Some(fmt) = f.format {
            doc.insert("format".into(), serde_json::to_value(fmt).unwrap_or_default());
        }
        if let Some(s) = f.sync {
            doc.insert("sync".into(), Value::String(s));
        }
        if let Some(secret) = f.auth_secret {
            doc.insert("auth".into(), serde_json::json!({ "secret": secret }));
        }
        Ok(Some(Value::Object(doc)))
    }
}

impl Engine {
    /// Adds or removes a store's manifest; returns the diff and plan, or a proposal.
    pub async fn edit_marketplace(&self, req: MarketplaceEdit, who: &Identity) -> Result<Submitted> {
        let name = req.name().to_string();
        let declared = self.document(DocKind::Marketplace, &name)?.is_some();
        match &req {
            MarketplaceEdit::Add { .. } if declared => {
                return Err(bad("name", format!("store `{name}` is declared already")));
            }
            MarketplaceEdit::Remove { .. } if !declared => {
                let known: Vec<String> = self.desired()?.marketplaces.keys().map(|n| n.to_string()).collect();
                return Err(bad("name", format!("there is no store `{name}`; stores: {}", known.join(", "))));
            }
            _ => {}
        }
        let title = req.title();
        let change = self.edit_document(DocKind::Marketplace, &name, title, move |_| req.document())?;
        self.submit(change, who).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_store_is_one_document_with_the_fields_given() {
        let req = MarketplaceEdit::Add {
            name: "casa".into(),
            fields: MarketplaceFields {
                url: Some("https://git.example/store.git".into()),
                format: Some(MarketplaceFormat::Auto),
                auth_secret: Some("store-token".into()),
                ..MarketplaceFields::default()
            },
        };
        assert_eq!(req.title(), "add store casa");
        let doc = req.document().unwrap().unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"kind": "Marketplace", "name": "casa", "url": "https://git.example/store.git",
                "format": "auto", "auth": {"secret": "store-token"}})
        );
        let both = MarketplaceEdit::Add {
            name: "x".into(),
            fields: MarketplaceFields { url: Some("a".into()), path: Some("b".into()), ..MarketplaceFields::default() },
        };
        assert!(both.document().unwrap_err().to_string().contains("either `url`"));
        assert_eq!(MarketplaceEdit::Remove { name: "x".into() }.document().unwrap(), None);
    }
}
