//! Downtime and data risk of plans (`plan::risk`).

use super::risk::{self, DataRisk, Estimate, History};
use super::tests::{container, converged, desired, empty, observed, plan_with};
use super::*;
use crate::model::RunState;
use crate::model::observed::VolumeObs;

/// `x` on `a` with services `one` (stop-first) and `two` (start-first),
/// deployed with another env so both are recreated.
fn recreated(extra: &str) -> Plan {
    let d = desired(&format!(
        "kind: App\nname: x\nserver: a\nservices:\n  one: {{image: img:1}}\n  two: {{image: img:1, update_order: start-first}}\n{extra}"
    ));
    let mut inv = converged(&d, "a");
    for c in inv.containers.iter_mut() {
        let app = &d.apps[&Name::parse("x").unwrap()];
        let svc = &app.services[&Name::parse(c.name.trim_start_matches("x-")).unwrap()];
        let mut old = ContainerSpec::new(&Name::parse("a").unwrap(), app, svc);
        old.env.insert("A".into(), crate::model::EnvValue::Plain("old".into()));
        *c = container(&old, RunState::Running);
    }
    plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default())
}

fn action<'a>(p: &'a Plan, object: &str) -> &'a Action {
    p.actions.iter().find(|a| a.op.object() == object).unwrap_or_else(|| panic!("no action on {object}"))
}

#[test]
fn only_a_stop_first_recreate_has_downtime_estimated_from_history_or_the_default() {
    let mut p = recreated("");
    let (one, two) = (action(&p, "x-one"), action(&p, "x-two"));
    assert_eq!((one.risk.downtime_ms, one.risk.estimate), (risk::DEFAULT_DOWNTIME_MS, Some(Estimate::Default)));
    assert_eq!((two.risk.downtime_ms, two.risk.estimate), (0, None));
    assert_eq!(risk::summary_line(&p.risk), "downtime: ~5 s for 1 service (one); data at risk: none");
    let history: History = [(("a".into(), "x".into(), "one".into()), vec![3200, 2800, 9000])].into();
    risk::assess(&mut p, &history, &risk::DowntimeLimits::default());
    let one = action(&p, "x-one");
    assert_eq!((one.risk.downtime_ms, one.risk.estimate), (3200, Some(Estimate::History { samples: 3 })));
    assert_eq!(p.risk.over_limit_ms, None);
    let text = text::plan(&p);
    assert!(text.contains("        downtime ~3 s (median of 3 recorded recreates): stop-first recreate\n"), "{text}");
    assert!(text.contains("Risk: downtime: ~3 s for 1 service (one); data at risk: none.\n"), "{text}");
    // Creates and starts are no downtime.
    let d = desired("kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1}\n");
    let fresh = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    assert!(fresh.actions.iter().all(|a| a.risk.downtime_ms == 0));
    assert_eq!(risk::summary_line(&fresh.risk), "downtime: none; data at risk: none");
}

#[test]
fn max_downtime_marks_the_plan_over_the_limit() {
    let mut p = recreated("");
    let history: History = [(("a".into(), "x".into(), "one".into()), vec![3000])].into();
    risk::assess(&mut p, &history, &risk::DowntimeLimits::fleet(Some(5000)));
    assert_eq!(p.risk.over_limit_ms, None);
    risk::assess(&mut p, &history, &risk::DowntimeLimits::fleet(Some(2000)));
    assert_eq!(p.risk.over_limit_ms, Some(2000));
    assert!(
        risk::summary_line(&p.risk)
            .ends_with("; over `rollout.max_downtime` (~2 s): needs `--allow-downtime` or an approval")
    );
    // Saved plans carry it.
    let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back.risk, p.risk);
    assert_eq!(back.actions, p.actions);
}

#[test]
fn data_risk_names_dropped_mounts_removed_volumes_and_created_folders() {
    // A dropped volume mount.
    let d = desired("kind: App\nname: db\nserver: a\nimage: img:1\n");
    let with = desired("kind: App\nname: db\nserver: a\nimage: img:1\nvolumes: [\"data:/d\"]\n");
    let mut inv = converged(&with, "a");
    inv.containers[0].mounts = vec![crate::model::observed::MountObs {
        kind: crate::model::observed::MountKind::Volume,
        name: Some("db_data".into()),
        source: "/var/lib/docker/volumes/db_data/_data".into(),
        target: "/d".into(),
    }];
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    assert_eq!(action(&p, "db").risk.data_risk, DataRisk::DataMountDropped);
    assert_eq!(
        risk::summary_line(&p.risk),
        "downtime: ~5 s for 1 service (db); data at risk: data mount dropped (db: volume `db_data` at /d)",
    );
    // A volume removed by name.
    let opts = PlanOptions { prune_volumes: vec!["old_cache".into()], ..PlanOptions::default() };
    let p = plan_with(&with, &observed(&[("a", converged(&with, "a"))]), &PlanOptions::default());
    assert!(p.actions.is_empty());
    let mut inv = converged(&with, "a");
    inv.volumes.push(VolumeObs { name: "old_cache".into(), labels: Default::default() });
    let p = plan_with(&with, &observed(&[("a", inv)]), &opts);
    assert_eq!(action(&p, "old_cache").risk.data_risk, DataRisk::VolumeRemoved);
    assert!(risk::summary_line(&p.risk).ends_with("data at risk: volume removed (old_cache)"), "{:?}", p.risk);
    // A bind folder created.
    let binds = desired("kind: App\nname: n\nserver: a\nimage: img:1\nvolumes: [\"/srv/n:/data\"]\n");
    let mut inv = empty();
    inv.missing_paths = vec!["/srv/n".into()];
    let p = plan_with(&binds, &observed(&[("a", inv)]), &PlanOptions::default());
    assert_eq!(action(&p, "/srv/n").risk.data_risk, DataRisk::BindFolderCreated);
    assert_eq!(risk::summary_line(&p.risk), "downtime: none; data at risk: bind folder created (/srv/n)");
    // JSON: each action says it.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["actions"][0]["risk"]["data_risk"], "none");
    assert!(json["actions"].as_array().unwrap().iter().any(|a| a["risk"]["data_risk"] == "bind folder created"));
}

#[test]
fn an_apps_own_max_downtime_overrides_the_fleets_for_its_services() {
    let mut p = recreated("");
    let history: History = [(("a".into(), "x".into(), "one".into()), vec![3000])].into();
    let x: crate::model::Name = "x".parse().unwrap();
    let tighter = risk::DowntimeLimits { fleet: Some(5000), apps: [(x.clone(), 2000)].into() };
    risk::assess(&mut p, &history, &tighter);
    assert_eq!(p.risk.over_limit_ms, Some(2000));
    let looser = risk::DowntimeLimits { fleet: Some(2000), apps: [(x, 5000)].into() };
    risk::assess(&mut p, &history, &looser);
    assert_eq!(p.risk.over_limit_ms, None);
}
