//! One compose service to one tomo service, key by key, each key reported.

use std::collections::{BTreeMap, BTreeSet};

use super::convert::Cx;
use super::network::{self, Membership};
use super::report::Status;
use super::values::{self, scalar_text};
use crate::diag::Span;
use crate::manifest::raw::*;
use crate::manifest::yaml::{Key, Node, Value};

/// A converted service.
pub(super) struct Converted {
    pub service: RawService,
    /// In a profile not asked for: kept with `state: absent`.
    pub absent: bool,
}

/// Keys of the Compose Specification tomo has no field for, and why.
const DROPPED: &[(&str, &str)] = &[
    ("build", "tomo runs images; build and push it, then name it in `image`"),
    ("extends", "not followed; merge the base service by hand"),
    ("platform", "tomo pulls the server's platform"),
    ("pull_policy", "tomo's `pull` has missing/always/never only"),
    ("scale", "one container per service"),
    ("domainname", "no tomo field"),
    ("mac_address", "no tomo field"),
    ("dns", "no tomo field"),
    ("dns_search", "no tomo field"),
    ("dns_opt", "no tomo field"),
    ("group_add", "no tomo field"),
    ("oom_score_adj", "no tomo field"),
    ("oom_kill_disable", "no tomo field"),
    ("read_only", "no tomo field"),
    ("volumes_from", "no tomo field; mount the same volumes"),
    ("userns_mode", "no tomo field"),
    ("uts", "no tomo field"),
    ("cgroup", "no tomo field"),
    ("cgroup_parent", "no tomo field"),
    ("isolation", "Windows only"),
    ("storage_opt", "no tomo field"),
    ("device_cgroup_rules", "no tomo field"),
    ("blkio_config", "no tomo field"),
    ("cpu_count", "Windows only"),
    ("cpu_percent", "Windows only"),
    ("cpu_period", "no tomo field; use `cpus`"),
    ("cpu_quota", "no tomo field; use `cpus`"),
    ("cpu_rt_runtime", "no tomo field"),
    ("cpu_rt_period", "no tomo field"),
    ("cpuset", "no tomo field"),
    ("mem_swappiness", "no tomo field"),
    ("memswap_limit", "no tomo field"),
    ("credential_spec", "Windows only"),
    ("external_links", "no tomo field; join the other app's network"),
    ("annotations", "no tomo field"),
    ("attach", "tomo does not attach to logs"),
    ("develop", "compose watch only"),
    ("post_start", "no tomo field"),
    ("pre_stop", "no tomo field"),
    ("secrets", "compose secrets are not converted; use `files` with `{secret: NAME}` content"),
    ("label_file", "no tomo field; copy the labels into `labels`"),
];

/// Every other compose key a service may have (checked before `DROPPED`).
const KNOWN: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "labels",
    "user",
    "working_dir",
    "hostname",
    "privileged",
    "cap_add",
    "cap_drop",
    "devices",
    "tmpfs",
    "sysctls",
    "ulimits",
    "extra_hosts",
    "init",
    "stop_grace_period",
    "healthcheck",
    "depends_on",
    "runtime",
    "pid",
    "ipc",
    "security_opt",
    "logging",
    "shm_size",
    "stop_signal",
    "stdin_open",
    "tty",
    "cpu_shares",
    "cpus",
    "mem_limit",
    "mem_reservation",
    "pids_limit",
    "gpus",
    "networks",
    "network_mode",
    "links",
    "container_name",
    "profiles",
    "deploy",
    "configs",
    "restart",
];

pub(super) fn convert(cx: &mut Cx<'_>, name: &str, span: Span, node: &Node) -> Option<Converted> {
    let entries = values::map(cx, node, name);
    let mut s = RawService::default();
    let mut m = Membership::new();
    let mut absent = false;
    let mut has_image = false;
    let mut has_restart = false;
    let before = cx.diags.len();
    for (k, v) in entries {
        let key = k.name.as_str();
        if key.starts_with("x-") {
            cx.entry(name, key, Status::Ignored, "extension: no effect on containers");
            continue;
        }
        has_image |= key == "image";
        has_restart |= key == "restart";
        if basic(cx, name, key, v, &mut s) || runtime(cx, name, key, v, &mut s) {
            continue;
        }
        match key {
            "networks" => network::service_networks(cx, name, v, &mut m),
            "network_mode" => network::network_mode(cx, name, v, &mut m),
            "links" => links_entry(cx, name, v),
            "container_name" => container_name(cx, name, v, &mut s, &mut m),
            "profiles" => absent = profiles(cx, name, v),
            "deploy" => super::deploy::deploy(cx, name, v, &mut s),
            "configs" => super::files::configs(cx, name, v, &mut s),
            "restart" => restart(cx, name, v, &mut s),
            other => unknown(cx, name, k, other),
        }
    }
    if !has_image {
        cx.error(span, "compose-no-image", format!("service `{name}` has no `image`; tomo runs images")).help =
            Some("build the image, push it to a registry and name it in `image`".into());
    }
    if !has_restart {
        s.restart = Some("no".into());
        cx.entry(
            name,
            "restart",
            Status::Changed,
            "not set: compose's default `no` made explicit (tomo's is `unless-stopped`)",
        );
    }
    finish_networks(cx, name, &mut s, m);
    (cx.diags.len() == before).then_some(Converted { service: s, absent })
}

fn unknown(cx: &mut Cx<'_>, name: &str, k: &Key, other: &str) {
    if let Some((_, why)) = DROPPED.iter().find(|(d, _)| *d == other) {
        cx.entry(name, other, Status::Dropped, *why);
        return;
    }
    let all = KNOWN.iter().copied().chain(DROPPED.iter().map(|(d, _)| *d));
    let help = crate::diag::did_you_mean(other, all).map(|s| format!("did you mean `{s}`?"));
    cx.error(k.span, "compose-unknown-key", format!("unknown compose key `{other}` in service `{name}`")).help = help;
}

/// The service's networks, with aliases that keep its compose names resolving.
fn finish_networks(cx: &mut Cx<'_>, name: &str, s: &mut RawService, mut m: Membership) {
    let tomo = cx.names.get(name).cloned().unwrap_or_default();
    let mut aliases: BTreeSet<String> = network::aliases_for(cx, name);
    let container_alias = !m.pending_alias.is_empty();
    aliases.extend(std::mem::take(&mut m.pending_alias));
    if tomo != name {
        aliases.insert(name.to_string());
    }
    if m.mode.is_none() {
        for a in &aliases {
            m.alias(a);
        }
    }
    if tomo != name {
        let note = if m.mode.is_none() {
            format!("`{name}` → `{tomo}` (tomo names), with network alias `{name}` so the old name still resolves")
        } else {
            format!("`{name}` → `{tomo}` (tomo names); no alias: the service is not on the app's networks")
        };
        cx.entry(name, "(name)", Status::Changed, note);
    }
    if let Some(mode) = &m.mode {
        own_stack(cx, name, s, mode, container_alias);
    }
    s.network_mode = m.mode.clone();
    let (networks, app_network) = m.raw();
    s.networks = networks;
    s.app_network = app_network;
}

/// A service with a `network_mode` other than the app network: its `ports`
/// and `expose` are left out (Docker discards them in host mode and refuses
/// them with another container's network), and a `container_name` of a
/// multi-service app is no alias.
fn own_stack(cx: &mut Cx<'_>, svc: &str, s: &mut RawService, mode: &str, aliased: bool) {
    let why = match mode.split_once(':') {
        Some((kind, other)) => format!(
            "the container shares the network of {kind} `{other}`, and Docker refuses published or exposed ports with it; set them on `{other}`"
        ),
        None if mode == "host" => {
            "Docker discards published ports in host mode; the service listens on the server's ports directly".into()
        }
        None => format!("with `network_mode: {mode}` the container has no network to publish on"),
    };
    if s.ports.take().is_some() {
        for key in ["ports", "expose"] {
            amend(cx, svc, key, Status::Changed, &format!("left out: {why}"));
        }
    }
    if aliased {
        let tomo = cx.names.get(svc).cloned().unwrap_or_default();
        let note = format!(
            "the container is named `{}-{tomo}` (container_name is for one-service apps); no alias either: with `network_mode` the service is on none of the app's networks",
            cx.app
        );
        amend(cx, svc, "container_name", Status::Changed, &note);
    }
}

/// Rewrites the report entry of `svc`'s `key`, if there is one.
fn amend(cx: &mut Cx<'_>, svc: &str, key: &str, status: Status, note: &str) {
    for e in cx.report.iter_mut().filter(|e| e.service == svc && e.key == key) {
        e.status = status;
        e.note = note.to_string();
    }
}

/// `ipc: service:X` joins X's IPC namespace, which Docker allows only when X
/// shares it: X without an `ipc` of its own gets `ipc: shareable`.
pub(super) fn share_ipc(cx: &mut Cx<'_>, services: &mut [(String, Converted)]) {
    let mut joiners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (compose, c) in services.iter() {
        if let Some(target) = c.service.ipc.as_deref().and_then(|i| i.strip_prefix("service:")) {
            joiners.entry(target.to_string()).or_default().push(format!("`{compose}`"));
        }
    }
    for (compose, c) in services.iter_mut() {
        let Some(who) = cx.names.get(compose).and_then(|t| joiners.get(t)) else { continue };
        if c.service.ipc.is_some() {
            continue;
        }
        c.service.ipc = Some("shareable".into());
        let note = format!("not set: `shareable`, so that {} can join its IPC namespace", who.join(", "));
        cx.entry(compose, "ipc", Status::Changed, note);
    }
}

/// The simple keys: same name or a plain rename.
fn basic(cx: &mut Cx<'_>, svc: &str, key: &str, v: &Node, s: &mut RawService) -> bool {
    let mut note = String::new();
    let mut status = Status::Mapped;
    match key {
        "image" => s.image = values::string(cx, v).unwrap_or_default(),
        "command" => s.command = string_or_list(cx, v),
        "entrypoint" => s.entrypoint = string_or_list(cx, v),
        "environment" => (status, note) = super::files::environment(cx, svc, v, s),
        "env_file" => {
            s.env_file = env_files(cx, v);
            note = "read at plan time relative to the manifest: keep the file(s) beside it".into();
        }
        "ports" => (status, note) = ports(cx, v, s),
        "expose" => {
            note = "container-only ports".into();
            for p in values::strings(cx, v).unwrap_or_default() {
                let port = p.parse::<u16>().map(RawPort::Number).unwrap_or(RawPort::Short(p));
                s.ports.get_or_insert_with(Vec::new).push(port);
            }
        }
        "volumes" => (status, note) = super::files::volumes(cx, v, s),
        "labels" => {
            s.labels =
                values::pairs(cx, v, '=').map(|p| p.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
        }
        "user" => s.user = values::string(cx, v),
        "working_dir" => s.working_dir = values::string(cx, v),
        "hostname" => s.hostname = values::string(cx, v),
        "privileged" => s.privileged = values::boolean(cx, v),
        "cap_add" => s.cap_add = values::strings(cx, v),
        "cap_drop" => s.cap_drop = values::strings(cx, v),
        "devices" => s.devices = values::strings(cx, v),
        "tmpfs" => s.tmpfs = values::strings(cx, v),
        "sysctls" => {
            let pairs = values::pairs(cx, v, '=').unwrap_or_default();
            s.sysctls = Some(pairs.into_iter().map(|(k, v)| (k, Scalar::String(v.unwrap_or_default()))).collect());
        }
        "ulimits" => s.ulimits = ulimits(cx, v),
        "extra_hosts" => s.extra_hosts = extra_hosts(cx, v),
        "init" => s.init = values::boolean(cx, v),
        "stop_grace_period" => s.stop_grace_period = values::string(cx, v),
        "healthcheck" => {
            healthcheck(cx, svc, v, s);
            return true;
        }
        "depends_on" => (status, note) = depends_on(cx, v, s),
        _ => return false,
    }
    cx.entry(svc, key, status, note);
    true
}

/// Runtime options: the same names in tomo, or moved under `resources`.
fn runtime(cx: &mut Cx<'_>, svc: &str, key: &str, v: &Node, s: &mut RawService) -> bool {
    let mut note = String::new();
    match key {
        "runtime" => s.runtime = values::string(cx, v),
        "pid" => s.pid = namespace(cx, svc, "pid", v),
        "ipc" => s.ipc = namespace(cx, svc, "ipc", v),
        "security_opt" => s.security_opt = values::strings(cx, v),
        "logging" => s.logging = logging(cx, v),
        "shm_size" => s.shm_size = values::scalar_text(v).map(Scalar::String),
        "stop_signal" => s.stop_signal = values::string(cx, v),
        "stdin_open" => s.stdin_open = values::boolean(cx, v),
        "tty" => s.tty = values::boolean(cx, v),
        "cpu_shares" => {
            resources(s).cpu_shares = values::uint(cx, v);
            note = "→ resources.cpu_shares".into();
        }
        "cpus" => {
            resources(s).cpus = values::float(cx, v);
            note = "→ resources.cpus".into();
        }
        "mem_limit" => {
            resources(s).memory = values::string(cx, v);
            note = "→ resources.memory".into();
        }
        "mem_reservation" => {
            resources(s).memory_reservation = values::string(cx, v);
            note = "→ resources.memory_reservation".into();
        }
        "pids_limit" => {
            resources(s).pids = values::int(cx, v);
            note = "→ resources.pids".into();
        }
        "gpus" => {
            resources(s).gpus = match values::scalar_text(v) {
                Some(all) if all == "all" => Some(RawGpus::All(all)),
                _ => super::deploy::gpu_requests(cx, v),
            };
            note = "→ resources.gpus".into();
        }
        _ => return false,
    }
    cx.entry(svc, key, Status::Mapped, note);
    true
}

pub(super) fn resources(s: &mut RawService) -> &mut RawResources {
    s.resources.get_or_insert_with(RawResources::default)
}

fn string_or_list(cx: &mut Cx<'_>, v: &Node) -> Option<StringOrList> {
    match &v.value {
        Value::Seq(_) => values::strings(cx, v).map(StringOrList::List),
        _ => values::string(cx, v).map(StringOrList::String),
    }
}

/// `pid`/`ipc`: `service:NAME` must name a service of this file (renamed as it is).
fn namespace(cx: &mut Cx<'_>, svc: &str, key: &str, v: &Node) -> Option<String> {
    let text = values::string(cx, v)?;
    let Some(other) = text.strip_prefix("service:") else { return Some(text) };
    match cx.names.get(other).cloned() {
        Some(t) if t != other => {
            let note = format!("service `{other}` is named `{t}`");
            cx.entry(svc, &format!("{key} (service)"), Status::Changed, note);
            Some(format!("service:{t}"))
        }
        Some(_) => Some(text),
        None => {
            cx.error(
                v.span,
                "compose-unknown-service",
                format!("`{text}`: there is no service `{other}` in this file"),
            );
            None
        }
    }
}

fn env_files(cx: &mut Cx<'_>, v: &Node) -> Option<RawEnvFiles> {
    match &v.value {
        Value::Seq(items) => {
            let mut out = Vec::new();
            for n in items {
                match n.as_map() {
                    Some(_) => {
                        let path = n.get("path").and_then(scalar_text).unwrap_or_default();
                        let required = match n.get("required") {
                            Some(r) => values::boolean(cx, r),
                            None => None,
                        };
                        out.push(RawEnvFile::Long { path, required });
                    }
                    None => out.push(RawEnvFile::Path(values::string(cx, n)?)),
                }
            }
            Some(RawEnvFiles::Many(out))
        }
        _ => values::string(cx, v).map(RawEnvFiles::One),
    }
}

fn ports(cx: &mut Cx<'_>, v: &Node, s: &mut RawService) -> (Status, String) {
    let Value::Seq(items) = &v.value else {
        cx.error(v.span, "compose-type", "`ports` is a list");
        return (Status::Mapped, String::new());
    };
    let mut notes = Vec::new();
    for n in items {
        let port = match &n.value {
            Value::Map(_) => long_port(cx, n, &mut notes),
            _ => values::string(cx, n).map(RawPort::Short),
        };
        if let Some(p) = port {
            s.ports.get_or_insert_with(Vec::new).push(p);
        }
    }
    let status = if notes.is_empty() { Status::Mapped } else { Status::Dropped };
    (status, notes.join("; "))
}

fn long_port(cx: &mut Cx<'_>, n: &Node, notes: &mut Vec<String>) -> Option<RawPort> {
    let mut p = RawPortLong { target: 0, published: None, host_ip: None, protocol: None };
    for (k, v) in n.as_map().unwrap_or_default() {
        match k.name.as_str() {
            "target" => p.target = u16::try_from(values::uint(cx, v)?).ok()?,
            "published" => {
                let text = values::string(cx, v)?;
                p.published = Some(match text.parse::<u16>() {
                    Ok(n) => PortNumberOrRange::Number(n),
                    Err(_) => PortNumberOrRange::Range(text),
                });
            }
            "host_ip" => p.host_ip = values::string(cx, v),
            "protocol" => match values::string(cx, v)?.as_str() {
                "tcp" => p.protocol = Some(Protocol::Tcp),
                "udp" => p.protocol = Some(Protocol::Udp),
                other => notes.push(format!("protocol `{other}` dropped")),
            },
            "mode" if v.as_str() == Some("host") => {}
            "mode" | "name" | "app_protocol" => notes.push(format!("`{}` of a port dropped", k.name)),
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown port key `{other}`"));
            }
        }
    }
    Some(RawPort::Long(p))
}

fn ulimits(cx: &mut Cx<'_>, v: &Node) -> Option<BTreeMap<String, RawUlimit>> {
    let mut out = BTreeMap::new();
    for (k, n) in values::map(cx, v, "ulimits") {
        let u = match n.as_map() {
            Some(_) => {
                let soft = values::int(cx, n.get("soft").unwrap_or(n))?;
                let hard = values::int(cx, n.get("hard").unwrap_or(n))?;
                RawUlimit::Pair { soft, hard }
            }
            None => RawUlimit::Single(values::int(cx, n)?),
        };
        out.insert(k.name.clone(), u);
    }
    Some(out)
}

fn extra_hosts(cx: &mut Cx<'_>, v: &Node) -> Option<Vec<String>> {
    match &v.value {
        Value::Map(_) => {
            let pairs = values::pairs(cx, v, '=')?;
            Some(pairs.into_iter().map(|(h, ip)| format!("{h}:{}", ip.unwrap_or_default())).collect())
        }
        // Compose also accepts `HOST=IP`.
        _ => Some(values::strings(cx, v)?.into_iter().map(|h| h.replacen('=', ":", 1)).collect()),
    }
}

fn logging(cx: &mut Cx<'_>, v: &Node) -> Option<RawLogging> {
    let mut l = RawLogging::default();
    for (k, n) in values::map(cx, v, "logging") {
        match k.name.as_str() {
            "driver" => l.driver = values::string(cx, n),
            "options" => {
                let pairs = values::pairs(cx, n, '=')?;
                l.options = Some(pairs.into_iter().map(|(k, v)| (k, Scalar::String(v.unwrap_or_default()))).collect());
            }
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown logging key `{other}`"));
            }
        }
    }
    Some(l)
}

fn healthcheck(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) {
    let mut h = RawHealthcheck::default();
    for (k, n) in values::map(cx, v, "healthcheck") {
        let key = format!("healthcheck.{}", k.name);
        let (status, note) = match k.name.as_str() {
            "test" => {
                h.test = string_or_list(cx, n);
                (Status::Mapped, String::new())
            }
            "interval" | "timeout" | "start_period" => {
                let d = values::string(cx, n);
                match k.name.as_str() {
                    "interval" => h.interval = d,
                    "timeout" => h.timeout = d,
                    _ => h.start_period = d,
                }
                (Status::Mapped, String::new())
            }
            "retries" => {
                h.retries = values::uint(cx, n).and_then(|r| u32::try_from(r).ok());
                if matches!(n.value, Value::String(_)) {
                    (Status::Changed, "written as a string; a number in tomo".into())
                } else {
                    (Status::Mapped, String::new())
                }
            }
            "disable" => match values::boolean(cx, n) {
                Some(true) => {
                    h.disable = Some(true);
                    (Status::Mapped, String::new())
                }
                _ => (Status::Mapped, "`false`: nothing to turn off (the image's healthcheck stays)".into()),
            },
            "start_interval" => (Status::Dropped, "no tomo field (Docker uses its default)".into()),
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown healthcheck key `{other}`"));
                continue;
            }
        };
        cx.entry(svc, &key, status, note);
    }
    if h != RawHealthcheck::default() {
        s.healthcheck = Some(h);
    }
}

fn depends_on(cx: &mut Cx<'_>, v: &Node, s: &mut RawService) -> (Status, String) {
    let mut notes = BTreeSet::new();
    let rename = |cx: &mut Cx<'_>, name: &str, span: Span, notes: &mut BTreeSet<String>| match cx.names.get(name) {
        Some(t) => {
            if t != name {
                notes.insert(format!("`{name}` is named `{t}`"));
            }
            Some(t.clone())
        }
        None => {
            cx.error(span, "compose-unknown-service", format!("depends_on: there is no service `{name}` in this file"));
            None
        }
    };
    match &v.value {
        Value::Seq(items) => {
            let mut out = Vec::new();
            for n in items {
                let name = values::string(cx, n).unwrap_or_default();
                out.extend(rename(cx, &name, n.span, &mut notes));
            }
            s.depends_on = Some(RawDependsOn::List(out));
        }
        _ => {
            let mut out = BTreeMap::new();
            for (k, n) in values::map(cx, v, "depends_on") {
                let Some(t) = rename(cx, &k.name, k.span, &mut notes) else { continue };
                if let Some(d) = dependency(cx, n, &mut notes) {
                    out.insert(t, d);
                }
            }
            s.depends_on = Some(RawDependsOn::Map(out));
        }
    }
    let status = if notes.iter().any(|n| n.contains("dropped")) {
        Status::Dropped
    } else if notes.is_empty() {
        Status::Mapped
    } else {
        Status::Changed
    };
    (status, notes.into_iter().collect::<Vec<_>>().join("; "))
}

fn dependency(cx: &mut Cx<'_>, n: &Node, notes: &mut BTreeSet<String>) -> Option<RawDependency> {
    let mut condition = DependencyCondition::Started;
    let mut required = None;
    for (k, v) in n.as_map().unwrap_or_default() {
        match k.name.as_str() {
            "condition" => {
                let c = values::string(cx, v)?;
                condition = match c.as_str() {
                    "service_started" => DependencyCondition::Started,
                    "service_healthy" => DependencyCondition::Healthy,
                    "service_completed_successfully" => DependencyCondition::Completed,
                    other => {
                        cx.error(v.span, "compose-depends-on", format!("unknown condition `{other}`")).help =
                            Some("compose has service_started, service_healthy, service_completed_successfully".into());
                        return None;
                    }
                };
                let short = format!("{condition:?}").to_lowercase();
                notes.insert(format!("`{c}` → `{short}`"));
            }
            "required" => required = values::boolean(cx, v),
            "restart" => {
                notes.insert("`restart` dropped (tomo does not restart dependents)".into());
            }
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown depends_on key `{other}`"));
            }
        }
    }
    Some(match required {
        Some(r) => RawDependency::Long { condition, required: Some(r) },
        None => RawDependency::Condition(condition),
    })
}

fn restart(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) {
    s.restart = values::string(cx, v);
    cx.entry(svc, "restart", Status::Mapped, "");
}

fn container_name(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService, m: &mut Membership) {
    let Some(name) = values::string(cx, v) else { return };
    if let Some(first) = cx.container_names.get(&name).copied() {
        cx.error(v.span, "compose-container-name", format!("container_name `{name}` is used twice")).help =
            Some(format!(
                "it is already the name of a container at line {}; container names are unique per server",
                first.line
            ));
        return;
    }
    cx.container_names.insert(name.clone(), v.span);
    if cx.single {
        s.container_name = Some(name);
        cx.entry(svc, "container_name", Status::Mapped, "");
        return;
    }
    let tomo = cx.names.get(svc).cloned().unwrap_or_default();
    let note = format!(
        "the container is named `{}-{tomo}` (container_name is for one-service apps); `{name}` is kept as a network alias so it still resolves",
        cx.app
    );
    m.pending_alias.push(name);
    cx.entry(svc, "container_name", Status::Changed, note);
}

fn profiles(cx: &mut Cx<'_>, svc: &str, v: &Node) -> bool {
    let list = values::strings(cx, v).unwrap_or_default();
    let on = list.iter().any(|p| cx.opts.profiles.contains(p));
    let note = if on {
        format!("profile {} asked for (--profile): the service runs", list.join(", "))
    } else {
        format!("in profile {}: kept with `state: absent` (run it with --profile)", list.join(", "))
    };
    cx.entry(svc, "profiles", Status::Changed, note);
    !on
}

/// `links:` of each service, before any is converted: `svc:alias` becomes a
/// network alias of `svc`.
pub(super) fn links(cx: &mut Cx<'_>, services: &[(Key, Node)]) {
    for (_, n) in services {
        let Some(Value::Seq(items)) = n.get("links").map(|l| &l.value) else { continue };
        for item in items {
            let Some(text) = scalar_text(item) else { continue };
            let (target, alias) = text.split_once(':').unwrap_or((&text, ""));
            if !cx.names.contains_key(target) {
                cx.error(
                    item.span,
                    "compose-unknown-service",
                    format!("links: there is no service `{target}` in this file"),
                );
                continue;
            }
            if !alias.is_empty() && alias != target {
                cx.link_aliases.entry(target.to_string()).or_default().insert(alias.to_string());
            }
        }
    }
}

fn links_entry(cx: &mut Cx<'_>, svc: &str, v: &Node) {
    let aliased = values::strings(cx, v).unwrap_or_default().iter().any(|l| l.contains(':'));
    let (status, note) = if aliased {
        (
            Status::Changed,
            "the link aliases are network aliases of the linked services (every service of the app sees them)",
        )
    } else {
        (Status::Mapped, "services reach each other by name on their networks already")
    };
    cx.entry(svc, "links", status, note);
}
