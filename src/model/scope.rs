//! Which part of the fleet an operation covers: the servers and apps a plan
//! (and the observation it is built from) is limited to.

use serde::{Deserialize, Serialize};

use super::Name;

/// Which part of the fleet a plan covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Only these servers (all when empty).
    pub servers: Vec<Name>,
    /// Only these apps (all when empty; orphans are then not considered).
    pub apps: Vec<Name>,
    /// Servers left out and not contacted: a change to where their
    /// connection goes waits for an admin's approval (`engine::guard`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Name>,
}

impl Scope {
    pub fn has_server(&self, s: &Name) -> bool {
        (self.servers.is_empty() || self.servers.contains(s)) && !self.held.contains(s)
    }
    pub fn has_app(&self, a: &Name) -> bool {
        self.apps.is_empty() || self.apps.contains(a)
    }
}
