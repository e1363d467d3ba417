//! The names a client may want completed (apps, services, servers,
//! proposals, stores and their apps), from the manifests and the store only:
//! never from a server. A manifest folder that does not load gives no names
//! rather than an error (completion is a convenience).

use super::Engine;
use crate::model::{Desired, Name};

/// What kind of name to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    App,
    /// Services of the app given (of every app without one).
    Service,
    Server,
    Proposal,
    /// Marketplaces (`kind: Marketplace`).
    Store,
    /// Apps a store offers (of the store given).
    StoreApp,
}

impl Engine {
    /// The names of `kind`, sorted and without duplicates. `app` narrows
    /// services to one app's; `store` narrows store apps to one store's.
    pub fn names(&self, kind: NameKind, app: Option<&str>, store: Option<&str>) -> Vec<String> {
        let mut out = match kind {
            NameKind::Proposal => self.proposal_ids(),
            NameKind::StoreApp => self.store_app_names(store),
            _ => match self.validate().ok().and_then(|l| l.desired) {
                Some(d) => declared_names(&d, kind, app),
                None => Vec::new(),
            },
        };
        out.sort();
        out.dedup();
        out
    }

    /// Every proposal's id (none without a store; the store is not made).
    fn proposal_ids(&self) -> Vec<String> {
        if !self.config().data_dir.join("tomo.db").exists() {
            return Vec::new();
        }
        self.proposals(None).map(|ps| ps.into_iter().map(|p| p.id).collect()).unwrap_or_default()
    }

    /// The apps the stores offer, from the synced catalog (`STORE/APP`, or
    /// the app ids of `store` when given); none before a sync.
    fn store_app_names(&self, store: Option<&str>) -> Vec<String> {
        if !self.config().data_dir.join("tomo.db").exists() {
            return Vec::new();
        }
        self.store().and_then(|s| Ok(s.market_app_ids(store)?)).unwrap_or_default()
    }
}

fn declared_names(d: &Desired, kind: NameKind, app: Option<&str>) -> Vec<String> {
    match kind {
        NameKind::App => d.apps.keys().map(Name::to_string).collect(),
        NameKind::Server => d.servers.keys().map(Name::to_string).collect(),
        NameKind::Store => d.marketplaces.keys().map(Name::to_string).collect(),
        NameKind::Service => d
            .apps
            .values()
            .filter(|a| app.is_none_or(|n| a.name.as_str() == n))
            .flat_map(|a| a.services.keys().map(Name::to_string))
            .collect(),
        NameKind::Proposal | NameKind::StoreApp => Vec::new(),
    }
}
