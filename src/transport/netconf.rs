//! How a container joins a network, as the Engine takes it: the service's
//! name and its declared aliases, and its fixed address.

use bollard::models::{EndpointIpamConfig, EndpointSettings};

use crate::model::spec::ContainerSpec;

/// The endpoint of `spec`'s container on `network` (a Docker network name
/// of the spec), this installation's network by `network_id`.
pub(super) fn endpoint(spec: &ContainerSpec, network: &str, network_id: Option<String>) -> EndpointSettings {
    let declared = spec.endpoints.get(network);
    let mut aliases = vec![spec.service.to_string()];
    aliases.extend(declared.into_iter().flat_map(|e| e.aliases.iter().cloned()).filter(|a| a != spec.service.as_str()));
    EndpointSettings {
        aliases: Some(aliases),
        network_id,
        ipam_config: declared
            .and_then(|e| e.ipv4_address)
            .map(|ip| EndpointIpamConfig { ipv4_address: Some(ip.to_string()), ..Default::default() }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{self, LoadOptions, SecretCheck, Sources};
    use crate::model::spec::ContainerSpec;
    use crate::model::{Desired, Name};
    use crate::transport::docker::create_body;

    fn desired(yaml: &str) -> Desired {
        let sources = Sources::from_texts([("m.yaml", yaml)]);
        let opts = LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) };
        let l = manifest::load(&sources, &opts);
        l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
    }

    fn body(d: &Desired, app: &str, svc: &str, network: &str) -> serde_json::Value {
        let app = &d.apps[app];
        let spec = ContainerSpec::new(&Name::parse("local").unwrap(), app, &app.services[svc]);
        let secrets = crate::model::secret::NoSecrets("no secrets".into());
        let b = create_body(&spec, (network.into(), None), "h", &serde_json::json!({}), &secrets, "i").unwrap();
        serde_json::to_value(b).unwrap()
    }

    const STACK: &str = r#"kind: App
name: stack
server: local
services:
  vpn:
    image: img:1
    ipc: shareable
    networks:
      default: {aliases: [tunnel]}
      backend: {aliases: [gw], ipv4_address: 10.213.0.40}
  web:
    image: img:1
    network_mode: service:vpn
    pid: service:vpn
    ipc: service:vpn
  probe:
    image: img:1
    network_mode: host
    pid: host
  worker:
    image: img:1
    app_network: false
    networks: [backend]
"#;

    /// A service in another's namespaces names that service's container
    /// and joins no network; host mode likewise.
    #[test]
    fn namespace_modes_reach_the_host_config() {
        let d = desired(STACK);
        let web = body(&d, "stack", "web", "");
        let hc = &web["HostConfig"];
        assert_eq!(hc["NetworkMode"], "container:stack-vpn");
        assert_eq!(hc["PidMode"], "container:stack-vpn");
        assert_eq!(hc["IpcMode"], "container:stack-vpn");
        assert_eq!(web["NetworkingConfig"]["EndpointsConfig"], serde_json::json!({}));
        let probe = body(&d, "stack", "probe", "");
        assert_eq!(probe["HostConfig"]["NetworkMode"], "host");
        assert_eq!(probe["HostConfig"]["PidMode"], "host");
        assert_eq!(probe["HostConfig"].get("IpcMode"), None);
        let vpn = body(&d, "stack", "vpn", "stack");
        assert_eq!(vpn["HostConfig"]["IpcMode"], "shareable");
    }

    /// Aliases join the service's own name on each network; a fixed
    /// address goes to the endpoint's IPAM config.
    #[test]
    fn aliases_and_fixed_addresses_reach_the_endpoints() {
        let d = desired(STACK);
        let vpn = body(&d, "stack", "vpn", "stack");
        let ep = &vpn["NetworkingConfig"]["EndpointsConfig"]["stack"];
        assert_eq!(ep["Aliases"], serde_json::json!(["vpn", "tunnel"]));
        assert_eq!(ep.get("IPAMConfig"), None);
        let app = &d.apps["stack"];
        let spec = ContainerSpec::new(&Name::parse("local").unwrap(), app, &app.services["vpn"]);
        assert_eq!(spec.networks, vec!["stack_backend".to_string()]);
        let backend = serde_json::to_value(super::endpoint(&spec, "stack_backend", Some("id".into()))).unwrap();
        assert_eq!(backend["Aliases"], serde_json::json!(["vpn", "gw"]));
        assert_eq!(backend["IPAMConfig"]["IPv4Address"], "10.213.0.40");
        assert_eq!(backend["NetworkID"], "id");
        // Off the app's network: created on its first listed network.
        let worker = ContainerSpec::new(&Name::parse("local").unwrap(), app, &app.services["worker"]);
        assert_eq!((worker.network.as_str(), worker.networks.len()), ("stack_backend", 0));
    }
}
