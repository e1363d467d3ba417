//! Service networking on the real Engine: `network_mode` (host,
//! `service:NAME`), `pid` and `ipc` shared with another service, network
//! aliases and fixed addresses, `app_network: false`, network options
//! (`internal`, `driver_opts`) and their drift, and `container_name`.

use crate::fleet::{Fleet, docker, httpd};

/// Names of the networks a container is on.
fn networks_of(f: &Fleet, container: &str) -> Vec<String> {
    let s = f.inspect(container, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}");
    let mut v: Vec<String> = s.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_service_in_another_s_namespaces_shares_them_and_is_recreated_with_it() {
    let f = Fleet::new();
    let manifest = |v: &str| {
        format!(
            "kind: App\nname: {{p}}-vpn\nserver: local\nservices:\n  tunnel:\n    image: {{image}}\n    init: true\n    ipc: shareable\n    env: {{V: \"{v}\"}}\n    command: {}\n  web:\n    image: {{image}}\n    init: true\n    network_mode: service:tunnel\n    pid: service:tunnel\n    ipc: service:tunnel\n    command: [sleep, \"3600\"]\n---\nkind: App\nname: {{p}}-probe\nserver: local\nimage: {{image}}\ninit: true\nnetwork_mode: host\ncommand: [sleep, \"3600\"]\n",
            httpd("tunnelled")
        )
    };
    f.manifest("apps/vpn.yaml", &manifest("1"));
    f.apply();
    let (tunnel, web, probe) = (f.app("vpn-tunnel"), f.app("vpn-web"), f.app("probe"));
    let tunnel_id = f.id(&tunnel);
    let modes = f.inspect(&web, "{{.HostConfig.NetworkMode}} {{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}");
    assert_eq!(modes, format!("container:{tunnel_id} container:{tunnel_id} container:{tunnel_id}"));
    assert_eq!(f.inspect(&tunnel, "{{.HostConfig.IpcMode}}"), "shareable");
    // The same network stack: the tunnel's web server answers on web's localhost.
    let answer = docker(&["exec", &web, "wget", "-q", "-O-", "http://127.0.0.1/"]);
    assert_eq!(answer, "tunnelled");
    assert_eq!(f.inspect(&probe, "{{.HostConfig.NetworkMode}}"), "host");
    assert_eq!(networks_of(&f, &probe), ["host"]);
    f.assert_converged();

    // A change to the tunnel replaces web too: its namespaces went with the old container.
    f.manifest("apps/vpn.yaml", &manifest("2"));
    let plan = f.tomo(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains(&format!("shares the namespace of `{tunnel}`, which is replaced")), "{}", plan.stdout);
    f.apply();
    let new_id = f.id(&tunnel);
    assert_ne!(new_id, tunnel_id);
    assert_eq!(f.inspect(&web, "{{.HostConfig.NetworkMode}}"), format!("container:{new_id}"));
    assert_eq!(f.inspect(&web, "{{.State.Status}}"), "running");
    assert_eq!(docker(&["exec", &web, "wget", "-q", "-O-", "http://127.0.0.1/"]), "tunnelled");
    f.assert_converged();
}

#[test]
fn networks_get_their_options_aliases_and_fixed_addresses() {
    let f = Fleet::new();
    // A block of the pool this test alone is likely to use.
    let third = 120 + std::process::id() % 100;
    let addr = format!("10.213.{third}.10");
    let manifest = |internal: bool| {
        format!(
            "kind: App\nname: {{p}}-lab\nserver: local\nservices:\n  web:\n    image: {{image}}\n    init: true\n    command: {}\n    networks:\n      default: {{aliases: [www]}}\n      backend: {{aliases: [api], ipv4_address: {addr}}}\n  worker:\n    image: {{image}}\n    init: true\n    command: [sleep, \"3600\"]\n    app_network: false\n    networks: [backend]\nnetworks:\n  default: {{internal: {internal}}}\n  backend:\n    driver_opts: {{com.docker.network.driver.mtu: \"1400\"}}\n",
            httpd("lab")
        )
    };
    f.manifest("apps/lab.yaml", &manifest(true));
    f.apply();
    let (app, backend) = (f.app("lab"), f.app("lab_backend"));
    let (web, worker) = (f.app("lab-web"), f.app("lab-worker"));
    assert_eq!(docker(&["network", "inspect", "-f", "{{.Internal}}", &app]), "true");
    assert_eq!(
        docker(&["network", "inspect", "-f", "{{index .Options \"com.docker.network.driver.mtu\"}}", &backend]),
        "1400"
    );
    let subnet = docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &backend]);
    assert_eq!(subnet, format!("10.213.{third}.0/27"));
    let aliases =
        |net: &str| f.inspect(&web, &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").Aliases}}}}"));
    assert!(aliases(&app).contains("\"www\"") && aliases(&app).contains("\"web\""), "{}", aliases(&app));
    assert!(aliases(&backend).contains("\"api\""), "{}", aliases(&backend));
    let ip = f.inspect(&web, &format!("{{{{(index .NetworkSettings.Networks \"{backend}\").IPAddress}}}}"));
    assert_eq!(ip, addr);
    assert_eq!(networks_of(&f, &worker), std::slice::from_ref(&backend));
    // The worker reaches web by its alias on the network they share.
    assert_eq!(docker(&["exec", &worker, "wget", "-q", "-O-", "http://api/"]), "lab");
    f.assert_converged();

    // The app's network declared otherwise: a conflict, the network left alone.
    f.manifest("apps/lab.yaml", &manifest(false));
    let plan = f.tomo(&["plan"]);
    assert!(plan.all().contains("differs from its declaration: internal is true, declared false"), "{}", plan.all());
    let net_id = docker(&["network", "inspect", "-f", "{{.Id}}", &app]);
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert!(r.all().contains("differs from its declaration"), "{}", r.all());
    assert_eq!(docker(&["network", "inspect", "-f", "{{.Id}}", &app]), net_id);
}

#[test]
fn container_name_names_the_container_and_is_unique_per_server() {
    let f = Fleet::new();
    f.manifest(
        "apps/pw.yaml",
        "kind: App\nname: {p}-pw\nserver: local\nimage: {image}\ninit: true\ncontainer_name: {p}-vaultwarden\ncommand: [sleep, \"3600\"]\n",
    );
    f.apply();
    let name = format!("{}-vaultwarden", f.prefix);
    assert_eq!(f.inspect(&name, "{{index .Config.Labels \"tomo.app\"}}"), f.app("pw"));
    assert!(!f.exists(&f.app("pw")));
    f.assert_converged();
    f.manifest("apps/other.yaml", "kind: App\nname: {p}-vaultwarden\nserver: local\nimage: {image}\n");
    f.manifest(
        "apps/pw.yaml",
        "kind: App\nname: {p}-pw\nserver: local\nimage: {image}\ninit: true\ncontainer_name: {p}-vaultwarden\ncommand: [sleep, \"3600\"]\n",
    );
    let r = f.tomo(&["validate"]);
    assert_ne!(r.code, 0);
    let other = f.app("vaultwarden");
    assert!(r.all().contains(&format!("already taken by app `{other}` (apps/other.yaml:2)")), "{}", r.all());
}
