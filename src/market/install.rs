//! What installing a store app needs besides the compose import: finding
//! its compose file inside the store (never outside), its folder's checksum,
//! CasaOS's data root replaced, the host ports it publishes (moved with
//! `--set HOST=NEW`), the next free port, and its version. Pure but for
//! reading the store's files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::raw::{PortNumberOrRange, RawApp, RawDocument, RawPort, RawService};
use crate::model::{ImageRef, PortMapping, PortRange};

/// The folder CasaOS stores keep apps' data under.
pub const CASAOS_DATA_ROOT: &str = "/DATA/AppData";

/// The compose file names an app folder may hold, in order of preference.
const COMPOSE_NAMES: [&str; 4] = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"];

/// The store-relative path of app `id`'s compose file when the catalog does
/// not know it: `Apps/<id>/…` (CasaOS) or `<id>/…` (compose folders), the
/// folder name compared without case.
pub fn locate(root: &Path, id: &str) -> Option<String> {
    for parent in ["Apps", ""] {
        let dir = if parent.is_empty() { root.to_path_buf() } else { root.join(parent) };
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.eq_ignore_ascii_case(id) {
                continue;
            }
            for f in COMPOSE_NAMES {
                if e.path().join(f).is_file() {
                    let prefix = if parent.is_empty() { String::new() } else { format!("{parent}/") };
                    return Some(format!("{prefix}{name}/{f}"));
                }
            }
        }
    }
    None
}

/// `source` (store-relative) as a file inside the store at `root`; a path
/// that leaves the store (`..`, a symlink out of it) is refused.
pub fn within_store(root: &Path, source: &str) -> Result<PathBuf, String> {
    let root = root.canonicalize().map_err(|e| format!("the store's folder `{}`: {e}", root.display()))?;
    let path = root.join(source).canonicalize().map_err(|e| format!("`{source}`: {e}"))?;
    if !path.starts_with(&root) {
        return Err(format!("`{source}` leads outside the store's folder"));
    }
    Ok(path)
}

/// SHA-256 (hex) of a folder's regular files, names and contents, in name order.
pub fn folder_checksum(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files, 0)?;
    files.sort();
    let mut h = Sha256::new();
    for (rel, path) in files {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(std::fs::read(path)?);
        h.update([0]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>, depth: usize) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            collect(root, &p, out, depth + 1)?;
        } else if t.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            out.push((rel, p));
        }
    }
    Ok(())
}

/// The compose text with CasaOS's `/DATA/AppData` replaced by `data_root`.
pub fn fill_data_root(text: &str, data_root: &str) -> String {
    text.replace(CASAOS_DATA_ROOT, data_root)
}

fn services_mut(doc: &mut RawDocument) -> Vec<(String, &mut RawService)> {
    match doc {
        RawDocument::App(RawApp::Single(s)) => vec![(s.name.clone(), &mut s.service)],
        RawDocument::App(RawApp::Multi(m)) => m.services.iter_mut().map(|(n, s)| (n.clone(), &mut s.service)).collect(),
        _ => Vec::new(),
    }
}

fn services(doc: &RawDocument) -> Vec<(&str, &RawService)> {
    match doc {
        RawDocument::App(RawApp::Single(s)) => vec![(s.name.as_str(), &s.service)],
        RawDocument::App(RawApp::Multi(m)) => m.services.iter().map(|(n, s)| (n.as_str(), &s.service)).collect(),
        _ => Vec::new(),
    }
}

/// A port entry as a mapping (`None`: not one tomo reads).
fn mapping(p: &RawPort) -> Option<PortMapping> {
    match p {
        RawPort::Short(t) => PortMapping::parse(t).ok(),
        RawPort::Number(_) => None,
        RawPort::Long(l) => {
            let host = match l.published.as_ref()? {
                PortNumberOrRange::Number(n) => PortRange::single(*n),
                PortNumberOrRange::Range(r) => PortRange::parse(r).ok()?,
            };
            let mut m = PortMapping::parse(&format!("{host}:{}", l.target)).ok()?;
            m.host_ip = l.host_ip.as_deref().and_then(|ip| ip.parse().ok());
            Some(m)
        }
    }
}

/// The host ports the app's services publish, by service.
pub fn host_ports(doc: &RawDocument) -> Vec<(String, PortMapping)> {
    let mut out = Vec::new();
    for (name, s) in services(doc) {
        for p in s.ports.iter().flatten() {
            if let Some(m) = mapping(p).filter(|m| m.host.is_some()) {
                out.push((name.to_string(), m));
            }
        }
    }
    out
}

/// Publishes host port `old` as `new` (`--set OLD=NEW`); returns the old ports found.
pub fn remap_ports(doc: &mut RawDocument, map: &BTreeMap<u16, u16>) -> BTreeSet<u16> {
    let mut found = BTreeSet::new();
    for (_, s) in services_mut(doc) {
        for p in s.ports.iter_mut().flatten() {
            let Some(mut m) = mapping(p) else { continue };
            let Some(host) = m.host.filter(|h| h.start == h.end) else { continue };
            let Some(new) = map.get(&host.start) else { continue };
            found.insert(host.start);
            m.host = Some(PortRange::single(*new));
            match p {
                RawPort::Long(l) => l.published = Some(PortNumberOrRange::Number(*new)),
                other => *other = RawPort::Short(m.to_string()),
            }
        }
    }
    found
}

/// The first port from `from` up that overlaps none of `taken`.
pub fn next_free(taken: &[PortRange], from: u16) -> Option<u16> {
    (from..=u16::MAX).find(|p| !taken.iter().any(|t| t.overlaps(&PortRange::single(*p))))
}

/// The version of an app: the image tag of its main service (else the first).
pub fn version(doc: &RawDocument, main: Option<&str>) -> String {
    let all = services(doc);
    let main = main.and_then(|m| all.iter().find(|(n, _)| *n == m)).or(all.first());
    main.and_then(|(_, s)| ImageRef::parse(&s.image).ok()).and_then(|i| i.tag).unwrap_or_else(|| "latest".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> RawDocument {
        let v: serde_json::Value = serde_json::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ports_are_listed_and_moved() {
        let mut d = doc(
            r#"{"kind":"App","name":"x","server":"local","services":{"a":{"image":"n:1","ports":["8080:80","127.0.0.1:53:53/udp",{"target":443,"published":8443}]},"b":{"image":"m"}}}"#,
        );
        let ports: Vec<String> = host_ports(&d).iter().map(|(s, m)| format!("{s} {m}")).collect();
        assert_eq!(ports, ["a 8080:80", "a 127.0.0.1:53:53/udp", "a 8443:443"]);
        let found = remap_ports(&mut d, &BTreeMap::from([(8080, 8081), (8443, 9443), (1, 2)]));
        assert_eq!(found, BTreeSet::from([8080, 8443]));
        let ports: Vec<String> = host_ports(&d).iter().map(|(_, m)| m.to_string()).collect();
        assert_eq!(ports, ["8081:80", "127.0.0.1:53:53/udp", "9443:443"]);
    }

    #[test]
    fn next_free_skips_taken_ranges() {
        let taken = [PortRange::single(8080), PortRange { start: 8081, end: 8083 }];
        assert_eq!(next_free(&taken, 8080), Some(8084));
        assert_eq!(next_free(&taken, 9000), Some(9000));
    }

    #[test]
    fn version_is_the_main_image_tag() {
        let d = doc(
            r#"{"kind":"App","name":"x","server":"local","services":{"db":{"image":"postgres:14.2@sha256:2c954f8c5d03da58f8b82645b783b56c1135df17e650b186b296fa1bb71f9cfd"},"web":{"image":"nc:34"}}}"#,
        );
        assert_eq!(version(&d, Some("web")), "34");
        assert_eq!(version(&d, None), "14.2");
    }

    #[test]
    fn a_source_outside_the_store_is_refused() {
        let dir = std::env::temp_dir().join(format!("tomo-market-within-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("store/Apps/x")).unwrap();
        std::fs::write(dir.join("store/Apps/x/docker-compose.yml"), "services: {}").unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("store/Apps/evil")).unwrap();
        assert_eq!(locate(&dir.join("store"), "X").as_deref(), Some("Apps/x/docker-compose.yml"));
        assert!(within_store(&dir.join("store"), "Apps/x/docker-compose.yml").is_ok());
        assert!(within_store(&dir.join("store"), "Apps/evil/passwd").unwrap_err().contains("outside"));
        assert!(within_store(&dir.join("store"), "../store/Apps/x/docker-compose.yml").is_ok());
        let a = folder_checksum(&dir.join("store/Apps/x")).unwrap();
        std::fs::write(dir.join("store/Apps/x/docker-compose.yml"), "services: {a: {}}").unwrap();
        assert_ne!(a, folder_checksum(&dir.join("store/Apps/x")).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
