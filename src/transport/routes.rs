//! A server's IPv4 routes (its main table: interface networks, VPNs, static
//! routes), so that a new network's subnet overlaps none of them. For the
//! local server `/proc/net/route`; for a remote one `ip -4 -j route show`
//! over its SSH connection. Routes that cannot be read are logged and left
//! out: the Engine still refuses a subnet another Docker network has.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use super::ssh::{ExecOptions, SshSession};
use crate::model::subnet::Subnet;

/// The routes of the server behind `session` (the local machine when `None`),
/// without the default route.
pub async fn routes(session: Option<&Arc<SshSession>>) -> Vec<Subnet> {
    let found = match session {
        // A small in-memory file: reading it does not block.
        None => std::fs::read_to_string("/proc/net/route").map_err(|e| e.to_string()).map(|t| proc_route(&t)),
        Some(s) => {
            let opts = ExecOptions { sudo: false, timeout: Duration::from_secs(10) };
            match s.exec(&["ip", "-4", "-j", "route", "show"], opts).await {
                Ok(out) if out.status == Some(0) => ip_json(&out.stdout),
                Ok(out) => Err(format!("`ip route` exited with {:?}: {}", out.status, out.stderr.trim())),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match found {
        Ok(r) => r,
        Err(error) => {
            tracing::warn!(%error, "cannot read the server's routes; subnets are checked against Docker networks only");
            Vec::new()
        }
    }
}

/// Interfaces of Docker's own bridges: their routes are networks the Engine
/// lists (or is creating, and will refuse an overlap with).
fn docker_bridge(dev: &str) -> bool {
    dev == "docker0" || dev.starts_with("br-")
}

/// `/proc/net/route`: destination and mask in hex, in host (little-endian) order.
fn proc_route(text: &str) -> Vec<Subnet> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if docker_bridge(f.first()?) {
                return None;
            }
            // The kernel prints the address as it sits in memory: native order.
            let dest = Ipv4Addr::from(u32::from_str_radix(f.get(1)?, 16).ok()?.to_ne_bytes());
            let mask = u32::from(Ipv4Addr::from(u32::from_str_radix(f.get(7)?, 16).ok()?.to_ne_bytes()));
            let prefix = u8::try_from(mask.leading_ones()).ok()?;
            (prefix > 0).then(|| Subnet::new(dest, prefix)).flatten()
        })
        .collect()
}

/// `ip -4 -j route show`: `[{"dst": "10.0.0.0/24", …}, {"dst": "default", …}]`.
fn ip_json(text: &str) -> Result<Vec<Subnet>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("unreadable `ip route` output: {e}"))?;
    let routes = v.as_array().ok_or("unreadable `ip route` output: not a list")?;
    Ok(routes
        .iter()
        .filter(|r| !r.get("dev").and_then(|d| d.as_str()).is_some_and(docker_bridge))
        .filter_map(|r| r.get("dst")?.as_str())
        .filter_map(Subnet::parse_lenient)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
tun0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
junk\n";
        let r: Vec<String> = proc_route(text).iter().map(|s| s.to_string()).collect();
        assert_eq!(r, ["192.168.0.0/24", "172.17.0.0/16"]);
    }

    #[test]
    fn reads_ip_json() {
        let text = r#"[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"},{"dst":"10.232.5.0/24","dev":"v"},{"dst":"10.9.9.9","dev":"tun0"},{"dst":"10.213.0.0/27","dev":"br-0123456789ab"}]"#;
        let r: Vec<String> = ip_json(text).unwrap().iter().map(|s| s.to_string()).collect();
        assert_eq!(r, ["10.232.5.0/24", "10.9.9.9/32"]);
        assert!(ip_json("{").is_err());
        assert!(ip_json("{}").is_err());
    }
}
