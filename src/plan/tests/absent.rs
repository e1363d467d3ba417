//! Services declared `state: absent` next to the others: what they may be
//! named by, what they still count for (nothing), and namespace joins that
//! stay hard edges and stay on their own server.

use super::*;
use crate::diag::Severity;

fn load(yaml: &str) -> (Option<Desired>, Vec<(Severity, &'static str, String)>) {
    let yaml = format!("kind: Server\nname: a\nhost: local\n---\n{yaml}");
    let l = manifest::load(
        &Sources::from_texts([("m.yaml", yaml.as_str())]),
        &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) },
    );
    let diags = l.diagnostics.iter().map(|d| (d.severity, d.code, d.message.clone())).collect();
    (l.desired, diags)
}

const PROFILE: &str = "kind: App\nname: app\nserver: a\nservices:\n  web:\n    image: img:1\n    depends_on:\n      debug: {condition: started, required: false}\n  debug:\n    image: img:1\n    state: absent\n";

#[test]
fn an_optional_dependency_on_an_absent_service_is_a_warning() {
    let (d, diags) = load(PROFILE);
    assert!(d.is_some(), "{diags:?}");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!((diags[0].0, diags[0].1), (Severity::Warning, "absent-dependency"));
    // Required, it is still an error.
    let (d, diags) = load(&PROFILE.replace(", required: false", ""));
    assert!(d.is_none());
    assert!(diags.iter().any(|(s, c, _)| *s == Severity::Error && *c == "absent-dependency"), "{diags:?}");
}

#[test]
fn joining_the_namespace_of_an_absent_service_is_refused() {
    for field in ["network_mode", "pid", "ipc"] {
        let yaml = format!(
            "kind: App\nname: app\nserver: a\nservices:\n  vpn:\n    image: img:1\n    state: absent\n    ipc: shareable\n  web:\n    image: img:1\n    {field}: service:vpn\n"
        );
        let (d, diags) = load(&yaml);
        assert!(d.is_none(), "{field}");
        let errors: Vec<_> = diags.iter().filter(|(s, _, _)| *s == Severity::Error).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].1, "absent-dependency");
        assert!(errors[0].2.contains(&format!("`{field}: service:vpn`")), "{errors:?}");
        // Both absent: nothing to refuse.
        let both =
            yaml.replace("    image: img:1\n    network_mode", "    image: img:1\n    state: absent\n    network_mode");
        let both = both.replace("    image: img:1\n    pid", "    image: img:1\n    state: absent\n    pid");
        let both =
            both.replace("    image: img:1\n    ipc: service", "    image: img:1\n    state: absent\n    ipc: service");
        assert!(load(&both).0.is_some(), "{field}");
    }
}

const JOINED: &str = "kind: App\nname: vpn\nserver: a\nservices:\n  tunnel:\n    image: img:1\n    env: {V: \"1\"}\n  web:\n    image: img:1\n    network_mode: service:tunnel\n    depends_on:\n      tunnel: {condition: started, required: false}\n";

#[test]
fn a_namespace_joined_is_a_hard_edge_even_when_the_dependency_is_optional() {
    let d = desired(JOINED);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let id = |object: &str, verb: &str| {
        p.actions.iter().find(|a| a.op.object() == object && a.op.verb() == verb).map(|a| a.id).unwrap()
    };
    let web = &p.actions[id("vpn-web", "create")];
    assert!(web.after.contains(&id("vpn-tunnel", "start")), "{}", render(&p));
    assert!(web.after_any.is_empty(), "{web:?}");
    // Down: the joiner is removed first, as a hard edge too.
    let o = observed(&[("a", converged(&d, "a"))]);
    let gone = desired(&JOINED.replace("server: a\n", "server: a\nstate: absent\n"));
    let p = plan_with(&gone, &o, &PlanOptions::default());
    let text = render(&p);
    assert!(text.contains("- remove vpn-tunnel @a after [vpn-web]"), "{text}");
    assert!(p.actions.iter().all(|a| a.after_any.is_empty()), "{text}");
}

#[test]
fn a_namespace_replaced_on_one_server_recreates_its_joiners_there_only() {
    let two = JOINED.replace("server: a\n", "servers: [a, b]\n");
    let v1 = desired(&two);
    let v2 = desired(&two.replace("V: \"1\"", "V: \"2\""));
    // `b` is already at v2; `a` is not.
    let o = observed(&[("a", converged(&v1, "a")), ("b", converged(&v2, "b"))]);
    check(
        &v2,
        &o,
        &PlanOptions::default(),
        "
~ recreate vpn-tunnel @a
~ recreate vpn-web @a after [vpn-tunnel]",
    );
}

#[test]
fn an_absent_service_asks_nothing_of_its_dependencies() {
    let yaml = "kind: App\nname: app\nserver: a\nservices:\n  db:\n    image: img:1\n  web:\n    image: img:1\n    state: absent\n    depends_on: {db: healthy}\n";
    let d = desired(yaml);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let start = p.actions.iter().find(|a| a.op.object() == "app-db" && a.op.verb() == "start").unwrap();
    assert!(matches!(&start.op, Op::Start { wait: Wait::Running, .. }), "{:?}", start.op);
}

#[test]
fn absent_services_take_no_port_address_or_container_name() {
    let ports = "kind: App\nname: app\nserver: a\nservices:\n  web:\n    image: img:1\n    ports: [\"8080:80\"]\n  old:\n    image: img:1\n    state: absent\n    ports: [\"8080:80\"]\n";
    let addresses = "kind: App\nname: app\nserver: a\nservices:\n  web:\n    image: img:1\n    networks:\n      backend: {ipv4_address: 10.213.1.10}\n  old:\n    image: img:1\n    state: absent\n    networks:\n      backend: {ipv4_address: 10.213.1.10}\n";
    let names = "kind: App\nname: app\nserver: a\nservices:\n  web:\n    image: img:1\n  old:\n    image: img:1\n    state: absent\n---\nkind: App\nname: new\nserver: a\nimage: img:1\ncontainer_name: app-old\n";
    for yaml in [ports, addresses, names] {
        let (d, diags) = load(yaml);
        assert!(d.is_some(), "{yaml}\n{diags:?}");
        assert!(diags.is_empty(), "{yaml}\n{diags:?}");
        // Declared running, each is refused.
        let running = yaml.replace("    state: absent\n", "");
        assert!(load(&running).0.is_none(), "{running}");
    }
}

#[test]
fn the_basis_ignores_where_a_host_folder_is_declared() {
    let bind = "kind: App\nname: notes\nserver: a\nimage: img:1\nvolumes:\n  - type: bind\n    source: /srv/notes/db\n    target: /var/lib/db\n    mode: \"0750\"\n";
    let d1 = desired(bind);
    let d2 = desired(&bind.replace("server: a\n", "server: a\n# the database\n"));
    let o = observed(&[("a", empty())]);
    assert_ne!(
        d1.apps["notes"].services["notes"].host_folders["/srv/notes/db"].declared_at,
        d2.apps["notes"].services["notes"].host_folders["/srv/notes/db"].declared_at
    );
    assert_eq!(basis(&d1, &o, &PlanOptions::default()), basis(&d2, &o, &PlanOptions::default()));
}
