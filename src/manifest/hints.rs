//! Help for what a manifest writer brings from Docker Compose, and for plain
//! misspellings: used by `schema`'s walker for every unknown field, value not
//! in an enum and value of the wrong type, wherever a manifest is validated.
//!
//! A hint applies only where tomo's own spelling is allowed (`environment` is
//! answered with `env` where `env` is a field), so each is told the fields
//! allowed where the problem is. Hints name keys and shapes, never values a
//! user may have meant as secrets (environment values are shown as `…`).

use super::yaml::{Node, Value};
use crate::diag::did_you_mean;

/// Help for an unknown field `key`, written with `value`, where `known` are
/// the fields allowed.
pub(super) fn unknown_field(key: &str, value: &Node, known: &[&str]) -> String {
    if let Some(h) = compose_field(key, value, known) {
        return h;
    }
    match did_you_mean(key, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("valid fields here: {}", listed(known)),
    }
}

/// The fields to list: extension keys (`x-…`, allowed everywhere) left out.
fn listed(known: &[&str]) -> String {
    known.iter().filter(|k| !k.starts_with("x-")).copied().collect::<Vec<_>>().join(", ")
}

/// Help for a field that belongs to the other form of a document or value
/// (a service field at the top of an app with `services`).
pub(super) fn other_form(key: &str, known: &[&str], other: Option<&str>) -> String {
    if known.contains(&"services") {
        return format!("an app with `services` sets `{key}` per service: move it under `services.NAME`");
    }
    match other {
        Some(d) => format!("`{key}` belongs to the other form: {}", lower_first(d)),
        None => format!("`{key}` belongs to another form of this value; valid fields here: {}", listed(known)),
    }
}

/// Help for `given`, not one of the `allowed` values.
pub(super) fn enum_value(given: &str, allowed: &[&str]) -> Option<String> {
    const COMPOSE: [(&str, &str); 4] = [
        ("service_healthy", "healthy"),
        ("service_started", "started"),
        ("service_completed_successfully", "completed"),
        ("if_not_present", "missing"),
    ];
    if let Some((_, ours)) = COMPOSE.iter().find(|(c, ours)| *c == given && allowed.contains(ours)) {
        return Some(format!("tomo calls this `{ours}`"));
    }
    did_you_mean(given, allowed.iter().copied()).map(|s| format!("did you mean `{s}`?"))
}

/// Help for `node`, whose type is none of `types` (JSON Schema type names).
pub(super) fn wrong_type(node: &Node, types: &[&str]) -> Option<String> {
    let wants = |t: &str| types.contains(&t);
    match &node.value {
        Value::String(s) if wants("integer") && s.trim().parse::<i64>().is_ok() => {
            Some(format!("write the number without quotes: `{}`", s.trim()))
        }
        Value::String(s) if wants("number") && s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Some(format!("write the number without quotes: `{}`", s.trim()))
        }
        Value::Seq(items) if wants("object") => {
            let keys = key_value_items(items)?;
            let first = keys.first()?;
            Some(format!(
                "write a mapping, one `KEY: value` per line, not a list of `KEY=VALUE` items: `{first}: …` for `- {first}=…`"
            ))
        }
        Value::String(s) if wants("array") && !wants("string") && s.len() <= 80 => {
            Some(format!("write a list: `[{}]`", quoted(s)))
        }
        _ => None,
    }
}

/// The keys of a compose-style list of `KEY=VALUE` strings, if it is one.
fn key_value_items(items: &[Node]) -> Option<Vec<&str>> {
    items
        .iter()
        .map(|i| {
            let s = i.as_str()?;
            let key = s.split_once('=').map_or(s, |(k, _)| k);
            (!key.is_empty() && !key.contains(char::is_whitespace)).then_some(key)
        })
        .collect()
}

/// Compose spellings: a field tomo spells or shapes differently, or has no
/// counterpart for. `None` when `key` is not one, here.
fn compose_field(key: &str, value: &Node, known: &[&str]) -> Option<String> {
    let has = |k: &str| known.contains(&k);
    if key == "version" && has("kind") {
        return Some("tomo manifests have no `version`: remove it".into());
    }
    if has("image") && has("env") {
        return service_field(key, value);
    }
    if has("services") {
        return match key {
            "configs" | "secrets" => Some(format!(
                "tomo has no top-level `{key}`: give a service `files:` (`content`, `source` or `{{secret: NAME}}`), \
                 or an `env` value `{{secret: NAME}}` from the vault"
            )),
            _ => None,
        };
    }
    if has("test") && has("retries") && key == "start_interval" {
        return Some("tomo has no `start_interval`: the check runs every `interval`".into());
    }
    if has("create_host_path") {
        return mount_field(key, value);
    }
    if has("published") && key == "mode" {
        return Some("tomo publishes ports on the server itself (compose's `mode: host`): remove `mode`".into());
    }
    if has("internal") && key == "ipam" {
        return Some("tomo gives each network a free subnet from the Settings `networks.pool`: remove `ipam`".into());
    }
    None
}

fn service_field(key: &str, value: &Node) -> Option<String> {
    let h = match key {
        "environment" => match &value.value {
            Value::Seq(items) => {
                let first = key_value_items(items).and_then(|k| k.first().map(|s| s.to_string()));
                let example = first.map_or_else(String::new, |k| format!(", e.g. `{k}: …` for `- {k}=…`"));
                format!("did you mean `env`? tomo's `env` is a mapping, one `KEY: value` per line{example}")
            }
            _ => "did you mean `env`? (compose's `environment`)".into(),
        },
        "deploy" => deploy(value),
        "mem_limit" => resources("memory", value, false),
        "mem_reservation" => resources("memory_reservation", value, false),
        "cpus" => resources("cpus", value, true),
        "cpu_shares" => resources("cpu_shares", value, true),
        "pids_limit" => resources("pids", value, true),
        "gpus" => "tomo sets GPUs in `resources`: `resources: {gpus: all}` (or a count, or requests)".into(),
        "pull_policy" => "did you mean `pull`? (`missing`, `always` or `never`)".into(),
        "expose" => "not needed: services of an app reach each other on every port over the app's network; \
                     a container port can be noted unpublished in `ports` as a bare number, e.g. `ports: [80]`"
            .into(),
        "links" => "not needed: services of an app reach each other by service name; for another name add an \
                    alias: `networks: {default: {aliases: [NAME]}}`"
            .into(),
        "configs" => "tomo writes config files itself: `files: [{target: /path/in/container, content: …}]` \
                      (or `source: FILE` beside the manifest)"
            .into(),
        "secrets" => "give a vault secret as `env: {NAME: {secret: NAME}}`, or as a file: \
                      `files: [{target: /run/secrets/NAME, content: {secret: NAME}}]`"
            .into(),
        "build" => {
            "tomo deploys images and does not build them: build and push the image, then name it in `image`".into()
        }
        "volumes_from" => {
            "list the volumes to share in `volumes` instead (a named volume can be mounted by several services)".into()
        }
        "profiles" => {
            "tomo has no profiles: declare a service that should not run `state: absent` (no container) or `state: stopped`".into()
        }
        "scale" => "tomo runs one container per service".into(),
        k if UNSUPPORTED.contains(&k) => format!("tomo has no counterpart of Docker Compose's `{k}`"),
        _ => return None,
    };
    Some(h)
}

/// Compose service fields tomo has nothing for.
const UNSUPPORTED: [&str; 30] = [
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "extends",
    "external_links",
    "group_add",
    "isolation",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "platform",
    "read_only",
    "storage_opt",
    "userns_mode",
];

fn mount_field(key: &str, value: &Node) -> Option<String> {
    match key {
        "bind" => {
            let create = at(value, &["create_host_path"]).map(text);
            Some(match create {
                Some(v) => format!("write it on the mount itself: `create_host_path: {v}`"),
                None => "tomo has no `bind` options but `create_host_path`, written on the mount itself".into(),
            })
        }
        "volume" | "tmpfs" | "consistency" => Some(format!("tomo's long-form mounts have no `{key}` options")),
        _ => None,
    }
}

/// `mem_limit: 512m` → `resources: {memory: 512m}`.
fn resources(field: &str, value: &Node, number: bool) -> String {
    format!("tomo sets this in `resources`: `resources: {{{field}: {}}}`", scalar(value, number))
}

/// Compose's `deploy` mapped onto `resources` (and `restart`).
fn deploy(value: &Node) -> String {
    const MAP: [(&[&str], &str, bool); 4] = [
        (&["resources", "limits", "memory"], "memory", false),
        (&["resources", "limits", "cpus"], "cpus", true),
        (&["resources", "limits", "pids"], "pids", true),
        (&["resources", "reservations", "memory"], "memory_reservation", false),
    ];
    let mut parts: Vec<String> = MAP
        .iter()
        .filter_map(|(path, to, number)| at(value, path).map(|n| format!("{to}: {}", scalar(n, *number))))
        .collect();
    if let Some(devices) = at(value, &["resources", "reservations", "devices"]) {
        parts.push(gpus(devices));
    }
    let mut help = if parts.is_empty() {
        "tomo sets these in `resources`: `memory` (compose's deploy.resources.limits.memory), `cpus` (limits.cpus), \
         `pids` (limits.pids), `memory_reservation` (reservations.memory), `gpus` (reservations.devices)"
            .to_string()
    } else {
        format!("tomo sets these in `resources`: `resources: {{{}}}`", parts.join(", "))
    };
    let restart = at(value, &["restart_policy", "condition"]).and_then(Node::as_str).and_then(|c| match c {
        "any" => Some("always"),
        "on-failure" => Some("on-failure"),
        "none" => Some("no"),
        _ => None,
    });
    if let Some(r) = restart {
        help.push_str(&format!(", and `restart: {r}` for `restart_policy`"));
    }
    if at(value, &["replicas"]).is_some() {
        help.push_str("; tomo runs one container per service (no `replicas`)");
    }
    help
}

/// `reservations.devices` as tomo's `gpus`.
fn gpus(devices: &Node) -> String {
    let first = match &devices.value {
        Value::Seq(items) if items.len() == 1 => &items[0],
        _ => return "gpus: […]".into(),
    };
    match (at(first, &["count"]).map(|c| &c.value), at(first, &["device_ids"])) {
        (Some(Value::String(s)), None) if s == "all" => "gpus: all".into(),
        (Some(Value::Number(n)), None) => format!("gpus: {n}"),
        _ => "gpus: [{device_ids: […], capabilities: [gpu]}]".into(),
    }
}

fn at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter().try_fold(node, |n, k| n.get(k))
}

/// A scalar as it would be written where tomo wants a number or a string.
fn scalar(node: &Node, number: bool) -> String {
    match &node.value {
        Value::String(s) if number && s.trim().parse::<f64>().is_ok() => s.trim().to_string(),
        Value::Number(n) if !number => format!("\"{n}\""),
        _ => text(node),
    }
}

fn text(node: &Node) -> String {
    match &node.value {
        Value::String(s) => quoted(s),
        Value::Number(n) => n.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Seq(_) => "[…]".into(),
        Value::Map(_) => "{…}".into(),
    }
}

/// `s` as a YAML flow scalar: bare when that reads back as the same string.
fn quoted(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && s.parse::<f64>().is_err()
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~");
    if plain { s.to_string() } else { format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")) }
}

fn lower_first(s: &str) -> String {
    let s = s.trim_end_matches('.');
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;

    fn node(text: &str) -> Node {
        let (docs, e) = yaml::parse(text);
        assert!(e.is_none());
        docs.into_iter().next().unwrap().root
    }

    const SERVICE: [&str; 4] = ["image", "env", "resources", "ports"];

    #[test]
    fn deploy_is_mapped_onto_resources() {
        let d = node(
            "resources:\n  limits: {memory: 1g, cpus: '0.5'}\n  reservations:\n    memory: 256m\n    devices: [{driver: nvidia, count: all, capabilities: [gpu]}]\nrestart_policy: {condition: any}\n",
        );
        assert_eq!(
            unknown_field("deploy", &d, &SERVICE),
            "tomo sets these in `resources`: `resources: {memory: 1g, cpus: 0.5, memory_reservation: 256m, gpus: all}`, and `restart: always` for `restart_policy`"
        );
        assert!(unknown_field("deploy", &node("{}"), &SERVICE).contains("`memory_reservation` (reservations.memory)"));
    }

    #[test]
    fn environment_lists_name_keys_never_values() {
        let h = unknown_field("environment", &node("[PASSWORD=hunter2, B=2]"), &SERVICE);
        assert!(h.starts_with("did you mean `env`?"), "{h}");
        assert!(h.contains("`PASSWORD: …` for `- PASSWORD=…`"), "{h}");
        assert!(!h.contains("hunter2"), "{h}");
        let w = wrong_type(&node("[PASSWORD=hunter2]"), &["object", "null"]).unwrap();
        assert!(w.contains("`PASSWORD: …`") && !w.contains("hunter2"), "{w}");
    }

    #[test]
    fn compose_hints_apply_only_where_tomo_has_the_field() {
        let v = node("x");
        assert!(unknown_field("environment", &v, &["name", "host"]).starts_with("valid fields here"));
        assert_eq!(
            unknown_field("mem_limit", &node("512m"), &SERVICE),
            "tomo sets this in `resources`: `resources: {memory: 512m}`"
        );
        assert_eq!(
            unknown_field("cpus", &node("'1.5'"), &SERVICE),
            "tomo sets this in `resources`: `resources: {cpus: 1.5}`"
        );
        assert_eq!(
            enum_value("service_healthy", &["started", "healthy", "completed"]).unwrap(),
            "tomo calls this `healthy`"
        );
        assert_eq!(enum_value("service_healthy", &["a", "b"]), None);
        assert_eq!(wrong_type(&node("'3'"), &["integer", "null"]).unwrap(), "write the number without quotes: `3`");
        assert_eq!(wrong_type(&node("'x'"), &["integer"]), None);
        assert_eq!(wrong_type(&node("/run"), &["array"]).unwrap(), "write a list: `[/run]`");
        assert_eq!(
            unknown_field("dns", &node("[1.1.1.1]"), &SERVICE),
            "tomo has no counterpart of Docker Compose's `dns`"
        );
        assert!(UNSUPPORTED.windows(2).all(|w| w[0] < w[1]), "keep UNSUPPORTED sorted");
    }
}
