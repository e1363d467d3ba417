//! tomo templates: one folder per app holding `app.yaml`, an App manifest
//! whose `x-tomo-template` block describes it (`title`, `tagline`,
//! `description`, `category`, `author`, `icon`, `main`, `architectures`,
//! `parameters`).

use std::path::Path;

use super::compose::{self, text};
use super::{AppEntry, InvalidApp, Scan, files};
use crate::manifest::yaml::{self, Node};

/// The file names of a template, in preference order.
pub const TEMPLATE_FILES: &[&str] = &["app.yaml", "app.yml"];

/// Whether the store at `root` holds templates (a folder with `app.yaml`).
pub fn looks_like(root: &Path) -> bool {
    super::app_folders(root, root).is_ok_and(|all| {
        all.iter().any(|(_, d)| d.as_ref().is_ok_and(|d| TEMPLATE_FILES.iter().any(|f| d.join(f).is_file())))
    })
}

/// Reads a template store rooted at `root` (canonical).
pub fn scan(root: &Path) -> Result<Scan, String> {
    let mut scan = Scan::default();
    for (id, dir) in super::app_folders(root, root)? {
        let invalid = |source: &str, reason: String| InvalidApp { id: id.clone(), source: source.to_string(), reason };
        let dir = match dir {
            Ok(d) => d,
            Err(why) => {
                scan.invalid.push(invalid(&id, format!("{id} {why}")));
                continue;
            }
        };
        let Some(name) = TEMPLATE_FILES.iter().find(|f| std::fs::symlink_metadata(dir.join(f)).is_ok()) else {
            continue;
        };
        let source = format!("{id}/{name}");
        let read = files::read_text(root, &dir.join(name))
            .map_err(|why| format!("{source} {why}"))
            .and_then(|text| read_template(&id, &source, &text))
            .and_then(|e| {
                Ok(AppEntry { checksum: files::checksum(root, &dir).map_err(|w| format!("{id}: {w}"))?, ..e })
            });
        match read {
            Ok(e) => scan.apps.push(e),
            Err(reason) => scan.invalid.push(invalid(&source, reason)),
        }
    }
    Ok(scan)
}

/// Reads one template into a catalog entry (no checksum).
pub fn read_template(id: &str, source: &str, text_: &str) -> Result<AppEntry, String> {
    let (docs, err) = yaml::parse(text_);
    if let Some(e) = err {
        return Err(format!("{source}:{}:{}: {}", e.span.line, e.span.column, e.message));
    }
    let Some(doc) = docs.into_iter().next() else { return Err(format!("{source}: the file is empty")) };
    let root = &doc.root;
    let at = |n: &Node| format!("{source}:{}:{}", n.span.line, n.span.column);
    if root.get("kind").and_then(Node::as_str) != Some("App") {
        return Err(format!("{}: a template is an App manifest (`kind: App`)", at(root)));
    }
    let services = compose::services(root);
    if services.is_empty() {
        return Err(format!("{}: the App has no services", at(root)));
    }
    let empty = Node { value: yaml::Value::Null, span: root.span };
    let mut notes = Vec::new();
    let t = match root.get("x-tomo-template") {
        Some(t) if t.as_map().is_some() => t,
        _ => {
            notes.push(format!("{source}: no `x-tomo-template` block: the app has only its name"));
            &empty
        }
    };
    let get = |k: &str| t.get(k).and_then(text).unwrap_or_default();
    let first = services[0].0.to_string();
    let main = match t.get("main").and_then(text) {
        Some(m) if services.iter().any(|(n, _)| *n == m) => m,
        Some(m) => {
            notes.push(format!("{source}: `x-tomo-template.main` names no service (`{m}`); the first is the main one"));
            first
        }
        None => first,
    };
    let image = services.iter().find(|(n, _)| *n == main).and_then(|(_, s)| s.get("image")).and_then(text);
    let title = Some(get("title")).filter(|s| !s.is_empty());
    Ok(AppEntry {
        id: id.to_string(),
        title: title.or_else(|| root.get("name").and_then(text)).unwrap_or_else(|| id.to_string()),
        tagline: get("tagline"),
        description: get("description"),
        category: get("category"),
        author: get("author"),
        developer: get("developer"),
        icon: get("icon"),
        screenshots: compose::strings(t.get("screenshots")),
        version: image.map(|i| compose::image_tag(&i)).unwrap_or_default(),
        architectures: compose::strings(t.get("architectures")),
        ports: compose::published_ports(root),
        main: Some(main),
        source: source.to_string(),
        checksum: String::new(),
        notes,
    })
}
