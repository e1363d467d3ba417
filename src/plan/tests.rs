//! Diff and graph construction over many shapes of desired and observed
//! state. Each case renders the plan as stable text: one line per action,
//! `symbol verb object @server after [objects]`, then conflicts and orphans.

use std::collections::BTreeMap;

use super::*;
use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
use crate::model::labels;
use crate::model::observed::{ImageObs, NetworkObs, VolumeObs};
use crate::model::secret::NoSecrets;
use crate::model::spec::{self, ContainerSpec};
use crate::model::subnet::Subnet;
use crate::model::{ContainerObs, Inventory, RunState};

const IMG: &str = "img:1";

pub(super) fn desired(yaml: &str) -> Desired {
    let yaml = format!("kind: Server\nname: a\nhost: local\n---\nkind: Server\nname: b\nhost: local\n---\n{yaml}");
    let sources = Sources::from_texts([("m.yaml", yaml.as_str())]);
    let l = manifest::load(
        &sources,
        &LoadOptions { secrets: &SecretCheck::Known(["pw".to_string()].into()), inline_check: |_| Ok(()) },
    );
    l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
}

/// An inventory where `img:1` exists and nothing else.
pub(super) fn empty() -> Inventory {
    Inventory {
        images: vec![ImageObs { id: "sha256:img1".into(), tags: vec![IMG.into()], digests: vec![] }],
        ..Inventory::default()
    }
}

/// The inventory after a successful apply of `d` on `server`.
pub(super) fn converged(d: &Desired, server: &str) -> Inventory {
    let server = Name::parse(server).unwrap();
    let mut inv = empty();
    for app in d.apps.values().filter(|a| a.servers.contains(&server)) {
        inv.networks.push(NetworkObs {
            id: app.name.to_string(),
            name: app.name.to_string(),
            labels: obj_labels(app.name.as_str()),
            subnet: None,
            created: String::new(),
            options: None,
        });
        for svc in app.services.values() {
            let spec = ContainerSpec::new(&server, app, svc);
            for m in &spec.mounts {
                if m.kind == spec::SpecMountKind::Volume && !inv.volumes.iter().any(|v| v.name == m.source) {
                    inv.volumes.push(VolumeObs { name: m.source.clone(), labels: obj_labels(app.name.as_str()) });
                }
            }
            let running =
                app.state == crate::model::AppState::Running && svc.state == crate::model::ServiceState::Running;
            inv.containers.push(container(&spec, if running { RunState::Running } else { RunState::Exited }));
        }
    }
    inv
}

fn obj_labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::MANAGED.into(), "true".into()), (labels::APP.into(), app.into())])
}

pub(super) fn container(spec: &ContainerSpec, state: RunState) -> ContainerObs {
    let redacted = spec.redacted(&NoSecrets(String::new())).unwrap();
    let mut l = obj_labels(spec.app.as_str());
    l.insert(labels::SERVICE.into(), spec.service.to_string());
    l.insert(labels::SERVER.into(), spec.server.to_string());
    l.insert(labels::SPEC_HASH.into(), spec::hash_redacted(&redacted));
    l.insert(labels::SPEC.into(), redacted.to_string());
    ContainerObs {
        id: format!("id-{}", spec.container),
        name: spec.container.clone(),
        image: spec.image.clone(),
        image_id: "sha256:img1".into(),
        state,
        health: None,
        exit_code: None,
        labels: l,
        ours: true,
        mounts: Vec::new(),
        networks: vec![spec.app.to_string()],
    }
}

pub(super) fn observed(servers: &[(&str, Inventory)]) -> Observed {
    Observed {
        servers: servers.iter().map(|(n, i)| (Name::parse(n).unwrap(), ServerState::Reached(i.clone()))).collect(),
        ..Observed::default()
    }
}

pub(super) fn plan_with(d: &Desired, o: &Observed, opts: &PlanOptions) -> Plan {
    build(d, o, opts, &NoSecrets("no vault in tests".into())).unwrap()
}

pub(super) fn render(p: &Plan) -> String {
    let mut out = String::new();
    for a in &p.actions {
        let after: Vec<&str> = a.after.iter().map(|i| p.actions[*i].op.object()).collect();
        out.push_str(&format!("{} {} {} @{}", a.op.symbol(), a.op.verb(), a.op.object(), a.server));
        if !after.is_empty() {
            out.push_str(&format!(" after [{}]", after.join(", ")));
        }
        out.push('\n');
    }
    for c in &p.conflicts {
        out.push_str(&format!("! {} @{}: {}\n", c.object, c.server, c.message));
    }
    for o in &p.orphans {
        out.push_str(&format!("? {} @{} removed={}\n", o.container, o.server, o.removed));
    }
    for (s, why) in &p.unreachable {
        out.push_str(&format!("x {s}: {why}\n"));
    }
    out
}

pub(super) fn check(d: &Desired, o: &Observed, opts: &PlanOptions, expect: &str) {
    let got = render(&plan_with(d, o, opts));
    assert_eq!(got.trim(), expect.trim(), "\n--- got ---\n{got}");
}

const SHOP: &str = "kind: App\nname: shop\nserver: a\nservices:\n  db:\n    image: img:1\n    volumes: [\"data:/d\"]\n    healthcheck: {test: [\"CMD\", \"true\"]}\n  web:\n    image: img:1\n    depends_on: {db: healthy}\n  worker:\n    image: img:2\n    depends_on: [web]\n";

#[test]
fn from_nothing_orders_images_networks_volumes_and_dependencies() {
    let d = desired(SHOP);
    check(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        "
+ create network shop @a
+ create shop-db @a after [shop, shop_data]
> start shop-db @a after [shop-db]
+ create shop-web @a after [shop, shop-db]
> start shop-web @a after [shop-db, shop-web]
+ pull img:2 @a
+ create shop-worker @a after [shop, shop-web, img:2]
> start shop-worker @a after [shop-web, shop-worker]
+ create volume shop_data @a",
    );
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let waits: Vec<Wait> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Start { wait, fresh: true, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [Wait::Healthy, Wait::Running, Wait::Running]);
}

#[test]
fn converged_state_plans_nothing() {
    let d = desired(SHOP);
    let mut inv = converged(&d, "a");
    inv.images.push(ImageObs { id: "sha256:img2".into(), tags: vec!["img:2".into()], digests: vec![] });
    for c in &mut inv.containers {
        if c.image == "img:2" {
            c.image_id = "sha256:img2".into();
        }
    }
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert!(!p.has_changes(), "{}", render(&p));
    assert!(p.conflicts.is_empty() && p.orphans.is_empty());
}

#[test]
fn changes_recreate_start_and_stop_with_reasons() {
    let d = desired(
        "kind: App\nname: x\nserver: a\nservices:\n  one: {image: img:1}\n  two: {image: img:1}\n  three: {image: img:1, state: stopped}\n",
    );
    let mut inv = converged(&d, "a");
    // one: deployed with another env; two: exited; three: running but declared stopped.
    let one = inv.containers.iter_mut().find(|c| c.name == "x-one").unwrap();
    let mut old = ContainerSpec::new(
        &Name::parse("a").unwrap(),
        &d.apps[&Name::parse("x").unwrap()],
        &d.apps[&Name::parse("x").unwrap()].services[&Name::parse("one").unwrap()],
    );
    old.env.insert("A".into(), crate::model::EnvValue::Plain("old".into()));
    *one = container(&old, RunState::Running);
    inv.containers.iter_mut().find(|c| c.name == "x-two").unwrap().state = RunState::Exited;
    inv.containers.iter_mut().find(|c| c.name == "x-three").unwrap().state = RunState::Running;
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    // and once converged, nothing is left to do
    check(&d, &observed(&[("a", converged(&d, "a"))]), &PlanOptions::default(), "");
    let text = render(&p);
    assert_eq!(text.trim(), "~ recreate x-one @a\n. stop x-three @a\n> start x-two @a", "{text}");
    let one = &p.actions[0];
    assert_eq!(one.reasons, ["env.A removed"]);
    assert!(one.diff.as_deref().unwrap().contains("-env.A: \"old\""), "{:?}", one.diff);
    assert_eq!(p.actions[2].reasons, ["declared running, is exited"]);
    assert_eq!(p.actions[1].reasons, ["declared stopped, is running"]);
}

#[test]
fn absent_apps_are_removed_dependents_first_then_their_network() {
    let running = desired(SHOP);
    let inv = converged(&running, "a");
    let d = desired(&SHOP.replace("server: a\n", "server: a\nstate: absent\n"));
    check(
        &d,
        &observed(&[("a", inv)]),
        &PlanOptions::default(),
        "
- remove shop-db @a after [shop-web]
- remove shop-web @a after [shop-worker]
- remove shop-worker @a
- remove network shop @a after [shop-db, shop-web, shop-worker]",
    );
}

#[test]
fn orphans_are_kept_unless_pruned_and_never_with_an_app_scope() {
    let old = desired(
        "kind: App\nname: gone\nserver: a\nimage: img:1\n---\nkind: App\nname: kept\nserver: a\nimage: img:1\n",
    );
    let inv = converged(&old, "a");
    let d = desired("kind: App\nname: kept\nserver: a\nimage: img:1\n");
    let o = observed(&[("a", inv)]);
    check(&d, &o, &PlanOptions::default(), "? gone @a removed=false");
    check(
        &d,
        &o,
        &PlanOptions { prune: true, ..PlanOptions::default() },
        "- remove gone @a\n- remove network gone @a after [gone]\n? gone @a removed=true",
    );
    let scoped = PlanOptions {
        prune: true,
        scope: Scope { apps: vec![Name::parse("kept").unwrap()], ..Scope::default() },
        ..PlanOptions::default()
    };
    check(&d, &o, &scoped, "");
    let with_setting = desired("kind: App\nname: kept\nserver: a\nimage: img:1\n---\nkind: Settings\nprune: true\n");
    assert_eq!(plan_with(&with_setting, &o, &PlanOptions::default()).summary().remove, 1);
}

#[test]
fn foreign_containers_are_conflicts() {
    let d =
        desired("kind: App\nname: web\nserver: a\nimage: img:1\n---\nkind: App\nname: api\nserver: a\nimage: img:1\n");
    let mut inv = converged(&d, "a");
    for c in &mut inv.containers {
        if c.name == "web" {
            c.labels.clear();
            c.ours = false;
        } else {
            c.ours = false; // made by another tomo installation
        }
    }
    check(
        &d,
        &observed(&[("a", inv)]),
        &PlanOptions::default(),
        "
! api @a: a container named `api` exists and is managed by another tomo installation; rename or remove it, tomo will not
! web @a: a container named `web` exists and is not managed by tomo; rename or remove it, tomo will not",
    );
}

#[test]
fn several_servers_are_planned_independently_and_unreachable_ones_reported() {
    let d = desired("kind: App\nname: web\nservers: [a, b]\nimage: img:1\n");
    let o = Observed {
        servers: BTreeMap::from([
            (Name::parse("a").unwrap(), ServerState::Reached(empty())),
            (Name::parse("b").unwrap(), ServerState::Unreachable("connection refused".into())),
        ]),
        ..Observed::default()
    };
    check(
        &d,
        &o,
        &PlanOptions::default(),
        "+ create network web @a\n+ create web @a after [web]\n> start web @a after [web]\nx b: connection refused",
    );
    let both = observed(&[("a", empty()), ("b", empty())]);
    let p = plan_with(&d, &both, &PlanOptions::default());
    assert_eq!(p.summary().create, 2);
    // no edge crosses servers
    for a in &p.actions {
        for b in &a.after {
            assert_eq!(p.actions[*b].server, a.server);
        }
    }
}

#[test]
fn missing_image_with_pull_never_is_a_conflict() {
    let d = desired("kind: App\nname: web\nserver: a\nimage: other:9\npull: never\n");
    check(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        "+ create network web @a\n! web @a: image `other:9` is not on the server and `pull: never` is set",
    );
}

#[test]
fn pruning_a_volume_needs_its_name_and_no_user() {
    let d = desired("kind: App\nname: db\nserver: a\nimage: img:1\nvolumes: [\"data:/d\"]\n");
    let mut inv = converged(&d, "a");
    inv.volumes.push(VolumeObs { name: "old_cache".into(), labels: obj_labels("old") });
    let o = observed(&[("a", inv)]);
    check(&d, &o, &PlanOptions::default(), "");
    let opts = PlanOptions { prune_volumes: vec!["db_data".into(), "old_cache".into()], ..PlanOptions::default() };
    check(
        &d,
        &o,
        &opts,
        "- remove volume old_cache @a\n! db_data @a: volume `db_data` is still used by db; it was not removed",
    );
}

#[test]
fn a_moved_tag_shows_both_registry_digests_and_the_plan_carries_them() {
    let (old, new) = (format!("img@sha256:{}", "a".repeat(64)), format!("img@sha256:{}", "b".repeat(64)));
    let d = desired("kind: App\nname: web\nserver: a\nimage: img:1\n");
    let mut inv = converged(&d, "a");
    inv.images[0].digests = vec![new.clone()];
    inv.images.push(ImageObs { id: "sha256:older".into(), tags: vec![], digests: vec![old.clone()] });
    // Converged: no action, and the digests are in the plan.
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.images.len(), 1);
    assert_eq!((p.images[0].declared.as_deref(), p.images[0].running.as_deref()), (Some(&*new), Some(&*new)));
    assert_eq!(p.images[0].image, "img:1");
    // The tag moved: a recreate naming both digests.
    inv.containers[0].image_id = "sha256:older".into();
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert_eq!(
        p.actions[0].reasons,
        vec!["image `img:1` moved: now sha256:bbbbbbbbbbbb (container runs sha256:aaaaaaaaaaaa)".to_string()]
    );
    assert_eq!(p.images[0].running.as_deref(), Some(&*old));
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["images"][0]["declared"], new);
    assert_eq!(json["images"][0]["running"], old);
}

#[test]
fn a_moved_tag_and_a_replaced_image_recreate() {
    let d = desired("kind: App\nname: web\nserver: a\nimage: img:1\n");
    let mut inv = converged(&d, "a");
    inv.containers[0].image_id = "sha256:older".into();
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    assert!(
        p.actions[0].reasons[0].starts_with("image `img:1` now points to sha256:img1"),
        "{:?}",
        p.actions[0].reasons
    );
    inv.containers[0].image_id = "sha256:img1".into();
    inv.containers[0].image = "someone/else:2".into();
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert!(p.actions[0].reasons[0].contains("replaced outside tomo"), "{:?}", p.actions[0].reasons);
}

#[test]
fn secrets_without_a_vault_fail_the_plan_clearly() {
    let d = desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {P: {secret: pw}}\n");
    let err = build(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        &NoSecrets("the vault is not available: TOMO_MASTER_PASSWORD is not set".into()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "service `web` of app `web`: the vault is not available: TOMO_MASTER_PASSWORD is not set"
    );
}

#[test]
fn basis_tracks_what_matters_only() {
    let d = desired(SHOP);
    let inv = converged(&d, "a");
    let o = observed(&[("a", inv.clone())]);
    let b1 = basis(&d, &o, &PlanOptions::default());
    assert_eq!(b1, basis(&d, &o, &PlanOptions::default()));
    let mut noisy = inv.clone();
    noisy.containers[0].health = Some(crate::model::Health::Starting);
    noisy.containers.push(ContainerObs { name: "unrelated".into(), ours: false, ..inv.containers[0].clone() });
    assert_eq!(basis(&d, &observed(&[("a", noisy)]), &PlanOptions::default()), b1);
    // The Engine lists in no fixed order; the basis does not depend on it.
    let mut shuffled = inv.clone();
    shuffled.containers.reverse();
    shuffled.networks.reverse();
    assert_eq!(basis(&d, &observed(&[("a", shuffled)]), &PlanOptions::default()), b1);
    let mut changed = inv;
    changed.containers[0].state = RunState::Exited;
    let b2 = basis(&d, &observed(&[("a", changed)]), &PlanOptions::default());
    assert_eq!(b2.desired, b1.desired);
    assert_ne!(b2.observed, b1.observed);
    let d2 = desired(&SHOP.replace("img:2", "img:3"));
    assert_ne!(basis(&d2, &o, &PlanOptions::default()).desired, b1.desired);
}

#[test]
fn order_and_dot_follow_the_edges() {
    let d = desired(SHOP);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let order = topo_order(&p).unwrap();
    let pos = |obj: &str| order.iter().position(|i| p.actions[*i].op.object() == obj).unwrap();
    assert!(pos("shop_data") < pos("shop-db"));
    assert!(pos("shop-db") < pos("shop-web"));
    assert!(pos("shop-web") < pos("shop-worker"));
    let dot = to_dot(&p);
    assert!(dot.starts_with("digraph plan {"));
    assert_eq!(dot.matches(" -> ").count(), p.actions.iter().map(|a| a.after.len()).sum::<usize>());
    let mut cyclic = p.clone();
    let last = cyclic.actions.len() - 1;
    cyclic.actions[0].after.push(last);
    cyclic.actions[last].after.push(0);
    assert!(topo_order(&cyclic).is_err());
}

#[test]
fn holding_an_action_holds_what_waits_for_it() {
    let d = desired(SHOP);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let db = p.actions.iter().find(|a| a.op.object() == "shop-db" && matches!(a.op, Op::Create { .. })).unwrap().id;
    let (rest, held) = p.without(&[db].into());
    assert!(held.contains(&db));
    for gone in ["shop-db", "shop-web", "shop-worker"] {
        assert!(!rest.actions.iter().any(|a| a.op.object() == gone), "{gone} should be held");
    }
    assert_eq!(rest.actions.len() + held.len(), p.actions.len());
    for (i, a) in rest.actions.iter().enumerate() {
        assert_eq!(a.id, i);
        assert!(a.after.iter().all(|b| *b < rest.actions.len()));
    }
    assert!(topo_order(&rest).is_ok());
}

#[test]
fn saved_plans_round_trip() {
    let d = desired(SHOP);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let text = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
}

#[test]
fn recreates_carry_anonymous_volumes_and_removals_name_the_data_they_drop() {
    use crate::model::observed::DataKind;
    use crate::model::observed::{MountKind, MountObs};
    let app = |extra: &str| desired(&format!("kind: App\nname: web\nserver: a\nimage: img:1\n{extra}"));
    let volume = |name: &str, target: &str| MountObs {
        kind: MountKind::Volume,
        name: Some(name.into()),
        source: format!("/var/lib/docker/volumes/{name}/_data"),
        target: target.into(),
    };
    let anon = "f00d".repeat(16);
    let image_volume = "cafe".repeat(16);
    let mut inv = converged(&app("env: {A: \"1\"}\nvolumes: [\"/data\", \"db:/db\", \"/srv/x:/x\"]\n"), "a");
    inv.containers[0].mounts = vec![
        volume(&anon, "/data"),
        volume("web_db", "/db"),
        volume(&image_volume, "/cache"),
        MountObs { kind: MountKind::Bind, name: None, source: "/srv/x".into(), target: "/x".into() },
    ];
    inv.containers[0].mounts.sort_by(|a, b| a.target.cmp(&b.target)); // as observation leaves them
    let o = observed(&[("a", inv)]);
    let recreate = |p: &Plan| {
        p.actions.iter().find_map(|a| match &a.op {
            Op::Recreate { keeps, drops, .. } => Some((keeps.clone(), drops.clone(), a.op.is_destructive())),
            _ => None,
        })
    };
    let targets = |v: &[DataMount]| v.iter().map(|d| d.target.as_str()).collect::<Vec<_>>().join(" ");
    // An env change keeps everything: both anonymous volumes are carried over.
    let p = plan_with(
        &app("env: {A: \"2\"}\nvolumes: [\"/data\", \"db:/db\", \"/srv/x:/x\"]\n"),
        &o,
        &PlanOptions::default(),
    );
    let (keeps, drops, _) = recreate(&p).unwrap();
    assert_eq!((targets(&keeps), targets(&drops)), ("/cache /data".into(), String::new()));
    assert!(keeps.iter().all(|k| k.kind == DataKind::Anonymous));
    assert!(text::plan(&p).contains("keeps anonymous volume at /data (f00df00df00d…)"), "{}", text::plan(&p));
    // Dropping the declared mounts drops their data (the image's volume stays).
    let p = plan_with(&app("env: {A: \"1\"}\nvolumes: []\n"), &o, &PlanOptions::default());
    let (keeps, drops, destructive) = recreate(&p).unwrap();
    assert_eq!((targets(&keeps), targets(&drops)), ("/cache".into(), "/data /db /x".into()));
    assert!(destructive && p.is_destructive());
    let shown = text::plan(&p);
    for line in [
        "drops anonymous volume at /data (f00df00df00d…)",
        "drops volume `web_db` at /db",
        "drops bind mount /srv/x at /x",
    ] {
        assert!(shown.contains(line), "{line} missing from {shown}");
    }
    assert_eq!(p.dropped_data().len(), 3);
    // A tmpfs where the anonymous volume was drops it too.
    let p = plan_with(
        &app("env: {A: \"1\"}\nvolumes: [\"db:/db\", \"/srv/x:/x\"]\ntmpfs: [\"/data\"]\n"),
        &o,
        &PlanOptions::default(),
    );
    let (_, drops, _) = recreate(&p).unwrap();
    assert_eq!(targets(&drops), "/data");
    // Nor is the image's volume carried where a tmpfs now is.
    let p = plan_with(
        &app("volumes: [\"/data\", \"db:/db\", \"/srv/x:/x\"]\ntmpfs: [\"/cache:size=1m\"]\n"),
        &o,
        &PlanOptions::default(),
    );
    let (keeps, drops, _) = recreate(&p).unwrap();
    assert_eq!((targets(&keeps), targets(&drops)), ("/data".into(), "/cache".into()));
    // A removal drops all of it, and says so.
    let p = plan_with(&app("state: absent\n"), &o, &PlanOptions::default());
    let removal = p.actions.iter().find(|a| matches!(a.op, Op::Remove { .. })).unwrap();
    assert_eq!(targets(removal.op.drops()), "/cache /data /db /x");
    assert!(text::plan(&p).contains("drops anonymous volume at /cache (cafecafecafe…)"));
}

#[test]
fn a_recreate_without_data_in_either_container_is_not_destructive() {
    let d = desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"1\"}\n");
    let o = observed(&[("a", converged(&d, "a"))]);
    let p = plan_with(
        &desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"2\"}\n"),
        &o,
        &PlanOptions::default(),
    );
    assert_eq!(p.summary().recreate, 1);
    assert!(!p.is_destructive());
}

#[test]
fn new_networks_take_the_first_free_blocks_of_the_pool_in_order() {
    let d = desired(
        "kind: App\nname: one\nserver: a\nimage: img:1\n---\nkind: App\nname: two\nserver: a\nimage: img:1\n---\nkind: App\nname: three\nserver: a\nimage: img:1\n",
    );
    let mut inv = empty();
    // Another installation's network and a route inside the pool.
    inv.taken = vec![Subnet::parse("10.213.0.0/27").unwrap(), Subnet::parse("10.213.0.64/26").unwrap()];
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    let nets: Vec<(String, String)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::CreateNetwork { name, subnet, .. } => Some((name.clone(), subnet.unwrap().to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        nets,
        [
            ("one".to_string(), "10.213.0.32/27".to_string()),
            ("three".to_string(), "10.213.0.128/27".to_string()),
            ("two".to_string(), "10.213.0.160/27".to_string())
        ]
    );
    assert!(render(&p).contains("+ create network one @a"));
    let saved: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(saved, p);
    assert!(super::text::plan(&p).contains("create network (10.213.0.32/27)"), "{}", super::text::plan(&p));
}

#[test]
fn an_existing_network_keeps_its_subnet_and_a_full_pool_is_said() {
    let d = desired(
        "kind: App\nname: web\nserver: a\nimage: img:1\n---\nkind: Settings\nnetworks: {pool: 10.9.0.0/28, prefix: 28}\n",
    );
    let mut inv = converged(&d, "a");
    inv.networks[0].subnet = Some(Subnet::parse("172.18.0.0/16").unwrap());
    assert!(plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default()).actions.is_empty());
    inv.networks.clear();
    inv.containers.clear();
    inv.taken = vec![Subnet::parse("10.9.0.0/24").unwrap()];
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    let a = p.actions.iter().find(|a| matches!(a.op, Op::CreateNetwork { .. })).unwrap();
    assert!(matches!(a.op, Op::CreateNetwork { subnet: None, .. }));
    assert!(a.reasons[0].contains("no free /28 is left in the pool 10.9.0.0/28"), "{:?}", a.reasons);
}

#[test]
fn duplicate_networks_keep_the_oldest_and_move_its_containers_off_the_others() {
    let d = desired("kind: App\nname: web\nserver: a\nimage: img:1\n");
    let mut inv = converged(&d, "a");
    let older = NetworkObs { id: "old".into(), created: "2026-01-01T00:00:00.5Z".into(), ..inv.networks[0].clone() };
    inv.networks[0].created = "2026-01-01T00:00:00.45Z".into();
    inv.networks[0].id = "new".into();
    inv.networks.push(older);
    inv.containers[0].networks = vec!["new".into()];
    // "…00.45Z" is earlier than "…00.5Z": the fraction is compared as a number.
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    let got = render(&p);
    assert!(got.contains("- remove network web @a"), "{got}");
    assert!(
        p.actions.iter().any(|a| matches!(&a.op, Op::RemoveNetwork { network_id, .. } if network_id == "old")),
        "{got}"
    );
    // Unused by anyone: the newer one just goes.
    inv.containers[0].networks = vec!["new".into()];
    // The container on the duplicate is recreated before the duplicate goes.
    inv.networks[0].created = "2026-01-01T00:00:01Z".into();
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    let got = render(&p);
    assert!(got.contains("~ recreate web @a"), "{got}");
    let rm = p.actions.iter().find(|a| matches!(a.op, Op::RemoveNetwork { .. })).unwrap();
    assert!(matches!(&rm.op, Op::RemoveNetwork { network_id, .. } if network_id == "new"), "{got}");
    let rc = p.actions.iter().find(|a| matches!(a.op, Op::Recreate { .. })).unwrap();
    assert!(rm.after.contains(&rc.id), "{got}");
    // Saved plans keep network actions whole (an action's fields sit beside the op's).
    let saved: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(saved, p);
    // A duplicate someone else's container uses stays, reported.
    inv.containers[0].ours = false;
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert!(!p.actions.iter().any(|a| matches!(a.op, Op::RemoveNetwork { .. })));
    assert!(p.conflicts.iter().any(|c| c.message.contains("exists twice")), "{:?}", p.conflicts);
}

/// A service using every runtime option with a value type of its own
/// (hostname, capabilities, devices, tmpfs, extra hosts), in each form the
/// manifest allows.
const RUNTIME_OPTIONS: &str = r#"kind: App
name: edge
server: a
image: img:1
hostname: edge-1.lan
cap_add: [NET_ADMIN, CAP_SYS_TIME]
cap_drop: [ALL]
devices: [/dev/null, "/dev/zero:/dev/z", "/dev/random:/dev/r:r"]
tmpfs: [/run, "/tmp:size=64m,mode=1777"]
extra_hosts: ["db.lan:10.0.0.7", "v6=fd00:0::1", "gw:host-gateway"]
"#;

/// The spec hash and `tomo.spec` label of such a service are what earlier
/// versions wrote: a change in how these values are held must not recreate
/// every container that uses them after an upgrade.
#[test]
fn the_spec_hash_of_runtime_options_is_unchanged() {
    let d = desired(RUNTIME_OPTIONS);
    let app = &d.apps["edge"];
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services["edge"]);
    let secrets = NoSecrets("no secrets".into());
    let redacted = spec.redacted(&secrets).unwrap().to_string();
    assert_eq!(
        redacted,
        concat!(
            r#"{"app":"edge","cap_add":["NET_ADMIN","CAP_SYS_TIME"],"cap_drop":["ALL"],"command":null,"#,
            r#""container":"edge","cpus":null,"#,
            r#""devices":["/dev/null","/dev/zero:/dev/z","/dev/random:/dev/r:r"],"entrypoint":null,"env":{},"#,
            r#""extra_hosts":["db.lan:10.0.0.7","v6=fd00:0::1","gw:host-gateway"],"healthcheck":null,"#,
            r#""hostname":"edge-1.lan","image":"img:1","init":false,"labels":{},"memory":null,"mounts":[],"#,
            r#""network":"edge","networks":[],"ports":[],"privileged":false,"restart":"unless-stopped","#,
            r#""server":"a","service":"edge","stop_grace_period":null,"sysctls":{},"#,
            r#""tmpfs":["/run","/tmp:size=64m,mode=1777"],"ulimits":{},"user":null,"working_dir":null}"#,
        )
    );
    assert_eq!(spec.hash(&secrets).unwrap(), "d9533df187988e722add2fa48340e5d5");
}

/// `web` of app `web` on `a` as deployed with `env: {A: "1"}`, renamed to `name`.
fn deployed_as(name: &str, state: RunState) -> ContainerObs {
    let old = desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"1\"}\n");
    let app = &old.apps[&Name::parse("web").unwrap()];
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services[&Name::parse("web").unwrap()]);
    let mut c = container(&spec, state);
    c.id = format!("id-{name}");
    c.name = name.to_string();
    c
}

#[test]
fn leftovers_of_an_interrupted_recreate_are_restored_by_actions_before_the_rest() {
    let v1 = desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"1\"}\n");
    let v2 = desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"2\"}\n");
    let with = |containers: Vec<ContainerObs>| {
        let mut inv = converged(&v1, "a");
        inv.containers = containers;
        let mut o = observed(&[("a", inv)]);
        let key = (Name::parse("a").unwrap(), Name::parse("web").unwrap(), Name::parse("web").unwrap());
        o.interrupted.insert(key, 41);
        o
    };
    let restore = |p: &Plan| {
        p.actions
            .iter()
            .find_map(|a| match &a.op {
                Op::Restore { recovery, run, leftover, .. } => Some((recovery.clone(), *run, leftover.clone())),
                _ => None,
            })
            .expect("a restore")
    };
    // Stop-first cut short after the rename: the old one goes back, then the
    // recreate replaces it (the same container, by id).
    let o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited)]);
    check(&v2, &o, &PlanOptions::default(), "~ restore web @a\n~ recreate web @a after [web]");
    let p = plan_with(&v2, &o, &PlanOptions::default());
    assert_eq!(restore(&p), (Recovery::PutBack { replacement: None }, Some(41), "web-tomo-old-abc".into()));
    assert!(matches!(&p.actions[1].op, Op::Recreate { old_id, .. } if old_id == "id-web-tomo-old-abc"));
    assert!(!p.is_destructive(), "a restore loses nothing");
    let text = super::text::plan(&p);
    assert!(text.contains("~ restore web from interrupted run 41: `web-tomo-old-abc`"), "{text}");
    assert!(text.contains("renamed aside and left by an interrupted apply"), "{text}");
    assert!(text.contains("1 to recreate") && text.contains("1 to restore"), "{text}");
    // Nothing else to do when the old spec is still the declared one.
    check(&v1, &o, &PlanOptions::default(), "~ restore web @a");
    // The replacement exists under the name but never ran: it goes, the old one comes back.
    let o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited), deployed_as("web", RunState::Created)]);
    let p = plan_with(&v1, &o, &PlanOptions::default());
    assert_eq!(restore(&p).0, Recovery::PutBack { replacement: Some("id-web".into()) });
    assert_eq!(p.actions.len(), 1, "{}", render(&p));
    // The replacement runs under the name: the old one goes.
    let o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited), deployed_as("web", RunState::Running)]);
    let p = plan_with(&v1, &o, &PlanOptions::default());
    assert_eq!(restore(&p).0, Recovery::RemoveLeftover);
    assert_eq!(p.actions.len(), 1, "{}", render(&p));
    // Start-first: a `-tomo-new` beside the running old one goes, then the recreate runs.
    let o = with(vec![deployed_as("web-tomo-new", RunState::Running), deployed_as("web", RunState::Running)]);
    check(&v2, &o, &PlanOptions::default(), "~ restore web @a\n~ recreate web @a after [web]");
    assert_eq!(restore(&plan_with(&v2, &o, &PlanOptions::default())).0, Recovery::RemoveLeftover);
    // Start-first cut short after the old one was removed: the new one takes the name.
    let o = with(vec![deployed_as("web-tomo-new", RunState::Running)]);
    let p = plan_with(&v1, &o, &PlanOptions::default());
    assert_eq!(restore(&p).0, Recovery::TakeName);
    assert_eq!(p.actions.len(), 1, "{}", render(&p));
    // Without the journal's run the restore still happens, unnamed.
    let mut o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited)]);
    o.interrupted.clear();
    let text = super::text::plan(&plan_with(&v1, &o, &PlanOptions::default()));
    assert!(text.contains("~ restore web: `web-tomo-old-abc`"), "{text}");
    // A container under the name that is not ours is never removed for it.
    let mut foreign = deployed_as("web", RunState::Exited);
    foreign.ours = false;
    let o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited), foreign]);
    let p = plan_with(&v1, &o, &PlanOptions::default());
    assert!(!p.actions.iter().any(|a| matches!(a.op, Op::Restore { .. })), "{}", render(&p));
    assert!(p.conflicts.iter().any(|c| c.object == "web-tomo-old-abc"), "{}", render(&p));
    // An app out of scope keeps its leftover as it is.
    let o = with(vec![deployed_as("web-tomo-old-abc", RunState::Exited)]);
    let other = PlanOptions {
        scope: Scope { apps: vec![Name::parse("shop").unwrap()], ..Scope::default() },
        ..PlanOptions::default()
    };
    assert!(plan_with(&v1, &o, &other).actions.is_empty());
}

#[test]
fn a_restore_of_an_absent_app_comes_before_its_removal_and_its_network() {
    let gone = desired("kind: App\nname: web\nserver: a\nimage: img:1\nstate: absent\n");
    let mut inv = converged(&desired("kind: App\nname: web\nserver: a\nimage: img:1\nenv: {A: \"1\"}\n"), "a");
    inv.containers = vec![deployed_as("web-tomo-old-abc", RunState::Exited)];
    check(
        &gone,
        &observed(&[("a", inv)]),
        &PlanOptions::default(),
        "~ restore web @a\n- remove web @a after [web]\n- remove network web @a after [web, web]",
    );
}

#[test]
fn an_app_of_fifty_services_gets_a_network_that_holds_them() {
    let mut text = String::from("kind: App\nname: big\nserver: a\nservices:\n");
    for i in 0..50 {
        text.push_str(&format!("  s{i}:\n    image: img:1\n"));
    }
    let d = desired(&format!("{text}---\nkind: App\nname: small\nserver: a\nimage: img:1\n"));
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let nets: Vec<(String, String)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::CreateNetwork { name, subnet, .. } => Some((name.clone(), subnet.unwrap().to_string())),
            _ => None,
        })
        .collect();
    // 50 containers (and their replacements during a recreate) need a /25.
    assert_eq!(
        nets,
        [("big".to_string(), "10.213.0.0/25".to_string()), ("small".to_string(), "10.213.0.128/27".to_string())]
    );
}

mod absent;
mod runopts;
#[test]
fn an_absent_service_loses_its_container_and_keeps_its_volumes_the_others_stay() {
    let running = desired(SHOP);
    let inv = converged(&running, "a");
    let shop = SHOP.replace("  worker:\n", "  worker:\n    state: absent\n");
    let d = desired(&shop);
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert_eq!(render(&p).trim(), "- remove shop-worker @a");
    assert_eq!(p.actions[0].reasons, ["declared absent"]);
    // Declared absent from the start: nothing is made for it.
    let fresh = desired(&shop.replace("    image: img:2\n", "    image: img:2\n    volumes: [\"cache:/c\"]\n"));
    let p = plan_with(&fresh, &observed(&[("a", empty())]), &PlanOptions::default());
    let text = render(&p);
    assert!(!text.contains("worker") && !text.contains("img:2") && !text.contains("shop_cache"), "{text}");
    // It is declared: its container is no orphan.
    assert!(p.orphans.is_empty());
}

#[test]
fn a_running_service_cannot_depend_on_an_absent_one() {
    let yaml =
        format!("kind: Server\nname: a\nhost: local\n---\n{}", SHOP.replace("  web:\n", "  web:\n    state: absent\n"));
    let l = manifest::load(
        &Sources::from_texts([("m.yaml", yaml.as_str())]),
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    let errors: Vec<String> = l.diagnostics.iter().map(|d| format!("{}:{}", d.code, d.message)).collect();
    assert!(l.desired.is_none());
    assert!(
        errors.iter().any(|e| e.starts_with("absent-dependency:") && e.contains("`worker` depends on `web`")),
        "{errors:?}"
    );
}

const BINDS: &str = "kind: App\nname: notes\nserver: a\nservices:\n  web:\n    image: img:1\n    volumes: [\"/srv/notes/html:/usr/share/nginx/html:ro\"]\n  db:\n    image: img:1\n    volumes:\n      - type: bind\n        source: /srv/notes/db\n        target: /var/lib/db\n        owner: \"999:999\"\n        mode: \"0750\"\n";

#[test]
fn missing_host_folders_are_created_before_their_containers_with_owner_and_mode() {
    let d = desired(BINDS);
    let mut inv = empty();
    inv.missing_paths = vec!["/srv/notes/db".into(), "/srv/notes/html".into()];
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    let text = render(&p);
    assert!(text.contains("+ dir /srv/notes/db @a\n"), "{text}");
    assert!(text.contains("+ create notes-db @a after [notes, /srv/notes/db]"), "{text}");
    assert!(text.contains("+ create notes-web @a after [notes, /srv/notes/html]"), "{text}");
    let shown = super::text::plan(&p);
    assert!(shown.contains("  + dir /srv/notes/db on a (owner 999:999) (mode 0750): missing\n"), "{shown}");
    assert!(shown.contains("  + dir /srv/notes/html on a: missing\n"), "{shown}");
    // Folders that exist are left alone, and never removed.
    let p = plan_with(&d, &observed(&[("a", converged(&d, "a"))]), &PlanOptions::default());
    assert!(p.actions.is_empty(), "{}", render(&p));
    let gone = desired(&BINDS.replace("server: a\n", "server: a\nstate: absent\n"));
    let p = plan_with(&gone, &observed(&[("a", converged(&d, "a"))]), &PlanOptions::default());
    assert!(!render(&p).contains("/srv"), "{}", render(&p));
}

#[test]
fn a_missing_folder_that_may_not_be_created_is_a_conflict_naming_its_declaration() {
    let d = desired(
        &BINDS.replace("        mode: \"0750\"\n", "        mode: \"0750\"\n        create_host_path: false\n"),
    );
    let mut inv = empty();
    inv.missing_paths = vec!["/srv/notes/db".into()];
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    let text = render(&p);
    assert!(!text.contains("create notes-db") && !text.contains("dir /srv/notes/db"), "{text}");
    assert!(text.contains("+ create notes-web"), "{text}");
    assert_eq!(p.conflicts.len(), 1);
    let c = &p.conflicts[0].message;
    // The manifest's documents start after the two servers' (7 lines).
    assert!(c.contains("`create_host_path: false`") && c.contains("(m.yaml:19)"), "{c}");
}

#[test]
fn bind_folder_options_leave_the_spec_hash_alone() {
    let plain = BINDS.replace("        owner: \"999:999\"\n        mode: \"0750\"\n", "");
    let hash = |yaml: &str| {
        let d = desired(yaml);
        let app = &d.apps["notes"];
        let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services["db"]);
        spec.hash(&NoSecrets(String::new())).unwrap()
    };
    assert_eq!(hash(BINDS), hash(&plain));
    assert_eq!(hash(&BINDS.replace("        mode: \"0750\"\n", "        create_host_path: false\n")), hash(&plain));
    // The same as before folders could be created (no new key in the spec).
    assert_eq!(hash(&plain), "6102ed91329b2d1b56c97434085efd4e");
}

const FILES: &str = "kind: App\nname: proxy\nserver: a\nservices:\n  web:\n    image: img:1\n    files:\n      - target: /etc/nginx/nginx.conf\n        content: \"worker_processes 1;\\n\"\n      - target: /run/secrets/token\n        content: {secret: pw}\n        mode: \"0400\"\n        uid: 101\n  api:\n    image: img:1\n";

/// Secrets that reveal a fixed value, keyed hashes with a fixed key.
struct Fixed(&'static str);

impl crate::model::secret::Secrets for Fixed {
    fn reveal(&self, _: &crate::model::EnvValue) -> Result<crate::model::secret::SecretString, String> {
        Ok(crate::model::secret::SecretString::new(self.0.to_string()))
    }
    fn hash_key(&self) -> Result<[u8; 32], String> {
        Ok([7; 32])
    }
}

#[test]
fn a_changed_file_recreates_its_service_only_and_a_secret_file_never_shows() {
    let d = desired(FILES);
    let o = observed(&[("a", converged_with(&d, "a", &Fixed("s3cret-v1")))]);
    let p = build(&d, &o, &PlanOptions::default(), &Fixed("s3cret-v1")).unwrap();
    assert!(p.actions.is_empty(), "{}", render(&p));
    // The text changes: `web` is recreated, `api` is not.
    let d2 = desired(&FILES.replace("worker_processes 1;", "worker_processes 2;"));
    let p = build(&d2, &o, &PlanOptions::default(), &Fixed("s3cret-v1")).unwrap();
    assert_eq!(render(&p).trim(), "~ recreate proxy-web @a");
    assert_eq!(p.actions[0].reasons, ["files[0].content.sha256 changed"]);
    // The secret changes: recreated too, shown by name only.
    let p = build(&d, &o, &PlanOptions::default(), &Fixed("s3cret-v2")).unwrap();
    assert_eq!(render(&p).trim(), "~ recreate proxy-web @a");
    assert_eq!(p.actions[0].reasons, ["files[1].content: (secret changed)"]);
    let shown = super::text::plan(&p);
    let saved = serde_json::to_string(&p).unwrap();
    assert!(shown.contains("files[1].content: (secret pw, changed)"), "{shown}");
    for text in [&shown, &saved] {
        assert!(!text.contains("s3cret"), "{text}");
    }
    // The file's text stays out of the label: only its hash is there.
    let Op::Recreate { redacted, .. } = &p.actions[0].op else { panic!("a recreate") };
    assert!(!redacted.to_string().contains("worker_processes"), "{redacted}");
}

/// `converged`, with spec hashes and labels made with `secrets`.
fn converged_with(d: &Desired, server: &str, secrets: &dyn crate::model::secret::Secrets) -> Inventory {
    let server = Name::parse(server).unwrap();
    let mut inv = empty();
    for app in d.apps.values().filter(|a| a.servers.contains(&server)) {
        inv.networks.push(NetworkObs {
            id: app.name.to_string(),
            name: app.name.to_string(),
            labels: obj_labels(app.name.as_str()),
            subnet: None,
            created: String::new(),
            options: None,
        });
        for svc in app.services.values() {
            let spec = ContainerSpec::new(&server, app, svc);
            let mut c = container(&ContainerSpec { files: Vec::new(), ..spec.clone() }, RunState::Running);
            let redacted = spec.redacted(secrets).unwrap();
            c.labels.insert(labels::SPEC_HASH.into(), spec::hash_redacted(&redacted));
            c.labels.insert(labels::SPEC.into(), redacted.to_string());
            inv.containers.push(c);
        }
    }
    inv
}

/// The spec hash of a service with a 1 MiB config file is cheap: the file
/// is hashed once, its text never enters the canonical JSON.
#[test]
fn the_spec_hash_of_a_service_with_a_large_file_is_cheap() {
    let yaml = "kind: Server\nname: a\nhost: local\n---\nkind: App\nname: big\nserver: a\nimage: img:1\n\
                files:\n  - {target: /etc/big.txt, source: big.txt}\n";
    let mut sources = Sources::from_texts([("m.yaml", yaml)]);
    sources.beside.insert("big.txt".into(), "x".repeat(1 << 20));
    let opts = LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) };
    let d = manifest::load(&sources, &opts).desired.expect("valid");
    let app = &d.apps["big"];
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services["big"]);
    let secrets = NoSecrets(String::new());
    let start = std::time::Instant::now();
    let runs = 20;
    for _ in 0..runs {
        std::hint::black_box(spec.hash(&secrets).unwrap());
    }
    let each = start.elapsed() / runs;
    // Debug builds are several times slower than release; the bound is for release.
    let limit = if cfg!(debug_assertions) { 100 } else { 5 };
    assert!(each < std::time::Duration::from_millis(limit), "spec hash with a 1 MiB file: {each:?}");
}

/// A container left `created` (never run) is started with what makes it
/// again: it waits for what a create waits for (here its network), and a
/// saved plan read back gets its env-file credentials again.
#[test]
fn a_start_of_a_never_run_container_carries_its_spec_through_a_saved_plan() {
    use crate::model::EnvValue;
    // As `env_file: [db.env]` holding `DB_PASSWORD=hunter2` loads it.
    let mut d = desired("kind: App\nname: db\nserver: a\nimage: img:1\n");
    let svc = d.apps.values_mut().next().unwrap().services.values_mut().next().unwrap();
    let value = crate::model::secret::SecretString::new("hunter2".to_string());
    svc.env.insert("DB_PASSWORD".into(), EnvValue::FromFile { file: "db.env".into(), value });
    let db = d.apps.values().next().unwrap();
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), db, db.services.values().next().unwrap());
    let keyed = Fixed("unused");
    let mut c = container(&ContainerSpec { env: Default::default(), ..spec.clone() }, RunState::Created);
    let redacted = spec.redacted(&keyed).unwrap();
    c.labels.insert(labels::SPEC_HASH.into(), spec::hash_redacted(&redacted));
    c.labels.insert(labels::SPEC.into(), redacted.to_string());
    let mut inv = empty();
    inv.containers.push(c);
    let p = build(&d, &observed(&[("a", inv)]), &PlanOptions::default(), &keyed).unwrap();
    let net = p.actions.iter().find(|a| matches!(a.op, Op::CreateNetwork { .. })).expect("the network is missing");
    let start = p.actions.iter().find(|a| matches!(a.op, Op::Start { again: Some(_), .. })).expect("{p:?}");
    assert!(start.after.contains(&net.id), "the start waits for the network its remake needs: {:?}", start.after);
    let password = |p: &Plan| match &p.actions[start.id].op {
        Op::Start { again: Some(r), .. } => match r.spec.env.get("DB_PASSWORD") {
            Some(EnvValue::FromFile { value, .. }) => value.expose().to_string(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(password(&p), "hunter2");
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("hunter2"), "a saved plan holds no env-file value");
    let mut back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(password(&back), "");
    assert!(fill_env_files(&mut back, &d, &keyed));
    assert_eq!(password(&back), "hunter2");
}
