//! The engine: the one API the front ends (CLI, MCP, watch) call. It owns the
//! configuration and opens the store and vault on demand; front ends build a
//! request, call one method and render the result.

use std::sync::OnceLock;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::{self, LoadOptions, Loaded, SecretCheck, Sources};
use crate::model::Desired;
use crate::store::Store;
use crate::vault::{self, MasterKey, Vault};

pub struct Engine {
    config: Config,
    store: OnceLock<Store>,
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine { config, store: OnceLock::new() }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads the manifest folder.
    pub fn sources(&self) -> Result<Sources> {
        Ok(manifest::read_dir(&self.config.manifests)?)
    }

    /// Loads and checks every manifest (no network). Secret references are
    /// checked against the vault when it can be opened, else reported as a
    /// warning. Never creates the store.
    pub fn validate(&self) -> Result<Loaded> {
        let sources = self.sources()?;
        let secrets = self.secret_check();
        Ok(manifest::load(&sources, &LoadOptions { secrets: &secrets, inline_check: vault::check_inline_format }))
    }

    /// The desired state, or `Error::Invalid` with every problem.
    pub fn desired(&self) -> Result<Desired> {
        let loaded = self.validate()?;
        loaded.desired.ok_or(Error::Invalid(loaded.diagnostics))
    }

    /// What is known about the vault's secret names, for validation.
    pub fn secret_check(&self) -> SecretCheck {
        let db = self.config.data_dir.join("tomo.db");
        if !db.exists() {
            return SecretCheck::Unavailable(format!("there is no store yet at `{}`", db.display()));
        }
        match self.vault().and_then(|v| Ok(v.list()?)) {
            Ok(rows) => SecretCheck::Known(rows.into_iter().map(|r| r.name).collect()),
            Err(e) => SecretCheck::Unavailable(e.to_string()),
        }
    }

    /// The store, opened (and migrated) on first use.
    pub fn store(&self) -> Result<&Store> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = Store::open_in(&self.config.data_dir)?;
        Ok(self.store.get_or_init(|| s))
    }

    /// The master key from `TOMO_MASTER_PASSWORD` and `TOMO_SALT`.
    pub fn master_key(&self) -> Result<MasterKey> {
        Ok(MasterKey::derive(self.config.master_password.as_ref(), self.config.salt.as_ref())?)
    }

    /// The vault, after its key check passed.
    pub fn vault(&self) -> Result<Vault<'_>> {
        let key = self.master_key()?;
        Ok(Vault::open(self.store()?, key)?)
    }
}
