//! `metrics_system`: figures about tomo itself (version, store size, apply
//! runs by outcome).

use std::collections::BTreeMap;

use super::Engine;
use crate::error::Result;

/// tomo's own figures.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct SystemFigures {
    pub version: String,
    /// Bytes of the store on disk (database and write-ahead log).
    pub store_bytes: u64,
    /// Apply runs by status, every run counted.
    pub runs: BTreeMap<String, u64>,
}

impl Engine {
    pub fn system_figures(&self) -> Result<SystemFigures> {
        let store = self.store()?;
        Ok(SystemFigures {
            version: env!("CARGO_PKG_VERSION").to_string(),
            store_bytes: store.file_bytes(),
            runs: store.run_counts()?.into_iter().collect(),
        })
    }
}
