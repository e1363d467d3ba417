//! `on_failure: rollback-all` in the walker, against the in-memory Engine:
//! the recreates of the rollout keep their old containers aside until every
//! action of the app succeeded, then remove them, or put them all back.

use std::collections::BTreeSet;
use std::time::Duration;

use super::fake::FakeEngine;
use super::rolling::RollingState;
use super::tests::{apply, desired, plan_for};
use super::*;
use crate::model::RunState;
use crate::plan::Rolling;

const BEFORE: &str = "kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1}\n  two: {image: img:1}\n";
const AFTER: &str = "kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1, env: {A: b}}\n  two: {image: img:1, env: {A: b}}\n";

/// The fake with `x` deployed, and the plan recreating both services as a
/// `rollback-all` rollout, `one` before `two`.
async fn rollout() -> (FakeEngine, Plan, Vec<(String, String, RunState)>) {
    let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
    assert!(apply(&plan_for(&desired(BEFORE), &fake).await, &fake, 2, None).await.succeeded());
    let before = fake.containers();
    let mut plan = plan_for(&desired(AFTER), &fake).await;
    assert_eq!(plan.actions.iter().map(|a| a.op.verb()).collect::<Vec<_>>(), ["recreate", "recreate"]);
    let [one, two] = [0, 1].map(|i| plan.actions.iter().position(|a| a.op.object() == ["x-one", "x-two"][i]).unwrap());
    plan.actions[two].after.push(one);
    let a = Name::parse("a").unwrap();
    plan.rolling.push(Rolling { app: Name::parse("x").unwrap(), servers: vec![a], rollback_all: true });
    fake.clear_log();
    (fake, plan, before)
}

#[tokio::test]
async fn a_failure_puts_back_the_recreates_that_succeeded() {
    let (fake, plan, before) = rollout().await;
    fake.crash_on_start("x-two");
    let report = apply(&plan, &fake, 2, None).await;
    assert!(!report.succeeded());
    for r in &report.results {
        let Outcome::Failed(why) = &r.outcome else { panic!("{:?}", report.results) };
        if plan.actions[r.id].op.object() == "x-one" {
            assert!(why.contains("rolled back with the rollout (`on_failure: rollback-all`; recreate x-two on a did not succeed): the previous container was put back"), "{why}");
        } else {
            assert!(why.contains("the previous container was restored"), "{why}");
        }
    }
    assert_eq!(fake.containers(), before, "both previous containers are back, running, with their ids");
    assert_eq!(report.rolling[0].servers[0].state, RollingState::RolledBack);
}

#[tokio::test]
async fn success_removes_the_containers_kept_aside_only_at_the_end() {
    let (fake, plan, before) = rollout().await;
    let report = apply(&plan, &fake, 2, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let log = fake.log();
    let removed: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("remove x-") && l.contains("-tomo-old-"))
        .map(|(i, _)| i)
        .collect();
    let last_end = log.iter().rposition(|l| l.starts_with("< ")).unwrap();
    assert_eq!(removed.len(), 2, "{}", log.join("\n"));
    assert!(removed.iter().all(|i| *i > last_end), "removed only once all verified:\n{}", log.join("\n"));
    let old_ids: BTreeSet<&str> = before.iter().map(|(_, id, _)| id.as_str()).collect();
    let now = fake.containers();
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.iter().all(|(_, id, state)| !old_ids.contains(id.as_str()) && *state == RunState::Running), "{now:?}");
    assert_eq!(report.rolling[0].servers[0].state, RollingState::Updated);
}
