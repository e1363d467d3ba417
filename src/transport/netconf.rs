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
