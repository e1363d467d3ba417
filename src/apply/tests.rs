//! The apply walker against the in-memory Engine (`fake.rs`): plans are built
//! from manifests and the fake's own inventory, as the engine builds them,
//! and every test asserts on the log of calls and actions it recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::fake::{FakeEngine, Fault};
use super::*;
use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
use crate::model::secret::NoSecrets;
use crate::model::{Desired, Observed, RunState, ServerState};
use crate::plan::{self, Op, PlanOptions};
use crate::transport::engine::EngineApi;

/// db ← web ← worker (each waits for the one before), with a volume and an
/// image to pull; `blog` stands apart.
const SHOP: &str = "kind: App\nname: shop\nserver: a\nservices:\n  db:\n    image: img:1\n    volumes: [\"data:/d\"]\n  web:\n    image: img:1\n    depends_on: [db]\n  worker:\n    image: img:2\n    depends_on: [web]\n---\nkind: App\nname: blog\nserver: a\nservices:\n  site: {image: img:1}\n";

pub(super) fn desired(yaml: &str) -> Desired {
    let yaml = format!("kind: Server\nname: a\nhost: local\n---\n{yaml}");
    let sources = Sources::from_texts([("m.yaml", yaml.as_str())]);
    let l = manifest::load(
        &sources,
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
}

/// The plan for `d` against what `fake` holds now.
pub(super) async fn plan_for(d: &Desired, fake: &FakeEngine) -> Plan {
    let inv = fake.inventory().await.expect("the fake lists");
    let observed = Observed {
        servers: BTreeMap::from([(Name::parse("a").unwrap(), ServerState::Reached(inv))]),
        ..Observed::default()
    };
    plan::build(d, &observed, &PlanOptions::default(), &NoSecrets("no vault in tests".into())).expect("a plan")
}

/// Notes each action's start (`> verb object`) and end (`< verb object: outcome`) in the fake's log.
struct Notes(FakeEngine);

impl ApplySink for Notes {
    fn started(&self, a: &Action) {
        self.0.note(format!("> {} {}", a.op.verb(), a.op.object()));
    }
    fn finished(&self, a: &Action, outcome: &Outcome, _: Duration) {
        self.0.note(format!("< {} {}: {}", a.op.verb(), a.op.object(), outcome.as_str()));
    }
}

struct NoJournal;

impl Journal for NoJournal {
    fn started(&self, _: &Action) {}
    fn finished(&self, _: &Action, _: &Outcome, _: Option<&str>) {}
}

pub(super) async fn apply(
    plan: &Plan,
    fake: &FakeEngine,
    parallelism: usize,
    stop: Option<Arc<AtomicBool>>,
) -> ApplyReport {
    let clients = BTreeMap::from([(Name::parse("a").unwrap(), Ok(fake.clone()))]);
    let opts = ApplyOptions { parallelism, health_timeout: Duration::from_secs(1), verify: Default::default(), stop };
    let secrets: Arc<dyn crate::model::secret::Secrets> = Arc::new(NoSecrets("no vault in tests".into()));
    run(plan, &clients, secrets, &opts, &Notes(fake.clone()), &NoJournal).await
}

/// `verb object` → outcome, for every action.
fn outcomes(plan: &Plan, report: &ApplyReport) -> BTreeMap<String, &'static str> {
    report
        .results
        .iter()
        .map(|r| {
            let a = &plan.actions[r.id];
            (format!("{} {}", a.op.verb(), a.op.object()), r.outcome.as_str())
        })
        .collect()
}

fn position(log: &[String], line: &str) -> usize {
    log.iter().position(|l| l == line).unwrap_or_else(|| panic!("`{line}` is not in the log:\n{}", log.join("\n")))
}

#[tokio::test]
async fn actions_start_only_after_everything_they_wait_for_succeeded() {
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(2));
    let d = desired(SHOP);
    let plan = plan_for(&d, &fake).await;
    let report = apply(&plan, &fake, 4, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let log = fake.log();
    // Every edge of the plan holds in the log: B ends before A starts.
    for a in &plan.actions {
        let started = position(&log, &format!("> {} {}", a.op.verb(), a.op.object()));
        for b in &a.after {
            let b = &plan.actions[*b];
            let ended = position(&log, &format!("< {} {}: succeeded", b.op.verb(), b.op.object()));
            assert!(
                ended < started,
                "{} {} started before {} {} ended:\n{}",
                a.op.verb(),
                a.op.object(),
                b.op.verb(),
                b.op.object(),
                log.join("\n")
            );
        }
    }
    // And so do the Engine calls: network, volume and image before the
    // containers, each dependency started before its dependent is created.
    let chain = [
        "create network shop",
        "create volume shop_data",
        "create shop-db",
        "start shop-db",
        "create shop-web",
        "start shop-web",
        "create shop-worker",
        "start shop-worker",
    ];
    let at: Vec<usize> = chain.iter().map(|c| position(&log, c)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{chain:?} at {at:?}:\n{}", log.join("\n"));
    assert!(position(&log, "pull img:2") < position(&log, "create shop-worker"));
    // What was applied is what was declared: planning again finds nothing to do.
    let again = plan_for(&d, &fake).await;
    assert!(again.actions.is_empty(), "{:?}", again.actions.iter().map(|a| a.op.object()).collect::<Vec<_>>());
}

#[tokio::test]
async fn no_more_actions_run_at_once_than_the_parallelism_allows() {
    let services: String = (1..=6).map(|i| format!("  s{i}: {{image: img:1}}\n")).collect();
    let d = desired(&format!("kind: App\nname: wide\nserver: a\nservices:\n{services}"));
    for parallelism in [1, 2, 3] {
        let fake = FakeEngine::new(&["img:1"], Duration::from_millis(5));
        let plan = plan_for(&d, &fake).await;
        assert_eq!(plan.actions.len(), 13, "a network, six creates and six starts");
        let report = apply(&plan, &fake, parallelism, None).await;
        assert!(report.succeeded(), "{:?}", report.results);
        // Reached and never exceeded.
        assert_eq!(fake.most_in_flight(), parallelism, "parallelism {parallelism}");
    }
}

#[tokio::test]
async fn a_failure_skips_exactly_the_actions_that_depend_on_it() {
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(1));
    let d = desired(SHOP);
    let plan = plan_for(&d, &fake).await;
    fake.fail("create shop-web", Fault::Status(400), 1);
    let report = apply(&plan, &fake, 2, None).await;
    let got = outcomes(&plan, &report);
    let expected = BTreeMap::from([
        ("create network blog".to_string(), "succeeded"),
        ("create network shop".to_string(), "succeeded"),
        ("create volume shop_data".to_string(), "succeeded"),
        ("pull img:2".to_string(), "succeeded"),
        ("create blog-site".to_string(), "succeeded"),
        ("start blog-site".to_string(), "succeeded"),
        ("create shop-db".to_string(), "succeeded"),
        ("start shop-db".to_string(), "succeeded"),
        ("create shop-web".to_string(), "failed"),
        ("start shop-web".to_string(), "skipped"),
        ("create shop-worker".to_string(), "skipped"),
        ("start shop-worker".to_string(), "skipped"),
    ]);
    assert_eq!(got, expected);
    let log = fake.log();
    // A 4xx is final: one attempt. Nothing skipped reached the Engine.
    assert_eq!(log.iter().filter(|l| *l == "create shop-web").count(), 1, "{}", log.join("\n"));
    assert!(!log.iter().any(|l| l.contains("shop-worker") && !l.starts_with("< ")), "{}", log.join("\n"));
    assert!(!log.contains(&"start shop-web".to_string()));
    let skipped = report.results.iter().find(|r| plan.actions[r.id].op.object() == "shop-worker").unwrap();
    assert!(matches!(&skipped.outcome, Outcome::Skipped(why) if why.contains("shop-web")), "{:?}", skipped.outcome);
}

#[tokio::test]
async fn a_failed_recreate_puts_the_old_container_back_and_starts_it() {
    let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
    let before = desired("kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1}\n");
    assert!(apply(&plan_for(&before, &fake).await, &fake, 2, None).await.succeeded());
    let [(name, old, RunState::Running)] = &fake.containers()[..] else { panic!("{:?}", fake.containers()) };
    assert_eq!(name, "x-one");
    let after = desired("kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1, env: {A: b}}\n");
    let plan = plan_for(&after, &fake).await;
    assert_eq!(plan.actions.iter().map(|a| a.op.verb()).collect::<Vec<_>>(), ["recreate"]);
    // The new container exits at once, so it never runs.
    fake.crash_on_start("x-one");
    fake.clear_log();
    let report = apply(&plan, &fake, 2, None).await;
    let aside = format!("x-one-tomo-old-{}", &old[..12]);
    assert_eq!(
        fake.log(),
        [
            "> recreate x-one",
            "inspect x-one",
            "stop x-one",
            &format!("rename x-one {aside}"),
            "create x-one",
            "start x-one",
            "inspect x-one",
            // rollback: the new one goes, the old one comes back under its name
            "stop x-one",
            "remove x-one",
            &format!("rename {aside} x-one"),
            "start x-one",
            "< recreate x-one: failed",
        ]
    );
    let Outcome::Failed(why) = &report.results[0].outcome else { panic!("{:?}", report.results) };
    assert!(why.contains("exited with status 1") && why.contains("the previous container was restored"), "{why}");
    assert_eq!(fake.containers(), [("x-one".to_string(), old.clone(), RunState::Running)]);
}

#[tokio::test]
async fn transient_failures_are_retried_and_a_4xx_is_not() {
    let one = desired("kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1}\n");
    let count = |fake: &FakeEngine, call: &str| fake.log().iter().filter(|l| *l == call).count();

    // 5xx twice, then it goes through.
    let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
    let plan = plan_for(&one, &fake).await;
    fake.fail("start x-one", Fault::Status(503), 2);
    assert!(apply(&plan, &fake, 2, None).await.succeeded());
    assert_eq!(count(&fake, "start x-one"), 3);

    // The Engine unreachable once.
    let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
    let plan = plan_for(&one, &fake).await;
    fake.fail("create x-one", Fault::Connect, 1);
    assert!(apply(&plan, &fake, 2, None).await.succeeded());
    assert_eq!(count(&fake, "create x-one"), 2);

    // A 5xx that does not pass: four attempts, then the failure.
    let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
    let plan = plan_for(&one, &fake).await;
    fake.fail("create x-one", Fault::Status(500), 4);
    let report = apply(&plan, &fake, 2, None).await;
    assert_eq!(outcomes(&plan, &report)["create x-one"], "failed");
    assert_eq!(count(&fake, "create x-one"), 4);

    // 4xx: final at once.
    for status in [400, 404, 409] {
        let fake = FakeEngine::new(&["img:1"], Duration::ZERO);
        let plan = plan_for(&one, &fake).await;
        fake.fail("start x-one", Fault::Status(status), 1);
        let report = apply(&plan, &fake, 2, None).await;
        assert_eq!(outcomes(&plan, &report)["start x-one"], "failed", "{status}");
        assert_eq!(count(&fake, "start x-one"), 1, "{status}");
    }
}

#[tokio::test]
async fn once_the_stop_flag_is_set_no_action_starts_and_running_ones_finish() {
    let services: String = (1..=4).map(|i| format!("  s{i}: {{image: img:1}}\n")).collect();
    let d = desired(&format!("kind: App\nname: wide\nserver: a\nservices:\n{services}"));
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(2));
    let plan = plan_for(&d, &fake).await;
    let stop = Arc::new(AtomicBool::new(false));
    fake.stop_at("create wide-s2", stop.clone());
    let report = apply(&plan, &fake, 2, Some(stop)).await;
    let log = fake.log();
    let at = position(&log, "create wide-s2");
    assert!(!log[at..].iter().any(|l| l.starts_with("> ")), "an action started after the stop:\n{}", log.join("\n"));
    // What had started finished; the rest was not started, and says why.
    let started: Vec<&String> = log.iter().filter(|l| l.starts_with("> ")).collect();
    let succeeded = report.results.iter().filter(|r| r.outcome == Outcome::Succeeded).count();
    assert_eq!(succeeded, started.len(), "{}", log.join("\n"));
    assert!(started.len() < plan.actions.len());
    for r in report.results.iter().filter(|r| r.outcome != Outcome::Succeeded) {
        assert_eq!(r.outcome, Outcome::Skipped("not started: tomo was stopping".into()));
    }
}

/// `worker` needs `web` only optionally (`required: false`): it starts
/// after `web` is done, whether `web` came up or failed (and was skipped).
#[tokio::test]
async fn an_optional_dependency_that_fails_does_not_hold_its_dependent() {
    let shop = SHOP.replace("depends_on: [web]", "depends_on: {web: {condition: started, required: false}}");
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(1));
    let d = desired(&shop);
    let plan = plan_for(&d, &fake).await;
    fake.fail("create shop-web", Fault::Status(400), 1);
    let report = apply(&plan, &fake, 2, None).await;
    let got = outcomes(&plan, &report);
    assert_eq!(got["create shop-web"], "failed");
    assert_eq!(got["start shop-web"], "skipped");
    assert_eq!(got["create shop-worker"], "succeeded");
    assert_eq!(got["start shop-worker"], "succeeded");
    // Still after: the worker waited for the failure (and the skip) before it went.
    let log = fake.log();
    assert!(position(&log, "< start shop-web: skipped") < position(&log, "> create shop-worker"), "{}", log.join("\n"));
    // When web comes up, the worker still starts after it.
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(1));
    let plan = plan_for(&d, &fake).await;
    let report = apply(&plan, &fake, 4, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let log = fake.log();
    assert!(position(&log, "< start shop-web: succeeded") < position(&log, "> create shop-worker"));
}

/// The plan for `d` against what `fake` holds now, with its missing host
/// folders observed as `observe` does.
async fn plan_observing_paths(d: &Desired, fake: &FakeEngine, paths: &[&str]) -> Plan {
    let mut inv = fake.inventory().await.expect("the fake lists");
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    inv.missing_paths = fake.missing_paths(&paths).await.expect("the fake answers");
    let observed = Observed {
        servers: BTreeMap::from([(Name::parse("a").unwrap(), ServerState::Reached(inv))]),
        ..Observed::default()
    };
    plan::build(d, &observed, &PlanOptions::default(), &NoSecrets("no vault in tests".into())).expect("a plan")
}

#[tokio::test]
async fn host_folders_come_before_the_container_and_files_are_written_where_it_mounts_them() {
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(1));
    let d = desired(
        "kind: App\nname: site\nserver: a\nimage: img:1\nvolumes: [\"/srv/site/html:/data\"]\n\
         files:\n  - {target: /etc/site.conf, content: \"a = 1\\n\"}\n",
    );
    let plan = plan_observing_paths(&d, &fake, &["/srv/site/html"]).await;
    let report = apply(&plan, &fake, 4, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let log = fake.log();
    assert!(position(&log, "create dir /srv/site/html") < position(&log, "create site"), "{}", log.join("\n"));
    let Some(Op::Create { spec, redacted, .. }) =
        plan.actions.iter().map(|a| &a.op).find(|o| matches!(o, Op::Create { .. }))
    else {
        panic!("no create")
    };
    let (path, _) = &spec.file_paths(redacted)[0];
    assert!(path.starts_with(crate::model::files::FILES_ROOT), "{path}");
    assert_eq!(fake.path(path).as_deref(), Some(&b"a = 1\n"[..]));
    assert!(position(&log, &format!("write file {path}")) < position(&log, "create site"));
    let again = plan_observing_paths(&d, &fake, &["/srv/site/html"]).await;
    assert!(again.actions.is_empty(), "{:?}", again.actions.iter().map(|a| a.op.object()).collect::<Vec<_>>());
}

/// Records the progress events; cancels once `cancel_after` actions ended.
struct Progress {
    events: std::sync::Mutex<Vec<ApplyEvent>>,
    cancel_after: usize,
    started_after_cancel: std::sync::atomic::AtomicUsize,
}

impl ApplySink for Progress {
    fn started(&self, _: &Action) {
        if self.cancelled() {
            self.started_after_cancel.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn finished(&self, _: &Action, _: &Outcome, _: Duration) {}
    fn progress(&self, e: &ApplyEvent) {
        self.events.lock().unwrap().push(e.clone());
    }
    fn cancelled(&self) -> bool {
        self.events.lock().unwrap().len() >= self.cancel_after
    }
}

fn progress_sink(cancel_after: usize) -> Progress {
    Progress { events: Default::default(), cancel_after, started_after_cancel: Default::default() }
}

async fn apply_with(plan: &Plan, fake: &FakeEngine, sink: &Progress) -> ApplyReport {
    let clients = BTreeMap::from([(Name::parse("a").unwrap(), Ok(fake.clone()))]);
    let opts =
        ApplyOptions { parallelism: 2, health_timeout: Duration::from_secs(1), verify: Default::default(), stop: None };
    let secrets: Arc<dyn crate::model::secret::Secrets> = Arc::new(NoSecrets("no vault in tests".into()));
    run(plan, &clients, secrets, &opts, sink, &NoJournal).await
}

#[tokio::test]
async fn progress_counts_every_ended_action_once_in_order() {
    let d = desired(SHOP);
    let fake = FakeEngine::new(&[], Duration::from_millis(1));
    fake.fail("create shop-web", Fault::Status(400), 1);
    let plan = plan_for(&d, &fake).await;
    let sink = progress_sink(usize::MAX);
    let report = apply_with(&plan, &fake, &sink).await;
    let events = sink.events.lock().unwrap().clone();
    let n = plan.actions.len();
    // Skipped dependents of the failed create count too: every action ends once.
    assert_eq!(events.iter().map(|e| e.done).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e.total == n));
    assert!(events.iter().any(|e| e.action == "create shop-db on a"), "{events:?}");
    assert!(!report.cancelled);
}

#[tokio::test]
async fn a_cancelled_sink_stops_the_apply_as_the_stop_flag_does() {
    let services: String = (1..=6).map(|i| format!("  s{i}: {{image: img:1}}\n")).collect();
    let d = desired(&format!("kind: App\nname: wide\nserver: a\nservices:\n{services}"));
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(2));
    let plan = plan_for(&d, &fake).await;
    let sink = progress_sink(2);
    let report = apply_with(&plan, &fake, &sink).await;
    assert!(report.cancelled);
    assert_eq!(sink.started_after_cancel.load(Ordering::SeqCst), 0, "an action started after the cancel");
    let ran = report.results.iter().filter(|r| r.outcome == Outcome::Succeeded).count();
    assert!((2..plan.actions.len()).contains(&ran), "{:?}", report.results);
    for r in report.results.iter().filter(|r| r.outcome != Outcome::Succeeded) {
        assert_eq!(r.outcome, Outcome::Skipped("not started: the call was cancelled".into()));
    }
}

/// A container left `created` (never run) and gone by the time its start
/// comes (the Engine undoing an interrupted create) is made again from the
/// plan and started: the apply converges instead of failing on "no such
/// container".
#[tokio::test]
async fn a_never_run_container_gone_before_its_start_is_made_again() {
    let fake = FakeEngine::new(&["img:1"], Duration::from_millis(1));
    let stopped = desired("kind: App\nname: solo\nserver: a\nservices:\n  web: {image: img:1, state: stopped}\n");
    let report = apply(&plan_for(&stopped, &fake).await, &fake, 2, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let [(name, id, RunState::Created)]: [_; 1] = fake.containers().try_into().unwrap() else {
        panic!("{:?}", fake.containers())
    };
    let running = desired("kind: App\nname: solo\nserver: a\nservices:\n  web: {image: img:1}\n");
    let plan = plan_for(&running, &fake).await;
    let [start] = &plan.actions[..] else { panic!("{:?}", plan.actions) };
    assert!(matches!(&start.op, Op::Start { again: Some(_), .. }), "{:?}", start.op);
    fake.remove(&id, Duration::from_secs(1)).await.unwrap();
    let report = apply(&plan, &fake, 2, None).await;
    assert!(report.succeeded(), "{:?}", report.results);
    let [(again, new_id, RunState::Running)]: [_; 1] = fake.containers().try_into().unwrap() else {
        panic!("{:?}", fake.containers())
    };
    assert_eq!(again, name);
    assert_ne!(new_id, id);
    // A container that ran before is never made again: its start fails.
    fake.stop(&new_id, Duration::from_secs(1)).await.unwrap();
    let plan = plan_for(&running, &fake).await;
    assert!(matches!(&plan.actions[0].op, Op::Start { again: None, .. }), "{:?}", plan.actions);
    fake.remove(&new_id, Duration::from_secs(1)).await.unwrap();
    let report = apply(&plan, &fake, 2, None).await;
    assert!(!report.succeeded());
    assert!(fake.containers().is_empty());
}
