//! A service's runtime options: host name, capabilities, devices, tmpfs
//! mounts, sysctls, ulimits, extra hosts and resource limits.

use std::collections::BTreeMap;

use super::service::scalar_text;
use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::runtime::{CAPABILITY_RULE, DEVICE_RULE, EXTRA_HOST_RULE, HOSTNAME_RULE, TMPFS_RULE};
use crate::model::values::SIZE_RULE;
use crate::model::*;

/// The runtime options of one service, each parsed.
pub(super) struct Runtime {
    pub hostname: Option<Hostname>,
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    pub devices: Vec<DeviceMapping>,
    pub tmpfs: Vec<TmpfsMount>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub extra_hosts: Vec<ExtraHost>,
}

/// How a list of one kind of value is parsed and reported.
struct Kind<T> {
    field: &'static str,
    parse: fn(&str) -> Result<T, String>,
    code: &'static str,
    help: String,
}

impl<'a> Resolver<'a> {
    pub(super) fn runtime(&mut self, at: At<'a>, base: &FieldPath, s: &raw::RawService) -> Runtime {
        let hostname = s.hostname.as_deref().and_then(|h| match Hostname::parse(h) {
            Ok(h) => Some(h),
            Err(e) => {
                self.push(at.err(&base.key("hostname"), "invalid-hostname", e).help(HOSTNAME_RULE));
                None
            }
        });
        let cap = |field| Kind {
            field,
            parse: Capability::parse,
            code: "invalid-capability",
            help: CAPABILITY_RULE.to_string(),
        };
        let cap_add = self.values(at, base, s.cap_add.as_deref(), cap("cap_add"));
        let cap_drop = self.values(at, base, s.cap_drop.as_deref(), cap("cap_drop"));
        let devices = Kind {
            field: "devices",
            parse: DeviceMapping::parse,
            code: "invalid-device",
            help: format!("write {DEVICE_RULE}"),
        };
        let devices = self.values(at, base, s.devices.as_deref(), devices);
        let tmpfs = Kind {
            field: "tmpfs",
            parse: TmpfsMount::parse,
            code: "invalid-path",
            help: format!("write {TMPFS_RULE}"),
        };
        let tmpfs = self.values(at, base, s.tmpfs.as_deref(), tmpfs);
        let sysctls = s.sysctls.iter().flatten().map(|(k, v)| (k.clone(), scalar_text(v))).collect();
        let ulimits = self.ulimits(at, base, s.ulimits.as_ref());
        let hosts = Kind {
            field: "extra_hosts",
            parse: ExtraHost::parse,
            code: "invalid-host",
            help: format!("write {EXTRA_HOST_RULE}"),
        };
        let extra_hosts = self.values(at, base, s.extra_hosts.as_deref(), hosts);
        Runtime { hostname, cap_add, cap_drop, devices, tmpfs, sysctls, ulimits, extra_hosts }
    }

    /// Each value of a list field, parsed; the invalid ones reported and left out.
    fn values<T>(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[String]>, kind: Kind<T>) -> Vec<T> {
        let mut out = Vec::new();
        for (i, text) in list.into_iter().flatten().enumerate() {
            match (kind.parse)(text) {
                Ok(v) => out.push(v),
                Err(e) => self.push(at.err(&base.key(kind.field).index(i), kind.code, e).help(kind.help.clone())),
            }
        }
        out
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
