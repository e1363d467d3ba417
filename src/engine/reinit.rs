//! `--reinit`: a new store for a data folder whose store was lost or emptied,
//! adopting the installation id that the declared servers' containers carry
//! (their `tomo.installation` label), so that they stay this installation's.
//! Refused when the store is there, when a server cannot be seen, and when
//! the containers carry more than one id.
//!
//! The other way round: a store this process has just made (the data folder
//! had none) that finds the fleet's objects under another id refuses before
//! anything is applied and is removed again (`refuse_orphaned`), so that a
//! deleted data folder, or tomo run from another directory, never becomes a
//! second installation next to the first.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Engine;
use crate::error::{ConnectError, ReinitError, Result, Usage};
use crate::model::{Desired, Inventory, Name, Observed, ServerState, labels};
use crate::plan::PlanOptions;
use crate::store::Store;
use crate::store::folder::{self, Found};
use crate::transport::engine::EngineApi;

/// Where the new store's installation id came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// The label of these containers and networks (`server/name`).
    Containers(Vec<String>),
    /// No container of the fleet exists; the id the data folder recorded.
    Record,
    /// Neither: a new id.
    New,
}

/// What `--reinit` made.
#[derive(Debug, Clone)]
pub struct Reinitialised {
    pub path: String,
    pub installation: String,
    pub adopted: Adopted,
}

/// Stands in for the installation id while looking (nothing is created).
const LOOKING: &str = "reinit-looking";

impl Engine {
    /// Replaces a missing or empty store (what was there is set aside) with
    /// one whose installation id is the one found on the fleet's containers.
    pub async fn reinit_store(&self) -> Result<Reinitialised> {
        let dir = self.config.data_dir.clone();
        let path = dir.join(folder::STORE_FILE).display().to_string();
        if self.store.get().is_some() || (dir.is_dir() && folder::inspect(&dir)? == Found::Store) {
            return Err(Usage::NotApplicable {
                what: "`--reinit`".into(),
                why: format!(
                    "it makes a new store only where the store is missing or empty, and `{path}` is there; nothing was changed"
                ),
            }
            .into());
        }
        let desired = self.desired()?;
        let found = self.installations_on_servers(&desired).await?;
        let (installation, adopted) = match found.len() {
            0 => match folder::read_record(&dir) {
                Some(id) => (Some(id), Adopted::Record),
                None => (None, Adopted::New),
            },
            1 => {
                let (id, containers) = found.into_iter().next().expect("one");
                (Some(id), Adopted::Containers(containers))
            }
            _ => return Err(ReinitError::SeveralIds { ids: found }.into()),
        };
        let store = Store::reinit_in(&dir, installation.as_deref())?;
        let installation = store.installation_id()?;
        let _ = self.store.set(Arc::new(store));
        Ok(Reinitialised { path, installation, adopted })
    }

    /// The installation ids on the containers of declared apps on every
    /// declared server, with the containers carrying each.
    async fn installations_on_servers(&self, desired: &Desired) -> Result<BTreeMap<String, Vec<String>>> {
        let opts = PlanOptions::default();
        let via = self.connector_as(desired, &opts, Ok(LOOKING.to_string()));
        let looks = desired.servers.values().map(|server| {
            let via = &via;
            async move {
                let seen = match self.client(server, via).await {
                    Ok(c) => c.inventory().await.map_err(ConnectError::Docker),
                    Err(why) => Err(why),
                };
                // Clients made here label objects as LOOKING: never keep them.
                self.forget(&server.name);
                (server.name.clone(), seen)
            }
        });
        let seen = futures_util::future::join_all(looks).await;
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut unreachable = Vec::new();
        for (server, inventory) in seen {
            let inventory = match inventory {
                Ok(i) => i,
                Err(why) => {
                    unreachable.push((server.to_string(), why));
                    continue;
                }
            };
            for (id, objects) in fleet_installations(desired, &server, &inventory, LOOKING) {
                found.entry(id).or_default().extend(objects);
            }
        }
        if !unreachable.is_empty() {
            return Err(ReinitError::Unreached { servers: unreachable }.into());
        }
        Ok(found)
    }
}

impl Engine {
    /// Refuses (`StoreError::Orphaned`) when the store was made by this
    /// process and a declared server runs the fleet's objects under another
    /// installation id; the new store is removed again, so that the next run
    /// finds the data folder as this one did.
    pub(super) fn refuse_orphaned(&self, store: &Store, desired: &Desired, observed: &Observed) -> Result<()> {
        if !store.created_here() {
            return Ok(());
        }
        let ours = store.installation_id()?;
        for (server, state) in &observed.servers {
            let ServerState::Reached(inventory) = state else { continue };
            let Some((installation, objects)) =
                fleet_installations(desired, server, inventory, &ours).into_iter().next()
            else {
                continue;
            };
            store.discard_created()?;
            return Err(crate::store::StoreError::Orphaned {
                path: self.config.data_dir.join(folder::STORE_FILE).display().to_string(),
                server: server.to_string(),
                installation,
                objects,
            }
            .into());
        }
        Ok(())
    }
}

/// The installation ids other than `ours` on the containers and networks of
/// the apps `desired` declares on `server`, with the objects carrying each
/// (`server/name`).
fn fleet_installations(
    desired: &Desired,
    server: &Name,
    inventory: &Inventory,
    ours: &str,
) -> BTreeMap<String, Vec<String>> {
    let declared = |app: &str| desired.apps.values().any(|a| a.name.as_str() == app && a.servers.contains(server));
    let containers = inventory.containers.iter().filter(|c| c.managed()).map(|c| (&c.name, &c.labels));
    let networks = inventory.others.iter().map(|n| (&n.name, &n.labels));
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, l) in containers.chain(networks) {
        let label = |k: &str| l.get(k).map(String::as_str);
        let (Some(id), Some(app)) = (label(labels::INSTALLATION), label(labels::APP)) else { continue };
        if id != ours && label(labels::SERVER) == Some(server.as_str()) && declared(app) {
            found.entry(id.to_string()).or_default().push(format!("{server}/{name}"));
        }
    }
    found
}
