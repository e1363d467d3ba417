//! Value types of a container's runtime options, written as strings in
//! manifests: host name, capability, device mapping, tmpfs mount and extra
//! host entry.
//!
//! Each is parsed once, by `parse`, and keeps the text it was written as:
//! that text is what it serialises to (so spec hashes and plan files read
//! the same as when these were plain strings), and `Display` shows it. The
//! parts Docker needs are read through accessors.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ports::check_container_path;

/// Serialises a value as its written text and deserialises it through `parse`.
macro_rules! written_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t>::parse(s)
            }
        }
    };
}

/// A container's host name: letters, digits, '-' and '.', 1-63 characters,
/// not starting with '-'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

pub const HOSTNAME_RULE: &str = "letters, digits, '-' and '.', at most 63 characters";

impl Hostname {
    pub fn parse(s: &str) -> Result<Hostname, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !s.starts_with('-');
        if !ok {
            return Err(format!("`{}` is not a valid host name", s.escape_default()));
        }
        Ok(Hostname(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

written_as_text!(Hostname);

/// A Linux capability, written with or without the `CAP_` prefix
/// (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`): uppercase letters, digits and '_'.
/// Kept as written (Docker takes both forms); `name` is the bare name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(String);

pub const CAPABILITY_RULE: &str = "capabilities are uppercase, e.g. `NET_ADMIN` or `ALL`";

impl Capability {
    pub fn parse(s: &str) -> Result<Capability, String> {
        let bare = s.strip_prefix("CAP_").unwrap_or(s);
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(format!("`{}` is not a capability name", s.escape_default()));
        }
        Ok(Capability(s.to_string()))
    }
    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Without the `CAP_` prefix: `NET_ADMIN` for `CAP_NET_ADMIN`.
    pub fn name(&self) -> &str {
        self.0.strip_prefix("CAP_").unwrap_or(&self.0)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

written_as_text!(Capability);

/// A host device given to a container: `/dev/HOST[:/dev/CONTAINER[:PERMS]]`.
/// The container path defaults to the host path, the cgroup permissions to `rwm`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceMapping {
    host: String,
    container: Option<String>,
    perms: Option<String>,
}

pub const DEVICE_RULE: &str = "`/dev/HOST[:/dev/CONTAINER[:rwm]]`";

impl DeviceMapping {
    pub fn parse(s: &str) -> Result<DeviceMapping, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if !s.starts_with('/') || parts.len() > 3 {
            return Err(format!("`{}` is not a device mapping", s.escape_default()));
        }
        Ok(DeviceMapping {
            host: parts[0].to_string(),
            container: parts.get(1).map(|p| p.to_string()),
            perms: parts.get(2).map(|p| p.to_string()),
        })
    }
    /// The device's path on the host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Its path in the container (the host path unless given).
    pub fn container(&self) -> &str {
        self.container.as_deref().unwrap_or(&self.host)
    }
    /// The cgroup permissions (`rwm` unless given).
    pub fn perms(&self) -> &str {
        self.perms.as_deref().unwrap_or("rwm")
    }
}

impl fmt::Display for DeviceMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        for part in [&self.container, &self.perms].into_iter().flatten() {
            write!(f, ":{part}")?;
        }
        Ok(())
    }
}

written_as_text!(DeviceMapping);

/// A tmpfs mount: `/path[:options]`, the options as Docker takes them
/// (`size=64m,mode=1777`). The path is an absolute container path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TmpfsMount {
    target: String,
    options: Option<String>,
}

pub const TMPFS_RULE: &str = "`/path[:options]`";

impl TmpfsMount {
    pub fn parse(s: &str) -> Result<TmpfsMount, String> {
        let (target, options) = match s.split_once(':') {
            Some((t, o)) => (t, Some(o.to_string())),
            None => (s, None),
        };
        check_container_path(target)?;
        Ok(TmpfsMount { target: target.to_string(), options })
    }
    /// The container path.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The mount options (empty when none are given).
    pub fn options(&self) -> &str {
        self.options.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for TmpfsMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)?;
        match &self.options {
            Some(o) => write!(f, ":{o}"),
            None => Ok(()),
        }
    }
}

written_as_text!(TmpfsMount);

/// An extra `/etc/hosts` entry: `NAME:IP` or `NAME=IP`, the IP an address
/// (kept as written) or `host-gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtraHost {
    name: String,
    /// `:` or `=`, as written.
    separator: char,
    ip: String,
}

pub const EXTRA_HOST_RULE: &str = "`HOST:IP`, e.g. `db.lan:10.0.0.7`";

impl ExtraHost {
    pub fn parse(s: &str) -> Result<ExtraHost, String> {
        let bad = || format!("`{}` is not a host entry", s.escape_default());
        let separator = s.chars().find(|c| *c == '=' || *c == ':').ok_or_else(bad)?;
        let (name, ip) = s.split_once(separator).ok_or_else(bad)?;
        if name.is_empty() || !(ip.parse::<IpAddr>().is_ok() || ip == "host-gateway") {
            return Err(bad());
        }
        Ok(ExtraHost { name: name.to_string(), separator, ip: ip.to_string() })
    }
    /// The host name the entry defines.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The address as written, or `host-gateway`.
    pub fn ip(&self) -> &str {
        &self.ip
    }
    /// The entry as Docker takes it: `NAME:IP`.
    pub fn docker_entry(&self) -> String {
        format!("{}:{}", self.name, self.ip)
    }
}

impl fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.separator, self.ip)
    }
}

written_as_text!(ExtraHost);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value prints (and serialises) exactly as written.
    fn round_trips<T: fmt::Display + Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(
        parse: fn(&str) -> Result<T, String>,
        texts: &[&str],
    ) {
        for text in texts {
            let v = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(v.to_string(), *text);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        }
    }

    #[test]
    fn host_names() {
        round_trips(Hostname::parse, &["web", "edge-1.lan", "A1", &"a".repeat(63)]);
        for bad in ["", "-web", "a b", "a_b", "é", &"a".repeat(64)] {
            assert!(Hostname::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Hostname>("\"-web\"").is_err());
    }

    #[test]
    fn capabilities() {
        round_trips(Capability::parse, &["NET_ADMIN", "CAP_SYS_TIME", "ALL", "CAP_ALL"]);
        assert_eq!(Capability::parse("CAP_NET_ADMIN").unwrap().name(), "NET_ADMIN");
        assert_eq!(Capability::parse("NET_ADMIN").unwrap().name(), "NET_ADMIN");
        for bad in ["", "CAP_", "net_admin", "SYS ADMIN", "NET-ADMIN"] {
            assert!(Capability::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn devices() {
        round_trips(DeviceMapping::parse, &["/dev/null", "/dev/zero:/dev/z", "/dev/random:/dev/r:r", "/dev/a:"]);
        let d = DeviceMapping::parse("/dev/null").unwrap();
        assert_eq!((d.host(), d.container(), d.perms()), ("/dev/null", "/dev/null", "rwm"));
        let d = DeviceMapping::parse("/dev/random:/dev/r:r").unwrap();
        assert_eq!((d.host(), d.container(), d.perms()), ("/dev/random", "/dev/r", "r"));
        for bad in ["", "dev/sda", "/dev/a:/dev/b:rwm:x"] {
            assert!(DeviceMapping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_mounts() {
        round_trips(TmpfsMount::parse, &["/run", "/tmp:size=64m,mode=1777", "/tmp:", "/x:a:b"]);
        let t = TmpfsMount::parse("/tmp:size=64m").unwrap();
        assert_eq!((t.target(), t.options()), ("/tmp", "size=64m"));
        assert_eq!(TmpfsMount::parse("/run").unwrap().options(), "");
        for bad in ["", "run", "run:size=1m", "/a/../b", ":x"] {
            assert!(TmpfsMount::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_hosts() {
        round_trips(
            ExtraHost::parse,
            &["db.lan:10.0.0.7", "v6=fd00:0::1", "gw:host-gateway", "v6:fd00::1", "a=1.2.3.4"],
        );
        let h = ExtraHost::parse("v6=fd00:0::1").unwrap();
        assert_eq!((h.name(), h.ip(), h.docker_entry().as_str()), ("v6", "fd00:0::1", "v6:fd00:0::1"));
        for bad in ["", "db.lan", ":10.0.0.1", "db:10.0.0.300", "db=", "a:b=1.2.3.4", "a=b:1.2.3.4"] {
            assert!(ExtraHost::parse(bad).is_err(), "{bad}");
        }
    }
}
