//! Plans of services that share namespaces or set networking options:
//! ordering and recreating with the service whose namespace they join, the
//! app network's options and drift, fixed addresses, container names; and
//! the spec hash of services using none of these, pinned.

use super::tests::{check, converged, desired, empty, observed, plan_with, render};
use super::*;
use crate::model::NetworkOptions;
use crate::model::secret::NoSecrets;
use crate::model::spec::ContainerSpec;
use crate::model::subnet::Subnet;

const VPN: &str = "kind: App\nname: vpn\nserver: a\nservices:\n  tunnel:\n    image: img:1\n    env: {V: \"1\"}\n  web:\n    image: img:1\n    network_mode: service:tunnel\n  other:\n    image: img:1\n";

#[test]
fn a_service_in_another_s_namespace_comes_after_it() {
    let d = desired(VPN);
    check(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        "
+ create network vpn @a
+ create vpn-other @a after [vpn]
> start vpn-other @a after [vpn-other]
+ create vpn-tunnel @a after [vpn]
> start vpn-tunnel @a after [vpn-tunnel]
+ create vpn-web @a after [vpn-tunnel]
> start vpn-web @a after [vpn-tunnel, vpn-web]",
    );
}

#[test]
fn recreating_a_service_recreates_those_in_its_namespace_with_a_reason() {
    let v1 = desired(VPN);
    let v2 = desired(&VPN.replace("V: \"1\"", "V: \"2\""));
    let o = observed(&[("a", converged(&v1, "a"))]);
    check(
        &v2,
        &o,
        &PlanOptions::default(),
        "
~ recreate vpn-tunnel @a
~ recreate vpn-web @a after [vpn-tunnel]",
    );
    let p = plan_with(&v2, &o, &PlanOptions::default());
    let web = p.actions.iter().find(|a| a.op.object() == "vpn-web").unwrap();
    assert_eq!(web.reasons, ["shares the namespace of `vpn-tunnel`, which is replaced"]);
    // Removing the app takes the dependent down first.
    let gone = desired(&VPN.replace("server: a\n", "server: a\nstate: absent\n"));
    let p = plan_with(&gone, &o, &PlanOptions::default());
    let text = render(&p);
    assert!(text.contains("- remove vpn-tunnel @a after [vpn-web]"), "{text}");
}

#[test]
fn host_mode_apps_need_no_network_of_their_own() {
    let d = desired("kind: App\nname: probe\nserver: a\nimage: img:1\nnetwork_mode: host\npid: host\n");
    check(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        "+ create probe @a\n> start probe @a after [probe]",
    );
    let app = &d.apps["probe"];
    let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services["probe"]);
    assert_eq!(
        (spec.network.as_str(), spec.network_mode.as_deref(), spec.pid.as_deref()),
        ("", Some("host"), Some("host"))
    );
}

const OPTIONS: &str = "kind: App\nname: lab\nserver: a\nservices:\n  web:\n    image: img:1\n    networks:\n      backend: {ipv4_address: 10.213.1.10}\nnetworks:\n  default: {internal: true}\n  backend: {driver_opts: {com.docker.network.bridge.enable_icc: \"true\"}}\n";

#[test]
fn networks_are_created_with_their_options_and_fixed_addresses() {
    let d = desired(OPTIONS);
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let nets: Vec<(String, Option<Subnet>, Option<NetworkPool>, NetworkOptions)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::CreateNetwork { name, subnet, pool, options } => Some((name.clone(), *subnet, *pool, options.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(nets.len(), 2, "{}", render(&p));
    assert_eq!(nets[0].0, "lab");
    assert!(nets[0].3.internal);
    // The backend's block holds the address asked for, and is kept at apply.
    assert_eq!(nets[1].0, "lab_backend");
    assert_eq!(nets[1].1, Some(Subnet::parse("10.213.1.0/27").unwrap()));
    assert_eq!(nets[1].2, None);
    assert_eq!(nets[1].3.driver_opts["com.docker.network.bridge.enable_icc"], "true");
    let text = super::text::plan(&p);
    assert!(text.contains("create network (10.213.0.0/27, internal)"), "{text}");
    assert!(text.contains("create network (10.213.1.0/27, com.docker.network.bridge.enable_icc=true)"), "{text}");
    let saved: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(saved, p);
}

#[test]
fn a_network_that_differs_from_its_declaration_is_a_conflict_never_replaced() {
    let d = desired(OPTIONS);
    let mut inv = converged(&d, "a");
    inv.networks[0].options = Some(NetworkOptions::default());
    let p = plan_with(&d, &observed(&[("a", inv.clone())]), &PlanOptions::default());
    assert!(!p.actions.iter().any(|a| matches!(a.op, Op::RemoveNetwork { .. })), "{}", render(&p));
    let c = p.conflicts.iter().find(|c| c.object == "lab").expect("a conflict");
    assert!(c.message.contains("internal is false, declared true"), "{}", c.message);
    // As declared: no conflict.
    inv.networks[0].options = Some(NetworkOptions { internal: true, ..NetworkOptions::default() });
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert!(!p.conflicts.iter().any(|c| c.object == "lab"), "{}", render(&p));
}

#[test]
fn a_fixed_address_outside_the_pool_or_the_subnet_is_a_conflict() {
    let d = desired(&OPTIONS.replace("10.213.1.10", "192.168.5.5"));
    let p = plan_with(&d, &observed(&[("a", empty())]), &PlanOptions::default());
    let c = p.conflicts.iter().find(|c| c.object == "lab_backend").expect("a conflict");
    assert!(c.message.contains("choose an address in it"), "{}", c.message);
    assert!(!render(&p).contains("create network lab_backend"));
    // An existing network whose subnet does not hold it.
    let d = desired(OPTIONS);
    let mut inv = converged(&d, "a");
    let mut backend = inv.networks[0].clone();
    backend.name = "lab_backend".into();
    backend.id = "lab_backend".into();
    backend.options = None;
    backend.subnet = Some(Subnet::parse("10.213.2.0/27").unwrap());
    inv.networks.push(backend);
    let p = plan_with(&d, &observed(&[("a", inv)]), &PlanOptions::default());
    assert!(p.conflicts.iter().any(|c| c.message.contains("which is outside it")), "{}", render(&p));
}

#[test]
fn container_name_names_the_container() {
    let d = desired("kind: App\nname: pw\nserver: a\nimage: img:1\ncontainer_name: vaultwarden\n");
    check(
        &d,
        &observed(&[("a", empty())]),
        &PlanOptions::default(),
        "+ create network pw @a\n+ create vaultwarden @a after [pw]\n> start vaultwarden @a after [vaultwarden]",
    );
    let o = observed(&[("a", converged(&d, "a"))]);
    assert!(plan_with(&d, &o, &PlanOptions::default()).actions.is_empty());
}

/// Services with extra networks, in list or map form (without options),
/// hash as they did before these fields existed.
#[test]
fn the_spec_hash_of_extra_networks_is_unchanged() {
    let list = "kind: App\nname: shop\nserver: a\nservices:\n  web:\n    image: img:1\n    networks: [backend]\n";
    let map = "kind: App\nname: shop\nserver: a\nservices:\n  web:\n    image: img:1\n    networks: {backend: }\n";
    let empty_map = "kind: App\nname: shop\nserver: a\nservices:\n  web:\n    image: img:1\n    networks: {backend: {}}\n    app_network: true\n    network_mode: bridge\n";
    let secrets = NoSecrets("no secrets".into());
    for yaml in [list, map, empty_map] {
        let d = desired(yaml);
        let app = &d.apps["shop"];
        let spec = ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services["web"]);
        assert_eq!(
            spec.redacted(&secrets).unwrap().to_string(),
            concat!(
                r#"{"app":"shop","cap_add":[],"cap_drop":[],"command":null,"container":"shop-web","cpus":null,"#,
                r#""devices":[],"entrypoint":null,"env":{},"extra_hosts":[],"healthcheck":null,"hostname":null,"#,
                r#""image":"img:1","init":false,"labels":{},"memory":null,"mounts":[],"network":"shop","#,
                r#""networks":["shop_backend"],"ports":[],"privileged":false,"restart":"unless-stopped","#,
                r#""server":"a","service":"web","stop_grace_period":null,"sysctls":{},"tmpfs":[],"ulimits":{},"#,
                r#""user":null,"working_dir":null}"#,
            ),
            "{yaml}"
        );
        assert_eq!(spec.hash(&secrets).unwrap(), "59eac9b57336410b8e92f8e7390d02e2", "{yaml}");
    }
}
