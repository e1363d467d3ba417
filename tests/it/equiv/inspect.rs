//! The compared part of a container's `docker inspect`, normalised so that
//! only what the user declared can differ: names (container, network,
//! volume and file names the two tools choose differently) are replaced by
//! what they stand for, and an unset value by the Engine's default for it
//! (compare values, not presence).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// The compared fields of one container, by name.
pub type Fields = BTreeMap<&'static str, Value>;

/// How names on one side read after normalisation.
pub struct Context<'a> {
    /// Container id → service name, for `container:ID` modes.
    pub services: &'a BTreeMap<String, String>,
    /// Prefixes of this side's names (project, app, container_name prefix).
    pub prefixes: &'a [String],
    /// The run's folder of bind sources, shown as `<host>`.
    pub host: &'a Path,
}

impl Context<'_> {
    fn unprefixed(&self, name: &str) -> String {
        let mut n = name;
        for p in self.prefixes {
            if let Some(rest) = n.strip_prefix(p.as_str()) {
                n = rest.trim_start_matches(['_', '-']);
                break;
            }
        }
        n.to_string()
    }

    /// `container:ID` → `container:<service>`; other modes as they are.
    fn mode(&self, v: &Value, default: &str) -> Value {
        let s = v.as_str().filter(|s| !s.is_empty()).unwrap_or(default);
        match s.strip_prefix("container:") {
            Some(id) => {
                let svc = self.services.iter().find(|(k, _)| k.starts_with(id) || id.starts_with(k.as_str()));
                Value::from(format!("container:{}", svc.map_or("(outside the app)", |(_, s)| s.as_str())))
            }
            None => Value::from(s),
        }
    }
}

fn list(v: &Value) -> Value {
    if v.is_null() { json!([]) } else { v.clone() }
}

fn map(v: &Value) -> Value {
    if v.is_null() { json!({}) } else { v.clone() }
}

fn num(v: &Value) -> Value {
    if v.is_null() { json!(0) } else { v.clone() }
}

fn string(v: &Value) -> Value {
    if v.is_null() { json!("") } else { v.clone() }
}

fn sorted(v: &Value) -> Value {
    let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|a| a.to_string());
    Value::Array(items)
}

/// `NET_ADMIN` and `CAP_NET_ADMIN` are the same capability to the Engine.
fn caps(v: &Value) -> Value {
    let mut c: Vec<String> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.to_uppercase().trim_start_matches("CAP_").to_string()))
        .into_iter()
        .flatten()
        .collect();
    c.sort();
    json!(c)
}

/// `bridge`/`default` (the Engine's default network), `host`, `none`,
/// `container:<service>`, or a user-defined network (its name may differ).
fn network_kind(ctx: &Context, v: &Value) -> Value {
    match v.as_str().unwrap_or("default") {
        "default" | "bridge" | "" => json!("bridge (the Engine's default network)"),
        "host" | "none" => v.clone(),
        s if s.starts_with("container:") => ctx.mode(v, ""),
        _ => json!("a network of the app"),
    }
}

/// The spec's mount of a config file: read-only, at its target.
pub fn config_mount(target: &str, content: &str) -> Value {
    let source = format!("(a file, sha256 {})", sha256_hex(content.as_bytes()));
    json!({"type": "bind", "target": target, "read_only": true, "source": source})
}

/// Adds the spec's config mounts that `fields` lacks (1.29 mounts none).
pub fn add_config_mounts(fields: &mut Fields, configs: &[(String, String)]) {
    let Some(Value::Array(mounts)) = fields.get_mut("Mounts") else { return };
    for (target, content) in configs {
        if !mounts.iter().any(|m| m["target"] == target.as_str()) {
            mounts.push(config_mount(target, content));
        }
    }
    mounts.sort_by_key(|m| m["target"].to_string());
}

/// The networks a container joins, by name without the project/app prefix
/// (`_` read as `-`, as tomo spells names); the app's own network is
/// `default`. Empty with a network mode of another kind.
fn networks(ctx: &Context, c: &Value) -> Value {
    let mut names: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| ctx.unprefixed(name).replace('_', "-"))
        .map(|n| if n.is_empty() { "default".to_string() } else { n })
        .filter(|n| !["host", "none", "bridge"].contains(&n.as_str()))
        .collect();
    names.sort();
    json!(names)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A mount's source: a bind's path (`<host>` for the run's folder), a file
/// outside it by its content (config files each tool writes where it
/// likes), a named volume without its project/app prefix.
fn mount_source(ctx: &Context, m: &Value) -> String {
    let src = m["Source"].as_str().unwrap_or("");
    match m["Type"].as_str() {
        Some("volume") => {
            let name = m["Name"].as_str().unwrap_or("");
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                "(anonymous volume)".into()
            } else {
                ctx.unprefixed(name)
            }
        }
        Some("bind") => {
            let host = ctx.host.display().to_string();
            if let Some(rest) = src.strip_prefix(&host) {
                format!("<host>{rest}")
            } else if Path::new(src).is_file() && !super::prepare::is_system(src) {
                format!("(a file, sha256 {})", sha256_hex(&std::fs::read(src).unwrap_or_default()))
            } else {
                src.into()
            }
        }
        _ => src.into(),
    }
}

/// Every mount but tmpfs ones (compared with `Tmpfs`), sorted by target.
fn mounts(ctx: &Context, c: &Value) -> Value {
    let mut out: Vec<Value> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] != "tmpfs")
        .map(|m| {
            json!({
                "type": m["Type"], "target": m["Destination"], "read_only": m["RW"] == false,
                "source": mount_source(ctx, m),
            })
        })
        .collect();
    out.sort_by_key(|m| m["target"].to_string());
    Value::Array(out)
}

/// tmpfs mounts, whether sent as `HostConfig.Tmpfs` or as tmpfs `Mounts`:
/// target → options.
fn tmpfs(h: &Value) -> Value {
    let mut out = map(&h["Tmpfs"]);
    for m in h["Mounts"].as_array().into_iter().flatten().filter(|m| m["Type"] == "tmpfs") {
        let o = &m["TmpfsOptions"];
        let mut opts = Vec::new();
        if let Some(size) = o["SizeBytes"].as_i64() {
            opts.push(format!("size={size}"));
        }
        if let Some(mode) = o["Mode"].as_u64() {
            opts.push(format!("mode={mode:o}"));
        }
        if m["ReadOnly"] == true {
            opts.push("ro".into());
        }
        out[m["Target"].as_str().unwrap_or("")] = json!(opts.join(","));
    }
    out
}

/// A healthcheck with every field present (the Engine omits zeros).
fn healthcheck(v: &Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let mut h = json!({"Test": v["Test"]});
    for k in ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"] {
        h[k] = num(&v[k]);
    }
    h
}

/// The container's host name, unless it is the Engine's default (its id).
fn hostname(c: &Value) -> Value {
    let (name, id) = (c["Config"]["Hostname"].as_str().unwrap_or(""), c["Id"].as_str().unwrap_or(""));
    if !name.is_empty() && id.starts_with(name) { json!("(the container id)") } else { json!(name) }
}

/// The compared fields of `c` (one `docker inspect` object).
pub fn fields(ctx: &Context, c: &Value) -> Fields {
    let (cfg, h) = (&c["Config"], &c["HostConfig"]);
    let mut f = Fields::new();
    f.insert("Cmd", cfg["Cmd"].clone());
    f.insert("Entrypoint", list(&cfg["Entrypoint"]));
    f.insert("Env", sorted(&list(&cfg["Env"])));
    f.insert("User", string(&cfg["User"]));
    f.insert("WorkingDir", string(&cfg["WorkingDir"]));
    f.insert("Hostname", hostname(c));
    f.insert("Mounts", mounts(ctx, c));
    f.insert("PortBindings", map(&h["PortBindings"]));
    f.insert("ExposedPorts", map(&cfg["ExposedPorts"]));
    f.insert("RestartPolicy", h["RestartPolicy"].clone());
    f.insert("CapAdd", caps(&h["CapAdd"]));
    f.insert("CapDrop", caps(&h["CapDrop"]));
    f.insert("Devices", list(&h["Devices"]));
    f.insert("DeviceRequests", list(&h["DeviceRequests"]));
    f.insert("Privileged", h["Privileged"].clone());
    f.insert("NetworkMode", network_kind(ctx, &h["NetworkMode"]));
    f.insert("Networks", networks(ctx, c));
    f.insert("PidMode", ctx.mode(&h["PidMode"], ""));
    f.insert("IpcMode", ctx.mode(&h["IpcMode"], ""));
    for k in ["Memory", "MemoryReservation", "NanoCpus", "CpuShares", "ShmSize"] {
        f.insert(k, num(&h[k]));
    }
    f.insert("PidsLimit", json!(h["PidsLimit"].as_i64().filter(|n| *n > 0).unwrap_or(0)));
    f.insert("Ulimits", sorted(&list(&h["Ulimits"])));
    f.insert("Tmpfs", tmpfs(h));
    f.insert("Sysctls", map(&h["Sysctls"]));
    f.insert("SecurityOpt", sorted(&list(&h["SecurityOpt"])));
    f.insert("LogConfig", json!({"Type": h["LogConfig"]["Type"], "Config": map(&h["LogConfig"]["Config"])}));
    f.insert("Healthcheck", healthcheck(&cfg["Healthcheck"]));
    f.insert("Init", json!(h["Init"] == true));
    f.insert("Runtime", json!(h["Runtime"].as_str().filter(|s| !s.is_empty()).unwrap_or("runc")));
    // The stand-in image sets no stop signal: unset means SIGTERM.
    f.insert("StopSignal", json!(cfg["StopSignal"].as_str().filter(|s| !s.is_empty()).unwrap_or("SIGTERM")));
    f.insert("StopTimeout", json!(cfg["StopTimeout"].as_i64().unwrap_or(10)));
    f.insert("Tty", cfg["Tty"].clone());
    f.insert("OpenStdin", cfg["OpenStdin"].clone());
    f
}

/// The compose keys whose `changed` entry in the conversion report explains
/// a difference in `field`.
pub fn keys_of(field: &str) -> &'static [&'static str] {
    match field {
        "Cmd" => &["command"],
        "Entrypoint" => &["entrypoint"],
        "Env" => &["environment", "env_file"],
        "User" => &["user"],
        "WorkingDir" => &["working_dir"],
        "Hostname" => &["hostname", "domainname"],
        "Mounts" => &["volumes", "configs", "secrets", "volumes_from"],
        "PortBindings" => &["ports"],
        "ExposedPorts" => &["expose", "ports"],
        "RestartPolicy" => &["restart", "deploy"],
        "CapAdd" => &["cap_add"],
        "CapDrop" => &["cap_drop"],
        "Devices" => &["devices"],
        "DeviceRequests" => &["deploy", "gpus"],
        "Privileged" => &["privileged"],
        "NetworkMode" | "Networks" => &["network_mode", "networks"],
        "PidMode" => &["pid"],
        "IpcMode" => &["ipc"],
        "Memory" => &["deploy", "mem_limit"],
        "MemoryReservation" => &["deploy", "mem_reservation"],
        "NanoCpus" => &["deploy", "cpus"],
        "CpuShares" => &["cpu_shares"],
        "ShmSize" => &["shm_size"],
        "PidsLimit" => &["deploy", "pids_limit"],
        "Ulimits" => &["ulimits"],
        "Tmpfs" => &["tmpfs", "volumes"],
        "Sysctls" => &["sysctls"],
        "SecurityOpt" => &["security_opt"],
        "LogConfig" => &["logging"],
        "Healthcheck" => &["healthcheck"],
        "Init" => &["init"],
        "Runtime" => &["runtime"],
        "StopSignal" => &["stop_signal"],
        "StopTimeout" => &["stop_grace_period"],
        "Tty" => &["tty"],
        "OpenStdin" => &["stdin_open"],
        _ => &[],
    }
}
