//! Environment, volumes and config files of a service.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::convert::Cx;
use super::report::Status;
use super::values::{self, scalar_text};
use crate::manifest::raw::*;
use crate::manifest::sources::within;
use crate::manifest::yaml::{Node, Value};

/// Keys whose values `--secrets vault` moves to the vault.
const CREDENTIAL_WORDS: [&str; 4] = ["PASSWORD", "SECRET", "TOKEN", "KEY"];

pub(super) fn is_credential(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    CREDENTIAL_WORDS.iter().any(|w| upper.contains(w))
}

/// `environment:` (mapping or `KEY=VALUE` list) → `env`. A key without a
/// value takes the variable's value, and is left out when it is unset, as
/// compose does.
pub(super) fn environment(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) -> (Status, String) {
    let pairs = values::pairs(cx, v, '=').unwrap_or_default();
    let mut env = BTreeMap::new();
    let mut notes = Vec::new();
    let mut vaulted = Vec::new();
    for (k, value) in pairs {
        let value = match value {
            Some(v) => v,
            None => match (cx.opts.vars)(&k) {
                Some(v) => {
                    notes.push(format!("`{k}` from the environment"));
                    v
                }
                None => {
                    notes.push(format!("`{k}` unset: left out, as compose does"));
                    continue;
                }
            },
        };
        if cx.opts.secrets
            && is_credential(&k)
            && !value.is_empty()
            && let Some(name) = vault_name(cx, svc, &k, &value)
        {
            vaulted.push(format!("`{k}` → secret `{name}`"));
            env.insert(k, EnvValue::Secret(SecretRef { secret: name }));
            continue;
        }
        env.insert(k, EnvValue::Plain(Scalar::String(value)));
    }
    s.env = Some(env);
    let list = matches!(v.value, Value::Seq(_));
    let mut all = vec![if list { "→ env (a list in compose)".to_string() } else { "→ env".to_string() }];
    all.extend(notes);
    let status = if vaulted.is_empty() { Status::Mapped } else { Status::Changed };
    all.extend(vaulted.into_iter().map(|v| format!("{v} in the vault (--secrets vault)")));
    (status, all.join("; "))
}

/// The secret name for `key`: `<app>-<key>`, or `<app>-<service>-<key>` when
/// another service stores a different value under the first.
fn vault_name(cx: &mut Cx<'_>, svc: &str, key: &str, value: &str) -> Option<String> {
    let tomo = cx.names.get(svc).cloned().unwrap_or_default();
    for candidate in [format!("{}-{key}", cx.app), format!("{}-{tomo}-{key}", cx.app)] {
        let name = super::convert::tomo_name(&candidate)?;
        match cx.secrets.iter().find(|(n, _)| *n == name) {
            Some((_, v)) if v == value => return Some(name),
            Some(_) => continue,
            None => {
                cx.secrets.push((name.clone(), value.to_string()));
                return Some(name);
            }
        }
    }
    None
}

/// `volumes:` of a service; relative bind sources become absolute.
pub(super) fn volumes(cx: &mut Cx<'_>, v: &Node, s: &mut RawService) -> (Status, String) {
    let Value::Seq(items) = &v.value else {
        cx.error(v.span, "compose-type", "`volumes` is a list");
        return (Status::Mapped, String::new());
    };
    let mut notes = Vec::new();
    let mut dropped = false;
    for n in items {
        let mount = match &n.value {
            Value::Map(_) => long_mount(cx, n, &mut notes, &mut dropped),
            _ => values::string(cx, n).map(|t| RawMount::Short(short_mount(cx, &t, &mut notes))),
        };
        s.volumes.get_or_insert_with(Vec::new).extend(mount);
    }
    let status = if dropped {
        Status::Dropped
    } else if notes.is_empty() {
        Status::Mapped
    } else {
        Status::Changed
    };
    (status, notes.join("; "))
}

fn short_mount(cx: &Cx<'_>, text: &str, notes: &mut Vec<String>) -> String {
    match text.split_once(':') {
        Some((src, rest)) if is_relative_bind(src) => {
            let abs = absolute(cx, src);
            notes.push(format!("`{src}` → `{abs}` (relative to the compose file)"));
            format!("{abs}:{rest}")
        }
        _ => text.to_string(),
    }
}

fn is_relative_bind(src: &str) -> bool {
    src == "." || src == ".." || src.starts_with("./") || src.starts_with("../")
}

fn absolute(cx: &Cx<'_>, src: &str) -> String {
    let Some(folder) = &cx.opts.folder else { return src.to_string() };
    normalize(&folder.join(src)).display().to_string()
}

/// `a/./b/../c` → `a/c`, lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn long_mount(cx: &mut Cx<'_>, n: &Node, notes: &mut Vec<String>, dropped: &mut bool) -> Option<RawMount> {
    let mut kind = None;
    let mut m = RawMountLong {
        kind: MountKind::Volume,
        source: None,
        target: String::new(),
        read_only: None,
        create_host_path: None,
        owner: None,
        mode: None,
    };
    for (k, v) in n.as_map().unwrap_or_default() {
        match k.name.as_str() {
            "type" => kind = values::string(cx, v),
            "source" => m.source = values::string(cx, v),
            "target" => m.target = values::string(cx, v).unwrap_or_default(),
            "read_only" => m.read_only = values::boolean(cx, v),
            "bind" => {
                for (bk, bv) in values::map(cx, v, "bind") {
                    match bk.name.as_str() {
                        "create_host_path" => m.create_host_path = values::boolean(cx, bv),
                        other => {
                            notes.push(format!("bind `{other}` dropped"));
                            *dropped = true;
                        }
                    }
                }
            }
            "consistency" => notes.push("`consistency` ignored (macOS only)".into()),
            "volume" | "tmpfs" | "image" => {
                notes.push(format!("`{}` options dropped", k.name));
                *dropped = true;
            }
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown volume key `{other}`"));
            }
        }
    }
    m.kind = match kind.as_deref() {
        Some("bind") => MountKind::Bind,
        Some("volume") => MountKind::Volume,
        Some("tmpfs") => MountKind::Tmpfs,
        other => {
            cx.error(
                n.span,
                "compose-volume-type",
                format!("volume type `{}` is not bind, volume or tmpfs", other.unwrap_or("")),
            );
            return None;
        }
    };
    if m.kind == MountKind::Bind
        && let Some(src) = m.source.clone().filter(|s| is_relative_bind(s))
    {
        let abs = absolute(cx, &src);
        notes.push(format!("`{src}` → `{abs}` (relative to the compose file)"));
        m.source = Some(abs);
    }
    Some(RawMount::Long(m))
}

/// `configs:` of a service → `files`, from the top-level `configs`.
pub(super) fn configs(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) {
    let Value::Seq(items) = &v.value else {
        cx.error(v.span, "compose-type", "`configs` is a list");
        return;
    };
    let mut notes = Vec::new();
    let mut dropped = false;
    for n in items {
        let (source, target, mode, uid, gid) = match &n.value {
            Value::Map(_) => (
                n.get("source").and_then(scalar_text).unwrap_or_default(),
                n.get("target").and_then(scalar_text),
                n.get("mode").and_then(scalar_text),
                n.get("uid").and_then(scalar_text),
                n.get("gid").and_then(scalar_text),
            ),
            _ => (values::string(cx, n).unwrap_or_default(), None, None, None, None),
        };
        let Some(decl) = cx.configs.get(&source).cloned() else {
            cx.error(
                n.span,
                "compose-unknown-config",
                format!("config `{source}` is not declared under the top-level `configs`"),
            );
            continue;
        };
        let mut file = RawFile {
            target: target.unwrap_or_else(|| format!("/{source}")),
            content: None,
            source: None,
            mode: mode.map(|m| octal(&m)),
            uid: uid.and_then(|u| u.parse().ok()),
            gid: gid.and_then(|g| g.parse().ok()),
        };
        if let Some(text) = decl.get("content").and_then(scalar_text) {
            file.content = Some(RawFileContent::Text(text));
            notes.push(format!("`{source}` → files (content inline)"));
        } else if let Some(f) = decl.get("file") {
            let path = values::string(cx, f).unwrap_or_default();
            if !inside(&path) {
                cx.error(
                    f.span,
                    "compose-path-traversal",
                    format!("config file `{path}` is outside the compose file's folder"),
                )
                .help = Some("config files must lie in the compose file's folder (path traversal is refused)".into());
                continue;
            }
            notes.push(format!("`{source}` → files (source `{path}`: keep it beside the manifest)"));
            file.source = Some(path);
        } else {
            notes.push(format!("`{source}` (external or from the environment) dropped"));
            dropped = true;
            continue;
        }
        s.files.get_or_insert_with(Vec::new).push(file);
    }
    cx.entry(svc, "configs", if dropped { Status::Dropped } else { Status::Mapped }, notes.join("; "));
}

/// A relative path to a file that stays inside its folder, by the rule the
/// manifest's `files[].source` is read with (`manifest::sources::within`):
/// no absolute path or leading `~`, no `..` above the folder.
fn inside(path: &str) -> bool {
    within("", path).is_some_and(|rel| !rel.is_empty())
}

/// A compose file mode (`0440`, or decimal `288`) as tomo's octal string.
fn octal(m: &str) -> String {
    if m.starts_with('0') {
        return m.to_string();
    }
    match m.parse::<u32>() {
        Ok(n) => format!("{n:04o}"),
        Err(_) => m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_the_folder() {
        assert!(inside("nginx.conf"));
        assert!(inside("./conf/a.conf"));
        assert!(inside("conf/../a.conf"));
        assert!(!inside("../secret"));
        assert!(!inside("conf/../../x"));
        assert!(!inside("/etc/passwd"));
        assert!(!inside("."));
        assert!(!inside("conf/.."));
        // A leading `~` is the home folder to compose: outside.
        assert!(!inside("~/nginx.conf"));
    }

    #[test]
    fn modes_are_octal_strings() {
        assert_eq!(octal("0440"), "0440");
        assert_eq!(octal("288"), "0440");
    }

    #[test]
    fn credential_keys() {
        assert!(is_credential("POSTGRES_PASSWORD"));
        assert!(is_credential("api_key"));
        assert!(!is_credential("POSTGRES_USER"));
    }
}
