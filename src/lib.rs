//! tomo keeps self-hosted servers in the state their owner wrote down.
//!
//! Map (see ARCHITECTURE.md): `manifest` turns YAML files into the validated
//! `model::Desired`; `observe`, `plan` and `apply` reconcile servers with it;
//! `engine` is the one API the front ends call (`cli`, `mcp` for AI agents,
//! `watch` for the GitOps daemon); `store` (SQLite) and `vault` (encrypted
//! secrets) hold tomo's own data; `auth` says who may do what; `transport`
//! reaches servers (Docker Engine API, SSH); `config` reads `tomo.yaml` and the
//! environment; `diag` carries problems in user input to the front end that
//! renders them.

pub mod apply;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod compose;
pub mod config;
pub mod diag;
pub mod engine;
pub mod error;
pub mod faults;
pub mod manifest;
pub mod market;
pub mod mcp;
pub mod model;
pub mod observe;
pub mod plan;
pub mod redact;
pub mod shutdown;
pub mod store;
pub mod term;
pub mod transport;
pub mod vault;
pub mod watch;

pub use engine::Engine;
pub use error::{Error, Result};
