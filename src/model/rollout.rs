//! What happens after a service is deployed: how long it is verified and what
//! a failed verification does. `Settings.rollout` sets the fleet's default,
//! an app's `rollout:` overrides it for the app and a service's `rollout:`
//! for the service (service > app > Settings). None of it shapes a
//! container: it stays out of every container spec and its hash.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::{Desired, Duration, Name, RolloutStrategy, Settings};

/// What marks a container held after a failed verification:
/// `<name>-tomo-held-<short id>`.
const HELD: &str = "-tomo-held-";

/// The name a container failing verification is held under, beside `base`.
pub fn held_name(base: &str, id: &str) -> String {
    let short: String = id.chars().take(12).collect();
    format!("{base}{HELD}{short}")
}

/// The container name a held container belongs to.
pub fn held_base(name: &str) -> Option<&str> {
    name.rsplit_once(HELD).map(|(base, _)| base)
}

/// What a failed verification does to a created or recreated service.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// The failed container is removed and the previous one is put back and
    /// started (default).
    #[default]
    Rollback,
    /// The failed container is stopped and kept beside the previous one,
    /// which is started again, for inspection; the next apply removes the
    /// held container and tries again only once the manifests change.
    Hold,
    /// As `rollback`, and on an app rolled out server by server, the servers
    /// already updated go back too.
    RollbackAll,
}

impl OnFailure {
    pub fn is_default(&self) -> bool {
        *self == OnFailure::Rollback
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Hold => "hold",
            OnFailure::RollbackAll => "rollback-all",
        }
    }
}

/// A service's `rollout:`: each field set overrides the app's and Settings'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServiceRollout {
    /// `0s` turns verification off for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

impl ServiceRollout {
    pub fn is_default(&self) -> bool {
        *self == ServiceRollout::default()
    }
}

/// An app's `rollout:`: each field set overrides Settings' for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AppRollout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downtime: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
}

impl AppRollout {
    pub fn is_default(&self) -> bool {
        *self == AppRollout::default()
    }
}

/// The verification one service gets, all levels combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPolicy {
    /// How long the new container is watched (zero: not at all).
    pub verify: Duration,
    pub on_failure: OnFailure,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy { verify: Duration::from_millis(0), on_failure: OnFailure::Rollback }
    }
}

impl VerifyPolicy {
    /// Service > app > Settings, field by field.
    pub fn of(settings: &Settings, app: &AppRollout, service: &ServiceRollout) -> VerifyPolicy {
        VerifyPolicy {
            verify: service.verify.or(app.verify).or(settings.verify).unwrap_or(Duration::from_millis(0)),
            on_failure: service.on_failure.or(app.on_failure).unwrap_or(settings.on_failure),
        }
    }

    pub fn is_off(&self) -> bool {
        self.verify.as_millis() == 0
    }

    pub fn duration(&self) -> std::time::Duration {
        self.verify.to_std()
    }
}

/// Every service's verification in one apply: what front ends hand the
/// apply, which looks up each action's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyPolicies {
    /// Settings' (for actions of no declared service).
    pub default: VerifyPolicy,
    /// By `(app, service)`.
    pub services: BTreeMap<(Name, Name), VerifyPolicy>,
}

impl VerifyPolicies {
    pub fn of(desired: &Desired) -> VerifyPolicies {
        let none = (AppRollout::default(), ServiceRollout::default());
        let default = VerifyPolicy::of(&desired.settings, &none.0, &none.1);
        let services = desired
            .apps
            .values()
            .flat_map(|a| {
                a.services.values().map(move |s| {
                    ((a.name.clone(), s.name.clone()), VerifyPolicy::of(&desired.settings, &a.rollout, &s.rollout))
                })
            })
            .collect();
        VerifyPolicies { default, services }
    }

    /// The same policy for every service.
    pub fn all(policy: VerifyPolicy) -> VerifyPolicies {
        VerifyPolicies { default: policy, services: BTreeMap::new() }
    }

    pub fn get(&self, app: Option<&Name>, service: Option<&Name>) -> VerifyPolicy {
        match (app, service) {
            (Some(a), Some(s)) => self.services.get(&(a.clone(), s.clone())).copied().unwrap_or(self.default),
            _ => self.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_overrides_the_app_which_overrides_settings() {
        let settings = Settings { verify: Some(Duration::from_secs(30)), ..Settings::default() };
        let none = (AppRollout::default(), ServiceRollout::default());
        let p = VerifyPolicy::of(&settings, &none.0, &none.1);
        assert_eq!(p, VerifyPolicy { verify: Duration::from_secs(30), on_failure: OnFailure::Rollback });
        let app = AppRollout { verify: Some(Duration::from_secs(5)), on_failure: Some(OnFailure::Hold), ..none.0 };
        assert_eq!(
            VerifyPolicy::of(&settings, &app, &none.1),
            VerifyPolicy { verify: Duration::from_secs(5), on_failure: OnFailure::Hold }
        );
        let svc = ServiceRollout { verify: Some(Duration::from_millis(0)), on_failure: None };
        let p = VerifyPolicy::of(&settings, &app, &svc);
        assert!(p.is_off());
        assert_eq!(p.on_failure, OnFailure::Hold);
    }

    #[test]
    fn on_failure_spells_as_written() {
        for f in [OnFailure::Rollback, OnFailure::Hold, OnFailure::RollbackAll] {
            assert_eq!(serde_json::to_value(f).unwrap(), serde_json::json!(f.as_str()));
        }
    }
}
