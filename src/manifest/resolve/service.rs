//! One service of an app: its image, command, environment (plain, vault
//! reference or inline ciphertext), ports, mounts, networks, dependencies,
//! healthcheck, restart policy and labels; the runtime options are in
//! `runtime`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::words::split_words;
use super::{At, Resolver};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::raw;
use crate::model::ports::{MOUNT_RULE, PORT_RULE, check_container_path};
use crate::model::values::{IMAGE_RULE, RESTART_RULE};
use crate::model::*;

impl<'a> Resolver<'a> {
    pub(super) fn service(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        name: Name,
        s: &raw::RawService,
        state: ServiceState,
    ) -> Option<Service> {
        let before = self.diags.error_count();
        let image = match ImageRef::parse(&s.image) {
            Ok(i) => Some(i),
            Err(e) => {
                self.push(at.err(&base.key("image"), "invalid-image", e).help(format!("write {IMAGE_RULE}")));
                None
            }
        };
        let command = self.words(at, &base.key("command"), s.command.as_ref());
        let entrypoint = self.words(at, &base.key("entrypoint"), s.entrypoint.as_ref());
        let env = self.env(at, base, s.env.as_ref());
        let env = self.with_env_files(at, base, s.env_file.as_ref(), env);
        let ports = self.ports(at, base, s.ports.as_deref());
        let mounts = self.mounts(at, base, s.volumes.as_deref());
        let host_folders = self.host_folders(at, base, s.volumes.as_deref());
        let files = self.config_files(at, base, s.files.as_deref(), &mounts);
        let net = self.networking(at, base, s);
        let (depends_on, optional_deps) = self.depends_on(at, base, s.depends_on.as_ref());
        let healthcheck = s.healthcheck.as_ref().and_then(|h| self.healthcheck(at, &base.key("healthcheck"), h));
        let restart = self.restart(at, base, s.restart.as_deref());
        let labels = self.labels(at, base, s.labels.as_ref());
        if let Some(w) = &s.working_dir
            && let Err(e) = check_container_path(w)
        {
            self.push(at.err(&base.key("working_dir"), "invalid-path", e));
        }
        let rt = self.runtime(at, base, s);
        let stop_grace_period = self.duration(at, &base.key("stop_grace_period"), s.stop_grace_period.as_ref());
        let (memory, cpus) = self.resources(at, base, s.resources.as_ref());
        let run = self.run_options(at, base, s);
        self.check_start_first(at, base, s.update_order, &ports);
        if self.diags.error_count() != before {
            return None;
        }
        Some(Service {
            name,
            image: image?,
            command,
            entrypoint,
            env,
            ports,
            mounts,
            networks: net.networks,
            endpoints: net.endpoints,
            app_network: net.app_network,
            network_mode: net.network_mode,
            pid: net.pid,
            ipc: net.ipc,
            container_name: net.container_name,
            depends_on,
            healthcheck,
            restart,
            labels,
            user: s.user.clone(),
            working_dir: s.working_dir.clone(),
            hostname: rt.hostname,
            privileged: s.privileged.unwrap_or(false),
            cap_add: rt.cap_add,
            cap_drop: rt.cap_drop,
            devices: rt.devices,
            tmpfs: rt.tmpfs,
            sysctls: rt.sysctls,
            ulimits: rt.ulimits,
            extra_hosts: rt.extra_hosts,
            init: s.init.unwrap_or(false),
            stop_grace_period,
            memory,
            cpus,
            run,
            optional_deps,
            pull: s.pull.unwrap_or_default(),
            update_order: s.update_order.unwrap_or_default(),
            state,
            host_folders,
            files,
            rollout: ServiceRollout::default(),
        })
    }

    fn env(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        vars: Option<&BTreeMap<String, raw::EnvValue>>,
    ) -> BTreeMap<String, EnvValue> {
        let mut env = BTreeMap::new();
        for (k, v) in vars.into_iter().flatten() {
            let p = base.key("env").key(k);
            if k.is_empty() || k.contains('=') || k.contains('\0') || k.chars().any(char::is_whitespace) {
                self.push(
                    at.err_at_key(
                        &p,
                        "invalid-env",
                        format!("`{}` is not a valid environment variable name", k.escape_default()),
                    )
                    .help("names hold no '=', spaces or NUL, e.g. `DATABASE_URL`"),
                );
                continue;
            }
            if let Some(value) = self.env_value(at, &p, v) {
                env.insert(k.clone(), value);
            }
        }
        env
    }

    fn env_value(&mut self, at: At<'a>, p: &FieldPath, v: &raw::EnvValue) -> Option<EnvValue> {
        match v {
            raw::EnvValue::Secret(r) => self.secret_ref(at, &p.key("secret"), &r.secret).map(EnvValue::Secret),
            raw::EnvValue::Plain(sc) => {
                let text = scalar_text(sc);
                if !text.starts_with(crate::model::secret::INLINE_PREFIX) {
                    return Some(EnvValue::Plain(text));
                }
                if let Err(e) = (self.inline_check)(&text) {
                    self.push(at.err(p, "invalid-secret", e).help("paste the whole output of `tomo secret encrypt`"));
                    return None;
                }
                Some(EnvValue::Encrypted(text))
            }
        }
    }

    fn ports(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[raw::RawPort]>) -> Vec<PortMapping> {
        let mut ports = Vec::new();
        for (i, p) in list.into_iter().flatten().enumerate() {
            let path = base.key("ports").index(i);
            let parsed = match p {
                raw::RawPort::Short(text) => PortMapping::parse(text),
                raw::RawPort::Number(n) => PortRange::parse(&n.to_string()).map(|c| PortMapping {
                    host_ip: None,
                    host: None,
                    container: c,
                    protocol: Protocol::Tcp,
                }),
                raw::RawPort::Long(l) => long_port(l),
            };
            match parsed {
                Ok(m) => ports.push(m),
                Err(e) => self.push(at.err(&path, "invalid-port", e).help(format!("write {PORT_RULE}"))),
            }
        }
        ports
    }

    fn mounts(&mut self, at: At<'a>, base: &FieldPath, list: Option<&[raw::RawMount]>) -> Vec<Mount> {
        let mut mounts = Vec::new();
        for (i, m) in list.into_iter().flatten().enumerate() {
            let path = base.key("volumes").index(i);
            let parsed = match m {
                raw::RawMount::Short(text) => Mount::parse(text),
                raw::RawMount::Long(l) => long_mount(l),
            };
            match parsed {
                Ok(m) => {
                    if mounts.iter().any(|x: &Mount| x.target == m.target) {
                        self.push(
                            at.err(&path, "duplicate-mount", format!("two mounts target `{}`", m.target))
                                .help("each container path can be mounted once"),
                        );
                    }
                    mounts.push(m);
                }
                Err(e) => self.push(at.err(&path, "invalid-volume", e).help(format!("write {MOUNT_RULE}"))),
            }
        }
        mounts
    }

    fn depends_on(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        deps: Option<&raw::RawDependsOn>,
    ) -> (BTreeMap<Name, DependencyCondition>, BTreeSet<Name>) {
        let mut depends_on = BTreeMap::new();
        let mut optional = BTreeSet::new();
        match deps {
            None => {}
            Some(raw::RawDependsOn::List(list)) => {
                for (i, d) in list.iter().enumerate() {
                    if let Some(n) = self.name(at, &base.key("depends_on").index(i), d) {
                        depends_on.insert(n, DependencyCondition::Started);
                    }
                }
            }
            Some(raw::RawDependsOn::Map(map)) => {
                for (d, cond) in map {
                    if let Some(n) = self.name(at, &base.key("depends_on").key(d), d) {
                        let c = match cond {
                            raw::RawDependency::Condition(c) | raw::RawDependency::Long { condition: c, .. } => *c,
                        };
                        if let raw::RawDependency::Long { required: Some(false), .. } = cond {
                            optional.insert(n.clone());
                        }
                        depends_on.insert(n, c);
                    }
                }
            }
        }
        (depends_on, optional)
    }

    fn restart(&mut self, at: At<'a>, base: &FieldPath, restart: Option<&str>) -> Restart {
        match restart {
            None => Restart::default(),
            Some(r) => match Restart::parse(r) {
                Ok(r) => r,
                Err(e) => {
                    self.push(at.err(&base.key("restart"), "invalid-restart", e).help(format!("write {RESTART_RULE}")));
                    Restart::default()
                }
            },
        }
    }

    fn labels(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        labels: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let labels = labels.cloned().unwrap_or_default();
        for k in labels.keys() {
            if k.starts_with("tomo.") {
                self.push(
                    at.err_at_key(
                        &base.key("labels").key(k),
                        "reserved-label",
                        format!("label `{k}` uses the reserved prefix `tomo.`"),
                    )
                    .help("tomo sets `tomo.*` labels itself; choose another prefix"),
                );
            }
        }
        labels
    }

    /// Warns when a start-first update cannot bind its published host port.
    fn check_start_first(&mut self, at: At<'a>, base: &FieldPath, order: Option<UpdateOrder>, ports: &[PortMapping]) {
        if order == Some(UpdateOrder::StartFirst) && ports.iter().any(|p| p.host.is_some()) {
            self.push(
                Diagnostic::warning(
                    "start-first-port",
                    "`update_order: start-first` cannot work with a published host port: the new container cannot bind it while the old one runs",
                )
                .at(at.file, at.span(&base.key("update_order")))
                .field(base.key("update_order"))
                .help("use `stop-first` (the default), or publish the port through a reverse proxy"),
            );
        }
    }

    fn words(&mut self, at: At<'a>, path: &FieldPath, v: Option<&raw::StringOrList>) -> Option<Vec<String>> {
        match v? {
            raw::StringOrList::List(l) => Some(l.clone()),
            raw::StringOrList::String(s) => match split_words(s) {
                Ok(w) => Some(w),
                Err(e) => {
                    self.push(
                        at.err(path, "invalid-command", e)
                            .help("close the quote, or write the command as a list: `[\"prog\", \"arg\"]`"),
                    );
                    None
                }
            },
        }
    }

    fn healthcheck(&mut self, at: At<'a>, path: &FieldPath, h: &raw::RawHealthcheck) -> Option<Healthcheck> {
        let test = if h.disable == Some(true) {
            vec!["NONE".to_string()]
        } else {
            match &h.test {
                None => {
                    self.push(at.err(path, "missing-field", "healthcheck has no `test`").help(
                        "e.g. `test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"]`, or `disable: true`",
                    ));
                    return None;
                }
                Some(raw::StringOrList::String(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
                Some(raw::StringOrList::List(l)) => {
                    let ok = match l.first().map(String::as_str) {
                        Some("CMD") => l.len() >= 2,
                        Some("CMD-SHELL") => l.len() == 2,
                        Some("NONE") => l.len() == 1,
                        _ => false,
                    };
                    if !ok {
                        self.push(at.err(&path.key("test"), "invalid-healthcheck", "a healthcheck test list starts with `CMD` (then the program and its arguments), `CMD-SHELL` (then one command string) or is `[\"NONE\"]`").help("e.g. `[\"CMD\", \"pg_isready\"]`"));
                        return None;
                    }
                    l.clone()
                }
            }
        };
        Some(Healthcheck {
            test,
            interval: self.duration(at, &path.key("interval"), h.interval.as_ref()),
            timeout: self.duration(at, &path.key("timeout"), h.timeout.as_ref()),
            retries: h.retries,
            start_period: self.duration(at, &path.key("start_period"), h.start_period.as_ref()),
        })
    }
}

pub(super) fn scalar_text(s: &raw::Scalar) -> String {
    match s {
        raw::Scalar::String(s) => s.clone(),
        raw::Scalar::Number(n) => n.to_string(),
        raw::Scalar::Bool(b) => b.to_string(),
    }
}

fn long_port(l: &raw::RawPortLong) -> Result<PortMapping, String> {
    let container = PortRange::parse(&l.target.to_string())?;
    let host = match &l.published {
        None => None,
        Some(raw::PortNumberOrRange::Number(n)) => Some(PortRange::parse(&n.to_string())?),
        Some(raw::PortNumberOrRange::Range(r)) => Some(PortRange::parse(r)?),
    };
    let host_ip = match &l.host_ip {
        None => None,
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| format!("`{}` is not an IP address", ip.escape_default()))?),
    };
    if let Some(h) = host
        && h.len() != container.len()
        && container.len() != 1
    {
        return Err(format!("host range {h} and container port {container} have different lengths"));
    }
    Ok(PortMapping { host_ip, host, container, protocol: l.protocol.unwrap_or(Protocol::Tcp) })
}

fn long_mount(l: &raw::RawMountLong) -> Result<Mount, String> {
    check_container_path(&l.target)?;
    let source = match (l.kind, &l.source) {
        (MountKind::Tmpfs, None) => MountSource::Tmpfs,
        (MountKind::Tmpfs, Some(_)) => return Err("a tmpfs mount has no `source`".into()),
        (MountKind::Volume, None) => MountSource::Anonymous,
        (MountKind::Volume, Some(s)) => MountSource::Volume(Name::parse(s).map_err(|e| format!("volume name: {e}"))?),
        (MountKind::Bind, Some(s)) if s.starts_with('/') && !s.split('/').any(|c| c == "..") => {
            MountSource::Bind(s.clone())
        }
        (MountKind::Bind, Some(s)) => {
            return Err(format!("bind source `{}` must be an absolute path without `..`", s.escape_default()));
        }
        (MountKind::Bind, None) => return Err("a bind mount needs a `source` path".into()),
    };
    Ok(Mount { source, target: l.target.clone(), read_only: l.read_only.unwrap_or(false) })
}
