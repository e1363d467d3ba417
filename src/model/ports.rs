//! Published ports and mounts: parsing the short syntaxes users write
//! (`127.0.0.1:8080:80/tcp`, `data:/var/lib/x:ro`) into typed values.

use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::values::Name;
pub use crate::model::{MountKind, Protocol};

/// An inclusive range of port numbers (a single port is `start == end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(p: u16) -> Self {
        Self { start: p, end: p }
    }
    pub fn len(&self) -> u32 {
        u32::from(self.end - self.start) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn overlaps(&self, o: &PortRange) -> bool {
        self.start <= o.end && o.start <= self.end
    }

    pub fn parse(s: &str) -> Result<PortRange, String> {
        let one = |p: &str| -> Result<u16, String> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(n) => Err(format!("port {n} is out of range (1-65535)")),
                Err(_) => Err(format!("`{}` is not a port number", p.escape_default())),
            }
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a > b {
                    return Err(format!("range `{s}` runs backwards"));
                }
                Ok(PortRange { start: a, end: b })
            }
            None => Ok(PortRange::single(one(s)?)),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end { write!(f, "{}", self.start) } else { write!(f, "{}-{}", self.start, self.end) }
    }
}

/// A container port, optionally published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct PortMapping {
    /// Host address to bind; none means all addresses.
    pub host_ip: Option<IpAddr>,
    /// Host port(s); none means not published (or a random port when `host_ip` is set).
    pub host: Option<PortRange>,
    pub container: PortRange,
    pub protocol: Protocol,
}

pub const PORT_RULE: &str =
    "`[IP:]HOST:CONTAINER[/tcp|udp]`, e.g. `8080:80`, `127.0.0.1:8443:443/tcp`, `53:53/udp` or `8000-8010:8000-8010`";

impl PortMapping {
    /// Parses the short syntax.
    pub fn parse(s: &str) -> Result<PortMapping, String> {
        let bad = |why: String| Err(format!("`{}` is not a valid port: {why}", s.escape_default()));
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some((_, p)) => {
                return bad(format!("protocol `{}` is not `tcp` or `udp`", p.escape_default()));
            }
            None => (s, Protocol::Tcp),
        };
        let (ip, rest) = if let Some(after) = spec.strip_prefix('[') {
            let Some((ip6, rest)) = after.split_once(']') else {
                return bad("unclosed `[` around an IPv6 address".into());
            };
            let Some(rest) = rest.strip_prefix(':') else {
                return bad("expected `:` after the IPv6 address".into());
            };
            (Some(ip6), rest)
        } else {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 | 2 => (None, spec),
                3 => (Some(parts[0]), &spec[parts[0].len() + 1..]),
                _ => {
                    return bad("too many `:`; write IPv6 addresses in brackets, e.g. `[::1]:8080:80`".into());
                }
            }
        };
        let host_ip = match ip {
            None => None,
            Some(ip) => match ip.parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => return bad(format!("`{}` is not an IP address", ip.escape_default())),
            },
        };
        let (host, container) = match rest.split_once(':') {
            Some(("", c)) => (None, c),
            Some((h, c)) => (Some(h), c),
            None if host_ip.is_some() => {
                return bad("an IP address needs `IP:HOST:CONTAINER`".into());
            }
            None => (None, rest),
        };
        let container = match PortRange::parse(container) {
            Ok(c) => c,
            Err(e) => return bad(e),
        };
        let host = match host.map(PortRange::parse).transpose() {
            Ok(h) => h,
            Err(e) => return bad(e),
        };
        if let Some(h) = host
            && h.len() != container.len()
        {
            return bad(format!("host range {h} and container range {container} have different lengths"));
        }
        Ok(PortMapping { host_ip, host, container, protocol })
    }

    /// Whether this mapping binds a host port.
    pub fn is_published(&self) -> bool {
        self.host.is_some()
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        if let Some(h) = self.host {
            write!(f, "{h}:")?;
        } else if self.host_ip.is_some() {
            f.write_str(":")?;
        }
        write!(f, "{}", self.container)?;
        if self.protocol == Protocol::Udp {
            f.write_str("/udp")?;
        }
        Ok(())
    }
}

/// Where a mount's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// A named volume of the app (`<app>_<name>` on the server unless declared otherwise).
    Volume(Name),
    /// An absolute path on the server.
    Bind(String),
    /// An anonymous volume.
    Anonymous,
    /// A tmpfs (memory) mount.
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

pub const MOUNT_RULE: &str =
    "`NAME:/path`, `/host/path:/path` or `/path`, each optionally with `:ro`, e.g. `data:/var/lib/app:ro`";

impl Mount {
    pub fn parse(s: &str) -> Result<Mount, String> {
        let bad = |why: String| Err(format!("`{}` is not a valid volume: {why}", s.escape_default()));
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, opts) = match parts.as_slice() {
            [t] => (None, *t, None),
            [t, o] if o.split(',').all(|w| matches!(w, "ro" | "rw" | "z" | "Z")) => (None, *t, Some(*o)),
            [src, t] => (Some(*src), *t, None),
            [src, t, o] => (Some(*src), *t, Some(*o)),
            _ => return bad(format!("too many `:`; write {MOUNT_RULE}")),
        };
        let mut read_only = false;
        for o in opts.into_iter().flat_map(|o| o.split(',')) {
            match o {
                "ro" => read_only = true,
                "rw" | "z" | "Z" => {}
                other => {
                    return bad(format!("unknown option `{}` (use `ro` or `rw`)", other.escape_default()));
                }
            }
        }
        if let Err(e) = check_container_path(target) {
            return bad(e);
        }
        let source = match source {
            None => MountSource::Anonymous,
            Some(src) if src.starts_with('/') => match check_host_path(src) {
                Ok(p) => MountSource::Bind(p),
                Err(e) => return bad(e),
            },
            Some(src) if src.starts_with('.') || src.starts_with('~') => {
                return bad(format!(
                    "host path `{src}` is relative; servers have no manifest folder, so write an absolute path"
                ));
            }
            Some(src) => match Name::parse(src) {
                Ok(n) => MountSource::Volume(n),
                Err(e) => return bad(format!("volume name: {e}")),
            },
        };
        Ok(Mount { source, target: target.to_string(), read_only })
    }
}

/// A container path must be absolute and free of `..`.
pub fn check_container_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("container path `{}` must be absolute (start with `/`)", p.escape_default()));
    }
    check_host_path(p).map(|_| ())
}

fn check_host_path(p: &str) -> Result<String, String> {
    if p.split('/').any(|c| c == "..") {
        return Err(format!("path `{}` must not contain `..`", p.escape_default()));
    }
    if p.chars().any(char::is_control) {
        return Err("path contains control characters".into());
    }
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortMapping {
        PortMapping::parse(s).unwrap()
    }

    #[test]
    fn ports_short_forms() {
        assert_eq!(p("8080:80").host, Some(PortRange::single(8080)));
        assert_eq!(p("80").host, None);
        assert_eq!(p("53:53/udp").protocol, Protocol::Udp);
        assert_eq!(p("127.0.0.1:8443:443/tcp").host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p("[::1]:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p("8000-8010:9000-9010").container, PortRange { start: 9000, end: 9010 });
        assert_eq!(p("127.0.0.1::80").host, None);
        for s in ["127.0.0.1:8443:443", "[::1]:8080:80", "53:53/udp", "80", "8000-8010:8000-8010"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn ports_invalid() {
        for (s, why) in [
            ("80800:80", "out of range"),
            ("0:80", "out of range"),
            ("8080:http", "not a port number"),
            ("8080:80/sctp", "protocol"),
            ("1.2.3:8080:80", "not an IP"),
            ("8000-8010:80", "different lengths"),
            ("9-1:9-1", "backwards"),
            ("::1:8080:80", "brackets"),
            ("", "not a port number"),
        ] {
            let e = PortMapping::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn mounts() {
        let m = Mount::parse("data:/var/lib/x:ro").unwrap();
        assert_eq!(m.source, MountSource::Volume(Name::parse("data").unwrap()));
        assert!(m.read_only);
        assert_eq!(Mount::parse("/srv:/files").unwrap().source, MountSource::Bind("/srv".into()));
        assert_eq!(Mount::parse("/cache").unwrap().source, MountSource::Anonymous);
        for (s, why) in [
            ("data:var/lib", "absolute"),
            ("./x:/y", "relative"),
            ("Data:/x", "uppercase"),
            ("data:/x:rx", "unknown option"),
            ("/a/../b:/x", "`..`"),
            ("a:b:c:d", "too many"),
        ] {
            let e = Mount::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
