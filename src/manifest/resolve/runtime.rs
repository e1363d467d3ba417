//! A service's runtime options: host name, capabilities, devices, tmpfs
//! mounts, sysctls, ulimits, extra hosts and resource limits.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::service::scalar_text;
use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::ports::check_container_path;
use crate::model::values::SIZE_RULE;
use crate::model::*;

/// The runtime options of one service, each checked.
pub(super) struct Runtime {
    pub hostname: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub devices: Vec<String>,
    pub tmpfs: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub extra_hosts: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub(super) fn runtime(&mut self, at: At<'a>, base: &FieldPath, s: &raw::RawService) -> Runtime {
        self.hostname(at, base, s.hostname.as_deref());
        for field in ["cap_add", "cap_drop"] {
            let list = if field == "cap_add" { &s.cap_add } else { &s.cap_drop };
            self.capabilities(at, &base.key(field), list.as_deref());
        }
        self.devices(at, base, s.devices.as_deref());
        self.tmpfs(at, base, s.tmpfs.as_deref());
        let sysctls = s.sysctls.iter().flatten().map(|(k, v)| (k.clone(), scalar_text(v))).collect();
        let ulimits = self.ulimits(at, base, s.ulimits.as_ref());
        self.extra_hosts(at, base, s.extra_hosts.as_deref());
        Runtime {
            hostname: s.hostname.clone(),
            cap_add: s.cap_add.clone().unwrap_or_default(),
            cap_drop: s.cap_drop.clone().unwrap_or_default(),
            devices: s.devices.clone().unwrap_or_default(),
            tmpfs: s.tmpfs.clone().unwrap_or_default(),
            sysctls,
            ulimits,
            extra_hosts: s.extra_hosts.clone().unwrap_or_default(),
        }
    }

    fn hostname(&mut self, at: At<'a>, base: &FieldPath, hostname: Option<&str>) {
        if let Some(h) = hostname
            && (h.is_empty()
                || h.len() > 63
                || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                || h.starts_with('-'))
        {
            self.push(
                at.err(
                    &base.key("hostname"),
                    "invalid-hostname",
                    format!("`{}` is not a valid host name", h.escape_default()),
                )
                .help("letters, digits, '-' and '.', at most 63 characters"),
            );
        }
    }

    fn capabilities(&mut self, at: At<'a>, path: &FieldPath, list: Option<&[String]>) {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
            if bare.is_empty() || !bare.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_') {
                self.push(
                    at.err(
                        &path.index(i),
                        "invalid-capability",
                        format!("`{}` is not a capability name", c.escape_default()),
                    )
                    .help("capabilities are uppercase, e.g. `NET_ADMIN` or `ALL`"),
                );
            }
        }
    }

    fn devices(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[String]>) {
        for (i, d) in list.into_iter().flatten().enumerate() {
            if !d.starts_with('/') || d.split(':').count() > 3 {
                self.push(
                    at.err(
                        &base.key("devices").index(i),
                        "invalid-device",
                        format!("`{}` is not a device mapping", d.escape_default()),
                    )
                    .help("write `/dev/HOST[:/dev/CONTAINER[:rwm]]`"),
                );
            }
        }
    }

    fn tmpfs(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[String]>) {
        for (i, t) in list.into_iter().flatten().enumerate() {
            if let Err(e) = check_container_path(t.split(':').next().unwrap_or(t)) {
                self.push(at.err(&base.key("tmpfs").index(i), "invalid-path", e).help("write `/path[:options]`"));
            }
        }
    }

    fn ulimits(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        limits: Option<&BTreeMap<String, raw::RawUlimit>>,
    ) -> BTreeMap<String, Ulimit> {
        let mut ulimits = BTreeMap::new();
        for (k, u) in limits.into_iter().flatten() {
            let (soft, hard) = match u {
                raw::RawUlimit::Single(n) => (*n, *n),
                raw::RawUlimit::Pair { soft, hard } => (*soft, *hard),
            };
            if soft > hard {
                self.push(
                    at.err(
                        &base.key("ulimits").key(k),
                        "invalid-ulimit",
                        format!("soft limit {soft} is above hard limit {hard}"),
                    )
                    .help("soft must be at most hard"),
                );
            }
            ulimits.insert(k.clone(), Ulimit { soft, hard });
        }
        ulimits
    }

    fn extra_hosts(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[String]>) {
        for (i, h) in list.into_iter().flatten().enumerate() {
            let ok = h
                .split_once(['=', ':'])
                .is_some_and(|(name, ip)| !name.is_empty() && (ip.parse::<IpAddr>().is_ok() || ip == "host-gateway"));
            if !ok {
                self.push(
                    at.err(
                        &base.key("extra_hosts").index(i),
                        "invalid-host",
                        format!("`{}` is not a host entry", h.escape_default()),
                    )
                    .help("write `HOST:IP`, e.g. `db.lan:10.0.0.7`"),
                );
            }
        }
    }

    /// The memory and CPU limits.
    pub(super) fn resources(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        r: Option<&raw::RawResources>,
    ) -> (Option<ByteSize>, Option<f64>) {
        let mut memory = None;
        let mut cpus = None;
        if let Some(r) = r {
            if let Some(m) = &r.memory {
                match ByteSize::parse(m) {
                    Ok(b) => memory = Some(b),
                    Err(e) => self.push(
                        at.err(&base.key("resources").key("memory"), "invalid-size", e)
                            .help(format!("write {SIZE_RULE}")),
                    ),
                }
            }
            if let Some(c) = r.cpus {
                if c <= 0.0 || !c.is_finite() {
                    self.push(
                        at.err(
                            &base.key("resources").key("cpus"),
                            "invalid-value",
                            format!("cpus must be above 0, not {c}"),
                        )
                        .help("e.g. `cpus: 1.5`"),
                    );
                }
                cpus = Some(c);
            }
        }
        (memory, cpus)
    }
}
