//! CasaOS stores: `Apps/<ID>/docker-compose.yml`, each a compose file with
//! an `x-casaos` block (title, tagline and description per locale, category,
//! author, icon, main service…), and store-level `category-list.json`,
//! `featured-apps.json` / `recommend-list.json`. BigBear's per-app
//! `config.json` gives a version where the image has no tag.
//!
//! Lenient: real stores are sloppy (no `main`, locales indented one level
//! too little): what can be read is indexed, and each guess is a note.

use std::path::Path;

use super::compose::{self, text};
use super::{AppEntry, Category, InvalidApp, Scan, files};
use crate::manifest::yaml::{self, Node, Value};

/// The compose file names a CasaOS app folder may use, in preference order.
pub const COMPOSE_FILES: &[&str] = &["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"];

/// Reads a CasaOS store rooted at `root` (canonical).
pub fn scan(root: &Path) -> std::result::Result<Scan, String> {
    let apps_dir = root.join("Apps");
    let mut scan = Scan::default();
    for (id, dir) in super::app_folders(root, &apps_dir)? {
        let rel = format!("Apps/{id}");
        let dir = match dir {
            Ok(dir) => dir,
            Err(why) => {
                scan.invalid.push(InvalidApp { id, source: rel.clone(), reason: format!("{rel} {why}") });
                continue;
            }
        };
        match read_folder(root, &dir, &id, &rel, true) {
            Ok(Some(entry)) => scan.apps.push(entry),
            Ok(None) => scan.invalid.push(InvalidApp {
                id: id.clone(),
                source: rel.clone(),
                reason: format!("{rel}: no docker-compose.yml"),
            }),
            Err(invalid) => scan.invalid.push(invalid),
        }
    }
    scan.categories = categories(root);
    scan.featured = featured(root);
    Ok(scan)
}

/// Reads the app in folder `dir` (`rel` from the root): `None` when the
/// folder has no compose file. `casaos`: the file is expected to carry
/// `x-casaos` (a note when it does not).
pub fn read_folder(
    root: &Path,
    dir: &Path,
    id: &str,
    rel: &str,
    casaos: bool,
) -> std::result::Result<Option<AppEntry>, InvalidApp> {
    let invalid = |source: &str, reason: String| InvalidApp { id: id.to_string(), source: source.to_string(), reason };
    let Some(name) = COMPOSE_FILES.iter().find(|f| std::fs::symlink_metadata(dir.join(f)).is_ok()) else {
        return Ok(None);
    };
    let source = format!("{rel}/{name}");
    let text = files::read_text(root, &dir.join(name)).map_err(|why| invalid(&source, format!("{source} {why}")))?;
    let checksum = files::checksum(root, dir).map_err(|why| invalid(&source, format!("{rel}: {why}")))?;
    let mut entry = read_app(id, &source, &text, casaos).map_err(|reason| invalid(&source, reason))?;
    entry.checksum = checksum;
    if entry.version.is_empty() || entry.version == "latest" {
        entry.version = bigbear_version(root, dir).unwrap_or(entry.version);
    }
    Ok(Some(entry))
}

/// Reads one compose file into a catalog entry (no checksum); the error is
/// the `file:line:column: message` reason the app is invalid.
pub fn read_app(id: &str, source: &str, content: &str, casaos: bool) -> std::result::Result<AppEntry, String> {
    let (docs, err) = yaml::parse(content);
    if let Some(e) = err {
        return Err(format!("{source}:{}:{}: {}", e.span.line, e.span.column, e.message));
    }
    let Some(doc) = docs.into_iter().next() else {
        return Err(format!("{source}: the file is empty"));
    };
    let root = &doc.root;
    if root.as_map().is_none() {
        return Err(format!("{source}:{}:{}: the compose file is not a mapping", root.span.line, root.span.column));
    }
    let services = compose::services(root);
    if services.is_empty() {
        let span = root.get("services").map_or(root.span, |n| n.span);
        return Err(format!("{source}:{}:{}: the compose file has no services", span.line, span.column));
    }
    let mut notes: Vec<String> =
        doc.problems.iter().map(|p| format!("{source}:{}: {}", p.span.line, p.message)).collect();
    let empty = Node { value: Value::Null, span: root.span };
    let x = match root.get("x-casaos") {
        Some(x) if x.as_map().is_some() => x,
        Some(x) => {
            notes.push(format!("{source}:{}: `x-casaos` is not a mapping; ignored", x.span.line));
            &empty
        }
        None => {
            if casaos {
                notes.push(format!("{source}: no `x-casaos` block: the app has only its folder name"));
            }
            &empty
        }
    };
    let main = main_service(x, &services, source, casaos, &mut notes);
    let main_node = services.iter().find(|(n, _)| *n == main).map(|(_, s)| *s);
    let image = main_node.and_then(|s| s.get("image")).and_then(text).unwrap_or_default();
    let mut entry = AppEntry {
        id: id.to_string(),
        title: localized(x, "title", source, &mut notes),
        tagline: localized(x, "tagline", source, &mut notes),
        description: localized(x, "description", source, &mut notes),
        category: x.get("category").and_then(text).unwrap_or_default(),
        author: x.get("author").and_then(text).unwrap_or_default(),
        developer: x.get("developer").and_then(text).unwrap_or_default(),
        icon: x.get("icon").and_then(text).unwrap_or_default(),
        screenshots: compose::strings(x.get("screenshot_link")),
        version: if image.is_empty() { String::new() } else { compose::image_tag(&image) },
        architectures: compose::strings(x.get("architectures")),
        ports: compose::published_ports(root),
        main: Some(main),
        source: source.to_string(),
        checksum: String::new(),
        notes: Vec::new(),
    };
    if entry.title.is_empty() {
        entry.title = root.get("name").and_then(text).unwrap_or_else(|| id.to_string());
    }
    entry.notes = notes;
    Ok(entry)
}

/// The main service: `x-casaos.main` when it names a service, else the first.
fn main_service(x: &Node, services: &[(&str, &Node)], source: &str, casaos: bool, notes: &mut Vec<String>) -> String {
    let first = services.first().map(|(n, _)| n.to_string()).unwrap_or_default();
    match x.get("main") {
        Some(m) => match text(m) {
            Some(name) if services.iter().any(|(n, _)| *n == name) => name,
            _ => {
                notes.push(format!(
                    "{source}:{}: `x-casaos.main` names no service of the file; the first service `{first}` is the main one",
                    m.span.line
                ));
                first
            }
        },
        None => {
            if casaos && x.as_map().is_some() {
                notes.push(format!("{source}: no `x-casaos.main`; the first service `{first}` is the main one"));
            }
            first
        }
    }
}

/// Whether `key` looks like a locale (`en_US`, `zh_CN`, `en-us`, `en`).
fn is_locale(key: &str) -> bool {
    let b = key.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
        || (b.len() == 5
            && (b[2] == b'_' || b[2] == b'-')
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && b[3..].iter().all(u8::is_ascii_alphabetic))
}

/// The text for `en_us` (any case), else English, else the first locale.
pub fn pick_locale<'a>(entries: impl Iterator<Item = (&'a str, String)>) -> Option<String> {
    let all: Vec<(&str, String)> = entries.filter(|(_, v)| !v.trim().is_empty()).collect();
    let norm = |k: &str| k.to_ascii_lowercase().replace('-', "_");
    all.iter()
        .find(|(k, _)| norm(k) == "en_us")
        .or_else(|| all.iter().find(|(k, _)| norm(k).starts_with("en")))
        .or_else(|| all.first())
        .map(|(_, v)| v.trim_end().to_string())
}

/// A text given per locale (or as plain text) under `x.<key>`.
fn localized(x: &Node, key: &str, source: &str, notes: &mut Vec<String>) -> String {
    let Some(node) = x.get(key) else { return String::new() };
    match &node.value {
        Value::Map(m) => {
            let picked = pick_locale(m.iter().filter_map(|(k, v)| Some((k.name.as_str(), text(v)?))));
            if picked.is_none() && !m.is_empty() {
                notes.push(format!("{source}:{}: `x-casaos.{key}` has no text in any locale", node.span.line));
            }
            picked.unwrap_or_default()
        }
        Value::Null => misindented(x, key, node, source, notes),
        Value::Seq(_) => {
            notes
                .push(format!("{source}:{}: `x-casaos.{key}` is a list, not text per locale; ignored", node.span.line));
            String::new()
        }
        _ => text(node).unwrap_or_default(),
    }
}

/// `key:` left empty with its locales written at the level of `key` itself
/// (one indent too little): they follow it as keys of `x-casaos`.
fn misindented(x: &Node, key: &str, node: &Node, source: &str, notes: &mut Vec<String>) -> String {
    let Some(map) = x.as_map() else { return String::new() };
    let Some(at) = map.iter().position(|(k, _)| k.name == key) else { return String::new() };
    let locales: Vec<(&str, String)> = map[at + 1..]
        .iter()
        .take_while(|(k, _)| is_locale(&k.name))
        .filter_map(|(k, v)| Some((k.name.as_str(), text(v)?)))
        .collect();
    let line = x.key_span(key).map_or(node.span.line, |s| s.line);
    if locales.is_empty() {
        notes.push(format!("{source}:{line}: `x-casaos.{key}` is empty"));
        return String::new();
    }
    notes.push(format!(
        "{source}:{line}: `x-casaos.{key}` is empty and its locales ({}) are indented as keys of `x-casaos`; read from there",
        locales.iter().map(|(k, _)| *k).take(3).collect::<Vec<_>>().join(", ")
            + if locales.len() > 3 { ", …" } else { "" }
    ));
    pick_locale(locales.into_iter()).unwrap_or_default()
}

/// BigBear's per-app `config.json` `version`.
fn bigbear_version(root: &Path, dir: &Path) -> Option<String> {
    let path = dir.join("config.json");
    std::fs::symlink_metadata(&path).ok()?;
    let text = files::read_text(root, &path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn json_file(root: &Path, name: &str) -> Option<serde_json::Value> {
    let path = root.join(name);
    std::fs::symlink_metadata(&path).ok()?;
    serde_json::from_str(&files::read_text(root, &path).ok()?).ok()
}

/// `category-list.json`: `[{name, description}]` (a description may be per locale).
pub fn categories(root: &Path) -> Vec<Category> {
    let Some(serde_json::Value::Array(items)) = json_file(root, "category-list.json") else { return Vec::new() };
    items
        .iter()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_string();
            let description = match c.get("description") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Object(m)) => {
                    pick_locale(m.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?.to_string()))))
                        .unwrap_or_default()
                }
                _ => String::new(),
            };
            Some(Category { name, description })
        })
        .collect()
}

/// `featured-apps.json` and `recommend-list.json`: app ids (`[{appid}]` or `["id"]`).
pub fn featured(root: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for name in ["featured-apps.json", "recommend-list.json"] {
        if let Some(serde_json::Value::Array(items)) = json_file(root, name) {
            for item in items {
                let id = match &item {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(m) => {
                        m.get("appid").or_else(|| m.get("id")).and_then(|v| v.as_str()).map(str::to_string)
                    }
                    _ => None,
                };
                if let Some(id) = id.filter(|i| !ids.contains(i)) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_prefer_en_us_then_english_then_the_first() {
        let e = |v: &[(&'static str, &str)]| pick_locale(v.iter().map(|(k, s)| (*k, s.to_string())));
        assert_eq!(e(&[("zh_CN", "z"), ("en_us", "u")]), Some("u".into()));
        assert_eq!(e(&[("zh_CN", "z"), ("en_GB", "g")]), Some("g".into()));
        assert_eq!(e(&[("zh_CN", "z"), ("de_DE", "d")]), Some("z".into()));
        assert_eq!(e(&[]), None);
    }

    #[test]
    fn a_compose_file_with_a_yaml_error_is_invalid_at_its_line() {
        let err = read_app("x", "Apps/x/docker-compose.yml", "services:\n  a:\n    image: [\n", true).unwrap_err();
        assert!(err.starts_with("Apps/x/docker-compose.yml:4:"), "{err}");
    }

    #[test]
    fn misindented_locales_and_a_missing_main_are_read_with_notes() {
        let text = "services:\n  web:\n    image: a/b:1.2\n    ports: ['8080:80']\n  db:\n    image: pg\nx-casaos:\n  title:\n    zh_CN: 标题\n    en_US: Title\n  tagline:\n  en_US: Tag\n  zh_CN: 标\n  category: Media\n";
        let e = read_app("x", "f.yml", text, true).unwrap();
        assert_eq!(e.title, "Title");
        assert_eq!(e.tagline, "Tag");
        assert_eq!(e.main.as_deref(), Some("web"));
        assert_eq!(e.version, "1.2");
        assert_eq!(e.ports, vec![8080]);
        assert_eq!(e.category, "Media");
        assert_eq!(e.notes.len(), 2, "{:?}", e.notes);
        assert!(e.notes[0].contains("no `x-casaos.main`"), "{:?}", e.notes);
        assert!(e.notes[1].contains("f.yml:11: `x-casaos.tagline` is empty"), "{:?}", e.notes);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn the_metadata_reader_never_panics(s in "\\PC{0,400}") {
            let _ = read_app("x", "f.yml", &s, true);
        }

        #[test]
        fn the_metadata_reader_never_panics_on_casaos_shapes(
            keys in proptest::collection::vec(
                proptest::sample::select(vec!["title", "tagline", "main", "en_US", "zh_CN", "ports", "image", "- a", "[", "8080:80", "\"\"", "{}", "null", "tips", "before_install"]),
                0..24),
            indents in proptest::collection::vec(0usize..4, 24),
        ) {
            let mut text = String::from("services:\n  a:\n    image: x:1\nx-casaos:\n");
            for (k, i) in keys.iter().zip(indents) {
                text.push_str(&" ".repeat(i * 2));
                text.push_str(k);
                text.push_str(if i % 2 == 0 { ":\n" } else { ": v\n" });
            }
            let _ = read_app("x", "f.yml", &text, true);
        }
    }
}
