//! `rollout:` overrides of an app and a service: resolved service > app >
//! Settings, reported at their lines, and never part of a container spec.

use super::tests::desired;
use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
use crate::model::secret::NoSecrets;
use crate::model::spec::ContainerSpec;
use crate::model::{Duration, Name, OnFailure, VerifyPolicy};

const APP: &str = "kind: App\nname: shop\nserver: a\nservices:\n  web:\n    image: img:1\n  api:\n    image: img:1\n";

const OVERRIDES: &str = "kind: Settings\nrollout: {verify: 0s}\n---\nkind: App\nname: shop\nserver: a\nrollout: {on_failure: hold, max_downtime: 5s, strategy: one-at-a-time}\nservices:\n  web:\n    image: img:1\n    rollout: {verify: 10s, on_failure: rollback}\n  api:\n    image: img:1\n";

fn hash(yaml: &str, service: &str) -> String {
    let d = desired(yaml);
    let app = &d.apps["shop"];
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services[service]);
    spec.hash(&NoSecrets(String::new())).unwrap()
}

#[test]
fn rollout_overrides_leave_the_spec_hash_alone() {
    assert_eq!(hash(OVERRIDES, "web"), hash(APP, "web"));
    assert_eq!(hash(OVERRIDES, "api"), hash(APP, "api"));
    // The hash a service of this shape had before `rollout:` existed.
    assert_eq!(hash(APP, "web"), "1a8bf3c811fec5bfcc50925c56811b61");
}

#[test]
fn the_service_overrides_the_app_which_overrides_settings() {
    let d = desired(OVERRIDES);
    let app = &d.apps["shop"];
    let policy = |s: &str| VerifyPolicy::of(&d.settings, &app.rollout, &app.services[s].rollout);
    assert_eq!(policy("web"), VerifyPolicy { verify: Duration::from_secs(10), on_failure: OnFailure::Rollback });
    assert_eq!(policy("api"), VerifyPolicy { verify: Duration::from_millis(0), on_failure: OnFailure::Hold });
    assert_eq!(app.rollout.max_downtime, Some(Duration::from_secs(5)));
    assert_eq!(d.settings.on_failure, OnFailure::Rollback);
    let d = desired(
        "kind: Settings\nrollout: {verify: 5s, on_failure: rollback-all}\n---\nkind: App\nname: x\nserver: a\nimage: img:1\n",
    );
    let x = &d.apps["x"];
    let p = VerifyPolicy::of(&d.settings, &x.rollout, &x.services["x"].rollout);
    assert_eq!(p, VerifyPolicy { verify: Duration::from_secs(5), on_failure: OnFailure::RollbackAll });
}

fn problems(yaml: &str) -> Vec<String> {
    let sources = Sources::from_texts([("m.yaml", yaml)]);
    let l = manifest::load(
        &sources,
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    l.diagnostics
        .iter()
        .map(|d| format!("{}:{} {} {}", d.span.map_or(0, |s| s.line), d.field, d.code, d.message))
        .collect()
}

#[test]
fn bad_rollout_values_are_reported_at_their_fields() {
    let p = problems(
        "kind: App\nname: x\nserver: local\nrollout: {on_failure: retry}\nservices:\n  web:\n    image: img:1\n    rollout:\n      verify: ten\n",
    );
    assert!(p.iter().any(|l| l.starts_with("4:") && l.contains("on_failure")), "{p:?}");
    let p = problems(
        "kind: App\nname: x\nserver: local\nservices:\n  web:\n    image: img:1\n    rollout:\n      verify: ten\n",
    );
    assert!(p.iter().any(|l| l.starts_with("8:") && l.contains("invalid-duration")), "{p:?}");
    // A service's rollout has no max_downtime (an app's has).
    let p = problems(
        "kind: App\nname: x\nserver: local\nservices:\n  web:\n    image: img:1\n    rollout: {max_downtime: 5s}\n",
    );
    assert!(p.iter().any(|l| l.contains("unknown-field")), "{p:?}");
}

#[test]
fn a_verify_longer_than_health_timeout_warns_at_its_line() {
    let p = problems(
        "kind: App\nname: x\nserver: local\nservices:\n  web:\n    image: img:1\n    rollout:\n      verify: 2m\n---\nkind: Settings\nhealth_timeout: 60s\n",
    );
    assert!(p.iter().any(|l| l.starts_with("8:") && l.contains("verify-over-health-timeout")), "{p:?}");
    let p = problems("kind: App\nname: x\nserver: local\nrollout: {verify: 30s}\nimage: img:1\n");
    assert!(!p.iter().any(|l| l.contains("verify-over-health-timeout")), "{p:?}");
}
