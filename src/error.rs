//! The crate's error type: one variant per subsystem, context kept as data.
//! Front ends render it once (`cli::render`) and map it to an exit code.
//! Problems in user input are `Diagnostics` (carried by `Error::Invalid`).

use crate::config::ConfigError;
use crate::diag::Diagnostics;
use crate::manifest::ReadError;
use crate::store::StoreError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifests(#[from] ReadError),
    /// The manifests have errors; nothing was done.
    #[error("the manifests have {} error(s); nothing was changed", .0.error_count())]
    Invalid(Diagnostics),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A bad argument: what was given and what would be valid.
    #[error("{0}")]
    Usage(String),
    #[error("cannot write `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A saved plan no longer matches the manifests or the servers.
    #[error("{0}")]
    StalePlan(String),
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    /// Authentication failed or a permission is missing.
    #[error("{0}")]
    Denied(String),
    /// Logins for this user or address are locked for a while after failures.
    #[error("{0}")]
    Locked(String),
    /// A proposal could not be decided or applied as asked.
    #[error("{0}")]
    Proposal(String),
    /// `--reinit` cannot tell which installation to adopt; nothing was changed.
    #[error("{0}")]
    Reinit(String),
    /// A server could not be reached or refused us.
    #[error("{0}")]
    Server(String),
}

impl Error {
    /// The store file was deleted or replaced under this process, or a store
    /// just made found the fleet another, lost store managed: a daemon stops
    /// rather than go on.
    pub fn is_store_lost(&self) -> bool {
        matches!(self, Error::Store(StoreError::Lost { .. } | StoreError::Orphaned { .. }))
    }

    /// The store is not there as the data folder had it (lost under this
    /// process, missing, emptied, or the whole folder gone while the fleet
    /// runs): a human restores it or runs `--reinit`.
    pub fn store_needs_recovery(&self) -> bool {
        matches!(
            self,
            Error::Store(
                StoreError::Lost { .. }
                    | StoreError::Missing { .. }
                    | StoreError::Empty { .. }
                    | StoreError::Orphaned { .. }
            )
        )
    }

    /// The diagnostics to show with this error, if any.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Error::Invalid(d) | Error::Config(ConfigError::Invalid { diagnostics: d, .. }) => Some(d),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
