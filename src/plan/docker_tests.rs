//! The Engine's action in whole plans: ahead of every other action on its
//! server (or, removing, after them), apps of a server without Docker
//! planned as creates, nothing once converged, and the refusals.

use std::collections::BTreeMap;

use super::*;
use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
use crate::model::secret::NoSecrets;
use crate::model::{Desired, Inventory, Name, Observed, ServerState};
use crate::plan::{Op, Plan, PlanError, PlanOptions, build};

const SERVERS: &str = "kind: Server\nname: nas\nhost: nas.lan\nuser: deploy\nsudo: true\ndocker: {ensure: present}\n---\nkind: Server\nname: other\nhost: other.lan\n---\n";
const APPS: &str =
    "kind: App\nname: web\nserver: nas\nimage: img:1\n---\nkind: App\nname: api\nserver: other\nimage: img:1\n";

fn desired(yaml: &str) -> Desired {
    let sources = Sources::from_texts([("m.yaml", yaml)]);
    let l = manifest::load(
        &sources,
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
}

fn facts(installed: Option<&str>, daemon: bool) -> HostFacts {
    let mut text = "tomo-facts 1\n[os-release]\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n[end]\narch=x86_64\nuid=1000\nuser=deploy\ninit=systemd\npm=apt-get\nsudo=yes\n".to_string();
    if let Some(v) = installed {
        text.push_str(&format!(
            "dockerd=Docker version {v}+dfsg1, build 1\npkg=ii|docker.io|{v}+dfsg1-1\nsocket=yes\nsocket_access=yes\n"
        ));
    }
    let mut f = HostFacts::parse(&text);
    f.daemon = daemon;
    f
}

fn observed(nas: Inventory, f: HostFacts) -> Observed {
    let nas_name = Name::parse("nas").unwrap();
    Observed {
        servers: BTreeMap::from([
            (nas_name.clone(), ServerState::Reached(nas)),
            (Name::parse("other").unwrap(), ServerState::Reached(Inventory::default())),
        ]),
        hosts: BTreeMap::from([(nas_name, f)]),
        ..Observed::default()
    }
}

fn plan_of(yaml: &str, o: &Observed) -> Result<Plan, PlanError> {
    build(&desired(yaml), o, &PlanOptions::default(), &NoSecrets(String::new()))
}

#[test]
fn a_missing_engine_is_installed_before_everything_else_on_its_server() {
    let p = plan_of(&format!("{SERVERS}{APPS}"), &observed(Inventory::default(), facts(None, false))).unwrap();
    let engine = p.actions.iter().find(|a| matches!(a.op, Op::DockerEngine(_))).expect("an engine action");
    assert_eq!(engine.server.as_str(), "nas");
    assert_eq!(p.summary().engine, 1);
    for a in p.actions.iter().filter(|a| a.id != engine.id) {
        if a.server.as_str() == "nas" {
            assert!(a.after.contains(&engine.id), "{} {} waits for nothing", a.op.verb(), a.op.object());
        } else {
            assert!(!a.after.contains(&engine.id), "another server's action waits for nas's Engine");
        }
    }
    // The app on that server is created (nothing could be listed there).
    assert!(p.actions.iter().any(|a| a.server.as_str() == "nas" && matches!(a.op, Op::Create { .. })));
    let text = crate::plan::text::plan_with(&p, true);
    assert!(
        text.contains("  + docker-engine latest (apt: docker.io) on nas: not installed on debian 12 (x86_64)"),
        "{text}"
    );
    assert!(text.contains("        $ sudo -n -- env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io"), "{text}");
    assert!(!crate::plan::text::plan(&p).contains("$ sudo"), "commands only with --verbose");
    // The summary counts it.
    assert!(text.contains(" to remove, 1 Docker Engine change(s)"), "{text}");
    // The plan's JSON carries the steps as argument lists.
    let json = serde_json::to_value(&p).unwrap();
    let a = &json["actions"][engine.id];
    assert_eq!(a["op"], "docker_engine");
    assert_eq!(a["change"]["kind"], "install");
    assert_eq!(a["steps"][0]["argv"][2], "apt-get");
    assert_eq!(a["steps"][0]["sudo"], true);
    // A saved plan reads back as it was.
    assert_eq!(serde_json::from_value::<Plan>(json).unwrap(), p);
}

#[test]
fn an_answering_engine_at_an_accepted_version_needs_nothing() {
    let yaml = SERVERS.replace("{ensure: present}", "{ensure: present, version: \"26.*\"}");
    let p = plan_of(&yaml, &observed(Inventory::default(), facts(Some("26.1.5"), true))).unwrap();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn an_older_engine_is_upgraded_and_a_newer_one_refused() {
    let yaml = SERVERS.replace("{ensure: present}", "{ensure: present, version: \"27.*\"}");
    let p = plan_of(&yaml, &observed(Inventory::default(), facts(Some("26.1.5"), true))).unwrap();
    let line = crate::plan::text::plan(&p);
    assert!(line.contains("  ~ docker-engine 26.1 → 27.* (apt: docker.io) on nas"), "{line}");
    let yaml = SERVERS.replace("{ensure: present}", "{ensure: present, version: \"24.0.*\"}");
    let e = plan_of(&yaml, &observed(Inventory::default(), facts(Some("26.1.5"), true))).unwrap_err();
    assert!(
        e.to_string().contains("Docker 26.1.5 is installed, newer than `version: 24.0.*`; tomo does not downgrade"),
        "{e}"
    );
}

#[test]
fn an_engine_not_answering_is_started() {
    let p = plan_of(SERVERS, &observed(Inventory::default(), facts(Some("26.1.5"), false))).unwrap();
    let Op::DockerEngine(e) = &p.actions[0].op else { panic!("{:?}", p.actions) };
    assert_eq!(e.change, EngineChange::Start);
    assert_eq!(e.steps[0].line(), "sudo -n -- systemctl enable --now docker.service");
}

#[test]
fn unmanaged_and_undeclared_blocks_do_nothing() {
    for block in ["", "docker: {socket: /run/docker.sock}\n", "docker: {ensure: unmanaged}\n"] {
        let yaml = format!("kind: Server\nname: nas\nhost: nas.lan\n{block}");
        let p = plan_of(&yaml, &observed(Inventory::default(), facts(None, false))).unwrap();
        assert!(p.actions.is_empty(), "{block}: {:?}", p.actions);
    }
}

#[test]
fn no_sudo_right_is_a_plan_error() {
    let mut f = facts(None, false);
    f.sudo = crate::model::host::SudoRight::No;
    let e = plan_of(SERVERS, &observed(Inventory::default(), f)).unwrap_err();
    assert!(e.to_string().starts_with("server `nas`: the SSH user `deploy` has no right to run `sudo -n`"), "{e}");
    let yaml = SERVERS.replace("sudo: true\n", "");
    let e = plan_of(&yaml, &observed(Inventory::default(), facts(None, false))).unwrap_err();
    assert!(e.to_string().contains("is not root and the server does not say `sudo: true`"), "{e}");
}

#[test]
fn absent_is_refused_under_running_apps_unless_they_go_too() {
    let yaml = format!("{}{APPS}", SERVERS.replace("{ensure: present}", "{ensure: absent}"));
    let d = desired(&yaml);
    let inv = crate::plan::tests::converged(&d, "nas");
    let e = plan_of(&yaml, &observed(inv.clone(), facts(Some("26.1.5"), true))).unwrap_err();
    assert!(e.to_string().contains("`ensure: absent` would remove Docker under running apps (web)"), "{e}");
    // The app removed in the same change: the Engine goes after it.
    let yaml = yaml.replace("image: img:1\n---", "image: img:1\nstate: absent\n---");
    let p = plan_of(&yaml, &observed(inv, facts(Some("26.1.5"), true))).unwrap();
    let engine = p.actions.iter().find(|a| matches!(a.op, Op::DockerEngine(_))).unwrap();
    assert!(p.is_destructive());
    let remove = p.actions.iter().find(|a| matches!(a.op, Op::Remove { .. })).unwrap();
    assert!(engine.after.contains(&remove.id), "{:?}", engine.after);
}
